//! The shared writer connection and the deadline on every call made through it, plus the names
//! of our keys: the one place that decides when a Redis call has failed and what that failure
//! means for whoever made it.
//!
//! Every call has its own deadline, `hub.redis_timeout_ms` from the moment it starts, whatever
//! other callers are doing: a stalled Redis makes each caller wait its own timeout once, never
//! the sum of everyone's. Reconnecting happens in a task of its own; callers that need the
//! connection meanwhile wait for that one attempt, each within its own deadline, and no lock is
//! held across an `await`. A failure is classified by what Redis may have done: nothing
//! ([`LinkError::Unavailable`]: the call was never sent, or Redis refused it) or possibly
//! something ([`LinkError::NoAnswer`]: sent, and no reply in time). The stream reader opens its
//! own connection, since `XREAD BLOCK` would hold a shared one hostage.
//!
//! In Sentinel mode the sentinels' announcement of a new master reaches the link
//! ([`Link::master_switched`]): the writer's connection is dropped at once, so the next call asks
//! the sentinels anew, and the reader hears of it through [`Link::switches`].

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use redis::FromRedisValue;
use tokio::{sync::watch, time::Instant};

use super::connector::{Clock, Conn, Connector, OnClosed};

#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// Redis did not act on the call: no connection, or it answered with an error.
    #[error("redis is unavailable: {0}")]
    Unavailable(String),
    /// The call went out and no reply came back in time (or the connection broke): Redis may or
    /// may not have run it.
    #[error("redis did not answer in time: {0}")]
    NoAnswer(String),
    #[error("redis returned an id that is not a stream id: {0:?}")]
    BadId(String),
}

impl LinkError {
    /// A failure of the call after it was sent: a reply from Redis means it was not run; anything
    /// else leaves the outcome open.
    fn after_send(error: &redis::RedisError) -> Self {
        if error.code().is_some() {
            LinkError::Unavailable(error.to_string())
        } else {
            LinkError::NoAnswer(error.to_string())
        }
    }
}

/// What [`Link::call`] sends: one command, or a pipeline of commands that must go out on one
/// connection, in order (an append and the `WAIT` for its replicas).
pub(crate) trait Request {
    async fn send<T: FromRedisValue>(&self, conn: &mut Conn) -> redis::RedisResult<T>;
}

impl Request for redis::Cmd {
    async fn send<T: FromRedisValue>(&self, conn: &mut Conn) -> redis::RedisResult<T> {
        self.query_async(conn).await
    }
}

