//! A connection polled for its next bytes: from `ready` to the one [`Exit`], for either wire.
//!
//! Delivery order per connection: `ready` (with a safe resume point), then either the replay or a
//! `resync{gap}`, then live events. A connection that falls behind the broadcast buffer is told
//! `resync{lagged}`.
//!
//! Why a stream of bytes and not a task: every connection already has one task, the HTTP
//! dispatcher's, which polls it whenever the socket can take bytes or the connection woke it (an
//! SSE connection is the response body; a WebSocket, once its handshake is over, is driven by
//! `ws::driver` inside that same task). Holding the broadcast receiver, the replay and the
//! deadlines right here, and returning each event's shared bytes as the next chunk, costs no task,
//! no channel and no copy per subscriber; when the client cannot take writes, nobody polls, the
//! hub's ring moves on and the connection learns it lagged once it is polled again. A client that
//! takes nothing at all for `limits.send_timeout_secs` is cut off by the kernel
//! (`TCP_USER_TIMEOUT`, set in `startup`). Every byte of a connection counts: a WebSocket's must
//! fit in the dispatcher task's own state (`ws::upgrade` tests it), so it keeps nothing it can
//! read from its [`Context`].
//!
//! Deadlines (heartbeat, token expiry, a silent WebSocket client, drain) have no timers of their
//! own: the [`Context`]'s clock sends one [`HubMessage::Tick`] a second through the hub's
//! broadcast, and each connection checks its deadlines when that tick reaches it. A replay holds
//! the connection away from its live feed, and so from the ticks, for as long as the client takes
//! to read it; meanwhile the deadlines are checked as the replayed events go out, once a tick's
//! time has passed, so no state of a connection outlives its token, its silence limit or a drain.
//! Either way a deadline acts up to one tick (a second) after its time.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use actix_web::body::{BodySize, MessageBody};
use bytes::Bytes;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{Exit, Inbound, Wire, handshake::Subscriber};
use crate::{
    auth::Verifier,
    hub::{Hub, HubMessage, Lagged, Start},
    metrics::Metrics,
    presence::{self, Presence, Report},
    protocol::{ConnectionId, Control, Event, ResyncReason, TransportKind},
    rate::Budget,
    receipts::{Receipt, Receipts},
    settings::Settings,
};

/// How often every connection checks its deadlines.
const TICK: Duration = Duration::from_secs(1);

/// Timings of one connection, taken from the settings for its transport.
#[derive(Debug, Clone, Copy)]
struct Timings {
    heartbeat: Duration,
    /// How long the client may stay silent (WebSocket: no pong); `None` where it cannot speak.
    liveness: Option<Duration>,
    drain: Duration,
    /// Client frames allowed per second before the connection is closed as a flood.
    max_client_frames_per_sec: u32,
}

/// What every connection uses, built once at start.
#[derive(Debug)]
pub(crate) struct Context {
    verifier: Arc<Verifier>,
    metrics: Metrics,
    presence: Presence,
    receipts: Receipts,
    ws: Timings,
    sse: Timings,
    /// Cancelled at shutdown: every connection says `reconnect` and closes.
    shutdown: CancellationToken,
}

impl Context {
    /// Builds the context and starts the clock that ticks every connection through `hub`, until
    /// shutdown (which it announces with one last tick, so everyone drains at once). Must be called
    /// within a Tokio runtime.
    pub(crate) fn start(
        hub: Hub,
        verifier: Arc<Verifier>,
        metrics: Metrics,
        presence: Presence,
        receipts: Receipts,
        settings: &Settings,
        shutdown: CancellationToken,
    ) -> Self {
        tokio::spawn(clock(hub, receipts.clone(), shutdown.clone()));
        Self {
            receipts,
            verifier,
            metrics,
            presence,
            ws: Timings::of(settings, TransportKind::Ws),
            sse: Timings::of(settings, TransportKind::Sse),
            shutdown,
        }
    }

    fn timings(&self, transport: TransportKind) -> Timings {
        match transport {
            TransportKind::Ws => self.ws,
            TransportKind::Sse => self.sse,
        }
    }
}

/// Ticks every connection once a second; before each tick, reconsiders the receipt rate the
/// tick will tell them.
async fn clock(hub: Hub, receipts: Receipts, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {
                receipts.reconsider();
                hub.tick();
            }
        }
    }
    hub.tick();
}

impl Timings {
    fn of(settings: &Settings, transport: TransportKind) -> Self {
        let common = Self {
            heartbeat: settings.sse.keepalive(),
            liveness: None,
            drain: settings.server.drain(),
            max_client_frames_per_sec: u32::MAX,
        };
        match transport {
            TransportKind::Sse => common,
            TransportKind::Ws => Self {
                heartbeat: settings.ws.ping_interval(),
                liveness: Some(settings.ws.pong_timeout()),
                max_client_frames_per_sec: settings.ws.max_client_frames_per_sec,
                ..common
            },
        }
    }
}

