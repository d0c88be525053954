//! The hub: the single place events enter and the single broadcast every connection reads.
//!
//! It owns the bounded history used for resume and the live `tokio::sync::broadcast` channel. Both
//! are updated under one lock, and a subscriber takes its history snapshot and its broadcast receiver
//! under that same lock, so "replay then live" can neither skip nor repeat an event, however fast
//! events arrive during the replay.
//!
//! Where events come from is the backend's business: in memory mode the hub numbers them itself; in
//! Redis mode the backplane appends them to a stream and feeds back what it reads, so every instance
//! sees the same ids in the same order (see `backplane`).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{
    backplane::{Backplane, BackplaneError},
    event::{Event, EventId, PendingEvent, ResyncReason},
};

/// How long a resume id ahead of this instance's head may wait for the backplane reader.
const CATCH_UP: Duration = Duration::from_secs(2);
/// Stream ids carry the Redis server's clock; ids further ahead than this are not worth a wait.
const MAX_SKEW_MS: u64 = 5_000;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the broadcast carries: an event, or word that the history was lost and began anew.
#[derive(Debug, Clone)]
pub enum HubMessage {
    Event(Arc<Event>),
    Reset(ResyncReason),
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("the backplane cannot accept events")]
    Unavailable(#[from] BackplaneError),
    #[error("the hub has stopped")]
    Stopped,
}

/// A publish request for the memory hub's writer task.
#[derive(Debug)]
struct Batch {
    events: Vec<PendingEvent>,
    reply: oneshot::Sender<Vec<EventId>>,
}

/// Batches waiting for the memory hub's writer; publishers wait (backpressure) beyond it.
const PUBLISH_QUEUE: usize = 1024;

/// The memory hub's single writer: ids in arrival order, answer first, fan-out after.
async fn write_memory(hub: Weak<Inner>, mut batches: mpsc::Receiver<Batch>, epoch: u64) {
    let mut seq = 0;
    while let Some(Batch { events, reply }) = batches.recv().await {
        let events: Vec<Arc<Event>> = events
            .into_iter()
            .map(|pending| {
                seq += 1;
                Arc::new(Event::new(
                    EventId::new(epoch, seq),
                    pending.name,
                    &pending.data,
                ))
            })
            .collect();
        // The publisher may have given up (its request was cancelled); the events stand.
        let _ = reply.send(events.iter().map(|e| e.id).collect());
        let Some(inner) = hub.upgrade() else { return };
        let hub = Hub { inner };
        let mut history = hub.history();
        for event in events {
            hub.ingest_locked(&mut history, event);
        }
    }
}

/// How a new subscription starts, decided from the resume id it presented.
#[derive(Debug)]
pub enum Start {
    /// No resume id: live events only.
    Fresh,
    /// Every event after the resume id, in order; live events follow without overlap.
    Replay(Vec<Arc<Event>>),
    /// The resume id is not covered by the history: the client must refetch.
    Gap,
}

#[derive(Debug)]
pub struct Subscription {
    pub receiver: broadcast::Receiver<HubMessage>,
    pub start: Start,
    /// The id a client can safely resume from once it has the replay: its own resume id when
    /// replaying (it has not seen the replay yet), else the head.
    pub resume_point: EventId,
}

#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    history: Mutex<History>,
    sender: broadcast::Sender<HubMessage>,
    source: Source,
    /// The newest id taken in from the backplane, for resumes that arrive ahead of the reader.
    head: watch::Sender<EventId>,
}

#[derive(Debug)]
enum Source {
    /// Ids are `<boot ms>-<seq>`: unique across restarts, recognisably foreign after one.
    Memory { writer: mpsc::Sender<Batch> },
    /// Ids come from the Redis stream; the backplane's reader feeds events back in.
    Redis(Backplane),
}

/// A bounded, id-ordered window of recent events.
///
/// `floor` is the id just before the oldest held event: resuming from it replays the whole window.
/// Resuming from any id that is neither the floor nor held is a gap, which is what makes ids from an
/// earlier run, a wiped backplane or a rolled-over window safe: they are simply not found.
#[derive(Debug)]
struct History {
    events: VecDeque<Arc<Event>>,
    floor: EventId,
    capacity: usize,
}

