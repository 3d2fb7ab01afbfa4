//! An input sink for sources with no target behind them (replays): reports are dropped.

use super::{HidReport, InputSink};

pub struct DiscardSink;

impl InputSink for DiscardSink {
    fn send_report(&self, report: &HidReport) -> anyhow::Result<()> {
        tracing::debug!("no target to receive {report:?}");
        Ok(())
    }

    fn led_state(&self) -> u8 {
        0
    }
}
