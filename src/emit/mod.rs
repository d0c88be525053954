//! `POST /internal/emit`: the publishing webhook Medusa subscribers and admin routes call.
//!
//! Thin on purpose: authenticate the caller (a bearer secret, or an HMAC signature over the body,
//! as `internal.auth` says; constant-time either way), read the body within its size limit and its
//! deadline (a signed request's body is read before anyone is known, so an anonymous caller must
//! not hold a connection open by trickling bytes), insist on JSON, let `catalog::Catalog` turn it
//! into typed events (all-or-nothing), hand them to the hub, and answer `202` as soon as the hub
//! has accepted them, never after the fan-out.
//! An `Idempotency-Key` makes a caller's retries safe: a repeat gets the first answer and publishes
//! nothing. The key goes to the hub with the events, like any publish; the broker keeps the answers
//! (see `idempotency`).

mod caller;

use std::time::Duration;

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header},
    web,
};
use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio_stream::StreamExt;

use self::caller::{Caller, CallerError};
use crate::{
    broker::{BrokerError, PublishOptions},
    catalog::{Catalog, PublishError},
    hub::Hub,
    idempotency::{BadIdempotencyKey, IdempotencyKey},
    metrics::Metrics,
    problem,
    protocol::EventId,
    settings::InternalSettings,
};

/// What the emit route needs, and nothing else.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) hub: Hub,
    pub(crate) catalog: Catalog,
    pub(crate) metrics: Metrics,
    /// How callers authenticate (`internal.*`).
    pub(crate) internal: InternalSettings,
    /// `emit.max_body_bytes`.
    pub(crate) max_body_bytes: usize,
    /// `emit.body_timeout_secs`.
    pub(crate) body_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum EmitError {
    #[error(transparent)]
    Unauthorized(#[from] CallerError),
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("could not read the body: {0}")]
    Body(String),
    #[error("the body did not arrive within {} s", .0.as_secs())]
    BodyTimeout(Duration),
    #[error(transparent)]
    BadIdempotencyKey(#[from] BadIdempotencyKey),
    #[error("a request with this Idempotency-Key is still in progress")]
    InProgress,
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the hub cannot accept events right now; nothing was published; retry")]
    Unavailable(#[source] BrokerError),
    #[error(
        "the hub did not confirm in time; it will not publish this later; retry with the same Idempotency-Key"
    )]
    OutcomeUnknown(#[source] BrokerError),
}

impl ResponseError for EmitError {
    fn status_code(&self) -> StatusCode {
        match self {
            EmitError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            EmitError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EmitError::BodyTooLarge(_)
            | EmitError::Publish(
                PublishError::BatchTooLarge { .. } | PublishError::DataTooLarge { .. },
            ) => StatusCode::PAYLOAD_TOO_LARGE,
            EmitError::Body(_)
            | EmitError::BadIdempotencyKey(_)
            | EmitError::Publish(PublishError::Malformed(_)) => StatusCode::BAD_REQUEST,
            EmitError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            EmitError::InProgress => StatusCode::CONFLICT,
            EmitError::Publish(PublishError::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            EmitError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            EmitError::OutcomeUnknown(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = problem::builder(self.status_code());
        match self {
            EmitError::Unauthorized(_) => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            EmitError::Unavailable(_) | EmitError::OutcomeUnknown(_) => {
                builder.insert_header((header::RETRY_AFTER, "1"));
                // The cause chain goes to the log; the caller only needs to know to retry.
                tracing::warn!(error = ?self, "emit refused: hub unavailable");
            }
            _ => {}
        }
        problem::finish(builder, self.code(), &self.to_string())
    }
}

impl EmitError {
    /// The `error` field of the answer, and the metrics label.
    fn code(&self) -> &'static str {
        match self.status_code() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::REQUEST_TIMEOUT => "body_timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::CONFLICT => "conflict",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_event",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::GATEWAY_TIMEOUT => "outcome_unknown",
            _ => "bad_request",
        }
    }
}

impl From<BrokerError> for EmitError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::InProgress => EmitError::InProgress,
            BrokerError::OutcomeUnknown(_) => EmitError::OutcomeUnknown(error),
            other => EmitError::Unavailable(other),
        }
    }
}

pub(crate) async fn emit(
    req: HttpRequest,
    payload: web::Payload,
    context: web::Data<Context>,
) -> Result<HttpResponse, EmitError> {
    let answer = handle(&req, payload, &context).await;
    if let Err(e) = &answer {
        context.metrics.emit_rejected(e.code());
    }
    answer
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    context: &Context,
) -> Result<HttpResponse, EmitError> {
    let caller = Caller::identify(req, &context.internal)?;
    // The body is read only once a bearer caller is known, or because the signature covers it.
    let body = tokio::time::timeout(
        context.body_timeout,
        read_body(payload, context.max_body_bytes),
    )
    .await
    .map_err(|_| EmitError::BodyTimeout(context.body_timeout))??;
    caller.verify_body(&body, &context.internal)?;
    require_json(req)?;
    let parsed = context.catalog.parse_body(&body)?;
    let options = PublishOptions {
        idempotency_key: idempotency_key(req)?,
    };
    // The hub takes the events; their names are kept to count them once it has accepted them.
    let names: Vec<_> = parsed.events.iter().map(|e| e.name.clone()).collect();
    let published = context.hub.publish(parsed.events, options).await?;
    if published.appended {
        for name in &names {
            context.metrics.published(name.as_str());
        }
    }
    Ok(accepted(answer(&published.ids, parsed.is_batch)))
}

/// `{"id"}` for a single event, `{"ids"}` for a batch: the answer follows the request's shape.
fn answer(ids: &[EventId], is_batch: bool) -> Bytes {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let body = if is_batch {
        json!({ "ids": ids })
    } else {
        json!({ "id": ids[0] })
    };
    Bytes::from(body.to_string())
}

fn accepted(body: Bytes) -> HttpResponse {
    HttpResponse::Accepted()
        .content_type("application/json")
        .body(body)
}

fn require_json(req: &HttpRequest) -> Result<(), EmitError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(EmitError::UnsupportedMediaType)
    }
}

/// Reads the body, refusing as soon as it grows past `limit` (a lying Content-Length cannot help).
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Bytes, EmitError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| EmitError::Body(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(EmitError::BodyTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, EmitError> {
    req.headers()
        .get("idempotency-key")
        .map(|value| IdempotencyKey::parse(value.as_bytes()))
        .transpose()
        .map_err(EmitError::from)
}
