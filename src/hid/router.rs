//! Turns every viewer's RFB key and pointer events into reports for the target's single keyboard
//! and pointer.
//!
//! Keys arrive as keysyms (characters), but the target receives key positions, so Shift must
//! match what the character needs: like TigerVNC, a key that needs Shift while none is held gets
//! a fake Shift around it, and a key that must not have Shift while the viewer holds it gets
//! Shift lifted around it. Several viewers share the target: reports carry the merged state, and
//! a viewer leaving releases only what it held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use crate::hid::keyboard::Keyboard;
use crate::hid::keymap::usage;
use crate::hid::layout::{KeyStroke, Layout};
use crate::hid::pointer::{self, Pointer, WheelClicks};
use crate::hid::{HidReport, InputSink, MouseReport, led, scancode};

/// Identifies one viewer connection.
pub type ViewerId = u64;

const LEFT_SHIFT_BIT: u8 = usage::modifier_bit(usage::LEFT_SHIFT);
const SHIFT_BITS: u8 = LEFT_SHIFT_BIT | usage::modifier_bit(usage::RIGHT_SHIFT);
/// AltGr is the right Alt key (usage 0xE6) on every layout that has it.
const ALTGR_USAGE: u8 = 0xE6;
const ALTGR_BIT: u8 = usage::modifier_bit(ALTGR_USAGE);

/// Key chords a viewer uses to talk to kvnc instead of the target: Ctrl+Alt+Shift held (either
/// side of each), then a letter key. The letter never reaches the target; the modifiers do,
/// harmlessly on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chord {
    /// Ctrl+Alt+Shift+V: type the last clipboard text (`--paste hotkey`).
    Paste,
    /// Ctrl+Alt+Shift+M: switch between the absolute pointer and the relative boot mouse.
    ToggleMouseMode,
}

impl Chord {
    const MODIFIER_GROUPS: [u8; 3] = [0x11, 0x22, 0x44];

    /// The chord `usage` completes with `modifiers` (the target's modifier byte) held.
    fn of(modifiers: u8, usage: u8) -> Option<Chord> {
        if !Self::MODIFIER_GROUPS.iter().all(|group| modifiers & group != 0) {
            return None;
        }
        match usage {
            0x19 => Some(Chord::Paste),
            0x10 => Some(Chord::ToggleMouseMode),
            _ => None,
        }
    }
}

/// The viewer id the paste typist (and the control interface's typing) uses: real viewers
/// count from 1.
pub const PASTE_VIEWER: ViewerId = 0;

/// Which device pointer events drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MouseMode {
    /// The absolute pointer: exact positions, what operating systems use.
    #[default]
    Absolute,
    /// The relative boot mouse: firmware that binds only boot mice (BIOS setup screens) gets
    /// the viewer's movements as steps.
    Relative,
}

/// Shared by all viewer connections.
pub struct InputRouter {
    sink: Arc<dyn InputSink>,
    /// Switchable while viewers type (the control interface): each key event takes the layout
    /// of the moment; a release finds its key by what was pressed, whatever the layout now.
    layout: RwLock<Arc<Layout>>,
    state: Mutex<RouterState>,
}

impl InputRouter {
    /// A router typing keysyms as they are produced on the target's `layout`.
    pub fn new(sink: Arc<dyn InputSink>, layout: Layout) -> Self {
        Self { sink, layout: RwLock::new(Arc::new(layout)), state: Mutex::new(RouterState::default()) }
    }

    /// The target's keyboard layout from now on.
    pub fn set_layout(&self, layout: Layout) {
        tracing::info!("keysyms are now typed for the target's {} keyboard layout", layout.name());
        *self.layout.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(layout);
    }

