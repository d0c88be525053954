//! A connection's live feed: its own broadcast receiver, woken by its worker thread's doorbell.
//!
//! Every connection keeps its own `broadcast::Receiver`, taken under the hub's lock, so the
//! replay-then-live guarantee and lag detection are exactly tokio's. What changes is who waits.
//! Left to itself, each receiver would register its task in the channel's waiter list, and every
//! event would have the hub's thread wake each connection across threads: a shared lock per
//! waiter, a remote-queue push and an `eventfd` write per connection per event. Instead one
//! doorbell task per worker thread waits on the channel; when it rings, it wakes the connections
//! of its own thread, which then take their messages with `try_recv`. An event costs one
//! cross-thread wake per worker, not one per connection.
//!
//! No wake-up is lost. A connection asks to be woken only after `try_recv` found nothing, which
//! tokio decides under the channel's tail lock, so whatever is sent later is sent after the check
//! and reaches the doorbell's own receiver too. The doorbell runs on the connection's thread, so
//! it cannot ring between the check and the request; and a ring takes its list out before it
//! wakes anyone, so whoever asks while it rings (it yields between batches) is on the next list.

use std::{
    cell::{Cell, RefCell},
    rc::Rc,
    sync::{Arc, Weak},
    task::{Context, Poll, Waker},
};

use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use super::{Hub, HubMessage, Inner};

/// The connection fell further behind than the broadcast buffer holds.
#[derive(Debug)]
pub(crate) struct Lagged;

/// One connection's live feed.
#[derive(Debug)]
pub(crate) struct Live {
    receiver: broadcast::Receiver<HubMessage>,
    doorbell: Rc<Doorbell>,
    /// The doorbell round this feed last asked to be woken in, and its place on that round's list.
    asked: Option<(u64, usize)>,
}

impl Live {
    /// The next message: `None` once the hub is gone.
    pub(crate) fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<HubMessage, Lagged>>> {
        match self.receiver.try_recv() {
            Ok(message) => Poll::Ready(Some(Ok(message))),
            Err(TryRecvError::Lagged(_)) => Poll::Ready(Some(Err(Lagged))),
            Err(TryRecvError::Closed) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                self.doorbell.wake_on_next_ring(cx.waker(), &mut self.asked);
                Poll::Pending
            }
        }
    }
}

impl Drop for Live {
    /// A closed connection's waker would keep its finished task's allocation until the next ring:
    /// under churn, thousands of them a second.
    fn drop(&mut self) {
        self.doorbell.forget(self.asked);
    }
}

thread_local! {
    /// This worker thread's doorbell. One slot is enough: actix gives every server its own worker
    /// threads, and a server has one hub (a second hub on a thread would get a doorbell of its own,
    /// and take over the slot).
    static DOORBELL: RefCell<Option<Rc<Doorbell>>> = const { RefCell::new(None) };
}

/// How many connections a ring wakes before the doorbell lets the rest of its thread run: a
/// request that arrives during a fan-out to thousands of tabs (an emit, a new tab) waits for this
/// many of them, not for all.
const WAKE_BATCH: usize = 256;

/// Wakes the connections of one worker thread whenever the hub broadcasts.
#[derive(Debug)]
struct Doorbell {
    /// The hub it rings for. Held weakly, so the hub's allocation outlives this doorbell and no
    /// later hub can take its address.
    hub: Weak<Inner>,
    round: Cell<u64>,
    waiting: RefCell<Vec<Waker>>,
    /// The previous round's list, emptied, kept for its allocation.
    spare: RefCell<Vec<Waker>>,
}

impl Doorbell {
    fn wake_on_next_ring(&self, waker: &Waker, asked: &mut Option<(u64, usize)>) {
        let round = self.round.get();
        let mut waiting = self.waiting.borrow_mut();
        match *asked {
            // Already on this round's list (polled again before the ring): keep one entry, with
            // the waker of the latest poll.
            Some((asked_in, at)) if asked_in == round => {
                if !waiting[at].will_wake(waker) {
                    waiting[at] = waker.clone();
                }
            }
            _ => {
                *asked = Some((round, waiting.len()));
                waiting.push(waker.clone());
            }
        }
    }

    /// Takes back a request to be woken this round, if there is one.
    fn forget(&self, asked: Option<(u64, usize)>) {
        if let Some((round, at)) = asked
            && round == self.round.get()
            && let Some(waker) = self.waiting.borrow_mut().get_mut(at)
        {
            *waker = Waker::noop().clone();
        }
    }

    /// Wakes everyone who asked, `WAKE_BATCH` at a time, yielding between batches. Whoever asks
    /// meanwhile is on the next round's list.
    async fn ring(&self) {
        self.round.set(self.round.get() + 1);
        // This round's list out; the spare, empty, takes the next round's requests.
        let mut woken = self.waiting.replace(self.spare.take());
        while !woken.is_empty() {
            let end = woken.len().min(WAKE_BATCH);
            woken.drain(..end).for_each(Waker::wake);
            if !woken.is_empty() {
                tokio::task::yield_now().await;
            }
        }
        self.spare.replace(woken);
    }
}

/// Rings `doorbell` for every broadcast until the hub is gone. Messages already waiting each ring
/// again, which wakes only connections that asked since: cheap, and `recv`'s cooperative budget
/// keeps a flood from holding the thread. It ends with its worker thread otherwise: it holds
/// nothing that outlives the server, so shutdown needs no signal of its own.
async fn follow(doorbell: Rc<Doorbell>, mut receiver: broadcast::Receiver<HubMessage>) {
    // A lagging doorbell still rings: each connection finds its own lag.
    while let Ok(_) | Err(RecvError::Lagged(_)) = receiver.recv().await {
        doorbell.ring().await;
    }
    // Closed: the connections learn it from their own receivers.
    doorbell.ring().await;
}

impl Hub {
    /// The live feed for `receiver`, a receiver of this hub's broadcast. Its first call on a
    /// thread starts that thread's doorbell task, so it panics outside an actix worker (a Tokio
    /// `LocalSet`).
    pub(crate) fn live(&self, receiver: broadcast::Receiver<HubMessage>) -> Live {
        let doorbell = DOORBELL.with_borrow_mut(|slot| match slot {
            Some(doorbell) if std::ptr::eq(doorbell.hub.as_ptr(), Arc::as_ptr(&self.inner)) => {
                Rc::clone(doorbell)
            }
            slot => {
                let doorbell = Rc::new(Doorbell {
                    hub: Arc::downgrade(&self.inner),
                    round: Cell::new(0),
                    waiting: RefCell::new(Vec::new()),
                    spare: RefCell::new(Vec::new()),
                });
                actix_web::rt::spawn(follow(Rc::clone(&doorbell), self.inner.sender.subscribe()));
                Rc::clone(slot.insert(doorbell))
            }
        });
        Live {
            receiver,
            doorbell,
            asked: None,
        }
    }
}
