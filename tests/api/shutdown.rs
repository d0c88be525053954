//! Shutdown is an input: readiness off, `reconnect` to everyone, close 1012, exit 0.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use crate::helpers::{End, Transport, WAIT, spawn_app};

#[tokio::test]
async fn shutdown_tells_every_connection_to_reconnect_and_closes_it() {
    let app = spawn_app().await;
    let mut ws = app.subscribe(Transport::Ws, "").await;
    let mut sse = app.subscribe(Transport::Sse, "").await;
    ws.ready().await;
    sse.ready().await;

    app.shutdown.cancel();

    for subscriber in [&mut ws, &mut sse] {
        let reconnect = subscriber.expect("reconnect").await;
        let after = reconnect.data["after_ms"].as_u64().expect("after_ms");
        assert!(after < 1000, "spread within drain_secs = 1: {after}");
    }
    assert_eq!(ws.end().await, End::Closed(1012));
    assert_eq!(sse.end().await, End::Eof);
    let stopped = tokio::time::timeout(WAIT, app.stopped)
        .await
        .expect("stops in time");
    stopped.expect("task").expect("clean stop");
}

#[test]
fn the_binary_exits_0_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_admin-push"))
        .args(["--config", "/nonexistent/config.toml"])
        .env("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0")
        .env("ADMIN_PUSH__SERVER__DRAIN_SECS", "1")
        .env("ADMIN_PUSH__LOG__FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("listening"))
        .expect("logs its port");
    let log: serde_json::Value = serde_json::from_str(&listening).expect("json log line");
    let port = log["port"].as_u64().expect("port");
    let health = std::net::TcpStream::connect(("127.0.0.1", port as u16));
    assert!(health.is_ok(), "serves on the logged port");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit in time");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
}
