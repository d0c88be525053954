//! The Redis Streams backplane: how several instances share one ordered, durable event log.
//!
//! Publishing appends to one stream (`XADD <stream_key> MAXLEN ~ <history>`); the stream assigns the
//! id, so ids are global and ordered. Every instance runs one reader that follows the stream with
//! `XREAD BLOCK` from the last id it saw and feeds its local hub, so each instance's history mirrors
//! the stream and a resume id from any instance works on any other. A stream, not pub/sub: after a
//! dropped connection the reader continues from its last id and nothing is skipped.
//!
//! Redis without persistence can come back empty. The reader notices (the last id it delivered is no
//! longer in the stream) and starts the local history anew, telling every connection
//! `resync{restart}`; old ids are then simply not found, so they get `resync{gap}`. An empty stream
//! gets an epoch marker entry, so even a stream with no events has a unique id to resume from.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{AsyncConnectionConfig, aio::MultiplexedConnection};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::{
    event::{Catalog, Event, EventId, PendingEvent, ResyncReason},
    hub::Hub,
    settings::HubSettings,
};

/// How long one `XREAD` blocks; also bounds how late the reader notices shutdown.
const READ_BLOCK: Duration = Duration::from_millis(1000);
/// Entries taken per `XREAD`.
const READ_COUNT: usize = 512;
/// A publisher waits this long for Redis before the emit answers 503.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnect backoff for the reader.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Adds the epoch marker only to an empty stream: `KEYS[1]` stream, `ARGV[1]` MAXLEN, `ARGV[2]` epoch.
const ENSURE_EPOCH_MARKER: &str = "if redis.call('XLEN', KEYS[1]) == 0 then \
     return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'epoch', ARGV[2]) end \
     return false";

/// `append_once`: `KEYS[1]` stream, `KEYS[2]` idempotency key, `ARGV[1]` MAXLEN, `ARGV[2]` TTL,
/// then event name / data pairs. Returns `{1, "id,id,…"}` when it appended, `{0, …}` for a repeat.
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

