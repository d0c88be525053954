//! Both transports, one hub: negotiation, headers, `ready` first, the same event with the same id.

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite;

use crate::helpers::{
    BOTH, Subscriber, Transport, WAIT, admin_token, assert_problem, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn both_transports_receive_the_same_event_with_the_same_id() {
    let app = spawn_app().await;
    let mut ws = app.subscribe(Transport::Ws, "").await;
    let mut sse = app.subscribe(Transport::Sse, "").await;
    ws.ready().await;
    sse.ready().await;

    let id = app.emit_product("prod_1").await;

    for subscriber in [&mut ws, &mut sse] {
        let event = subscriber.expect("product.updated").await;
        assert_eq!(event.id.as_deref(), Some(id.as_str()));
        assert_eq!(event.data, json!({ "id": "prod_1" }));
    }
}

#[tokio::test]
async fn ready_is_first_and_carries_the_transport() {
    let app = spawn_app().await;
    for transport in BOTH {
        let mut subscriber = app.subscribe(transport, "").await;
        let ready = subscriber.expect("ready").await;
        let expected = if transport == Transport::Ws {
            "ws"
        } else {
            "sse"
        };
        assert_eq!(ready.data["transport"], expected);
        assert!(ready.data["last_event_id"].is_string());
    }
}

#[tokio::test]
async fn admin_ws_serves_sse_to_a_request_that_accepts_an_event_stream() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/admin-ws", app.base))
        .header("accept", "text/event-stream")
        .bearer_auth(admin_token("user_1"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
}

#[tokio::test]
async fn admin_ws_without_upgrade_or_event_stream_is_426() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/admin-ws", app.base))
        .bearer_auth(admin_token("user_1"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 426);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "upgrade_required");
}

#[tokio::test]
async fn sse_has_the_contract_headers_and_starts_with_retry() {
    use futures_util::StreamExt;
    let app = spawn_app().await;
    let response = app
        .http
        .get(format!("{}/admin-sse", app.base))
        .bearer_auth(admin_token("user_1"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(crate::helpers::WAIT, body.next())
        .await
        .expect("bytes in time")
        .expect("a chunk")
        .expect("no error");
    assert!(first.starts_with(b"retry: 2000\n\n"), "{first:?}");
}

#[tokio::test]
async fn the_events_filter_passes_only_named_events_and_control_events() {
    let app = spawn_app().await;
    for transport in BOTH {
        let mut subscriber = app.subscribe(transport, "events=order.updated").await;
        subscriber.ready().await;
        app.emit_product("prod_1").await;
        let response = app
            .emit(
                &json!({ "event": "order.updated", "data": { "id": "order_1", "status": "paid" } }),
            )
            .await;
        assert_eq!(response.status(), 202);
        let event = subscriber.expect("order.updated").await;
        assert_eq!(event.data, json!({ "id": "order_1", "status": "paid" }));
    }
}

#[tokio::test]
async fn an_unknown_name_in_the_events_filter_is_400() {
    let app = spawn_app().await;
    for transport in BOTH {
        assert_problem(
            app.refusal(
                transport,
                "events=nope.updated",
                Some(&admin_token("u")),
                &[],
            )
            .await,
            400,
            "nope.updated",
        );
    }
}

#[tokio::test]
async fn an_empty_name_in_the_events_filter_is_400() {
    let app = spawn_app().await;
    for transport in BOTH {
        for query in [
            "events=product.updated,",
            "events=,order.updated",
            "events=a,,b",
        ] {
            let (status, _) = app
                .refusal(transport, query, Some(&admin_token("u")), &[])
                .await;
            assert_eq!(status, 400, "{transport:?} {query}");
        }
    }
}

#[tokio::test]
async fn health_and_readiness_answer_200_while_serving() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn the_console_and_the_browser_client_are_served() {
    let app = spawn_app().await;
    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("body").contains("admin-push.js"));
    let module = app.get("/static/admin-push.js").await;
    assert_eq!(
        module.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        module
            .text()
            .await
            .expect("body")
            .contains("export class AdminPush")
    );
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let app = spawn_app().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn a_websocket_is_pinged_and_stays_open_while_its_client_answers() {
    let app =
        spawn_app_with(json!({ "ws": { "ping_interval_secs": 1, "pong_timeout_secs": 5 } })).await;
    let Subscriber::Ws(mut socket) = app.subscribe(Transport::Ws, "").await else {
        panic!("a WebSocket subscriber");
    };
    // tokio-tungstenite answers each ping with a pong on its own; a malformed ping fails the
    // connection here (RFC 6455: unknown opcodes are fatal).
    let mut pings = 0;
    while pings < 2 {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(tungstenite::Message::Ping(payload))) => {
                assert!(payload.is_empty());
                pings += 1;
            }
            Some(Ok(tungstenite::Message::Text(_))) => {}
            other => panic!("the connection failed or ended: {other:?}"),
        }
    }

    let id = app.emit_product("prod_after_pings").await;
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(tungstenite::Message::Text(text))) if text.contains(&id) => break,
            Some(Ok(tungstenite::Message::Text(_) | tungstenite::Message::Ping(_))) => {}
            other => panic!("the connection failed or ended: {other:?}"),
        }
    }
}
