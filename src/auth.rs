//! Who may subscribe: Medusa admin users, proven by a JWT or by a short-lived ticket bought with one
//! (the tickets themselves are kept by `tickets`).
//!
//! The algorithm is pinned by configuration and never read from the token, so `alg: none` and
//! HS/RS key confusion fail before any signature maths. Medusa v2 admin tokens (HS256 over its
//! `JWT_SECRET`, `actor_type: "user"`) pass unchanged; so do the Medusa plugin's dedicated tokens.
//!
//! Browsers cannot put headers on `WebSocket` or `EventSource`, and a JWT in a URL ends up in proxy
//! logs, so they exchange the JWT for a ticket: 128 random bits, single use, seconds to live, carrying
//! the token's subject and expiry. A raw token in the URL is refused outright.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    http::{StatusCode, header, header::Header as _},
};
use actix_web_httpauth::headers::authorization::{Authorization, Bearer};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::{
    problem,
    settings::{AuthSettings, SettingsError},
};

/// The longest display name kept from a token's `name` claim, in characters.
const MAX_NAME_CHARS: usize = 64;

/// An authenticated admin: who, under what name others see them, and until when the connection
/// may live.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Principal {
    pub(crate) actor_id: String,
    /// The token's `name` claim, shown to other admins on the records both have open. Only a
    /// signed token names anyone: nothing a client sends on a connection can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// Unix seconds after which the credential is no longer honoured (`exp` + leeway).
    pub(crate) valid_until: u64,
}

impl Principal {
    /// Time left before the credential lapses, from now; capped so that deadline arithmetic on it
    /// can never overflow, however far in the future a token claims to expire.
    pub(crate) fn remaining(&self) -> Duration {
        const MAX_SESSION: Duration = Duration::from_secs(365 * 24 * 3600);
        Duration::from_secs(self.valid_until.saturating_sub(unix_now())).min(MAX_SESSION)
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("missing credentials: send `Authorization: Bearer <admin JWT>` or `?ticket=`")]
    Missing,
    #[error(
        "tokens are not accepted in the URL; exchange the token for a ticket at POST /admin-ws/ticket"
    )]
    TokenInUrl,
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("invalid ticket: unknown, already used or expired")]
    InvalidTicket,
    #[error("actor type {0:?} may not subscribe")]
    ForbiddenActor(String),
    #[error("origin {0:?} is not allowed")]
    ForbiddenOrigin(String),
    #[error("too many tickets pending; retry shortly")]
    TicketsExhausted,
    #[error("tickets cannot be stored or checked right now; retry shortly")]
    TicketStoreUnavailable,
}

impl AuthError {
    /// A stable label for metrics.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::TokenInUrl => "token_in_url",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::InvalidTicket => "invalid_ticket",
            AuthError::ForbiddenActor(_) => "forbidden_actor",
            AuthError::ForbiddenOrigin(_) => "forbidden_origin",
            AuthError::TicketsExhausted => "tickets_exhausted",
            AuthError::TicketStoreUnavailable => "ticket_store_unavailable",
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            AuthError::ForbiddenActor(_) | AuthError::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            AuthError::TicketsExhausted | AuthError::TicketStoreUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut builder = problem::builder(status);
        let code = match status {
            StatusCode::UNAUTHORIZED => {
                builder
                    .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
                "unauthorized"
            }
            StatusCode::FORBIDDEN => "forbidden",
            _ => {
                builder.insert_header((header::RETRY_AFTER, "1"));
                "unavailable"
            }
        };
        problem::finish(builder, code, &self.to_string())
    }
}

/// The claims admin-push reads; everything else in a Medusa token is ignored. A missing or empty
/// `actor_id` or `actor_type` makes the token invalid (`401`), not one of another actor type.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    actor_id: Option<String>,
    #[serde(default)]
    actor_type: Option<String>,
    /// A display name (the Medusa plugin's tokens carry one); optional, and of any string shape.
    #[serde(default)]
    name: Option<serde_json::Value>,
    // Defaulted so a missing `exp` is reported as such by the validation (which requires it).
    #[serde(default)]
    exp: u64,
}

