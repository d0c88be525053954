//! How instances tell each other whom they have on which record: not at all when one instance runs
//! alone (the memory hub), or through a small Redis stream beside the events' one.
//!
//! A stream rather than pub/sub because it works the same on one server, behind Sentinel and on a
//! Cluster, through the connections the broker already makes. Nothing in it is history: it is
//! trimmed to a few hundred entries, each instance reads it from the moment it connects, and asks
//! the others (`hello`) to share their viewers again whenever it (re)connects, since what it
//! missed meanwhile is lost; it shares its own again then too, since what it shared while it was
//! not reading may have been read by nobody either. An entry says "instance I has these viewers
//! on these records now" (up to 256 records in one entry); an empty list takes them off. Or it
//! carries a report made over HTTP on an instance that does not hold its connection
//! ([`Forward`]), for the one that does.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Viewer, forward::Forward, report::RecordKey};
use crate::broker::redis::Link;

/// Entries the stream keeps; readers only ever want the newest.
const MAXLEN: usize = 500;
/// News from other instances waiting for the presence task.
const QUEUE: usize = 256;
/// Entries written in one pipeline.
const WRITE_BATCH: usize = 256;
/// How long one `XREAD` blocks, and how long its reply may take in all.
const READ_BLOCK: Duration = Duration::from_millis(1000);
const READ_DEADLINE: Duration = Duration::from_millis(3000);
const READ_COUNT: usize = 256;
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long the writer waits before trying shares again that could not be written.
const RETRY: Duration = Duration::from_millis(250);

const FIELD_INSTANCE: &str = "instance";
/// A JSON array of `[record, [viewer…]]` pairs: up to [`WRITE_BATCH`] shares in one entry, so a
/// periodic share of many records is a few entries, never more than the trimmed stream keeps.
const FIELD_SHARES: &str = "shares";
const FIELD_HELLO: &str = "hello";
/// A [`Forward`], as JSON.
const FIELD_FORWARD: &str = "forward";

/// One instance's viewers of one record; an empty list: none any more.
pub(super) type Share = (RecordKey, Vec<Viewer>);

/// What other instances said.
#[derive(Debug)]
pub(super) enum News {
    /// One instance's viewers of each record in `shares`, from one entry.
    Viewers { instance: u64, shares: Vec<Share> },
    /// Share this instance's viewers again: another instance (re)connected and wants everyone's,
    /// or this one did, and what it shared before may have been read by nobody (instances that
    /// start together can each miss the other's first shares).
    ShareAgain,
    /// A report for a connection this instance may hold.
    Forwarded(Forward),
}

#[derive(Debug)]
pub(crate) enum Backplane {
    /// One instance: nothing to share.
    Alone,
    Redis(RedisBackplane),
}

#[derive(Debug)]
pub(crate) struct RedisBackplane {
    link: Link,
    key: String,
    instance: u64,
    outbox: Arc<Outbox>,
}

/// Shares not written yet: the newest per record, so a writer that falls behind writes less,
/// never drops what it was told (an instance's "nobody here any more" must arrive).
#[derive(Debug, Default)]
struct Outbox {
    pending: Mutex<HashMap<RecordKey, Vec<Viewer>>>,
    ready: Notify,
}

impl Outbox {
    fn put(&self, shares: Vec<Share>) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(shares);
        self.ready.notify_one();
    }

    /// Puts back shares that could not be written, unless a newer one for the record came since.
    fn restore(&self, shares: &[Share]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (record, viewers) in shares {
            pending
                .entry(record.clone())
                .or_insert_with(|| viewers.clone());
        }
    }

    fn take(&self) -> Vec<Share> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *pending).into_iter().collect()
    }
}

