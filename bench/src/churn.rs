//! Connect/disconnect churn: opens and closes subscribers many times over, then checks that the
//! server let go of every one of them: its connection gauge back to exactly zero, its memory back
//! near where it stood after a warm-up.
//!
//! Each cycle connects, waits for `ready` and closes the socket (a tab closed by its user). The
//! gauge is read from `/metrics` (admin-push only); how long it takes to reach zero after the last
//! close is reported, not asserted.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde::Serialize;

use crate::{
    auth,
    coordinator::Scenario,
    proto::Target,
    server::Server,
    subscriber::{self, Endpoint, Transport},
};

/// How long to wait for the gauge to fall back to zero after the last close.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// The JSON line of a churn run.
#[derive(Debug, Serialize)]
pub(crate) struct ChurnReport {
    scenario: String,
    target: &'static str,
    cycles: usize,
    failed: usize,
    seconds: f64,
    /// Server RSS before the first connection, after the warm-up, and once the gauge read zero.
    rss_start_kb: Option<u64>,
    rss_warm_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    peak_rss_kb: Option<u64>,
    /// Open connections by the server's own gauge once settled (admin-push only).
    gauge_after: Option<u64>,
    /// Last close → gauge at zero, ms.
    settle_ms: Option<u64>,
}

impl ChurnReport {
    /// Every cycle reached `ready` and the server's gauge (where it has one) came back to zero.
    pub(crate) fn clean(&self) -> bool {
        self.failed == 0 && self.gauge_after.is_none_or(|open| open == 0)
    }
}

/// Runs `cycles` connect/close cycles, `scenario.connect_concurrency` at a time; the first tenth
/// (at most 1,000) warms the server up before its memory is taken as the baseline.
pub(crate) async fn run(
    scenario: &Scenario,
    server: &Server,
    cycles: usize,
) -> Result<ChurnReport, String> {
    let rss_start_kb = server.rss_kb();
    let warm_up = (cycles / 10).min(1000);
    let started = Instant::now();
    let mut failed = cycles_of(scenario, 0..warm_up).await?;
    let rss_warm_kb = server.rss_kb();
    failed += cycles_of(scenario, warm_up..cycles).await?;
    let seconds = started.elapsed().as_secs_f64();
    let closed = Instant::now();
    let (gauge_after, settle_ms) = match scenario.target {
        Target::AdminPush => settle(scenario.port, closed).await?,
        Target::Nchan => (None, None),
    };
    let report = ChurnReport {
        scenario: scenario.name.clone(),
        target: scenario.target.name(),
        cycles,
        failed,
        seconds,
        rss_start_kb,
        rss_warm_kb,
        rss_after_kb: server.rss_kb(),
        peak_rss_kb: server.peak_rss_kb(),
        gauge_after,
        settle_ms,
    };
    eprintln!(
        "churn: {cycles} cycles ({failed} failed) in {seconds:.1}s; gauge after {gauge_after:?} \
         (settled in {settle_ms:?} ms); RSS {rss_start_kb:?} → warm {rss_warm_kb:?} → after \
         {:?} KiB (peak {:?})",
        report.rss_after_kb, report.peak_rss_kb
    );
    Ok(report)
}

/// Runs the cycles numbered `range`; returns how many failed to reach `ready`.
async fn cycles_of(scenario: &Scenario, range: std::ops::Range<usize>) -> Result<usize, String> {
    let transports = match (scenario.ws > 0, scenario.sse > 0) {
        (true, true) => vec![Transport::Ws, Transport::Sse],
        (false, true) => vec![Transport::Sse],
        _ => vec![Transport::Ws],
    };
    let lanes = scenario.connect_concurrency.max(1);
    // One token per lane, so the per-admin limit never counts a closing tab against a new one.
    let tokens = (0..lanes)
        .map(|lane| match scenario.target {
            Target::AdminPush => auth::mint(&scenario.jwt_secret, &format!("churn_{lane}"))
                .map(|token| Some(format!("Bearer {token}"))),
            Target::Nchan => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let failed = futures_util::stream::iter(range)
        .map(|i| {
            let endpoint = Endpoint {
                target: scenario.target,
                port: scenario.port,
                source: Ipv4Addr::new(127, 0, 0, 1 + (i % scenario.sources.max(1)) as u8),
                transport: transports[i % transports.len()],
                authorization: tokens[i % lanes].clone(),
                nchan_channel: scenario.nchan_channel.clone(),
                timeout: scenario.connect_timeout,
                ws_burst: scenario.ws_burst,
                presence: None,
            };
            async move { subscriber::open_and_close(&endpoint).await.is_err() }
        })
        .buffer_unordered(lanes)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    Ok(failed)
}

/// Polls the server's connection gauge until it reads zero (or [`SETTLE_LIMIT`] passes).
async fn settle(port: u16, closed: Instant) -> Result<(Option<u64>, Option<u64>), String> {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    loop {
        let text = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("metrics: {e}"))?
            .text()
            .await
            .map_err(|e| format!("metrics: {e}"))?;
        let open: u64 = text
            .lines()
            .filter(|line| line.starts_with("admin_push_connections{"))
            .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
            .sum();
        let waited = closed.elapsed();
        if open == 0 || waited > SETTLE_LIMIT {
            let settled = (open == 0).then(|| u64::try_from(waited.as_millis()).unwrap_or(0));
            return Ok((Some(open), settled));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
