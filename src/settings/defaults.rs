//! What runs when nothing is configured: the built-in value of every key, the same values the
//! shipped `config.toml` and the README's configuration table show (a test holds them to it).
//!
//! The defaults are ready for development on one machine, secrets included; those secrets are
//! public, so they are named here for the warning at start-up and the production check to find.

use std::net::SocketAddr;

use secrecy::SecretString;

use super::tree::{
    AuthSettings, EmitAuth, EmitSettings, HubBackend, HubSettings, InternalSettings, LimitSettings,
    LogFormat, LogSettings, PresenceSettings, ReceiptSettings, RedisMode, ServerSettings,
    SseSettings, WsSettings,
};

/// The development secrets shipped in `config.toml`. Running with any of them earns a loud warning,
/// and `server.production = true` refuses to start.
pub const DEV_JWT_SECRET: &str = "supersecret";
pub const DEV_INTERNAL_SECRET: &str = "dev-internal-secret";

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
            redis_min_replicas: 0,
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

impl Default for PresenceSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 30,
            max_records: 16,
            max_viewers: 20,
            max_reports_per_sec: 5,
        }
    }
}

impl Default for ReceiptSettings {
    fn default() -> Self {
        Self {
            sample_tabs: 100,
            max_per_sec: 10,
        }
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
