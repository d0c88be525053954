//! The harness: a real server on port 0 per test, and real clients that speak to it.
//!
//! [`Subscriber`] hides whether a test talks WebSocket (tokio-tungstenite) or SSE (reqwest +
//! eventsource-stream), so delivery tests run unchanged on both transports. Every wait is on an
//! event, bounded by [`WAIT`]; nothing sleeps in place of synchronisation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use admin_push::{Application, Settings};
use eventsource_stream::Eventsource;
use figment::{Figment, providers::Serialized};
use futures_util::{SinkExt, Stream, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, client::IntoClientRequest},
};
use tokio_util::sync::CancellationToken;

pub const JWT_SECRET: &str = "test-jwt-secret-that-is-long-enough-0001";
pub const EMIT_SECRET: &str = "test-emit-secret-that-is-long-enough-001";
/// Upper bound on any single wait for something the server should do.
pub const WAIT: Duration = Duration::from_secs(10);

/// Held by the suites that drive Chromium (the browser suite, the Medusa suite) for their whole
/// run: each takes both cores for minutes, and timing-sensitive checks in one must not be
/// starved by the other.
static CHROMIUM_SUITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for [`CHROMIUM_SUITE`]; a suite that failed while holding it does not block the next.
pub fn one_chromium_suite_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    CHROMIUM_SUITE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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

