//! A viewer that stops reading for 30 s neither grows kvnc's memory past a bound nor slows
//! another viewer's updates. Alone in its test binary so no other test competes for the CPU.

use std::io::Write;
use std::time::{Duration, Instant};

use frames::{pattern, replay_dir};
use kvnc_test_support::{frames, raw_client, viewers};
use raw_client::RawClient;
use viewers::{KvncServer, RgbImage};

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");

/// Updates `viewer` receives in `window`, each asked for incrementally.
fn updates_within(viewer: &mut RawClient, window: Duration, mut meanwhile: impl FnMut()) -> usize {
    let started = Instant::now();
    let mut updates = 0;
    while started.elapsed() < window {
        meanwhile();
        viewer.request_update(true);
        viewer.read_raw_update();
        updates += 1;
    }
    updates
}

#[test]
fn a_stalled_viewer_neither_grows_memory_nor_slows_others() {
    // Whole-frame changes ten times a second.
    let frames: Vec<RgbImage> = (0..4).map(|i| pattern(960, 540, i * 40)).collect();
    let dir = replay_dir(&frames);
    let source = format!("replay:{}", dir.path().display());
    let server = KvncServer::start(KVNC, &["serve", "--source", &source, "--fps", "10"]);
    let mut active = RawClient::connect(&server.addr());
    active.request_update(false);
    active.read_raw_update();
    let alone = updates_within(&mut active, Duration::from_secs(10), || {});
    let rss_before = server.rss_kib();

    // A second viewer keeps asking for updates and never reads them, for 30 s.
    let mut stalled = RawClient::connect(&server.addr());
    // (After about 25 s without reading, the server may drop it: TCP's user timeout also ends
    // a connection whose receive window stays closed. That is fine here; it must simply not
    // hurt the active viewer before or after.)
    let with_stalled = updates_within(&mut active, Duration::from_secs(30), || {
        let _ = stalled.try_request_update(true).and_then(|()| stalled.stream.flush());
    }) / 3;
    let rss_after = server.rss_kib();
    let growth_mib = rss_after.saturating_sub(rss_before) / 1024;
    // Bound: one pending update per viewer (2 MiB at Raw 960x540) plus buffers and slack.
    assert!(growth_mib <= 32, "kvnc grew by {growth_mib} MiB ({rss_before} -> {rss_after} KiB)");
    assert!(
        with_stalled >= 20 && with_stalled * 2 >= alone,
        "the active viewer slowed down: {alone} updates per 10 s alone, {with_stalled} with a stalled viewer"
    );
    drop(stalled);
}
