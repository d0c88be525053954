//! What an SSE tab says about itself (presence reports, receipts) arrives over HTTP, and with
//! several instances behind a balancer it may reach one that does not hold the tab's stream. That
//! instance forwards it on the backplane instead of refusing it: the one holding the connection
//! takes it as if it had arrived there, under the connection's own limits, and the rest ignore it.
//!
//! The forwarding instance knows nothing of the connection, so what it may forward is bounded per
//! admin, by the same per-second limits a connection has; it answers `202 Accepted` once the
//! backplane has the message. A refusal by the holding instance reaches the tab on its stream
//! (`presence_refused`) or, for a receipt, only the metrics, as for a WebSocket frame.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Report;
use crate::{protocol::ConnectionId, rate::Budget};

/// A report or receipt for a connection another instance may hold, made by `actor_id`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Forward {
    Report {
        connection: ConnectionId,
        actor_id: String,
        records: Report,
    },
    Receipt {
        connection: ConnectionId,
        actor_id: String,
        id: String,
    },
}

impl Forward {
    pub(super) fn connection(&self) -> ConnectionId {
        match self {
            Forward::Report { connection, .. } | Forward::Receipt { connection, .. } => *connection,
        }
    }
}

/// What each admin may still forward through this instance this second: `[reports, receipts]`.
/// Emptied every second, so it holds only the admins who forwarded something in the last one.
#[derive(Debug, Default)]
pub(super) struct Allowance {
    by_actor: HashMap<String, [Budget; 2]>,
}

impl Allowance {
    /// Spends one of `actor_id`'s reports (or receipts); `false` when this second's are used up.
    pub(super) fn spend(&mut self, actor_id: &str, receipt: bool, limits: [u32; 2]) -> bool {
        let budgets = self
            .by_actor
            .entry(actor_id.to_owned())
            .or_insert_with(|| limits.map(Budget::new));
        budgets[usize::from(receipt)].spend()
    }

    pub(super) fn renew(&mut self) {
        self.by_actor = HashMap::new();
    }
}
