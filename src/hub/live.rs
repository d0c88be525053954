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
//! No wake-up is lost: a connection asks to be woken only after `try_recv` found nothing, and the
//! doorbell, running on the same thread, cannot ring in between; anything sent after that check
//! rings it again.

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
    /// The doorbell round this feed last asked to be woken in.
    asked: Option<u64>,
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

thread_local! {
    /// This worker thread's doorbell (one hub per server, one server per worker thread).
    static DOORBELL: RefCell<Option<Rc<Doorbell>>> = const { RefCell::new(None) };
}

/// Wakes the connections of one worker thread whenever the hub broadcasts.
#[derive(Debug)]
struct Doorbell {
    /// The hub it rings for. Held weakly, so the hub's allocation outlives this doorbell and no
    /// later hub can take its address.
    hub: Weak<Inner>,
    round: Cell<u64>,
    waiting: RefCell<Vec<Waker>>,
}

impl Doorbell {
    fn wake_on_next_ring(&self, waker: &Waker, asked: &mut Option<u64>) {
        // Once per round: a connection polled again before the ring is already on the list.
        if *asked != Some(self.round.get()) {
            self.waiting.borrow_mut().push(waker.clone());
            *asked = Some(self.round.get());
        }
    }

    fn ring(&self) {
        self.round.set(self.round.get() + 1);
        let mut waiting = self.waiting.take();
        // Waking a task of this thread only queues it, so nobody can ask to be woken meanwhile.
        waiting.drain(..).for_each(Waker::wake);
        // The list's allocation serves the next round.
        self.waiting.replace(waiting);
    }
}

/// Rings `doorbell` for every broadcast until the hub is gone. It ends with its worker thread
/// otherwise: it holds no resources that outlive the server, so shutdown needs no signal of its own.
async fn ring(doorbell: Rc<Doorbell>, mut receiver: broadcast::Receiver<HubMessage>) {
    loop {
        match receiver.recv().await {
            // A lagging doorbell still rings: each connection finds its own lag.
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => break,
        }
        // One ring for everything already sent.
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = receiver.try_recv() {}
        doorbell.ring();
    }
    doorbell.ring();
}

impl Hub {
    /// The live feed for `receiver`, a receiver of this hub's broadcast. Must be called on an
    /// actix worker thread (its first call there starts that thread's doorbell task).
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
                });
                actix_web::rt::spawn(ring(Rc::clone(&doorbell), self.inner.sender.subscribe()));
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
