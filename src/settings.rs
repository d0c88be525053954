//! Configuration: one typed tree loaded from `config.toml` (or the built-in defaults when there is
//! no file) plus `ADMIN_PUSH__SECTION__KEY` environment overrides.
//!
//! Every section rejects unknown keys and every value is checked once here, at start-up, so the rest
//! of the program can trust what it is handed. A mistake stops the start with one plain line that
//! names the key (`hub.history: must be between 1 and 10000000`) instead of surfacing later as odd
//! behaviour.

use std::{
    net::SocketAddr,
    ops::RangeInclusive,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    error::{Actual, Kind},
    providers::{Env, Format, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The development secrets shipped in `config.toml`. Running with any of them earns a loud warning,
/// and `server.production = true` refuses to start.
pub const DEV_JWT_SECRET: &str = "supersecret";
pub const DEV_INTERNAL_SECRET: &str = "dev-internal-secret";

/// Secrets shorter than this are refused in production: an HS256 key should carry at least 256 bits.
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Default, Deserialize)]
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
    pub limits: LimitSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
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
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
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
#[serde(deny_unknown_fields, default)]
pub struct InternalSettings {
    pub secrets: Vec<SecretString>,
    /// Keys for `X-Admin-Push-Signature` (HMAC-SHA256); several, for rotation.
    pub hmac_secrets: Vec<SecretString>,
    pub auth: EmitAuth,
}

/// How `/internal/emit` callers prove themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HubBackend {
    Memory,
    Redis,
}

/// How Redis is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[serde(deny_unknown_fields, default)]
pub struct HubSettings {
    pub backend: HubBackend,
    pub history: usize,
    /// Events a connection may fall behind the live broadcast before it is told `resync{lagged}`.
    pub buffer: usize,
    pub redis_mode: RedisMode,
    /// `redis://` or `rediss://` (TLS), optionally with `user:password@`.
    pub redis_url: SecretString,
    /// Sentinel mode: the sentinels' URLs; cluster mode: seed nodes' URLs.
    pub redis_nodes: Vec<SecretString>,
    /// Sentinel mode: the master's name in the sentinels' configuration.
    pub redis_master: String,
    /// ACL user and password for Redis itself; they take precedence over the URL's.
    pub redis_username: Option<String>,
    pub redis_password: Option<SecretString>,
    /// PEM CA certificate to trust for `rediss://` instead of the system roots.
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require one (mutual TLS).
    pub redis_client_cert_file: Option<PathBuf>,
    pub redis_client_key_file: Option<PathBuf>,
    /// Each Redis call (an emit's append, a ticket) gives up after this, on its own clock.
    pub redis_timeout_ms: u64,
    pub stream_key: String,
}

