//! The one shape every rejection takes: a status code and `{"error": <code>, "message": <why>}`.
//!
//! Each HTTP-facing error enum (`auth::AuthError`, `emit::EmitError`, ...) maps itself onto this, so
//! clients can branch on `error` and humans can read `message`. Refusals that actix-web makes on
//! its own (`405` from a route table, a failed extractor, any error a handler passes up as an
//! `actix_web::Error`) come with an empty or plain-text body; [`json_refusals`] wraps the whole app
//! and gives them the same shape, so no client ever has to special-case one.

use actix_web::{
    HttpResponse, HttpResponseBuilder,
    dev::ServiceResponse,
    http::{StatusCode, header},
    middleware::{ErrorHandlerResponse, ErrorHandlers},
};
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

/// Middleware: every 4xx/5xx answer that is not JSON yet becomes one, keeping its status and
/// headers (`Allow`, `Sec-WebSocket-Version`, `WWW-Authenticate`, ...).
pub(crate) fn json_refusals<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_problem)
}

fn to_problem<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
    let message = match (status, res.response().error()) {
        (StatusCode::NOT_FOUND, _) => {
            format!(
                "no route for {} {}",
                res.request().method(),
                res.request().path()
            )
        }
        (StatusCode::METHOD_NOT_ALLOWED, _) => format!(
            "{} is not allowed on {}",
            res.request().method(),
            res.request().path()
        ),
        // A client error's own words say what to fix; a server error's stay in the server.
        (status, Some(error)) if status.is_client_error() => error.to_string(),
        _ => reason.to_owned(),
    };
    let (req, original) = res.into_parts();
    let mut refusal = respond(status, &code, &message);
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            refusal.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, refusal).map_into_right_body(),
    ))
}
