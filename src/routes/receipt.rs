//! `POST /admin-ws/receipt`: a screen-refresh receipt for a connection that cannot send one itself
//! (an SSE stream), authenticated and naming its connection as presence reports do. With several
//! instances it is counted wherever it lands (see `presence::forward`).

use actix_web::{HttpRequest, HttpResponse, ResponseError, http::StatusCode, web};
use serde::Deserialize;

use crate::{
    auth::{AuthError, Verifier},
    metrics::Metrics,
    presence::{self, Presence, Refusal},
    problem,
    settings::AuthSettings,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    connection: String,
    id: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum ReceiptRefused {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("not a receipt: {0}")]
    Malformed(String),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl ReceiptRefused {
    fn code(&self) -> &'static str {
        match self {
            ReceiptRefused::Auth(e) => e.reason(),
            ReceiptRefused::Malformed(_) => "bad_receipt",
            ReceiptRefused::Refused(refusal) => refusal.code(),
        }
    }
}

impl ResponseError for ReceiptRefused {
    fn status_code(&self) -> StatusCode {
        match self {
            ReceiptRefused::Auth(e) => e.status_code(),
            ReceiptRefused::Malformed(_) => StatusCode::BAD_REQUEST,
            ReceiptRefused::Refused(refusal) => super::status_of(refusal),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ReceiptRefused::Auth(e) => e.error_response(),
            ReceiptRefused::Malformed(_) => problem::finish(
                problem::builder(self.status_code()),
                self.code(),
                &self.to_string(),
            ),
            ReceiptRefused::Refused(refusal) => super::refusal_response(refusal),
        }
    }
}

pub(super) async fn receipt(
    req: HttpRequest,
    body: web::Bytes,
    verifier: web::Data<Verifier>,
    presence: web::Data<Presence>,
    metrics: web::Data<Metrics>,
    settings: web::Data<AuthSettings>,
) -> Result<HttpResponse, ReceiptRefused> {
    let principal = super::admin(&req, &verifier, &metrics, &settings)?;
    take(&body, &principal.actor_id, &presence)
        .inspect_err(|refused| metrics.receipt_refused(refused.code()))?;
    Ok(HttpResponse::NoContent().finish())
}

fn take(body: &[u8], actor_id: &str, presence: &Presence) -> Result<(), ReceiptRefused> {
    let Body { connection, id } =
        serde_json::from_slice(body).map_err(|e| ReceiptRefused::Malformed(presence::brief(e)))?;
    let connection =
        super::connection(&connection).map_err(|e| ReceiptRefused::Malformed(e.to_owned()))?;
    Ok(presence.receipt_from_afar(connection, actor_id, &id)?)
}