#[derive(Debug, thiserror::Error)]
pub enum BackplaneError {
    #[error("redis")]
    Redis(#[from] redis::RedisError),
    #[error("redis returned an id that is not a stream id: {0:?}")]
    BadId(String),
}

#[derive(Debug, Clone)]
pub struct Backplane {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: redis::Client,
    stream_key: String,
    history: usize,
    writer: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    reader_up: AtomicBool,
    last_error: Mutex<String>,
}

/// One stream entry: `(id, [field, value, field, value, …])`.
type Entry = (String, Vec<String>);
/// `XREAD` reply: `[(stream key, entries)]`, or nil when the block timed out.
type ReadReply = Option<Vec<(String, Vec<Entry>)>>;

impl Backplane {
    pub fn new(settings: &HubSettings) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(settings.redis_url.expose_secret())?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                stream_key: settings.stream_key.clone(),
                history: settings.history,
                writer: tokio::sync::Mutex::new(None),
                reader_up: AtomicBool::new(false),
                last_error: Mutex::new("not connected to redis yet".to_owned()),
            }),
        })
    }

    async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, BackplaneError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        Ok(self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    /// Appends events in order, atomically; returns their stream ids once Redis has them.
    pub async fn append(&self, events: &[PendingEvent]) -> Result<Vec<EventId>, BackplaneError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for event in events {
            pipe.cmd("XADD")
                .arg(&self.inner.stream_key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.inner.history)
                .arg("*")
                .arg(FIELD_EVENT)
                .arg(event.name.as_str())
                .arg(FIELD_DATA)
                .arg(&*event.data);
        }
        let ids: Vec<String> = self.run(&pipe).await?;
        ids.iter().map(|id| parse_id(id)).collect()
    }

    /// Appends a batch under an idempotency key, atomically (one Lua script): the first call appends
    /// and records the ids for `ttl`; any later call with the key returns those ids and appends
    /// nothing. No state is ever "in flight", so a retry after a timeout can neither publish twice
    /// nor be refused: either the script ran (its ids are recorded) or it did not (the retry runs
    /// it). Returns the ids and whether this call appended them.
    pub async fn append_once(
        &self,
        key: &str,
        events: &[PendingEvent],
        ttl: Duration,
    ) -> Result<(Vec<EventId>, bool), BackplaneError> {
        let mut pipe = redis::pipe();
        let eval = pipe
            .cmd("EVAL")
            .arg(APPEND_ONCE)
            .arg(2)
            .arg(&self.inner.stream_key)
            .arg(self.idempotency_key(key))
            .arg(self.inner.history)
            .arg(ttl.as_secs());
        for event in events {
            eval.arg(event.name.as_str()).arg(&*event.data);
        }
        let ((appended, ids),): ((i64, String),) = self.run(&pipe).await?;
        let ids = ids.split(',').map(parse_id).collect::<Result<_, _>>()?;
        Ok((ids, appended == 1))
    }

    /// Stores a ticket for `life` (`SET PX`).
    pub async fn put_ticket(
        &self,
        ticket: &str,
        value: &str,
        life: Duration,
    ) -> Result<(), BackplaneError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.key("ticket", ticket))
            .arg(value)
            .arg("PX")
            .arg(life.as_millis() as u64);
        self.run::<redis::Value>(&pipe).await.map(drop)
    }

    /// Takes a ticket out (`GETDEL`): whichever instance redeems it first gets it, once.
    pub async fn take_ticket(&self, ticket: &str) -> Result<Option<String>, BackplaneError> {
        let mut pipe = redis::pipe();
        pipe.cmd("GETDEL").arg(self.key("ticket", ticket));
        let (value,): (Option<String>,) = self.run(&pipe).await?;
        Ok(value)
    }

    fn idempotency_key(&self, key: &str) -> String {
        self.key("idempotency", key)
    }

    /// Our keys live under the stream key, so they never collide with Medusa's.
    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.inner.stream_key)
    }

    /// Runs `pipe` on the shared writer connection, connecting first if needed. The connection is
    /// multiplexed, so concurrent publishers pipeline on it instead of queueing behind a lock.
    async fn run<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, BackplaneError> {
        let mut connection = {
            let mut writer = self.inner.writer.lock().await;
            match writer.as_ref() {
                Some(connection) => connection.clone(),
                None => writer.insert(self.connect(WRITE_TIMEOUT).await?).clone(),
            }
        };
        match pipe.query_async(&mut connection).await {
            Ok(value) => Ok(value),
            Err(e) => {
                // Reconnect on the next call rather than reuse a connection in an unknown state.
                *self.inner.writer.lock().await = None;
                Err(e.into())
            }
        }
    }

    /// Whether this instance is following the stream; the reason when it is not.
    pub fn health(&self) -> Result<(), String> {
        if self.inner.reader_up.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(format!(
                "backplane unavailable: {}",
                self.inner
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
            ))
        }
    }

    fn set_down(&self, error: &BackplaneError) {
        let mut message = error.to_string();
        if let BackplaneError::Redis(cause) = error {
            message = format!("{message}: {cause}");
        }
        tracing::warn!(error = %message, "backplane reader lost redis; reconnecting");
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = message;
        self.inner.reader_up.store(false, Ordering::Relaxed);
    }

    /// Follows the stream into `hub` until `shutdown`, reconnecting with backoff.
    pub async fn run_reader(self, hub: Hub, catalog: Catalog, shutdown: CancellationToken) {
        let mut reader = Reader {
            backplane: self,
            hub,
            catalog,
            last: None,
            caught_up: false,
        };
        let mut backoff = BACKOFF_MIN;
        loop {
            let Err(e) = reader.follow(&shutdown).await else {
                return; // shutdown
            };
            // A connection that got as far as following the stream earns a fresh backoff.
            if std::mem::take(&mut reader.caught_up) {
                backoff = BACKOFF_MIN;
            }
            reader.backplane.set_down(&e);
            let pause = rand::random_range(backoff / 2..=backoff);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

struct Reader {
    backplane: Backplane,
    hub: Hub,
    catalog: Catalog,
    /// The newest stream id this instance has taken in.
    last: Option<EventId>,
    /// Whether the current connection got as far as following the stream.
    caught_up: bool,
}

/// One stream entry, decoded.
enum Decoded {
    Event(Arc<Event>),
    /// The epoch marker that starts a (re)created stream.
    Marker,
    /// Not something to deliver (malformed, or refused by validation): logged and skipped.
    Foreign,
}

impl Reader {
    /// One connection's worth of following: (re)load or verify, then `XREAD` until an error.
    async fn follow(&mut self, shutdown: &CancellationToken) -> Result<(), BackplaneError> {
        let key = self.backplane.inner.stream_key.clone();
        let mut connection = self.backplane.connect(READ_BLOCK * 3).await?;
        let continuous = match self.last {
            Some(last) => {
                let at: Vec<Entry> = redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(last.to_string())
                    .arg(last.to_string())
                    .query_async(&mut connection)
                    .await?;
                !at.is_empty()
            }
            None => false,
        };
        if !continuous {
            self.load(&mut connection).await?;
        }
        self.backplane
            .inner
            .reader_up
            .store(true, Ordering::Relaxed);
        self.caught_up = true;
        let last = self.last.unwrap_or(EventId::ZERO);
        let mut from = last.to_string();
        loop {
            let mut read = redis::cmd("XREAD");
            read.arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("STREAMS")
                .arg(&key)
                .arg(&from);
            let reply: ReadReply = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                reply = read.query_async(&mut connection) => reply?,
            };
            for (_, entries) in reply.unwrap_or_default() {
                for entry in entries {
                    from.clone_from(&entry.0);
                    self.take(entry)?;
                }
            }
        }
    }

    /// Rebuilds the local history from the stream's newest `history` entries and swaps it into
    /// the hub in one step. When this instance had been following an earlier history, its
    /// connections may have missed events: they are told to resync.
    async fn load(&mut self, connection: &mut MultiplexedConnection) -> Result<(), BackplaneError> {
        let key = &self.backplane.inner.stream_key;
        let history = self.backplane.inner.history;
        // Atomic, so two instances starting on an empty stream do not both add a marker.
        let _: redis::Value = redis::cmd("EVAL")
            .arg(ENSURE_EPOCH_MARKER)
            .arg(1)
            .arg(key)
            .arg(history)
            .arg(format!("{:032x}", rand::random::<u128>()))
            .query_async(connection)
            .await?;
        let mut entries: Vec<Entry> = redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(history)
            .query_async(connection)
            .await?;
        entries.reverse();
        let mut entries = entries.into_iter();
        // The oldest entry is the floor: resuming from it replays everything after it.
        let Some((oldest, _)) = entries.next() else {
            return Err(BackplaneError::BadId(
                "stream is empty after adding its marker".into(),
            ));
        };
        let mut floor = parse_id(&oldest)?;
        let mut last = floor;
        let mut events = Vec::new();
        for (id, fields) in entries {
            let id = parse_id(&id)?;
            last = id;
            match self.decode(id, &fields) {
                Decoded::Event(event) => events.push(event),
                Decoded::Marker => {
                    floor = id;
                    events.clear();
                }
                Decoded::Foreign => {}
            }
        }
        let notify = self.last.is_some().then_some(ResyncReason::Restart);
        self.hub.replace(floor, events, notify);
        self.last = Some(last);
        Ok(())
    }

    /// Takes one entry read live: an event goes to the hub; an epoch marker means the stream was
    /// recreated under us, so the history starts anew there and connections resync.
    fn take(&mut self, (id, fields): Entry) -> Result<(), BackplaneError> {
        let id = parse_id(&id)?;
        self.last = Some(id);
        match self.decode(id, &fields) {
            Decoded::Event(event) => self.hub.ingest(event),
            Decoded::Marker => self
                .hub
                .replace(id, Vec::new(), Some(ResyncReason::Restart)),
            Decoded::Foreign => {}
        }
        Ok(())
    }

    fn decode(&self, id: EventId, fields: &[String]) -> Decoded {
        let field = |name: &str| {
            fields
                .chunks_exact(2)
                .find(|pair| pair[0] == name)
                .map(|pair| pair[1].as_str())
        };
        if field(FIELD_EPOCH).is_some() {
            return Decoded::Marker;
        }
        let (Some(name), Some(data)) = (field(FIELD_EVENT), field(FIELD_DATA)) else {
            tracing::warn!(%id, "skipping a stream entry that is not an event");
            return Decoded::Foreign;
        };
        match self.catalog.from_stream(name, data) {
            Ok(event) => Decoded::Event(Arc::new(Event::new(id, event.name, &event.data))),
            Err(e) => {
                tracing::warn!(%id, error = %e, "skipping a stream entry that fails validation");
                Decoded::Foreign
            }
        }
    }
}

fn parse_id(id: &str) -> Result<EventId, BackplaneError> {
    id.parse().map_err(|_| BackplaneError::BadId(id.to_owned()))
}
