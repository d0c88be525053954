//! The real binary as a child process, for what only a process can show (signals, `kill -9`).

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    app::{EMIT_SECRET, TestApp, test_log},
    tokens::JWT_SECRET,
};

/// The real binary as a child process (so a test can `kill -9` it), with `env` overrides.
pub struct Process {
    pub child: std::process::Child,
    pub app: TestApp,
    /// Every line it has written to stdout after `listening`, in order.
    pub log: Arc<Mutex<Vec<String>>>,
}

pub async fn spawn_binary(env: &[(&str, String)]) -> Process {
    use std::io::{BufRead, BufReader};
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_admin-push"));
    command
        .args(["--config", "/dev/null"])
        .env("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0")
        .env("ADMIN_PUSH__SERVER__DRAIN_SECS", "1")
        .env("ADMIN_PUSH__AUTH__JWT_SECRET", JWT_SECRET)
        .env(
            "ADMIN_PUSH__INTERNAL__SECRETS",
            format!("[\"{EMIT_SECRET}\"]"),
        )
        .env("ADMIN_PUSH__LOG__FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&log);
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.contains("\"listening\""))
            .expect("logs its port");
        // Keep draining stdout so the child never blocks on a full pipe, keeping every line for
        // the tests that read the log; with TEST_LOG, also through the test harness's capture,
        // which shows it for a failing test.
        let show = test_log().is_some();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if show {
                    println!("{line}");
                }
                kept.lock().expect("log lock").push(line);
            }
        });
        let log: Value = serde_json::from_str(&listening).expect("json log line");
        log["port"].as_u64().expect("port") as u16
    })
    .await
    .expect("reader");
    let app = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        ws_base: format!("ws://127.0.0.1:{port}"),
        internal_base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
        shutdown: CancellationToken::new(),
        stopped: tokio::spawn(async { Ok(()) }),
    };
    Process { child, app, log }
}

impl Drop for Process {
    /// A test that ends (or fails) with the process still running must not leave it behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Waits until a line containing `marker` is logged (everything logged before it is in the
    /// log by then), asserts that no line was logged at ERROR level, and stops the process.
    pub async fn assert_no_error_logged_up_to(self, marker: &str) {
        super::eventually(&format!("a log line with {marker:?}"), || async {
            let log = self.log.lock().expect("log lock");
            log.iter().any(|line| line.contains(marker))
        })
        .await;
        let errors: Vec<String> = self
            .log
            .lock()
            .expect("log lock")
            .iter()
            .filter(|line| line.contains("\"level\":\"ERROR\""))
            .cloned()
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }
}