    pub fn layout(&self) -> Arc<Layout> {
        self.layout.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn mouse_mode(&self) -> MouseMode {
        self.lock().mouse_mode
    }

    /// Switches pointer events to the absolute pointer or the relative boot mouse.
    pub fn set_mouse_mode(&self, mode: MouseMode) {
        let mut state = self.lock();
        if state.mouse_mode != mode {
            tracing::info!("pointer events now drive the {mode:?} mouse");
            state.mouse_mode = mode;
            state.mouse_at = None;
        }
    }

    /// An RFB KeyEvent: a keysym, typed as the target's layout produces it. Keysyms the layout
    /// cannot produce are logged once each and dropped.
    /// Returns the [`Chord`] the press completed instead of typing it, if any.
    pub fn key(&self, viewer: ViewerId, keysym: u32, down: bool) -> Option<Chord> {
        let sink = self.sink.as_ref();
        let layout = self.layout();
        if !down {
            // Released by the key it pressed, whatever keysym the release carries.
            let same_key = layout.stroke(keysym).map(|stroke| stroke.usage);
            self.lock().release(viewer, KeyId::Keysym(keysym), same_key, sink);
            return None;
        }
        let Some(stroke) = layout.stroke(keysym) else {
            self.lock().unknown_keysym(keysym, layout.name());
            return None;
        };
        // Asked before locking: the sink has its own lock and nothing here needs to hold ours.
        let caps_lock = stroke.caps_sensitive && sink.led_state() & led::CAPS_LOCK != 0;
        self.lock().press(viewer, KeyId::Keysym(keysym), Press::Stroke(stroke, caps_lock), sink)
    }

    /// A QEMU extended key event: `qnum` names the physical key (XT scancode, see
    /// [`scancode::usage_for_qnum`]), so no layout is involved and nothing is faked: the viewer
    /// sends its own Shift and AltGr. A code with no key falls back to the keysym.
    pub fn scancode_key(&self, viewer: ViewerId, qnum: u32, keysym: u32, down: bool) -> Option<Chord> {
        let Some(usage) = scancode::usage_for_qnum(qnum) else {
            tracing::debug!(qnum = format_args!("{qnum:#x}"), "no HID key for scancode; using the keysym");
            return if keysym != 0 { self.key(viewer, keysym, down) } else { None };
        };
        let sink = self.sink.as_ref();
        if down {
            self.lock().press(viewer, KeyId::Scancode(qnum), Press::Usage(usage), sink)
        } else {
            self.lock().release(viewer, KeyId::Scancode(qnum), Some(usage), sink);
            None
        }
    }

    /// Switches between the absolute pointer and the relative boot mouse.
    pub fn toggle_mouse_mode(&self) {
        let mode = match self.lock().mouse_mode {
            MouseMode::Absolute => MouseMode::Relative,
            MouseMode::Relative => MouseMode::Absolute,
        };
        self.set_mouse_mode(mode);
    }

    /// How many keys real viewers (not the paste typist) have pressed so far.
    pub fn viewer_presses(&self) -> u64 {
        self.lock().viewer_presses
    }

    /// Whether any viewer (the paste typist aside) holds a key.
    pub fn keys_held(&self) -> bool {
        self.lock().viewers.iter().any(|(id, viewer)| *id != PASTE_VIEWER && !viewer.keys.is_empty())
    }

    /// An RFB PointerEvent at (`x`, `y`) in the `width`×`height` framebuffer this viewer sees;
    /// `mask` as in `rfb::Event::Pointer` (see [`pointer::rfb_button`]).
    pub fn pointer(&self, viewer: ViewerId, mask: u16, x: u16, y: u16, width: u16, height: u16) {
        let mut state = self.lock();
        if state.mouse_mode == MouseMode::Relative {
            state.mouse(viewer, mask, x, y, self.sink.as_ref());
            return;
        }
        let x = pointer::to_hid_coordinate(x, width);
        let y = pointer::to_hid_coordinate(y, height);
        state.pointer(viewer, mask, x, y, self.sink.as_ref());
    }

    /// The target's keyboard LEDs (see [`crate::hid::led`]), for viewers to show.
    pub fn leds(&self) -> tokio::sync::watch::Receiver<Option<u8>> {
        self.sink.leds()
    }

    /// Releases every key and button `viewer` holds; call it when the viewer disconnects, or the
    /// target would see them stuck.
    pub fn release_viewer(&self, viewer: ViewerId) {
        self.lock().release_viewer(viewer, self.sink.as_ref());
    }

    fn lock(&self) -> MutexGuard<'_, RouterState> {
        // Only a panicking sink could poison the lock, and the state it leaves is still a valid
        // one (at worst a report went missing), so carry on rather than fail every viewer.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a viewer names the physical key it pressed: by keysym (what it typed) or by scancode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyId {
    Keysym(u32),
    Scancode(u32),
}

/// What a key press asks for.
enum Press {
    /// A keysym's stroke on the layout; `caps_lock` when the target's Caps Lock flips its Shift.
    Stroke(KeyStroke, bool),
    /// A physical key, as it is.
    Usage(u8),
}

/// Everything behind the router's lock. Reports are sent while it is held, so that reports from
/// different viewers reach the target in the order the state changed (sinks do not block).
#[derive(Default)]
struct RouterState {
    keyboard: Keyboard,
    pointer: Pointer,
    viewers: HashMap<ViewerId, Viewer>,
    /// Counts presses, to tell which held key is the most recent.
    presses: u64,
    /// Keysyms already reported as untypeable (each is logged once).
    unknown_keysyms: std::collections::HashSet<u32>,
    mouse_mode: MouseMode,
    /// Key presses of real viewers, which abort a paste being typed.
    viewer_presses: u64,
    /// Relative mode: the framebuffer position the boot mouse was last moved to.
    mouse_at: Option<(i32, i32)>,
    /// Relative mode: the HID buttons the boot mouse last reported.
    mouse_buttons: u8,
}

#[derive(Default)]
struct Viewer {
    keys: Vec<HeldKey>,
    /// The button mask of this viewer's last pointer event.
    buttons: u16,
}

struct HeldKey {
    id: KeyId,
    /// Remembered so the release lifts the same key even if Shift changed in between.
    usage: u8,
    /// Shift as this key forced it: `Some(true)` fake-pressed, `Some(false)` lifted.
    forced_shift: Option<bool>,
    /// AltGr likewise.
    forced_altgr: Option<bool>,
    press: u64,
}

/// A modifier the router may fake or lift around a key: Shift or AltGr.
#[derive(Clone, Copy)]
struct Faked {
    /// The modifier-byte bits of the real keys (both Shifts, or AltGr).
    bits: u8,
    /// The bit pressed when faking it.
    fake_bit: u8,
    forced: fn(&HeldKey) -> Option<bool>,
}

const SHIFT: Faked = Faked { bits: SHIFT_BITS, fake_bit: LEFT_SHIFT_BIT, forced: |key| key.forced_shift };
const ALTGR: Faked = Faked { bits: ALTGR_BIT, fake_bit: ALTGR_BIT, forced: |key| key.forced_altgr };

fn is_faked_modifier(usage: u8) -> bool {
    usage::modifier_bit(usage) & (SHIFT_BITS | ALTGR_BIT) != 0
}

impl RouterState {
    fn unknown_keysym(&mut self, keysym: u32, layout: &str) {
        if self.unknown_keysyms.insert(keysym) {
            tracing::info!(
                keysym = format_args!("{keysym:#x}"),
                "the {layout} layout has no key for this keysym; dropped"
            );
        }
    }