/// Checks admin JWTs against the configured key, algorithm and claims.
pub(crate) struct Verifier {
    key: DecodingKey,
    validation: Validation,
    actor_types: Vec<String>,
    leeway: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .field("actor_types", &self.actor_types)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub(crate) fn new(settings: &AuthSettings) -> Result<Self, SettingsError> {
        let invalid = |key, problem: String| SettingsError::Invalid { key, problem };
        let algorithm: Algorithm = settings.algorithm.parse().map_err(|_| {
            invalid(
                "auth.algorithm",
                format!("unknown algorithm {:?}", settings.algorithm),
            )
        })?;
        let key = match (algorithm, &settings.jwt_public_key) {
            (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512, _) => {
                DecodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes())
            }
            (Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512, Some(pem)) => {
                DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
                    invalid(
                        "auth.jwt_public_key",
                        format!("not an RSA public key PEM: {e}"),
                    )
                })?
            }
            (Algorithm::ES256 | Algorithm::ES384, Some(pem)) => {
                DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| {
                    invalid(
                        "auth.jwt_public_key",
                        format!("not an EC public key PEM: {e}"),
                    )
                })?
            }
            (_, None) => {
                return Err(invalid(
                    "auth.jwt_public_key",
                    format!("required for {:?}", settings.algorithm),
                ));
            }
            (other, Some(_)) => {
                return Err(invalid(
                    "auth.algorithm",
                    format!("{other:?} is not supported"),
                ));
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = settings.leeway_secs;
        validation.validate_nbf = true;
        // A configured audience or issuer must be present, not merely right when present.
        let mut required = vec!["exp"];
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            key,
            validation,
            actor_types: settings.actor_types.clone(),
            leeway: settings.leeway_secs,
        })
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_with_expiry(token)
            .map(|(principal, _)| principal)
    }

    /// [`Self::verify`], and the time left until the token's own `exp`, the leeway not counted:
    /// what a ticket bought with it may live at most.
    pub(crate) fn verify_with_expiry(
        &self,
        token: &str,
    ) -> Result<(Principal, Duration), AuthError> {
        let decoded = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::InvalidToken(describe(e.kind())))?;
        // RFC 7515 §4.1.11: a recipient must refuse a token naming critical extensions it does not
        // understand, and this service understands none.
        if decoded.header.crit.is_some() {
            return Err(AuthError::InvalidToken(
                "critical header extensions (crit) are not supported",
            ));
        }
        let claims = decoded.claims;
        let actor_type = non_empty(claims.actor_type)
            .ok_or(AuthError::InvalidToken("missing or empty actor_type claim"))?;
        let actor_id = non_empty(claims.actor_id)
            .ok_or(AuthError::InvalidToken("missing or empty actor_id claim"))?;
        if !self.actor_types.contains(&actor_type) {
            return Err(AuthError::ForbiddenActor(actor_type));
        }
        let expires = UNIX_EPOCH + Duration::from_secs(claims.exp);
        let left = expires
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let principal = Principal {
            actor_id,
            name: claims.name.as_ref().and_then(display_name),
            valid_until: claims.exp.saturating_add(self.leeway),
        };
        Ok((principal, left))
    }
}

/// A `name` claim as something safe to show: a string, control characters dropped, whitespace
/// trimmed, at most [`MAX_NAME_CHARS`] characters. Anything else (a number, an object, blank) is
/// no name, not a refused token: the name is decoration, the actor id is the identity.
fn display_name(claim: &serde_json::Value) -> Option<String> {
    let name: String = claim
        .as_str()?
        .chars()
        .filter(|c| !c.is_control() && !is_format(*c))
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Invisible formatting characters (Unicode category Cf) that can reorder or hide what a name
/// shows: bidi controls, zero-width characters, the BOM.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

fn non_empty(claim: Option<String>) -> Option<String> {
    claim.filter(|value| !value.is_empty())
}

fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet (nbf)",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not accepted",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "aud" => "missing audience",
            "iss" => "missing issuer",
            _ => "missing exp",
        },
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::Json(_) => {
            "malformed header or claims (unknown alg, or claims of the wrong shape)"
        }
        _ => "malformed",
    }
}

/// Mints a development admin token, as Medusa would: HS256, `actor_type: "user"`.
pub fn mint_token(
    settings: &AuthSettings,
    actor_id: &str,
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    #[derive(Serialize)]
    struct DevClaims<'a> {
        actor_id: &'a str,
        actor_type: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        aud: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        iss: Option<&'a str>,
        iat: u64,
        exp: u64,
    }
    let now = unix_now();
    let claims = DevClaims {
        actor_id,
        actor_type: settings.actor_types.first().map_or("user", String::as_str),
        aud: settings.audience.as_deref(),
        iss: settings.issuer.as_deref(),
        iat: now,
        exp: now + ttl.as_secs(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes()),
    )
}

/// Refuses browser requests from origins not listed in `auth.allowed_origins` (empty: any).
/// Requests without `Origin` are not from a browser page and cannot be hijacked cross-site.
pub(crate) fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), AuthError> {
    match req.headers().get(header::ORIGIN) {
        Some(origin) if !allowed.is_empty() => {
            let origin = origin.to_str().unwrap_or_default();
            if allowed.iter().any(|a| a == origin) {
                Ok(())
            } else {
                Err(AuthError::ForbiddenOrigin(
                    origin.chars().take(200).collect(),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// The bearer token of a request, if it sent one.
pub(crate) fn bearer_token(req: &HttpRequest) -> Result<Option<String>, AuthError> {
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    Authorization::<Bearer>::parse(req)
        .map(|auth| Some(auth.into_scheme().token().to_string()))
        .map_err(|_| AuthError::InvalidToken("Authorization is not a Bearer credential"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_claim_is_shown_cleaned_or_not_at_all() {
        let long = "x".repeat(100);
        let cases = [
            (
                serde_json::json!("  Anna Smith "),
                Some("Anna Smith".to_owned()),
            ),
            (serde_json::json!("An\u{0}na\n"), Some("Anna".to_owned())),
            (
                serde_json::json!("\u{202E}annA\u{200B}"),
                Some("annA".to_owned()),
            ),
            (serde_json::json!(long), Some("x".repeat(MAX_NAME_CHARS))),
            (serde_json::json!("   "), None),
            (serde_json::json!(42), None),
            (serde_json::json!({ "first": "Anna" }), None),
        ];
        for (claim, shown) in cases {
            assert_eq!(display_name(&claim), shown, "{claim}");
        }
    }

    mod hostile_input {
        use proptest::prelude::*;

        use super::*;
        use crate::settings::AuthSettings;

        proptest! {
            #[test]
            fn any_token_is_refused_never_a_panic(
                token in prop_oneof![
                    ".{0,300}",
                    "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
                    "eyJ[A-Za-z0-9_-]{0,40}\\.eyJ[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,43}",
                ]
            ) {
                let verifier = Verifier::new(&AuthSettings::default()).expect("default settings");
                prop_assert!(verifier.verify(&token).is_err());
            }
        }
    }
}
