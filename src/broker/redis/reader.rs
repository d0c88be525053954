//! The stream reader: follows the Redis stream and tells the hub what was committed.
//!
//! Redis without persistence can come back empty. The reader notices (the last id it delivered is
//! no longer in the stream) and reloads, and the hub starts its history anew, telling every
//! connection `resync{restart}`; old ids are then simply not found, so they get `resync{gap}`. An
//! empty stream gets an epoch marker entry, so even a stream with no events has a unique id to
//! resume from.
//!
//! In Sentinel mode the reader also reconnects as soon as the sentinels name a new master
//! ([`Link::switches`]), rather than follow the old one until Sentinel demotes it.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{
    FIELD_DATA, FIELD_EPOCH, FIELD_EVENT, Health, Link, LinkError,
    connector::{Conn, History},
    link::parse_id,
};
use crate::{
    broker::{Committed, Notice},
    catalog::Catalog,
    protocol::{EventId, ResyncReason},
};

/// How long one `XREAD` blocks; also bounds how late the reader notices shutdown.
const READ_BLOCK: Duration = Duration::from_millis(1000);
/// How long a reply to the reader may take, `XREAD`'s block included. Enforced by [`within`],
/// whatever the connection's own response timeout does: a cluster connection rerouting after a
/// failover was seen to leave a blocking read unanswered for good.
/// It is also how soon `/readyz` turns 503 when the stream's master dies or hangs. Shorter (1.5 s
/// was tried) and a loaded machine cut healthy reads short: each cut is a reconnect, and a
/// `/readyz` 503, for nothing.
const READ_DEADLINE: Duration = Duration::from_millis(3000);
/// How often the reader asks the stream's master for its replication id while following. A
/// cluster connection follows a failover by itself, and a managed endpoint can hide one behind
/// the same address, so a new master is not always a new connection.
const MASTER_CHECK: Duration = Duration::from_secs(1);
/// Entries taken per `XREAD`.
const READ_COUNT: usize = 512;
/// Reconnect backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Adds the epoch marker only to an empty stream: `KEYS[1]` stream, `ARGV[1]` MAXLEN, `ARGV[2]` epoch.
const ENSURE_EPOCH_MARKER: &str = "if redis.call('XLEN', KEYS[1]) == 0 then \
     return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'epoch', ARGV[2]) end \
     return false";

/// One stream entry: `(id, [field, value, field, value, …])`.
type Entry = (String, Vec<String>);
/// `XREAD` reply: `[(stream key, entries)]`, or nil when the block timed out.
type ReadReply = Option<Vec<(String, Vec<Entry>)>>;

/// The reader stops once the hub is gone (its notices have nowhere to go).
#[derive(Debug)]
struct HubGone;

#[derive(Debug)]
enum Stop {
    Link(LinkError),
    HubGone,
    /// The sentinels named a new master.
    Switched,
}

impl From<LinkError> for Stop {
    fn from(error: LinkError) -> Self {
        Stop::Link(error)
    }
}

impl From<redis::RedisError> for Stop {
    fn from(error: redis::RedisError) -> Self {
        Stop::Link(LinkError::Unavailable(error.to_string()))
    }
}

/// Runs one of the reader's calls within [`READ_DEADLINE`]: no reply in time is a lost connection.
async fn within<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Stop> {
    match tokio::time::timeout(READ_DEADLINE, call).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            Err(LinkError::NoAnswer("redis did not answer the stream reader in time".into()).into())
        }
    }
}

impl From<HubGone> for Stop {
    fn from(_: HubGone) -> Self {
        Stop::HubGone
    }
}

pub(super) struct Reader {
    link: Link,
    history: usize,
    catalog: Catalog,
    health: Arc<Health>,
    notices: mpsc::Sender<Notice>,
    /// The newest stream id this instance has taken in.
    last: Option<EventId>,
    /// Whether the current connection got as far as following the stream.
    caught_up: bool,
    /// Which masters' histories this instance follows, and which it has left for good.
    lineage: Lineage,
    /// The master changed, and the history has not been reloaded from the new one yet.
    reload_due: bool,
}

/// One stream entry, decoded.
enum Decoded {
    Event(Committed),
    /// The epoch marker that starts a (re)created stream.
    Marker,
    /// Not something to deliver (malformed, or refused by validation): logged and skipped.
    Foreign,
}

