//! The checks a well-typed configuration must still pass: ranges, keys that depend on each other,
//! and what production refuses. They run once, at start-up, so the rest of the program can trust
//! what it is handed, and a mistake stops the start with the key to fix instead of surfacing later
//! as odd behaviour.

use std::ops::RangeInclusive;

use secrecy::{ExposeSecret, SecretString};

use super::{
    DEV_INTERNAL_SECRET, DEV_JWT_SECRET, EmitAuth, RedisMode, Settings,
    error::{SettingsError, invalid},
};

/// Secrets shorter than this are refused in production: an HS256 key should carry at least 256 bits.
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

impl Settings {
    pub(super) fn check(&self) -> Result<(), SettingsError> {
        const DAY: u64 = 86_400;
        const MIB: u64 = 1024 * 1024;
        let u = |v: usize| v as u64;
        // Upper bounds too: an absurd value must stop the start, not overflow a deadline later.
        let bounds: [(&'static str, u64, RangeInclusive<u64>); 29] = [
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
                "hub.redis_min_replicas",
                u64::from(self.hub.redis_min_replicas),
                0..=64,
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
            // At least 3 s: clients repeat their reports every third of it, in whole seconds.
            ("presence.ttl_secs", self.presence.ttl_secs, 3..=3600),
            (
                "presence.max_records",
                u(self.presence.max_records),
                0..=1024,
            ),
            (
                "presence.max_viewers",
                u(self.presence.max_viewers),
                1..=1000,
            ),
            (
                "presence.max_reports_per_sec",
                u64::from(self.presence.max_reports_per_sec),
                1..=1000,
            ),
            (
                "receipts.sample_tabs",
                u(self.receipts.sample_tabs),
                0..=10_000_000,
            ),
            (
                "receipts.max_per_sec",
                u64::from(self.receipts.max_per_sec),
                1..=1000,
            ),
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
        // A client that answers every ping at once is still silent for a whole interval between
        // two pings, and deadlines are only checked on a one-second tick: a timeout no longer than
        // the interval would close healthy clients.
        if self.ws.pong_timeout_secs <= self.ws.ping_interval_secs {
            return Err(invalid(
                "ws.pong_timeout_secs",
                format!(
                    "must be longer than ws.ping_interval_secs ({}): a client that answers every ping is still silent for a whole interval between pings",
                    self.ws.ping_interval_secs
                ),
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
