//! One subscriber connection, whatever carries it: admission, the event loop, and its single exit.
//!
//! WebSocket and SSE differ only in how bytes reach the client and what the client can say back, so
//! both implement [`Transport`] and share [`run`]: one `select!` over shutdown, token expiry, the hub,
//! the heartbeat and client frames. Every way out is an [`Exit`], and the transport turns that into the
//! right goodbye (`reconnect` + close 1012, `auth_expired` + close 4401, ...).
//!
//! Delivery order per connection: `ready` (with a safe resume point), then either the replay or a
//! `resync{gap}`, then live events. A connection that falls behind the broadcast buffer is told
//! `resync{lagged}`; one that cannot take a write for `limits.send_timeout_secs` is dropped.

use std::{
    collections::HashMap,
    future::Future,
    pin::pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use bytestring::ByteString;
use serde::Deserialize;
use tokio::{
    sync::broadcast::error::RecvError,
    time::{Instant, sleep_until, timeout},
};
use tracing::Instrument;

use crate::{
    auth::{self, AuthError, Principal},
    event::{Control, Event, EventName, ResyncReason, TransportKind},
    hub::{HubMessage, Start, Subscription},
    problem,
    settings::Settings,
    startup::AppState,
};

/// The query string both transports accept.
#[derive(Debug, Deserialize)]
struct SubscribeQuery {
    ticket: Option<String>,
    last_event_id: Option<String>,
    events: Option<String>,
    // Named only to refuse them: a token in a URL lands in access logs.
    token: Option<String>,
    access_token: Option<String>,
    jwt: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    BadRequest(String),
    #[error("the server is at its connection limit; retry later")]
    Full,
    #[error("too many open connections for this admin; close some tabs")]
    TooManyForActor,
    #[error("the server is shutting down; reconnect elsewhere")]
    Draining,
}

impl ResponseError for SubscribeError {
    fn status_code(&self) -> StatusCode {
        match self {
            SubscribeError::Auth(e) => e.status_code(),
            SubscribeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            SubscribeError::TooManyForActor => StatusCode::TOO_MANY_REQUESTS,
            SubscribeError::Full | SubscribeError::Draining => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            SubscribeError::Auth(e) => e.error_response(),
            SubscribeError::BadRequest(message) => {
                problem::respond(StatusCode::BAD_REQUEST, "bad_request", message)
            }
            SubscribeError::Full | SubscribeError::Draining | SubscribeError::TooManyForActor => {
                let mut builder = problem::builder(self.status_code());
                builder.insert_header((header::RETRY_AFTER, "2"));
                let code = if self.status_code() == StatusCode::TOO_MANY_REQUESTS {
                    "too_many_connections"
                } else {
                    "unavailable"
                };
                problem::finish(builder, code, &self.to_string())
            }
        }
    }
}

/// Counts open connections against `limits.max_connections` and, per admin,
/// `limits.max_connections_per_actor` (one runaway tab loop must not starve everyone else).
#[derive(Debug)]
pub struct Admission {
    open: Mutex<OpenConnections>,
    max_total: usize,
    max_per_actor: usize,
    /// Woken whenever the last open connection closes (shutdown waits on it).
    idle: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    per_actor: HashMap<String, usize>,
}

impl Admission {
    pub fn new(max_total: usize, max_per_actor: usize) -> Self {
        Self {
            open: Mutex::new(OpenConnections::default()),
            max_total,
            max_per_actor,
            idle: tokio::sync::Notify::new(),
        }
    }

    fn enter(self: &Arc<Self>, actor_id: &str) -> Result<Slot, SubscribeError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max_total {
            return Err(SubscribeError::Full);
        }
        let mine = open.per_actor.entry(actor_id.to_owned()).or_default();
        if *mine >= self.max_per_actor {
            return Err(SubscribeError::TooManyForActor);
        }
        *mine += 1;
        open.total += 1;
        Ok(Slot {
            admission: Arc::clone(self),
            actor_id: actor_id.to_owned(),
        })
    }

    /// Open connections right now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Resolves once no connection is open.
    pub async fn all_closed(&self) {
        loop {
            // Registered before the check, so a close in between still wakes it.
            let idle = self.idle.notified();
            if self.open() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// A held connection slot; dropping it frees the slot, whichever way the connection ended.
#[derive(Debug)]
struct Slot {
    admission: Arc<Admission>,
    actor_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .admission
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        open.total -= 1;
        if open.total == 0 {
            self.admission.idle.notify_waiters();
        }
        if let Some(mine) = open.per_actor.get_mut(&self.actor_id) {
            *mine -= 1;
            if *mine == 0 {
                open.per_actor.remove(&self.actor_id);
            }
        }
    }
}

/// An authenticated, admitted subscriber, ready to be handed to a transport.
#[derive(Debug)]
pub struct Subscriber {
    principal: Principal,
    subscription: Subscription,
    filter: Option<Vec<EventName>>,
    _slot: Slot,
}

impl Subscriber {
    /// Whether this connection's `?events=` filter lets `event` through (replayed or live).
    fn wants(&self, event: &Event) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|names| names.contains(&event.name))
    }
}

