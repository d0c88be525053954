//! The hub: the single place events enter and the single broadcast every connection reads.
//!
//! Every publish, keyed or not, goes through [`Hub::publish`] into the hub's [`Broker`]; what the
//! broker commits comes back as [`Notice`]s, which one task turns into rendered [`Event`]s (the only
//! place events are rendered), the bounded history used for resume, and the live
//! `tokio::sync::broadcast` channel. History and broadcast are updated under one lock, and a
//! subscriber takes its history snapshot and its broadcast receiver under that same lock, so
//! "replay then live" can neither skip nor repeat an event, however fast events arrive during the
//! replay.

mod history;
mod live;
#[cfg(test)]
mod tests;

use std::{
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use tokio::sync::{broadcast, watch};

use self::history::History;
pub(crate) use self::live::{Lagged, Live};
use crate::{
    broker::{Broker, BrokerError, Committed, Notice, Notices, PublishOptions, Published},
    catalog::PendingEvent,
    protocol::{ConnectionId, Event, EventId, Message, ResyncReason},
};

/// How long a resume id the broker may still deliver waits for it before it is called a gap.
const CATCH_UP: Duration = Duration::from_secs(2);

/// What the broadcast carries: an event, word that the history was lost and began anew, or the
/// shared clock.
#[derive(Debug, Clone)]
pub(crate) enum HubMessage {
    Event(Arc<Event>),
    Reset(ResyncReason),
    /// Wakes every connection to check its deadlines (heartbeat, token expiry, silence, drain):
    /// one clock for all of them instead of timers of their own.
    Tick,
    /// Messages for the few connections each names (who has a record open); the rest skip them.
    /// Whatever one change made goes in one: a report that touches many records wakes every
    /// connection once, not once per record.
    Direct(Arc<[Directed]>),
}

/// A message rendered once for the connections in `to`, never kept in the history.
#[derive(Debug)]
pub(crate) struct Directed {
    /// Sorted, so a connection finds itself by binary search.
    pub(crate) to: Vec<ConnectionId>,
    pub(crate) message: Message,
}

impl Directed {
    pub(crate) fn is_for(&self, connection: ConnectionId) -> bool {
        self.to.binary_search(&connection).is_ok()
    }
}

/// How a new subscription starts, decided from the resume id it presented.
#[derive(Debug)]
pub(crate) enum Start {
    /// No resume id: live events only.
    Fresh,
    /// Every event after the resume id, in order; live events follow without overlap.
    Replay(Vec<Arc<Event>>),
    /// The resume id is not covered by the history: the client must refetch.
    Gap,
}

#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) receiver: broadcast::Receiver<HubMessage>,
    pub(crate) start: Start,
    /// The id a client can safely resume from once it has the replay: its own resume id when
    /// replaying (it has not seen the replay yet), else the head.
    pub(crate) resume_point: EventId,
}

#[derive(Debug, Clone)]
pub(crate) struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    history: Mutex<History>,
    sender: broadcast::Sender<HubMessage>,
    broker: Broker,
    /// The newest id taken in, for resumes that arrive ahead of the broker's notices.
    head: watch::Sender<EventId>,
}

/// Drains the broker's notices into the hub until either side is gone.
async fn take_notices(hub: Weak<Inner>, mut notices: Notices) {
    while let Some(notice) = notices.recv().await {
        let Some(inner) = hub.upgrade() else { return };
        Hub { inner }.take(notice);
    }
}

impl Hub {
    /// A hub over `broker`, holding up to `history` events for resume and `buffer` in the live
    /// broadcast. Must be called within a Tokio runtime: it spawns the task that takes in the
    /// broker's notices.
    pub(crate) fn start(broker: Broker, notices: Notices, history: usize, buffer: usize) -> Self {
        let floor = broker.floor();
        let (sender, _) = broadcast::channel(buffer);
        let hub = Self {
            inner: Arc::new(Inner {
                history: Mutex::new(History::new(floor, history)),
                sender,
                broker,
                head: watch::Sender::new(floor),
            }),
        };
        // A weak handle: the task ends once the last `Hub` is gone and the channel closes.
        tokio::spawn(take_notices(Arc::downgrade(&hub.inner), notices));
        hub
    }