    fn press(&mut self, viewer: ViewerId, id: KeyId, press: Press, sink: &dyn InputSink) -> Option<Chord> {
        let modifiers = self.keyboard.modifiers();
        let held = self.viewers.entry(viewer).or_default();
        if held.keys.iter().any(|key| key.id == id) {
            // Autorepeat from the viewer: the key is still down, and the target repeats by itself.
            return None;
        }
        let pressed = match press {
            Press::Usage(usage) | Press::Stroke(KeyStroke { usage, .. }, _) => usage,
        };
        if viewer != PASTE_VIEWER {
            self.viewer_presses += 1;
            if let Some(chord) = Chord::of(modifiers, pressed) {
                tracing::info!("key chord {chord:?}");
                return Some(chord);
            }
        }
        let (usage, forced_shift, forced_altgr) = match press {
            Press::Usage(usage) => (usage, None, None),
            Press::Stroke(stroke, caps_lock) => {
                // With Caps Lock on, the target flips the case of caps-sensitive keys, so Shift
                // must be flipped too.
                let wants_shift = stroke.shift != caps_lock;
                let shift_held = modifiers & SHIFT_BITS != 0;
                // A Shift the viewer holds is never lifted for a letter: it is part of a shortcut
                // (Ctrl+Shift+T) or of a script's "shift-a", where the viewer sent the unshifted keysym.
                let keeps_held_shift = shift_held && stroke.caps_sensitive;
                let is_modifier = usage::is_modifier(stroke.usage);
                let forced_shift =
                    (!is_modifier && wants_shift != shift_held && !keeps_held_shift).then_some(wants_shift);
                // AltGr is faked when needed but never lifted: a held right Alt is Alt in shortcuts
                // on layouts without AltGr, and a viewer holding AltGr sends the keysym it makes.
                let altgr_held = modifiers & ALTGR_BIT != 0;
                let forced_altgr = (!is_modifier && stroke.altgr && !altgr_held).then_some(true);
                (stroke.usage, forced_shift, forced_altgr)
            }
        };
        self.presses += 1;
        held.keys.push(HeldKey { id, usage, forced_shift, forced_altgr, press: self.presses });
        self.sync_faked(sink);
        if let Some(report) = self.keyboard.press(usage) {
            send(sink, HidReport::Keyboard(report));
        }
        None
    }

