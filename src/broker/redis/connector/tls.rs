//! TLS to Redis: the CA and client certificate files, read and checked once at start-up, so that a
//! wrong file stops the start naming its own setting instead of failing every connect later; and,
//! when a handshake fails, whose certificate was refused: the server's, which we do not trust
//! (`hub.redis_ca_file`), or ours, which the server does not accept (`hub.redis_client_cert_file`).

use std::path::Path;

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::{
    AlertDescription, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};

use super::{ConnectorError, refuse};
use crate::settings::HubSettings;

const CA_FILE: &str = "hub.redis_ca_file";
const CLIENT_CERT_FILE: &str = "hub.redis_client_cert_file";
const CLIENT_KEY_FILE: &str = "hub.redis_client_key_file";

/// Which certificate files are configured: the settings a failed handshake can blame.
#[derive(Debug, Clone, Copy)]
pub(super) struct TlsFiles {
    ca: bool,
    client: bool,
}

impl TlsFiles {
    pub(super) fn of(settings: &HubSettings) -> Self {
        Self {
            ca: settings.redis_ca_file.is_some(),
            client: settings.redis_client_cert_file.is_some(),
        }
    }

    /// A failed handshake as the setting to fix. The server answers a client certificate it
    /// requires and did not get, or does not accept, with an alert; a server certificate we do
    /// not trust fails on our side.
    pub(super) fn explain(self, error: &rustls::Error) -> ConnectorError {
        use AlertDescription as Alert;
        match error {
            rustls::Error::AlertReceived(
                Alert::CertificateRequired
                | Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA,
            ) => {
                let hint = if self.client {
                    "the server refused the client certificate: is it signed by a CA the server trusts, and still valid?"
                } else {
                    "the server requires a client certificate: set hub.redis_client_cert_file and hub.redis_client_key_file"
                };
                refuse(
                    CLIENT_CERT_FILE,
                    format!("TLS with redis failed: {error} ({hint})"),
                )
            }
            _ => refuse(
                if self.ca { CA_FILE } else { "hub.redis_url" },
                format!(
                    "TLS with redis failed: {error} (is the server's CA the one configured in hub.redis_ca_file?)"
                ),
            ),
        }
    }
}

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

