//! One scenario end to end: spread the subscribers over worker processes, wait until all are `ready`,
//! sample the server's idle RSS, publish, collect every worker's deliveries and merge them.
//! Also the `--max-rate` search, which repeats short scenarios at rising rates.

use std::{
    net::Ipv4Addr,
    process::Stdio,
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

use crate::{
    emitter::{self, EmitPlan},
    proto::{
        Collect, Outcome, Target, WorkerReport, WorkerSpec, add_pairs, cpu_ticks, new_histogram,
    },
    report::{Quantiles, ScenarioResult, ServerUsage},
    server::{Server, TICKS_PER_SEC},
};

/// The knobs of one scenario (the CLI resolved).
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) target: Target,
    pub(crate) port: u16,
    /// Where events are published: `port` unless `--emit-url` names another instance.
    pub(crate) emit_port: u16,
    pub(crate) ws: usize,
    pub(crate) sse: usize,
    pub(crate) procs: usize,
    pub(crate) sources: usize,
    pub(crate) events: u64,
    pub(crate) rate: f64,
    pub(crate) emit_concurrency: usize,
    pub(crate) idle: Duration,
    pub(crate) grace: Duration,
    pub(crate) jwt_secret: String,
    pub(crate) internal_secret: String,
    pub(crate) nchan_channel: String,
    pub(crate) connect_concurrency: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) ws_burst: usize,
    pub(crate) presence_records: usize,
}

/// A running worker process and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn spawn(spec: &WorkerSpec) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        let spec = serde_json::to_string(spec).map_err(|e| format!("encode spec: {e}"))?;
        let mut child = Command::new(exe)
            .arg("--worker-spec")
            .arg(spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        let stdin = child.stdin.take().ok_or("worker stdin missing")?;
        let stdout = child.stdout.take().ok_or("worker stdout missing")?;
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    async fn next_report(&mut self) -> Result<WorkerReport, String> {
        let line = self
            .lines
            .next_line()
            .await
            .map_err(|e| format!("worker output: {e}"))?
            .ok_or("a worker exited without reporting")?;
        serde_json::from_str(&line).map_err(|e| format!("worker report: {e}"))
    }
}

/// Splits `n` into `parts` nearly equal shares.
fn share(n: usize, parts: usize, index: usize) -> usize {
    n / parts + usize::from(index < n % parts)
}

