//! Wiring: builds the shared state from settings, binds the listeners, routes, and runs until a
//! signal (or the test that owns it) asks for shutdown.
//!
//! Binding happens in [`Application::build`], before serving, so the chosen ports are known up front
//! and tests can bind port 0. Shutdown is an input: one `CancellationToken`, cancelled by SIGTERM or
//! SIGINT, reaches every connection loop, which sends `reconnect` and closes; then the HTTP servers
//! stop gracefully.

use std::{
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use actix_cors::Cors;
use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    dev::Server,
    http::{StatusCode, header},
    web,
};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, LocalTickets, Tickets, Verifier},
    backplane::Backplane,
    emit::{self, Idempotency, LocalAnswers},
    event::Catalog,
    hub::Hub,
    metrics::Metrics,
    problem,
    session::Admission,
    settings::{HubBackend, Settings, SettingsError},
    sse, ws,
};

/// Accept-queue depth requested for the listeners (see [`listen`]).
const LISTEN_BACKLOG: u32 = 4096;

/// Extra time, past `server.drain_secs`, that the HTTP servers wait for connections to finish.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub hub: Hub,
    pub verifier: Verifier,
    pub tickets: Tickets,
    pub catalog: Catalog,
    pub admission: Arc<Admission>,
    pub idempotency: Idempotency,
    pub metrics: Metrics,
    pub shutdown: CancellationToken,
}

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

pub struct Application {
    servers: Vec<Server>,
    port: u16,
    internal_port: Option<u16>,
    state: web::Data<AppState>,
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
        let shutdown = CancellationToken::new();
        let catalog = Catalog::new(
            &settings.events.extra,
            settings.emit.max_batch,
            settings.emit.max_data_bytes,
        );
        // In Redis mode every instance shares the stream, tickets and idempotency answers, so a
        // load balancer needs no sticky sessions.
        let (hub, shared) = match settings.hub.backend {
            HubBackend::Memory => (Hub::memory(settings.hub.history, settings.hub.buffer), None),
            HubBackend::Redis => {
                let backplane =
                    Backplane::new(&settings.hub).map_err(|e| SettingsError::Invalid {
                        key: "hub.redis_url",
                        problem: e.to_string(),
                    })?;
                let hub = Hub::redis(backplane.clone(), settings.hub.history, settings.hub.buffer);
                let reader =
                    backplane
                        .clone()
                        .run_reader(hub.clone(), catalog.clone(), shutdown.clone());
                tokio::spawn(reader);
                (hub, Some(backplane))
            }
        };
        let idempotency_ttl = Duration::from_secs(settings.emit.idempotency_ttl_secs);
        let ticket_ttl = Duration::from_secs(settings.auth.ticket_ttl_secs);
        let (tickets, idempotency) = match shared {
            Some(backplane) => (
                Tickets::Shared {
                    backplane: backplane.clone(),
                    ttl: ticket_ttl,
                },
                Idempotency::Shared {
                    backplane,
                    ttl: idempotency_ttl,
                },
            ),
            None => (
                Tickets::Local(LocalTickets::new(
                    ticket_ttl,
                    settings.auth.max_pending_tickets,
                )),
                Idempotency::Local(LocalAnswers::new(
                    idempotency_ttl,
                    settings.emit.idempotency_capacity,
                )),
            ),
        };
        let state = web::Data::new(AppState {
            verifier: Verifier::new(&settings.auth)?,
            tickets,
            catalog,
            admission: Arc::new(Admission::new(
                settings.limits.max_connections,
                settings.limits.max_connections_per_actor,
            )),
            idempotency,
            hub,
            metrics: Metrics::new().map_err(StartupError::Metrics)?,
            shutdown,
            settings,
        });

        let bind = |addr| listen(addr).map_err(|source| StartupError::Bind { addr, source });
        let public = bind(state.settings.server.bind)?;
        let internal = state.settings.server.internal_bind.map(bind).transpose()?;
        let port = local_port(&public)?;
        let internal_port = internal.as_ref().map(local_port).transpose()?;

