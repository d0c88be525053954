//! Admin JWTs as Medusa signs them, and the secret the test server verifies them with.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-jwt-secret-that-is-long-enough-0001";

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

/// An admin token as the Medusa plugin signs it: with the admin's display name.
pub fn named_token(actor_id: &str, name: &str) -> String {
    let now = unix_now() as i64;
    sign(&json!({
        "actor_id": actor_id,
        "actor_type": "user",
        "name": name,
        "iat": now,
        "exp": now + 3600,
    }))
}
