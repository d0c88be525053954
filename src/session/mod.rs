//! One subscriber connection, whatever carries it.
//!
//! WebSocket and SSE differ only in how bytes reach the client and what the client can say back, so
//! both implement [`Wire`] and share one [`Connection`]. A connection's life:
//!
//! - [`handshake`]: parse the query, authenticate, take an [`admission`] slot, subscribe to the hub
//!   (refusals are ordinary HTTP answers, before any upgrade);
//! - [`connection`]: the connection is a stream of bytes, polled by the connection's one task
//!   (SSE: as its response body; WebSocket: by `ws::driver` on the socket); each
//!   poll reads what the client sent, checks the deadlines, and hands over the next pre-rendered
//!   bytes: `ready`, the replay or `resync{gap}`, then live events, until an [`Exit`] and its
//!   goodbye (`reconnect` + close 1012, `auth_expired` + close 4401, ...). No task, no channel and
//!   no timer of its own: the hub's shared tick wakes it for heartbeats and deadlines.

mod admission;
mod connection;
mod handshake;

use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use bytestring::ByteString;

pub(crate) use self::{
    admission::Admission,
    connection::{Connection, Context},
    handshake::{Handshake, SubscribeError, Subscriber},
};
use crate::protocol::{Control, Event, Message, TransportKind};

/// What a client did, as far as the connection cares.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A sign of life (a pong, a frame we ignore) that needs nothing else.
    Alive,
    /// A sign of life that needs an answer on the wire (a pong for a ping).
    Reply(Bytes),
    Text(ByteString),
    /// The client ended or broke the conversation; the connection ends with this.
    Gone(Exit),
}

/// Why a connection ended. The wire decides what, if anything, to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    ClientClosed,
    Draining,
    AuthExpired,
    RefreshRejected,
    PongTimeout,
    FrameTooLarge,
    Flood,
    ProtocolError,
    /// A text message that is not UTF-8.
    InvalidText,
}

impl Exit {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Exit::ClientClosed => "client closed",
            Exit::Draining => "draining",
            Exit::AuthExpired => "auth expired",
            Exit::RefreshRejected => "refresh rejected",
            Exit::PongTimeout => "pong timeout",
            Exit::FrameTooLarge => "client frame too large",
            Exit::Flood => "client frame flood",
            Exit::ProtocolError => "protocol error",
            Exit::InvalidText => "invalid utf-8 text",
        }
    }
}

/// One way to carry events to a client: how each message looks on it, and what the client says.
pub(crate) trait Wire: Unpin {
    const KIND: TransportKind;

    /// The event's shared pre-rendered bytes.
    fn event(event: &Event) -> Bytes;
    fn control(control: Control) -> Bytes;
    /// A message for this connection and a few others (who has a record open).
    fn direct(message: &Message) -> Bytes;
    /// A ping, or a keepalive comment.
    fn heartbeat() -> Bytes;
    /// What goes first, before `ready` (SSE's `retry:`).
    fn greeting() -> Option<Bytes>;
    /// The last bytes for `exit` (a WebSocket close frame).
    fn goodbye(exit: Exit) -> Option<Bytes>;
    /// The client's next action, if it said anything; a wire the client cannot talk on stays
    /// `Pending` (its going away ends the response, and with it the connection).
    fn poll_inbound(&mut self, cx: &mut TaskContext<'_>) -> Poll<Inbound>;
}