impl Request for redis::Pipeline {
    async fn send<T: FromRedisValue>(&self, conn: &mut Conn) -> redis::RedisResult<T> {
        self.query_async(conn).await
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Link {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connector: Connector,
    stream_key: String,
    timeout: Duration,
    /// Only ever locked to look at or replace the slot, never across an `await`.
    writer: Mutex<Slot>,
    /// Bumped whenever a connect attempt ends, to wake the callers waiting for it.
    attempts: watch::Sender<u64>,
    /// Bumped whenever the sentinels name a new master.
    switches: watch::Sender<u64>,
}

#[derive(Debug)]
enum Slot {
    Idle,
    Connecting,
    Failed(String, u64),
    Ready {
        generation: u64,
        conn: Conn,
        clock: Clock,
    },
}

/// A connection handed to one call, and what it needs to report trouble with it.
struct Lease {
    generation: u64,
    conn: Conn,
    clock: Clock,
}

impl Link {
    /// Checks the settings; connects lazily, on first use.
    pub(crate) fn new(connector: Connector, stream_key: &str, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                connector,
                stream_key: stream_key.to_owned(),
                timeout,
                writer: Mutex::new(Slot::Idle),
                attempts: watch::Sender::new(0),
                switches: watch::Sender::new(0),
            }),
        }
    }

    /// A connection of its own (the reader's), whose replies may take up to `response_timeout`.
    pub(crate) async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<(Conn, Clock), redis::RedisError> {
        self.inner
            .connector
            .connect(self.inner.timeout, response_timeout)
            .await
    }

    pub(super) fn connector(&self) -> &Connector {
        &self.inner.connector
    }

    /// The sentinels named a new master. The writer's connection is forgotten (the old master
    /// keeps accepting writes until Sentinel demotes it, and a failover loses them), so the next
    /// call asks the sentinels anew; the reader reconnects too.
    pub(super) fn master_switched(&self) {
        {
            let mut slot = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            if matches!(&*slot, Slot::Ready { .. }) {
                *slot = Slot::Idle;
            }
        }
        self.inner.switches.send_modify(|n| *n += 1);
    }

    /// Changes whenever the sentinels name a new master.
    pub(crate) fn switches(&self) -> watch::Receiver<u64> {
        self.inner.switches.subscribe()
    }

    pub(crate) fn stream_key(&self) -> &str {
        &self.inner.stream_key
    }

    /// Our other keys extend the stream key: no collision with Medusa's, and in a cluster the
    /// stream key's `{hash tag}` puts them all in one slot.
    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.inner.stream_key)
    }

    /// Runs the command (or pipeline) `build` makes on the shared writer, within this call's own
    /// deadline. `build` gets the deadline in Redis's clock (unix ms), for scripts that must not
    /// act late.
    pub(crate) async fn call<T: FromRedisValue, R: Request>(
        &self,
        build: impl FnOnce(i64) -> R,
    ) -> Result<T, LinkError> {
        let deadline = Instant::now() + self.inner.timeout;
        let lease = tokio::time::timeout_at(deadline, self.lease())
            .await
            .map_err(|_| LinkError::Unavailable("no connection to redis in time".into()))??;
        let command = build(lease.clock.redis_ms(deadline.into_std()));
        let mut conn = lease.conn.clone();
        match tokio::time::timeout_at(deadline, command.send::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                // Whatever failed, the next call starts on a fresh connection: in Sentinel mode
                // that asks the sentinels anew, so a master demoted under us (`READONLY`) or gone
                // is left at once.
                self.discard(lease.generation);
                Err(LinkError::after_send(&e))
            }
            Err(_) => {
                // Stalled or cut off: the next call starts afresh rather than queue behind this.
                self.discard(lease.generation);
                Err(LinkError::NoAnswer(format!(
                    "no reply within {} ms",
                    self.inner.timeout.as_millis()
                )))
            }
        }
    }

    /// The current connection, or the outcome of the one connect attempt under way (starting it
    /// if there is none). Never returns a failure older than this call.
    async fn lease(&self) -> Result<Lease, LinkError> {
        let mut attempts = self.inner.attempts.subscribe();
        let started = *attempts.borrow_and_update();
        loop {
            {
                let mut slot = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
                match &*slot {
                    Slot::Ready {
                        generation,
                        conn,
                        clock,
                    } => {
                        return Ok(Lease {
                            generation: *generation,
                            conn: conn.clone(),
                            clock: *clock,
                        });
                    }
                    Slot::Failed(error, attempt) if *attempt > started => {
                        return Err(LinkError::Unavailable(error.clone()));
                    }
                    Slot::Connecting => {}
                    Slot::Idle | Slot::Failed(..) => {
                        *slot = Slot::Connecting;
                        tokio::spawn(self.clone().reconnect());
                    }
                }
            }
            if attempts.changed().await.is_err() {
                return Err(LinkError::Unavailable("the link has stopped".into()));
            }
        }
    }

    /// One connect attempt, on its own task, so no caller's deadline cuts it short. The
    /// connection is watched: once it is found closed (Redis died or restarted, the socket
    /// broke) it is forgotten at once, so the next call connects afresh and, if Redis is gone,
    /// fails before sending anything (`503`) instead of writing on a dead connection, where it
    /// could not tell whether Redis ran the call (`504`).
    async fn reconnect(self) {
        // Only one attempt runs at a time (the slot says `Connecting`), so this is its number.
        let attempt = *self.inner.attempts.borrow() + 1;
        let switches = *self.inner.switches.borrow();
        let link = Arc::downgrade(&self.inner);
        let on_closed: OnClosed = Arc::new(move || {
            if let Some(inner) = link.upgrade() {
                tracing::debug!("redis writer connection closed");
                Link { inner }.discard(attempt);
            }
        });
        let result = self
            .inner
            .connector
            .connect_watched(self.inner.timeout, self.inner.timeout, on_closed)
            .await;
        {
            let mut slot = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            *slot = match result {
                // The sentinels named a new master while this attempt asked them: it may have
                // reached the old one, so the callers waiting for it start another.
                _ if *self.inner.switches.borrow() != switches => Slot::Idle,
                Ok((conn, clock)) => Slot::Ready {
                    generation: attempt,
                    conn,
                    clock,
                },
                Err(e) => {
                    tracing::debug!(error = %e, "redis writer could not connect");
                    Slot::Failed(e.to_string(), attempt)
                }
            };
        }
        self.inner.attempts.send_replace(attempt);
    }

    /// Forgets the connection a failed call used (unless it was already replaced).
    fn discard(&self, generation: u64) {
        let mut slot = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(&*slot, Slot::Ready { generation: g, .. } if *g == generation) {
            *slot = Slot::Idle;
        }
    }
}

pub(crate) fn parse_id(id: &str) -> Result<crate::protocol::EventId, LinkError> {
    id.parse().map_err(|_| LinkError::BadId(id.to_owned()))
}