/// Runs one scenario against `server`.
pub(crate) async fn run(scenario: &Scenario, server: &Server) -> Result<ScenarioResult, String> {
    let began = Instant::now();
    let client_ticks_before = cpu_ticks("self").unwrap_or(0);
    let rss_before = server.rss_kb();
    let sources: Vec<Ipv4Addr> = (1..=scenario.sources.max(1))
        .map(|k| Ipv4Addr::new(127, 0, 0, u8::try_from(k).unwrap_or(u8::MAX)))
        .collect();
    let procs = scenario.procs.max(1);
    // A fresh Nchan channel per run, so no message buffered by an earlier run reaches a subscriber.
    let mut scenario = scenario.clone();
    if scenario.target == Target::Nchan {
        scenario.nchan_channel = format!("{}{}", scenario.nchan_channel, crate::proto::unix_ns());
    }
    let scenario = &scenario;
    let mut workers = Vec::with_capacity(procs);
    for index in 0..procs {
        let spec = WorkerSpec {
            index,
            target: scenario.target,
            port: scenario.port,
            ws: share(scenario.ws, procs, index),
            sse: share(scenario.sse, procs, index),
            sources: sources.clone(),
            jwt_secret: scenario.jwt_secret.clone(),
            nchan_channel: scenario.nchan_channel.clone(),
            events: scenario.events,
            connect_concurrency: scenario.connect_concurrency,
            connect_timeout_ms: u64::try_from(scenario.connect_timeout.as_millis())
                .unwrap_or(u64::MAX),
            ws_burst: scenario.ws_burst,
            presence_records: scenario.presence_records,
        };
        workers.push(Worker::spawn(&spec)?);
    }

    let mut result = ScenarioResult {
        scenario: scenario.name.clone(),
        target: scenario.target.name().to_owned(),
        subscribers: scenario.ws + scenario.sse,
        ws: scenario.ws,
        sse: scenario.sse,
        procs,
        sources: sources.len(),
        events: scenario.events,
        rate_requested: scenario.rate,
        ..ScenarioResult::default()
    };
    let mut connect = new_histogram();
    for worker in &mut workers {
        match worker.next_report().await? {
            WorkerReport::Connected(c) => {
                result.connected += c.ok;
                result.connect_failed += c.failed;
                result.connect_errors.extend(c.errors);
                add_pairs(&mut connect, &c.connect_us);
            }
            WorkerReport::Result(_) => return Err("a worker reported out of order".to_owned()),
        }
    }
    result.connect_errors.sort();
    result.connect_errors.dedup();
    result.connect_ms = Quantiles::of(&connect);
    result.connect_wall_s = began.elapsed().as_secs_f64();

    tokio::time::sleep(scenario.idle).await;
    let rss_idle = server.rss_kb();
    let server_ticks_before = server.cpu_ticks();
    let emit_began = Instant::now();

    let emitted = emitter::run(EmitPlan {
        target: scenario.target,
        port: scenario.emit_port,
        internal_secret: scenario.internal_secret.clone(),
        nchan_channel: scenario.nchan_channel.clone(),
        events: scenario.events,
        rate: scenario.rate,
        concurrency: scenario.emit_concurrency,
    })
    .await?;

    let collect = serde_json::to_string(&Collect {
        grace_ms: u64::try_from(scenario.grace.as_millis()).unwrap_or(u64::MAX),
    })
    .map_err(|e| format!("encode collect: {e}"))?;
    for worker in &mut workers {
        worker
            .stdin
            .write_all(format!("{collect}\n").as_bytes())
            .await
            .map_err(|e| format!("tell a worker to collect: {e}"))?;
        worker
            .stdin
            .flush()
            .await
            .map_err(|e| format!("tell a worker to collect: {e}"))?;
    }
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(procs);
    for worker in &mut workers {
        match worker.next_report().await? {
            WorkerReport::Result(outcome) => outcomes.push(*outcome),
            WorkerReport::Connected(_) => return Err("a worker reported twice".to_owned()),
        }
    }
    let delivery_wall = emit_began.elapsed();
    let server_ticks_after = server.cpu_ticks();
    let rss_after = server.rss_kb();
    let mut worker_ticks = 0;
    for worker in &mut workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker.child.wait()).await;
        let _ = worker.child.start_kill();
    }

    // Merge deliveries.
    let mut latency = new_histogram();
    let mut last_receipt = vec![0u64; emitted.sent_ns.len()];
    for outcome in &outcomes {
        result.delivered += outcome.delivered;
        result.duplicates += outcome.duplicates;
        result.unexpected += outcome.unexpected;
        result.resyncs += outcome.resyncs;
        result.closed_early += outcome.closed_early;
        worker_ticks += outcome.cpu_ticks;
        add_pairs(&mut latency, &outcome.latency_us);
        for (slot, &t) in last_receipt.iter_mut().zip(&outcome.last_receipt_ns) {
            *slot = (*slot).max(t);
        }
    }
    let mut fanout = new_histogram();
    for (&sent, &last) in emitted.sent_ns.iter().zip(&last_receipt) {
        if sent > 0 && last > 0 {
            fanout.saturating_record((last.saturating_sub(sent) / 1_000).max(1));
        }
    }
    result.emitted_ok = emitted.ok;
    result.emit_failed = emitted.failed;
    result.emit_error = emitted.first_error;
    result.rate_achieved = if emitted.wall.is_zero() {
        0.0
    } else {
        emitted.ok as f64 / emitted.wall.as_secs_f64()
    };
    result.expected = emitted.ok * result.connected as u64;
    result.lost = result.expected.saturating_sub(result.delivered);
    result.latency_ms = Quantiles::of(&latency);
    result.fanout_ms = Quantiles::of(&fanout);
    result.emit_ms = Quantiles::of(&emitted.answer_us);

    let server_cpu_s = match (server_ticks_before, server_ticks_after) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / TICKS_PER_SEC),
        _ => None,
    };
    result.server = ServerUsage {
        pids: server.pids.clone(),
        rss_before_kb: rss_before,
        rss_idle_kb: rss_idle,
        rss_after_kb: rss_after,
        rss_peak_kb: server.peak_rss_kb(),
        bytes_per_idle_conn: match (rss_before, rss_idle) {
            (Some(a), Some(b)) if result.connected > 0 => {
                Some((b as f64 - a as f64) * 1024.0 / result.connected as f64)
            }
            _ => None,
        },
        cpu_pct: server_cpu_s.map(|s| 100.0 * s / delivery_wall.as_secs_f64()),
        cpu_ms_per_1k_deliveries: server_cpu_s
            .filter(|_| result.delivered > 0)
            .map(|s| s * 1000.0 * 1000.0 / result.delivered as f64),
    };
    let client_ticks = cpu_ticks("self")
        .unwrap_or(0)
        .saturating_sub(client_ticks_before)
        + worker_ticks;
    result.wall_s = began.elapsed().as_secs_f64();
    result.client_cpu_pct = 100.0 * client_ticks as f64 / TICKS_PER_SEC / result.wall_s;
    Ok(result)
}

