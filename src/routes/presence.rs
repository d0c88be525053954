//! `POST /admin-ws/presence`: a presence report for a connection that cannot send one itself (an
//! SSE stream), authenticated like the ticket exchange, by the admin's bearer token. It names the
//! connection by the id its `ready` carried; only that admin's own open connections can be named.
//! `204` when this instance took it; `202` when another instance may hold the connection and the
//! report went there on the backplane.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::{
    auth::Verifier,
    metrics::Metrics,
    presence::{self, Presence, Refusal, Report, Taken},
    settings::AuthSettings,
};

/// The largest report body: the same bound as a WebSocket client frame's default.
pub(super) const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    connection: String,
    records: serde_json::Value,
    /// Grows with each report of the connection, if the client numbers them.
    #[serde(default)]
    seq: Option<u64>,
}

pub(super) async fn presence(
    req: HttpRequest,
    body: web::Bytes,
    verifier: web::Data<Verifier>,
    presence: web::Data<Presence>,
    metrics: web::Data<Metrics>,
    settings: web::Data<AuthSettings>,
) -> Result<HttpResponse, super::TabError> {
    let principal = super::admin(&req, &verifier, &metrics, &settings)?;
    let taken = take(&body, &principal.actor_id, &presence)
        .await
        .inspect_err(|refusal| presence.refused(refusal))?;
    Ok(match taken {
        Taken::Here => HttpResponse::NoContent().finish(),
        Taken::Forwarded => HttpResponse::Accepted().finish(),
    })
}

async fn take(body: &[u8], actor_id: &str, presence: &Presence) -> Result<Taken, Refusal> {
    let Body {
        connection,
        records,
        seq,
    } = serde_json::from_slice(body).map_err(presence::malformed)?;
    let id = super::connection(&connection).map_err(presence::malformed)?;
    let report: Report = serde_json::from_value(records).map_err(presence::malformed)?;
    presence.report_from_afar(id, actor_id, report, seq).await
}
