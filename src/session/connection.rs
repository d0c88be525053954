//! The connection loop: from `ready` to the one [`Exit`], for either transport.
//!
//! Delivery order per connection: `ready` (with a safe resume point), then either the replay or a
//! `resync{gap}`, then live events. A connection that falls behind the broadcast buffer is told
//! `resync{lagged}`; one that cannot take a write for `limits.send_timeout_secs` is dropped. The
//! loop holds only what it uses: the verifier (token refresh), metrics, timings and shutdown.

use std::{pin::pin, sync::Arc, time::Duration};

use serde::Deserialize;
use tokio::{
    sync::broadcast::error::RecvError,
    time::{Instant, sleep_until, timeout},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Closed, Exit, Inbound, Transport, handshake::Subscriber};
use crate::{
    auth::Verifier,
    hub::{HubMessage, Start},
    metrics::Metrics,
    protocol::{Control, Event, ResyncReason, TransportKind},
    settings::Settings,
};

/// Timings of one connection, taken from the settings for its transport.
#[derive(Debug, Clone, Copy)]
struct Timings {
    heartbeat: Duration,
    /// How long the client may stay silent (WebSocket: no pong); `None` where it cannot speak.
    liveness: Option<Duration>,
    send_timeout: Duration,
    drain: Duration,
    /// Client frames allowed per second before the connection is closed as a flood.
    max_client_frames_per_sec: u32,
}

/// What every connection loop uses, built once at start.
#[derive(Debug)]
pub(crate) struct Context {
    verifier: Arc<Verifier>,
    metrics: Metrics,
    ws: Timings,
    sse: Timings,
    /// Cancelled at shutdown: every loop says `reconnect` and closes.
    shutdown: CancellationToken,
}

