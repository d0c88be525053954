//! A real `redis-server` per test, and instances of the service that share it.

use serde_json::json;

use super::{
    BOTH,
    app::{TestApp, spawn_app_with},
    eventually, require,
};

/// A real `redis-server` on a free port, with nothing on disk; killed on drop.
pub struct RedisServer {
    pub port: u16,
    /// Extra arguments (TLS, cluster, replication); `--port` is replaced by `--tls-port` when a
    /// test asks for TLS only.
    args: Vec<String>,
    child: Option<std::process::Child>,
    /// Its working directory: a replica's full sync writes an RDB file there, which must not land
    /// in the repository.
    dir: tempfile::TempDir,
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A free port whose cluster bus port (`port + 10000`) is free too.
pub fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        let bus = port.checked_add(10_000);
        if bus.is_some_and(|bus| std::net::TcpListener::bind(("127.0.0.1", bus)).is_ok()) {
            return port;
        }
    }
}

impl RedisServer {
    /// `None` (after a loud skip) when redis-server is not installed outside CI.
    pub async fn start() -> Option<Self> {
        Self::start_with(free_port(), &[]).await
    }

    /// On `port`, with extra arguments; with `--tls-cert-file` among them it speaks TLS only.
    pub async fn start_with(port: u16, args: &[String]) -> Option<Self> {
        if !require("redis-server") {
            return None;
        }
        let mut server = Self {
            port,
            args: args.to_vec(),
            child: None,
            dir: tempfile::tempdir().expect("a directory for redis-server"),
        };
        server.restart().await;
        Some(server)
    }

    /// Freezes the process (SIGSTOP): connections stay open and nothing answers, like a Redis
    /// stuck on a slow disk or a long command.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws it (SIGCONT): it works off whatever arrived while it was frozen.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
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
        let tls = self.args.iter().any(|a| a == "--tls-cert-file");
        let port = self.port.to_string();
        let listen = if tls {
            vec!["--port", "0", "--tls-port", &port]
        } else {
            vec!["--port", &port]
        };
        let child = std::process::Command::new("redis-server")
            .args(listen)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
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

/// `POST /internal/emit` with an `Idempotency-Key`.
pub async fn emit_with_key(
    app: &TestApp,
    key: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    app.http
        .post(format!("{}/internal/emit", app.internal_base))
        .bearer_auth(super::EMIT_SECRET)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("emit request")
}

/// The ACL rule docs/redis.md gives, for `stream_key`, plus a mode's `extra` commands.
pub fn acl_rules(stream_key: &str, extra: &str) -> String {
    format!(
        "on resetkeys ~{stream_key}* resetchannels -@all \
         +time +info +eval +xadd +xlen +xread +xrange +xrevrange +get +set +getdel {extra}"
    )
}

/// Creates the ACL user `admin-push` with `rules` and `password` on the server at `url` (ACLs
/// are per server: neither replicated nor shared by a cluster's nodes).
pub async fn add_acl_user(url: &str, rules: &str, password: &str) {
    let client = ::redis::Client::open(url).expect("url");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect as the default user");
    let mut setuser = ::redis::cmd("ACL");
    setuser.arg("SETUSER").arg("admin-push");
    for rule in rules.split_whitespace() {
        setuser.arg(rule);
    }
    setuser.arg(format!(">{password}"));
    let () = setuser.query_async(&mut admin).await.expect("ACL SETUSER");
}

/// An instance on the Redis backplane, once it is ready.
pub async fn spawn_redis_app(redis: &RedisServer, stream_key: &str) -> TestApp {
    spawn_ready_redis_app(json!({ "redis_url": redis.url(), "stream_key": stream_key })).await
}

/// An instance with `backend = "redis"` and these other `hub` settings, once it is ready.
pub async fn spawn_ready_redis_app(mut hub: serde_json::Value) -> TestApp {
    hub["backend"] = json!("redis");
    let app = spawn_app_with(json!({ "hub": hub })).await;
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

/// `command section` (`CLUSTER INFO`, `INFO replication`) of the server at `url`, if it answers.
pub async fn info(url: &str, command: &str, section: &str) -> Option<String> {
    let client = ::redis::Client::open(url).ok()?;
    let mut connection = client.get_multiplexed_async_connection().await.ok()?;
    ::redis::cmd(command)
        .arg(section)
        .query_async::<String>(&mut connection)
        .await
        .ok()
}

/// The ids the stream `key` holds on the server at `url`, oldest first. A storm's stream is long,
/// and a loaded machine reads it slower than the client's default half-second reply timeout.
pub async fn stream_ids(url: &str, key: &str) -> Vec<String> {
    let client = ::redis::Client::open(url).expect("url");
    let config = ::redis::AsyncConnectionConfig::new().set_response_timeout(Some(super::WAIT));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect");
    let entries: Vec<(String, Vec<String>)> = ::redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .expect("XRANGE");
    entries.into_iter().map(|(id, _)| id).collect()
}
