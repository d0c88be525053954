//! Reaching the master a set of Sentinels names: ask them on every connect (after a failover they
//! name another), with the sentinels' own credentials and the master's kept apart; and
//! subscribing to one sentinel's announcements.
//!
//! The sentinels are asked in order, and the first one that names a master that says it is one
//! (`ROLE`) wins. After a switch, the sentinel that announced it is asked first: the others may
//! still name the old master for a while, and the old master claims the role until it is demoted.

use std::sync::atomic::{AtomicUsize, Ordering};

use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ProtocolVersion, TlsCertificates,
    TlsMode,
    aio::{MultiplexedConnection, PubSub},
    sentinel::{SentinelClientBuilder, SentinelServerType},
};
use secrecy::{ExposeSecret, SecretString};

use super::target::Target;

/// What it takes to ask the sentinels for the master; a client is built per connect, so no lock
/// is ever shared between the writer and the reader.
#[derive(Debug)]
pub(crate) struct Sentinel {
    sentinels: Vec<ConnectionInfo>,
    master: String,
    tls: Option<TlsCertificates>,
    username: Option<String>,
    password: Option<SecretString>,
    /// The sentinel asked first.
    first: AtomicUsize,
}

impl super::Connector {
    /// The sentinels, in Sentinel mode.
    pub(crate) fn sentinel(&self) -> Option<&Sentinel> {
        match &self.target {
            Target::Sentinel(sentinel) => Some(sentinel),
            _ => None,
        }
    }
}

impl Sentinel {
    pub(super) fn new(
        sentinels: Vec<ConnectionInfo>,
        master: String,
        tls: Option<TlsCertificates>,
        username: Option<String>,
        password: Option<SecretString>,
    ) -> Self {
        Self {
            sentinels,
            master,
            tls,
            username,
            password,
            first: AtomicUsize::new(0),
        }
    }

    /// The master's name in the sentinels' configuration.
    pub(crate) fn master(&self) -> &str {
        &self.master
    }

    /// How many sentinels there are.
    pub(crate) fn count(&self) -> usize {
        self.sentinels.len()
    }

    /// Asks the `index`th sentinel first from now on.
    pub(crate) fn prefer(&self, index: usize) {
        self.first.store(index, Ordering::Relaxed);
    }

    /// A connection to the `index`th sentinel, with its own credentials, subscribed to `channel`.
    pub(crate) async fn subscribe(
        &self,
        index: usize,
        channel: &str,
    ) -> Result<PubSub, redis::RedisError> {
        let info = self.sentinels[index].clone();
        let client = match self.tls.clone() {
            Some(certs) => redis::Client::build_with_tls(info, certs)?,
            None => redis::Client::open(info)?,
        };
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub)
    }

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
        let first = self.first.load(Ordering::Relaxed);
        let addrs = self
            .sentinels
            .iter()
            .cycle()
            .skip(first)
            .take(self.sentinels.len())
            .map(|n| n.addr().clone());
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