impl History {
    fn new(floor: EventId, capacity: usize) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(4096)),
            floor,
            capacity,
        }
    }

    fn head(&self) -> EventId {
        self.events.back().map_or(self.floor, |e| e.id)
    }

    fn push(&mut self, event: Arc<Event>) {
        if self.events.len() == self.capacity
            && let Some(oldest) = self.events.pop_front()
        {
            self.floor = oldest.id;
        }
        self.events.push_back(event);
    }

    fn after(&self, id: EventId) -> Option<Vec<Arc<Event>>> {
        let start = if id == self.floor {
            0
        } else {
            self.events.binary_search_by_key(&id, |e| e.id).ok()? + 1
        };
        Some(self.events.range(start..).cloned().collect())
    }
}

impl Hub {
    /// An in-memory hub: one process, history lost on restart (clients then get `resync`).
    ///
    /// One writer task owns the write path: it numbers each batch, answers the publisher at once,
    /// and only then puts the events into the history and the broadcast, whose `send` wakes every
    /// waiting connection. So an emit never waits for the fan-out, however many tabs are open.
    /// Must be called within a Tokio runtime.
    pub fn memory(history: usize, buffer: usize) -> Self {
        let epoch = unix_ms();
        let (writer, batches) = mpsc::channel(PUBLISH_QUEUE);
        let hub = Self::with_source(
            Source::Memory { writer },
            EventId::new(epoch, 0),
            history,
            buffer,
        );
        // A weak handle: the task ends once the last `Hub` is gone and the channel closes.
        tokio::spawn(write_memory(Arc::downgrade(&hub.inner), batches, epoch));
        hub
    }

    /// A hub fed by a Redis stream; its history starts empty until the reader has loaded.
    pub fn redis(backplane: Backplane, history: usize, buffer: usize) -> Self {
        Self::with_source(Source::Redis(backplane), EventId::ZERO, history, buffer)
    }

