//! `POST /admin-ws/receipt`: a screen-refresh receipt for a connection that cannot send one itself
//! (an SSE stream), authenticated and naming its connection as presence reports do. With several
//! instances it is counted wherever it lands (see `presence::forward`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::{
    auth::Verifier,
    metrics::Metrics,
    presence::{self, Presence, Refusal},
    settings::AuthSettings,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    connection: String,
    id: String,
}

pub(super) async fn receipt(
    req: HttpRequest,
    body: web::Bytes,
    verifier: web::Data<Verifier>,
    presence: web::Data<Presence>,
    metrics: web::Data<Metrics>,
    settings: web::Data<AuthSettings>,
) -> Result<HttpResponse, super::TabError> {
    let principal = super::admin(&req, &verifier, &metrics, &settings)?;
    take(&body, &principal.actor_id, &presence)
        .inspect_err(|refused| metrics.receipt_refused(refused.code()))?;
    Ok(HttpResponse::NoContent().finish())
}

fn take(body: &[u8], actor_id: &str, presence: &Presence) -> Result<(), Refusal> {
    let Body { connection, id } =
        serde_json::from_slice(body).map_err(|e| Refusal::BadReceipt(presence::brief(e)))?;
    let connection =
        super::connection(&connection).map_err(|e| Refusal::BadReceipt(e.to_owned()))?;
    presence.receipt_from_afar(connection, actor_id, &id)
}