    fn history(&self) -> MutexGuard<'_, History> {
        // A panic while holding the lock cannot leave the ring half-updated (every update is a
        // single push), so a poisoned lock is still safe to use.
        self.inner.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes events in order and returns their ids once the broker has durably accepted them
    /// (in Redis mode: after the stream append). Never waits for the fan-out.
    pub(crate) async fn publish(
        &self,
        events: Vec<PendingEvent>,
        options: PublishOptions,
    ) -> Result<Published, BrokerError> {
        self.inner.broker.publish(events, options).await
    }

    /// Takes in one notice: renders committed events once and broadcasts them, or swaps in a whole
    /// new history.
    fn take(&self, notice: Notice) {
        match notice {
            Notice::Committed(committed) => {
                let mut history = self.history();
                let mut head = history.head();
                for Committed { id, event } in committed {
                    // Ids at or below the head are re-reads after a reconnect.
                    if id > head {
                        head = id;
                        let event = Arc::new(Event::new(id, event.name, &event.data));
                        history.push(Arc::clone(&event));
                        // No receivers is fine: the event still went into the history.
                        let _ = self.inner.sender.send(HubMessage::Event(event));
                    }
                }
                self.inner.head.send_replace(head);
            }
            Notice::Reset {
                floor,
                events,
                reason,
                applied,
            } => {
                self.replace(floor, events, reason);
                let _ = applied.send(());
            }
        }
    }

    /// Swaps in a whole new history in one step, without broadcasting its events: connections
    /// either had them or, with a reason, are told to resync.
    fn replace(&self, floor: EventId, events: Vec<Committed>, reason: Option<ResyncReason>) {
        let mut history = self.history();
        let mut fresh = History::new(floor, history.capacity());
        for Committed { id, event } in events {
            fresh.push(Arc::new(Event::new(id, event.name, &event.data)));
        }
        let head = fresh.head();
        *history = fresh;
        self.inner.head.send_replace(head);
        if let Some(reason) = reason {
            let _ = self.inner.sender.send(HubMessage::Reset(reason));
        }
    }

    /// Subscribes to live events and decides, atomically with it, what to replay for `resume`.
    ///
    /// An id newer than this hub's head may simply not have reached it yet (in Redis mode the tab
    /// was on a faster instance a moment ago), so when the broker may still deliver it, this waits
    /// briefly before calling it a gap.
    pub(crate) async fn subscribe(&self, resume: Option<&str>) -> Subscription {
        if let Some(id) = resume.and_then(|r| r.parse::<EventId>().ok())
            && id > *self.inner.head.borrow()
            && self.inner.broker.may_deliver(id)
        {
            let mut head = self.inner.head.subscribe();
            let _ = tokio::time::timeout(CATCH_UP, head.wait_for(|head| *head >= id)).await;
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

    /// The event `id`, while the history holds it.
    pub(crate) fn event(&self, id: EventId) -> Option<Arc<Event>> {
        self.history().get(id)
    }

    /// The broadcast itself, as a connection's live feed reads it.
    #[cfg(test)]
    pub(crate) fn feed(&self) -> broadcast::Receiver<HubMessage> {
        self.inner.sender.subscribe()
    }

    /// Sends [`HubMessage::Tick`] to every subscriber.
    pub(crate) fn tick(&self) {
        let _ = self.inner.sender.send(HubMessage::Tick);
    }

    /// Sends each of `directed` to the connections it names, as one message through the same
    /// broadcast as events (its order among them does not matter: it belongs to no history).
    pub(crate) fn direct(&self, mut directed: Vec<Directed>) {
        if directed.is_empty() {
            return;
        }
        for directed in &mut directed {
            directed.to.sort_unstable();
        }
        let _ = self.inner.sender.send(HubMessage::Direct(directed.into()));
    }

    /// Whether publishing can currently succeed; the reason when it cannot.
    pub(crate) fn health(&self) -> Result<(), String> {
        self.inner.broker.health()
    }
}
