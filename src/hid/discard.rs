//! An input sink for sources with no target behind them (replays): reports are dropped.

use tokio::sync::watch;

use super::{HidReport, InputSink};

pub struct DiscardSink {
    /// Never changes: there is no host to set LEDs.
    leds: watch::Receiver<Option<u8>>,
}

impl DiscardSink {
    pub fn new() -> Self {
        Self { leds: watch::channel(None).1 }
    }
}

impl Default for DiscardSink {
    fn default() -> Self {
        Self::new()
    }
}

impl InputSink for DiscardSink {
    fn send_report(&self, report: &HidReport) -> anyhow::Result<()> {
        tracing::debug!("no target to receive {report:?}");
        Ok(())
    }

    fn leds(&self) -> watch::Receiver<Option<u8>> {
        self.leds.clone()
    }
}
