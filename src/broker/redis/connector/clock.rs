//! Redis's clock against ours, measured when a connection opens, so that a deadline we set can be
//! written in Redis's clock (see `link`): an append checks its deadline on the server, where a
//! stalled reply cannot make it late.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Conn;

/// The gap between Redis's clock and ours, measured when a connection opens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Redis's unix milliseconds minus ours, at the middle of the `TIME` round trip.
    offset_ms: i64,
    /// Half that round trip: how wrong `offset_ms` may be.
    error_ms: i64,
}

impl Clock {
    /// Asks Redis for its `TIME` on `conn` and keeps how far it is from ours.
    pub(super) async fn measure(conn: &mut Conn) -> redis::RedisResult<Self> {
        let before = Instant::now();
        let ours_before = unix_ms_now();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
        let round_trip = i64::try_from(before.elapsed().as_millis()).unwrap_or(i64::MAX / 4);
        let theirs = secs * 1000 + micros / 1000;
        Ok(Self {
            offset_ms: theirs - (ours_before + round_trip / 2),
            error_ms: round_trip / 2 + 1,
        })
    }

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