#[derive(Debug, Clone, Deserialize)]
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
#[serde(deny_unknown_fields, default)]
pub struct SseSettings {
    pub keepalive_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub max_connections: usize,
    pub max_connections_per_actor: usize,
    pub send_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `admin_push=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            internal_bind: None,
            header_timeout_secs: 5,
            drain_secs: 10,
            production: false,
            workers: 0,
            emit_url: None,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret: SecretString::from(DEV_JWT_SECRET),
            jwt_public_key: None,
            algorithm: "HS256".to_owned(),
            issuer: None,
            audience: None,
            actor_types: vec!["user".to_owned()],
            leeway_secs: 30,
            allowed_origins: Vec::new(),
            ticket_ttl_secs: 30,
            max_pending_tickets: 100_000,
        }
    }
}

impl Default for InternalSettings {
    fn default() -> Self {
        Self {
            secrets: vec![SecretString::from(DEV_INTERNAL_SECRET)],
            hmac_secrets: Vec::new(),
            auth: EmitAuth::Bearer,
        }
    }
}

impl Default for EmitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 65_536,
            max_batch: 100,
            max_data_bytes: 4096,
            body_timeout_secs: 10,
            idempotency_ttl_secs: 300,
            idempotency_capacity: 100_000,
        }
    }
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            backend: HubBackend::Memory,
            history: 10_000,
            buffer: 1024,
            redis_mode: RedisMode::Standalone,
            redis_url: SecretString::from("redis://127.0.0.1:6379"),
            redis_nodes: Vec::new(),
            redis_master: String::new(),
            redis_username: None,
            redis_password: None,
            redis_ca_file: None,
            redis_client_cert_file: None,
            redis_client_key_file: None,
            redis_timeout_ms: 2000,
            stream_key: "admin-push:events".to_owned(),
        }
    }
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            ping_interval_secs: 20,
            pong_timeout_secs: 60,
            max_frame_bytes: 16 * 1024,
            max_client_frames_per_sec: 50,
        }
    }
}

impl Default for SseSettings {
    fn default() -> Self {
        Self { keepalive_secs: 15 }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            max_connections_per_actor: 32,
            send_timeout_secs: 30,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".to_owned(),
        }
    }
}

/// Why the configuration was refused: one plain line that names the offending key (or, for a file
/// that cannot be read or parsed, the file and line).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    File(String),
    /// A value that does not fit its key's type, or a key that does not exist.
    #[error("configuration: {key}: {problem}")]
    Value { key: String, problem: String },
    /// A well-typed value that the checks below refuse.
    #[error("configuration: {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        problem: problem.into(),
    }
}

impl Settings {
    /// Loads the TOML file at `path`, which must exist, then the environment.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SettingsError::File(match e.kind() {
                std::io::ErrorKind::NotFound => format!("file {} not found", path.display()),
                _ => format!("cannot read {}: {e}", path.display()),
            })
        })?;
        // The TOML parser's own error is a multi-line snippet; one line with the position reads
        // better in a terminal and in a service manager's log.
        if let Err(e) = text.parse::<toml::Table>() {
            let line = e
                .span()
                .map_or(1, |span| text[..span.start].matches('\n').count() + 1);
            return Err(SettingsError::File(format!(
                "{} line {line}: {}",
                path.display(),
                one_line(e.message())
            )));
        }
        Self::from_figment(
            Figment::new()
                .merge(Toml::string(&text))
                .merge(environment()),
        )
    }

    /// The built-in defaults and the environment: what runs when there is no configuration file.
    pub fn from_environment() -> Result<Self, SettingsError> {
        Self::from_figment(Figment::new().merge(environment()))
    }

    /// Loads from an explicit figment; tests use it to layer overrides on the defaults.
    pub fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment.extract().map_err(value_error)?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        const DAY: u64 = 86_400;
        const MIB: u64 = 1024 * 1024;
        let u = |v: usize| v as u64;
        // Upper bounds too: an absurd value must stop the start, not overflow a deadline later.
        let bounds: [(&'static str, u64, RangeInclusive<u64>); 22] = [
            ("server.drain_secs", self.server.drain_secs, 1..=3600),
            (
                "server.header_timeout_secs",
                self.server.header_timeout_secs,
                1..=300,
            ),
            ("auth.leeway_secs", self.auth.leeway_secs, 0..=3600),
            ("auth.ticket_ttl_secs", self.auth.ticket_ttl_secs, 1..=30),
            (
                "auth.max_pending_tickets",
                u(self.auth.max_pending_tickets),
                1..=10_000_000,
            ),
            (
                "emit.max_body_bytes",
                u(self.emit.max_body_bytes),
                1..=64 * MIB,
            ),
            ("emit.max_batch", u(self.emit.max_batch), 1..=10_000),
            ("emit.max_data_bytes", u(self.emit.max_data_bytes), 1..=MIB),
            (
                "emit.body_timeout_secs",
                self.emit.body_timeout_secs,
                1..=300,
            ),
            (
                "emit.idempotency_ttl_secs",
                self.emit.idempotency_ttl_secs,
                1..=7 * DAY,
            ),
            (
                "emit.idempotency_capacity",
                u(self.emit.idempotency_capacity),
                1..=10_000_000,
            ),
            ("hub.history", u(self.hub.history), 1..=10_000_000),
            ("hub.buffer", u(self.hub.buffer), 1..=1_000_000),
            (
                "hub.redis_timeout_ms",
                self.hub.redis_timeout_ms,
                50..=60_000,
            ),
            (
                "ws.ping_interval_secs",
                self.ws.ping_interval_secs,
                1..=3600,
            ),
            ("ws.pong_timeout_secs", self.ws.pong_timeout_secs, 1..=DAY),
            (
                "ws.max_frame_bytes",
                u(self.ws.max_frame_bytes),
                1..=16 * MIB,
            ),
            (
                "ws.max_client_frames_per_sec",
                u64::from(self.ws.max_client_frames_per_sec),
                1..=100_000,
            ),
            ("sse.keepalive_secs", self.sse.keepalive_secs, 1..=3600),
            (
                "limits.max_connections",
                u(self.limits.max_connections),
                1..=10_000_000,
            ),
            (
                "limits.max_connections_per_actor",
                u(self.limits.max_connections_per_actor),
                1..=1_000_000,
            ),
            (
                "limits.send_timeout_secs",
                self.limits.send_timeout_secs,
                1..=3600,
            ),
        ];
        for (key, value, range) in bounds {
            if !range.contains(&value) {
                return Err(invalid(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        if self.ws.pong_timeout_secs <= self.ws.ping_interval_secs {
            return Err(invalid(
                "ws.pong_timeout_secs",
                "must be longer than ws.ping_interval_secs",
            ));
        }
        if self.auth.actor_types.is_empty() {
            return Err(invalid(
                "auth.actor_types",
                "must name at least one actor type",
            ));
        }
        for (key, secrets) in [
            ("internal.secrets", &self.internal.secrets),
            ("internal.hmac_secrets", &self.internal.hmac_secrets),
        ] {
            if secrets.iter().any(|s| s.expose_secret().is_empty()) {
                return Err(invalid(key, "a secret must not be empty"));
            }
        }
        if self.internal.auth != EmitAuth::Bearer && self.internal.hmac_secrets.is_empty() {
            return Err(invalid(
                "internal.hmac_secrets",
                "internal.auth accepts signatures, so at least one HMAC secret is needed",
            ));
        }
        if let Some(name) = self
            .events
            .extra
            .iter()
            .find(|n| !crate::catalog::is_extra_event_name(n))
        {
            return Err(invalid(
                "events.extra",
                format!(
                    "{name:?}: names are lowercase letters, digits, '.', '_' or '-', and not a built-in or control event"
                ),
            ));
        }
        if let Some(origin) = self.auth.allowed_origins.iter().find(|o| !is_origin(o)) {
            return Err(invalid(
                "auth.allowed_origins",
                format!("{origin:?} is not an origin like \"https://admin.example.com\""),
            ));
        }
        if self.hub.stream_key.is_empty() {
            return Err(invalid("hub.stream_key", "must not be empty"));
        }
        if self.hub.redis_mode == RedisMode::Cluster && !has_hash_tag(&self.hub.stream_key) {
            return Err(invalid(
                "hub.stream_key",
                "in cluster mode it needs a {hash tag} so every key shares one slot, e.g. \"{admin-push}:events\"",
            ));
        }
        if self.server.production {
            self.check_production()?;
        }
        Ok(())
    }

    fn check_production(&self) -> Result<(), SettingsError> {
        if self.uses_jwt_secret() {
            let secret = self.auth.jwt_secret.expose_secret();
            if secret == DEV_JWT_SECRET || secret.len() < MIN_PRODUCTION_SECRET_BYTES {
                return Err(invalid(
                    "auth.jwt_secret",
                    "production needs a secret of at least 32 bytes that is not the development default",
                ));
            }
        }
        if self.internal.auth != EmitAuth::Hmac && self.internal.secrets.is_empty() {
            return Err(invalid(
                "internal.secrets",
                "production needs at least one secret",
            ));
        }
        // Bearer secrets that `internal.auth = "hmac"` never consults are not held against it.
        let bearer: &[SecretString] = match self.internal.auth {
            EmitAuth::Hmac => &[],
            EmitAuth::Bearer | EmitAuth::Either => &self.internal.secrets,
        };
        for (key, secrets) in [
            ("internal.secrets", bearer),
            ("internal.hmac_secrets", &self.internal.hmac_secrets),
        ] {
            for secret in secrets {
                let secret = secret.expose_secret();
                if secret == DEV_INTERNAL_SECRET || secret.len() < MIN_PRODUCTION_SECRET_BYTES {
                    return Err(invalid(
                        key,
                        "production needs secrets of at least 32 bytes that are not the development default",
                    ));
                }
            }
        }
        Ok(())
    }

    /// True when a shipped development secret is in use: the server warns at every start.
    pub fn uses_development_secrets(&self) -> bool {
        (self.uses_jwt_secret() && self.auth.jwt_secret.expose_secret() == DEV_JWT_SECRET)
            || (self.internal.auth != EmitAuth::Hmac
                && self
                    .internal
                    .secrets
                    .iter()
                    .any(|s| s.expose_secret() == DEV_INTERNAL_SECRET))
    }

    /// HS* algorithms verify with `auth.jwt_secret`, whatever else is configured.
    fn uses_jwt_secret(&self) -> bool {
        self.auth.algorithm.starts_with("HS")
    }

    /// Where the `emit` subcommand posts: the internal listener when there is one.
    pub fn emit_url(&self) -> String {
        if let Some(url) = &self.server.emit_url {
            return url.trim_end_matches('/').to_owned();
        }
        let addr = self.server.internal_bind.unwrap_or(self.server.bind);
        format!("http://{addr}")
    }
}

const ENV_PREFIX: &str = "ADMIN_PUSH__";

fn environment() -> Env {
    Env::prefixed(ENV_PREFIX).split("__")
}

/// Turns the config library's error into the key it concerns and a plain sentence, in our words:
/// its own text nests quotes and names internal profiles (`for key "default.server.bindd"`).
fn value_error(error: figment::Error) -> SettingsError {
    let mut path = error.path.clone();
    let problem = match &error.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            format!("unknown key; expected one of {}", expected.join(", "))
        }
        Kind::UnknownVariant(found, expected) => {
            format!("{found:?} is not one of {}", expected.join(", "))
        }
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
            format!(
                "expected {}, found {}",
                plain_expected(expected),
                plain_actual(found)
            )
        }
        Kind::InvalidLength(len, expected) => format!("expected {expected}, found {len} items"),
        Kind::MissingField(field) => {
            path.push(field.to_string());
            "is required".to_owned()
        }
        Kind::DuplicateField(field) => {
            path.push((*field).to_owned());
            "is given twice".to_owned()
        }
        Kind::ISizeOutOfRange(n) => format!("{n} is out of range"),
        Kind::USizeOutOfRange(n) => format!("{n} is out of range"),
        Kind::Unsupported(found) | Kind::UnsupportedKey(found, _) => {
            format!("unsupported value: {}", plain_actual(found))
        }
        Kind::Message(message) => one_line(message),
    };
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    let problem = if from_env && !path.is_empty() {
        format!(
            "{problem} (from {ENV_PREFIX}{})",
            path.join("__").to_uppercase()
        )
    } else {
        problem
    };
    SettingsError::Value {
        key: if path.is_empty() {
            "(top level)".to_owned()
        } else {
            path.join(".")
        },
        problem,
    }
}

fn one_line(message: &str) -> String {
    message.lines().collect::<Vec<_>>().join("; ")
}

/// serde names Rust types (`u64`, `struct ServerSettings`); a reader of the config file thinks
/// in TOML values.
fn plain_expected(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
        "a sequence" => "a list",
        struct_name if struct_name.starts_with("struct ") => "a table",
        other => other,
    }
}

fn plain_actual(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => format!("{s:?}"),
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Seq => "a list".to_owned(),
        Actual::Map => "a table".to_owned(),
        other => other.to_string(),
    }
}

/// A non-empty `{…}` section, which Redis Cluster hashes instead of the whole key; our other keys
/// extend the stream key, so they carry the same tag and land in the same slot.
fn has_hash_tag(key: &str) -> bool {
    key.split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(tag, _)| !tag.is_empty())
}

/// `scheme://host[:port]` and nothing else: what browsers send in `Origin`.
fn is_origin(value: &str) -> bool {
    value.parse::<actix_web::http::Uri>().is_ok_and(|uri| {
        uri.scheme().is_some()
            && uri.authority().is_some()
            && uri
                .path_and_query()
                .is_none_or(|p| p.as_str().is_empty() || p.as_str() == "/")
            && !value.ends_with('/')
    })
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