impl Backplane {
    /// Shares through the Redis the broker uses. Must be called within a Tokio runtime: it starts
    /// the writer, which ends at `shutdown` ([`Self::farewell`] writes what is left).
    pub(crate) fn redis(link: Link, shutdown: CancellationToken) -> Self {
        let backplane = RedisBackplane {
            key: link.key("presence", "shared"),
            link,
            instance: rand::random(),
            outbox: Arc::default(),
        };
        tokio::spawn(write(
            backplane.link.clone(),
            backplane.key.clone(),
            backplane.instance,
            Arc::clone(&backplane.outbox),
            shutdown,
        ));
        Backplane::Redis(backplane)
    }

    /// Tells the other instances this one's viewers of each record in `shares`, without waiting.
    pub(super) fn share(&self, shares: Vec<Share>) {
        if let Backplane::Redis(redis) = self
            && !shares.is_empty()
        {
            redis.outbox.put(shares);
        }
    }

    /// At shutdown, after the writer stopped: writes what is pending and `shares`, and waits.
    pub(super) async fn farewell(&self, shares: Vec<Share>) {
        if let Backplane::Redis(redis) = self {
            redis.outbox.put(shares);
            let batch = redis.outbox.take();
            // The last word: not retried, the other instances' TTL covers a failure.
            append(&redis.link, &redis.key, redis.instance, &batch).await;
        }
    }

    /// Whether there are other instances to forward to.
    pub(super) fn forwards(&self) -> bool {
        matches!(self, Backplane::Redis(_))
    }

    /// Puts `forward` on the stream for the instance holding its connection; whether Redis has
    /// it (alone, nobody could).
    pub(super) async fn forward(&self, forward: &Forward) -> bool {
        let Backplane::Redis(redis) = self else {
            return false;
        };
        let Ok(forward) = serde_json::to_string(forward) else {
            return false;
        };
        let written = redis
            .link
            .call::<redis::Value, _>(|_| {
                entry(&redis.key, redis.instance, &[(FIELD_FORWARD, &forward)])
            })
            .await;
        if let Err(error) = &written {
            tracing::debug!(%error, "presence report not forwarded");
        }
        written.is_ok()
    }

    /// What the other instances say, until `shutdown`; closed at once when there are none.
    pub(super) fn listen(&self, shutdown: CancellationToken) -> mpsc::Receiver<News> {
        let (news, heard) = mpsc::channel(QUEUE);
        if let Backplane::Redis(redis) = self {
            tokio::spawn(read(
                redis.link.clone(),
                redis.key.clone(),
                redis.instance,
                news,
                shutdown,
            ));
        }
        heard
    }
}

/// Writes what is pending whenever there is some, until `shutdown`; what fails to be written is
/// tried again (newest first) after a pause, so a slow or failing-over Redis delays shares but
/// does not lose them.
async fn write(
    link: Link,
    key: String,
    instance: u64,
    outbox: Arc<Outbox>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = outbox.ready.notified() => {}
        }
        let batch = outbox.take();
        let mut failed = false;
        for chunk in batch.chunks(WRITE_BATCH) {
            if failed || !append(&link, &key, instance, chunk).await {
                failed = true;
                outbox.restore(chunk);
            }
        }
        if failed {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETRY) => outbox.ready.notify_one(),
            }
        }
    }
}

/// Appends `shares` as one entry; whether it was.
async fn append(link: &Link, key: &str, instance: u64, shares: &[Share]) -> bool {
    if shares.is_empty() {
        return true;
    }
    let Ok(shares) = serde_json::to_string(shares) else {
        return true;
    };
    let written = link
        .call::<redis::Value, _>(|_| entry(key, instance, &[(FIELD_SHARES, &shares)]))
        .await;
    if let Err(error) = &written {
        tracing::debug!(%error, "presence shares not written; retrying");
    }
    written.is_ok()
}

/// `XADD` of one entry by `instance`, trimming the stream.
fn entry(key: &str, instance: u64, fields: &[(&str, &str)]) -> redis::Cmd {
    let mut xadd = redis::cmd("XADD");
    xadd.arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(MAXLEN)
        .arg("*")
        .arg(FIELD_INSTANCE)
        .arg(format!("{instance:016x}"));
    for (field, value) in fields {
        xadd.arg(*field).arg(*value);
    }
    xadd
}

