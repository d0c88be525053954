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

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReceiptError {
    #[error("the history holds no event with this id")]
    UnknownEvent,
}

#[derive(Debug)]
pub(crate) struct Receipts {
    hub: Hub,
    metrics: Metrics,
    sample_tabs: usize,
}

impl Receipts {
    pub(crate) fn new(hub: Hub, metrics: Metrics, settings: &ReceiptSettings) -> Self {
        Self {
            hub,
            metrics,
            sample_tabs: settings.sample_tabs,
        }
    }

    /// The share of events a connection opening now should send receipts for: all of them while
    /// fewer than `receipts.sample_tabs` connections are open, so that about that many send them.
    pub(crate) fn rate(&self) -> f64 {
        let open = self.metrics.open_connections().max(1);
        (self.sample_tabs as f64 / open as f64).min(1.0)
    }

    /// Counts a receipt for event `id` arriving now on `transport`.
    pub(crate) fn take(&self, transport: TransportKind, id: &str) -> Result<(), ReceiptError> {
        let event = id
            .parse::<EventId>()
            .ok()
            .and_then(|id| self.hub.event(id))
            .ok_or(ReceiptError::UnknownEvent)?;
        self.metrics
            .screen_refreshed(event.name.as_str(), transport, event.received.elapsed());
        Ok(())
    }
}

impl ReceiptError {
    pub(crate) fn code(self) -> &'static str {
        match self {
            ReceiptError::UnknownEvent => "unknown_event",
        }
    }
}