/// When the next heartbeat is due, kept to its schedule.
#[derive(Debug)]
struct Heartbeat {
    next: Instant,
}

impl Heartbeat {
    fn new(now: Instant, every: Duration) -> Self {
        Self { next: now + every }
    }

    /// Whether a heartbeat is due at `now`, scheduling the next one if so. A check up to half a
    /// tick early counts: ticks leave the clock a second apart but reach each connection after a
    /// delay of its own, so the tick meant for a heartbeat may arrive a hair before it, and waiting
    /// for the next one would stretch the interval by a whole tick (a client answering every ping
    /// could then look silent). The next one is due an interval after this one's time, not after
    /// `now`, so such delays never add up; after a long stall it starts afresh instead of
    /// catching up in a burst.
    fn due(&mut self, now: Instant, every: Duration) -> bool {
        if now + TICK / 2 < self.next {
            return false;
        }
        self.next += every;
        if self.next + TICK / 2 <= now {
            self.next = now + every;
        }
        true
    }
}

/// The events a resume missed, written before the live feed.
#[derive(Debug)]
struct Replay {
    events: std::vec::IntoIter<Arc<Event>>,
    /// When to check the deadlines next: the ticks wait in the live feed until the replay ends.
    next_check: Instant,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    Refresh {
        token: String,
    },
    /// Read as a value first (absent too), so a malformed report is refused rather than ignored.
    Presence {
        #[serde(default)]
        records: serde_json::Value,
    },
    Receipt(Receipt),
}

/// One subscriber's connection: SSE's response body, or a WebSocket's on its bare socket.
pub(crate) struct Connection<W: Wire> {
    wire: W,
    subscriber: Subscriber,
    /// The connection's name in `ready`, in presence reports and in the presence it is sent.
    id: ConnectionId,
    context: Arc<Context>,
    /// `ready`, the gap notice, pongs, goodbyes, a new receipt rate, and the rest of a hub
    /// message's presence lists after its first: written before anything else.
    outbox: VecDeque<Bytes>,
    /// A resume's backlog, while it lasts (boxed: most connections never have one).
    replay: Option<Box<Replay>>,
    expires: Instant,
    last_heard: Instant,
    heartbeat: Heartbeat,
    /// The receipt rate the client was last told.
    receipt_rate: f64,
    /// Client frames this second (`ws.max_client_frames_per_sec`).
    budget: Budget,
    opened: Instant,
    /// Set once the connection has decided to end; its goodbye is in the outbox.
    exit: Option<Exit>,
}

impl<W: Wire> Connection<W> {
    pub(crate) fn new(wire: W, mut subscriber: Subscriber, context: Arc<Context>) -> Self {
        let timings = context.timings(W::KIND);
        let now = Instant::now();
        let id = context
            .presence
            .open(Arc::clone(&subscriber.principal), W::KIND);
        context.metrics.connection_opened(W::KIND);
        // Reconsidered with this connection counted: after a burst of connections, the clock's
        // last look may be up to a second stale.
        context.receipts.reconsider();
        let receipt_rate = context.receipts.rate();
        let mut outbox: VecDeque<Bytes> = W::greeting().into_iter().collect();
        outbox.push_back(W::control(Control::Ready {
            last_event_id: subscriber.resume_point,
            transport: W::KIND,
            connection: id,
            actor_id: subscriber.principal.actor_id.clone(),
            receipt_rate,
            presence_ttl_ms: context.presence.ttl().as_millis() as u64,
        }));
        let replay = match std::mem::replace(&mut subscriber.start, Start::Fresh) {
            Start::Fresh => None,
            Start::Gap => {
                context.metrics.resync(ResyncReason::Gap);
                outbox.push_back(W::control(Control::Resync(ResyncReason::Gap)));
                None
            }
            Start::Replay(events) if events.is_empty() => None,
            Start::Replay(events) => Some(Box::new(Replay {
                events: events.into_iter(),
                next_check: now + TICK,
            })),
        };
        tracing::info!(
            actor_id = %subscriber.principal.actor_id,
            transport = W::KIND.as_str(),
            "connection opened"
        );
        let mut connection = Self {
            wire,
            expires: now + subscriber.principal.remaining(),
            subscriber,
            id,
            outbox,
            replay,
            last_heard: now,
            heartbeat: Heartbeat::new(now, timings.heartbeat),
            receipt_rate,
            budget: Budget::new(timings.max_client_frames_per_sec),
            opened: now,
            exit: None,
            context,
        };
        // Subscribed after the clock's last tick: no tick will reach this connection.
        if connection.context.shutdown.is_cancelled() {
            connection.finish(Exit::Draining);
        }
        connection
    }