impl Reader {
    pub(super) fn new(
        link: Link,
        history: usize,
        catalog: Catalog,
        health: Arc<Health>,
        notices: mpsc::Sender<Notice>,
    ) -> Self {
        Self {
            link,
            history,
            catalog,
            health,
            notices,
            last: None,
            caught_up: false,
            lineage: Lineage::default(),
            reload_due: false,
        }
    }

    /// Follows the stream until `shutdown` (or until the hub is gone), reconnecting with backoff.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let mut switches = self.link.switches();
        let mut backoff = BACKOFF_MIN;
        loop {
            // A switch announced from here on may come too late for this connect to see it.
            switches.mark_unchanged();
            let e = match self.follow(&shutdown, &mut switches).await {
                Ok(()) | Err(Stop::HubGone) => return,
                // The new master is there already: no reason to wait.
                Err(Stop::Switched) => continue,
                Err(Stop::Link(e)) => e,
            };
            // A connection that got as far as following the stream earns a fresh backoff.
            if std::mem::take(&mut self.caught_up) {
                backoff = BACKOFF_MIN;
            }
            self.health.set_down(&e);
            let pause = rand::random_range(backoff / 2..=backoff);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
                // The old master is gone and the sentinels name a new one: try it now.
                _ = switches.changed() => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One connection's worth of following: (re)load or verify, then `XREAD` until an error.
    async fn follow(
        &mut self,
        shutdown: &CancellationToken,
        switches: &mut watch::Receiver<u64>,
    ) -> Result<(), Stop> {
        let key = self.link.stream_key().to_owned();
        let (mut connection, _) = self.link.connect(READ_DEADLINE).await?;
        self.reload_due |= self.master_changed(&mut connection).await?;
        let continuous = match self.last {
            // A new master (a failover, also one hidden behind a managed endpoint's address) may
            // lack appends the old one acknowledged but had not replicated yet, and this reader
            // may never have seen them: only a reload with `resync` is honest then, even when the
            // last id we delivered survived.
            Some(_) if self.reload_due => false,
            Some(last) => {
                let at: Vec<Entry> = within(
                    redis::cmd("XRANGE")
                        .arg(&key)
                        .arg(last.to_string())
                        .arg(last.to_string())
                        .query_async(&mut connection),
                )
                .await?;
                !at.is_empty()
            }
            None => false,
        };
        if !continuous {
            self.load(&mut connection).await?;
        }
        self.reload_due = false;
        self.health.set_up();
        self.caught_up = true;
        let mut from = self.last.unwrap_or(EventId::ZERO).to_string();
        let mut next_check = tokio::time::Instant::now() + MASTER_CHECK;
        loop {
            if tokio::time::Instant::now() >= next_check {
                self.same_master(&mut connection).await?;
                next_check = tokio::time::Instant::now() + MASTER_CHECK;
            }
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
                _ = switches.changed() => return Err(Stop::Switched),
                reply = within(read.query_async(&mut connection)) => reply?,
            };
            // A cluster connection retries a read on whichever node holds the slot now, so what
            // it read may come from a newly promoted master: before any of it goes out, the
            // master is checked, and a new one means a reload (which holds these entries too)
            // and `resync` first.
            if reply.is_some() && connection.follows_failovers() {
                self.same_master(&mut connection).await?;
            }
            let mut committed = Vec::new();
            for (_, entries) in reply.unwrap_or_default() {
                for (id, fields) in entries {
                    let parsed = parse_id(&id)?;
                    from = id;
                    self.last = Some(parsed);
                    match self.decode(parsed, &fields) {
                        Decoded::Event(event) => committed.push(event),
                        // The stream was recreated under us: the history starts anew there.
                        Decoded::Marker => {
                            self.send_committed(&mut committed).await?;
                            self.reset(parsed, Vec::new(), Some(ResyncReason::Restart))
                                .await?;
                        }
                        Decoded::Foreign => {}
                    }
                }
            }
            self.send_committed(&mut committed).await?;
        }
    }

    /// Stops following (for a reload with `resync`) when the master changed under a connection.
    async fn same_master(&mut self, connection: &mut Conn) -> Result<(), Stop> {
        if self.master_changed(connection).await? {
            self.reload_due = true;
            return Err(LinkError::Unavailable("the stream's master changed".into()).into());
        }
        Ok(())
    }

