//! What an operator relies on: metrics, the internal listener, limits, configuration errors.

use serde_json::json;

use crate::helpers::{BOTH, Transport, admin_token, spawn_app, spawn_app_with, test_settings};

#[tokio::test]
async fn metrics_move_when_events_flow() {
    let app = spawn_app().await;
    let mut ws = app.subscribe(Transport::Ws, "").await;
    let mut sse = app.subscribe(Transport::Sse, "").await;
    ws.ready().await;
    sse.ready().await;
    app.emit_product("p").await;
    ws.expect("product.updated").await;
    sse.expect("product.updated").await;
    let _ = app.connect(Transport::Ws, "", Some("garbage"), &[]).await;

    let text = app.metrics().await;
    for line in [
        r#"admin_push_connections{transport="ws"} 1"#,
        r#"admin_push_connections{transport="sse"} 1"#,
        r#"admin_push_events_total{event="product.updated"} 1"#,
        r#"admin_push_deliveries_total{transport="ws"} 1"#,
        r#"admin_push_deliveries_total{transport="sse"} 1"#,
        r#"admin_push_auth_failures_total{reason="invalid_token"} 1"#,
        "admin_push_delivery_seconds_count 2",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn rejected_emits_and_resyncs_are_counted() {
    let app = spawn_app().await;
    let response = app.emit(&json!({ "event": "nope", "data": {} })).await;
    assert_eq!(response.status(), 422);
    let mut tab = app.subscribe(Transport::Ws, "last_event_id=garbage").await;
    tab.ready().await;
    tab.expect("resync").await;
    let text = app.metrics().await;
    assert!(
        text.contains(r#"admin_push_emit_rejected_total{reason="invalid_event"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"admin_push_resyncs_total{reason="gap"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn the_internal_listener_takes_emit_and_metrics_off_the_public_one() {
    let app = spawn_app_with(json!({ "server": { "internal_bind": "127.0.0.1:0" } })).await;
    assert_ne!(app.base, app.internal_base);
    for path in ["/internal/emit", "/metrics"] {
        let public = app
            .http
            .post(format!("{}{path}", app.base))
            .send()
            .await
            .expect("request");
        assert_eq!(public.status(), 404, "{path} on the public listener");
    }
    let mut tab = app.subscribe(Transport::Sse, "").await;
    tab.ready().await;
    let id = app.emit_product("via-internal").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(id));
    assert!(app.metrics().await.contains("admin_push_events_total"));
    let subscribe_internally = app
        .http
        .get(format!("{}/admin-sse", app.internal_base))
        .bearer_auth(admin_token("u"))
        .send()
        .await
        .expect("request");
    assert_eq!(subscribe_internally.status(), 404);
}

#[tokio::test]
async fn beyond_max_connections_new_subscribers_get_503() {
    let app = spawn_app_with(json!({ "limits": { "max_connections": 1 } })).await;
    let mut held = app.subscribe(Transport::Ws, "").await;
    held.ready().await;
    for transport in BOTH {
        let (status, body) = app
            .refusal(transport, "", Some(&admin_token("someone_else")), &[])
            .await;
        assert_eq!(status, 503);
        assert_eq!(body["error"], "unavailable");
    }
}

#[tokio::test]
async fn beyond_the_per_actor_limit_the_same_admin_gets_429() {
    let app = spawn_app_with(json!({ "limits": { "max_connections_per_actor": 1 } })).await;
    let mut held = app.subscribe(Transport::Sse, "").await;
    held.ready().await;
    let (status, body) = app
        .refusal(Transport::Ws, "", Some(&admin_token("user_1")), &[])
        .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"], "too_many_connections");
    let mut other = app
        .connect(Transport::Ws, "", Some(&admin_token("user_2")), &[])
        .await
        .unwrap_or_else(|e| panic!("another admin is admitted: {e:?}"));
    other.ready().await;
}

#[tokio::test]
async fn a_listed_origin_gets_cors_and_another_gets_403() {
    let app =
        spawn_app_with(json!({ "auth": { "allowed_origins": ["https://admin.shop.test"] } })).await;
    let ticket = |origin: &'static str| {
        app.http
            .post(format!("{}/admin-ws/ticket", app.base))
            .header("origin", origin)
            .bearer_auth(admin_token("u"))
            .send()
    };
    let allowed = ticket("https://admin.shop.test").await.expect("request");
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://admin.shop.test"
    );
    let refused = ticket("https://evil.test").await.expect("request");
    assert_eq!(refused.status(), 403);
    for transport in BOTH {
        let (status, _) = app
            .refusal(
                transport,
                "",
                Some(&admin_token("u")),
                &[("origin", "https://evil.test")],
            )
            .await;
        assert_eq!(status, 403);
    }
}

#[test]
fn production_refuses_the_development_secrets_and_names_the_key() {
    let err = test_settings(json!({
        "server": { "production": true },
        "auth": { "jwt_secret": "supersecret" },
    }))
    .expect_err("refused");
    assert!(err.to_string().contains("auth.jwt_secret"), "{err}");
    let err = test_settings(json!({
        "server": { "production": true },
        "internal": { "secrets": ["dev-internal-secret"] },
    }))
    .expect_err("refused");
    assert!(err.to_string().contains("internal.secrets"), "{err}");
    // A public key does not excuse the development secret while an HS algorithm still uses it.
    let err = test_settings(json!({
        "server": { "production": true },
        "auth": { "jwt_secret": "supersecret", "algorithm": "HS256", "jwt_public_key": "unused" },
    }))
    .expect_err("refused");
    assert!(err.to_string().contains("auth.jwt_secret"), "{err}");
    // Signature-only emits do not need (or judge) bearer secrets.
    assert!(
        test_settings(json!({
            "server": { "production": true },
            "internal": { "auth": "hmac", "secrets": ["dev-internal-secret"], "hmac_secrets": ["h".repeat(32)] },
        }))
        .is_ok()
    );
    assert!(
        test_settings(json!({ "server": { "production": true } })).is_ok(),
        "long test secrets pass"
    );
}

#[tokio::test]
async fn configuration_errors_name_the_key() {
    for (overrides, key) in [
        (json!({ "hub": { "history": 0 } }), "hub.history"),
        (json!({ "hub": { "histroy": 5 } }), "histroy"),
        (
            json!({ "ws": { "ping_interval_secs": "often" } }),
            "ping_interval_secs",
        ),
        (json!({ "hub": { "backend": "postgres" } }), "backend"),
        (
            json!({ "auth": { "allowed_origins": ["*"] } }),
            "auth.allowed_origins",
        ),
        (
            json!({ "auth": { "ticket_ttl_secs": 300 } }),
            "auth.ticket_ttl_secs",
        ),
        (json!({ "auth": { "algorithm": "none" } }), "auth.algorithm"),
        (json!({ "events": { "extra": ["ready"] } }), "events.extra"),
        (
            json!({ "events": { "extra": ["Bad Name"] } }),
            "events.extra",
        ),
        (
            json!({ "ws": { "ping_interval_secs": 100000000000u64 } }),
            "ws.ping_interval_secs",
        ),
        (
            json!({ "server": { "drain_secs": 100000000000u64 } }),
            "server.drain_secs",
        ),
        // A client answering every ping is silent for a whole interval between two of them.
        (
            json!({ "ws": { "ping_interval_secs": 20, "pong_timeout_secs": 20 } }),
            "ws.pong_timeout_secs",
        ),
        (
            json!({ "ws": { "ping_interval_secs": 90 } }),
            "ws.pong_timeout_secs",
        ),
    ] {
        let message = match test_settings(overrides.clone()) {
            Err(e) => e.to_string(),
            // Some checks (the algorithm) happen when the application is built.
            Ok(settings) => admin_push::Application::build(settings)
                .await
                .expect_err("refused")
                .to_string(),
        };
        assert!(
            message.contains(key),
            "{overrides}: {message:?} should name {key:?}"
        );
    }
}

#[test]
fn the_shipped_config_toml_loads_and_is_flagged_as_development() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"));
    let settings = admin_push::Settings::load(path).expect("config.toml is valid");
    assert!(
        settings.uses_development_secrets(),
        "it ships development secrets, loudly"
    );
    assert_eq!(settings.server.bind.to_string(), "127.0.0.1:8080");
}

#[test]
fn an_explicit_config_file_that_does_not_exist_stops_the_start() {
    for path in ["/nonexistent/admin-push.toml", "/tmp"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_admin-push"))
            .args(["--config", path])
            .env("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0")
            .output()
            .expect("binary runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{path}: must not start on defaults"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(path), "{path}: {stderr}");
    }
}
