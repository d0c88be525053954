//! Keeps the load tool working: its smoke preset (a few hundred real WebSocket and SSE connections
//! for a second, zero loss required) against the real server. The server runs in this process on a
//! free port, so the run always exercises the server being built next to the tool. (Its figures
//! are for BENCHMARKS.md, never asserted here.)

use admin_push::{Application, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_run_delivers_every_event() {
    // The built-in defaults carry the development secrets the load tool uses by default.
    let mut settings = Settings::default();
    settings.server.bind = ([127, 0, 0, 1], 0).into();
    settings.server.drain_secs = 1;
    let app = Application::build(settings).await.expect("server builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_admin-push-bench"))
        .args(["--smoke", "--url", &url])
        .output()
        .await
        .expect("the load tool runs");
    shutdown.cancel();
    server
        .await
        .expect("server task joins")
        .expect("server stops cleanly");

    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "smoke run failed: {report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(report.trim()).expect("one JSON line");
    assert_eq!(line["lost"], 0, "{line}");
    assert_eq!(line["connected"], 300, "{line}");
}