    /// Releases the key `id` pressed; failing that (a viewer that pressed `H` and releases `h`),
    /// the key this viewer holds on the same physical key, `same_key`.
    fn release(&mut self, viewer: ViewerId, id: KeyId, same_key: Option<u8>, sink: &dyn InputSink) {
        let Some(held) = self.viewers.get_mut(&viewer) else { return };
        let index = held.keys.iter().position(|key| key.id == id).or_else(|| {
            let usage = same_key?;
            held.keys.iter().position(|key| key.usage == usage)
        });
        let Some(index) = index else {
            tracing::debug!(viewer, ?id, "release of a key not held; ignored");
            return;
        };
        let key = held.keys.remove(index);
        // Shift and AltGr are settled by sync_faked, which knows whether a held key still wants them.
        if !is_faked_modifier(key.usage)
            && !self.is_held(key.usage)
            && let Some(report) = self.keyboard.release(key.usage)
        {
            send(sink, HidReport::Keyboard(report));
        }
        self.sync_faked(sink);
    }

    fn pointer(&mut self, viewer: ViewerId, mask: u16, x: u16, y: u16, sink: &dyn InputSink) {
        let held = self.viewers.entry(viewer).or_default();
        let wheel = WheelClicks::between(held.buttons, mask);
        held.buttons = mask;
        let buttons = self.held_buttons();
        for report in self.pointer.update(buttons, x, y, wheel).as_slice() {
            send(sink, HidReport::Pointer(*report));
        }
    }

    /// Relative mode: the move from the last position, in steps of at most 127 pixels, then the
    /// button change, then a report per wheel click.
    fn mouse(&mut self, viewer: ViewerId, mask: u16, x: u16, y: u16, sink: &dyn InputSink) {
        let held = self.viewers.entry(viewer).or_default();
        let wheel = WheelClicks::between(held.buttons, mask);
        held.buttons = mask;
        let (x, y) = (i32::from(x), i32::from(y));
        let (mut dx, mut dy) = self.mouse_at.map_or((0, 0), |(from_x, from_y)| (x - from_x, y - from_y));
        self.mouse_at = Some((x, y));
        let step = |left: &mut i32| {
            let step = (*left).clamp(-127, 127);
            *left -= step;
            // Clamped to -127..=127 just above.
            step as i8
        };
        while dx != 0 || dy != 0 {
            let report = MouseReport { buttons: self.mouse_buttons, dx: step(&mut dx), dy: step(&mut dy), wheel: 0 };
            send(sink, HidReport::Mouse(report));
        }
        self.sync_mouse_buttons(sink);
        for (clicked, steps) in [(wheel.up, 1), (wheel.down, -1)] {
            if clicked {
                send(
                    sink,
                    HidReport::Mouse(MouseReport { buttons: self.mouse_buttons, wheel: steps, ..Default::default() }),
                );
            }
        }
    }

    fn sync_mouse_buttons(&mut self, sink: &dyn InputSink) {
        let buttons = self.held_buttons();
        if buttons != self.mouse_buttons {
            self.mouse_buttons = buttons;
            send(sink, HidReport::Mouse(MouseReport { buttons, ..Default::default() }));
        }
    }

    fn release_viewer(&mut self, viewer: ViewerId, sink: &dyn InputSink) {
        let Some(gone) = self.viewers.remove(&viewer) else { return };
        // One report for all of the viewer's keys: there is no order to preserve among releases.
        let before = self.keyboard.report();
        for key in gone.keys.iter().filter(|key| !is_faked_modifier(key.usage)) {
            if !self.is_held(key.usage) {
                self.keyboard.release(key.usage);
            }
        }
        self.keyboard.set_modifiers(self.modifiers_with_faked());
        if self.keyboard.report() != before {
            send(sink, HidReport::Keyboard(self.keyboard.report()));
        }
        if let Some(report) = self.pointer.set_buttons(self.held_buttons()) {
            send(sink, HidReport::Pointer(report));
        }
        if self.mouse_mode == MouseMode::Relative {
            self.sync_mouse_buttons(sink);
        }
    }

    /// Whether any viewer still holds a key producing `usage`.
    fn is_held(&self, usage: u8) -> bool {
        self.held_keys().any(|key| key.usage == usage)
    }

