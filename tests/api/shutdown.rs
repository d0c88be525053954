//! Shutdown is an input: readiness off, `reconnect` to everyone, close 1012, exit 0.

use std::process::Command;

use crate::helpers::{End, Transport, WAIT, spawn_app, spawn_binary};

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

#[tokio::test]
async fn the_binary_exits_0_on_sigterm() {
    let mut process = spawn_binary(&[]).await;
    let mut tab = process.app.subscribe(Transport::Sse, "").await;
    tab.ready().await;

    let status = Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    tab.expect("reconnect").await;
    assert_eq!(tab.end().await, End::Eof);
    let deadline = std::time::Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = process.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit in time");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
}
