//! The demo target's text console: a grid of [`COLUMNS`]×[`ROWS`] characters with the cursor at
//! the end of the last line. Long lines wrap; when the grid is full the oldest line scrolls away.

use std::collections::VecDeque;

use super::layout::{COLUMNS, ROWS};

pub const BANNER: &str = "kvnc demo console - type here";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Console {
    /// Never empty; the last line holds the cursor.
    lines: VecDeque<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Line {
    text: String,
    /// Made by wrapping a full line, so Backspace at its start goes back into the line above.
    wrapped: bool,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// The banner, an empty line, and the cursor on the line after.
    pub fn new() -> Self {
        let banner = Line { text: BANNER.to_owned(), wrapped: false };
        Self { lines: VecDeque::from([banner, Line::default(), Line::default()]) }
    }

    /// The visible lines, top to bottom (at most [`ROWS`], each at most [`COLUMNS`] characters).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(|line| line.text.as_str())
    }

    /// The cursor's (column, row); always inside the grid.
    pub fn cursor(&self) -> (usize, usize) {
        (self.current().text.len(), self.lines.len() - 1)
    }

    /// Types one printable ASCII character; anything else is ignored.
    pub fn type_char(&mut self, character: char) {
        if !(character == ' ' || character.is_ascii_graphic()) {
            return;
        }
        self.current_mut().text.push(character);
        if self.current().text.len() == COLUMNS {
            // Wrap right away, so that the cursor stays inside the grid.
            self.push_line(true);
        }
    }

    pub fn new_line(&mut self) {
        let current = self.current_mut();
        if current.wrapped && current.text.is_empty() {
            // The line above was filled exactly: the wrap already broke the line.
            current.wrapped = false;
        } else {
            self.push_line(false);
        }
    }

    /// Deletes the character before the cursor, going back across a wrap but not a line break.
    pub fn backspace(&mut self) {
        if self.current().text.is_empty() && self.current().wrapped && self.lines.len() > 1 {
            self.lines.pop_back();
        }
        self.current_mut().text.pop();
    }

    /// Spaces up to the next multiple of 8 (a wrap counts as reaching it).
    pub fn tab(&mut self) {
        loop {
            self.type_char(' ');
            if self.current().text.len().is_multiple_of(8) {
                break;
            }
        }
    }

    fn push_line(&mut self, wrapped: bool) {
        self.lines.push_back(Line { text: String::new(), wrapped });
        while self.lines.len() > ROWS {
            self.lines.pop_front();
        }
    }

    fn current(&self) -> &Line {
        // `lines` is never empty: it starts with three lines and only push_line removes any.
        &self.lines[self.lines.len() - 1]
    }

    fn current_mut(&mut self) -> &mut Line {
        let last = self.lines.len() - 1;
        &mut self.lines[last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(console: &Console) -> Vec<&str> {
        console.lines().collect()
    }

    fn type_str(console: &mut Console, text: &str) {
        text.chars().for_each(|character| console.type_char(character));
    }

    #[test]
    fn starts_with_the_banner_and_an_empty_line() {
        let console = Console::new();
        assert_eq!(lines(&console), [BANNER, "", ""]);
        assert_eq!(console.cursor(), (0, 2));
    }

    #[test]
    fn typing_return_and_backspace() {
        let mut console = Console::new();
        type_str(&mut console, "hello");
        console.new_line();
        type_str(&mut console, "wordl");
        console.backspace();
        console.backspace();
        type_str(&mut console, "ld\u{7}\n");
        assert_eq!(lines(&console)[2..], ["hello", "world"]);
        assert_eq!(console.cursor(), (5, 3));
        console.new_line();
        console.backspace();
        assert_eq!(console.cursor(), (0, 4), "backspace does not undo a line break");
    }

    #[test]
    fn tab_stops_every_eight_columns() {
        let mut console = Console::new();
        type_str(&mut console, "ab");
        console.tab();
        type_str(&mut console, "c");
        console.tab();
        assert_eq!(lines(&console)[2], "ab      c       ");
    }

    #[test]
    fn long_lines_wrap_and_backspace_crosses_the_wrap() {
        let mut console = Console::new();
        let full = "x".repeat(COLUMNS);
        type_str(&mut console, &full);
        assert_eq!(lines(&console)[2..], [full.as_str(), ""]);
        assert_eq!(console.cursor(), (0, 3));
        console.backspace();
        assert_eq!(lines(&console)[2..], [&full[1..]]);
        type_str(&mut console, "xy");
        assert_eq!(lines(&console)[2..], [full.as_str(), "y"]);
    }

    #[test]
    fn return_right_after_a_wrap_breaks_the_line_once() {
        let mut console = Console::new();
        type_str(&mut console, &"x".repeat(COLUMNS));
        console.new_line();
        type_str(&mut console, "next");
        assert_eq!(lines(&console)[3..], ["next"]);
    }

    #[test]
    fn scrolls_when_full() {
        let mut console = Console::new();
        for line in 0..ROWS {
            type_str(&mut console, &line.to_string());
            console.new_line();
        }
        let visible = lines(&console);
        assert_eq!(visible.len(), ROWS);
        assert_eq!(visible[0], "1");
        assert_eq!(visible[ROWS - 2], (ROWS - 1).to_string());
        assert_eq!(console.cursor(), (0, ROWS - 1));
    }
}
