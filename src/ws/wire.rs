//! The client's side of a WebSocket once its handshake is over: the socket itself, read through a
//! stack buffer into the frame [`guard`](super::guard) and the decoder.
//!
//! The wire owns the socket, so the connection it belongs to is everything a WebSocket holds: no
//! HTTP dispatcher and no buffer of its own while idle. A read goes into a 4 KiB buffer on the
//! stack; only the bytes of a frame not yet complete are kept (bounded by the guard to one frame
//! plus one read), and that allocation is released as soon as it is empty, so a client that once
//! sent a burst does not keep a grown buffer for life. Writes go through the same socket, from
//! the [`driver`](super::driver).

use std::{
    io,
    task::{Context as TaskContext, Poll},
};

use actix_codec::Decoder;
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, OpCode, Parser, ProtocolError};
use actix_web::rt::net::TcpStream;
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

use super::guard::{FrameGuard, Refused};
use crate::{
    protocol::{Control, Event, Message, TransportKind},
    session::{Exit, Inbound, Wire},
};

/// Application close code: the session's credentials lapsed or a refresh was refused.
const CLOSE_AUTH: u16 = 4401;

/// An empty ping, unmasked: the same two bytes for everyone. FIN plus opcode 9 (RFC 6455 §5.5.2)
/// written out, because `OpCode::Ping as u8` is the enum's position (4), not its wire value.
const PING: &[u8] = &[0x89, 0];

/// The most read from the socket at once, on the stack.
const READ_CHUNK: usize = 4096;

/// A WebSocket's socket, and its client frames as they are decoded.
pub(crate) struct WsWire {
    socket: TcpStream,
    guard: FrameGuard,
    codec: Codec,
    /// Client bytes not yet decoded: a frame still arriving.
    inbound: BytesMut,
    /// A text message arriving in fragments, until its last one.
    text: Option<Vec<u8>>,
}

impl WsWire {
    /// The socket after the `101`, and what the client already sent behind its handshake (its
    /// first frames, read by the HTTP dispatcher with the request).
    pub(crate) fn new(socket: TcpStream, already_read: &[u8], max_frame_bytes: usize) -> Self {
        let mut wire = Self {
            socket,
            guard: FrameGuard::new(max_frame_bytes),
            codec: Codec::new().max_size(max_frame_bytes),
            inbound: BytesMut::new(),
            text: None,
        };
        // A refusal is remembered by the guard and found by the first poll.
        if wire.guard.inspect(already_read).is_ok() {
            wire.inbound.extend_from_slice(already_read);
        }
        wire
    }

    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The largest text message, whole or in fragments: `ws.max_frame_bytes`.
    fn max_message(&self) -> usize {
        self.guard.limit()
    }

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
        let limit = self.max_message();
        let Some(text) = self.text.as_mut() else {
            return Inbound::Alive;
        };
        if text.len() + part.len() > limit {
            return Inbound::Gone(Exit::FrameTooLarge);
        }
        text.extend_from_slice(part);
        Inbound::Alive
    }

    /// Reads what the socket has into `inbound`, past the guard: `None` when bytes were added.
    fn read(&mut self, cx: &mut TaskContext<'_>) -> Option<Poll<Inbound>> {
        if let Some(refused) = self.guard.refused() {
            return Some(Poll::Ready(Inbound::Gone(refusal_exit(refused))));
        }
        loop {
            // Readiness first: most polls find nothing to read, and then the buffer below is
            // never filled in.
            match self.socket.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Some(Poll::Ready(Inbound::Gone(Exit::ClientClosed))),
                Poll::Pending => {
                    if self.inbound.is_empty() {
                        self.inbound = BytesMut::new();
                    }
                    return Some(Poll::Pending);
                }
            }
            let mut chunk = [0u8; READ_CHUNK];
            match self.socket.try_read(&mut chunk) {
                Ok(0) => return Some(Poll::Ready(Inbound::Gone(Exit::ClientClosed))),
                Ok(n) => {
                    let read = &chunk[..n];
                    if let Err(refused) = self.guard.inspect(read) {
                        return Some(Poll::Ready(Inbound::Gone(refusal_exit(refused))));
                    }
                    self.inbound.extend_from_slice(read);
                    return None;
                }
                // The readiness was stale (it is cleared now) or a signal came: ask again.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                // Reset, or the kernel gave up on it (`TCP_USER_TIMEOUT`).
                Err(_) => return Some(Poll::Ready(Inbound::Gone(Exit::ClientClosed))),
            }
        }
    }
}

fn refusal_exit(refused: Refused) -> Exit {
    match refused {
        Refused::TooLarge { .. } => Exit::FrameTooLarge,
        Refused::BadControl => Exit::ProtocolError,
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
            // One read at a time, decoded before the next: what is buffered stays within a frame
            // (bounded by the guard) plus one read.
            if let Some(outcome) = self.read(cx) {
                return outcome;
            }
        }
    }
}
