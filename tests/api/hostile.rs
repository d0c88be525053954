//! Hostile clients: odd, oversized, flooding or slow input gets a clean refusal, never a panic,
//! and never hurts anyone else.

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{End, Transport, raw_exchange, spawn_app, spawn_app_with};

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
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(health.status(), 200);
}
