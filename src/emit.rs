//! `POST /internal/emit`: the publishing webhook Medusa subscribers and admin routes call.
//!
//! Thin on purpose: authenticate the caller (a bearer secret, or an HMAC signature over the body,
//! as `internal.auth` says; constant-time either way), read the body within its size limit, insist
//! on JSON, let `event::Catalog` turn it into typed events (all-or-nothing), hand them to the hub,
//! and answer `202` as soon as the hub has accepted them, never after the fan-out.
//! An `Idempotency-Key` makes a caller's retries safe: a repeat gets the first answer and publishes
//! nothing; in Redis mode the answers are shared by every instance.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header, header::HeaderValue},
    web,
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    auth,
    backplane::Backplane,
    event::{Batch, EventId, EventName, PublishError},
    hub::HubError,
    problem,
    settings::EmitAuth,
    startup::AppState,
};

/// The signed-emit header and how far its timestamp may be from now (replay window).
const SIGNATURE_HEADER: &str = "x-admin-push-signature";
const SIGNATURE_WINDOW_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Idempotency keys longer than this are refused: they are opaque tokens, not documents.
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("could not read the body: {0}")]
    Body(String),
    #[error("Idempotency-Key must be 1 to 200 visible ASCII characters")]
    BadIdempotencyKey,
    #[error("a request with this Idempotency-Key is still in progress")]
    InProgress,
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the hub cannot accept events right now; retry")]
    Unavailable(#[from] HubError),
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
            | EmitError::BadIdempotencyKey
            | EmitError::Publish(PublishError::Malformed(_)) => StatusCode::BAD_REQUEST,
            EmitError::InProgress => StatusCode::CONFLICT,
            EmitError::Publish(PublishError::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            EmitError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = problem::builder(self.status_code());
        match self {
            EmitError::Unauthorized(_) => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            EmitError::Unavailable(_) => {
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
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::CONFLICT => "conflict",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_event",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "bad_request",
        }
    }
}

pub async fn emit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, EmitError> {
    let answer = handle(&req, payload, &state).await;
    if let Err(e) = &answer {
        state.metrics.emit_rejected(e.code());
    }
    answer
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<HttpResponse, EmitError> {
    let internal = &state.settings.internal;
    let signature = match (internal.auth, req.headers().get(SIGNATURE_HEADER)) {
        (EmitAuth::Bearer, _) | (EmitAuth::Either, None) => {
            bearer(req, &internal.secrets)?;
            None
        }
        (EmitAuth::Hmac | EmitAuth::Either, Some(signature)) => Some(signature),
        (EmitAuth::Hmac, None) => {
            return Err(EmitError::Unauthorized("missing X-Admin-Push-Signature"));
        }
    };
    // The body is read only once a bearer caller is known, or because the signature covers it.
    let body = read_body(payload, state.settings.emit.max_body_bytes).await?;
    if let Some(signature) = signature {
        signed(signature, &body, &internal.hmac_secrets, auth::unix_now())?;
    }
    require_json(req)?;
    let batch = state.catalog.parse_body(&body)?;
    let key = idempotency_key(req)?;
    let Some(key) = key else {
        return Ok(accepted(publish(state, batch).await?));
    };
    match &state.idempotency {
        Idempotency::Shared { backplane, ttl } => {
            let (ids, appended) = backplane
                .append_once(&key, &batch.events, *ttl)
                .await
                .map_err(HubError::from)?;
            if appended {
                count_published(state, batch.events.iter().map(|e| &e.name));
            }
            Ok(accepted(answer(&ids, batch.is_batch)))
        }
        Idempotency::Local(answers) => match answers.begin(&key) {
            Begin::Replay(answer) => Ok(accepted(answer)),
            Begin::InProgress => Err(EmitError::InProgress),
            Begin::First => {
                let outcome = publish(state, batch).await;
                match &outcome {
                    Ok(answer) => answers.finish(&key, answer.clone()),
                    // Nothing was published: let a retry run.
                    Err(_) => answers.abandon(&key),
                }
                Ok(accepted(outcome?))
            }
        },
    }
}

async fn publish(state: &AppState, batch: Batch) -> Result<Bytes, EmitError> {
    let is_batch = batch.is_batch;
    // The hub takes the events; their names are kept to count them once it has accepted them.
    let names: Vec<_> = batch.events.iter().map(|e| e.name.clone()).collect();
    let ids = state.hub.publish(batch.events).await?;
    count_published(state, &names);
    Ok(answer(&ids, is_batch))
}

fn count_published<'a>(state: &AppState, names: impl IntoIterator<Item = &'a EventName>) {
    for name in names {
        state.metrics.published(name.as_str());
    }
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

/// Accepts any configured secret (several, for rotation). Every secret is compared, in constant
/// time over fixed-length digests, so neither the match, its position nor a secret's length leaks
/// through timing.
fn bearer(req: &HttpRequest, secrets: &[SecretString]) -> Result<(), EmitError> {
    let wrong = EmitError::Unauthorized("missing or wrong emit secret");
    let token = Sha256::digest(auth::bearer_token(req).ok().flatten().ok_or(wrong)?);
    let matched = secrets
        .iter()
        .fold(subtle::Choice::from(0), |found, secret| {
            found | Sha256::digest(secret.expose_secret()).ct_eq(&token)
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(EmitError::Unauthorized("missing or wrong emit secret"))
    }
}

/// Verifies `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` against every key (for
/// rotation), in constant time per key, and refuses timestamps outside the replay window.
fn signed(
    header: &HeaderValue,
    body: &[u8],
    secrets: &[SecretString],
    now: u64,
) -> Result<(), EmitError> {
    let malformed =
        || EmitError::Unauthorized("X-Admin-Push-Signature must be t=<unix seconds>,v1=<hex>");
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.to_str().map_err(|_| malformed())?.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", v1)) => signatures.push(hex::decode(v1).map_err(|_| malformed())?),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(malformed)?;
    let seconds: u64 = t.parse().map_err(|_| malformed())?;
    if seconds.abs_diff(now) > SIGNATURE_WINDOW_SECS {
        return Err(EmitError::Unauthorized(
            "signature timestamp is outside the ±300 s window",
        ));
    }
    let mut matched = false;
    for secret in secrets {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()) else {
            continue;
        };
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        for signature in &signatures {
            matched |= mac.clone().verify_slice(signature).is_ok();
        }
    }
    if matched {
        Ok(())
    } else {
        Err(EmitError::Unauthorized("signature does not match"))
    }
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

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, EmitError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| EmitError::BadIdempotencyKey)?;
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_BYTES
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(EmitError::BadIdempotencyKey);
    }
    Ok(Some(key.to_owned()))
}

