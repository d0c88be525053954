//! A real server on port 0 per test, built in-process from test settings, and the plain HTTP
//! calls tests make to it (emit, ticket, readiness).
//!
//! Set `TEST_LOG` (`TEST_LOG=1`, or a filter such as `TEST_LOG=debug`) to capture the server's
//! logs: the test harness prints them for each failing test only.

use std::sync::Once;

use admin_push::{Application, Settings, settings::SettingsError};
use figment::{Figment, providers::Serialized};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{
    WAIT,
    tokens::{JWT_SECRET, admin_token},
};

pub const EMIT_SECRET: &str = "test-emit-secret-that-is-long-enough-001";

pub struct TestApp {
    pub base: String,
    pub ws_base: String,
    pub internal_base: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub stopped: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(json!({})).await
}

/// Starts a server whose settings are the defaults, test secrets, and then `overrides`
/// (a JSON object shaped like `config.toml`).
pub async fn spawn_app_with(overrides: Value) -> TestApp {
    init_test_log();
    let settings = test_settings(overrides).expect("test settings are valid");
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let internal_port = app.internal_port().unwrap_or(port);
    let shutdown = app.shutdown_token();
    let stopped = tokio::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ws_base: format!("ws://127.0.0.1:{port}"),
        internal_base: format!("http://127.0.0.1:{internal_port}"),
        http: reqwest::Client::new(),
        shutdown,
        stopped,
    }
}

/// A server where a tab that stops reading can fall behind: a 256-event broadcast, large
/// `bulk.updated` batches (3 KB events overflow the socket buffers in a few thousand), and a send
/// timeout long enough that the stalled tab is not cut off meanwhile.
pub async fn spawn_app_for_a_stall() -> TestApp {
    spawn_app_with(json!({
        "hub": { "buffer": 256 },
        "events": { "extra": ["bulk.updated"] },
        "emit": { "max_body_bytes": 262144 },
        "limits": { "send_timeout_secs": 60 },
    }))
    .await
}

pub fn test_settings(overrides: Value) -> Result<Settings, SettingsError> {
    let base = json!({
        "server": { "bind": "127.0.0.1:0", "workers": 1, "drain_secs": 1 },
        "auth": { "jwt_secret": JWT_SECRET },
        "internal": { "secrets": [EMIT_SECRET] },
        "log": { "level": "warn" },
    });
    Settings::from_figment(
        Figment::new()
            .merge(Serialized::defaults(base))
            .merge(Serialized::defaults(overrides)),
    )
}

/// The `TEST_LOG` filter, if set (`1` or `true` mean `info`).
pub fn test_log() -> Option<String> {
    let filter = std::env::var("TEST_LOG").ok()?;
    Some(match filter.as_str() {
        "" | "1" | "true" => "info".to_owned(),
        _ => filter,
    })
}

/// With `TEST_LOG`, logs go through the test harness's capture (`with_test_writer`), which shows
/// a test's output only when it fails. Without it, tests log nothing.
fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Some(filter) = test_log() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_ansi(false)
                .with_test_writer()
                .try_init();
        }
    });
}

impl TestApp {
    pub async fn emit(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/internal/emit", self.internal_base))
            .bearer_auth(EMIT_SECRET)
            .json(body)
            .send()
            .await
            .expect("emit request")
    }

    /// Emits `product.updated {id}` and returns the event id the hub assigned.
    pub async fn emit_product(&self, id: &str) -> String {
        let response = self
            .emit(&json!({ "event": "product.updated", "data": { "id": id } }))
            .await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.expect("json answer");
        body["id"].as_str().expect("id in answer").to_owned()
    }

    pub async fn ticket(&self, token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/admin-ws/ticket", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("ticket request")
    }

    pub async fn ticket_for(&self, actor_id: &str) -> String {
        let response = self.ticket(&admin_token(actor_id)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("json answer");
        body["ticket"].as_str().expect("ticket").to_owned()
    }

    /// Emits a batch and returns the ids the hub assigned, in order.
    pub async fn emit_batch(&self, batch: &[Value]) -> Vec<String> {
        let answer: Value = self.emit(&json!(batch)).await.json().await.expect("json");
        answer["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_str().expect("id").to_owned())
            .collect()
    }

    /// Emits ~20 MB of `bulk.updated` events (the app needs that extra event and a 256 KiB
    /// `emit.max_body_bytes`): enough to fill every buffer towards a reader that never reads.
    pub async fn flood(&self) {
        let filler = "x".repeat(3000);
        for chunk in 0..140 {
            let batch: Vec<_> = (0..50)
                .map(|i| json!({ "event": "bulk.updated", "data": { "id": format!("{chunk}-{i}"), "filler": filler } }))
                .collect();
            self.emit_batch(&batch).await;
        }
    }

    /// A tab's own `POST` of `body` to `path` on the public listener, with its admin token: the
    /// status, and the JSON refusal (`Null` for an answer without a body).
    pub async fn post_as_tab(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A plain GET of `path` on the public listener.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    /// The Prometheus text `/metrics` serves.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.internal_base))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        response.text().await.expect("text")
    }

    pub async fn ready_status(&self) -> u16 {
        match self.http.get(format!("{}/readyz", self.base)).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// Asserts a refusal: its status, an `error` code, and a `message` that says `says`.
pub fn assert_problem((status, body): (u16, Value), expected: u16, says: &str) {
    assert_eq!(status, expected, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(says),
        "{message:?} should mention {says:?}"
    );
}

/// Sends raw bytes to `addr` (`host:port`) and reads what the server says until it closes the
/// socket. A server that refuses mid-request may reset the connection; what arrived before the
/// reset is kept.
pub async fn raw_exchange(addr: &str, request: &[u8]) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = socket.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, socket.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes in time");
    if let Err(e) = read {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    String::from_utf8_lossy(&answer).into_owned()
}
