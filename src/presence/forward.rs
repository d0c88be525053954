//! What an SSE tab says about itself arrives over HTTP, and with several instances behind a
//! balancer it may reach one that does not hold the tab's stream. That instance forwards a
//! presence report on the backplane instead of refusing it: the one holding the connection takes
//! it as if it had arrived there, under the connection's own limits, and the rest ignore it.
//! (A receipt needs no forwarding: every instance reads the same events, so it is counted where
//! it lands.)
//!
//! The receiving instance knows nothing of a connection it does not hold, so what one admin may
//! forward through it (or have counted there) is bounded per admin, by the same per-second limits
//! a connection has. A client that numbers its reports (`seq`) cannot have an older one, still on
//! its way through the backplane, undo a newer one that reached the holder directly.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Report;
use crate::protocol::ConnectionId;

/// A report made by `actor_id` for a connection another instance may hold.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Forward {
    pub(super) connection: ConnectionId,
    pub(super) actor_id: String,
    pub(super) records: Report,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) seq: Option<u64>,
}

/// What an admin spent of their allowance.
#[derive(Debug, Clone, Copy)]
pub(super) enum Spent {
    Report,
    Receipt,
}

/// What each admin did through this instance this second, for connections it does not hold:
/// `[reports, receipts]`. Emptied every second, so it holds only the admins who did something in
/// the last one.
#[derive(Debug, Default)]
pub(super) struct Allowance {
    by_actor: HashMap<String, [u32; 2]>,
}

impl Allowance {
    /// Spends one of `actor_id`'s reports or receipts; `false` once `limit` were spent this second.
    pub(super) fn spend(&mut self, actor_id: &str, spent: Spent, limit: u32) -> bool {
        let used = match self.by_actor.get_mut(actor_id) {
            Some(used) => used,
            None => self.by_actor.entry(actor_id.to_owned()).or_default(),
        };
        let used = &mut used[spent as usize];
        if *used >= limit {
            return false;
        }
        *used += 1;
        true
    }

    pub(super) fn renew(&mut self) {
        self.by_actor = HashMap::new();
    }
}
