//! Wiring: builds each service from the settings, binds the listeners, registers routes and one
//! `web::Data<T>` per dependency, and runs until a signal (or the test that owns it) asks for
//! shutdown.
//!
//! This is the only module that knows every other one; nothing imports it back. Binding happens in
//! [`Application::build`], before serving, so the chosen ports are known up front and tests can
//! bind port 0. Shutdown is an input: one `CancellationToken`, cancelled by SIGTERM or SIGINT,
//! reaches every connection loop, which sends `reconnect` and closes; then the HTTP servers stop
//! gracefully.

use std::{
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use actix_http::HttpService;
use actix_server::Server;
use actix_service::{ServiceFactory, map_config};
use actix_web::{
    App,
    body::MessageBody,
    dev::{AppConfig, ServiceRequest, ServiceResponse},
    rt::net::TcpStream,
    web,
};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Verifier,
    broker::{
        Broker,
        memory::MemoryBroker,
        redis::{Connector, ConnectorError, Link, RedisBroker},
    },
    catalog::Catalog,
    emit,
    hub::Hub,
    idempotency::MemoryAnswers,
    metrics::Metrics,
    presence::{Backplane, Presence},
    problem,
    receipts::Receipts,
    routes,
    session::{self, Admission, Handshake},
    settings::{AuthSettings, HubBackend, Settings, SettingsError, WsSettings},
    tickets::Tickets,
    ws,
};

/// Accept-queue depth requested for the listeners (see [`listen`]).
const LISTEN_BACKLOG: u32 = 4096;

/// How long a connection the server is closing waits for the client's own close.
const CLIENT_DISCONNECT: Duration = Duration::from_secs(1);

