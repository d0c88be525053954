//! The route tables, and the small routes that are neither a transport nor the emit webhook.
//!
//! - [`ticket`]: `POST /admin-ws/ticket`, a JWT traded for a single-use ticket.
//! - [`presence`]: `POST /admin-ws/presence`, a presence report for an SSE connection.
//! - [`receipt`]: `POST /admin-ws/receipt`, a screen-refresh receipt for an SSE connection.
//! - [`health`]: `GET /healthz` and `GET /readyz`.
//! - [`metrics`]: `GET /metrics`.
//! - [`console`]: `GET /`, `/static/*` and the JSON 404 every unknown path gets.
//!
//! Handlers take only the `web::Data<T>` they use; `startup` registers one per dependency.

mod console;
mod health;
mod metrics;
mod presence;
mod receipt;
mod ticket;

use actix_cors::Cors;
use actix_web::{
    HttpRequest, HttpResponse, Resource, ResponseError, Route,
    http::{StatusCode, header},
    web,
};

use crate::{
    auth::{self, AuthError, Principal, Verifier},
    emit,
    metrics::Metrics,
    presence::Refusal,
    problem,
    protocol::ConnectionId,
    settings::AuthSettings,
    sse, ws,
};

pub(crate) use self::console::not_found;

/// What the public listener serves (plus [`internal`] when there is no internal listener).
pub(crate) fn public(cfg: &mut web::ServiceConfig, allowed_origins: &[String]) {
    for (path, route) in [
        ("/admin-ws", web::get().to(ws::admin_ws)),
        ("/admin-ws/ticket", web::post().to(ticket::ticket)),
        ("/admin-sse", web::get().to(sse::admin_sse)),
        ("/admin-ws/presence", web::post().to(presence::presence)),
        ("/admin-ws/receipt", web::post().to(receipt::receipt)),
    ] {
        cfg.service(
            resource(path, route)
                .app_data(web::PayloadConfig::new(presence::MAX_BODY_BYTES))
                .wrap(cors(allowed_origins)),
        );
    }
    for (path, route) in [
        ("/healthz", web::get().to(health::healthz)),
        ("/readyz", web::get().to(health::readyz)),
        ("/", web::get().to(console::console)),
        ("/static/{file}", web::get().to(console::static_file)),
    ] {
        cfg.service(resource(path, route));
    }
}

/// What only trusted callers reach: publishing and metrics.
pub(crate) fn internal(cfg: &mut web::ServiceConfig) {
    for (path, route) in [
        ("/internal/emit", web::post().to(emit::emit)),
        ("/metrics", web::get().to(metrics::metrics)),
    ] {
        cfg.service(resource(path, route));
    }
}

/// The admin a tab's own request (not its stream) comes from: its `Origin` allowed, its bearer
/// token valid. A refusal is counted like any subscriber's.
fn admin(
    req: &HttpRequest,
    verifier: &Verifier,
    metrics: &Metrics,
    settings: &AuthSettings,
) -> Result<Principal, AuthError> {
    auth::check_origin(req, &settings.allowed_origins)
        .and_then(|()| auth::bearer_token(req)?.ok_or(AuthError::Missing))
        .and_then(|token| verifier.verify(&token))
        .inspect_err(|e| metrics.auth_failed(e.reason()))
}

/// Why a tab's own request about its connection (a presence report, a receipt) was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum TabError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl ResponseError for TabError {
    fn status_code(&self) -> StatusCode {
        match self {
            TabError::Auth(e) => e.status_code(),
            TabError::Refused(refusal) => match refusal {
                Refusal::TooManyReports { .. } | Refusal::TooManyReceipts { .. } => {
                    StatusCode::TOO_MANY_REQUESTS
                }
                Refusal::UnknownConnection(_) => StatusCode::NOT_FOUND,
                Refusal::UnknownEvent => StatusCode::UNPROCESSABLE_ENTITY,
                Refusal::Unforwarded => StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Malformed(_) | Refusal::BadReceipt(_) | Refusal::TooManyRecords { .. } => {
                    StatusCode::BAD_REQUEST
                }
            },
        }
    }

    /// A refusal to try again in a second says so.
    fn error_response(&self) -> HttpResponse {
        match self {
            TabError::Auth(e) => e.error_response(),
            TabError::Refused(refusal) => {
                let status = self.status_code();
                let mut builder = problem::builder(status);
                if matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) {
                    builder.insert_header((header::RETRY_AFTER, "1"));
                }
                problem::finish(builder, refusal.code(), &refusal.to_string())
            }
        }
    }
}

/// A connection named as its `ready` message did.
fn connection(text: &str) -> Result<ConnectionId, &'static str> {
    text.parse()
        .map_err(|()| "connection: not the 16 hex digits of a `ready` message's `connection`")
}

/// Every route is registered as a resource: a path that answers a method it does not take with
/// `405` and an `Allow` header (made JSON by `problem::json_refusals`). `App::route` would instead
/// make the method part of the path's match, and a wrong method would fall through to the `404`.
fn resource(path: &str, route: Route) -> Resource {
    web::resource(path).route(route)
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
