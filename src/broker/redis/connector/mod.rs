//! How to reach Redis as managed services offer it: one server, the master a set of Sentinels
//! names, or a Cluster; over TLS (`rediss://`) with the system roots or a configured CA, an
//! optional client certificate, and ACL credentials from the URL or from their own settings.
//!
//! Everything here is the `redis` crate's own: its rustls TLS, its Sentinel client (which asks the
//! sentinels for the master and checks with `ROLE` that it is one) and its cluster client (which
//! follows `MOVED` and failovers). This module only turns settings into those clients, opens
//! connections with a timeout, and hides which kind it opened behind [`Conn`]. One concern a file:
//! `target` (which kind of Redis, from the settings), `sentinel` (asking the sentinels), `tls`
//! (the certificate files, and whose certificate a failed handshake refused), `conn` (the open
//! connection), `clock` (Redis's clock against ours) and `probe` (a mistake or an outage?).

mod clock;
mod conn;
mod probe;
mod sentinel;
mod target;
mod tls;

use std::time::Duration;

pub(crate) use clock::Clock;
pub(crate) use conn::{Conn, History};

use crate::settings::HubSettings;

/// What a watched connection calls once it is found closed.
pub(crate) type OnClosed = std::sync::Arc<dyn Fn() + Send + Sync>;

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
    target: target::Target,
    /// Which certificate files are configured: the settings a failed handshake names.
    tls: tls::TlsFiles,
}

impl Connector {
    /// Reads the settings (and the certificate files they name); connects nothing yet.
    pub(crate) fn new(settings: &HubSettings) -> Result<Self, ConnectorError> {
        // rustls needs one crypto provider for the process; `ring` is the one built in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            target: target::Target::new(settings, tls::certificates(settings)?)?,
            tls: tls::TlsFiles::of(settings),
        })
    }

    /// Opens a connection whose replies may take up to `response_timeout`, giving up on the
    /// connect itself after `connect_timeout`; measures Redis's clock on it.
    pub(crate) async fn connect(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<(Conn, Clock), redis::RedisError> {
        self.open(connect_timeout, response_timeout, None).await
    }

    /// [`Self::connect`], and `on_closed` is called as soon as the connection is found closed
    /// (Redis went away, the socket broke), before a call has to fail on it. One server or a
    /// Sentinel-named master only: a cluster connection repairs itself.
    pub(crate) async fn connect_watched(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
        on_closed: OnClosed,
    ) -> Result<(Conn, Clock), redis::RedisError> {
        self.open(connect_timeout, response_timeout, Some(on_closed))
            .await
    }

    async fn open(
        &self,
        connect_timeout: Duration,
        response_timeout: Duration,
        on_closed: Option<OnClosed>,
    ) -> Result<(Conn, Clock), redis::RedisError> {
        // The crate bounds each step; this bounds them together (sentinel lookups, cluster slots,
        // and the clock's `TIME`, which a cluster may send to a node that hangs).
        tokio::time::timeout(connect_timeout, async {
            let mut conn = self
                .target
                .open(connect_timeout, response_timeout, on_closed)
                .await?;
            let clock = Clock::measure(&mut conn).await?;
            Ok((conn, clock))
        })
        .await
        .map_err(|_| timed_out("connecting to redis"))?
    }
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}