/// Extra time, past `server.drain_secs`, that the HTTP servers wait for connections to finish.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot register metrics")]
    Metrics(#[source] prometheus::Error),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// One `web::Data` per dependency a handler extracts; cloned into every worker's `App`.
#[derive(Clone)]
struct Shared {
    hub: web::Data<Hub>,
    verifier: web::Data<Verifier>,
    tickets: web::Data<Tickets>,
    metrics: web::Data<Metrics>,
    auth: web::Data<AuthSettings>,
    ws: web::Data<WsSettings>,
    shutdown: web::Data<CancellationToken>,
    handshake: web::Data<Handshake>,
    presence: web::Data<Presence>,
    connections: web::Data<session::Context>,
    emit: web::Data<emit::Context>,
}

/// The running service: its listeners, and what shutdown needs to drain it.
pub struct Application {
    servers: Vec<Server>,
    port: u16,
    internal_port: Option<u16>,
    shutdown: CancellationToken,
    admission: Arc<Admission>,
    drain: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("internal_port", &self.internal_port)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        if settings.uses_development_secrets() {
            tracing::warn!(
                "RUNNING WITH THE SHIPPED DEVELOPMENT SECRETS (auth.jwt_secret / internal.secrets): \
                 anyone can mint admin tokens and emit events. Set real secrets before exposing this \
                 server, and set server.production = true to enforce it."
            );
        }
        let verifier = Arc::new(Verifier::new(&settings.auth)?);
        let metrics = Metrics::new().map_err(StartupError::Metrics)?;
        let shutdown = CancellationToken::new();
        let catalog = Catalog::new(
            &settings.events.extra,
            settings.emit.max_batch,
            settings.emit.max_data_bytes,
        );
        let idempotency_ttl = Duration::from_secs(settings.emit.idempotency_ttl_secs);
        let ticket_ttl = Duration::from_secs(settings.auth.ticket_ttl_secs);
        // In Redis mode every instance shares the stream, tickets and idempotency answers, so a
        // load balancer needs no sticky sessions.
        let (broker, notices, tickets, backplane) = match settings.hub.backend {
            HubBackend::Memory => {
                let answers =
                    MemoryAnswers::new(idempotency_ttl, settings.emit.idempotency_capacity);
                let (broker, notices) = MemoryBroker::new(answers);
                let tickets = Tickets::memory(ticket_ttl, settings.auth.max_pending_tickets);
                (Broker::Memory(broker), notices, tickets, Backplane::Alone)
            }
            HubBackend::Redis => {
                let refused = |e: ConnectorError| SettingsError::Invalid {
                    key: e.key,
                    problem: e.problem,
                };
                let connector = Connector::new(&settings.hub).map_err(refused)?;
                connector
                    .probe(settings.hub.redis_timeout())
                    .await
                    .map_err(refused)?;
                let link = Link::new(
                    connector,
                    &settings.hub.stream_key,
                    settings.hub.redis_timeout(),
                );
                let (broker, notices) = RedisBroker::start(
                    link.clone(),
                    &settings.hub,
                    idempotency_ttl,
                    catalog.clone(),
                    shutdown.clone(),
                );
                (
                    Broker::Redis(broker),
                    notices,
                    Tickets::redis(ticket_ttl, link.clone()),
                    Backplane::redis(link, shutdown.clone()),
                )
            }
        };
        let hub = Hub::start(broker, notices, settings.hub.history, settings.hub.buffer);
        let receipts = Receipts::new(hub.clone(), metrics.clone(), &settings.receipts);
        let presence = Presence::start(
            hub.clone(),
            &settings.presence,
            receipts.clone(),
            settings.receipts.max_per_sec,
            backplane,
            metrics.clone(),
            shutdown.clone(),
        );
        let tickets = Arc::new(tickets);
        let admission = Arc::new(Admission::new(
            settings.limits.max_connections,
            settings.limits.max_connections_per_actor,
        ));
        let shared = Shared {
            hub: web::Data::new(hub.clone()),
            verifier: web::Data::from(Arc::clone(&verifier)),
            tickets: web::Data::from(Arc::clone(&tickets)),
            metrics: web::Data::new(metrics.clone()),
            auth: web::Data::new(settings.auth.clone()),
            ws: web::Data::new(settings.ws.clone()),
            shutdown: web::Data::new(shutdown.clone()),
            handshake: web::Data::new(Handshake {
                hub: hub.clone(),
                verifier: Arc::clone(&verifier),
                tickets,
                catalog: catalog.clone(),
                admission: Arc::clone(&admission),
                metrics: metrics.clone(),
                allowed_origins: settings.auth.allowed_origins.clone(),
                shutdown: shutdown.clone(),
            }),
            presence: web::Data::new(presence.clone()),
            connections: web::Data::new(session::Context::start(
                hub.clone(),
                verifier,
                metrics.clone(),
                presence,
                receipts,
                &settings,
                shutdown.clone(),
            )),
            emit: web::Data::new(emit::Context {
                hub,
                catalog,
                metrics,
                internal: settings.internal.clone(),
                max_body_bytes: settings.emit.max_body_bytes,
                body_timeout: settings.emit.body_timeout(),
            }),
        };

        let bind = |addr| listen(addr).map_err(|source| StartupError::Bind { addr, source });
        let public = bind(settings.server.bind)?;
        let internal = settings.server.internal_bind.map(bind).transpose()?;
        let port = local_port(&public)?;
        let internal_port = internal.as_ref().map(local_port).transpose()?;

        let split = internal.is_some();
        let origins = settings.auth.allowed_origins.clone();
        let mut servers = vec![serve(public, &settings, &shared, move |cfg| {
            routes::public(cfg, &origins);
            if !split {
                routes::internal(cfg);
            }
        })?];
        if let Some(listener) = internal {
            servers.push(serve(listener, &settings, &shared, routes::internal)?);
        }
        tracing::info!(port, ?internal_port, "listening");
        Ok(Self {
            servers,
            port,
            internal_port,
            shutdown,
            admission,
            drain: settings.server.drain(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn internal_port(&self) -> Option<u16> {
        self.internal_port
    }

    /// Cancelling this token starts the same graceful shutdown as SIGTERM.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until SIGTERM/SIGINT or [`Self::shutdown_token`], then drains: readiness turns 503
    /// and new subscribers are refused, every connection is told to reconnect and closes, and the
    /// listeners stay up for `server.drain_secs` (emits are still accepted), so a load balancer
    /// polling `/readyz` sees the instance leave before it goes. Then, once no connection is
    /// left (or the drain window and its margin are over), the servers stop. A second signal
    /// stops them at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
        let admission = Arc::clone(&self.admission);
        let drain = self.drain;
        let handles: Vec<_> = self.servers.iter().map(Server::handle).collect();
        tokio::spawn(async move {
            tokio::select! {
                () = termination_signal() => {}
                () = shutdown.cancelled() => {}
            }
            shutdown.cancel();
            tracing::info!(
                drain_secs = drain.as_secs(),
                "draining: readiness is 503 and every tab is told to reconnect; \
                 a second signal stops at once"
            );
            let drained = async {
                let unready = tokio::time::sleep(drain);
                if tokio::time::timeout(drain + SHUTDOWN_MARGIN, admission.all_closed())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        open = admission.open(),
                        "drain window over; dropping the rest"
                    );
                }
                unready.await;
            };
            let graceful = tokio::select! {
                () = drained => true,
                () = termination_signal() => {
                    tracing::warn!("second signal: stopping now");
                    false
                }
            };
            for handle in handles {
                handle.stop(graceful).await;
            }
        });
        futures_util::future::try_join_all(self.servers).await?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM (orchestrators) or SIGINT (a terminal's Ctrl-C).
async fn termination_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = interrupt => {},
                _ = terminate.recv() => {},
            },
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Binds with a deep accept queue. `std::net::TcpListener::bind` listens with a backlog of 128,
/// which a reconnect storm (every tab after a deploy) overflows: the overflow waits out a 1 s SYN
/// retransmit. The kernel caps the value at `net.core.somaxconn`.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)?.into_std()
}

fn local_port(listener: &TcpListener) -> Result<u16, StartupError> {
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| StartupError::Bind {
            addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })
}

/// A client that takes no bytes at all for `after` (its window stays shut, or it vanished) is cut
/// off by the kernel (`TCP_USER_TIMEOUT`, Linux): connections hold no write timers of their own.
fn cut_off_stalled_readers(socket: &TcpStream, after: Duration) {
    #[cfg(target_os = "linux")]
    let _ = socket2::SockRef::from(socket).set_tcp_user_timeout(Some(after));
    // Elsewhere a stalled reader is bounded by the hub's lag, not by time.
    #[cfg(not(target_os = "linux"))]
    let _ = (socket, after);
}

/// One worker's routes, with every dependency a handler extracts.
fn app(
    shared: Shared,
    routes: &dyn Fn(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody + use<>>,
        Error = actix_web::Error,
        InitError = (),
    > + use<>,
> {
    App::new()
        .wrap(problem::json_refusals())
        .app_data(shared.hub)
        .app_data(shared.verifier)
        .app_data(shared.tickets)
        .app_data(shared.metrics)
        .app_data(shared.auth)
        .app_data(shared.ws)
        .app_data(shared.shutdown)
        .app_data(shared.handshake)
        .app_data(shared.presence)
        .app_data(shared.connections)
        .app_data(shared.emit)
        .configure(|cfg| routes(cfg))
        .default_service(web::to(routes::not_found))
}

/// Serves `routes` on `listener` with actix-server and actix-http directly (what `HttpServer`
/// does), because a WebSocket leaves the HTTP dispatcher through the upgrade service, which
/// `HttpServer` does not offer.
fn serve(
    listener: TcpListener,
    settings: &Settings,
    shared: &Shared,
    routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> Result<Server, StartupError> {
    let addr = listener.local_addr().unwrap_or(settings.server.bind);
    let shared = shared.clone();
    let send_timeout = settings.limits.send_timeout();
    let header_timeout = Duration::from_secs(settings.server.header_timeout_secs);
    let max_frame_bytes = settings.ws.max_frame_bytes;
    let mut builder = Server::build()
        .disable_signals()
        .backlog(LISTEN_BACKLOG)
        // Connections have been drained by then; this only bounds flushing their last bytes.
        .shutdown_timeout(SHUTDOWN_MARGIN.as_secs())
        // Per worker; admission enforces the real limit with a clear 503 before this one bites.
        .max_concurrent_connections(settings.limits.max_connections.saturating_add(1024));
    if settings.server.workers > 0 {
        builder = builder.workers(settings.server.workers);
    }
    // Tells idle keep-alive connections to close once the server stops, instead of holding the
    // stop for its whole timeout.
    let stopping = builder.graceful_shutdown_signal();
    let builder = builder
        .listen("admin-push", listener, move || {
            // The same routes twice: for ordinary requests, and for the upgrade service, which
            // has every request asking for a WebSocket answered by them. (Nothing reads the app
            // config's host and address, which only actix-web itself could set.)
            let fresh_app = || map_config(app(shared.clone(), &routes), |()| AppConfig::default());
            let stopping = stopping.clone();
            let connections = shared.connections.clone().into_inner();
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let stopping = stopping.clone();
                    async move { stopping.notified().await }
                })
                .client_request_timeout(header_timeout)
                // What `HttpServer` gives a client to close its side once the server closed its
                // own (actix-http alone would not wait at all).
                .client_disconnect_timeout(CLIENT_DISCONNECT)
                // A client's FIN ends its connection at once. By default actix-http keeps serving
                // a response after the peer closed its side, so a closed SSE tab held its slot
                // (and counted as open) until a write failed, up to two keepalives later.
                .h1_allow_half_closed(false)
                .local_addr(addr)
                .on_connect_ext(move |socket: &TcpStream, _| {
                    cut_off_stalled_readers(socket, send_timeout);
                })
                .upgrade(ws::upgrade_service(
                    fresh_app(),
                    connections,
                    max_frame_bytes,
                ))
                .h1(fresh_app())
                .tcp()
        })
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok(builder.run())
}
