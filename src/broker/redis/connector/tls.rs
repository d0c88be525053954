//! TLS to Redis: the CA and client certificate files, read once at start-up, and the TLS error
//! behind a failed connect, for the probe to name the setting to fix.

use redis::{ClientTlsConfig, TlsCertificates};

use super::{ConnectorError, refuse};
use crate::settings::HubSettings;

/// The TLS error behind `error`: rustls reports through a `std::io::Error`, which the `redis`
/// crate keeps behind an `Arc`.
pub(super) fn failure(error: &redis::RedisError) -> Option<&rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let cause = std::error::Error::source(error)?;
    let io = match cause.downcast_ref::<Shared>() {
        Some(shared) => shared.downcast_ref::<std::io::Error>()?,
        None => cause.downcast_ref::<std::io::Error>()?,
    };
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The CA and client certificate files, read once at start-up.
pub(super) fn certificates(
    settings: &HubSettings,
) -> Result<Option<TlsCertificates>, ConnectorError> {
    let read = |key: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| refuse(key, format!("cannot read {}: {e}", path.display())))
    };
    let root_cert = settings
        .redis_ca_file
        .as_deref()
        .map(|path| read("hub.redis_ca_file", path))
        .transpose()?;
    let client_tls = match (
        &settings.redis_client_cert_file,
        &settings.redis_client_key_file,
    ) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read("hub.redis_client_cert_file", cert)?,
            client_key: read("hub.redis_client_key_file", key)?,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(refuse(
                "hub.redis_client_key_file",
                "a client certificate needs its key",
            ));
        }
        (None, Some(_)) => {
            return Err(refuse(
                "hub.redis_client_cert_file",
                "a client key needs its certificate",
            ));
        }
    };
    if root_cert.is_none() && client_tls.is_none() {
        return Ok(None);
    }
    Ok(Some(TlsCertificates {
        client_tls,
        root_cert,
    }))
}
