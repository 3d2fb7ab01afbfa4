//! Paste as typing: a viewer's clipboard text (ClientCutText) typed on the target as key
//! strokes, for firmware setup screens, installers and consoles that have no clipboard.
//!
//! Opt-in, because many viewers push their clipboard on connect: `immediate` types whatever a
//! viewer sends, `hotkey` keeps the last text and types it on [`Chord::Paste`]
//! (Ctrl+Alt+Shift+V). Typing waits until nobody holds a key (the chord's own modifiers), goes
//! at a pace a BIOS keyboard buffer keeps up with, uses the target's layout (the router's
//! keysym path), and stops at the first key a real viewer presses.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::router::{Chord, InputRouter, PASTE_VIEWER};

/// When clipboard text is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PasteMode {
    /// Never: clipboard text is ignored.
    #[default]
    Off,
    /// The last clipboard text is typed on Ctrl+Alt+Shift+V.
    Hotkey,
    /// Clipboard text is typed as soon as a viewer sends it.
    Immediate,
}

#[derive(Debug, Clone, Copy)]
pub struct PasteConfig {
    pub mode: PasteMode,
    /// Longer texts are not typed at all (a half-typed text is worse than none).
    pub max_chars: usize,
    /// How long each key is held, and the gap after it.
    pub key_delay: Duration,
}

/// How long typing waits for the keys held when it was asked for (the chord) to be released.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Keysyms for characters that are keys rather than symbols.
const RETURN: u32 = 0xFF0D;
const TAB: u32 = 0xFF09;

pub struct Paster {
    router: Arc<InputRouter>,
    config: PasteConfig,
    state: Mutex<PasteState>,
}

#[derive(Default)]
struct PasteState {
    /// The last clipboard text a viewer sent, for the hotkey.
    last: Option<Arc<str>>,
    /// The text being typed; a new paste replaces it.
    typing: Option<JoinHandle<()>>,
}

impl Paster {
    pub fn new(router: Arc<InputRouter>, config: PasteConfig) -> Self {
        Self { router, config, state: Mutex::default() }
    }

    /// A viewer's clipboard text. Must be called inside a tokio runtime.
    pub fn clipboard(&self, text: String) {
        match self.config.mode {
            PasteMode::Off => {
                tracing::debug!("clipboard text of {} characters ignored (--paste off)", text.chars().count())
            }
            PasteMode::Hotkey => {
                tracing::debug!("clipboard text of {} characters kept for Ctrl+Alt+Shift+V", text.chars().count());
                self.lock().last = Some(text.into());
            }
            PasteMode::Immediate => self.type_text(text.into()),
        }
    }

    /// Acts on a chord a viewer pressed. Must be called inside a tokio runtime.
    pub fn chord(&self, chord: Chord) {
        match chord {
            Chord::ToggleMouseMode => self.router.toggle_mouse_mode(),
            Chord::Paste if self.config.mode == PasteMode::Hotkey => {
                // Taken out first: type_text locks the state again.
                let last = self.lock().last.clone();
                match last {
                    Some(text) => self.type_text(text),
                    None => tracing::info!("paste chord, but no viewer has sent clipboard text yet"),
                }
            }
            Chord::Paste => tracing::info!("paste chord ignored: paste is {:?} (--paste)", self.config.mode),
        }
    }

    /// Types `text`, whatever `--paste` says: the control interface asked for it. Paced and
    /// capped like a paste; it starts once text typed before has been typed, so requests made
    /// one after the other reach the target in that order.
    pub async fn type_now(&self, text: &str) -> Result<(), String> {
        let length = text.chars().count();
        if length > self.config.max_chars {
            return Err(format!(
                "{length} characters are more than the {} that are typed at once (--paste-max-chars)",
                self.config.max_chars
            ));
        }
        self.wait_typed().await;
        self.type_text(text.into());
        Ok(())
    }

