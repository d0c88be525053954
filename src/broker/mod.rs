//! The broker: the ordered log the hub publishes into and hears committed events back from.
//!
//! The hub owns one [`Broker`] and never asks how it works. `publish` takes validated events (and,
//! optionally, an idempotency key) and returns their ids once the log has them; separately, the
//! broker sends the hub a stream of [`Notice`]s: events it committed, in id order, and "the history
//! starts anew here" resets. Publishing and hearing back are deliberately two paths: in Redis mode
//! the events an instance hears include those every other instance published.
//!
//! - [`memory`]: one process; ids are `<boot ms>-<seq>`.
//! - [`redis`]: a Redis stream several instances share.
//!
//! Dependencies point one way: the broker knows the catalog (to re-validate what it reads from
//! Redis) and the protocol's ids, never the hub.

pub(crate) mod memory;
pub(crate) mod redis;

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::{
    catalog::PendingEvent,
    idempotency::IdempotencyKey,
    protocol::{EventId, ResyncReason},
};

/// Notices queued between a broker and the hub; a broker waits (backpressure) beyond it.
pub(crate) const NOTICE_QUEUE: usize = 1024;

/// Wall-clock milliseconds: the memory broker's epoch, and the yardstick for stream ids' clocks.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How a publish may be qualified.
#[derive(Debug, Default)]
pub(crate) struct PublishOptions {
    /// A repeat of a key within its TTL publishes nothing and gets the first publish's ids.
    pub(crate) idempotency_key: Option<IdempotencyKey>,
}

/// What a publish achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Published {
    pub(crate) ids: Vec<EventId>,
    /// False when an idempotency key matched: the ids are the first publish's, nothing was added.
    pub(crate) appended: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BrokerError {
    /// Nothing was published, and nothing will be.
    #[error("the event log cannot accept events")]
    Unavailable(#[source] redis::LinkError),
    /// The append went out and no answer came back in time. It cannot take effect late (it
    /// carries a deadline); it was published only if Redis ran it in time and the answer was lost.
    #[error("the event log did not confirm the append in time")]
    OutcomeUnknown(#[source] redis::LinkError),
    #[error("a request with this Idempotency-Key is still in progress")]
    InProgress,
    #[error("the broker has stopped")]
    Stopped,
}

impl From<redis::LinkError> for BrokerError {
    fn from(error: redis::LinkError) -> Self {
        match error {
            redis::LinkError::NoAnswer(_) => BrokerError::OutcomeUnknown(error),
            other => BrokerError::Unavailable(other),
        }
    }
}

/// One committed event: its id and its validated (not yet rendered) content.
#[derive(Debug)]
pub(crate) struct Committed {
    pub(crate) id: EventId,
    pub(crate) event: PendingEvent,
}

/// What a broker tells the hub.
#[derive(Debug)]
pub(crate) enum Notice {
    /// Events the log committed, in id order; ids at or below what the hub holds are re-reads.
    Committed(Vec<Committed>),
    /// The log was (re)loaded: its history replaces the hub's. `floor` is the id just before the
    /// first event; with a `reason`, open connections are told to resync. `applied` is answered
    /// once the hub holds the new history, so the broker reports healthy only after that.
    Reset {
        floor: EventId,
        events: Vec<Committed>,
        reason: Option<ResyncReason>,
        applied: oneshot::Sender<()>,
    },
}

/// The receiving end the hub drains.
pub(crate) type Notices = mpsc::Receiver<Notice>;

#[derive(Debug)]
pub(crate) enum Broker {
    Memory(memory::MemoryBroker),
    Redis(redis::RedisBroker),
}

impl Broker {
    /// The id a fresh hub's history starts from (resuming from it replays everything).
    pub(crate) fn floor(&self) -> EventId {
        match self {
            Broker::Memory(memory) => memory.floor(),
            // Unknown until the reader has loaded the stream, which resets the hub.
            Broker::Redis(_) => EventId::ZERO,
        }
    }

    /// Publishes `events` in order; returns their ids once the log has durably accepted them.
    pub(crate) async fn publish(
        &self,
        events: Vec<PendingEvent>,
        options: PublishOptions,
    ) -> Result<Published, BrokerError> {
        match self {
            Broker::Memory(memory) => memory.publish(events, options).await,
            Broker::Redis(redis) => redis.publish(events, options).await,
        }
    }

    /// Whether an id the hub has not heard of yet may still arrive as a notice (so a resume from
    /// it is worth a short wait rather than an immediate gap).
    pub(crate) fn may_deliver(&self, id: EventId) -> bool {
        match self {
            Broker::Memory(memory) => memory.issued(id),
            Broker::Redis(redis) => redis.may_deliver(id),
        }
    }

    /// Whether publishing can currently succeed; the reason when it cannot.
    pub(crate) fn health(&self) -> Result<(), String> {
        match self {
            Broker::Memory(_) => Ok(()),
            Broker::Redis(redis) => redis.health(),
        }
    }
}
