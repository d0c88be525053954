//! The WebSocket transport at `GET /admin-ws`.
//!
//! The route negotiates: an `Upgrade: websocket` request becomes a WebSocket session, a plain request
//! that accepts `text/event-stream` gets the SSE stream, so one URL serves both. Authentication and
//! admission happen before the handshake, so a refused client gets an ordinary status code and JSON
//! body rather than a socket that opens and dies. Client frames pass a [`guard`] on their size
//! before anything buffers them.

mod guard;

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, dev,
    http::{StatusCode, header},
    web,
};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, ProtocolError};

use crate::{
    problem,
    protocol::{Control, Event, TransportKind},
    session::{self, Closed, Exit, Handshake, Inbound, Transport},
    settings::WsSettings,
    sse,
};

/// Application close code: the session's credentials lapsed or a refresh was refused.
const CLOSE_AUTH: u16 = 4401;

pub(crate) async fn admin_ws(
    req: HttpRequest,
    body: web::Payload,
    handshake: web::Data<Handshake>,
    connections: web::Data<session::Context>,
    settings: web::Data<WsSettings>,
) -> actix_web::Result<HttpResponse> {
    if !is_upgrade(&req) {
        return if accepts_event_stream(&req) {
            Ok(sse::open(&req, &handshake, connections).await?)
        } else {
            Ok(problem::respond(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                "send a WebSocket upgrade, or `Accept: text/event-stream` for SSE",
            ))
        };
    }
    let subscriber = handshake.admit(&req, None).await?;
    let guarded: std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>> = Box::pin(
        guard::Guarded::new(body.into_inner(), settings.max_frame_bytes),
    );
    let mut guarded = dev::Payload::Stream { payload: guarded };
    let body = web::Payload::from_request(&req, &mut guarded).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let transport = WsTransport {
        session,
        stream: stream.max_frame_size(settings.max_frame_bytes),
    };
    actix_web::rt::spawn(session::run(
        transport,
        subscriber,
        connections.into_inner(),
    ));
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

struct WsTransport {
    session: actix_ws::Session,
    stream: MessageStream,
}

impl Transport for WsTransport {
    const KIND: TransportKind = TransportKind::Ws;

    async fn event(&mut self, event: &Event) -> Result<(), Closed> {
        self.session
            .text(event.ws_frame.clone())
            .await
            .map_err(|_| Closed)
    }

    async fn control(&mut self, control: Control) -> Result<(), Closed> {
        self.session
            .text(control.ws_frame())
            .await
            .map_err(|_| Closed)
    }

    async fn heartbeat(&mut self) -> Result<(), Closed> {
        self.session.ping(b"").await.map_err(|_| Closed)
    }

    async fn inbound(&mut self) -> Inbound {
        match self.stream.recv().await {
            Some(Ok(Message::Text(text))) => Inbound::Text(text),
            Some(Ok(Message::Ping(payload))) => match self.session.pong(&payload).await {
                Ok(()) => Inbound::Alive,
                Err(_) => Inbound::Gone(Exit::SendFailed),
            },
            // Pongs, and binary or fragmented frames we have no use for: alive, otherwise ignored.
            Some(Ok(
                Message::Pong(_) | Message::Binary(_) | Message::Continuation(_) | Message::Nop,
            )) => Inbound::Alive,
            Some(Ok(Message::Close(_))) | None => Inbound::Gone(Exit::ClientClosed),
            Some(Err(ProtocolError::Overflow)) => Inbound::Gone(Exit::FrameTooLarge),
            Some(Err(ProtocolError::Io(e))) if guard::is_refusal(&e) => {
                Inbound::Gone(Exit::FrameTooLarge)
            }
            Some(Err(_)) => Inbound::Gone(Exit::ProtocolError),
        }
    }

    async fn close(self, exit: Exit) {
        let (code, description) = match exit {
            Exit::ClientClosed => (CloseCode::Normal, "bye"),
            Exit::Draining => (CloseCode::Restart, "server draining; reconnect with resume"),
            Exit::AuthExpired => (CloseCode::Other(CLOSE_AUTH), "token expired"),
            Exit::RefreshRejected => (CloseCode::Other(CLOSE_AUTH), "refresh token rejected"),
            Exit::PongTimeout => (CloseCode::Away, "no pong"),
            Exit::SendFailed => (CloseCode::Away, "too slow to take writes"),
            Exit::FrameTooLarge => (CloseCode::Size, "frame too large"),
            Exit::Flood => (CloseCode::Policy, "too many frames"),
            Exit::ProtocolError => (CloseCode::Protocol, "protocol error"),
        };
        let reason = CloseReason {
            code,
            description: Some(description.to_owned()),
        };
        // The peer may already be gone; there is nobody left to tell.
        let _ = self.session.close(Some(reason)).await;
    }
}
