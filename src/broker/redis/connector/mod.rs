//! How to reach Redis as managed services offer it: one server, the master a set of Sentinels
//! names, or a Cluster; over TLS (`rediss://`) with the system roots or a configured CA, an
//! optional client certificate, and ACL credentials from the URL or from their own settings.
//!
//! Everything here is the `redis` crate's own: its rustls TLS, its Sentinel client (which asks the
//! sentinels for the master and checks with `ROLE` that it is one) and its cluster client (which
//! follows `MOVED` and failovers). This module only turns settings into those clients, opens
//! connections with a timeout, and hides which kind it opened behind [`Conn`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{
    AsyncConnectionConfig, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisFuture, TlsCertificates, TlsMode, Value,
    aio::{ConnectionLike, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
    sentinel::{SentinelClientBuilder, SentinelServerType},
};
use secrecy::ExposeSecret;

use crate::settings::{HubSettings, RedisMode};

/// A setting that could not be turned into a way to reach Redis: the key, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub(crate) struct ConnectorError {
    pub(crate) key: &'static str,
    pub(crate) problem: String,
}

fn refuse(key: &'static str, problem: impl std::fmt::Display) -> ConnectorError {
    ConnectorError {
        key,
        problem: problem.to_string(),
    }
}

/// Opens connections to wherever the settings say Redis is.
#[derive(Debug)]
pub(crate) struct Connector {
    target: Target,
    /// Whether `hub.redis_ca_file` is set: the setting a certificate error names.
    ca_file: bool,
}

#[derive(Debug)]
enum Target {
    Single(redis::Client),
    Sentinel(Sentinel),
    // Boxed: the cluster client is several times the size of the others, and there is one Target.
    Cluster(Box<ClusterClient>),
}

/// What it takes to ask the sentinels for the master; a client is built per connect, so no lock
/// is ever shared between the writer and the reader.
#[derive(Debug)]
pub(crate) struct Sentinel {
    sentinels: Vec<ConnectionInfo>,
    master: String,
    tls: Option<TlsCertificates>,
    username: Option<String>,
    password: Option<secrecy::SecretString>,
}

/// An open connection, whichever kind; cheap to clone (both kinds multiplex).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// The replication id of the master that holds `key`: a promoted replica starts a new one, so
    /// a change means a failover (or a restart) that may have lost acknowledged appends. In a
    /// cluster it is asked of the master of `key`'s slot (which the cluster itself names).
    pub(crate) async fn master_of(&mut self, key: &str) -> redis::RedisResult<Option<String>> {
        let mut info = redis::cmd("INFO");
        info.arg("replication");
        let info: redis::InfoDict = match self {
            Conn::Single(c) => info.query_async(c).await?,
            Conn::Cluster(c) => {
                let slot: u16 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(key)
                    .query_async(c)
                    .await?;
                let route = Route::new(slot, SlotAddr::Master);
                let reply = c
                    .route_command(
                        info,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                redis::from_redis_value(reply)?
            }
        };
        Ok(info.get("master_replid"))
    }
}

/// The gap between Redis's clock and ours, measured when a connection opens, so a deadline we set
/// can be written in Redis's clock (see `link`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Redis's unix milliseconds minus ours, at the middle of the `TIME` round trip.
    offset_ms: i64,
    /// Half that round trip: how wrong `offset_ms` may be.
    error_ms: i64,
}

impl Clock {
    /// `at`, a moment on our monotonic clock, in Redis's unix milliseconds, early by the
    /// measurement's error so that Redis never sees it as later than it is.
    pub(crate) fn redis_ms(&self, at: Instant) -> i64 {
        let now = Instant::now();
        let ours = unix_ms_now()
            + i64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(i64::MAX / 4)
            - i64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX / 4);
        ours + self.offset_ms - self.error_ms
    }
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4))
}

impl Connector {
    /// Reads the settings (and the certificate files they name); connects nothing yet.
    pub(crate) fn new(settings: &HubSettings) -> Result<Self, ConnectorError> {
        // rustls needs one crypto provider for the process; `ring` is the one built in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            target: Target::new(settings)?,
            ca_file: settings.redis_ca_file.is_some(),
        })
    }
}