    /// Whether the master holding the stream is a new one since the last check (a failover, or a
    /// restart): the stream may then lack appends this instance never read. A master the
    /// instance already left for its promoted replica is no master to follow: it is about to be
    /// demoted, and what it still takes is lost with it.
    async fn master_changed(&mut self, connection: &mut Conn) -> Result<bool, Stop> {
        let seen = within(connection.master_of(self.link.stream_key())).await?;
        let History {
            server,
            id,
            promoted_from,
        } = seen.clone();
        match self.lineage.observe(seen) {
            Verdict::Same => Ok(false),
            Verdict::GoesOn => {
                tracing::info!(
                    replication_id = %id,
                    "the redis master began a new replication id; its history goes on"
                );
                Ok(false)
            }
            Verdict::New => {
                tracing::warn!(
                    replication_id = %id,
                    %promoted_from,
                    run_id = %server,
                    "redis master changed; reloading the stream and telling tabs to resync"
                );
                Ok(true)
            }
            Verdict::Superseded => {
                tracing::info!(
                    replication_id = %id,
                    "redis named a master that was failed over; waiting for the new one"
                );
                Err(LinkError::Unavailable(
                    "the stream's node is a master that was failed over".into(),
                )
                .into())
            }
        }
    }

    /// Rebuilds the history from the stream's newest `history` entries and hands it to the hub in
    /// one step. When this instance had been following an earlier history, its connections may
    /// have missed events: they are told to resync.
    async fn load(&mut self, connection: &mut Conn) -> Result<(), Stop> {
        let key = self.link.stream_key().to_owned();
        // Atomic, so two instances starting on an empty stream do not both add a marker.
        let _: redis::Value = within(
            redis::cmd("EVAL")
                .arg(ENSURE_EPOCH_MARKER)
                .arg(1)
                .arg(&key)
                .arg(self.history)
                .arg(format!("{:032x}", rand::random::<u128>()))
                .query_async(connection),
        )
        .await?;
        let mut entries: Vec<Entry> = within(
            redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(self.history)
                .query_async(connection),
        )
        .await?;
        entries.reverse();
        let mut entries = entries.into_iter();
        // The oldest entry is the floor: resuming from it replays everything after it.
        let Some((oldest, _)) = entries.next() else {
            return Err(LinkError::BadId("stream is empty after adding its marker".into()).into());
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
        let reason = self.last.is_some().then_some(ResyncReason::Restart);
        self.reset(floor, events, reason).await?;
        self.last = Some(last);
        Ok(())
    }

    async fn send_committed(&self, committed: &mut Vec<Committed>) -> Result<(), HubGone> {
        if committed.is_empty() {
            return Ok(());
        }
        let notice = Notice::Committed(std::mem::take(committed));
        self.notices.send(notice).await.map_err(|_| HubGone)
    }

    /// Replaces the hub's history and waits until it holds it, so the reader reports healthy (and
    /// the instance ready) only once a resume can find what was loaded.
    async fn reset(
        &self,
        floor: EventId,
        events: Vec<Committed>,
        reason: Option<ResyncReason>,
    ) -> Result<(), HubGone> {
        let (applied, done) = oneshot::channel();
        let notice = Notice::Reset {
            floor,
            events,
            reason,
            applied,
        };
        self.notices.send(notice).await.map_err(|_| HubGone)?;
        done.await.map_err(|_| HubGone)
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
        match self.catalog.parse_stored(name, data) {
            Ok(event) => Decoded::Event(Committed { id, event }),
            Err(e) => {
                tracing::warn!(%id, error = %e, "skipping a stream entry that fails validation");
                Decoded::Foreign
            }
        }
    }
}

/// How many of the masters left behind are remembered.
const SUPERSEDED_KEPT: usize = 8;

/// The replication history this instance follows: the master it follows, and the replication
/// ids it left once a replica of theirs was promoted.
///
/// A failover gives the stream a new master, with a new replication id, and is one reload and one
/// `resync`. Two more ids show up around it, and neither is a failover:
/// - The old master still says it is one for a while (Sentinel demotes it seconds after
///   promoting the replica; a frozen cluster node thaws believing it still holds its slots), and
///   a connection can reach it after the promoted replica. A promoted replica names the id it was
///   promoted from (`master_replid2`), so once it is seen that id is known to be over and is
///   refused from then on: a master never goes back to an id it left (a promotion or a restart
///   always begins a new one).
/// - The promoted replica begins another id, with no `master_replid2`, when the old master comes
///   back as its replica (it had no replication backlog yet). The same server, the same data:
///   the history goes on.
#[derive(Debug, Default)]
struct Lineage {
    current: Option<History>,
    superseded: std::collections::VecDeque<String>,
}

/// What a master's history means for the instance following the stream.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The master followed so far (or the first one).
    Same,
    /// The same master under a new id, its data unchanged.
    GoesOn,
    /// A failover or a restart: reload, and tell the tabs to resync.
    New,
    /// An old master a replica was promoted from: not to be followed.
    Superseded,
}

