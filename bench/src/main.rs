//! `admin-push-bench`: the load tool for admin-push.
//!
//! It opens `--ws N` WebSocket and `--sse N` SSE subscribers (each with its own admin JWT, spread over
//! `--sources k` loopback source addresses and `--procs P` worker processes), publishes `--events M`
//! at `--rate R` through `POST /internal/emit`, and measures per-delivery latency, per-event fan-out
//! time, emit answer time, loss, resyncs, connect time, and the server's RSS and CPU.
//!
//! The server is a black box over HTTP: started by the tool (`--spawn-server PATH`, preferred: the tool
//! then controls its configuration) or already running (`--url`, optionally `--server-pid`). Only
//! loopback targets are accepted. A human summary goes to stderr, one JSON line to stdout.
//!
//! Modules: [`coordinator`] runs a scenario, [`worker`] is the re-executed subscriber process,
//! [`subscriber`] one connection, [`emitter`] the publisher, [`server`] the process under test,
//! [`report`] the output, [`proto`] what the processes exchange, [`auth`] the bench JWTs.

mod auth;
mod churn;
mod coordinator;
mod emitter;
mod proto;
mod report;
mod server;
mod subscriber;
mod worker;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;

use crate::{
    coordinator::Scenario,
    proto::{Target, WorkerSpec},
    server::{Server, SpawnConfig},
};

/// Load tool for admin-push: subscribers over WebSocket/SSE, events through /internal/emit.
#[derive(Debug, Parser)]
#[command(name = "admin-push-bench", version, about)]
struct Cli {
    /// WebSocket subscribers.
    #[arg(long, default_value_t = 0)]
    ws: usize,
    /// SSE subscribers.
    #[arg(long, default_value_t = 0)]
    sse: usize,
    /// Events to publish (sequence numbers 0..M). With --duration instead: rate × duration.
    #[arg(long)]
    events: Option<u64>,
    /// Events per second; 0 = as fast as --emit-concurrency connections go.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Publish for this many seconds (sets --events to rate × duration).
    #[arg(long)]
    duration: Option<f64>,
    /// Concurrent emit connections.
    #[arg(long, default_value_t = 4)]
    emit_concurrency: usize,
    /// Source addresses 127.0.0.1 … 127.0.0.k the subscribers bind to (≈28k connections each).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    sources: u8,
    /// Worker processes for the subscribers (raised automatically past ~15k connections each).
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// Subscribers connecting at once per worker.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Per subscriber: seconds to get to `ready` (per attempt, 3 attempts).
    #[arg(long, default_value_t = 20)]
    connect_timeout: u64,
    /// Bytes each WebSocket subscriber sends as one binary frame once connected, before the idle
    /// period (what a server keeps after inbound traffic; admin-push ignores binary frames).
    #[arg(long, default_value_t = 0)]
    ws_burst: usize,
    /// Presence on: each WebSocket subscriber reports one of this many records (`order:o<i % N>`)
    /// as viewed once connected, so every record has about ws/N viewers (0: presence off).
    #[arg(long, default_value_t = 0)]
    presence_records: usize,
    /// Instead of a delivery run: this many connect/close cycles (transports as --ws/--sse say,
    /// --connect-concurrency at a time), then the server's gauge and RSS.
    #[arg(long)]
    churn: Option<usize>,
    /// Seconds to hold the subscribers idle before sampling RSS and publishing.
    #[arg(long, default_value_t = 2.0)]
    idle: f64,
    /// Seconds subscribers may still receive after the last emit answer.
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// Give up on the whole run after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Which server: admin-push, or nginx+Nchan for comparison.
    #[arg(long, value_enum, default_value_t = Target::AdminPush)]
    target: Target,
    /// Base URL of a running server (loopback only). Ignored with --spawn-server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Publish to this instance instead of `--url` (loopback only): with both on one Redis
    /// backplane, every delivery crosses instances.
    #[arg(long)]
    emit_url: Option<String>,
    /// Start this admin-push binary with a bench configuration (preferred).
    #[arg(long)]
    spawn_server: Option<PathBuf>,
    /// Port for --spawn-server.
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Extra KEY=VALUE environment for --spawn-server (repeatable), e.g. ADMIN_PUSH__HUB__BUFFER=4096.
    #[arg(long)]
    server_env: Vec<String>,
    /// Pid of a running server to sample (RSS, CPU), when not spawned; repeat it for a server of
    /// several processes (e.g. each nginx worker), which is sampled as their sum.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// HS256 secret the server verifies admin JWTs with.
    #[arg(long, env = "BENCH_JWT_SECRET", default_value = "supersecret")]
    jwt_secret: String,
    /// Bearer secret for /internal/emit.
    #[arg(
        long,
        env = "BENCH_INTERNAL_SECRET",
        default_value = "dev-internal-secret"
    )]
    internal_secret: String,
    /// Nchan channel id for --target nchan.
    #[arg(long, default_value = "bench")]
    nchan_channel: String,
    /// Label for the JSON line.
    #[arg(long)]
    scenario: Option<String>,
    /// Search the highest rate with zero loss and delivery p99 ≤ --p99-budget-ms.
    #[arg(long)]
    max_rate: bool,
    /// Delivery p99 budget for --max-rate, ms.
    #[arg(long, default_value_t = 100.0)]
    p99_budget_ms: f64,
    /// Length of each --max-rate trial, seconds.
    #[arg(long, default_value_t = 5.0)]
    trial_secs: f64,
    /// Bisection steps after the first failing --max-rate trial.
    #[arg(long, default_value_t = 5)]
    search_steps: u32,
    /// CI preset: 200 ws + 100 sse, 50 events at 100/s; exit 1 unless every delivery arrived.
    #[arg(long)]
    smoke: bool,
    /// Exit 1 unless the run was clean (no loss, resync, failed connect or failed emit).
    #[arg(long)]
    check: bool,
    /// Internal: run as a worker process with this JSON spec.
    #[arg(long, hide = true)]
    worker_spec: Option<String>,
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
pub(crate) fn raise_nofile_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

