//! Requests that ask for a WebSocket: answered by the routes, then taken off the HTTP dispatcher.
//!
//! actix-http hands every request carrying `Upgrade: websocket` (and every `CONNECT`) to the
//! listener's *upgrade service*, whatever its path, together with the connection itself; it cannot
//! be handed back. This service runs such a request through the same routes as any other (a
//! second instance of the `App` per worker, middleware included), so `/admin-ws` refuses exactly
//! as it always did and every other path answers as it would without the header. Then:
//!
//! - if the answer is `/admin-ws`'s `101` with its admitted [`Subscriber`] attached, the `101` is
//!   written, the dispatcher's read and write buffers are dropped (keeping the bytes the client
//!   sent behind its handshake), and the connection goes on as a [`Driver`] on the bare socket;
//! - anything else is written as it is, and the connection closes: it has left the dispatcher, so
//!   it cannot serve a next request. An answer that streams until the client goes (`/admin-sse`)
//!   is replaced by a `400`: nothing here watches the socket while writing, so a client that left
//!   would hold its subscription until a write failed.
//!
//! A request that asks for an upgrade and announces a `Content-Length` body is refused `400`
//! before the routes: the dispatcher does not read a body for an upgrade. (A chunked one is not
//! handed over at all: actix-http serves it as an ordinary request.)
//!
//! The future returned here lives inline in the dispatcher's task, in the place of its HTTP/1
//! state, so a live WebSocket costs that task and nothing else; its size is tested to fit.

use std::{
    convert::Infallible,
    future::{Future, poll_fn},
    io,
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context as TaskContext, Poll, ready},
};

use actix_codec::Framed;
use actix_http::{ConnectionType, Request, body::BodySize, h1};
use actix_service::{Service, ServiceFactory, fn_factory, fn_service};
use actix_web::{
    HttpMessage, HttpResponse,
    body::MessageBody,
    dev::ServiceResponse,
    http::{StatusCode, header},
    rt::net::TcpStream,
};
use futures_util::future::LocalBoxFuture;

use super::{driver::Driver, wire::WsWire};
use crate::{
    problem,
    session::{self, Connection, Subscriber},
};

/// Marks a request that reached the routes through the upgrade service, so `/admin-ws` knows its
/// `101` will be taken up (a request with a chunked body and `Upgrade: websocket` reaches the
/// routes the ordinary way, and is refused there).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upgradable;

/// What a live WebSocket needs beyond its subscriber, shared by a worker's connections.
struct Sessions {
    connections: Arc<session::Context>,
    max_frame_bytes: usize,
}

type Head = h1::Message<(actix_http::Response<()>, BodySize)>;

/// The upgrade service for a listener whose routes are `app`.
pub(crate) fn service<F, B>(
    app: F,
    connections: Arc<session::Context>,
    max_frame_bytes: usize,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, h1::Codec>),
    Config = (),
    Response = (),
    Error = Infallible,
    InitError = (),
>
where
    F: ServiceFactory<
            Request,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        >,
    F::Service: 'static,
    B: MessageBody + 'static,
{
    let sessions = Rc::new(Sessions {
        connections,
        max_frame_bytes,
    });
    fn_factory(move || {
        let app = app.new_service(());
        let sessions = Rc::clone(&sessions);
        async move {
            let app = Rc::new(app.await?);
            Ok(fn_service(move |(req, framed)| {
                Upgrade::Handshake(Box::pin(handshake(
                    Rc::clone(&app),
                    req,
                    framed,
                    Rc::clone(&sessions),
                )))
            }))
        }
    })
}

/// One upgrade request's whole life in the dispatcher's task: the handshake (boxed, since it is
/// large and brief), then, if it succeeded, the live connection (inline).
#[expect(
    clippy::large_enum_variant,
    reason = "the live connection is inline on purpose: boxing it would add an allocation to \
              every WebSocket, while the dispatcher's task is sized for its own larger state anyway"
)]
pub(crate) enum Upgrade {
    Handshake(LocalBoxFuture<'static, Option<Driver>>),
    Live(Driver),
}

impl Future for Upgrade {
    /// Never an error: actix-http logs one at ERROR, and a client that goes is no error.
    type Output = Result<(), Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this {
                Upgrade::Handshake(handshake) => match ready!(handshake.as_mut().poll(cx)) {
                    Some(driver) => *this = Upgrade::Live(driver),
                    None => return Poll::Ready(Ok(())),
                },
                Upgrade::Live(driver) => return Pin::new(driver).poll(cx).map(Ok),
            }
        }
    }
}