    /// Read from the context when needed rather than kept: every byte of a connection counts.
    fn timings(&self) -> Timings {
        self.context.timings(W::KIND)
    }

    /// The wire the connection reads its client from (a WebSocket's socket is written through it).
    pub(crate) fn wire(&self) -> &W {
        &self.wire
    }

    /// Ends the connection: the farewell message, then the wire's goodbye, then the end of the body.
    fn finish(&mut self, exit: Exit) {
        let farewell = match exit {
            Exit::Draining => Some(Control::Reconnect {
                after_ms: rand::random_range(0..self.timings().drain.as_millis().max(1) as u64),
            }),
            Exit::AuthExpired => Some(Control::AuthExpired),
            _ => None,
        };
        self.outbox.extend(farewell.map(W::control));
        self.outbox.extend(W::goodbye(exit));
        self.exit = Some(exit);
    }

    /// Reads the client, then finds the next bytes to write, if any are ready.
    fn advance(&mut self, cx: &mut TaskContext<'_>) -> Result<Option<Bytes>, Exit> {
        while let Poll::Ready(inbound) = self.wire.poll_inbound(cx) {
            self.last_heard = Instant::now();
            match inbound {
                Inbound::Gone(exit) => return Err(exit),
                _ if !self.budget.spend() => return Err(Exit::Flood),
                Inbound::Alive => {}
                Inbound::Reply(bytes) => self.outbox.push_back(bytes),
                Inbound::Text(text) => self.on_client_text(&text)?,
            }
        }
        if let Some(bytes) = self.queued() {
            return Ok(Some(bytes));
        }
        if let Some(bytes) = self.replayed()? {
            return Ok(Some(bytes));
        }
        // Skipping filtered events and quiet ticks goes on at most until the receiver is empty:
        // never more than `hub.buffer` messages in one poll.
        loop {
            let message = match self.subscriber.live.poll_recv(cx) {
                Poll::Pending => return Ok(None),
                // The sender lives as long as the hub; closed means the process is going away.
                Poll::Ready(None) => return Err(Exit::Draining),
                Poll::Ready(Some(message)) => message,
            };
            let bytes = match message {
                Ok(HubMessage::Event(event)) => {
                    if !self.subscriber.wants(&event) {
                        continue;
                    }
                    self.context
                        .metrics
                        .delivered(W::KIND, event.received.elapsed());
                    W::event(&event)
                }
                Ok(HubMessage::Reset(reason)) => self.resync(reason),
                Ok(HubMessage::Direct(directed)) => {
                    let mut mine = directed
                        .iter()
                        .filter(|directed| directed.is_for(self.id))
                        .map(|directed| W::direct(&directed.message));
                    let Some(first) = mine.next() else {
                        continue;
                    };
                    self.outbox.extend(mine);
                    first
                }
                // The clock's last tick may be among what a laggard missed.
                Err(Lagged) if self.context.shutdown.is_cancelled() => return Err(Exit::Draining),
                Err(Lagged) => {
                    // The lists it missed went by in the same broadcast: the current ones again.
                    self.context.presence.resend(self.id);
                    self.resync(ResyncReason::Lagged)
                }
                Ok(HubMessage::Tick) => match self.check_deadlines(Instant::now())? {
                    Some(heartbeat) => heartbeat,
                    None => continue,
                },
            };
            return Ok(Some(bytes));
        }
    }

    /// The next queued message; an emptied queue gives its allocation back, since most
    /// connections queue something only at their start and their end.
    fn queued(&mut self) -> Option<Bytes> {
        let bytes = self.outbox.pop_front()?;
        if self.outbox.is_empty() {
            self.outbox = VecDeque::new();
        }
        Some(bytes)
    }

    fn resync(&self, reason: ResyncReason) -> Bytes {
        self.context.metrics.resync(reason);
        W::control(Control::Resync(reason))
    }

    /// The next replayed event this connection wants, or a heartbeat due meanwhile. A finished
    /// replay lets go of its list (up to `hub.history` entries) for good.
    fn replayed(&mut self) -> Result<Option<Bytes>, Exit> {
        while let Some(replay) = self.replay.as_mut() {
            let now = Instant::now();
            if now >= replay.next_check {
                replay.next_check = now + TICK;
                if let Some(heartbeat) = self.check_deadlines(now)? {
                    return Ok(Some(heartbeat));
                }
                continue;
            }
            match replay.events.next() {
                Some(event) if self.subscriber.wants(&event) => return Ok(Some(W::event(&event))),
                Some(_) => {}
                None => self.replay = None,
            }
        }
        Ok(None)
    }

