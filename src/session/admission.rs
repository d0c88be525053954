//! Admission: how many connections are open, in total and per admin, and a slot per connection.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::SubscribeError;
use crate::auth::Principal;

/// Counts open connections against `limits.max_connections` and, per admin,
/// `limits.max_connections_per_actor` (one runaway tab loop must not starve everyone else).
#[derive(Debug)]
pub(crate) struct Admission {
    open: Mutex<OpenConnections>,
    max_total: usize,
    max_per_actor: usize,
    /// Woken whenever the last open connection closes (shutdown waits on it).
    idle: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_actor: HashMap<String, usize>,
}

impl Admission {
    pub(crate) fn new(max_total: usize, max_per_actor: usize) -> Self {
        Self {
            open: Mutex::new(OpenConnections::default()),
            max_total,
            max_per_actor,
            idle: tokio::sync::Notify::new(),
        }
    }

    pub(super) fn enter(
        self: &Arc<Self>,
        principal: &Arc<Principal>,
    ) -> Result<Slot, SubscribeError> {
        let actor_id = &principal.actor_id;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(SubscribeError::Full);
        }
        let mine = open.per_actor.entry(actor_id.to_owned()).or_default();
        if *mine >= self.max_per_actor {
            return Err(SubscribeError::TooManyForActor);
        }
        *mine += 1;
        open.total += 1;
        Ok(Slot {
            admission: Arc::clone(self),
            principal: Arc::clone(principal),
        })
    }

    /// Open connections right now.
    pub(crate) fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Resolves once no connection is open.
    pub(crate) async fn all_closed(&self) {
        loop {
            // Registered before the check, so a close in between still wakes it.
            let idle = self.idle.notified();
            if self.open() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// A held connection slot; dropping it frees the slot, whichever way the connection ended.
#[derive(Debug)]
pub(super) struct Slot {
    admission: Arc<Admission>,
    /// Shared with the connection: its admin's id, without a copy of its own.
    principal: Arc<Principal>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if open.total == 0 {
            self.admission.idle.notify_waiters();
        }
        let actor_id = &self.principal.actor_id;
        if let Some(mine) = open.per_actor.get_mut(actor_id) {
            *mine -= 1;
            if *mine == 0 {
                open.per_actor.remove(actor_id);
            }
        }
    }
}
