//! Presence: which admins have a record open ("Anna is also on this order"), and whether they are
//! only viewing it or editing it.
//!
//! Each connection reports the records its tabs have open ([`Report`]: a WebSocket frame, or
//! `POST /admin-ws/presence` for SSE), and the report stands until it is replaced, the connection
//! closes, or `presence.ttl_secs` pass without it being repeated (a browser that vanished without
//! closing its socket). Whenever the list of admins on a record changes, every connection that
//! reported the record is sent the new list, rendered once, through the hub's broadcast
//! ([`Directed`]): no task, channel or timer per connection, as for events.
//!
//! The state lives here, in memory, per instance, and is never written anywhere it could outlast
//! its connections: with several instances, each one shares its own viewers of a record on the
//! [`Backplane`] when they change and every third of the TTL, and keeps what the others shared
//! until it lapses. An instance that dies takes its viewers with it within one TTL; one that
//! starts asks the others for theirs. Names come only from the signed token ([`Principal`]), never
//! from what a client sends.
//!
//! The connection table here also bounds each connection's receipts, and a report over HTTP for a
//! connection another instance holds is [`Forward`]ed to it on the backplane.

mod backplane;
mod forward;
mod report;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub(crate) use self::{
    backplane::Backplane,
    report::{Refusal, Report, brief, malformed},
};
use self::{
    forward::{Allowance, Forward, Spent},
    report::{RecordKey, ViewState},
};
use crate::{
    auth::Principal,
    hub::{Directed, Hub},
    metrics::Metrics,
    protocol::{ConnectionId, Message, TransportKind},
    rate::Budget,
    receipts::Receipts,
    settings::PresenceSettings,
};

/// One admin on a record, as every other admin sees them: nothing more than this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Viewer {
    actor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    state: ViewState,
}

/// Who has records open, on this instance and (through the backplane) on the others.
#[derive(Debug, Clone)]
pub(crate) struct Presence {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    hub: Hub,
    backplane: Backplane,
    metrics: Metrics,
    settings: PresenceSettings,
    receipts: Receipts,
    /// `receipts.max_per_sec`: the connection table keeps that budget too.
    max_receipts_per_sec: u32,
}

#[derive(Debug, Default)]
struct State {
    connections: HashMap<ConnectionId, Reporter>,
    records: HashMap<RecordKey, Record>,
    /// What each admin may still forward to other instances this second.
    allowance: Allowance,
}

/// Where a report or receipt made over HTTP was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// This instance holds the connection: taken.
    Here,
    /// Another may: on the backplane, for the one that holds it.
    Forwarded,
}

/// An open connection: who, on which transport, what it last reported, and what it may still
/// say this second (reports; receipts, which `receipts` counts).
#[derive(Debug)]
struct Reporter {
    principal: Arc<Principal>,
    transport: TransportKind,
    report: Report,
    /// When the report lapses unless it is repeated.
    lapses: Instant,
    /// The highest `seq` of the reports taken over HTTP (0: none numbered yet).
    seq: u64,
    reports: Budget,
    receipts: Budget,
}

/// One record someone has open.
#[derive(Debug, Default)]
struct Record {
    /// This instance's connections that reported it.
    watchers: BTreeMap<ConnectionId, (Arc<Principal>, ViewState)>,
    /// Other instances' viewers, and when each instance's lapse.
    remote: HashMap<u64, (Vec<Viewer>, Instant)>,
    /// The list the watchers were last sent.
    shown: Vec<Viewer>,
    /// This instance's own viewers, as last shared with the others.
    shared: Vec<Viewer>,
}

/// What changed for one record: its key, and connections that need its list even if unchanged.
type Touched = Vec<(RecordKey, Vec<ConnectionId>)>;

