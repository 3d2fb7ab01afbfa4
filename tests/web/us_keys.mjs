// US-layout typing for the test drivers: each character becomes the physical key press (with
// Shift where a US keyboard needs it) that Playwright's keyboard sends, so noVNC sends the keysym
// *and* the scancode a real keyboard would produce.
const US_SHIFTED = { '!': 'Digit1', '@': 'Digit2', '#': 'Digit3', '$': 'Digit4', '%': 'Digit5', '^': 'Digit6',
  '&': 'Digit7', '*': 'Digit8', '(': 'Digit9', ')': 'Digit0', '_': 'Minus', '+': 'Equal', '{': 'BracketLeft',
  '}': 'BracketRight', '|': 'Backslash', ':': 'Semicolon', '"': 'Quote', '<': 'Comma', '>': 'Period',
  '?': 'Slash', '~': 'Backquote' };
const US_PLAIN = { '-': 'Minus', '=': 'Equal', '[': 'BracketLeft', ']': 'BracketRight', '\\': 'Backslash',
  ';': 'Semicolon', "'": 'Quote', ',': 'Comma', '.': 'Period', '/': 'Slash', '`': 'Backquote', ' ': 'Space',
  '\n': 'Enter', '\t': 'Tab' };

/** The Playwright key for `ch` on a US keyboard, or null if a US keyboard has none. */
export function keyForChar(ch) {
  if (ch >= 'a' && ch <= 'z') return 'Key' + ch.toUpperCase();
  if (ch >= 'A' && ch <= 'Z') return 'Shift+Key' + ch;
  if (ch >= '0' && ch <= '9') return 'Digit' + ch;
  if (US_PLAIN[ch]) return US_PLAIN[ch];
  if (US_SHIFTED[ch]) return 'Shift+' + US_SHIFTED[ch];
  return null;
}
