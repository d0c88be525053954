//! `GET /healthz` (liveness) and `GET /readyz` (can this instance accept and deliver right now).

use actix_web::{HttpResponse, http::StatusCode, web};
use tokio_util::sync::CancellationToken;

use crate::{hub::Hub, problem};

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 503 while draining (the shutdown token is cancelled) or while the broker cannot publish.
pub(super) async fn readyz(
    hub: web::Data<Hub>,
    shutdown: web::Data<CancellationToken>,
) -> HttpResponse {
    let problem = if shutdown.is_cancelled() {
        Err("draining".to_owned())
    } else {
        hub.health()
    };
    match problem {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(reason) => problem::respond(StatusCode::SERVICE_UNAVAILABLE, "not_ready", &reason),
    }
}