/// Authenticates and admits a subscriber. `resume_header` is SSE's `Last-Event-ID`, fresher than
/// the query's when a browser reconnects on its own, so it wins.
pub async fn admit(
    req: &HttpRequest,
    state: &AppState,
    resume_header: Option<&str>,
) -> Result<Subscriber, SubscribeError> {
    if state.shutdown.is_cancelled() {
        return Err(SubscribeError::Draining);
    }
    let query = parse_query(req)?;
    // Everything that can refuse without spending a single-use ticket goes first.
    let filter = parse_filter(query.events.as_deref(), state)?;
    let principal = authenticate(req, state, &query).await.inspect_err(|e| {
        if let SubscribeError::Auth(e) = e {
            state.metrics.auth_failed(e.reason());
        }
    })?;
    let slot = state.admission.enter(&principal.actor_id)?;
    // An empty id is no id: a fresh start rather than a gap.
    let resume = resume_header
        .filter(|id| !id.is_empty())
        .or(query.last_event_id.as_deref().filter(|id| !id.is_empty()));
    Ok(Subscriber {
        principal,
        subscription: state.hub.subscribe(resume).await,
        filter,
        _slot: slot,
    })
}

/// `?events=a,b` as known names; absent or empty means every event.
fn parse_filter(
    names: Option<&str>,
    state: &AppState,
) -> Result<Option<Vec<EventName>>, SubscribeError> {
    let names: Vec<&str> = names
        .unwrap_or_default()
        .split(',')
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    names
        .into_iter()
        .map(|n| {
            state
                .catalog
                .name(n)
                .ok_or_else(|| SubscribeError::BadRequest(format!("events: unknown event {n:?}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn parse_query(req: &HttpRequest) -> Result<SubscribeQuery, SubscribeError> {
    Ok(
        actix_web::web::Query::<SubscribeQuery>::from_query(req.query_string())
            .map_err(|e| SubscribeError::BadRequest(format!("query string: {e}")))?
            .into_inner(),
    )
}

/// Origin, then credentials: a bearer token, else a ticket. A token in the URL is refused.
async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    query: &SubscribeQuery,
) -> Result<Principal, SubscribeError> {
    auth::check_origin(req, &state.settings.auth.allowed_origins)?;
    if query.token.is_some() || query.access_token.is_some() || query.jwt.is_some() {
        return Err(AuthError::TokenInUrl.into());
    }
    Ok(match (auth::bearer_token(req)?, &query.ticket) {
        (Some(token), _) => state.verifier.verify(&token)?,
        (None, Some(ticket)) => state.tickets.redeem(ticket).await?,
        (None, None) => return Err(AuthError::Missing.into()),
    })
}

/// What a client did, as far as the loop cares.
#[derive(Debug)]
pub enum Inbound {
    /// A sign of life (a pong, a ping) that needs nothing else.
    Alive,
    Text(ByteString),
    /// The connection ended or broke; the loop ends with this.
    Gone(Exit),
}

/// Why a connection ended. The transport decides what, if anything, to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    ClientClosed,
    Draining,
    AuthExpired,
    RefreshRejected,
    PongTimeout,
    SendFailed,
    FrameTooLarge,
    Flood,
    ProtocolError,
}

impl Exit {
    fn as_str(self) -> &'static str {
        match self {
            Exit::ClientClosed => "client closed",
            Exit::Draining => "draining",
            Exit::AuthExpired => "auth expired",
            Exit::RefreshRejected => "refresh rejected",
            Exit::PongTimeout => "pong timeout",
            Exit::SendFailed => "send failed or timed out",
            Exit::FrameTooLarge => "client frame too large",
            Exit::Flood => "client frame flood",
            Exit::ProtocolError => "protocol error",
        }
    }
}

/// The writer was closed under us; the connection is over.
#[derive(Debug)]
pub struct Closed;

/// One way to carry events to a client.
pub trait Transport {
    const KIND: TransportKind;

    fn event(&mut self, event: &Event) -> impl Future<Output = Result<(), Closed>>;
    fn control(&mut self, control: Control) -> impl Future<Output = Result<(), Closed>>;
    fn heartbeat(&mut self) -> impl Future<Output = Result<(), Closed>>;
    /// The client's next action; a transport the client cannot talk on waits for it to go away.
    fn inbound(&mut self) -> impl Future<Output = Inbound>;
    fn close(self, exit: Exit) -> impl Future<Output = ()>;
}

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
pub async fn run<T: Transport>(
    transport: T,
    subscriber: Subscriber,
    state: actix_web::web::Data<AppState>,
) {
    let timings = Timings::of(&state.settings, T::KIND);
    let span = tracing::info_span!(
        "connection",
        actor_id = %subscriber.principal.actor_id,
        transport = T::KIND.as_str()
    );
    async move {
        let opened = Instant::now();
        state.metrics.connection_opened(T::KIND);
        tracing::info!("connection opened");
        let exit = Connection {
            transport,
            subscriber,
            state: &state,
            timings,
        }
        .serve()
        .await;
        state.metrics.connection_closed(T::KIND);
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
    state: &'a AppState,
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
        let mut shutdown = pin!(self.state.shutdown.cancelled());
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
                    self.state
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
        match self.state.verifier.verify(&token) {
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
            self.state.metrics.resync(reason);
        }
        match timeout(self.timings.send_timeout, self.transport.control(control)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Exit::SendFailed),
        }
    }
}
