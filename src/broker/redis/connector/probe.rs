//! Telling a configuration mistake from an outage, once, at start-up: an untrusted certificate,
//! wrong credentials or an ACL user without a command we need stop the start with the setting to
//! fix; an unreachable Redis only keeps the instance unready until it is back.

use std::time::Duration;

use super::{Connector, ConnectorError, refuse, tls};

impl Connector {
    /// Connects once and judges the failure, if any.
    pub(crate) async fn probe(&self, timeout: Duration) -> Result<(), ConnectorError> {
        let Err(e) = self.connect(timeout, timeout).await else {
            return Ok(());
        };
        if let Some(failure) = tls::failure(&e) {
            return Err(self.tls.explain(failure));
        }
        match e.code() {
            Some("WRONGPASS" | "NOAUTH") => {
                return Err(refuse(
                    "hub.redis_password",
                    format!(
                        "redis refused the credentials (hub.redis_username / hub.redis_password or the URL's): {}",
                        e.code().unwrap_or_default()
                    ),
                ));
            }
            Some("NOPERM") => {
                return Err(refuse(
                    "hub.redis_username",
                    format!(
                        "the ACL user may not run a command the service needs (see the documented ACL rules): {e}"
                    ),
                ));
            }
            _ => {}
        }
        if e.kind() == redis::ErrorKind::AuthenticationFailed {
            return Err(refuse(
                "hub.redis_password",
                "redis refused the credentials",
            ));
        }
        tracing::warn!(error = %e, "redis is not reachable yet; the instance stays unready until it is");
        Ok(())
    }
}
