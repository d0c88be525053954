//! The one shape every rejection takes: a status code and `{"error": <code>, "message": <why>}`.
//!
//! Each HTTP-facing error enum (`auth::AuthError`, `emit::EmitError`, ...) maps itself onto this, so
//! clients can branch on `error` and humans can read `message`.

use actix_web::{HttpResponse, HttpResponseBuilder, http::StatusCode};
use serde::Serialize;

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

/// Starts a JSON error response; callers may add headers before [`finish`].
pub(crate) fn builder(status: StatusCode) -> HttpResponseBuilder {
    HttpResponse::build(status)
}

pub(crate) fn finish(mut builder: HttpResponseBuilder, error: &str, message: &str) -> HttpResponse {
    builder.json(Body { error, message })
}

pub(crate) fn respond(status: StatusCode, error: &str, message: &str) -> HttpResponse {
    finish(builder(status), error, message)
}