pub fn test_settings(overrides: Value) -> Result<Settings, admin_push::settings::SettingsError> {
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

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Signs `claims` with HS256 and the test secret.
pub fn sign(claims: &Value) -> String {
    sign_with(
        Algorithm::HS256,
        claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
}

pub fn sign_with(alg: Algorithm, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("signable")
}

/// A Medusa v2 admin token, claim for claim.
pub fn admin_token(actor_id: &str) -> String {
    admin_token_valid_for(actor_id, 3600)
}

pub fn admin_token_valid_for(actor_id: &str, secs: i64) -> String {
    let now = unix_now() as i64;
    sign(&json!({
        "actor_id": actor_id,
        "actor_type": "user",
        "auth_identity_id": "authid_01",
        "app_metadata": { "user_id": actor_id },
        "iat": now,
        "exp": now + secs,
    }))
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

    /// Connects and insists the server refuses; returns the status and JSON body.
    pub async fn refusal(
        &self,
        transport: Transport,
        query: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        match self.connect(transport, query, bearer, headers).await {
            Ok(_) => panic!("{transport:?} connection with {query:?} was accepted"),
            Err(refusal) => refusal,
        }
    }

    /// Connects a subscriber with a bearer token and the given query string.
    pub async fn subscribe(&self, transport: Transport, query: &str) -> Subscriber {
        self.connect(transport, query, Some(&admin_token("user_1")), &[])
            .await
            .expect("subscriber connects")
    }

    /// Connects, returning the HTTP refusal (status, JSON body) if the server says no.
    pub async fn connect(
        &self,
        transport: Transport,
        query: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Subscriber, (u16, Value)> {
        match transport {
            Transport::Ws => {
                let mut request = format!("{}/admin-ws?{query}", self.ws_base)
                    .into_client_request()
                    .expect("valid url");
                if let Some(token) = bearer {
                    request.headers_mut().insert(
                        "authorization",
                        format!("Bearer {token}").parse().expect("header"),
                    );
                }
                for (name, value) in headers {
                    request.headers_mut().insert(
                        tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                        value.parse().expect("header"),
                    );
                }
                match tokio_tungstenite::connect_async(request).await {
                    Ok((socket, _)) => Ok(Subscriber::Ws(Box::new(socket))),
                    Err(tungstenite::Error::Http(response)) => {
                        let status = response.status().as_u16();
                        let body = response
                            .body()
                            .as_ref()
                            .and_then(|b| serde_json::from_slice(b).ok())
                            .unwrap_or(Value::Null);
                        Err((status, body))
                    }
                    Err(e) => panic!("websocket connect failed: {e}"),
                }
            }
            Transport::Sse => {
                let mut request = self
                    .http
                    .get(format!("{}/admin-sse?{query}", self.base))
                    .header("accept", "text/event-stream");
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let response = request.send().await.expect("sse request");
                if response.status() != 200 {
                    let status = response.status().as_u16();
                    return Err((status, response.json().await.unwrap_or(Value::Null)));
                }
                Ok(Subscriber::Sse(Box::pin(
                    response
                        .bytes_stream()
                        .eventsource()
                        .map(|e| e.map_err(|e| e.to_string())),
                )))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Sse,
}

pub const BOTH: [Transport; 2] = [Transport::Ws, Transport::Sse];

type SseStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

pub enum Subscriber {
    Ws(Box<WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>>),
    Sse(SseStream),
}

const CONTROL_EVENTS: [&str; 4] = ["ready", "resync", "reconnect", "auth_expired"];

/// One message as a client sees it, whichever the transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event: String,
    /// Set for real events (and SSE's `ready`); control events have none.
    pub id: Option<String>,
    pub data: Value,
}

/// How a subscription ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum End {
    /// WebSocket close frame with this code.
    Closed(u16),
    /// The stream ended without a close code (SSE), or the socket dropped.
    Eof,
}

impl Subscriber {
    /// The next message, or how the stream ended; panics after [`WAIT`].
    pub async fn next(&mut self) -> Result<Message, End> {
        tokio::time::timeout(WAIT, self.next_unbounded())
            .await
            .expect("the server sent nothing in time")
    }

    async fn next_unbounded(&mut self) -> Result<Message, End> {
        match self {
            Subscriber::Ws(socket) => loop {
                match socket.next().await {
                    Some(Ok(tungstenite::Message::Text(text))) => {
                        let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                        return Ok(Message {
                            event: frame["event"].as_str().expect("event name").to_owned(),
                            id: frame["id"].as_str().map(str::to_owned),
                            data: frame["data"].clone(),
                        });
                    }
                    Some(Ok(tungstenite::Message::Close(frame))) => {
                        return Err(End::Closed(frame.map_or(1005, |f| u16::from(f.code))));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Err(End::Eof),
                }
            },
            Subscriber::Sse(stream) => match stream.next().await {
                // SSE ids are sticky (a record without `id:` keeps the last one), so only real
                // events report theirs.
                Some(Ok(event)) => Ok(Message {
                    id: (!CONTROL_EVENTS.contains(&event.event.as_str())).then(|| event.id.clone()),
                    data: serde_json::from_str(&event.data).expect("data is JSON"),
                    event: event.event,
                }),
                Some(Err(_)) | None => Err(End::Eof),
            },
        }
    }

    /// Reads the next message and insists it is `event`.
    pub async fn expect(&mut self, event: &str) -> Message {
        let message = self
            .next()
            .await
            .unwrap_or_else(|end| panic!("ended with {end:?} awaiting {event}"));
        assert_eq!(message.event, event, "unexpected {message:?}");
        message
    }

    /// Reads `ready` and returns its resume point.
    pub async fn ready(&mut self) -> String {
        let ready = self.expect("ready").await;
        ready.data["last_event_id"]
            .as_str()
            .expect("last_event_id")
            .to_owned()
    }

    /// Reads real events until `n` arrived, failing on any control event in between.
    pub async fn events(&mut self, n: usize) -> Vec<Message> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let message = self
                .next()
                .await
                .unwrap_or_else(|end| panic!("ended with {end:?}"));
            assert!(message.id.is_some(), "expected an event, got {message:?}");
            events.push(message);
        }
        events
    }

    /// Waits until the stream ends and says how.
    pub async fn end(&mut self) -> End {
        loop {
            if let Err(end) = self.next().await {
                return end;
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        match self {
            Subscriber::Ws(socket) => socket
                .send(tungstenite::Message::text(text))
                .await
                .expect("send"),
            Subscriber::Sse(_) => panic!("SSE clients cannot send"),
        }
    }

    pub async fn send_raw(&mut self, message: tungstenite::Message) {
        match self {
            Subscriber::Ws(socket) => socket.send(message).await.expect("send"),
            Subscriber::Sse(_) => panic!("SSE clients cannot send"),
        }
    }
}

/// Whether an outside program the test needs is installed. Missing: a loud skip on a developer's
/// machine, a failure under CI (where `.ci/run` installs it).
pub fn require(program: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{program}` is required under CI; .ci/run should have installed it"
        );
        eprintln!("\n!!! SKIPPED: `{program}` is not installed; run .ci/run or install it !!!\n");
    }
    found
}

/// Polls `condition` until it holds, for things with no event to wait on (a port opening, a
/// backplane reconnecting); fails after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

impl TestApp {
    pub async fn ready_status(&self) -> u16 {
        match self.http.get(format!("{}/readyz", self.base)).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }
}

/// A real `redis-server` on a free port, with nothing on disk; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    /// `None` (after a loud skip) when redis-server is not installed outside CI.
    pub async fn start() -> Option<Self> {
        if !require("redis-server") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut server = Self { port, child: None };
        server.restart().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (like a crash: no persistence, so its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again, empty) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let port = self.port;
        eventually("redis-server to accept connections", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An instance on the Redis backplane, once it is ready.
pub async fn spawn_redis_app(redis: &RedisServer, stream_key: &str) -> TestApp {
    let app = spawn_app_with(json!({
        "hub": { "backend": "redis", "redis_url": redis.url(), "stream_key": stream_key },
    }))
    .await;
    eventually("the instance to follow the stream", || async {
        app.ready_status().await == 200
    })
    .await;
    app
}

/// A fresh Redis and two instances following one stream on it (the Redis server must outlive
/// them, so it is returned too); `None` after a loud skip when redis-server is missing.
pub async fn two_instances(stream_key: &str) -> Option<(RedisServer, TestApp, TestApp)> {
    let redis = RedisServer::start().await?;
    let a = spawn_redis_app(&redis, stream_key).await;
    let b = spawn_redis_app(&redis, stream_key).await;
    Some((redis, a, b))
}

/// A ticket bought from `issuer` opens exactly one connection on `redeemer`, on both transports.
pub async fn assert_ticket_opens_exactly_once(issuer: &TestApp, redeemer: &TestApp) {
    for transport in BOTH {
        let ticket = issuer.ticket_for("user_1").await;
        let query = format!("ticket={ticket}");
        let mut tab = redeemer
            .connect(transport, &query, None, &[])
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: ticket refused: {e:?}"));
        tab.ready().await;
        let (status, _) = redeemer.refusal(transport, &query, None, &[]).await;
        assert_eq!(status, 401, "{transport:?}: a ticket is single-use");
        let (status, _) = issuer.refusal(transport, &query, None, &[]).await;
        assert_eq!(status, 401, "{transport:?}: single-use on every instance");
    }
}

/// The real binary as a child process (so a test can `kill -9` it), with `env` overrides.
pub struct Process {
    pub child: std::process::Child,
    pub app: TestApp,
}

pub async fn spawn_binary(env: &[(&str, String)]) -> Process {
    use std::io::{BufRead, BufReader};
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_admin-push"));
    command
        .args(["--config", "/dev/null"])
        .env("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0")
        .env("ADMIN_PUSH__SERVER__DRAIN_SECS", "1")
        .env("ADMIN_PUSH__AUTH__JWT_SECRET", JWT_SECRET)
        .env(
            "ADMIN_PUSH__INTERNAL__SECRETS",
            format!("[\"{EMIT_SECRET}\"]"),
        )
        .env("ADMIN_PUSH__LOG__FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.contains("\"listening\""))
            .expect("logs its port");
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let log: Value = serde_json::from_str(&listening).expect("json log line");
        log["port"].as_u64().expect("port") as u16
    })
    .await
    .expect("reader");
    let app = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ws_base: format!("ws://127.0.0.1:{port}"),
        internal_base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
        shutdown: CancellationToken::new(),
        stopped: tokio::spawn(async { Ok(()) }),
    };
    Process { child, app }
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
