//! One subscriber connection, whatever carries it.
//!
//! WebSocket and SSE differ only in how bytes reach the client and what the client can say back, so
//! both implement [`Transport`] and share one connection loop. A connection's life:
//!
//! - [`handshake`]: parse the query, authenticate, take an [`admission`] slot, subscribe to the hub
//!   (refusals are ordinary HTTP answers, before any upgrade);
//! - [`connection`]: `ready`, the replay or `resync{gap}`, then one `select!` over shutdown, token
//!   expiry, the hub, the heartbeat and client frames, until an [`Exit`];
//! - the transport turns that [`Exit`] into the right goodbye (`reconnect` + close 1012,
//!   `auth_expired` + close 4401, ...).

mod admission;
mod connection;
mod handshake;

use std::future::Future;

use bytestring::ByteString;

pub(crate) use self::{
    admission::Admission,
    connection::{Context, run},
    handshake::{Handshake, SubscribeError},
};
use crate::protocol::{Control, Event, TransportKind};

/// What a client did, as far as the loop cares.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A sign of life (a pong, a ping) that needs nothing else.
    Alive,
    Text(ByteString),
    /// The connection ended or broke; the loop ends with this.
    Gone(Exit),
}

/// Why a connection ended. The transport decides what, if anything, to tell the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    ClientClosed,
    Draining,
    AuthExpired,
    RefreshRejected,
    PongTimeout,
    SendFailed,
    FrameTooLarge,
    Flood,
    ProtocolError,
}

impl Exit {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Exit::ClientClosed => "client closed",
            Exit::Draining => "draining",
            Exit::AuthExpired => "auth expired",
            Exit::RefreshRejected => "refresh rejected",
            Exit::PongTimeout => "pong timeout",
            Exit::SendFailed => "send failed or timed out",
            Exit::FrameTooLarge => "client frame too large",
            Exit::Flood => "client frame flood",
            Exit::ProtocolError => "protocol error",
        }
    }
}

/// The writer was closed under us; the connection is over.
#[derive(Debug)]
pub(crate) struct Closed;

/// One way to carry events to a client.
pub(crate) trait Transport {
    const KIND: TransportKind;

    fn event(&mut self, event: &Event) -> impl Future<Output = Result<(), Closed>>;
    fn control(&mut self, control: Control) -> impl Future<Output = Result<(), Closed>>;
    fn heartbeat(&mut self) -> impl Future<Output = Result<(), Closed>>;
    /// The client's next action; a transport the client cannot talk on waits for it to go away.
    fn inbound(&mut self) -> impl Future<Output = Inbound>;
    fn close(self, exit: Exit) -> impl Future<Output = ()>;
}