async fn handshake<S, B>(
    app: Rc<S>,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
    sessions: Rc<Sessions>,
) -> Option<Driver>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let mut response = if announces_body(&req) {
        body_refused()
    } else {
        req.extensions_mut().insert(Upgradable);
        match app.call(req).await {
            Ok(response) => response.into_parts().1.map_into_boxed_body(),
            Err(e) => e.error_response(),
        }
    };
    let subscriber = response.extensions_mut().remove::<Subscriber>();
    match subscriber {
        Some(subscriber) => switch(framed, response, subscriber, &sessions).await,
        None => {
            // An answer that streams until the client goes (`/admin-sse`) cannot be served from
            // here: nothing would read the socket, so a client that left would keep its slot
            // until a write failed. Dropping it ends that subscription at once.
            if matches!(response.body().size(), BodySize::Stream) {
                response = stream_refused();
            }
            // Whatever happens to it, the answer is the connection's last.
            let _ = answer(framed, response).await;
            None
        }
    }
}

/// The answer to a request that asks for a WebSocket upgrade of a route that streams (SSE).
fn stream_refused() -> HttpResponse {
    problem::respond(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "a stream cannot answer a request asking for a WebSocket upgrade: ask without `Upgrade`",
    )
}

/// The answer to a request that asks for a WebSocket upgrade and carries a body.
pub(super) fn body_refused() -> HttpResponse {
    problem::respond(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "a request asking for a WebSocket upgrade cannot carry a body",
    )
}

/// Whether the request announces a body the dispatcher will not read for it.
fn announces_body(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|length| length.as_bytes() != b"0")
}

/// Writes the `101` and turns the connection into a live WebSocket on the bare socket.
async fn switch(
    mut framed: Framed<TcpStream, h1::Codec>,
    response: HttpResponse,
    subscriber: Subscriber,
    sessions: &Sessions,
) -> Option<Driver> {
    let (head, _) = actix_http::Response::from(response).into_parts();
    let mut written = Pin::new(&mut framed);
    written
        .as_mut()
        .write(h1::Message::Item((head, BodySize::None)))
        .ok()?;
    poll_fn(|cx| written.as_mut().flush::<Head>(cx))
        .await
        .ok()?;
    // The dispatcher's buffers go with `parts`; what the client sent behind its request (its
    // first frames) is copied out first.
    let parts = framed.into_parts();
    let wire = WsWire::new(parts.io, &parts.read_buf, sessions.max_frame_bytes);
    let connection = Connection::new(wire, subscriber, Arc::clone(&sessions.connections));
    Some(Driver::new(connection))
}

/// Writes a whole answer, which ends the connection.
async fn answer(
    mut framed: Framed<TcpStream, h1::Codec>,
    response: HttpResponse,
) -> io::Result<()> {
    let (mut head, mut body) = actix_http::Response::from(response).into_parts();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let mut framed = Pin::new(&mut framed);
    framed
        .as_mut()
        .write(h1::Message::Item((head, body.size())))?;
    while let Some(chunk) = poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await {
        let chunk = chunk.map_err(|e| io::Error::other(e.to_string()))?;
        framed.as_mut().write(h1::Message::Chunk(Some(chunk)))?;
        poll_fn(|cx| framed.as_mut().flush::<Head>(cx)).await?;
    }
    framed.as_mut().write(h1::Message::Chunk(None))?;
    poll_fn(|cx| framed.as_mut().flush::<Head>(cx)).await?;
    poll_fn(|cx| framed.as_mut().close::<Head>(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest state of actix-http 3's HTTP/1 dispatcher, which sizes its task. The upgrade
    /// future takes that state's place; one byte above it would enlarge every connection's task.
    const DISPATCHER_STATE: usize = 504;

    #[test]
    fn a_live_websocket_fits_in_the_dispatchers_own_state() {
        assert!(
            size_of::<Upgrade>() <= DISPATCHER_STATE,
            "a live WebSocket takes {} bytes; the dispatcher's state is {DISPATCHER_STATE}",
            size_of::<Upgrade>()
        );
    }
}
