//! The connection to Redis, set up in one place: the client, its timeouts, the shared writer
//! connection, and the names of our keys.
//!
//! The broker's appends and the ticket store's commands run on one multiplexed writer connection
//! (concurrent callers pipeline on it instead of queueing); the stream reader opens its own, since
//! `XREAD BLOCK` would hold a shared one hostage. Anything about reaching Redis (TLS, Sentinel,
//! per-call deadlines) belongs here.

use std::{sync::Arc, time::Duration};

use redis::{AsyncConnectionConfig, aio::MultiplexedConnection};
use secrecy::ExposeSecret;

use crate::settings::HubSettings;

/// A caller waits this long for Redis before it gives up (an emit then answers 503).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("redis")]
    Redis(#[from] redis::RedisError),
    #[error("redis returned an id that is not a stream id: {0:?}")]
    BadId(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Link {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: redis::Client,
    stream_key: String,
    writer: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Link {
    /// Checks the URL; connects lazily, on first use.
    pub(crate) fn open(settings: &HubSettings) -> Result<Self, redis::RedisError> {
        Ok(Self {
            inner: Arc::new(Inner {
                client: redis::Client::open(settings.redis_url.expose_secret())?,
                stream_key: settings.stream_key.clone(),
                writer: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// A connection of its own, whose replies may take up to `response_timeout`.
    pub(crate) async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<MultiplexedConnection, LinkError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        Ok(self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?)
    }

    pub(crate) fn stream_key(&self) -> &str {
        &self.inner.stream_key
    }

    /// Our other keys live under the stream key, so they never collide with Medusa's.
    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.inner.stream_key)
    }

    /// Runs `pipe` on the shared writer connection, connecting first if needed.
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, LinkError> {
        let mut connection = {
            let mut writer = self.inner.writer.lock().await;
            match writer.as_ref() {
                Some(connection) => connection.clone(),
                None => writer.insert(self.connect(WRITE_TIMEOUT).await?).clone(),
            }
        };
        match pipe.query_async(&mut connection).await {
            Ok(value) => Ok(value),
            Err(e) => {
                // Reconnect on the next call rather than reuse a connection in an unknown state.
                *self.inner.writer.lock().await = None;
                Err(e.into())
            }
        }
    }
}

pub(crate) fn parse_id(id: &str) -> Result<crate::protocol::EventId, LinkError> {
    id.parse().map_err(|_| LinkError::BadId(id.to_owned()))
}
