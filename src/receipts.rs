//! Screen-refresh receipts: a tab saying "my screen now shows event X", so an operator can see how
//! fresh the admins' screens really are, not only when the service wrote to a socket.
//!
//! The tab sends the receipt when the refetch the event caused has completed (the Medusa plugin
//! does this for a share of events); the service looks the id up in its history and observes the
//! time from its hub taking the event in to the receipt's arrival, by event name and transport
//! (`admin_push_screen_refresh_seconds`). Both labels come from the service's own event and
//! connection, never from the client, so no receipt can add a label value; an id the history does
//! not hold is not counted. Nothing here touches the fan-out path: receipts cost only when they
//! arrive, and the share of tabs asked for them is bounded by `receipts.sample_tabs`.
//!
//! That share is announced, not fixed when a tab connects: the connections' clock reconsiders it
//! every second, and every connection is told a new rate on its next tick (`receipt_rate`). It
//! changes only when the ideal one is twice or half the announced one (or back to all), so tabs
//! coming and going near a threshold cost no stream of announcements, and the tabs sending
//! receipts stay between half and twice `receipts.sample_tabs`.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use serde::Deserialize;

use crate::{
    hub::Hub,
    metrics::Metrics,
    protocol::{EventId, TransportKind},
    settings::ReceiptSettings,
};

/// A receipt frame's content; other fields are ignored, like anything a client may grow.
#[derive(Debug, Deserialize)]
pub(crate) struct Receipt {
    /// The event's id, as delivered.
    pub(crate) id: String,
}

/// A receipt for an id the history does not hold (any more, or ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnknownEvent;

/// Where receipts are counted, and the share of events tabs are asked for them. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Receipts {
    hub: Hub,
    metrics: Metrics,
    sample_tabs: usize,
    /// The announced rate, as `f64` bits.
    announced: Arc<AtomicU64>,
}

impl Receipts {
    pub(crate) fn new(hub: Hub, metrics: Metrics, settings: &ReceiptSettings) -> Self {
        Self {
            hub,
            metrics,
            sample_tabs: settings.sample_tabs,
            announced: Arc::new(AtomicU64::new(ideal(settings.sample_tabs, 0).to_bits())),
        }
    }

    /// The share of events a connection should send receipts for now (0 to 1).
    pub(crate) fn rate(&self) -> f64 {
        f64::from_bits(self.announced.load(Ordering::Relaxed))
    }

    /// The rate, when it is not the one a connection last told its client (`told`, then updated).
    pub(crate) fn news(&self, told: &mut f64) -> Option<f64> {
        let rate = self.rate();
        (rate.to_bits() != told.to_bits()).then(|| {
            *told = rate;
            rate
        })
    }

    /// Announces a new rate when the open connections moved the ideal one to twice or half the
    /// announced one, or back to all of them. Called by the connections' clock, once a second.
    pub(crate) fn reconsider(&self) {
        let ideal = ideal(self.sample_tabs, self.metrics.open_connections());
        let rate = announce(self.rate(), ideal);
        self.announced.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Counts a receipt for event `id` arriving now on `transport`.
    pub(crate) fn take(&self, transport: TransportKind, id: &str) -> Result<(), UnknownEvent> {
        let event = id
            .parse::<EventId>()
            .ok()
            .and_then(|id| self.hub.event(id))
            .ok_or(UnknownEvent)?;
        self.metrics
            .screen_refreshed(event.name.as_str(), transport, event.received.elapsed());
        Ok(())
    }
}

/// The share with which `open` connections send about `sample_tabs` of them: all of them while
/// fewer are open; 0 when `sample_tabs` is 0.
fn ideal(sample_tabs: usize, open: i64) -> f64 {
    (sample_tabs as f64 / open.max(1) as f64).min(1.0)
}

/// The rate to announce, given the `announced` one and the `ideal` one now.
fn announce(announced: f64, ideal: f64) -> f64 {
    let moved = ideal >= 2.0 * announced || ideal <= announced / 2.0;
    if moved || ideal == 1.0 {
        ideal
    } else {
        announced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_all_while_fewer_tabs_than_the_sample_are_open() {
        assert_eq!(ideal(100, 0), 1.0);
        assert_eq!(ideal(100, 100), 1.0);
        assert_eq!(ideal(100, 400), 0.25);
        assert_eq!(ideal(0, 10), 0.0);
    }

    #[test]
    fn the_announced_rate_moves_only_by_half_or_double_or_back_to_all() {
        assert_eq!(announce(1.0, 0.6), 1.0, "a little over the sample: no news");
        assert_eq!(announce(1.0, 0.5), 0.5);
        assert_eq!(announce(0.5, 0.3), 0.5);
        assert_eq!(announce(0.5, 0.25), 0.25);
        assert_eq!(announce(0.25, 0.4), 0.25, "a few tabs closing: no news");
        assert_eq!(announce(0.25, 0.5), 0.5);
        assert_eq!(announce(0.5, 1.0), 1.0, "below the sample again: all");
        assert_eq!(announce(0.6, 1.0), 1.0);
        assert_eq!(announce(0.0, 0.0), 0.0);
    }
}