    fn held_keys(&self) -> impl Iterator<Item = &HeldKey> + Clone {
        self.viewers.values().flat_map(|viewer| &viewer.keys)
    }

    fn held_buttons(&self) -> u8 {
        self.viewers.values().fold(0, |buttons, viewer| buttons | pointer::hid_buttons(viewer.buttons))
    }

    /// The bits of `modifier` the target should see: those of the held keys, unless the most
    /// recently pressed key that decided about it (the modifier itself or a key that forced it)
    /// forced it on or off.
    fn wanted(&self, modifier: Faked) -> u8 {
        let real = self.held_keys().fold(0, |bits, key| bits | (usage::modifier_bit(key.usage) & modifier.bits));
        let latest = self
            .held_keys()
            .filter(|key| (modifier.forced)(key).is_some() || usage::modifier_bit(key.usage) & modifier.bits != 0)
            .max_by_key(|key| key.press);
        match latest.and_then(modifier.forced) {
            Some(true) => real | modifier.fake_bit,
            Some(false) => 0,
            None => real,
        }
    }

    fn modifiers_with_faked(&self) -> u8 {
        (self.keyboard.modifiers() & !(SHIFT_BITS | ALTGR_BIT)) | self.wanted(SHIFT) | self.wanted(ALTGR)
    }

