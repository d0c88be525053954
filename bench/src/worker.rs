//! The worker process: opens its share of subscribers, reports `connected`, waits for the
//! coordinator's [`Collect`] on stdin, then reports the deliveries it saw as one `result` line.

use std::{
    collections::BTreeSet,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;

use crate::{
    auth,
    proto::{
        Collect, Connected, Outcome, Target, WorkerReport, WorkerSpec, cpu_ticks, new_histogram,
        to_pairs,
    },
    subscriber::{self, Endpoint, Tally, Transport},
};

/// Runs one worker to completion.
pub(crate) async fn run(spec: WorkerSpec) -> Result<(), String> {
    crate::raise_nofile_limit();
    let tally = Arc::new(Tally::new(spec.events));
    let stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let total = spec.ws + spec.sse;
    let mut pending = Vec::with_capacity(total);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let transport = if i < spec.ws {
            Transport::Ws
        } else {
            Transport::Sse
        };
        let authorization = match spec.target {
            Target::AdminPush => Some(format!(
                "Bearer {}",
                auth::mint(&spec.jwt_secret, &format!("bench_{}_{i}", spec.index))?
            )),
            Target::Nchan => None,
        };
        let endpoint = Endpoint {
            target: spec.target,
            port: spec.port,
            source: spec.sources[i % spec.sources.len().max(1)],
            transport,
            authorization,
            nchan_channel: spec.nchan_channel.clone(),
            timeout: Duration::from_millis(spec.connect_timeout_ms),
            ws_burst: spec.ws_burst,
            presence: (spec.presence_records > 0)
                .then(|| format!("order:o{}", i % spec.presence_records)),
        };
        // Hold a connect permit until this subscriber is ready (or failed), not for its lifetime.
        let (tally, stop, permits) = (tally.clone(), stop.clone(), permits.clone());
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel();
        tasks.spawn(async move {
            let Ok(permit) = permits.acquire_owned().await else {
                return;
            };
            let (inner_tx, inner_rx) = tokio::sync::oneshot::channel();
            let session = subscriber::run(endpoint, i, 3, tally, stop, inner_tx);
            let relay = async move {
                let outcome = inner_rx
                    .await
                    .unwrap_or_else(|_| Err("subscriber task ended".to_owned()));
                drop(permit);
                let _ = gate_tx.send(outcome);
            };
            tokio::join!(session, relay);
        });
        pending.push(gate_rx);
    }

    let mut connected = Connected::default();
    let mut connect_hist = new_histogram();
    let mut errors = BTreeSet::new();
    for gate in pending {
        match gate.await {
            Ok(Ok(took)) => {
                connected.ok += 1;
                connect_hist
                    .saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            Ok(Err(e)) => {
                connected.failed += 1;
                errors.insert(e);
            }
            Err(_) => {
                connected.failed += 1;
                errors.insert("subscriber task ended".to_owned());
            }
        }
    }
    connected.errors = errors.into_iter().take(5).collect();
    connected.connect_us = to_pairs(&connect_hist);
    let ok = connected.ok as u64;
    say(&WorkerReport::Connected(connected)).await?;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let collect: Collect = loop {
        match lines.next_line().await {
            Ok(Some(line)) if line.trim().is_empty() => {}
            Ok(Some(line)) => {
                break serde_json::from_str(&line).map_err(|e| format!("bad collect line: {e}"))?;
            }
            // The coordinator went away: nothing to report to.
            Ok(None) | Err(_) => {
                stop.cancel();
                return Ok(());
            }
        }
    };
    let deadline = Instant::now() + Duration::from_millis(collect.grace_ms);
    loop {
        let done =
            tally.complete.load(Ordering::Relaxed) + tally.closed_early.load(Ordering::Relaxed);
        if done >= ok || spec.events == 0 {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = tokio::time::timeout(
            left.min(Duration::from_millis(50)),
            tally.progress.notified(),
        )
        .await;
    }
    stop.cancel();
    let outcome = Outcome {
        delivered: tally.delivered.load(Ordering::Relaxed),
        duplicates: tally.duplicates.load(Ordering::Relaxed),
        unexpected: tally.unexpected.load(Ordering::Relaxed),
        resyncs: tally.resyncs.load(Ordering::Relaxed),
        closed_early: tally.closed_early.load(Ordering::Relaxed),
        complete: tally.complete.load(Ordering::Relaxed),
        latency_us: to_pairs(&tally.latency()),
        last_receipt_ns: tally.last_receipts(),
        cpu_ticks: cpu_ticks("self").unwrap_or(0),
    };
    say(&WorkerReport::Result(Box::new(outcome))).await?;
    // Closing thousands of sockets one by one is slow and measures nothing: just leave.
    std::process::exit(0);
}

async fn say(report: &WorkerReport) -> Result<(), String> {
    let mut line = serde_json::to_string(report).map_err(|e| format!("encode report: {e}"))?;
    line.push('\n');
    let mut out = tokio::io::stdout();
    out.write_all(line.as_bytes())
        .await
        .map_err(|e| format!("write report: {e}"))?;
    out.flush().await.map_err(|e| format!("flush report: {e}"))
}
