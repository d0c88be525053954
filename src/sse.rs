//! The Server-Sent Events transport at `GET /admin-sse` (and `GET /admin-ws` without an upgrade).
//!
//! For networks and proxies that block WebSocket. The connection loop writes each event's shared
//! pre-rendered record into a small bounded channel that is the response body; when the client stops
//! reading, the channel fills, the write times out and the connection ends (it will resume). The
//! headers turn off caching and nginx's response buffering so records arrive the moment they are sent.

use std::convert::Infallible;

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    protocol::{self, Control, Event, TransportKind},
    session::{self, Closed, Exit, Handshake, Inbound, SubscribeError, Transport},
};

/// Records queued between the connection loop and the socket. Small on purpose: backpressure
/// should reach the loop (and its send timeout) quickly, not pile up here.
const BODY_QUEUE: usize = 8;

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
    let (body, records) = mpsc::channel(BODY_QUEUE);
    // A fresh channel always has room for the first record.
    let _ = body.try_send(Bytes::from_static(RETRY));
    let transport = SseTransport { body };
    actix_web::rt::spawn(session::run(
        transport,
        subscriber,
        connections.into_inner(),
    ));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(ReceiverStream::new(records).map(Ok::<_, Infallible>)))
}

struct SseTransport {
    body: mpsc::Sender<Bytes>,
}

impl SseTransport {
    async fn write(&mut self, record: Bytes) -> Result<(), Closed> {
        self.body.send(record).await.map_err(|_| Closed)
    }
}

impl Transport for SseTransport {
    const KIND: TransportKind = TransportKind::Sse;

    async fn event(&mut self, event: &Event) -> Result<(), Closed> {
        self.write(event.sse_record.clone()).await
    }

    async fn control(&mut self, control: Control) -> Result<(), Closed> {
        self.write(Bytes::from(control.sse_record())).await
    }

    async fn heartbeat(&mut self) -> Result<(), Closed> {
        self.write(Bytes::from_static(KEEPALIVE)).await
    }

    /// An SSE client cannot speak; all we can learn is that it went away (the body was dropped).
    async fn inbound(&mut self) -> Inbound {
        self.body.closed().await;
        Inbound::Gone(Exit::ClientClosed)
    }

    /// Dropping the sender ends the response body after what is queued.
    async fn close(self, _exit: Exit) {}
}
