//! Reaching the master a set of Sentinels names: ask them on every connect (after a failover they
//! name another), with the sentinels' own credentials and the master's kept apart.

use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ProtocolVersion, TlsCertificates,
    TlsMode,
    aio::MultiplexedConnection,
    sentinel::{SentinelClientBuilder, SentinelServerType},
};
use secrecy::{ExposeSecret, SecretString};

/// What it takes to ask the sentinels for the master; a client is built per connect, so no lock
/// is ever shared between the writer and the reader.
#[derive(Debug)]
pub(super) struct Sentinel {
    pub(super) sentinels: Vec<ConnectionInfo>,
    pub(super) master: String,
    pub(super) tls: Option<TlsCertificates>,
    pub(super) username: Option<String>,
    pub(super) password: Option<SecretString>,
}

impl Sentinel {
    /// Connects to the master the sentinels name now; over RESP3 when `resp3` (a watched
    /// connection: see [`super::Connector::connect_watched`]).
    pub(super) async fn connect(
        &self,
        config: &AsyncConnectionConfig,
        resp3: bool,
    ) -> Result<MultiplexedConnection, redis::RedisError> {
        let secure = self
            .sentinels
            .iter()
            .any(|n| matches!(n.addr(), ConnectionAddr::TcpTls { .. }));
        let addrs = self.sentinels.iter().map(|n| n.addr().clone());
        let mut builder =
            SentinelClientBuilder::new(addrs, &self.master, SentinelServerType::Master)?;
        // Credentials in a sentinel URL are the sentinels'; the master's are the hub.redis_* ones.
        if let Some(first) = self.sentinels.first() {
            let redis = first.redis_settings();
            if let Some(username) = redis.username() {
                builder = builder.set_client_to_sentinel_username(username);
            }
            if let Some(password) = redis.password() {
                builder = builder.set_client_to_sentinel_password(password);
            }
        }
        if let Some(username) = &self.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.set_client_to_redis_password(password.expose_secret());
        }
        if secure {
            builder = builder
                .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                .set_client_to_redis_tls_mode(TlsMode::Secure);
        }
        if let Some(certs) = &self.tls {
            builder = builder
                .set_client_to_sentinel_certificates(certs.clone())
                .set_client_to_redis_certificates(certs.clone());
        }
        if resp3 {
            builder = builder.set_client_to_redis_protocol(ProtocolVersion::RESP3);
        }
        builder
            .build()?
            .get_async_connection_with_config(config)
            .await
    }
}
