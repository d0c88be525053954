//! The WebSocket transport at `GET /admin-ws`.
//!
//! The route negotiates: an `Upgrade: websocket` request becomes a WebSocket session, a plain request
//! that accepts `text/event-stream` gets the SSE stream, so one URL serves both. Authentication and
//! admission happen before the handshake, so a refused client gets an ordinary status code and JSON
//! body rather than a socket that opens and dies. Client frames pass a [`guard`] on their size
//! before anything buffers them.

pub(crate) mod guard;

use std::{
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use actix_codec::Decoder;
use actix_http::ws::{self, CloseCode, CloseReason, Codec, Frame, OpCode, Parser, ProtocolError};
use actix_web::{
    HttpRequest, HttpResponse,
    error::PayloadError,
    http::{StatusCode, header},
    web,
};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;

use crate::{
    problem,
    protocol::{Control, Event, TransportKind},
    session::{self, Connection, Exit, Handshake, Inbound, Wire},
    settings::WsSettings,
    sse,
};

/// Application close code: the session's credentials lapsed or a refresh was refused.
const CLOSE_AUTH: u16 = 4401;

/// An empty ping, unmasked: the same two bytes for everyone. FIN plus opcode 9 (RFC 6455 §5.5.2)
/// written out, because `OpCode::Ping as u8` is the enum's position (4), not its wire value.
const PING: &[u8] = &[0x89, 0];

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
    let mut response = match ws::handshake(req.head()) {
        Ok(response) => response,
        // actix-http's own status for each handshake flaw, with our JSON body.
        Err(e) => {
            let status = actix_http::Response::from(&e).status();
            let message = format!("WebSocket handshake: {e}");
            return Ok(problem::respond(status, "bad_handshake", &message));
        }
    };
    let connection = Connection::new(
        wire_for(body, &settings),
        subscriber,
        connections.into_inner(),
    );
    let response = response.message_body(connection)?;
    Ok(HttpResponse::from(response.map_into_boxed_body()))
}

fn wire_for(body: web::Payload, settings: &WsSettings) -> WsWire {
    WsWire {
        payload: guard::Guarded::new(body.into_inner(), settings.max_frame_bytes),
        codec: Codec::new().max_size(settings.max_frame_bytes),
        inbound: BytesMut::new(),
    }
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

/// The client's side of a WebSocket: frames decoded from the request payload, inside the poll of
/// the connection itself.
struct WsWire {
    payload: guard::Guarded,
    codec: Codec,
    /// Client bytes not yet decoded; released whenever it is empty, so a client that once sent a
    /// burst does not keep a grown buffer for life.
    inbound: BytesMut,
}

impl WsWire {
    fn frame(frame: Frame) -> Inbound {
        match frame {
            Frame::Text(text) => match ByteString::try_from(text) {
                Ok(text) => Inbound::Text(text),
                Err(_) => Inbound::Gone(Exit::ProtocolError),
            },
            Frame::Ping(payload) => {
                let mut pong = BytesMut::with_capacity(payload.len() + 2);
                Parser::write_message(&mut pong, payload, OpCode::Pong, true, false);
                Inbound::Reply(pong.freeze())
            }
            // Pongs, and binary or fragmented frames we have no use for: alive, otherwise ignored.
            Frame::Pong(_) | Frame::Binary(_) | Frame::Continuation(_) => Inbound::Alive,
            Frame::Close(_) => Inbound::Gone(Exit::ClientClosed),
        }
    }
}

impl Wire for WsWire {
    const KIND: TransportKind = TransportKind::Ws;

    fn event(event: &Event) -> Bytes {
        event.ws_frame.clone()
    }

    fn control(control: Control) -> Bytes {
        control.ws_frame()
    }

    fn heartbeat() -> Bytes {
        Bytes::from_static(PING)
    }

    fn greeting() -> Option<Bytes> {
        None
    }

    fn goodbye(exit: Exit) -> Option<Bytes> {
        let (code, description) = match exit {
            Exit::ClientClosed => (CloseCode::Normal, "bye"),
            Exit::Draining => (CloseCode::Restart, "server draining; reconnect with resume"),
            Exit::AuthExpired => (CloseCode::Other(CLOSE_AUTH), "token expired"),
            Exit::RefreshRejected => (CloseCode::Other(CLOSE_AUTH), "refresh token rejected"),
            Exit::PongTimeout => (CloseCode::Away, "no pong"),
            Exit::FrameTooLarge => (CloseCode::Size, "frame too large"),
            Exit::Flood => (CloseCode::Policy, "too many frames"),
            Exit::ProtocolError => (CloseCode::Protocol, "protocol error"),
        };
        let mut frame = BytesMut::new();
        let reason = CloseReason {
            code,
            description: Some(description.to_owned()),
        };
        Parser::write_close(&mut frame, Some(reason), false);
        Some(frame.freeze())
    }

    fn poll_inbound(&mut self, cx: &mut TaskContext<'_>) -> Poll<Inbound> {
        loop {
            match self.codec.decode(&mut self.inbound) {
                Ok(Some(frame)) => return Poll::Ready(Self::frame(frame)),
                Ok(None) => {}
                Err(ProtocolError::Overflow) => {
                    return Poll::Ready(Inbound::Gone(Exit::FrameTooLarge));
                }
                Err(_) => return Poll::Ready(Inbound::Gone(Exit::ProtocolError)),
            }
            // One chunk at a time, decoded before the next: what is buffered stays within a frame
            // (bounded by the guard) plus one read.
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.inbound.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(PayloadError::Overflow))) => {
                    return Poll::Ready(Inbound::Gone(Exit::FrameTooLarge));
                }
                Poll::Ready(Some(Err(_)) | None) => {
                    return Poll::Ready(Inbound::Gone(Exit::ClientClosed));
                }
                Poll::Pending => {
                    if self.inbound.is_empty() {
                        self.inbound = BytesMut::new();
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
