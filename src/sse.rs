//! The Server-Sent Events transport at `GET /admin-sse` (and `GET /admin-ws` without an upgrade).
//!
//! For networks and proxies that block WebSocket. The response body is the connection itself
//! (`session::Connection`), writing each event's shared pre-rendered record. An SSE client cannot
//! speak, so all there is to learn from its side is that it went away: its FIN or reset ends the
//! HTTP connection at once (`startup` turns half-closed connections off), and with it the body,
//! its slot and its place in the gauge. The headers turn off caching and nginx's response
//! buffering so records arrive the moment they are sent.

use std::task::{Context as TaskContext, Poll};

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use bytes::Bytes;

use crate::{
    protocol::{self, Control, Event, Message, TransportKind},
    session::{self, Connection, Exit, Handshake, Inbound, SubscribeError, Wire},
};

/// Sent first: how long a browser waits before reconnecting on its own.
const RETRY: &[u8] = b"retry: 2000\n\n";
const KEEPALIVE: &[u8] = b": keepalive\n\n";

pub(crate) async fn admin_sse(
    req: HttpRequest,
    handshake: web::Data<Handshake>,
    connections: web::Data<session::Context>,
) -> Result<HttpResponse, SubscribeError> {
    open(&req, &handshake, connections).await
}

/// Admits the subscriber and answers with its event stream.
pub(crate) async fn open(
    req: &HttpRequest,
    handshake: &Handshake,
    connections: web::Data<session::Context>,
) -> Result<HttpResponse, SubscribeError> {
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .map(|v| protocol::last_event_id(v.as_bytes()));
    let subscriber = handshake.admit(req, last_event_id.as_deref()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .body(Connection::new(
            SseWire,
            subscriber,
            connections.into_inner(),
        )))
}

struct SseWire;

impl Wire for SseWire {
    const KIND: TransportKind = TransportKind::Sse;

    fn event(event: &Event) -> Bytes {
        event.sse_record.clone()
    }

    fn control(control: Control) -> Bytes {
        control.sse_record()
    }

    fn direct(message: &Message) -> Bytes {
        message.sse_record.clone()
    }

    fn heartbeat() -> Bytes {
        Bytes::from_static(KEEPALIVE)
    }

    fn greeting() -> Option<Bytes> {
        Some(Bytes::from_static(RETRY))
    }

    /// The end of the body is the goodbye.
    fn goodbye(_exit: Exit) -> Option<Bytes> {
        None
    }

    fn poll_inbound(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Inbound> {
        Poll::Pending
    }
}