impl Presence {
    /// Starts the presence state, and its task (until `shutdown`): lapsing reports and other
    /// instances' viewers, sharing this instance's own, and hearing the others'. Must be called
    /// within a Tokio runtime.
    pub(crate) fn start(
        hub: Hub,
        settings: &PresenceSettings,
        receipts: Receipts,
        max_receipts_per_sec: u32,
        backplane: Backplane,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Self {
        let presence = Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                hub,
                backplane,
                metrics,
                settings: settings.clone(),
                receipts,
                max_receipts_per_sec,
            }),
        };
        tokio::spawn(presence.clone().keep(shutdown));
        presence
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change below is completed before the lock is released or is recomputed by the next
        // one, so a poisoned lock holds nothing half-done.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection; its id names it in `ready` and in reports over HTTP.
    pub(crate) fn open(&self, principal: Arc<Principal>, transport: TransportKind) -> ConnectionId {
        let settings = &self.inner.settings;
        let reporter = Reporter {
            principal,
            transport,
            report: Report::default(),
            lapses: Instant::now(),
            seq: 0,
            reports: Budget::new(settings.max_reports_per_sec),
            receipts: Budget::new(self.inner.max_receipts_per_sec),
        };
        let mut state = self.state();
        loop {
            let id = ConnectionId(rand::random());
            if let std::collections::hash_map::Entry::Vacant(entry) = state.connections.entry(id) {
                entry.insert(reporter);
                return id;
            }
        }
    }

    /// Counts a refused report, however far it got.
    pub(crate) fn refused(&self, refusal: &Refusal) {
        self.inner.metrics.presence_refused(refusal.code());
    }

    /// How long a report stands unless it is repeated (`presence.ttl_secs`).
    pub(crate) fn ttl(&self) -> Duration {
        self.inner.settings.ttl()
    }

    /// Counts connection `id`'s receipt for event `event`, made by `actor_id`, within the
    /// connection's budget. Whoever answers it counts a refusal.
    pub(crate) fn receipt(
        &self,
        id: ConnectionId,
        actor_id: &str,
        event: &str,
    ) -> Result<(), Refusal> {
        let transport = {
            let mut state = self.state();
            let reporter = state
                .connections
                .get_mut(&id)
                .filter(|reporter| reporter.principal.actor_id == actor_id)
                .ok_or_else(|| Refusal::UnknownConnection(id.to_string()))?;
            if !reporter.receipts.spend() {
                return Err(Refusal::TooManyReceipts {
                    limit: reporter.receipts.per_sec(),
                });
            }
            reporter.transport
        };
        self.inner
            .receipts
            .take(transport, event)
            .map_err(|_| Refusal::UnknownEvent)
    }

    /// A report made over HTTP (`seq`: its place among the connection's reports, if the client
    /// numbers them): taken when this instance holds the connection, else forwarded.
    pub(crate) async fn report_from_afar(
        &self,
        id: ConnectionId,
        actor_id: &str,
        report: Report,
        seq: Option<u64>,
    ) -> Result<Taken, Refusal> {
        if self.holds(id) {
            return self.report(id, actor_id, report, seq).map(|()| Taken::Here);
        }
        // What this instance can tell at once, it does.
        self.fits(&report)?;
        self.elsewhere(id, actor_id, Spent::Report)?;
        let forward = Forward {
            connection: id,
            actor_id: actor_id.to_owned(),
            records: report,
            seq,
        };
        if !self.inner.backplane.forward(&forward).await {
            return Err(Refusal::Unforwarded);
        }
        Ok(Taken::Forwarded)
    }

    /// A receipt made over HTTP: counted with its connection's budget when this instance holds
    /// it; else here too, as an SSE tab's (the only kind that sends receipts over HTTP), within
    /// the admin's allowance. Every instance reads the same events, so the lookup is the same.
    pub(crate) fn receipt_from_afar(
        &self,
        id: ConnectionId,
        actor_id: &str,
        event: &str,
    ) -> Result<(), Refusal> {
        if self.holds(id) {
            return self.receipt(id, actor_id, event);
        }
        self.elsewhere(id, actor_id, Spent::Receipt)?;
        self.inner
            .receipts
            .take(TransportKind::Sse, event)
            .map_err(|_| Refusal::UnknownEvent)
    }

    fn holds(&self, id: ConnectionId) -> bool {
        self.state().connections.contains_key(&id)
    }

    /// Whether `actor_id` may have a report or receipt for connection `id`, which this instance
    /// does not hold, taken care of here: only with other instances that may hold it, and within
    /// the admin's allowance on this one (the connection's own limits).
    fn elsewhere(&self, id: ConnectionId, actor_id: &str, spent: Spent) -> Result<(), Refusal> {
        if !self.inner.backplane.forwards() {
            return Err(Refusal::UnknownConnection(id.to_string()));
        }
        let (limit, refusal) = match spent {
            Spent::Report => {
                let limit = self.inner.settings.max_reports_per_sec;
                (limit, Refusal::TooManyReports { limit })
            }
            Spent::Receipt => {
                let limit = self.inner.max_receipts_per_sec;
                (limit, Refusal::TooManyReceipts { limit })
            }
        };
        if self.state().allowance.spend(actor_id, spent, limit) {
            Ok(())
        } else {
            Err(refusal)
        }
    }

    /// A report another instance forwarded: taken if this one holds the connection, as if it had
    /// arrived here. A refusal is counted, not told: the forwarding instance already answered,
    /// and each message to the tab would wake every connection here.
    fn forwarded(&self, forward: Forward) {
        let Forward {
            connection,
            actor_id,
            records,
            seq,
        } = forward;
        if !self.holds(connection) {
            return;
        }
        if let Err(refusal) = self.report(connection, &actor_id, records, seq) {
            self.refused(&refusal);
        }
    }

    /// A report with more records than `presence.max_records` is refused.
    fn fits(&self, report: &Report) -> Result<(), Refusal> {
        let limit = self.inner.settings.max_records;
        if report.len() > limit {
            return Err(Refusal::TooManyRecords {
                count: report.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Forgets a connection and takes it off every record it reported.
    pub(crate) fn close(&self, id: ConnectionId) {
        let mut state = self.state();
        let Some(reporter) = state.connections.remove(&id) else {
            return;
        };
        let touched = reporter
            .report
            .records()
            .map(|(key, _)| (key.clone(), Vec::new()))
            .collect();
        for (key, _) in reporter.report.records() {
            if let Some(record) = state.records.get_mut(key) {
                record.watchers.remove(&id);
            }
        }
        self.settle(&mut state, touched);
    }

    /// Takes connection `id`'s report, made by `actor_id`, in place of its previous one; a refusal
    /// changes nothing. Whoever answers the report counts a refusal ([`Self::refused`]).
    pub(crate) fn report(
        &self,
        id: ConnectionId,
        actor_id: &str,
        report: Report,
        seq: Option<u64>,
    ) -> Result<(), Refusal> {
        let settings = &self.inner.settings;
        let now = Instant::now();
        let mut guard = self.state();
        let State {
            connections,
            records,
            ..
        } = &mut *guard;
        let reporter = connections
            .get_mut(&id)
            .filter(|reporter| reporter.principal.actor_id == actor_id)
            .ok_or_else(|| Refusal::UnknownConnection(id.to_string()))?;
        self.fits(&report)?;
        // A report overtaken by a later one (sent through another instance, taken after the
        // later one arrived here directly) is stale: dropped, not refused.
        if let Some(seq) = seq {
            if seq <= reporter.seq {
                return Ok(());
            }
            reporter.seq = seq;
        }
        if !reporter.reports.spend() {
            return Err(Refusal::TooManyReports {
                limit: settings.max_reports_per_sec,
            });
        }
        reporter.lapses = now + settings.ttl();
        let previous = std::mem::replace(&mut reporter.report, report);
        let mut touched: Touched = Vec::new();
        for (key, _) in previous.records() {
            if reporter.report.state_of(key).is_none() {
                if let Some(record) = records.get_mut(key) {
                    record.watchers.remove(&id);
                }
                touched.push((key.clone(), Vec::new()));
            }
        }
        for (key, view) in reporter.report.records() {
            let before = previous.state_of(key);
            if before != Some(view) {
                let watcher = (Arc::clone(&reporter.principal), view);
                records
                    .entry(key.clone())
                    .or_default()
                    .watchers
                    .insert(id, watcher);
                let newcomer = if before.is_none() {
                    vec![id]
                } else {
                    Vec::new()
                };
                touched.push((key.clone(), newcomer));
            }
        }
        self.settle(&mut guard, touched);
        Ok(())
    }

    /// What another instance shares: its viewers of each record (none: it has no one there now).
    fn heard(&self, instance: u64, shares: Vec<backplane::Share>) {
        let lapses = Instant::now() + self.inner.settings.ttl();
        let mut state = self.state();
        let mut touched: Touched = Vec::new();
        for (record, viewers) in shares {
            let entry = state.records.entry(record.clone()).or_default();
            if viewers.is_empty() {
                entry.remote.remove(&instance);
            } else {
                entry.remote.insert(instance, (viewers, lapses));
            }
            touched.push((record, Vec::new()));
        }
        self.settle(&mut state, touched);
    }

    /// Sends connection `id` the current list of every record it reports: it fell behind the
    /// broadcast, and the changes it missed may have been among what it lost.
    pub(crate) fn resend(&self, id: ConnectionId) {
        let state = self.state();
        let Some(reporter) = state.connections.get(&id) else {
            return;
        };
        let lists = reporter
            .report
            .records()
            .filter_map(|(key, _)| Some((key, state.records.get(key)?)))
            .map(|(key, record)| Directed {
                to: vec![id],
                message: self.render(key, &record.shown),
            })
            .collect();
        self.inner.hub.direct(lists);
    }

    /// Lapses reports not repeated in time and other instances' viewers not heard of in time.
    fn lapse(&self, now: Instant) {
        let mut state = self.state();
        let State {
            connections,
            records,
            allowance,
        } = &mut *state;
        allowance.renew();
        let mut touched: Touched = Vec::new();
        for (id, reporter) in connections.iter_mut() {
            if !reporter.report.is_empty() && reporter.lapses <= now {
                for (key, _) in reporter.report.records() {
                    if let Some(record) = records.get_mut(key) {
                        record.watchers.remove(id);
                    }
                    touched.push((key.clone(), Vec::new()));
                }
                reporter.report = Report::default();
            }
        }
        for (key, record) in records.iter_mut() {
            let before = record.remote.len();
            record.remote.retain(|_, (_, lapses)| *lapses > now);
            if record.remote.len() != before {
                touched.push((key.clone(), Vec::new()));
            }
        }
        self.settle(&mut state, touched);
    }

    /// Brings each touched record's lists up to date: shares this instance's viewers when they
    /// changed, sends the watchers the list when it changed (or only to newcomers when it did
    /// not), and forgets a record nobody is on any more.
    fn settle(&self, state: &mut State, touched: Touched) {
        let mut shares = Vec::new();
        let mut lists = Vec::new();
        for (key, newcomers) in touched {
            let Some(record) = state.records.get_mut(&key) else {
                continue;
            };
            let local = gather(
                record
                    .watchers
                    .values()
                    .map(|(principal, view)| viewer(principal, *view)),
            );
            if local != record.shared {
                record.shared.clone_from(&local);
                shares.push((key.clone(), local.clone()));
            }
            let all = gather(
                local.into_iter().chain(
                    record
                        .remote
                        .values()
                        .flat_map(|(viewers, _)| viewers.iter().cloned()),
                ),
            );
            let to: Vec<ConnectionId> = if all == record.shown {
                newcomers
                    .into_iter()
                    .filter(|id| record.watchers.contains_key(id))
                    .collect()
            } else {
                record.watchers.keys().copied().collect()
            };
            record.shown = all;
            if !to.is_empty() {
                let message = self.render(&key, &record.shown);
                lists.push(Directed { to, message });
            }
            // `shared` was just set from the watchers, so no watchers means nothing shared.
            if record.watchers.is_empty() && record.remote.is_empty() {
                state.records.remove(&key);
            }
        }
        self.inner.hub.direct(lists);
        self.inner.metrics.presence_records(state.records.len());
        self.inner.backplane.share(shares);
    }

    /// The `presence` message for `record`: at most `presence.max_viewers`, the rest counted.
    fn render(&self, record: &RecordKey, viewers: &[Viewer]) -> Message {
        let shown = viewers.len().min(self.inner.settings.max_viewers);
        let data = serde_json::json!({
            "record": record.as_str(),
            "viewers": &viewers[..shown],
            "more": viewers.len() - shown,
        });
        Message::presence(&data.to_string())
    }

    /// Every record this instance has viewers on, with them: for the periodic share, and for an
    /// instance that just started.
    fn own(&self) -> Vec<(RecordKey, Vec<Viewer>)> {
        self.state()
            .records
            .iter()
            .filter(|(_, record)| !record.shared.is_empty())
            .map(|(key, record)| (key.clone(), record.shared.clone()))
            .collect()
    }

    /// The presence task: lapses once a second, shares this instance's viewers every third of the
    /// TTL, and takes in what other instances share, until shutdown; then tells them this
    /// instance's viewers are gone.
    async fn keep(self, shutdown: CancellationToken) {
        let mut lapse = tokio::time::interval(Duration::from_secs(1));
        let mut share = tokio::time::interval(self.inner.settings.ttl() / 3);
        let mut heard = self.inner.backplane.listen(shutdown.clone());
        let mut listening = true;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                now = lapse.tick() => self.lapse(now.into_std()),
                _ = share.tick() => self.inner.backplane.share(self.own()),
                news = heard.recv(), if listening => match news {
                    Some(backplane::News::Viewers { instance, shares }) => {
                        self.heard(instance, shares);
                    }
                    Some(backplane::News::ShareAgain) => self.inner.backplane.share(self.own()),
                    Some(backplane::News::Forwarded(forward)) => self.forwarded(forward),
                    // Alone, or the backplane stopped: nothing more to hear.
                    None => listening = false,
                },
            }
        }
        let gone = self
            .own()
            .into_iter()
            .map(|(key, _)| (key, Vec::new()))
            .collect();
        self.inner.backplane.farewell(gone).await;
    }
}

fn viewer(principal: &Principal, state: ViewState) -> Viewer {
    Viewer {
        actor_id: principal.actor_id.clone(),
        name: principal.name.clone(),
        state,
    }
}

/// One entry per admin (several tabs or instances count once; editing wins), in a stable order:
/// by name, then id.
fn gather(viewers: impl Iterator<Item = Viewer>) -> Vec<Viewer> {
    let mut by_actor: BTreeMap<String, Viewer> = BTreeMap::new();
    for viewer in viewers {
        by_actor
            .entry(viewer.actor_id.clone())
            .and_modify(|seen| seen.state = seen.state.max(viewer.state))
            .or_insert(viewer);
    }
    let mut viewers: Vec<Viewer> = by_actor.into_values().collect();
    viewers.sort_by(|a, b| (a.name.as_deref(), &a.actor_id).cmp(&(b.name.as_deref(), &b.actor_id)));
    viewers
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::broadcast;

    use super::*;
    use crate::{
        broker::{Broker, memory::MemoryBroker},
        hub::HubMessage,
        idempotency::MemoryAnswers,
        settings::ReceiptSettings,
    };

    /// Presence on one instance, the broadcast its lists go out on, and Anna's connection.
    fn anna_alone() -> (Presence, broadcast::Receiver<HubMessage>, ConnectionId) {
        let (broker, notices) = MemoryBroker::new(MemoryAnswers::new(Duration::from_secs(60), 100));
        let hub = Hub::start(Broker::Memory(broker), notices, 10, 64);
        let metrics = Metrics::new().expect("metrics");
        let receipts = Receipts::new(hub.clone(), metrics.clone(), &ReceiptSettings::default());
        let presence = Presence::start(
            hub.clone(),
            &PresenceSettings::default(),
            receipts,
            10,
            Backplane::Alone,
            metrics,
            CancellationToken::new(),
        );
        let anna = Arc::new(Principal {
            actor_id: "user_anna".into(),
            name: None,
            valid_until: u64::MAX,
        });
        let feed = hub.feed();
        let id = presence.open(anna, TransportKind::Ws);
        (presence, feed, id)
    }

    fn report(records: &[String]) -> Report {
        let records = records
            .iter()
            .map(|record| format!(r#""{record}":"viewing""#))
            .collect::<Vec<_>>()
            .join(",");
        serde_json::from_str(&format!("{{{records}}}")).expect("a report")
    }

    #[tokio::test]
    async fn a_report_that_touches_many_records_wakes_every_connection_once() {
        let (presence, mut feed, id) = anna_alone();
        let max = PresenceSettings::default().max_records;
        let records: Vec<String> = (0..max).map(|n| format!("order:o{n}")).collect();
        presence
            .report(id, "user_anna", report(&records), None)
            .expect("taken");
        let Ok(HubMessage::Direct(lists)) = feed.recv().await else {
            panic!("the lists first");
        };
        assert_eq!(lists.len(), max);
        assert!(lists.iter().all(|list| list.is_for(id)));
        assert!(feed.is_empty(), "one message for all sixteen lists");
    }

    #[tokio::test]
    async fn a_numbered_report_overtaken_by_a_later_one_changes_nothing() {
        let (presence, mut feed, id) = anna_alone();
        let on_order = report(&["order:o1".to_owned()]);
        presence
            .report(id, "user_anna", on_order, Some(2))
            .expect("taken");
        assert!(matches!(feed.recv().await, Ok(HubMessage::Direct(_))));
        // Report 1 (say, leaving the order) came the long way, through another instance.
        presence
            .report(id, "user_anna", report(&[]), Some(1))
            .expect("dropped, not refused");
        assert!(feed.is_empty(), "Anna is still on the order");
        presence
            .report(id, "user_anna", report(&["order:o2".to_owned()]), Some(3))
            .expect("taken");
        assert!(matches!(feed.recv().await, Ok(HubMessage::Direct(_))));
    }
}