    /// Brings the target's Shift and AltGr in line with [`Self::wanted`], as a report of its own.
    fn sync_faked(&mut self, sink: &dyn InputSink) {
        if let Some(report) = self.keyboard.set_modifiers(self.modifiers_with_faked()) {
            send(sink, HidReport::Keyboard(report));
        }
    }
}

fn send(sink: &dyn InputSink, report: HidReport) {
    if let Err(error) = sink.send_report(&report) {
        tracing::warn!(?report, "sending a HID report failed: {error:#}");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::hid::pointer::{hid_button, rfb_button};
    use crate::hid::{KeyboardReport, POINTER_MAX, PointerReport};

    /// A sink that records every report (shared with the paste tests).
    #[derive(Default)]
    pub(crate) struct RecordingSink {
        reports: Mutex<Vec<HidReport>>,
        leds: tokio::sync::watch::Sender<Option<u8>>,
        failing: AtomicBool,
    }

    impl InputSink for RecordingSink {
        fn send_report(&self, report: &HidReport) -> anyhow::Result<()> {
            self.reports.lock().unwrap().push(*report);
            if self.failing.load(Ordering::Relaxed) {
                anyhow::bail!("unplugged");
            }
            Ok(())
        }

        fn leds(&self) -> tokio::sync::watch::Receiver<Option<u8>> {
            self.leds.subscribe()
        }
    }

    impl RecordingSink {
        pub(crate) fn take(&self) -> Vec<HidReport> {
            std::mem::take(&mut *self.reports.lock().unwrap())
        }
    }

    fn router() -> (Arc<RecordingSink>, InputRouter) {
        let sink = Arc::new(RecordingSink::default());
        (sink.clone(), InputRouter::new(sink, Layout::us()))
    }

    fn keys(modifiers: u8, keys: &[u8]) -> HidReport {
        let mut report = KeyboardReport { modifiers, keys: [0; 6] };
        report.keys[..keys.len()].copy_from_slice(keys);
        HidReport::Keyboard(report)
    }

    const SHIFT: u8 = 0x02;
    const A: u8 = 0x04;
    const ONE: u8 = 0x1E;
    const B: u8 = 0x05;
    const SHIFT_L: u32 = 0xFFE1;
    const CONTROL_L: u32 = 0xFFE3;

    fn tap(router: &InputRouter, viewer: ViewerId, keysym: u32) {
        router.key(viewer, keysym, true);
        router.key(viewer, keysym, false);
    }

    #[test]
    fn uppercase_without_shift_gets_a_fake_shift() {
        let (sink, router) = router();
        tap(&router, 1, u32::from(b'A'));
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[A]), keys(SHIFT, &[]), keys(0, &[])]);
    }

    #[test]
    fn uppercase_with_shift_held_types_as_is() {
        let (sink, router) = router();
        router.key(1, SHIFT_L, true);
        tap(&router, 1, u32::from(b'A'));
        router.key(1, SHIFT_L, false);
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[A]), keys(SHIFT, &[]), keys(0, &[])]);
    }

    #[test]
    fn unshifted_symbol_with_shift_held_lifts_shift_for_the_key() {
        let (sink, router) = router();
        router.key(1, SHIFT_L, true);
        tap(&router, 1, u32::from(b'1'));
        router.key(1, SHIFT_L, false);
        let expected = [keys(SHIFT, &[]), keys(0, &[]), keys(0, &[ONE]), keys(0, &[]), keys(SHIFT, &[]), keys(0, &[])];
        assert_eq!(sink.take(), expected);
    }

    #[test]
    fn lowercase_letter_with_shift_held_keeps_shift() {
        let (sink, router) = router();
        router.key(1, SHIFT_L, true);
        tap(&router, 1, u32::from(b'a'));
        router.key(1, SHIFT_L, false);
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[A]), keys(SHIFT, &[]), keys(0, &[])]);
    }

    #[test]
    fn release_undoes_what_the_press_did_even_if_caps_lock_changed() {
        let (sink, router) = router();
        router.key(1, u32::from(b'A'), true);
        sink.leds.send_replace(Some(led::CAPS_LOCK));
        router.key(1, u32::from(b'A'), false);
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[A]), keys(SHIFT, &[]), keys(0, &[])]);
    }

    #[test]
    fn iso_left_tab_is_shift_tab() {
        let (sink, router) = router();
        tap(&router, 1, 0xFE20);
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[0x2B]), keys(SHIFT, &[]), keys(0, &[])]);
    }

    #[test]
    fn caps_lock_on_the_target_inverts_shift_for_letters_only() {
        let (sink, router) = router();
        sink.leds.send_replace(Some(led::CAPS_LOCK));
        tap(&router, 1, u32::from(b'a'));
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[A]), keys(SHIFT, &[]), keys(0, &[])]);
        tap(&router, 1, u32::from(b'A'));
        assert_eq!(sink.take(), [keys(0, &[A]), keys(0, &[])]);
        tap(&router, 1, u32::from(b'1'));
        assert_eq!(sink.take(), [keys(0, &[0x1E]), keys(0, &[])]);
    }

    #[test]
    fn other_modifiers_pass_through() {
        let (sink, router) = router();
        router.key(1, CONTROL_L, true);
        tap(&router, 1, u32::from(b'c'));
        router.key(1, CONTROL_L, false);
        assert_eq!(sink.take(), [keys(1, &[]), keys(1, &[0x06]), keys(1, &[]), keys(0, &[])]);
    }

    #[test]
    fn autorepeat_and_stray_releases_send_nothing() {
        let (sink, router) = router();
        router.key(1, u32::from(b'a'), true);
        router.key(1, u32::from(b'a'), true);
        router.key(1, u32::from(b'b'), false);
        router.key(2, u32::from(b'a'), false);
        assert_eq!(sink.take(), [keys(0, &[A])]);
    }

    #[test]
    fn unknown_keysyms_are_ignored() {
        let (sink, router) = router();
        tap(&router, 1, 0x20AC); // EuroSign
        tap(&router, 1, 0xFFFF_FFFF);
        assert!(sink.take().is_empty());
    }

    #[test]
    fn a_release_with_another_keysym_of_the_same_key_releases_it() {
        // xtightvncviewer typing fast: Shift goes up before the letter, so 'H' is released as 'h'.
        let (sink, router) = router();
        router.key(1, SHIFT_L, true);
        router.key(1, u32::from(b'H'), true);
        router.key(1, SHIFT_L, false);
        router.key(1, u32::from(b'h'), false);
        tap(&router, 1, u32::from(b'h'));
        const H: u8 = 0x0B;
        let expected = [keys(SHIFT, &[]), keys(SHIFT, &[H]), keys(0, &[H]), keys(0, &[]), keys(0, &[H]), keys(0, &[])];
        assert_eq!(sink.take(), expected);
        // "1!" likewise: '!' released as '1' lifts the key, so the next '1' is typed.
        router.key(1, u32::from(b'!'), true);
        router.key(1, u32::from(b'1'), false);
        tap(&router, 1, u32::from(b'1'));
        let expected =
            [keys(SHIFT, &[]), keys(SHIFT, &[ONE]), keys(SHIFT, &[]), keys(0, &[]), keys(0, &[ONE]), keys(0, &[])];
        assert_eq!(sink.take(), expected);
    }

    #[test]
    fn scancodes_are_keys_as_they_are() {
        let (sink, router) = router();
        // Shift (0x2A) then A (0x1E) by scancode: no faking, the keysym is not consulted.
        router.scancode_key(1, 0x2A, SHIFT_L, true);
        router.scancode_key(1, 0x1E, 0, true);
        router.scancode_key(1, 0x1E, 0, false);
        router.scancode_key(1, 0x2A, SHIFT_L, false);
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[A]), keys(SHIFT, &[]), keys(0, &[])]);
        // Right arrow is E0 4D, folded to 0xCD; a code with no key falls back to the keysym.
        router.scancode_key(1, 0xCD, 0, true);
        router.scancode_key(1, 0xCD, 0, false);
        router.scancode_key(1, 0xC5, u32::from(b'b'), true);
        router.scancode_key(1, 0xC5, u32::from(b'b'), false);
        assert_eq!(sink.take(), [keys(0, &[0x4F]), keys(0, &[]), keys(0, &[B]), keys(0, &[])]);
    }

    #[test]
    fn altgr_is_faked_for_keysyms_that_need_it() {
        let sink = Arc::new(RecordingSink::default());
        let router = InputRouter::new(sink.clone(), Layout::load("de").expect("xkb-data's de layout"));
        const ALTGR: u8 = 0x40;
        const Q: u8 = 0x14;
        tap(&router, 1, u32::from(b'@'));
        assert_eq!(sink.take(), [keys(ALTGR, &[]), keys(ALTGR, &[Q]), keys(ALTGR, &[]), keys(0, &[])]);
        // 'z' and 'y' trade places on a German keyboard.
        tap(&router, 1, u32::from(b'z'));
        assert_eq!(sink.take(), [keys(0, &[0x1C]), keys(0, &[])]);
    }

    #[test]
    fn ctrl_alt_shift_chords_are_for_kvnc_not_the_target() {
        let (sink, router) = router();
        for qnum in [0x1D, 0x38, 0x2A] {
            router.scancode_key(1, qnum, 0, true); // left Ctrl, Alt, Shift
        }
        sink.take();
        assert_eq!(router.scancode_key(1, 0x32, 0, true), Some(Chord::ToggleMouseMode)); // M
        assert_eq!(router.scancode_key(1, 0x2F, 0, true), Some(Chord::Paste)); // V
        router.scancode_key(1, 0x32, 0, false);
        assert!(sink.take().is_empty(), "chord keys never reach the target");
        // Without all three modifiers, V is a key again.
        router.scancode_key(1, 0x2A, 0, false);
        assert_eq!(router.scancode_key(1, 0x2F, 0, true), None);
        assert_eq!(sink.take(), [keys(0x05, &[]), keys(0x05, &[0x19])]);
        // What the toggle chord does: pointer events now move the boot mouse.
        router.toggle_mouse_mode();
        router.pointer(1, 0, 10, 10, 100, 100);
        router.pointer(1, 0, 12, 10, 100, 100);
        let mouse = MouseReport { dx: 2, ..Default::default() };
        assert_eq!(sink.take(), [HidReport::Mouse(mouse)]);
    }

    #[test]
    fn seven_keys_roll_over() {
        let (sink, router) = router();
        for key in b"abcdefg" {
            router.key(1, u32::from(*key), true);
        }
        assert_eq!(sink.take().last(), Some(&keys(0, &[0x01; 6])));
        router.key(1, u32::from(b'g'), false);
        assert_eq!(sink.take(), [keys(0, &[A, B, 0x06, 0x07, 0x08, 0x09])]);
    }

    #[test]
    fn release_viewer_releases_everything_it_holds() {
        let (sink, router) = router();
        router.key(1, CONTROL_L, true);
        router.key(1, u32::from(b'A'), true);
        router.key(1, u32::from(b'b'), true);
        router.pointer(1, rfb_button::LEFT | rfb_button::RIGHT, 0, 0, 100, 100);
        sink.take();
        router.release_viewer(1);
        let released = PointerReport { buttons: 0, x: 0, y: 0, wheel: 0, hwheel: 0 };
        assert_eq!(sink.take(), [keys(0, &[]), HidReport::Pointer(released)]);
        router.release_viewer(1);
        assert!(sink.take().is_empty());
    }

    #[test]
    fn viewers_share_the_keyboard() {
        let (sink, router) = router();
        router.key(1, u32::from(b'a'), true);
        router.key(2, u32::from(b'a'), true);
        router.key(2, u32::from(b'b'), true);
        assert_eq!(sink.take(), [keys(0, &[A]), keys(0, &[A, B])]);
        // Viewer 2 leaving must not lift the 'a' viewer 1 still holds.
        router.release_viewer(2);
        assert_eq!(sink.take(), [keys(0, &[A])]);
        router.key(1, u32::from(b'a'), false);
        assert_eq!(sink.take(), [keys(0, &[])]);
    }

    #[test]
    fn one_viewers_shift_is_the_targets_shift() {
        let (sink, router) = router();
        router.key(1, SHIFT_L, true);
        tap(&router, 2, u32::from(b'B'));
        router.release_viewer(1);
        assert_eq!(sink.take(), [keys(SHIFT, &[]), keys(SHIFT, &[B]), keys(SHIFT, &[]), keys(0, &[])]);
    }

    #[test]
    fn send_errors_do_not_stop_the_router() {
        let (sink, router) = router();
        sink.failing.store(true, Ordering::Relaxed);
        router.key(1, u32::from(b'a'), true);
        sink.failing.store(false, Ordering::Relaxed);
        router.key(1, u32::from(b'a'), false);
        assert_eq!(sink.take(), [keys(0, &[A]), keys(0, &[])]);
    }

    fn at(buttons: u8, x: u16, y: u16, wheel: i8) -> HidReport {
        HidReport::Pointer(PointerReport { buttons, x, y, wheel, hwheel: 0 })
    }

    #[test]
    fn pointer_scales_and_swaps_middle_and_right() {
        let (sink, router) = router();
        router.pointer(1, 0, 0, 0, 1280, 720);
        router.pointer(1, rfb_button::MIDDLE, 1279, 719, 1280, 720);
        router.pointer(1, rfb_button::RIGHT, 1279, 719, 1280, 720);
        router.pointer(1, rfb_button::RIGHT, 1279, 719, 1280, 720);
        let expected = [
            at(0, 0, 0, 0),
            at(hid_button::MIDDLE, POINTER_MAX, POINTER_MAX, 0),
            at(hid_button::RIGHT, POINTER_MAX, POINTER_MAX, 0),
        ];
        assert_eq!(sink.take(), expected);
    }

    #[test]
    fn wheel_clicks_become_steps() {
        let (sink, router) = router();
        router.pointer(1, 0, 10, 10, 21, 21);
        router.pointer(1, rfb_button::WHEEL_UP, 10, 10, 21, 21);
        router.pointer(1, 0, 10, 10, 21, 21);
        router.pointer(1, rfb_button::WHEEL_DOWN | rfb_button::LEFT, 10, 10, 21, 21);
        router.pointer(1, rfb_button::LEFT, 10, 10, 21, 21);
        let middle = 16383;
        let expected = [
            at(0, middle, middle, 0),
            at(0, middle, middle, 1),
            at(hid_button::LEFT, middle, middle, 0),
            at(hid_button::LEFT, middle, middle, -1),
        ];
        assert_eq!(sink.take(), expected);
    }

    #[test]
    fn relative_mode_moves_the_boot_mouse_in_steps_then_clicks() {
        let (sink, router) = router();
        router.set_mouse_mode(MouseMode::Relative);
        let mouse = |buttons, dx, dy, wheel| HidReport::Mouse(MouseReport { buttons, dx, dy, wheel });
        router.pointer(1, 0, 100, 100, 1280, 720);
        assert!(sink.take().is_empty(), "the first position only sets where the mouse is");
        router.pointer(1, rfb_button::LEFT, 400, 90, 1280, 720);
        let expected =
            [mouse(0, 127, -10, 0), mouse(0, 127, 0, 0), mouse(0, 46, 0, 0), mouse(hid_button::LEFT, 0, 0, 0)];
        assert_eq!(sink.take(), expected);
        router.pointer(1, rfb_button::LEFT | rfb_button::WHEEL_DOWN, 400, 90, 1280, 720);
        router.release_viewer(1);
        assert_eq!(sink.take(), [mouse(hid_button::LEFT, 0, 0, -1), mouse(0, 0, 0, 0)]);
    }

    #[test]
    fn buttons_of_all_viewers_are_merged() {
        let (sink, router) = router();
        router.pointer(1, rfb_button::LEFT, 0, 0, 2, 2);
        router.pointer(2, 0, 1, 1, 2, 2);
        router.pointer(1, 0, 0, 0, 2, 2);
        let expected =
            [at(hid_button::LEFT, 0, 0, 0), at(hid_button::LEFT, POINTER_MAX, POINTER_MAX, 0), at(0, 0, 0, 0)];
        assert_eq!(sink.take(), expected);
    }
}
