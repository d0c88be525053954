//! The WebSocket transport at `GET /admin-ws`.
//!
//! The route negotiates: an `Upgrade: websocket` request becomes a WebSocket session, a plain request
//! that accepts `text/event-stream` gets the SSE stream, so one URL serves both. Authentication and
//! admission happen before the handshake, so a refused client gets an ordinary status code and JSON
//! body rather than a socket that opens and dies.
//!
//! A WebSocket request reaches the route through the listener's [`upgrade`] service, which takes
//! the route's `101` and its admitted subscriber and serves the connection off the HTTP
//! dispatcher: a [`driver`] writes, the [`wire`] reads the socket, and client frames pass a
//! [`guard`] on their size before anything buffers them.

mod driver;
pub(crate) mod guard;
mod upgrade;
mod wire;

use actix_http::ws;
use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};

use self::upgrade::Upgradable;
pub(crate) use self::upgrade::service as upgrade_service;
use crate::{
    problem,
    session::{self, Handshake},
    sse,
};

pub(crate) async fn admin_ws(
    req: HttpRequest,
    handshake: web::Data<Handshake>,
    connections: web::Data<session::Context>,
) -> actix_web::Result<HttpResponse> {
    if !is_upgrade(&req) {
        return if accepts_event_stream(&req) {
            Ok(sse::open(&req, &handshake, connections).await?)
        } else {
            let mut response = problem::respond(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                "send a WebSocket upgrade, or `Accept: text/event-stream` for SSE",
            );
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
            response.headers_mut().insert(
                header::UPGRADE,
                header::HeaderValue::from_static("websocket"),
            );
            Ok(response)
        };
    }
    if req.extensions().get::<Upgradable>().is_none() {
        // Only a request with a chunked body gets here without the upgrade service.
        return Ok(upgrade::body_refused());
    }
    // A flawed handshake needs no credentials to refuse: it goes before the ticket is spent.
    if let Err(e) = ws::verify_handshake(req.head()) {
        // actix-http's own status for each handshake flaw, with our JSON body.
        let status = actix_http::Response::from(&e).status();
        let message = format!("WebSocket handshake: {e}");
        let mut response = problem::respond(status, "bad_handshake", &message);
        if status == StatusCode::UPGRADE_REQUIRED {
            // RFC 6455 §4.4: a refused version is answered with the versions the server speaks.
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                header::HeaderValue::from_static("13"),
            );
        }
        return Ok(response);
    }
    let subscriber = handshake.admit(&req, None).await?;
    // The upgrade service writes this `101` and takes the subscriber up on the socket.
    let mut response = HttpResponse::from(
        ws::handshake_response(req.head())
            .finish()
            .map_into_boxed_body(),
    );
    response.extensions_mut().insert(subscriber);
    Ok(response)
}

fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn accepts_event_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}
