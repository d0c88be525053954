//! Who may publish: a bearer secret or an HMAC signature over the body, as `internal.auth` says.
//!
//! Both compare in constant time against every configured secret (several, for rotation). A
//! bearer caller is known before the body is read; a signed one only once the body is in, since
//! the signature covers it.

use actix_web::{HttpRequest, http::header::HeaderValue};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    auth,
    settings::{EmitAuth, InternalSettings},
};

/// The signed-emit header and how far its timestamp may be from now (replay window).
const SIGNATURE_HEADER: &str = "x-admin-push-signature";
const SIGNATURE_WINDOW_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// Why a caller was refused (401).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CallerError(&'static str);

/// A caller that passed the checks possible before its body is read.
#[derive(Debug)]
pub(super) enum Caller<'a> {
    /// Proven by a bearer secret.
    Bearer,
    /// Claims a signature, to be checked against the body.
    Signed(&'a HeaderValue),
}

impl<'a> Caller<'a> {
    pub(super) fn identify(
        req: &'a HttpRequest,
        internal: &InternalSettings,
    ) -> Result<Self, CallerError> {
        match (internal.auth, req.headers().get(SIGNATURE_HEADER)) {
            (EmitAuth::Bearer, _) | (EmitAuth::Either, None) => {
                bearer(req, &internal.secrets).map(|()| Caller::Bearer)
            }
            (EmitAuth::Hmac | EmitAuth::Either, Some(signature)) => Ok(Caller::Signed(signature)),
            (EmitAuth::Hmac, None) => Err(CallerError("missing X-Admin-Push-Signature")),
        }
    }

    /// Checks a signed caller's signature over `body`; a bearer caller is already proven.
    pub(super) fn verify_body(
        &self,
        body: &[u8],
        internal: &InternalSettings,
    ) -> Result<(), CallerError> {
        match self {
            Caller::Bearer => Ok(()),
            Caller::Signed(signature) => {
                signed(signature, body, &internal.hmac_secrets, auth::unix_now())
            }
        }
    }
}

/// Accepts any configured secret (several, for rotation). Every secret is compared, in constant
/// time over fixed-length digests, so neither the match, its position nor a secret's length leaks
/// through timing.
fn bearer(req: &HttpRequest, secrets: &[SecretString]) -> Result<(), CallerError> {
    let wrong = CallerError("missing or wrong emit secret");
    let token = Sha256::digest(auth::bearer_token(req).ok().flatten().ok_or(wrong)?);
    let matched = secrets
        .iter()
        .fold(subtle::Choice::from(0), |found, secret| {
            found | Sha256::digest(secret.expose_secret()).ct_eq(&token)
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(CallerError("missing or wrong emit secret"))
    }
}

/// Verifies `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` against every key (for
/// rotation), in constant time per key, and refuses timestamps outside the replay window.
fn signed(
    header: &HeaderValue,
    body: &[u8],
    secrets: &[SecretString],
    now: u64,
) -> Result<(), CallerError> {
    let malformed = || CallerError("X-Admin-Push-Signature must be t=<unix seconds>,v1=<hex>");
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.to_str().map_err(|_| malformed())?.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", v1)) => signatures.push(hex::decode(v1).map_err(|_| malformed())?),
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(malformed)?;
    let seconds: u64 = t.parse().map_err(|_| malformed())?;
    if seconds.abs_diff(now) > SIGNATURE_WINDOW_SECS {
        return Err(CallerError(
            "signature timestamp is outside the ±300 s window",
        ));
    }
    let mut matched = false;
    for secret in secrets {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose_secret().as_bytes()) else {
            continue;
        };
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        for signature in &signatures {
            matched |= mac.clone().verify_slice(signature).is_ok();
        }
    }
    if matched {
        Ok(())
    } else {
        Err(CallerError("signature does not match"))
    }
}
