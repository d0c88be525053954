//! The harness: a real server on port 0 per test, and real clients that speak to it.
//!
//! - [`app`]: the server in-process, test settings, emit/ticket calls, `TEST_LOG`.
//! - [`tokens`]: admin JWTs.
//! - [`client`]: WebSocket and SSE subscribers behind one type.
//! - [`redis`]: a real `redis-server`, and instances sharing it.
//! - [`process`]: the real binary as a child process.
//! - [`raw`]: a WebSocket spoken by hand, byte by byte.
//! - [`storm`]: an emit storm through several instances, and tabs that must keep up with it.
//!
//! Every wait is on an event, bounded by [`WAIT`]; nothing sleeps in place of synchronisation.

mod app;
mod client;
mod process;
mod raw;
mod redis;
mod storm;
mod tokens;

use std::time::Duration;

use admin_push_prerequisites as prerequisites;

pub use self::{app::*, client::*, process::*, raw::*, redis::*, storm::*, tokens::*};

/// Upper bound on any single wait for something the server should do.
pub const WAIT: Duration = Duration::from_secs(10);

/// Whether an outside program the test needs is installed. Missing: a skip on a developer's
/// machine, announced past the test harness's capture (and again in the summary that ends
/// `cargo test`), a failure under CI (where `.ci/run` installs it).
pub fn require(program: &str) -> bool {
    let program = prerequisites::program(program);
    if prerequisites::installed(program.name) {
        return true;
    }
    assert!(
        !prerequisites::under_ci(),
        "`{}` is required under CI; .ci/run should have installed it",
        program.name
    );
    // Straight to stderr: `eprintln!` would be captured, and shown only for a failing test.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        prerequisites::skip_line(program).as_bytes(),
    );
    false
}

/// Runs one of the repository's script suites (`path` from the repository root) against this
/// build's binary, after checking every program it needs at once, so a developer machine reports
/// all that is missing together.
pub fn run_script_suite(path: &str, programs: &[&str], what: &str) {
    let found: Vec<bool> = programs.iter().copied().map(require).collect();
    if found.contains(&false) {
        return;
    }
    let status = std::process::Command::new("bash")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .env("ADMIN_PUSH_BIN", env!("CARGO_BIN_EXE_admin-push"))
        .status()
        .expect("the suite's script runs");
    assert!(status.success(), "{what} failed (output above)");
}

/// Held by the suites that drive Chromium (the browser suite, the Medusa suite) for their whole
/// run: each takes both cores for minutes, and timing-sensitive checks in one must not be
/// starved by the other.
static CHROMIUM_SUITE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for [`CHROMIUM_SUITE`]; a suite that failed while holding it does not block the next.
pub fn one_chromium_suite_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    CHROMIUM_SUITE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Polls `condition` until it holds, for things with no event to wait on (a port opening, a
/// backplane reconnecting); fails after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
