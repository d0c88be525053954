//! What the coordinator and its worker processes say to each other.
//!
//! The coordinator re-executes its own binary with `--worker-spec <JSON>` (a [`WorkerSpec`]). The worker
//! answers on stdout with one JSON line per [`WorkerReport`]: first `connected` once every subscriber has
//! its `ready` (or failed), then `result` after the coordinator wrote a [`Collect`] line to its stdin.

use std::net::Ipv4Addr;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Which server the tool talks to; decides URL shapes and what counts as "ready".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Target {
    /// admin-push: `/admin-ws`, `/admin-sse`, Bearer JWT, `ready` control event first.
    AdminPush,
    /// Nchan: `/sub/<channel>` for both transports, `/pub/<channel>` to publish, no auth.
    Nchan,
}

impl Target {
    /// The name used on the command line and in the JSON line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::AdminPush => "admin-push",
            Self::Nchan => "nchan",
        }
    }
}

/// Everything one worker process needs to open and watch its share of the subscribers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WorkerSpec {
    pub(crate) index: usize,
    pub(crate) target: Target,
    pub(crate) port: u16,
    pub(crate) ws: usize,
    pub(crate) sse: usize,
    /// Local addresses to bind before connecting, used round-robin.
    pub(crate) sources: Vec<Ipv4Addr>,
    pub(crate) jwt_secret: String,
    pub(crate) nchan_channel: String,
    /// Events the coordinator will emit; sequence numbers run `0..events`.
    pub(crate) events: u64,
    pub(crate) connect_concurrency: usize,
    pub(crate) connect_timeout_ms: u64,
    /// Bytes each WebSocket subscriber sends in one binary frame once connected (0: none).
    #[serde(default)]
    pub(crate) ws_burst: usize,
    /// Records the WebSocket subscribers report as viewed, spread evenly (0: presence off).
    #[serde(default)]
    pub(crate) presence_records: usize,
}

/// Coordinator → worker (stdin): emitting is over, report within `grace_ms`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Collect {
    pub(crate) grace_ms: u64,
}

/// Worker → coordinator (stdout), one JSON object per line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum WorkerReport {
    Connected(Connected),
    Result(Box<Outcome>),
}

/// Connect phase of one worker.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Connected {
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    /// A few distinct failure messages, for the summary.
    pub(crate) errors: Vec<String>,
    /// Connect → `ready` time, µs, as `[value, count]` pairs.
    pub(crate) connect_us: Vec<(u64, u64)>,
}

/// Delivery phase of one worker.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub(crate) delivered: u64,
    pub(crate) duplicates: u64,
    pub(crate) unexpected: u64,
    pub(crate) resyncs: u64,
    /// Subscribers whose connection ended before the collect.
    pub(crate) closed_early: u64,
    /// Subscribers that received every event.
    pub(crate) complete: u64,
    /// Per-delivery latency, µs, as `[value, count]` pairs.
    pub(crate) latency_us: Vec<(u64, u64)>,
    /// Per sequence number: the latest receipt (unix ns) in this worker, 0 when none.
    pub(crate) last_receipt_ns: Vec<u64>,
    /// CPU time this worker used (user + system), in clock ticks.
    pub(crate) cpu_ticks: u64,
}

/// A histogram in µs (or any unit) from 1 to one hour with 3 significant figures.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Flattens a histogram into `[value, count]` pairs for the wire.
pub(crate) fn to_pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Adds wire pairs into a histogram.
pub(crate) fn add_pairs(h: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for &(value, count) in pairs {
        h.saturating_record_n(value, count);
    }
}

/// The id carried in each bench event's `data.id`: `bench-<seq>-<send unix ns>`.
pub(crate) fn marker(seq: u64, sent_ns: u64) -> String {
    format!("bench-{seq}-{sent_ns}")
}

/// Finds a [`marker`] in a received frame or SSE data line and returns `(seq, sent_ns)`.
pub(crate) fn parse_marker(text: &str) -> Option<(u64, u64)> {
    let start = text.find("bench-")? + "bench-".len();
    let rest = &text[start..];
    let dash = rest.find('-')?;
    let seq = rest[..dash].parse().ok()?;
    let tail = &rest[dash + 1..];
    let end = tail
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(tail.len());
    let sent = tail[..end].parse().ok()?;
    Some((seq, sent))
}

/// Nanoseconds since the Unix epoch, from the wall clock all processes on the host share.
pub(crate) fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// CPU time (user + system) of a process from `/proc/<pid>/stat`, in clock ticks.
pub(crate) fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "pid (comm)".
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_inside_a_frame() {
        let frame = format!(
            r#"{{"id":"1-2","event":"product.updated","data":{{"id":"{}"}}}}"#,
            marker(42, 1_700_000_000_123_456_789)
        );
        assert_eq!(parse_marker(&frame), Some((42, 1_700_000_000_123_456_789)));
        assert_eq!(parse_marker(r#"{"event":"ready"}"#), None);
    }

    #[test]
    fn own_cpu_ticks_are_readable() {
        assert!(cpu_ticks("self").is_some());
    }
}
