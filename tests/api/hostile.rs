//! Hostile clients: odd, oversized, flooding or slow input gets a clean refusal, never a panic,
//! and never hurts anyone else.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    End, Transport, WAIT, admin_token, assert_problem, client_frame, close_code_after, eventually,
    raw_exchange, raw_websocket, spawn_app, spawn_app_with, spawn_binary,
};

#[tokio::test]
async fn other_client_frames_are_ignored_safely() {
    let app = spawn_app().await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    tab.send_text("hello").await;
    tab.send_text(r#"{"type":"subscribe","channel":"x"}"#).await;
    tab.send_text(r#"{"type":"refresh"}"#).await;
    tab.send_raw(Message::binary(vec![0u8; 100])).await;
    for _ in 0..20 {
        tab.send_text("{}").await;
    }
    let id = app.emit_product("still-here").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(id));
}

#[tokio::test]
async fn an_oversized_client_frame_closes_with_1009() {
    let app = spawn_app_with(json!({ "ws": { "max_frame_bytes": 1024 } })).await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    tab.send_raw(Message::text("x".repeat(4096))).await;
    assert_eq!(tab.end().await, End::Closed(1009));
}

#[tokio::test]
async fn a_flood_of_client_frames_closes_with_1008_and_spares_the_others() {
    let app = spawn_app_with(json!({ "ws": { "max_client_frames_per_sec": 10 } })).await;
    let mut bystander = app.subscribe(Transport::Ws, "").await;
    bystander.ready().await;
    let mut flooder = app.subscribe(Transport::Ws, "").await;
    flooder.ready().await;
    for _ in 0..200 {
        flooder.send_text("{}").await;
    }
    assert_eq!(flooder.end().await, End::Closed(1008));
    let id = app.emit_product("unaffected").await;
    assert_eq!(bystander.expect("product.updated").await.id, Some(id));
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_headers_is_cut_off_with_408() {
    let app = spawn_app_with(json!({ "server": { "header_timeout_secs": 1 } })).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Half a request head, then silence: the server must not wait forever.
    let answer = raw_exchange(&addr, b"GET /admin-sse HTTP/1.1\r\nHost: x\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_carries_on() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
        "a".repeat(128 * 1024)
    );
    let answer = raw_exchange(&addr, huge.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{:?}",
        &answer[..answer.len().min(80)]
    );
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_frame_announcing_a_gibibyte_closes_with_1009_without_waiting_for_its_payload() {
    let app = spawn_app_with(json!({ "ws": { "max_frame_bytes": 1024 } })).await;
    let mut socket = raw_websocket(&app).await;
    // A masked text frame header declaring 1 GiB, then a little of its payload: the server must
    // refuse from the header, not wait for (and buffer) the gigabyte.
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 30).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[b'x'; 4096]);
    let code = close_code_after(&mut socket, &frame).await;
    assert_eq!(code, 1009);
}

#[tokio::test]
async fn a_closed_sse_tab_frees_its_slot_for_the_next_tab_of_the_same_admin() {
    // Keepalives far apart, so only watching the socket can notice the tab went away in time.
    let app = spawn_app_with(json!({
        "limits": { "max_connections_per_actor": 1 },
        "sse": { "keepalive_secs": 3600 },
    }))
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut tab = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /admin-sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {}\r\n\r\n",
        admin_token("user_1")
    );
    tab.write_all(request.as_bytes()).await.expect("write");
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("event: ready") {
        let mut chunk = [0u8; 1024];
        let n = tab.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the stream ended before ready");
        seen.extend_from_slice(&chunk[..n]);
    }
    let (status, _) = app
        .refusal(Transport::Sse, "", Some(&admin_token("user_1")), &[])
        .await;
    assert_eq!(status, 429, "the open tab holds the only slot");

    drop(tab);
    eventually("a new tab of the same admin to be admitted", || async {
        app.connect(Transport::Sse, "", Some(&admin_token("user_1")), &[])
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_takes_nothing_is_cut_off_after_the_send_timeout() {
    let app = spawn_app_with(json!({
        "limits": { "max_connections_per_actor": 1, "send_timeout_secs": 1 },
        "events": { "extra": ["bulk.updated"] },
        "emit": { "max_body_bytes": 262144 },
    }))
    .await;
    // Holds its socket open and never reads: every buffer towards it fills and stays full.
    let mut stalled = raw_websocket(&app).await;
    app.flood().await;
    eventually(
        "the stalled tab's slot to be free for a new tab",
        || async {
            app.connect(Transport::Ws, "", Some(&admin_token("user_1")), &[])
                .await
                .is_ok()
        },
    )
    .await;
    // The server gave up on the socket: reading it now ends in an error or an end, not a stall.
    let mut sink = vec![0u8; 1 << 20];
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match stalled.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server still holds the stalled connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_while_a_write_is_blocked_frees_its_slot_at_once() {
    let app = spawn_app_with(json!({
        "limits": { "max_connections_per_actor": 1, "send_timeout_secs": 600 },
        "events": { "extra": ["bulk.updated"] },
        "emit": { "max_body_bytes": 262144 },
    }))
    .await;
    // Never reads, so the server's writes towards it block; then it goes, unread bytes and all
    // (its kernel answers with a reset).
    let stalled = raw_websocket(&app).await;
    app.flood().await;
    drop(stalled);
    // Only the blocked write noticing can free the slot within the wait: the send timeout is 10
    // minutes.
    eventually("the slot of the tab that went to be free", || async {
        app.connect(Transport::Ws, "", Some(&admin_token("user_1")), &[])
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_flawed_websocket_handshake_is_refused_with_a_json_body_before_the_ticket_is_spent() {
    let app = spawn_app().await;
    let ticket = app.ticket_for("user_1").await;
    for (version, key, status, says) in [
        ("8", Some("dGhlIHNhbXBsZSBub25jZQ=="), 426, "version"),
        ("13", None, 400, "key"),
    ] {
        let mut request = app
            .http
            .get(format!("{}/admin-ws?ticket={ticket}", app.base))
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-version", version);
        if let Some(key) = key {
            request = request.header("sec-websocket-key", key);
        }
        let response = request.send().await.expect("request");
        let code = response.status().as_u16();
        if code == 426 {
            // RFC 6455 §4.4: the refusal names the version the server speaks.
            assert_eq!(response.headers()["sec-websocket-version"], "13");
        }
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        assert_problem((code, body), status, says);
    }
    // Neither refusal needed the ticket, so neither spent it.
    let mut tab = app
        .connect(Transport::Ws, &format!("ticket={ticket}"), None, &[])
        .await
        .expect("the ticket still opens a connection");
    tab.ready().await;
}

#[tokio::test]
async fn a_fragmented_ping_closes_with_1002_and_logs_no_error() {
    let process = spawn_binary(&[]).await;
    let mut socket = raw_websocket(&process.app).await;
    // A ping without FIN: control frames must not be fragmented (RFC 6455 §5.5).
    let code = close_code_after(&mut socket, &client_frame(0x09, b"hi")).await;
    assert_eq!(code, 1002);
    process
        .assert_no_error_logged_up_to("connection closed")
        .await;
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007_whole_or_in_fragments() {
    let app = spawn_app().await;
    let whole = client_frame(0x81, b"{\"a\":\"\xff\"}");
    // A text message in two fragments; only the second breaks UTF-8.
    let fragmented = [
        client_frame(0x01, b"{\"a\":\""),
        client_frame(0x80, b"\xc3\"}"),
    ]
    .concat();
    for frames in [whole, fragmented] {
        let mut socket = raw_websocket(&app).await;
        let code = close_code_after(&mut socket, &frames).await;
        assert_eq!(code, 1007);
    }
}

#[tokio::test]
async fn a_refresh_sent_in_fragments_is_read_whole() {
    let app = spawn_app().await;
    let mut socket = raw_websocket(&app).await;
    let refresh = json!({ "type": "refresh", "token": "not-a-jwt" }).to_string();
    let (head, tail) = refresh.as_bytes().split_at(10);
    let frames = [client_frame(0x01, head), client_frame(0x80, tail)].concat();
    // A refresh it could not read would be ignored; read whole, the bad token closes with 4401.
    assert_eq!(close_code_after(&mut socket, &frames).await, 4401);
}