/// What the idempotency store says about a key.
#[derive(Debug)]
enum Begin {
    First,
    InProgress,
    Replay(Bytes),
}

/// Where `Idempotency-Key` answers are remembered: in this process, or in Redis (recorded by the
/// same script that appends the events) so that a retry landing on another instance, or after a
/// timeout, is still recognised.
#[derive(Debug)]
pub enum Idempotency {
    Local(LocalAnswers),
    Shared { backplane: Backplane, ttl: Duration },
}

/// Remembers the answer to each `Idempotency-Key` for a while; bounded, oldest forgotten first.
#[derive(Debug)]
pub struct LocalAnswers {
    entries: Mutex<Entries>,
    ttl: Duration,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Entries {
    answers: HashMap<String, (Instant, Option<Bytes>)>,
    order: VecDeque<(Instant, String)>,
}

impl LocalAnswers {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            ttl,
            capacity,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(&self, key: &str) -> Begin {
        let now = Instant::now();
        let mut entries = self.entries();
        let Entries { answers, order } = &mut *entries;
        // Forget what expired, and the oldest when full: memory stays bounded by `capacity`.
        while let Some((at, oldest)) = order.front() {
            if now.duration_since(*at) < self.ttl && answers.len() < self.capacity {
                break;
            }
            if answers.get(oldest).is_some_and(|(stamp, _)| stamp == at) {
                answers.remove(oldest);
            }
            order.pop_front();
        }
        match answers.get(key) {
            Some((_, Some(answer))) => Begin::Replay(answer.clone()),
            Some((_, None)) => Begin::InProgress,
            None => {
                answers.insert(key.to_owned(), (now, None));
                order.push_back((now, key.to_owned()));
                Begin::First
            }
        }
    }

    fn finish(&self, key: &str, answer: Bytes) {
        if let Some((_, slot)) = self.entries().answers.get_mut(key) {
            *slot = Some(answer);
        }
    }

    fn abandon(&self, key: &str) {
        self.entries().answers.remove(key);
    }
}
