//! The server under test: optionally started by the tool (so it controls the configuration), and
//! sampled through `/proc/<pid>/status` (RSS) and `/proc/<pid>/stat` (CPU time). A server of several
//! processes (nginx's workers) is sampled as their sum.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

/// Kernel clock ticks per second for `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux ABI we run on).
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// The processes being measured, if the tool knows them.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) pids: Vec<u32>,
    /// Kept so the server dies with the tool (`kill_on_drop`).
    child: Option<Child>,
}

/// How to start an admin-push server.
#[derive(Debug)]
pub(crate) struct SpawnConfig<'a> {
    pub(crate) path: &'a Path,
    pub(crate) port: u16,
    pub(crate) jwt_secret: &'a str,
    pub(crate) internal_secret: &'a str,
    /// Extra `KEY=VALUE` environment entries, e.g. `ADMIN_PUSH__HUB__BUFFER=4096`.
    pub(crate) extra_env: &'a [String],
}

impl Server {
    /// A server started elsewhere, sampled through `pids` (none: not sampled).
    pub(crate) fn external(pids: Vec<u32>) -> Self {
        Self { pids, child: None }
    }

    /// Starts admin-push with a bench configuration and waits until `/healthz` answers.
    pub(crate) async fn spawn(config: &SpawnConfig<'_>) -> Result<Self, String> {
        // Another server already on the port would answer /healthz below, and the run would
        // measure it instead of ours.
        std::net::TcpListener::bind(("127.0.0.1", config.port)).map_err(|e| {
            format!(
                "port {} is not free ({e}); choose another with --port",
                config.port
            )
        })?;
        let mut command = Command::new(config.path);
        command
            .arg("--config")
            .arg("/dev/null")
            .env(
                "ADMIN_PUSH__SERVER__BIND",
                format!("127.0.0.1:{}", config.port),
            )
            .env("ADMIN_PUSH__AUTH__JWT_SECRET", config.jwt_secret)
            .env(
                "ADMIN_PUSH__INTERNAL__SECRETS",
                format!(r#"["{}"]"#, config.internal_secret),
            )
            .env("ADMIN_PUSH__LIMITS__MAX_CONNECTIONS_PER_ACTOR", "1000000")
            .env("ADMIN_PUSH__LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for entry in config.extra_env {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("--server-env {entry}: expected KEY=VALUE"))?;
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", config.path.display()))?;
        let pid = child.id();
        let health = format!("http://127.0.0.1:{}/healthz", config.port);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("the server exited at start: {status}"));
            }
            if let Ok(response) = client.get(&health).send().await
                && response.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{health} did not answer within 15 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            pids: pid.into_iter().collect(),
            child: Some(child),
        })
    }

    /// Resident set size now, KiB.
    pub(crate) fn rss_kb(&self) -> Option<u64> {
        self.status_field("VmRSS:")
    }

    /// Peak resident set size, KiB.
    pub(crate) fn peak_rss_kb(&self) -> Option<u64> {
        self.status_field("VmHWM:")
    }

    /// CPU time used so far (user + system), clock ticks.
    pub(crate) fn cpu_ticks(&self) -> Option<u64> {
        self.sum(|pid| crate::proto::cpu_ticks(&pid.to_string()))
    }

    fn status_field(&self, name: &str) -> Option<u64> {
        self.sum(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse().ok())
        })
    }

    /// `read` summed over every process; `None` when there are none or one cannot be read.
    fn sum(&self, read: impl Fn(u32) -> Option<u64>) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| read(pid)).sum()
    }

    /// Stops a server the tool started.
    pub(crate) async fn stop(mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}