/// `master_replid2` when there is none; an absent field (an `INFO` a provider filtered) is not
/// "none" but unknown.
fn no_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0')
}

impl Lineage {
    fn observe(&mut self, seen: History) -> Verdict {
        if self.superseded.contains(&seen.id) {
            return Verdict::Superseded;
        }
        let Some(current) = self.current.replace(seen.clone()) else {
            return Verdict::Same;
        };
        if current.id == seen.id {
            return Verdict::Same;
        }
        // Only a server that names itself can be known to be the same one.
        let goes_on =
            !seen.server.is_empty() && current.server == seen.server && no_id(&seen.promoted_from);
        // Only a promotion (or the same server going on) proves the old id is over: an id that
        // merely differs (a restart, a node reached by mistake) leaves it a candidate.
        if goes_on || seen.promoted_from == current.id {
            if self.superseded.len() == SUPERSEDED_KEPT {
                self.superseded.pop_front();
            }
            self.superseded.push_back(current.id);
        }
        if goes_on {
            Verdict::GoesOn
        } else {
            Verdict::New
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{History, Lineage, Verdict};

    const NONE: &str = "0000";

    /// A master on `server` with replication `id`, promoted from `promoted_from`.
    fn master(server: &str, id: &str, promoted_from: &str) -> History {
        History {
            server: server.to_owned(),
            id: id.to_owned(),
            promoted_from: promoted_from.to_owned(),
        }
    }

    /// Following the master on server `1` with id `a`.
    fn following() -> Lineage {
        let mut lineage = Lineage::default();
        assert_eq!(lineage.observe(master("1", "a", NONE)), Verdict::Same);
        lineage
    }

    #[test]
    fn the_same_master_again_needs_no_reload() {
        let mut lineage = following();
        assert_eq!(lineage.observe(master("1", "a", NONE)), Verdict::Same);
    }

    #[test]
    fn a_promoted_replica_is_one_reload_and_its_old_master_is_refused_from_then_on() {
        let mut lineage = following();
        assert_eq!(lineage.observe(master("2", "b", "a")), Verdict::New);
        assert_eq!(lineage.observe(master("1", "a", NONE)), Verdict::Superseded);
        assert_eq!(lineage.observe(master("2", "b", "a")), Verdict::Same);
    }

    #[test]
    fn the_old_master_seen_before_its_promoted_replica_is_still_followed() {
        let mut lineage = following();
        assert_eq!(lineage.observe(master("1", "a", NONE)), Verdict::Same);
        assert_eq!(lineage.observe(master("2", "b", "a")), Verdict::New);
    }

    #[test]
    fn a_promoted_replica_beginning_another_id_when_its_first_replica_attaches_goes_on() {
        let mut lineage = following();
        assert_eq!(lineage.observe(master("2", "b", "a")), Verdict::New);
        assert_eq!(lineage.observe(master("2", "c", NONE)), Verdict::GoesOn);
        assert_eq!(lineage.observe(master("1", "a", NONE)), Verdict::Superseded);
    }

    #[test]
    fn a_restarted_master_is_a_reload_but_does_not_supersede_the_one_before() {
        let mut lineage = following();
        assert_eq!(lineage.observe(master("3", "c", NONE)), Verdict::New);
        assert_eq!(lineage.observe(master("1", "a", NONE)), Verdict::New);
    }

    #[test]
    fn the_same_server_promoted_again_after_being_a_replica_is_a_reload() {
        let mut lineage = following();
        assert_eq!(lineage.observe(master("1", "d", "b")), Verdict::New);
    }

    #[test]
    fn without_the_server_and_former_ids_in_info_a_new_id_is_a_reload() {
        let mut lineage = Lineage::default();
        assert_eq!(lineage.observe(master("", "a", "")), Verdict::Same);
        assert_eq!(lineage.observe(master("", "b", "")), Verdict::New);
    }

    #[test]
    fn failovers_one_after_another_each_reload_once() {
        let mut lineage = following();
        assert_eq!(lineage.observe(master("2", "b", "a")), Verdict::New);
        assert_eq!(lineage.observe(master("1", "c", "b")), Verdict::New);
        assert_eq!(lineage.observe(master("2", "b", "a")), Verdict::Superseded);
    }
}
