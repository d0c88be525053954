//! `POST /admin-ws/receipt`: a screen-refresh receipt for a connection that cannot send one itself
//! (an SSE stream), authenticated and naming its connection as presence reports do.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
    web,
};
use serde::Deserialize;

use crate::{
    auth::{AuthError, Verifier},
    metrics::Metrics,
    presence::{self, Presence, Refusal},
    problem,
    receipts::{ReceiptError, Receipts},
    session,
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
    Connection(#[from] Refusal),
    #[error(transparent)]
    Event(#[from] ReceiptError),
}

impl ReceiptRefused {
    fn code(&self) -> &'static str {
        match self {
            ReceiptRefused::Auth(e) => e.reason(),
            ReceiptRefused::Malformed(_) => "bad_receipt",
            ReceiptRefused::Connection(refusal) => refusal.code(),
            ReceiptRefused::Event(error) => error.code(),
        }
    }
}

impl ResponseError for ReceiptRefused {
    fn status_code(&self) -> StatusCode {
        match self {
            ReceiptRefused::Auth(e) => e.status_code(),
            ReceiptRefused::Malformed(_) => StatusCode::BAD_REQUEST,
            ReceiptRefused::Connection(Refusal::TooManyReceipts { .. }) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ReceiptRefused::Connection(_) => StatusCode::NOT_FOUND,
            ReceiptRefused::Event(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ReceiptRefused::Auth(e) = self {
            return e.error_response();
        }
        let mut builder = problem::builder(self.status_code());
        if self.status_code() == StatusCode::TOO_MANY_REQUESTS {
            builder.insert_header((header::RETRY_AFTER, "1"));
        }
        problem::finish(builder, self.code(), &self.to_string())
    }
}

pub(super) async fn receipt(
    req: HttpRequest,
    body: web::Bytes,
    verifier: web::Data<Verifier>,
    presence: web::Data<Presence>,
    connections: web::Data<session::Context>,
    metrics: web::Data<Metrics>,
    settings: web::Data<AuthSettings>,
) -> Result<HttpResponse, ReceiptRefused> {
    let principal = super::admin(&req, &verifier, &metrics, &settings)?;
    let counted = take(
        &body,
        &principal.actor_id,
        &presence,
        connections.receipts(),
    );
    if let Err(refused) = &counted {
        metrics.receipt_refused(refused.code());
    }
    counted.map(|()| HttpResponse::NoContent().finish())
}

fn take(
    body: &[u8],
    actor_id: &str,
    presence: &Presence,
    receipts: &Receipts,
) -> Result<(), ReceiptRefused> {
    let Body { connection, id } =
        serde_json::from_slice(body).map_err(|e| ReceiptRefused::Malformed(presence::brief(e)))?;
    let connection =
        super::connection(&connection).map_err(|e| ReceiptRefused::Malformed(e.to_owned()))?;
    let transport = presence.receipt(connection, actor_id)?;
    receipts.take(transport, &id)?;
    Ok(())
}
