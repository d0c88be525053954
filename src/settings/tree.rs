//! The typed tree: one struct per section of `config.toml`, one field per key, and the durations
//! the rest of the program reads from them.
//!
//! Every section rejects unknown keys and takes its defaults (`defaults.rs`) for the keys a file or
//! the environment leaves out, so a partial file is a complete configuration.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use secrecy::SecretString;
use serde::Deserialize;

// The tests serialise the defaults to compare them with what `config.toml` and the README say;
// nothing else may serialise settings that hold secrets.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub internal: InternalSettings,
    pub emit: EmitSettings,
    pub events: EventsSettings,
    pub hub: HubSettings,
    pub ws: WsSettings,
    pub sse: SseSettings,
    pub presence: PresenceSettings,
    pub receipts: ReceiptSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub internal_bind: Option<SocketAddr>,
    /// A client must finish sending its request head within this (slow-header defence).
    pub header_timeout_secs: u64,
    pub drain_secs: u64,
    pub production: bool,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Base URL the `emit` subcommand posts to; derived from the binds when unset.
    pub emit_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    #[cfg_attr(test, serde(serialize_with = "super::tests::exposed"))]
    pub jwt_secret: SecretString,
    pub jwt_public_key: Option<String>,
    pub algorithm: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub actor_types: Vec<String>,
    pub leeway_secs: u64,
    pub allowed_origins: Vec<String>,
    pub ticket_ttl_secs: u64,
    /// Tickets issued but not yet used; beyond it the ticket route answers 503.
    pub max_pending_tickets: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct InternalSettings {
    #[cfg_attr(test, serde(serialize_with = "super::tests::exposed"))]
    pub secrets: Vec<SecretString>,
    /// Keys for `X-Admin-Push-Signature` (HMAC-SHA256); several, for rotation.
    #[cfg_attr(test, serde(serialize_with = "super::tests::exposed"))]
    pub hmac_secrets: Vec<SecretString>,
    pub auth: EmitAuth,
}

/// How `/internal/emit` callers prove themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum EmitAuth {
    /// `Authorization: Bearer <one of internal.secrets>`.
    Bearer,
    /// `X-Admin-Push-Signature` over the body with one of `internal.hmac_secrets`.
    Hmac,
    /// Either of the above.
    Either,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct EmitSettings {
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub max_data_bytes: usize,
    /// How long a caller may take to send its whole body, from the handler's first read.
    pub body_timeout_secs: u64,
    pub idempotency_ttl_secs: u64,
    /// Idempotency keys remembered at once; the oldest are forgotten first.
    pub idempotency_capacity: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum HubBackend {
    Memory,
    Redis,
}

/// How Redis is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server (or a managed endpoint that hides its failover): `hub.redis_url`.
    Standalone,
    /// The master that the sentinels in `hub.redis_nodes` name `hub.redis_master`.
    Sentinel,
    /// A Redis Cluster reached through the seed nodes in `hub.redis_nodes`.
    Cluster,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct HubSettings {
    pub backend: HubBackend,
    pub history: usize,
    /// Events a connection may fall behind the live broadcast before it is told `resync{lagged}`.
    pub buffer: usize,
    pub redis_mode: RedisMode,
    /// `redis://` or `rediss://` (TLS), optionally with `user:password@`.
    #[cfg_attr(test, serde(serialize_with = "super::tests::exposed"))]
    pub redis_url: SecretString,
    /// Sentinel mode: the sentinels' URLs; cluster mode: seed nodes' URLs.
    #[cfg_attr(test, serde(serialize_with = "super::tests::exposed"))]
    pub redis_nodes: Vec<SecretString>,
    /// Sentinel mode: the master's name in the sentinels' configuration.
    pub redis_master: String,
    /// ACL user and password for Redis itself; they take precedence over the URL's.
    pub redis_username: Option<String>,
    #[cfg_attr(test, serde(serialize_with = "super::tests::exposed"))]
    pub redis_password: Option<SecretString>,
    /// PEM CA certificate to trust for `rediss://` instead of the system roots.
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require one (mutual TLS).
    pub redis_client_cert_file: Option<PathBuf>,
    pub redis_client_key_file: Option<PathBuf>,
    /// Each Redis call (an emit's append, a ticket) gives up after this, on its own clock.
    pub redis_timeout_ms: u64,
    /// Durability: an emit is acknowledged only once this many replicas have its append (`WAIT`);
    /// 0 acknowledges once the master has it.
    pub redis_min_replicas: u32,
    pub stream_key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct WsSettings {
    pub ping_interval_secs: u64,
    pub pong_timeout_secs: u64,
    /// Largest client frame accepted; a bigger one closes the socket with 1009.
    pub max_frame_bytes: usize,
    /// Client frames (pongs included) accepted per second; more closes the socket with 1008.
    pub max_client_frames_per_sec: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct SseSettings {
    pub keepalive_secs: u64,
}

/// Who else has a record open: what a connection may report, and how long a report holds.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct PresenceSettings {
    /// A connection's report lapses this long after it was made (clients repeat theirs every
    /// third of it); so does another instance's, after it was last heard.
    pub ttl_secs: u64,
    /// Records one connection may report at once.
    pub max_records: usize,
    /// Viewers listed per record; the rest are counted in `more`.
    pub max_viewers: usize,
    /// Reports one connection may make per second.
    pub max_reports_per_sec: u32,
}

/// Screen-refresh receipts: tabs saying when their screen showed an event.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct ReceiptSettings {
    /// About this many tabs send receipts: each connection is asked to, for a share of the events
    /// (its `ready`'s `receipt_rate`: all of them while fewer tabs are open). 0 turns them off.
    pub sample_tabs: usize,
    /// Receipts one connection may send per second; more are not counted.
    pub max_per_sec: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub max_connections: usize,
    pub max_connections_per_actor: usize,
    pub send_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `admin_push=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Settings {
    /// Where the `emit` subcommand posts: the internal listener when there is one.
    pub fn emit_url(&self) -> String {
        if let Some(url) = &self.server.emit_url {
            return url.trim_end_matches('/').to_owned();
        }
        let addr = self.server.internal_bind.unwrap_or(self.server.bind);
        format!("http://{addr}")
    }
}

impl ServerSettings {
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }
}

impl WsSettings {
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }
    pub fn pong_timeout(&self) -> Duration {
        Duration::from_secs(self.pong_timeout_secs)
    }
}

impl SseSettings {
    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.keepalive_secs)
    }
}

impl PresenceSettings {
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }
}

impl HubSettings {
    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }
}

impl EmitSettings {
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }
}

impl LimitSettings {
    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout_secs)
    }
}
