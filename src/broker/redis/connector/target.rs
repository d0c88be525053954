//! Which kind of Redis the settings describe, as the `redis` crate's client for it: one server
//! (`hub.redis_url`), a Sentinel-named master or a Cluster (`hub.redis_nodes`), each with the
//! credentials and certificates that apply to it; and opening a connection on it.

use std::time::Duration;

use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion,
    PushInfo, PushKind, TlsCertificates, TlsMode,
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
};
use secrecy::ExposeSecret;

use super::{Conn, ConnectorError, OnClosed, refuse, sentinel::Sentinel};
use crate::settings::{HubSettings, RedisMode};

/// A cluster node's connect gets this fraction of the whole connect's timeout.
const CLUSTER_NODE_SHARE: u32 = 3;

#[derive(Debug)]
pub(super) enum Target {
    // Boxed, like the cluster client: the enum stays the size of its smallest variants.
    Single {
        client: Box<redis::Client>,
        /// The same server over RESP3, which a watched connection needs: the `redis` crate tells
        /// of a closed connection only through RESP3's push channel.
        resp3: Box<redis::Client>,
    },
    Sentinel(Sentinel),
    // Boxed: the cluster client is several times the size of the others, and there is one Target.
    Cluster(Box<ClusterClient>),
}

impl Target {
    /// The client for `settings`, with the certificates already read from their files.
    pub(super) fn new(
        settings: &HubSettings,
        tls: Option<TlsCertificates>,
    ) -> Result<Self, ConnectorError> {
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
                let resp3 = info
                    .clone()
                    .set_redis_settings(redis.clone().set_protocol(ProtocolVersion::RESP3));
                info = info.set_redis_settings(redis);
                let client = |info: ConnectionInfo| {
                    match tls.clone() {
                        Some(certs) => redis::Client::build_with_tls(info, certs),
                        None => redis::Client::open(info),
                    }
                    .map(Box::new)
                    .map_err(|e| refuse("hub.redis_url", e))
                };
                Ok(Target::Single {
                    client: client(info)?,
                    resp3: client(resp3)?,
                })
            }
            RedisMode::Sentinel => {
                let sentinels = node_infos(settings)?;
                if settings.redis_master.is_empty() {
                    return Err(refuse(
                        "hub.redis_master",
                        "sentinel mode needs the master's name",
                    ));
                }
                Ok(Target::Sentinel(Sentinel::new(
                    sentinels,
                    settings.redis_master.clone(),
                    tls,
                    username,
                    password,
                )))
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

    /// Opens a connection, each step within the given timeouts (not all of them together).
    pub(super) async fn open(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
        on_closed: Option<OnClosed>,
    ) -> redis::RedisResult<Conn> {
        let mut config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout));
        let watched = on_closed.is_some();
        if let Some(on_closed) = on_closed {
            config = config.set_push_sender(move |push: PushInfo| {
                if push.kind == PushKind::Disconnection {
                    on_closed();
                }
                Ok::<(), std::convert::Infallible>(())
            });
        }
        Ok(match self {
            Target::Single { client, resp3 } => Conn::Single(
                if watched { resp3 } else { client }
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?,
            ),
            Target::Sentinel(sentinel) => Conn::Single(sentinel.connect(&config, watched).await?),
            // The client connects to every known node at once and goes on with those that
            // answer. A hung node (frozen, its replica not yet promoted) accepts the TCP connection
            // and never answers the handshake: with the whole connect's timeout per node, it
            // held every new connection past its deadline, so the writer never recovered after
            // a failover. A node gets a part of it; the rest is for asking the others for slots.
            Target::Cluster(client) => Conn::Cluster(
                client
                    .get_async_connection_with_config(
                        ClusterConfig::new()
                            .set_connection_timeout(connect_timeout / CLUSTER_NODE_SHARE)
                            .set_response_timeout(response_timeout),
                    )
                    .await?,
            ),
        })
    }
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
