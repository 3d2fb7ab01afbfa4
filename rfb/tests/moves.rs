//! The moved-area search on the repo's recorded screens: every step of the dragged window,
//! forwards and backwards, is found as the whole window and is exact.

mod support {
    pub mod fixtures;
}

use rfb::damage::DamageDetector;
use rfb::moves::find_move;
use support::fixtures;

/// The window of `desktop-moving-window` (360x240 px).
const WINDOW_AREA: usize = 360 * 240;

#[test]
fn every_drag_of_the_window_is_found_both_ways() {
    let frames: Vec<_> = (0..10)
        .map(|i| fixtures::load(&format!("sequences/desktop-moving-window/{i:03}.png"), u16::MAX, u16::MAX))
        .collect();
    let mut missed = Vec::new();
    for (i, pair) in frames.windows(2).enumerate() {
        for (old, new, step) in [(&pair[0], &pair[1], (i, i + 1)), (&pair[1], &pair[0], (i + 1, i))] {
            let mut detector = DamageDetector::new();
            detector.compare(old);
            let damage = detector.compare(new);
            let Some(found) = find_move(old, new, &damage).filter(|m| m.dst.area() >= WINDOW_AREA) else {
                missed.push((step, find_move(old, new, &damage), damage.area(), damage.rects().len()));
                continue;
            };
            let src = found.src();
            for row in 0..found.dst.height {
                let moved = new.row(&found.dst, row);
                assert_eq!(moved, old.row(&src, row), "{found:?}: row {row} differs from its source");
            }
        }
    }
    assert!(missed.is_empty(), "the whole window's move was not found from frame to frame {missed:?}");
}