impl Target {
    fn new(settings: &HubSettings) -> Result<Self, ConnectorError> {
        let tls = certificates(settings)?;
        let username = settings.redis_username.clone();
        let password = settings.redis_password.clone();
        match settings.redis_mode {
            RedisMode::Standalone => {
                let mut info = settings
                    .redis_url
                    .expose_secret()
                    .into_connection_info()
                    .map_err(|e| refuse("hub.redis_url", e))?;
                let mut redis = info.redis_settings().clone();
                if let Some(username) = &username {
                    redis = redis.set_username(username);
                }
                if let Some(password) = &password {
                    redis = redis.set_password(password.expose_secret());
                }
                info = info.set_redis_settings(redis);
                let client = match tls {
                    Some(certs) => redis::Client::build_with_tls(info, certs),
                    None => redis::Client::open(info),
                };
                Ok(Target::Single(
                    client.map_err(|e| refuse("hub.redis_url", e))?,
                ))
            }
            RedisMode::Sentinel => {
                let sentinels = node_infos(settings)?;
                if settings.redis_master.is_empty() {
                    return Err(refuse(
                        "hub.redis_master",
                        "sentinel mode needs the master's name",
                    ));
                }
                Ok(Target::Sentinel(Sentinel {
                    sentinels,
                    master: settings.redis_master.clone(),
                    tls,
                    username,
                    password,
                }))
            }
            RedisMode::Cluster => {
                let nodes = node_infos(settings)?;
                let secure = nodes
                    .iter()
                    .any(|n| matches!(n.addr(), ConnectionAddr::TcpTls { .. }));
                let mut builder = ClusterClientBuilder::new(nodes);
                if let Some(username) = &username {
                    builder = builder.username(username);
                }
                if let Some(password) = &password {
                    builder = builder.password(password.expose_secret());
                }
                if secure {
                    builder = builder.tls(TlsMode::Secure);
                }
                if let Some(certs) = tls {
                    builder = builder.certs(certs);
                }
                Ok(Target::Cluster(Box::new(
                    builder.build().map_err(|e| refuse("hub.redis_nodes", e))?,
                )))
            }
        }
    }
}

impl Connector {
    /// Opens a connection whose replies may take up to `response_timeout`, giving up on the
    /// connect itself after `connect_timeout`; measures Redis's clock on it.
    pub(crate) async fn connect(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<(Conn, Clock), redis::RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout));
        let opening = async {
            Ok::<_, redis::RedisError>(match &self.target {
                Target::Single(client) => Conn::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                ),
                Target::Sentinel(sentinel) => Conn::Single(sentinel.connect(&config).await?),
                Target::Cluster(client) => Conn::Cluster(
                    client
                        .get_async_connection_with_config(
                            ClusterConfig::new()
                                .set_connection_timeout(connect_timeout)
                                .set_response_timeout(response_timeout),
                        )
                        .await?,
                ),
            })
        };
        // The crate bounds each step; this bounds them together (sentinel lookups, cluster slots).
        let mut conn = tokio::time::timeout(connect_timeout, opening)
            .await
            .map_err(|_| timed_out("connecting to redis"))??;
        let before = Instant::now();
        let ours_before = unix_ms_now();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
        let round_trip = i64::try_from(before.elapsed().as_millis()).unwrap_or(i64::MAX / 4);
        let theirs = secs * 1000 + micros / 1000;
        let clock = Clock {
            offset_ms: theirs - (ours_before + round_trip / 2),
            error_ms: round_trip / 2 + 1,
        };
        Ok((conn, clock))
    }

    /// Connects once, at start-up, to tell a configuration mistake (an untrusted certificate, wrong
    /// credentials, an ACL user without a command we need) from an outage: the first stops the
    /// start with the setting to fix; an unreachable Redis only keeps the instance unready until it
    /// is back.
    pub(crate) async fn probe(&self, timeout: Duration) -> Result<(), ConnectorError> {
        let Err(e) = self.connect(timeout, timeout).await else {
            return Ok(());
        };
        if let Some(tls) = tls_failure(&e) {
            let key = if self.ca_file {
                "hub.redis_ca_file"
            } else {
                "hub.redis_url"
            };
            return Err(refuse(
                key,
                format!(
                    "TLS with redis failed: {tls} (is the server's CA the one configured in hub.redis_ca_file?)"
                ),
            ));
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

impl Sentinel {
    async fn connect(
        &self,
        config: &AsyncConnectionConfig,
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
        builder
            .build()?
            .get_async_connection_with_config(config)
            .await
    }
}

/// The TLS error behind `error`: rustls reports through a `std::io::Error`, which the `redis`
/// crate keeps behind an `Arc`.
fn tls_failure(error: &redis::RedisError) -> Option<&rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let cause = std::error::Error::source(error)?;
    let io = match cause.downcast_ref::<Shared>() {
        Some(shared) => shared.downcast_ref::<std::io::Error>()?,
        None => cause.downcast_ref::<std::io::Error>()?,
    };
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// `hub.redis_nodes`, each a `redis://` or `rediss://` URL.
fn node_infos(settings: &HubSettings) -> Result<Vec<ConnectionInfo>, ConnectorError> {
    if settings.redis_nodes.is_empty() {
        return Err(refuse(
            "hub.redis_nodes",
            "sentinel and cluster modes need at least one node URL",
        ));
    }
    settings
        .redis_nodes
        .iter()
        .map(|url| {
            url.expose_secret()
                .into_connection_info()
                .map_err(|e| refuse("hub.redis_nodes", e))
        })
        .collect()
}

/// The CA and client certificate files, read once at start-up.
fn certificates(settings: &HubSettings) -> Result<Option<TlsCertificates>, ConnectorError> {
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
