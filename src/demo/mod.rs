//! The built-in demo target: a simulated machine behind the KVM, used when there is no hardware.
//!
//! It is both the frame source and the input sink: HID reports go in, it updates its state like
//! a USB host would (see [`DemoState`]), and a render task draws its screen. Rendering is
//! coalesced: reports only update the state and wake the task, which draws at most once per
//! [`MIN_FRAME_INTERVAL`] and otherwise once a second for the clock.

mod console;
pub mod layout;
mod render;
mod state;
mod us_layout;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};

pub use self::console::{BANNER, Console};
pub use self::render::{render, status_text};
pub use self::state::{DemoState, PointerState, WheelDirection};
use crate::hid::{HidReport, InputSink};
use crate::source::{FramePublisher, FrameSource, Picture, SourceFrame};

/// The shortest time between two frames; a burst of reports within it makes one frame.
pub const MIN_FRAME_INTERVAL: Duration = Duration::from_millis(10);

pub struct DemoTarget {
    state: Mutex<DemoState>,
    /// Wakes the render task after a report changed the state.
    changed: Arc<Notify>,
    frames: FramePublisher,
    /// The LEDs the simulated host sets, as a real host would through SET_REPORT.
    leds: watch::Sender<Option<u8>>,
}

impl DemoTarget {
    /// Creates the target with its first frame already published and spawns its render task,
    /// which ends once the target is dropped. Must be called inside a tokio runtime.
    pub fn start() -> Arc<Self> {
        let state = DemoState::new();
        let clock = clock_text(SystemTime::now());
        let first = render(&state, &clock);
        let target = Arc::new(Self {
            state: Mutex::new(state.clone()),
            changed: Arc::new(Notify::new()),
            frames: FramePublisher::new(Picture::Pixels(first)),
            leds: watch::channel(Some(0)).0,
        });
        tokio::spawn(render_loop(Arc::downgrade(&target), target.changed.clone(), (state, clock)));
        target
    }

    /// A copy of the simulated machine's current state.
    pub fn snapshot(&self) -> DemoState {
        self.lock_state().clone()
    }

    fn lock_state(&self) -> MutexGuard<'_, DemoState> {
        // DemoState's methods cannot leave it half-updated, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FrameSource for DemoTarget {
    fn frames(&self) -> watch::Receiver<Arc<SourceFrame>> {
        self.frames.subscribe()
    }

    fn status(&self) -> crate::source::SourceStatus {
        crate::source::SourceStatus { source: "demo".into(), signal: true, ..Default::default() }
    }
}

impl InputSink for DemoTarget {
    fn send_report(&self, report: &HidReport) -> anyhow::Result<()> {
        let leds = {
            let mut state = self.lock_state();
            state.apply(report);
            state.leds()
        };
        self.leds.send_if_modified(|current| current.replace(leds) != Some(leds));
        self.changed.notify_one();
        Ok(())
    }

    fn leds(&self) -> watch::Receiver<Option<u8>> {
        self.leds.subscribe()
    }
}

/// Redraws whenever the state or the clock changed. Holds the target only while drawing, so
/// that dropping the last outside reference ends the task (as does a runtime shutting down).
async fn render_loop(target: Weak<DemoTarget>, changed: Arc<Notify>, mut shown: (DemoState, String)) {
    loop {
        tokio::time::sleep(MIN_FRAME_INTERVAL).await;
        tokio::select! {
            () = changed.notified() => {}
            () = tokio::time::sleep(until_next_second(SystemTime::now())) => {}
        }
        let Some(target) = target.upgrade() else { return };
        let now = (target.snapshot(), clock_text(SystemTime::now()));
        if now != shown {
            let (state, clock) = now.clone();
            // A full screen of text takes milliseconds (tens in debug builds): keep it off the
            // runtime's worker threads.
            let Ok(frame) = tokio::task::spawn_blocking(move || render(&state, &clock)).await else { return };
            target.frames.publish(Picture::Pixels(frame));
            shown = now;
        }
    }
}

/// UTC time of day as "HH:MM:SS".
pub fn clock_text(now: SystemTime) -> String {
    let seconds = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

fn until_next_second(now: SystemTime) -> Duration {
    let into_second = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    Duration::from_nanos(u64::from(1_000_000_000 - into_second))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hid::KeyboardReport;

    #[test]
    fn clock() {
        let at = |seconds| SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        assert_eq!(clock_text(at(0)), "00:00:00");
        assert_eq!(clock_text(at(86_399)), "23:59:59");
        assert_eq!(clock_text(at(86_400 * 365 + 3600 * 13 + 60 * 7 + 9)), "13:07:09");
        let half_past = SystemTime::UNIX_EPOCH + Duration::from_millis(1500);
        assert_eq!(until_next_second(half_past), Duration::from_millis(500));
    }

    #[tokio::test]
    async fn reports_become_frames() {
        let target = DemoTarget::start();
        let mut frames = target.frames();
        let first = frames.borrow_and_update().clone();
        assert_eq!((first.width(), first.height()), (layout::WIDTH, layout::HEIGHT));

        let key = |keys| HidReport::Keyboard(KeyboardReport { modifiers: 0, keys });
        target.send_report(&key([0x04, 0, 0, 0, 0, 0])).unwrap();
        target.send_report(&key([0; 6])).unwrap();
        frames.changed().await.unwrap();
        let typed = frames.borrow_and_update().clone();
        assert!(typed.generation > first.generation);
        let state = target.snapshot();
        assert_eq!(state.console().lines().nth(2), Some("a"));
        // The frame was drawn a moment ago: its clock shows now or the second before.
        let now = SystemTime::now();
        let clocks = [now, now - Duration::from_secs(1)].map(clock_text);
        assert!(clocks.iter().any(|clock| typed.pixels() == Ok(&render(&state, clock))));
        assert_eq!(target.led_state(), 0);
    }

    #[tokio::test]
    async fn the_render_task_ends_with_the_target() {
        let target = DemoTarget::start();
        let changed = target.changed.clone();
        drop(target);
        changed.notify_one();
        for _ in 0..100 {
            if Arc::strong_count(&changed) == 1 {
                return;
            }
            tokio::time::sleep(MIN_FRAME_INTERVAL).await;
        }
        panic!("the render task still holds its handle");
    }
}
