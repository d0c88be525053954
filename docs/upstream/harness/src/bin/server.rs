//! Minimal actix-web server holding idle long-lived connections of three shapes.
//!
//! - `GET /sse`: a streaming response that sends one event, then stays pending.
//! - `GET /ws`: a WebSocket whose response body is the connection: it decodes client frames
//!   from the request payload inside the dispatcher's poll (no task, no channel), answering
//!   each binary frame with a short `ok` frame so a client knows its frame was consumed.
//! - `GET /ws-actix-ws`: the same protocol through actix-ws (`Session` + `MessageStream`
//!   driven by a spawned task), the usual shape of an actix-web WebSocket handler.
//!
//! Prints its PID and port, then serves until killed.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use actix_codec::Decoder as _;
use actix_http::{
    body::{BodySize, MessageBody},
    ws::{self, Codec, Frame, OpCode, Parser},
    HttpService,
};
use actix_server::Server;
use actix_service::map_config;
use actix_web::{dev::AppConfig, web, App, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::{stream, Stream, StreamExt as _};

/// The reply to every binary frame; server frames are unmasked, so no codec state is needed.
fn ok_frame() -> Bytes {
    let mut out = BytesMut::new();
    Parser::write_message(&mut out, b"ok", OpCode::Binary, true, false);
    out.freeze()
}

async fn sse() -> HttpResponse {
    let first =
        stream::once(async { Ok::<_, actix_web::Error>(Bytes::from_static(b"retry: 2000\n\n")) });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(first.chain(stream::pending()))
}

/// A WebSocket connection that is its own response body.
struct WsBody {
    payload: web::Payload,
    codec: Codec,
    inbound: BytesMut,
}

impl MessageBody for WsBody {
    type Error = actix_web::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.inbound.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        let mut reply = None;
        loop {
            match this.codec.decode(&mut this.inbound) {
                Ok(Some(Frame::Binary(_))) => reply = Some(ok_frame()),
                Ok(Some(Frame::Close(_))) | Err(_) => return Poll::Ready(None),
                Ok(Some(_)) => {}
                Ok(None) => break,
            }
        }
        // Keep no allocation while waiting for the next frame.
        if this.inbound.is_empty() {
            this.inbound = BytesMut::new();
        }
        match reply {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => Poll::Pending,
        }
    }
}

async fn ws_body(
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let res = ws::handshake(req.head())?.message_body(WsBody {
        payload,
        codec: Codec::new(),
        inbound: BytesMut::new(),
    })?;
    Ok(HttpResponse::from(res.map_into_boxed_body()))
}

async fn ws_actix_ws(
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, mut session, mut messages) = actix_ws::handle(&req, body)?;
    actix_web::rt::spawn(async move {
        while let Some(Ok(msg)) = messages.next().await {
            let replied = match msg {
                actix_ws::Message::Binary(_) => session.binary(Bytes::from_static(b"ok")).await,
                actix_ws::Message::Close(_) => break,
                _ => Ok(()),
            };
            if replied.is_err() {
                break;
            }
        }
    });
    Ok(response)
}

fn main() -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        println!(
            "pid {} port {}",
            std::process::id(),
            listener.local_addr()?.port()
        );
        Server::build()
            .backlog(4096)
            .listen("idle", listener, || {
                let app = App::new()
                    .route("/sse", web::get().to(sse))
                    .route("/ws", web::get().to(ws_body))
                    .route("/ws-actix-ws", web::get().to(ws_actix_ws));
                let builder = HttpService::build();
                #[cfg(feature = "release-idle-buffers")]
                let builder = builder.h1_release_idle_buffers(true);
                builder.h1(map_config(app, |_| AppConfig::default())).tcp()
            })?
            .workers(1)
            .run()
            .await
    })
}
