//! Admin JWTs for bench subscribers: HS256, `{actor_id, actor_type: "user", iat, exp}`, one actor per
//! connection so `limits.max_connections_per_actor` never bites.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    actor_id: &'a str,
    actor_type: &'a str,
    iat: u64,
    exp: u64,
}

/// Signs a one-hour token for `actor_id`.
pub(crate) fn mint(secret: &str, actor_id: &str) -> Result<String, String> {
    let now = crate::proto::unix_ns() / 1_000_000_000;
    let claims = Claims {
        actor_id,
        actor_type: "user",
        iat: now,
        exp: now + 3600,
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("cannot sign a bench token: {e}"))
}