/// One step of the `--max-rate` search.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Trial {
    pub(crate) rate: f64,
    pub(crate) rate_achieved: f64,
    pub(crate) p99_ms: f64,
    pub(crate) lost: u64,
    pub(crate) resyncs: u64,
    pub(crate) pass: bool,
}

/// The `--max-rate` answer: the highest passing rate and every trial on the way.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MaxRate {
    pub(crate) scenario: String,
    pub(crate) target: String,
    pub(crate) subscribers: usize,
    pub(crate) ws: usize,
    pub(crate) sse: usize,
    pub(crate) p99_budget_ms: f64,
    pub(crate) max_rate: f64,
    pub(crate) best: Option<ScenarioResult>,
    pub(crate) trials: Vec<Trial>,
}

/// Finds the highest rate whose trial is clean and keeps delivery p99 within `budget_ms`:
/// doubles from `base.rate` until a trial fails, then bisects `steps` times.
pub(crate) async fn max_rate(
    base: &Scenario,
    server: &Server,
    trial: Duration,
    budget_ms: f64,
    steps: u32,
) -> Result<MaxRate, String> {
    let mut answer = MaxRate {
        scenario: base.name.clone(),
        target: base.target.name().to_owned(),
        subscribers: base.ws + base.sse,
        ws: base.ws,
        sse: base.sse,
        p99_budget_ms: budget_ms,
        max_rate: 0.0,
        best: None,
        trials: Vec::new(),
    };
    let attempt = async |rate: f64, answer: &mut MaxRate| -> Result<bool, String> {
        let mut scenario = base.clone();
        scenario.rate = rate;
        scenario.events = (rate * trial.as_secs_f64()).ceil() as u64;
        scenario.idle = Duration::from_millis(200);
        let result = run(&scenario, server).await?;
        let pass = result.clean()
            && result.latency_ms.p99 <= budget_ms
            && result.rate_achieved >= 0.95 * rate;
        eprintln!(
            "max-rate trial {rate:.0}/s: achieved {:.0}/s, p99 {:.3} ms, lost {}, resyncs {} -> {}",
            result.rate_achieved,
            result.latency_ms.p99,
            result.lost,
            result.resyncs,
            if pass { "pass" } else { "fail" }
        );
        answer.trials.push(Trial {
            rate,
            rate_achieved: result.rate_achieved,
            p99_ms: result.latency_ms.p99,
            lost: result.lost,
            resyncs: result.resyncs,
            pass,
        });
        if pass && rate > answer.max_rate {
            answer.max_rate = rate;
            answer.best = Some(result);
        }
        Ok(pass)
    };
    let (mut good, mut bad) = (0.0, f64::INFINITY);
    let mut rate = base.rate.max(1.0);
    while bad.is_infinite() && rate <= 1_000_000.0 {
        if attempt(rate, &mut answer).await? {
            good = rate;
            rate *= 2.0;
        } else {
            bad = rate;
        }
    }
    for _ in 0..steps {
        if bad.is_infinite() || bad - good <= good * 0.05 {
            break;
        }
        let mid = ((good + bad) / 2.0).round();
        if attempt(mid, &mut answer).await? {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(answer)
}