        let split = internal.is_some();
        let origins = state.settings.auth.allowed_origins.clone();
        let mut servers = vec![serve(public, &state, move |cfg| {
            public_routes(cfg, &origins);
            if !split {
                internal_routes(cfg);
            }
        })?];
        if let Some(listener) = internal {
            servers.push(serve(listener, &state, internal_routes)?);
        }
        tracing::info!(port, ?internal_port, "listening");
        Ok(Self {
            servers,
            port,
            internal_port,
            state,
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
        self.state.shutdown.clone()
    }

    /// Serves until SIGTERM/SIGINT or [`Self::shutdown_token`], then drains: readiness turns 503
    /// and new subscribers are refused while the listeners stay up, every connection is told to
    /// reconnect and closes, and once none is left (or the drain window is over) the servers stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let shutdown = self.state.shutdown.clone();
        let state = self.state.clone();
        let handles: Vec<_> = self.servers.iter().map(Server::handle).collect();
        tokio::spawn(async move {
            tokio::select! {
                () = termination_signal() => tracing::info!("signal received: draining"),
                () = shutdown.cancelled() => tracing::info!("shutdown requested: draining"),
            }
            shutdown.cancel();
            let window = state.settings.server.drain() + SHUTDOWN_MARGIN;
            if tokio::time::timeout(window, state.admission.all_closed())
                .await
                .is_err()
            {
                tracing::warn!(
                    open = state.admission.open(),
                    "drain window over; dropping the rest"
                );
            }
            for handle in handles {
                handle.stop(true).await;
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

fn serve(
    listener: TcpListener,
    state: &web::Data<AppState>,
    routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> Result<Server, StartupError> {
    let settings = &state.settings;
    let addr = listener.local_addr().unwrap_or(settings.server.bind);
    let data = state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(routes.clone())
            .default_service(web::to(not_found))
    })
    .disable_signals()
    .client_request_timeout(Duration::from_secs(settings.server.header_timeout_secs))
    // Connections have been drained by then; this only bounds flushing their last bytes.
    .shutdown_timeout(SHUTDOWN_MARGIN.as_secs())
    // Per worker; admission enforces the real limit with a clear 503 before this one bites.
    .max_connections(settings.limits.max_connections.saturating_add(1024));
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    Ok(server
        .listen(listener)
        .map_err(|source| StartupError::Bind { addr, source })?
        .run())
}

fn public_routes(cfg: &mut web::ServiceConfig, allowed_origins: &[String]) {
    let browser_facing = |path, route: actix_web::Route| {
        web::resource(path).wrap(cors(allowed_origins)).route(route)
    };
    cfg.service(browser_facing("/admin-ws", web::get().to(ws::admin_ws)))
        .service(browser_facing("/admin-ws/ticket", web::post().to(ticket)))
        .service(browser_facing("/admin-sse", web::get().to(sse::admin_sse)))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/", web::get().to(console))
        .route("/static/{file}", web::get().to(static_file));
}

/// CORS for the routes an admin page on another origin calls: the ticket exchange (a `POST` with
/// `Authorization`, so preflighted) and the SSE stream. No credentials mode: auth is a bearer token
/// or a ticket, never a cookie. An unlisted origin gets no CORS headers here and a 403 from the
/// handler, so the refusal stays an explicit JSON answer.
fn cors(allowed_origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allowed_header("last-event-id")
        .max_age(600)
        .block_on_origin_mismatch(false);
    if allowed_origins.is_empty() {
        cors.allow_any_origin()
    } else {
        allowed_origins
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin))
    }
}

fn internal_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/internal/emit", web::post().to(emit::emit))
        .route("/metrics", web::get().to(metrics));
}

/// `POST /admin-ws/ticket`: trades an admin JWT for a single-use ticket a browser can put in a URL.
async fn ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, auth::AuthError> {
    let issued = async {
        auth::check_origin(&req, &state.settings.auth.allowed_origins)?;
        let token = auth::bearer_token(&req)?.ok_or(auth::AuthError::Missing)?;
        let principal = state.verifier.verify(&token)?;
        state.tickets.issue(principal).await
    };
    let (ticket, life) = issued
        .await
        .inspect_err(|e| state.metrics.auth_failed(e.reason()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "ticket": ticket,
            "expires_in": life.as_secs(),
        })))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let problem = if state.shutdown.is_cancelled() {
        Err("draining".to_owned())
    } else {
        state.hub.is_ready()
    };
    match problem {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(reason) => problem::respond(StatusCode::SERVICE_UNAVAILABLE, "not_ready", &reason),
    }
}

const CONSOLE_HTML: &str = include_str!("../static/index.html");
const CLIENT_JS: &str = include_str!("../static/admin-push.js");

async fn console() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(CONSOLE_HTML)
}

async fn static_file(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    match file.as_str() {
        "admin-push.js" => HttpResponse::Ok()
            .content_type("text/javascript; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(CLIENT_JS),
        "index.html" => console().await,
        _ => not_found(req).await,
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    problem::respond(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route for {} {}", req.method(), req.path()),
    )
}