    fn with_source(source: Source, floor: EventId, history: usize, buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer);
        Self {
            inner: Arc::new(Inner {
                history: Mutex::new(History::new(floor, history)),
                sender,
                source,
                head: watch::Sender::new(floor),
            }),
        }
    }

    fn history(&self) -> MutexGuard<'_, History> {
        // A panic while holding the lock cannot leave the ring half-updated (every update is a
        // single push), so a poisoned lock is still safe to use.
        self.inner.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes events in order and returns their ids once the hub has durably accepted them:
    /// immediately in memory mode, after the stream append in Redis mode. Never waits for fan-out.
    pub async fn publish(&self, events: Vec<PendingEvent>) -> Result<Vec<EventId>, HubError> {
        match &self.inner.source {
            Source::Memory { writer } => {
                let (reply, ids) = oneshot::channel();
                writer
                    .send(Batch { events, reply })
                    .await
                    .map_err(|_| HubError::Stopped)?;
                ids.await.map_err(|_| HubError::Stopped)
            }
            Source::Redis(backplane) => Ok(backplane.append(&events).await?),
        }
    }

    /// Adds an event read from the backplane; ids at or below the head (re-reads) are ignored.
    pub(crate) fn ingest(&self, event: Arc<Event>) {
        let mut history = self.history();
        if event.id > history.head() {
            let id = event.id;
            self.ingest_locked(&mut history, event);
            self.inner.head.send_replace(id);
        }
    }

    /// Swaps in a whole new history (the backplane reloaded it) in one step, without broadcasting
    /// its events: connections either had them or, with a reason, are told to resync.
    pub(crate) fn replace(
        &self,
        floor: EventId,
        events: Vec<Arc<Event>>,
        notify: Option<ResyncReason>,
    ) {
        let mut history = self.history();
        let mut fresh = History::new(floor, history.capacity);
        for event in events {
            fresh.push(event);
        }
        let head = fresh.head();
        *history = fresh;
        self.inner.head.send_replace(head);
        if let Some(reason) = notify {
            let _ = self.inner.sender.send(HubMessage::Reset(reason));
        }
    }

    fn ingest_locked(&self, history: &mut History, event: Arc<Event>) {
        history.push(Arc::clone(&event));
        // No receivers is fine: the event still went into the history.
        let _ = self.inner.sender.send(HubMessage::Event(event));
    }

    /// Subscribes to live events and decides, atomically with it, what to replay for `resume`.
    ///
    /// In Redis mode an id newer than this instance's head may simply not have been read yet (the
    /// tab was on a faster instance a moment ago), so it waits briefly for the reader to catch up
    /// before calling it a gap.
    pub async fn subscribe(&self, resume: Option<&str>) -> Subscription {
        let ahead = resume.and_then(|r| r.parse::<EventId>().ok());
        if let (Source::Redis(backplane), Some(id)) = (&self.inner.source, ahead) {
            // Only worth waiting for an id the reader could still deliver: it is following the
            // stream, and the id is not from the future (garbage, another stream, a skewed clock).
            let plausible =
                backplane.health().is_ok() && id.ms <= unix_ms().saturating_add(MAX_SKEW_MS);
            if plausible && id > *self.inner.head.borrow() {
                let mut head = self.inner.head.subscribe();
                let _ = tokio::time::timeout(CATCH_UP, head.wait_for(|head| *head >= id)).await;
            }
        }
        self.subscribe_now(resume)
    }

    fn subscribe_now(&self, resume: Option<&str>) -> Subscription {
        let history = self.history();
        let receiver = self.inner.sender.subscribe();
        let head = history.head();
        let Some(resume) = resume else {
            return Subscription {
                receiver,
                start: Start::Fresh,
                resume_point: head,
            };
        };
        match resume
            .parse()
            .ok()
            .and_then(|id| Some((id, history.after(id)?)))
        {
            Some((id, events)) => Subscription {
                receiver,
                start: Start::Replay(events),
                resume_point: id,
            },
            None => Subscription {
                receiver,
                start: Start::Gap,
                resume_point: head,
            },
        }
    }

    /// Whether publishing can currently succeed.
    pub fn is_ready(&self) -> Result<(), String> {
        match &self.inner.source {
            Source::Memory { .. } => Ok(()),
            Source::Redis(backplane) => backplane.health(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Catalog;

    fn pending(n: usize) -> Vec<PendingEvent> {
        let catalog = Catalog::new(&[], 100, 100);
        let body = format!(
            "[{}]",
            vec![r#"{"event":"product.updated","data":{"id":"p"}}"#; n].join(",")
        );
        catalog
            .parse_body(body.as_bytes())
            .expect("valid batch")
            .events
    }

    fn replayed(sub: &Subscription) -> Vec<EventId> {
        match &sub.start {
            Start::Replay(events) => events.iter().map(|e| e.id).collect(),
            other => panic!("expected a replay, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn resume_replays_exactly_what_followed_the_id() {
        let hub = Hub::memory(10, 16);
        let ids = hub.publish(pending(5)).await.expect("memory never fails");
        let sub = hub.subscribe(Some(&ids[1].to_string())).await;
        assert_eq!(replayed(&sub), ids[2..]);
        assert_eq!(sub.resume_point, ids[1]);
    }

    #[tokio::test]
    async fn the_ready_id_of_an_empty_hub_resumes_everything() {
        let hub = Hub::memory(10, 16);
        let before = hub.subscribe(None).await.resume_point;
        let ids = hub.publish(pending(3)).await.expect("memory never fails");
        assert_eq!(
            replayed(&hub.subscribe(Some(&before.to_string())).await),
            ids
        );
    }

    #[tokio::test]
    async fn ids_outside_the_window_are_gaps() {
        let hub = Hub::memory(3, 16);
        let ids = hub.publish(pending(6)).await.expect("memory never fails");
        // The window holds ids[3..]; ids[2] is its floor and still resumable.
        assert_eq!(
            replayed(&hub.subscribe(Some(&ids[2].to_string())).await),
            ids[3..]
        );
        for gone in [
            ids[1].to_string(),
            "1-1".into(),
            "junk".into(),
            "99999999999999-1".into(),
        ] {
            assert!(
                matches!(hub.subscribe(Some(&gone)).await.start, Start::Gap),
                "{gone}"
            );
        }
    }

    #[tokio::test]
    async fn live_events_continue_exactly_where_the_replay_ends() {
        let hub = Hub::memory(100, 16);
        let first = hub.publish(pending(2)).await.expect("memory never fails");
        let mut sub = hub.subscribe(Some(&first[0].to_string())).await;
        let later = hub.publish(pending(2)).await.expect("memory never fails");
        assert_eq!(replayed(&sub), first[1..]);
        for id in later {
            match sub.receiver.recv().await.expect("open") {
                HubMessage::Event(event) => assert_eq!(event.id, id),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