impl Context {
    pub(crate) fn new(
        verifier: Arc<Verifier>,
        metrics: Metrics,
        settings: &Settings,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            verifier,
            metrics,
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

impl Timings {
    fn of(settings: &Settings, transport: TransportKind) -> Self {
        let common = Self {
            heartbeat: settings.sse.keepalive(),
            liveness: None,
            send_timeout: settings.limits.send_timeout(),
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

/// Counts client frames in one-second windows.
struct FrameBudget {
    window: Instant,
    used: u32,
    per_sec: u32,
}

impl FrameBudget {
    fn new(per_sec: u32) -> Self {
        Self {
            window: Instant::now(),
            used: 0,
            per_sec,
        }
    }

    fn spend(&mut self) -> Result<(), Exit> {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.used = 0;
        }
        self.used += 1;
        if self.used > self.per_sec {
            Err(Exit::Flood)
        } else {
            Ok(())
        }
    }
}

/// What woke the connection loop.
enum Wake {
    Shutdown,
    Expired,
    Hub(Result<HubMessage, RecvError>),
    Heartbeat,
    Client(Inbound),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientMessage {
    Refresh { token: String },
}

/// Runs a connection to its end. Spawned once per connection by `ws` and `sse`.
pub(crate) async fn run<T: Transport>(transport: T, subscriber: Subscriber, context: Arc<Context>) {
    let timings = context.timings(T::KIND);
    let span = tracing::info_span!(
        "connection",
        actor_id = %subscriber.principal.actor_id,
        transport = T::KIND.as_str()
    );
    async move {
        let opened = Instant::now();
        context.metrics.connection_opened(T::KIND);
        tracing::info!("connection opened");
        let exit = Connection {
            transport,
            subscriber,
            context: &context,
            timings,
        }
        .serve()
        .await;
        context.metrics.connection_closed(T::KIND);
        tracing::info!(
            reason = exit.as_str(),
            duration_ms = opened.elapsed().as_millis() as u64,
            "connection closed"
        );
    }
    .instrument(span)
    .await;
}

struct Connection<'a, T> {
    transport: T,
    subscriber: Subscriber,
    context: &'a Context,
    timings: Timings,
}

impl<T: Transport> Connection<'_, T> {
    async fn serve(mut self) -> Exit {
        let exit = match self.start().await {
            Ok(()) => self.live().await,
            Err(exit) => exit,
        };
        let farewell = match exit {
            Exit::Draining => Some(Control::Reconnect {
                after_ms: rand::random_range(0..self.timings.drain.as_millis().max(1) as u64),
            }),
            Exit::AuthExpired => Some(Control::AuthExpired),
            _ => None,
        };
        if let Some(control) = farewell {
            let _ = timeout(self.timings.send_timeout, self.transport.control(control)).await;
        }
        // A client that could not take a write cannot take a close frame either: just drop it.
        // Any other goodbye is bounded like every write.
        if exit != Exit::SendFailed {
            let _ = timeout(self.timings.send_timeout, self.transport.close(exit)).await;
        }
        exit
    }

    /// `ready`, then the replay or the gap notice.
    async fn start(&mut self) -> Result<(), Exit> {
        let resume_point = self.subscriber.subscription.resume_point;
        self.send_control(Control::Ready {
            last_event_id: resume_point,
            transport: T::KIND,
        })
        .await?;
        match std::mem::replace(&mut self.subscriber.subscription.start, Start::Fresh) {
            Start::Fresh => Ok(()),
            Start::Gap => self.send_control(Control::Resync(ResyncReason::Gap)).await,
            Start::Replay(events) => {
                for event in &events {
                    if self.subscriber.wants(event) {
                        self.send_event(event).await?;
                    }
                }
                Ok(())
            }
        }
    }

    async fn live(&mut self) -> Exit {
        // Built once, not per turn: re-creating it would register and drop a waiter on the shared
        // shutdown token for every event on every connection.
        let mut shutdown = pin!(self.context.shutdown.cancelled());
        let mut expiry = pin!(sleep_until(
            Instant::now() + self.subscriber.principal.remaining()
        ));
        let mut heartbeat = tokio::time::interval_at(
            Instant::now() + self.timings.heartbeat,
            self.timings.heartbeat,
        );
        let mut last_heard = Instant::now();
        let mut budget = FrameBudget::new(self.timings.max_client_frames_per_sec);
        loop {
            let wake = tokio::select! {
                biased;
                () = &mut shutdown => Wake::Shutdown,
                () = &mut expiry => Wake::Expired,
                // Client frames and the heartbeat before the hub: a backlog of events must not
                // starve pongs into a false timeout (client frames are rate-limited anyway).
                inbound = self.transport.inbound() => Wake::Client(inbound),
                _ = heartbeat.tick() => Wake::Heartbeat,
                message = self.subscriber.subscription.receiver.recv() => Wake::Hub(message),
            };
            let step = match wake {
                Wake::Shutdown => Err(Exit::Draining),
                Wake::Expired => Err(Exit::AuthExpired),
                Wake::Hub(message) => self.deliver(message).await,
                Wake::Heartbeat => {
                    if self
                        .timings
                        .liveness
                        .is_some_and(|limit| last_heard.elapsed() > limit)
                    {
                        Err(Exit::PongTimeout)
                    } else {
                        self.transport
                            .heartbeat()
                            .await
                            .map_err(|Closed| Exit::SendFailed)
                    }
                }
                Wake::Client(inbound) => {
                    last_heard = Instant::now();
                    match inbound {
                        Inbound::Gone(exit) => Err(exit),
                        _ if budget.spend().is_err() => Err(Exit::Flood),
                        Inbound::Alive => Ok(()),
                        Inbound::Text(text) => self.on_client_text(&text).map(|renewed| {
                            if let Some(deadline) = renewed {
                                expiry.as_mut().reset(deadline);
                            }
                        }),
                    }
                }
            };
            if let Err(exit) = step {
                return exit;
            }
        }
    }

    async fn deliver(&mut self, message: Result<HubMessage, RecvError>) -> Result<(), Exit> {
        match message {
            Ok(HubMessage::Event(event)) => {
                if self.subscriber.wants(&event) {
                    self.send_event(&event).await?;
                    self.context
                        .metrics
                        .delivered(T::KIND, event.received.elapsed());
                }
                Ok(())
            }
            Ok(HubMessage::Reset(reason)) => self.send_control(Control::Resync(reason)).await,
            Err(RecvError::Lagged(_)) => {
                self.send_control(Control::Resync(ResyncReason::Lagged))
                    .await
            }
            // The sender lives as long as the hub; closed means the process is going away.
            Err(RecvError::Closed) => Err(Exit::Draining),
        }
    }

    /// Handles a client text frame; `Ok(Some(deadline))` when a refresh extended the session.
    fn on_client_text(&self, text: &str) -> Result<Option<Instant>, Exit> {
        // Anything but a well-formed refresh is ignored: clients may grow new messages.
        let Ok(ClientMessage::Refresh { token }) = serde_json::from_str(text) else {
            return Ok(None);
        };
        match self.context.verifier.verify(&token) {
            Ok(renewed) if renewed.actor_id == self.subscriber.principal.actor_id => {
                Ok(Some(Instant::now() + renewed.remaining()))
            }
            _ => Err(Exit::RefreshRejected),
        }
    }

    async fn send_event(&mut self, event: &Event) -> Result<(), Exit> {
        match timeout(self.timings.send_timeout, self.transport.event(event)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Exit::SendFailed),
        }
    }

    async fn send_control(&mut self, control: Control) -> Result<(), Exit> {
        if let Control::Resync(reason) = control {
            self.context.metrics.resync(reason);
        }
        match timeout(self.timings.send_timeout, self.transport.control(control)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Exit::SendFailed),
        }
    }
}