    /// Waits until no text is being typed.
    async fn wait_typed(&self) {
        while self.lock().typing.as_ref().is_some_and(|typing| !typing.is_finished()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Presses `keysyms` in order and releases them in reverse, as a person does Ctrl+Alt+Del
    /// (after any text still being typed).
    pub async fn press_combo(&self, keysyms: &[u32]) {
        self.wait_typed().await;
        for &keysym in keysyms {
            self.router.key(PASTE_VIEWER, keysym, true);
            tokio::time::sleep(self.config.key_delay).await;
        }
        for &keysym in keysyms.iter().rev() {
            self.router.key(PASTE_VIEWER, keysym, false);
            tokio::time::sleep(self.config.key_delay).await;
        }
    }

    fn type_text(&self, text: Arc<str>) {
        let length = text.chars().count();
        if length > self.config.max_chars {
            tracing::warn!(
                "clipboard text of {length} characters not typed: over the limit of {} (--paste-max-chars)",
                self.config.max_chars
            );
            return;
        }
        tracing::info!("typing text of {length} characters");
        let task = tokio::spawn(type_keys(self.router.clone(), text, self.config.key_delay));
        if let Some(previous) = self.lock().typing.replace(task) {
            previous.abort();
        }
    }

    fn lock(&self) -> MutexGuard<'_, PasteState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Paster {
    fn drop(&mut self) {
        if let Some(typing) = self.lock().typing.take() {
            typing.abort();
        }
    }
}

/// The keysym a viewer would send for `character` (None for ones that are not typed: CR of CRLF).
fn keysym(character: char) -> Option<u32> {
    match character {
        '\n' => Some(RETURN),
        '\t' => Some(TAB),
        '\r' => None,
        // Latin-1 keysyms are the code points themselves; the rest use the Unicode form.
        c if u32::from(c) <= 0xFF => Some(u32::from(c)),
        c => Some(0x0100_0000 + u32::from(c)),
    }
}

async fn type_keys(router: Arc<InputRouter>, text: Arc<str>, delay: Duration) {
    let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
    while router.keys_held() {
        if tokio::time::Instant::now() > deadline {
            tracing::info!("paste cancelled: keys are still held");
            return;
        }
        tokio::time::sleep(delay).await;
    }
    let presses = router.viewer_presses();
    for keysym in text.chars().filter_map(keysym) {
        if router.viewer_presses() != presses {
            tracing::info!("paste stopped: a viewer pressed a key");
            break;
        }
        router.key(PASTE_VIEWER, keysym, true);
        tokio::time::sleep(delay).await;
        router.key(PASTE_VIEWER, keysym, false);
        tokio::time::sleep(delay).await;
    }
    router.release_viewer(PASTE_VIEWER);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hid::layout::Layout;
    use crate::hid::router::tests::RecordingSink;
    use crate::hid::{HidReport, KeyboardReport};

    const DELAY: Duration = Duration::from_millis(1);

    fn paster(mode: PasteMode) -> (Arc<RecordingSink>, Arc<InputRouter>, Paster) {
        let sink = Arc::new(RecordingSink::default());
        let router = Arc::new(InputRouter::new(sink.clone(), Layout::us()));
        let config = PasteConfig { mode, max_chars: 10, key_delay: DELAY };
        (sink, router.clone(), Paster::new(router, config))
    }

    /// The usages pressed, in order (what the target typed).
    fn pressed(reports: &[HidReport]) -> Vec<(u8, u8)> {
        let mut previous = KeyboardReport::default();
        let mut pressed = Vec::new();
        for report in reports {
            let HidReport::Keyboard(report) = report else { continue };
            for key in report.keys.iter().filter(|key| **key != 0 && !previous.keys.contains(key)) {
                pressed.push((report.modifiers, *key));
            }
            previous = *report;
        }
        pressed
    }

    async fn typed(paster: &Paster) {
        let typing = paster.lock().typing.take().expect("typing started");
        typing.await.expect("typing finished");
    }

    #[tokio::test]
    async fn immediate_types_the_text_with_shift_and_return() {
        let (sink, _, paster) = paster(PasteMode::Immediate);
        paster.clipboard("Hi!\r\n".into());
        typed(&paster).await;
        let reports = sink.take();
        assert_eq!(pressed(&reports), [(0x02, 0x0B), (0, 0x0C), (0x02, 0x1E), (0, 0x28)]);
        assert_eq!(reports.last(), Some(&HidReport::Keyboard(KeyboardReport::default())), "nothing left down");
    }

    #[tokio::test]
    async fn hotkey_keeps_the_text_until_the_chord() {
        let (sink, router, paster) = paster(PasteMode::Hotkey);
        paster.clipboard("ab".into());
        assert!(sink.take().is_empty());
        // Ctrl+Alt+Shift+V: the V is the chord, not a key for the target.
        for keysym in [0xFFE3, 0xFFE9, 0xFFE1] {
            router.key(1, keysym, true);
        }
        let chord = router.key(1, u32::from(b'V'), true);
        assert_eq!(chord, Some(Chord::Paste));
        paster.chord(Chord::Paste);
        for keysym in [0xFFE3, 0xFFE9, 0xFFE1] {
            router.key(1, keysym, false);
        }
        typed(&paster).await;
        let typed_keys: Vec<u8> = pressed(&sink.take()).into_iter().map(|(_, key)| key).collect();
        assert_eq!(typed_keys, [0x04, 0x05], "a and b, after the chord's modifiers went up; no V");
    }

    #[tokio::test]
    async fn a_real_key_press_stops_typing() {
        let (sink, router, paster) = paster(PasteMode::Immediate);
        paster.clipboard("aaaaaaaaaa".into());
        tokio::time::sleep(DELAY * 3).await;
        router.key(1, u32::from(b'z'), true);
        router.key(1, u32::from(b'z'), false);
        typed(&paster).await;
        let typed_keys: Vec<u8> = pressed(&sink.take()).into_iter().map(|(_, key)| key).collect();
        let a_count = typed_keys.iter().filter(|key| **key == 0x04).count();
        assert!(a_count < 10, "typing went on after the z: {typed_keys:?}");
        assert!(typed_keys.contains(&0x1D));
    }

    #[tokio::test]
    async fn too_long_or_off_types_nothing() {
        let (sink, _, paster) = paster(PasteMode::Immediate);
        paster.clipboard("01234567890".into());
        assert!(paster.lock().typing.is_none());
        let (off_sink, _, off) = super::tests::paster(PasteMode::Off);
        off.clipboard("hello".into());
        off.chord(Chord::Paste);
        assert!(off.lock().typing.is_none());
        assert!(sink.take().is_empty() && off_sink.take().is_empty());
    }

    #[test]
    fn characters_become_keysyms() {
        assert_eq!(keysym('a'), Some(0x61));
        assert_eq!(keysym('é'), Some(0xE9));
        assert_eq!(keysym('€'), Some(0x0100_20AC));
        assert_eq!(keysym('\n'), Some(RETURN));
        assert_eq!(keysym('\r'), None);
    }
}
