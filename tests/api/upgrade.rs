//! What the service owns since a WebSocket leaves the HTTP dispatcher after its handshake: the
//! bytes a client sends behind its handshake or in pieces, and requests that ask for an upgrade
//! anywhere else (actix-http hands every one of them over, whatever its path).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::helpers::{
    EMIT_SECRET, Transport, WAIT, admin_token, client_frame, close_code, handshake_request,
    raw_exchange, read_frame, read_head, spawn_app, spawn_app_with,
};

fn addr(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// Reads server frames until one with `opcode`, and returns its payload.
async fn frame_with_opcode(socket: &mut TcpStream, opcode: u8) -> Vec<u8> {
    let wait = async {
        loop {
            let (seen, payload) = read_frame(socket).await;
            if seen == opcode {
                return payload;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("the frame arrives in time")
}

#[tokio::test]
async fn a_frame_sent_in_the_same_write_as_the_handshake_is_read() {
    let app = spawn_app().await;
    let mut socket = TcpStream::connect(addr(&app.base)).await.expect("connect");
    // The ping arrives with the request, before any `101`: the dispatcher has already read it.
    let bytes = [
        handshake_request(&app).into_bytes(),
        client_frame(0x89, b"first"),
    ]
    .concat();
    socket.write_all(&bytes).await.expect("write");
    let head = read_head(&mut socket).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head:?}");
    assert_eq!(frame_with_opcode(&mut socket, 0xA).await, b"first");
}

#[tokio::test]
async fn a_frame_split_across_many_reads_is_read_whole() {
    let app = spawn_app().await;
    let mut socket = TcpStream::connect(addr(&app.base)).await.expect("connect");
    socket.set_nodelay(true).expect("nodelay");
    socket
        .write_all(handshake_request(&app).as_bytes())
        .await
        .expect("write");
    assert!(read_head(&mut socket).await.starts_with("HTTP/1.1 101"));
    // A refresh long enough for a 16-bit length: its first byte, each length byte, each mask
    // byte, then its payload in two halves, each in a segment of its own (the pause only spaces
    // the segments; nothing waits on it).
    let refresh = json!({ "type": "refresh", "token": "x".repeat(200) }).to_string();
    let frame = client_frame(0x81, refresh.as_bytes());
    let middle = 8 + (frame.len() - 8) / 2;
    let mut pieces: Vec<&[u8]> = frame[..8].chunks(1).collect();
    pieces.extend([&frame[8..middle], &frame[middle..]]);
    for piece in pieces {
        socket.write_all(piece).await.expect("write");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Read whole, the refresh carries a token that is not one: 4401. Misread, it would be
    // ignored or close as a protocol error.
    let code = tokio::time::timeout(WAIT, close_code(&mut socket))
        .await
        .expect("the server closes in time");
    assert_eq!(code, 4401);
}

/// `request` with `Upgrade: websocket` added, sent raw; the whole answer, which must end with the
/// server closing the connection.
async fn asked_to_upgrade(addr: &str, request_line: &str, rest: &str) -> String {
    let request = format!(
        "{request_line}\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{rest}"
    );
    raw_exchange(addr, request.as_bytes()).await
}

fn status_and_body(answer: &str) -> (u16, Value) {
    let status = answer[9..12].parse().expect("a status code");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_upgrade_asked_of_another_route_gets_that_routes_answer_and_a_closed_connection() {
    let app = spawn_app_with(json!({ "server": { "internal_bind": "127.0.0.1:0" } })).await;
    let (public, internal) = (addr(&app.base), addr(&app.internal_base));

    let health = asked_to_upgrade(public, "GET /healthz HTTP/1.1", "\r\n").await;
    assert_eq!(status_and_body(&health).0, 200, "{health}");
    assert!(health.contains("connection: close"), "{health}");

    let nowhere = asked_to_upgrade(public, "GET /nowhere HTTP/1.1", "\r\n").await;
    let (status, body) = status_and_body(&nowhere);
    assert_eq!(
        (status, &body["error"]),
        (404, &json!("not_found")),
        "{nowhere}"
    );

    let wrong_method = asked_to_upgrade(public, "DELETE /admin-ws HTTP/1.1", "\r\n").await;
    assert_eq!(status_and_body(&wrong_method).0, 405, "{wrong_method}");

    let tunnel = asked_to_upgrade(public, "CONNECT example.com:443 HTTP/1.1", "\r\n").await;
    assert_eq!(status_and_body(&tunnel).0, 404, "{tunnel}");

    // The internal listener has no WebSocket route at all.
    let metrics = asked_to_upgrade(internal, "GET /metrics HTTP/1.1", "\r\n").await;
    assert_eq!(status_and_body(&metrics).0, 200, "{metrics}");
    let subscribe = asked_to_upgrade(
        internal,
        "GET /admin-ws HTTP/1.1",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert_eq!(status_and_body(&subscribe).0, 404, "{subscribe}");
}

#[tokio::test]
async fn an_sse_stream_asked_for_with_an_upgrade_is_refused_with_400_and_holds_no_slot() {
    let app = spawn_app_with(json!({ "limits": { "max_connections_per_actor": 1 } })).await;
    // Without the refusal the stream would never end, and nothing would notice its reader leave.
    let stream = asked_to_upgrade(
        addr(&app.base),
        "GET /admin-sse HTTP/1.1",
        &format!(
            "Accept: text/event-stream\r\nAuthorization: Bearer {}\r\n\r\n",
            admin_token("user_1")
        ),
    )
    .await;
    let (status, body) = status_and_body(&stream);
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("bad_request")),
        "{stream}"
    );
    // The subscription the route opened ended before the answer went out: the admin's only slot
    // is free for the next tab.
    let next = app
        .connect(Transport::Sse, "", Some(&admin_token("user_1")), &[])
        .await;
    assert!(next.is_ok(), "{:?}", next.err());
}

#[tokio::test]
async fn an_upgrade_request_with_a_body_is_refused_with_400_and_nothing_is_emitted() {
    let app = spawn_app().await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let body = json!({ "event": "product.updated", "data": { "id": "prod_1" } }).to_string();
    let emit = asked_to_upgrade(
        addr(&app.base),
        "POST /internal/emit HTTP/1.1",
        &format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            EMIT_SECRET,
            body.len()
        ),
    )
    .await;
    let (status, refusal) = status_and_body(&emit);
    assert_eq!(status, 400, "{emit}");
    assert!(
        refusal["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot carry a body")),
        "{emit}"
    );
    // A chunked body reaches the routes the ordinary way; `/admin-ws` refuses it the same.
    let chunked = asked_to_upgrade(
        addr(&app.base),
        "GET /admin-ws HTTP/1.1",
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status_and_body(&chunked).0, 400, "{chunked}");
    // Nothing was published: the next event the tab sees is the one emitted now.
    let id = app.emit_product("prod_2").await;
    assert_eq!(
        tab.expect("product.updated").await.id.as_deref(),
        Some(&*id)
    );
}