/// Accepts `http://127.0.0.1:<port>` or `http://localhost:<port>` and returns the port.
fn loopback_port(url: &str) -> Result<u16, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("--url {url}: {e}"))?;
    let loopback = match parsed.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    if !loopback || parsed.scheme() != "http" {
        return Err(format!(
            "--url {url}: only http:// loopback targets (127.0.0.0/8, localhost) are allowed"
        ));
    }
    parsed
        .port_or_known_default()
        .ok_or_else(|| format!("--url {url}: no port"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("admin-push-bench: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if let Some(spec) = &cli.worker_spec {
        runtime.block_on(async {
            let spec: WorkerSpec =
                serde_json::from_str(spec).map_err(|e| format!("worker spec: {e}"))?;
            worker::run(spec).await.map(|()| true)
        })
    } else {
        let limit = Duration::from_secs(cli.timeout);
        runtime.block_on(async {
            tokio::time::timeout(limit, coordinate(cli))
                .await
                .unwrap_or_else(|_| Err(format!("gave up after --timeout {}s", limit.as_secs())))
        })
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("admin-push-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the requested scenario (or search); `Ok(false)` when `--check` found the run unclean.
async fn coordinate(mut cli: Cli) -> Result<bool, String> {
    if cli.smoke {
        cli.ws = 200;
        cli.sse = 100;
        cli.events = Some(50);
        cli.rate = 100.0;
        cli.idle = 0.5;
        cli.check = true;
    }
    if cli.ws + cli.sse == 0 {
        return Err("nothing to do: give --ws and/or --sse".to_owned());
    }
    let nofile = raise_nofile_limit();
    let per_proc = usize::try_from(nofile.saturating_sub(1000).max(1000)).unwrap_or(1000);
    let procs = cli.procs.max((cli.ws + cli.sse).div_ceil(per_proc));
    let server = match &cli.spawn_server {
        Some(path) => {
            if cli.target != Target::AdminPush {
                return Err("--spawn-server starts admin-push only".to_owned());
            }
            cli.url = format!("http://127.0.0.1:{}", cli.port);
            // The spawned server inherits the raised RLIMIT_NOFILE.
            Server::spawn(&SpawnConfig {
                path,
                port: cli.port,
                jwt_secret: &cli.jwt_secret,
                internal_secret: &cli.internal_secret,
                extra_env: &cli.server_env,
            })
            .await?
        }
        None => Server::external(cli.server_pid),
    };
    let port = loopback_port(&cli.url)?;
    let emit_port = cli.emit_url.as_deref().map_or(Ok(port), loopback_port)?;
    let events = match (cli.events, cli.duration) {
        (Some(m), _) => m,
        (None, Some(d)) => (cli.rate * d).ceil() as u64,
        (None, None) => 0,
    };
    let scenario = Scenario {
        name: cli.scenario.clone().unwrap_or_else(|| {
            if cli.smoke {
                "smoke".to_owned()
            } else {
                format!("{}ws+{}sse@{}/s", cli.ws, cli.sse, cli.rate)
            }
        }),
        target: cli.target,
        port,
        emit_port,
        ws: cli.ws,
        sse: cli.sse,
        procs,
        sources: usize::from(cli.sources),
        events,
        rate: cli.rate,
        emit_concurrency: cli.emit_concurrency,
        idle: Duration::from_secs_f64(cli.idle),
        grace: Duration::from_secs_f64(cli.grace),
        jwt_secret: cli.jwt_secret.clone(),
        internal_secret: cli.internal_secret.clone(),
        nchan_channel: cli.nchan_channel.clone(),
        connect_concurrency: cli.connect_concurrency,
        connect_timeout: Duration::from_secs(cli.connect_timeout),
        ws_burst: cli.ws_burst,
        presence_records: cli.presence_records,
    };
    let clean = if let Some(cycles) = cli.churn {
        let report = churn::run(&scenario, &server, cycles).await?;
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| format!("encode: {e}"))?
        );
        report.clean()
    } else if cli.max_rate {
        let answer = coordinator::max_rate(
            &scenario,
            &server,
            Duration::from_secs_f64(cli.trial_secs),
            cli.p99_budget_ms,
            cli.search_steps,
        )
        .await?;
        if let Some(best) = &answer.best {
            eprint!("{}", best.summary());
        }
        eprintln!(
            "max rate with p99 <= {} ms and zero loss: {:.0} events/s",
            answer.p99_budget_ms, answer.max_rate
        );
        println!(
            "{}",
            serde_json::to_string(&answer).map_err(|e| format!("encode: {e}"))?
        );
        answer.max_rate > 0.0
    } else {
        let result = coordinator::run(&scenario, &server).await?;
        eprint!("{}", result.summary());
        println!(
            "{}",
            serde_json::to_string(&result).map_err(|e| format!("encode: {e}"))?
        );
        result.clean() && result.connected > 0
    };
    server.stop().await;
    Ok(clean || !cli.check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(loopback_port("http://127.0.0.1:8080"), Ok(8080));
        assert_eq!(loopback_port("http://localhost:9000/"), Ok(9000));
        assert_eq!(loopback_port("http://127.0.0.2"), Ok(80));
        assert!(loopback_port("http://10.0.0.1:8080").is_err());
        assert!(loopback_port("http://example.com:8080").is_err());
        assert!(loopback_port("https://127.0.0.1:8080").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
