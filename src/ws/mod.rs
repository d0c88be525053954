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
use actix_http::ws::{
    self, CloseCode, CloseReason, Codec, Frame, Item, OpCode, Parser, ProtocolError,
};
use actix_web::{
    HttpRequest, HttpResponse,
    error::PayloadError,
    http::{StatusCode, header},
    web,
};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;

use self::guard::{GuardedError, Refused};
use crate::{
    problem,
    protocol::{Control, Event, Message, TransportKind},
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
    let mut response = ws::handshake_response(req.head());
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
        text: None,
        max_message: settings.max_frame_bytes,
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
    /// A text message arriving in fragments, until its last one.
    text: Option<Vec<u8>>,
    /// The largest text message, whole or in fragments: `ws.max_frame_bytes`.
    max_message: usize,
}

impl WsWire {
    fn frame(&mut self, frame: Frame) -> Inbound {
        match frame {
            Frame::Text(text) => Self::text(&text),
            Frame::Ping(payload) => {
                let mut pong = BytesMut::with_capacity(payload.len() + 2);
                Parser::write_message(&mut pong, payload, OpCode::Pong, true, false);
                Inbound::Reply(pong.freeze())
            }
            // The codec enforces the order of fragments; only a text message's are kept, to be
            // checked and read whole.
            Frame::Continuation(Item::FirstText(part)) => {
                self.text = Some(Vec::new());
                self.more_text(&part)
            }
            Frame::Continuation(Item::Continue(part)) => self.more_text(&part),
            Frame::Continuation(Item::Last(part)) => match self.more_text(&part) {
                Inbound::Alive => match self.text.take() {
                    Some(whole) => Self::text(&whole),
                    None => Inbound::Alive,
                },
                refused => refused,
            },
            // Pongs, and binary messages we have no use for: alive, otherwise ignored.
            Frame::Pong(_) | Frame::Binary(_) | Frame::Continuation(Item::FirstBinary(_)) => {
                Inbound::Alive
            }
            Frame::Close(_) => Inbound::Gone(Exit::ClientClosed),
        }
    }

    /// A whole text message; not UTF-8 is RFC 6455's close 1007.
    fn text(bytes: &[u8]) -> Inbound {
        match ByteString::try_from(bytes) {
            Ok(text) => Inbound::Text(text),
            Err(_) => Inbound::Gone(Exit::InvalidText),
        }
    }

    /// Adds a fragment to the text message being assembled, if one is (else a binary fragment).
    fn more_text(&mut self, part: &[u8]) -> Inbound {
        let Some(text) = self.text.as_mut() else {
            return Inbound::Alive;
        };
        if text.len() + part.len() > self.max_message {
            return Inbound::Gone(Exit::FrameTooLarge);
        }
        text.extend_from_slice(part);
        Inbound::Alive
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

    fn direct(message: &Message) -> Bytes {
        message.ws_frame.clone()
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
            Exit::InvalidText => (CloseCode::Invalid, "text is not UTF-8"),
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
                Ok(Some(frame)) => return Poll::Ready(self.frame(frame)),
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
                Poll::Ready(Some(Err(
                    GuardedError::Refused(Refused::TooLarge { .. })
                    | GuardedError::Payload(PayloadError::Overflow),
                ))) => {
                    return Poll::Ready(Inbound::Gone(Exit::FrameTooLarge));
                }
                Poll::Ready(Some(Err(GuardedError::Refused(Refused::BadControl)))) => {
                    return Poll::Ready(Inbound::Gone(Exit::ProtocolError));
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