/// Follows the stream from the moment of each (re)connection, after saying hello.
async fn read(
    link: Link,
    key: String,
    instance: u64,
    news: mpsc::Sender<News>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    // Sentinel mode: the writes move to a new master the moment the sentinels name it, and the
    // old one, until it is demoted, never sees them; so the reader moves at once too.
    let mut switches = link.switches();
    // Where reading goes on after a reconnect: what went by meanwhile is read, not skipped (an
    // instance's "nobody here any more" is said once).
    let mut last = None;
    loop {
        let followed = tokio::select! {
            () = shutdown.cancelled() => return,
            _ = switches.changed() => {
                backoff = Duration::from_millis(100);
                continue;
            }
            result = follow(&link, &key, instance, &news, &mut last) => result,
        };
        match followed {
            Ok(()) => return, // the presence task is gone
            Err(error) => {
                tracing::debug!(%error, "presence backplane reader lost redis; reconnecting");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection's worth of following. `Ok` only when there is no one left to tell.
async fn follow(
    link: &Link,
    key: &str,
    instance: u64,
    news: &mpsc::Sender<News>,
    last: &mut Option<String>,
) -> Result<(), redis::RedisError> {
    let (mut conn, _) = link.connect(READ_DEADLINE).await?;
    // The first time, read from the newest entry on; and only then ask the others to share
    // again: their answers come after it.
    if last.is_none() {
        let newest: Vec<(String, Vec<String>)> = within(
            redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn),
        )
        .await?;
        *last = Some(
            newest
                .into_iter()
                .next()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| id),
        );
    }
    let me = format!("{instance:016x}");
    link.call::<redis::Value, _>(|_| entry(key, instance, &[(FIELD_HELLO, "1")]))
        .await
        .map_err(|e| redis::RedisError::from(std::io::Error::other(e.to_string())))?;
    // Whoever reads from before our hello hears our viewers too, from now on.
    if news.send(News::ShareAgain).await.is_err() {
        return Ok(());
    }
    loop {
        type Reply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;
        let reply: Reply = within(
            redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(READ_BLOCK.as_millis() as u64)
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("STREAMS")
                .arg(key)
                .arg(last.as_deref().unwrap_or("0-0"))
                .query_async(&mut conn),
        )
        .await?;
        for (id, fields) in reply.into_iter().flatten().flat_map(|(_, entries)| entries) {
            *last = Some(id);
            if let Some(heard) = parse(&fields, &me)
                && news.send(heard).await.is_err()
            {
                return Ok(());
            }
        }
    }
}

/// `call`, given up on after [`READ_DEADLINE`] whatever the connection's own timeouts do.
async fn within<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(READ_DEADLINE, call)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the presence stream did not answer in time",
            )))
        })
}

/// What an entry another instance wrote says; nothing for our own, and nothing for anything
/// malformed (Redis is not trusted more than a client: record keys and viewers must parse as
/// ours would).
fn parse(fields: &[String], me: &str) -> Option<News> {
    let field = |name: &str| {
        fields
            .chunks_exact(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str())
    };
    let instance = field(FIELD_INSTANCE).filter(|instance| *instance != me)?;
    let instance = u64::from_str_radix(instance, 16).ok()?;
    if field(FIELD_HELLO).is_some() {
        return Some(News::ShareAgain);
    }
    if let Some(forward) = field(FIELD_FORWARD) {
        return serde_json::from_str(forward).ok().map(News::Forwarded);
    }
    // A record key that is not one of ours fails the whole entry, as a client's would.
    let shares = serde_json::from_str(field(FIELD_SHARES)?).ok()?;
    Some(News::Viewers { instance, shares })
}