/// The CA and client certificate files, read and checked once at start-up: each holds what its
/// setting says, and the key is the certificate's.
pub(super) fn certificates(
    settings: &HubSettings,
) -> Result<Option<TlsCertificates>, ConnectorError> {
    let root_cert = settings
        .redis_ca_file
        .as_deref()
        .map(|path| {
            let pem = read(CA_FILE, path)?;
            let mut roots = RootCertStore::empty();
            for cert in certificates_in(CA_FILE, path, &pem)? {
                roots.add(cert).map_err(|e| {
                    refuse(
                        CA_FILE,
                        format!("{}: not a CA certificate: {e}", path.display()),
                    )
                })?;
            }
            Ok(pem)
        })
        .transpose()?;
    let client_tls = match (
        &settings.redis_client_cert_file,
        &settings.redis_client_key_file,
    ) {
        (Some(cert), Some(key)) => Some(client_certificate(cert, key)?),
        (None, None) => None,
        (Some(_), None) => {
            return Err(refuse(
                CLIENT_KEY_FILE,
                "a client certificate needs its key",
            ));
        }
        (None, Some(_)) => {
            return Err(refuse(
                CLIENT_CERT_FILE,
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

/// The client certificate chain and its key, as the `redis` crate takes them, once rustls has
/// agreed that the key is the certificate's.
fn client_certificate(cert: &Path, key: &Path) -> Result<ClientTlsConfig, ConnectorError> {
    let client_cert = read(CLIENT_CERT_FILE, cert)?;
    let client_key = read(CLIENT_KEY_FILE, key)?;
    let chain = certificates_in(CLIENT_CERT_FILE, cert, &client_cert)?;
    let private = PrivateKeyDer::from_pem_slice(&client_key).map_err(|e| {
        refuse(
            CLIENT_KEY_FILE,
            format!("{}: no PEM private key: {e}", key.display()),
        )
    })?;
    CertifiedKey::from_der(chain, private, &rustls::crypto::ring::default_provider()).map_err(
        |e| {
            refuse(
                CLIENT_KEY_FILE,
                format!(
                    "{} is not the key of the certificate in hub.redis_client_cert_file: {e}",
                    key.display()
                ),
            )
        },
    )?;
    Ok(ClientTlsConfig {
        client_cert,
        client_key,
    })
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, ConnectorError> {
    std::fs::read(path).map_err(|e| refuse(key, format!("cannot read {}: {e}", path.display())))
}

/// The PEM certificates in a file, at least one.
fn certificates_in(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConnectorError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            refuse(
                key,
                format!("{}: not a PEM certificate: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(refuse(
            key,
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    //! The files under `testdata/` are throw-away test material: a self-signed certificate with
    //! its key, and a key of nobody's.

    use std::path::PathBuf;

    use rustls::{CertificateError, Error};

    use super::*;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/broker/redis/connector/testdata")
            .join(name)
    }

    /// A file that holds no PEM at all.
    fn not_pem() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")
    }

    fn refusal(ca: Option<PathBuf>, cert: Option<PathBuf>, key: Option<PathBuf>) -> ConnectorError {
        let settings = HubSettings {
            redis_ca_file: ca,
            redis_client_cert_file: cert,
            redis_client_key_file: key,
            ..HubSettings::default()
        };
        certificates(&settings).expect_err("refused")
    }

    #[test]
    fn a_matching_certificate_and_key_and_a_ca_are_accepted() {
        let settings = HubSettings {
            redis_ca_file: Some(testdata("client.pem")),
            redis_client_cert_file: Some(testdata("client.pem")),
            redis_client_key_file: Some(testdata("client.key")),
            ..HubSettings::default()
        };
        let certs = certificates(&settings).expect("accepted").expect("some");
        assert!(certs.root_cert.is_some() && certs.client_tls.is_some());
    }

    #[test]
    fn a_missing_client_certificate_file_is_named_as_the_client_certificate() {
        let error = refusal(
            Some(testdata("client.pem")),
            Some(testdata("missing.pem")),
            Some(testdata("client.key")),
        );
        assert_eq!(error.key, CLIENT_CERT_FILE, "{error}");
        assert!(error.problem.contains("missing.pem"), "{error}");
    }

    #[test]
    fn a_client_certificate_file_without_a_certificate_is_named_as_the_client_certificate() {
        let error = refusal(None, Some(not_pem()), Some(testdata("client.key")));
        assert_eq!(error.key, CLIENT_CERT_FILE, "{error}");
    }

    #[test]
    fn a_client_key_file_without_a_key_or_with_another_key_is_named_as_the_key() {
        for key in [not_pem(), testdata("other.key")] {
            let error = refusal(None, Some(testdata("client.pem")), Some(key));
            assert_eq!(error.key, CLIENT_KEY_FILE, "{error}");
        }
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_named_as_the_ca() {
        let error = refusal(Some(not_pem()), None, None);
        assert_eq!(error.key, CA_FILE, "{error}");
    }

    #[test]
    fn a_server_asking_for_a_client_certificate_is_reported_as_a_client_certificate_problem() {
        let files = TlsFiles {
            ca: true,
            client: false,
        };
        let error = files.explain(&Error::AlertReceived(AlertDescription::CertificateRequired));
        assert_eq!(error.key, CLIENT_CERT_FILE, "{error}");
        assert!(
            error.problem.contains("requires a client certificate"),
            "{error}"
        );
    }

    #[test]
    fn a_server_refusing_the_client_certificate_is_reported_as_a_client_certificate_problem() {
        let files = TlsFiles {
            ca: true,
            client: true,
        };
        for alert in [
            AlertDescription::UnknownCA,
            AlertDescription::BadCertificate,
        ] {
            let error = files.explain(&Error::AlertReceived(alert));
            assert_eq!(error.key, CLIENT_CERT_FILE, "{error}");
            assert!(
                error.problem.contains("refused the client certificate"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_server_certificate_we_do_not_trust_is_reported_as_a_ca_problem() {
        let untrusted = Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let with_ca = TlsFiles {
            ca: true,
            client: true,
        };
        assert_eq!(with_ca.explain(&untrusted).key, CA_FILE);
        let system_roots = TlsFiles {
            ca: false,
            client: false,
        };
        assert_eq!(system_roots.explain(&untrusted).key, "hub.redis_url");
    }
}