    /// Checks the deadlines at `now`, and whether the receipt rate changed; the heartbeat's bytes
    /// when one is due, else the new rate's.
    fn check_deadlines(&mut self, now: Instant) -> Result<Option<Bytes>, Exit> {
        // Shutdown is checked here, not on every poll: the token's check takes a lock that every
        // worker shares, and the clock's last tick comes after the cancellation.
        if self.context.shutdown.is_cancelled() {
            return Err(Exit::Draining);
        }
        if now >= self.expires {
            return Err(Exit::AuthExpired);
        }
        if self
            .timings()
            .liveness
            .is_some_and(|limit| now.duration_since(self.last_heard) > limit)
        {
            return Err(Exit::PongTimeout);
        }
        if let Some(rate) = self.context.receipts.news(&mut self.receipt_rate) {
            self.outbox
                .push_back(W::control(Control::ReceiptRate { rate }));
        }
        Ok(self
            .heartbeat
            .due(now, self.timings().heartbeat)
            .then(W::heartbeat)
            .or_else(|| self.queued()))
    }

    /// Handles a client text message: a valid refresh extends the session, a bad one ends it; a
    /// presence report is taken or refused (the refusal is sent, the connection stays).
    fn on_client_text(&mut self, text: &str) -> Result<(), Exit> {
        // Anything else is ignored: clients may grow new messages.
        match serde_json::from_str(text) {
            Ok(ClientMessage::Refresh { token }) => match self.context.verifier.verify(&token) {
                Ok(renewed) if renewed.actor_id == self.subscriber.principal.actor_id => {
                    self.expires = Instant::now() + renewed.remaining();
                    Ok(())
                }
                _ => Err(Exit::RefreshRejected),
            },
            Ok(ClientMessage::Presence { records }) => {
                let taken = serde_json::from_value::<Report>(records)
                    .map_err(presence::malformed)
                    .and_then(|report| {
                        self.context.presence.report(
                            self.id,
                            &self.subscriber.principal.actor_id,
                            report,
                            None,
                        )
                    });
                if let Err(refusal) = taken {
                    self.context.presence.refused(&refusal);
                    self.outbox.push_back(W::control(Control::PresenceRefused {
                        error: refusal.code(),
                        message: refusal.to_string(),
                    }));
                }
                Ok(())
            }
            Ok(ClientMessage::Receipt(Receipt { id })) => {
                // Telemetry: counted or not, never answered.
                let actor = &self.subscriber.principal.actor_id;
                if let Err(refusal) = self.context.presence.receipt(self.id, actor, &id) {
                    self.context.metrics.receipt_refused(refusal.code());
                }
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }
}

impl<W: Wire> MessageBody for Connection<W> {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.queued() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.exit.is_some() {
                return Poll::Ready(None);
            }
            match this.advance(cx) {
                Ok(Some(bytes)) => return Poll::Ready(Some(Ok(bytes))),
                Ok(None) => return Poll::Pending,
                Err(exit) => this.finish(exit),
            }
        }
    }
}

impl<W: Wire> Drop for Connection<W> {
    /// However the connection ended (an exit, the client going away, the socket failing, the
    /// server stopping), it is counted and logged once, here.
    fn drop(&mut self) {
        self.context.presence.close(self.id);
        let transport = W::KIND;
        self.context.metrics.connection_closed(transport);
        tracing::info!(
            actor_id = %self.subscriber.principal.actor_id,
            transport = transport.as_str(),
            reason = self.exit.map_or("client gone", Exit::as_str),
            duration_ms = self.opened.elapsed().as_millis() as u64,
            "connection closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn heartbeats_keep_their_schedule_when_ticks_arrive_early_or_late() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, SECOND);
        let mut due = |at| heartbeat.due(at, SECOND);
        // Each tick reaches the connection with a delay of its own: a hair early, late, early.
        let ticks = [
            start + SECOND - Duration::from_millis(1),
            start + 2 * SECOND + Duration::from_millis(400),
            start + 3 * SECOND - Duration::from_millis(300),
            start + 4 * SECOND,
        ];
        for (n, tick) in ticks.into_iter().enumerate() {
            assert!(due(tick), "tick {} skipped", n + 1);
        }
        assert!(!due(start + 4 * SECOND + Duration::from_millis(200)));
    }

    #[test]
    fn a_slower_heartbeat_waits_for_its_tick() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, 3 * SECOND);
        let mut due = |at| heartbeat.due(at, 3 * SECOND);
        assert!(!due(start + SECOND));
        assert!(!due(start + 2 * SECOND));
        assert!(due(start + 3 * SECOND - Duration::from_millis(10)));
        assert!(!due(start + 4 * SECOND));
    }

    #[test]
    fn after_a_stall_heartbeats_start_afresh_instead_of_bursting() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, SECOND);
        let mut due = |at| heartbeat.due(at, SECOND);
        assert!(due(start + 10 * SECOND));
        assert!(!due(start + 10 * SECOND + Duration::from_millis(100)));
        assert!(due(start + 11 * SECOND));
    }
}
