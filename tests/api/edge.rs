//! The edge: what anonymous or broken clients get before any event moves. Bodies that never
//! finish, refusals made by the framework rather than a handler, header bytes that are not text,
//! and requests too garbled to route, each answered plainly and none of them able to hold a
//! connection open or flood the error log.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::helpers::{
    EMIT_SECRET, Subscriber, admin_token, eventually, raw_exchange, spawn_app, spawn_app_with,
    spawn_binary,
};

/// A request head announcing a 100-byte body, then 4 bytes of it, then silence.
fn stalled_emit(auth_header: &str) -> String {
    format!(
        "POST /internal/emit HTTP/1.1\r\nHost: x\r\n{auth_header}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"ev"
    )
}

#[tokio::test]
async fn a_body_that_never_finishes_is_cut_off_with_408_in_every_auth_mode() {
    let signature = "X-Admin-Push-Signature: t=1,v1=00";
    let bearer = format!("Authorization: Bearer {EMIT_SECRET}");
    for (mode, auth_header) in [
        ("hmac", signature),
        ("either", signature),
        ("bearer", bearer.as_str()),
    ] {
        let app = spawn_app_with(json!({
            "emit": { "body_timeout_secs": 1 },
            "internal": { "auth": mode, "hmac_secrets": ["hmac-key-00000000000000000000000000000"] },
        }))
        .await;
        let addr = app.internal_base.trim_start_matches("http://").to_owned();
        // `raw_exchange` reads until the server closes the socket: a server that waits forever
        // for the other 96 bytes fails it.
        let answer = raw_exchange(&addr, stalled_emit(auth_header).as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{mode}: {answer:?}");
        let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or(""))
            .expect("a JSON body");
        assert_eq!(body["error"], "body_timeout", "{mode}: {body}");
    }
}

#[tokio::test]
async fn the_body_deadline_is_bounded_like_the_other_timings() {
    for (value, valid) in [(0, false), (1, true), (300, true), (301, false)] {
        let settings =
            crate::helpers::test_settings(json!({ "emit": { "body_timeout_secs": value } }));
        match settings {
            Ok(_) => assert!(valid, "{value} was accepted"),
            Err(e) => {
                assert!(!valid, "{value} was refused: {e}");
                assert!(e.to_string().contains("emit.body_timeout_secs"), "{e}");
            }
        }
    }
}

/// Sends `request` and returns the status and the JSON body every refusal must carry.
async fn refusal(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/json", "{status}");
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn refusals_the_framework_makes_still_have_a_json_body() {
    let app = spawn_app().await;
    let token = admin_token("user_1");
    let handshake = |version: &str| {
        app.http
            .get(format!("{}/admin-ws", app.base))
            .bearer_auth(&token)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version)
    };
    let cases = [
        (
            app.http.put(format!("{}/admin-ws/ticket", app.base)),
            405,
            "method_not_allowed",
        ),
        (
            app.http.get(format!("{}/nowhere", app.base)),
            404,
            "not_found",
        ),
        // No Sec-WebSocket-Key.
        (handshake("13"), 400, "bad_handshake"),
        (
            handshake("8").header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            426,
            "bad_handshake",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = refusal(request).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_last_event_id_that_is_not_ascii_gets_resync_gap_not_a_fresh_start() {
    let app = spawn_app().await;
    app.emit_product("before").await;
    for raw in [&b"\xe2\x82\xac-1"[..], b"\xff\xfe", b"1-\x80"] {
        let response = app
            .http
            .get(format!("{}/admin-sse", app.base))
            .bearer_auth(admin_token("user_1"))
            .header(
                "last-event-id",
                HeaderValue::from_bytes(raw).expect("obs-text"),
            )
            .send()
            .await
            .expect("sse request");
        assert_eq!(response.status(), 200);
        let mut tab = Subscriber::Sse(Box::pin(
            response
                .bytes_stream()
                .eventsource()
                .map(|e| e.map_err(|e| e.to_string())),
        ));
        tab.ready().await;
        assert_eq!(
            tab.expect("resync").await.data,
            json!({ "reason": "gap" }),
            "{raw:?}"
        );
    }
}

/// Sum of a Prometheus counter over its labels, 0 while it has none.
async fn counter(app: &crate::helpers::TestApp, name: &str) -> u64 {
    app.metrics()
        .await
        .lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_flood_of_garbled_requests_is_counted_and_never_logged_as_errors() {
    const FLOOD: u64 = 30;
    let process = spawn_binary(&[]).await;
    let app = &process.app;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let before = counter(app, "admin_push_http_refused_total").await;
    let huge_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(200_000));
    for i in 0..FLOOD {
        let garbage: &[u8] = match i % 3 {
            0 => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
            1 => b"GET /\x01 HTTP/1.1\r\n\r\n",
            _ => huge_head.as_bytes(),
        };
        let answer = raw_exchange(&addr, garbage).await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer:?}");
    }
    eventually("every garbled request counted", || async {
        counter(app, "admin_push_http_refused_total").await >= before + FLOOD
    })
    .await;
    // A line the server logs after the flood: once it is in, everything before it is too.
    let mut tab = app.subscribe(crate::helpers::Transport::Sse, "").await;
    tab.ready().await;
    process
        .assert_no_error_logged_up_to("connection opened")
        .await;
}

/// Asks `url` with `method` and asserts the 405 it must get: `Allow` naming `allowed`, and the
/// JSON body every refusal carries.
async fn assert_method_not_allowed(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    allowed: &str,
) {
    let response = http
        .request(method.clone(), url)
        .send()
        .await
        .expect("request");
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, body) = (
        response.status().as_u16(),
        response.json::<Value>().await.unwrap_or(Value::Null),
    );
    assert_eq!(status, 405, "{method} {url}: {body}");
    assert_eq!(allow.as_deref(), Some(allowed), "{method} {url}");
    assert_eq!(body["error"], "method_not_allowed", "{method} {url}");
    assert!(body["message"].is_string(), "{method} {url}: {body}");
}

#[tokio::test]
async fn every_route_answers_a_method_it_does_not_take_with_405_and_allow() {
    use reqwest::Method;
    let public = [
        (Method::POST, "/admin-ws", "GET"),
        (Method::GET, "/admin-ws/ticket", "POST"),
        (Method::PUT, "/admin-sse", "GET"),
        (Method::POST, "/healthz", "GET"),
        (Method::DELETE, "/readyz", "GET"),
        (Method::POST, "/", "GET"),
        (Method::POST, "/static/admin-push.js", "GET"),
    ];
    let internal = [
        (Method::GET, "/internal/emit", "POST"),
        (Method::POST, "/metrics", "GET"),
    ];
    let app = spawn_app().await;
    for (method, path, allowed) in public.iter().chain(&internal) {
        let url = format!("{}{path}", app.base);
        assert_method_not_allowed(&app.http, method.clone(), &url, allowed).await;
    }
    // With a listener of their own, the internal routes answer the same there.
    let split = spawn_app_with(json!({ "server": { "internal_bind": "127.0.0.1:0" } })).await;
    for (method, path, allowed) in internal {
        let url = format!("{}{path}", split.internal_base);
        assert_method_not_allowed(&split.http, method, &url, allowed).await;
    }
}
