//! The Redis Streams broker: how several instances share one ordered, durable event log.
//!
//! Publishing appends to one stream (`XADD <stream_key> MAXLEN ~ <history>`); the stream assigns the
//! id, so ids are global and ordered. Every instance runs one [`reader`] that follows the stream
//! with `XREAD BLOCK` from the last id it saw and sends what it reads to its hub, so each
//! instance's history mirrors the stream and a resume id from any instance works on any other. A
//! stream, not pub/sub: after a dropped connection the reader continues from its last id and
//! nothing is skipped.
//!
//! Every publish is one Lua script that checks its deadline against Redis's own clock before it
//! does anything, so an append whose caller has given up (a stall, a lost reply) can never be
//! published late, when its caller has already been told it failed and may retry. A keyed publish
//! also checks and records its key in that script, so a retry publishes exactly once, whichever
//! instance it lands on.

mod connector;
mod link;
mod reader;
mod switches;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) use connector::{Connector, ConnectorError};
pub(crate) use link::{Link, LinkError};

use super::{BrokerError, NOTICE_QUEUE, Notices, PublishOptions, Published, unix_ms};
use crate::{catalog::Catalog, catalog::PendingEvent, protocol::EventId, settings::HubSettings};

/// Stream ids carry the Redis server's clock; ids further ahead than this are not worth a wait.
const MAX_SKEW_MS: u64 = 5_000;

/// `KEYS[1]` stream, optional `KEYS[2]` idempotency key; `ARGV[1]` deadline (Redis unix ms),
/// `ARGV[2]` MAXLEN, `ARGV[3]` key TTL, then event name / data pairs. Returns `{1, "id,id,…"}`
/// when it appended, `{0, …}` for a repeat of the key, `{-1, ""}` past the deadline (nothing done).
const APPEND: &str = "local now = redis.call('TIME') \
     if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[1]) then \
       return {-1, ''} end \
     if KEYS[2] then \
       local done = redis.call('GET', KEYS[2]) \
       if done then return {0, done} end \
     end \
     local ids = {} \
     for i = 4, #ARGV, 2 do \
       ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[i], 'data', ARGV[i + 1]) \
     end \
     local joined = table.concat(ids, ',') \
     if KEYS[2] then redis.call('SET', KEYS[2], joined, 'EX', ARGV[3]) end \
     return {1, joined}";

/// How much earlier than the caller's deadline Redis must have run an append: room for its reply
/// to reach us before we answer.
const REPLY_MARGIN_MS: i64 = 50;

/// Stream entry fields.
const FIELD_EVENT: &str = "event";
const FIELD_DATA: &str = "data";
const FIELD_EPOCH: &str = "epoch";

#[derive(Debug)]
pub(crate) struct RedisBroker {
    link: Link,
    history: usize,
    idempotency_ttl: Duration,
    /// `hub.redis_min_replicas`: replicas that must have an append before it is acknowledged.
    min_replicas: u32,
    /// How long `WAIT` may block for them: the call's deadline, less room for the replies.
    replica_wait_ms: u64,
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
        let message = error.to_string();
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
        switches::follow(&link, &shutdown);
        tokio::spawn(reader.run(shutdown));
        let broker = Self {
            link,
            history: settings.history,
            idempotency_ttl,
            min_replicas: settings.redis_min_replicas,
            replica_wait_ms: settings
                .redis_timeout_ms
                .saturating_sub(2 * REPLY_MARGIN_MS as u64)
                .max(1),
            health,
        };
        (broker, receiver)
    }

    /// Appends `events` in order, atomically, under the idempotency key if there is one; returns
    /// their stream ids once Redis has them. A key's first call appends and records the ids for
    /// the TTL; any later call with it returns those ids and appends nothing. No key is ever "in
    /// flight", so a retry after a timeout can neither publish twice nor be refused.
    pub(crate) async fn publish(
        &self,
        events: Vec<PendingEvent>,
        options: PublishOptions,
    ) -> Result<Published, BrokerError> {
        let key = options
            .idempotency_key
            .map(|key| self.link.key("idempotency", key.as_str()));
        let append = |deadline: i64| {
            let mut eval = redis::cmd("EVAL");
            eval.arg(APPEND)
                .arg(1 + usize::from(key.is_some()))
                .arg(self.link.stream_key())
                .arg(key.as_deref())
                .arg(deadline - REPLY_MARGIN_MS)
                .arg(self.history)
                .arg(self.idempotency_ttl.as_secs());
            for event in &events {
                eval.arg(event.name.as_str()).arg(&*event.data);
            }
            eval
        };
        let (status, ids): (i64, String) = if self.min_replicas == 0 {
            self.link.call(append).await?
        } else {
            // `WAIT` counts the replicas that have every write this connection made so far, so
            // it must follow the append on the same connection: one pipeline. A repeated key
            // waits too, for the append its first call made.
            let (appended, replicas): ((i64, String), u32) = self
                .link
                .call(|deadline| {
                    let mut pipe = redis::pipe();
                    pipe.add_command(append(deadline))
                        .cmd("WAIT")
                        .arg(self.min_replicas)
                        .arg(self.replica_wait_ms);
                    pipe
                })
                .await?;
            if replicas < self.min_replicas {
                // On the master, not yet safe from its failover: a keyed retry gets the same ids
                // (and waits again), so the caller can make sure without publishing twice.
                return Err(LinkError::NoAnswer(format!(
                    "only {replicas} of {} replicas have the append",
                    self.min_replicas
                ))
                .into());
            }
            appended
        };
        if status < 0 {
            return Err(
                LinkError::Unavailable("redis ran the append after its deadline".into()).into(),
            );
        }
        Ok(Published {
            ids: ids
                .split(',')
                .map(link::parse_id)
                .collect::<Result<_, _>>()?,
            appended: status == 1,
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
