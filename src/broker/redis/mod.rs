//! The Redis Streams broker: how several instances share one ordered, durable event log.
//!
//! Publishing appends to one stream (`XADD <stream_key> MAXLEN ~ <history>`); the stream assigns the
//! id, so ids are global and ordered. Every instance runs one [`reader`] that follows the stream
//! with `XREAD BLOCK` from the last id it saw and sends what it reads to its hub, so each
//! instance's history mirrors the stream and a resume id from any instance works on any other. A
//! stream, not pub/sub: after a dropped connection the reader continues from its last id and
//! nothing is skipped.
//!
//! A keyed publish is one Lua script (check the key, append, record the ids), so a retry after a
//! timeout or an outage publishes exactly once, whichever instance it lands on.

mod link;
mod reader;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) use link::{Link, LinkError};

use super::{BrokerError, NOTICE_QUEUE, Notices, PublishOptions, Published, unix_ms};
use crate::{catalog::Catalog, catalog::PendingEvent, protocol::EventId, settings::HubSettings};

/// Stream ids carry the Redis server's clock; ids further ahead than this are not worth a wait.
const MAX_SKEW_MS: u64 = 5_000;

/// `KEYS[1]` stream, `KEYS[2]` idempotency key, `ARGV[1]` MAXLEN, `ARGV[2]` TTL, then event name /
/// data pairs. Returns `{1, "id,id,…"}` when it appended, `{0, …}` for a repeat.
const APPEND_ONCE: &str = "local done = redis.call('GET', KEYS[2]) \
     if done then return {0, done} end \
     local ids = {} \
     for i = 3, #ARGV, 2 do \
       ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[i], 'data', ARGV[i + 1]) \
     end \
     local joined = table.concat(ids, ',') \
     redis.call('SET', KEYS[2], joined, 'EX', ARGV[2]) \
     return {1, joined}";

/// Stream entry fields.
const FIELD_EVENT: &str = "event";
const FIELD_DATA: &str = "data";
const FIELD_EPOCH: &str = "epoch";

#[derive(Debug)]
pub(crate) struct RedisBroker {
    link: Link,
    history: usize,
    idempotency_ttl: Duration,
    health: Arc<Health>,
}

/// Whether the reader is following the stream, and why not when it is not.
#[derive(Debug)]
struct Health {
    up: AtomicBool,
    last_error: Mutex<String>,
}

impl Health {
    fn set_up(&self) {
        self.up.store(true, Ordering::Relaxed);
    }

    fn set_down(&self, error: &LinkError) {
        let mut message = error.to_string();
        if let LinkError::Redis(cause) = error {
            message = format!("{message}: {cause}");
        }
        tracing::warn!(error = %message, "backplane reader lost redis; reconnecting");
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = message;
        self.up.store(false, Ordering::Relaxed);
    }

    fn check(&self) -> Result<(), String> {
        if self.up.load(Ordering::Relaxed) {
            return Ok(());
        }
        let reason = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        Err(format!("backplane unavailable: {reason}"))
    }
}

impl RedisBroker {
    /// Starts following the stream (until `shutdown`); the notices go to the hub.
    pub(crate) fn start(
        link: Link,
        settings: &HubSettings,
        idempotency_ttl: Duration,
        catalog: Catalog,
        shutdown: CancellationToken,
    ) -> (Self, Notices) {
        let (notices, receiver) = mpsc::channel(NOTICE_QUEUE);
        let health = Arc::new(Health {
            up: AtomicBool::new(false),
            last_error: Mutex::new("not connected to redis yet".to_owned()),
        });
        let reader = reader::Reader::new(
            link.clone(),
            settings.history,
            catalog,
            Arc::clone(&health),
            notices,
        );
        tokio::spawn(reader.run(shutdown));
        let broker = Self {
            link,
            history: settings.history,
            idempotency_ttl,
            health,
        };
        (broker, receiver)
    }

    pub(crate) async fn publish(
        &self,
        events: Vec<PendingEvent>,
        options: PublishOptions,
    ) -> Result<Published, BrokerError> {
        Ok(match options.idempotency_key {
            None => Published {
                ids: self.append(&events).await?,
                appended: true,
            },
            Some(key) => self.append_once(key.as_str(), &events).await?,
        })
    }

    /// Appends events in order, atomically; returns their stream ids once Redis has them.
    async fn append(&self, events: &[PendingEvent]) -> Result<Vec<EventId>, LinkError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for event in events {
            pipe.cmd("XADD")
                .arg(self.link.stream_key())
                .arg("MAXLEN")
                .arg("~")
                .arg(self.history)
                .arg("*")
                .arg(FIELD_EVENT)
                .arg(event.name.as_str())
                .arg(FIELD_DATA)
                .arg(&*event.data);
        }
        let ids: Vec<String> = self.link.run(&pipe).await?;
        ids.iter().map(|id| link::parse_id(id)).collect()
    }

    /// Appends a batch under an idempotency key, atomically (one Lua script): the first call appends
    /// and records the ids for the TTL; any later call with the key returns those ids and appends
    /// nothing. No state is ever "in flight", so a retry after a timeout can neither publish twice
    /// nor be refused: either the script ran (its ids are recorded) or it did not (the retry runs
    /// it).
    async fn append_once(
        &self,
        key: &str,
        events: &[PendingEvent],
    ) -> Result<Published, LinkError> {
        let mut pipe = redis::pipe();
        let eval = pipe
            .cmd("EVAL")
            .arg(APPEND_ONCE)
            .arg(2)
            .arg(self.link.stream_key())
            .arg(self.link.key("idempotency", key))
            .arg(self.history)
            .arg(self.idempotency_ttl.as_secs());
        for event in events {
            eval.arg(event.name.as_str()).arg(&*event.data);
        }
        let ((appended, ids),): ((i64, String),) = self.link.run(&pipe).await?;
        Ok(Published {
            ids: ids
                .split(',')
                .map(link::parse_id)
                .collect::<Result<_, _>>()?,
            appended: appended == 1,
        })
    }

    /// Only an id the reader could still deliver is worth waiting for: it is following the
    /// stream, and the id is not from the future (garbage, another stream, a skewed clock).
    pub(crate) fn may_deliver(&self, id: EventId) -> bool {
        self.health.check().is_ok() && id.ms <= unix_ms().saturating_add(MAX_SKEW_MS)
    }

    pub(crate) fn health(&self) -> Result<(), String> {
        self.health.check()
    }
}
