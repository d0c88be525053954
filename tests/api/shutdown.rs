//! Shutdown is an input: readiness off, `reconnect` to everyone, close 1012, exit 0.

use std::process::Command;

use serde_json::json;

use crate::helpers::{
    End, Transport, WAIT, admin_token, assert_problem, spawn_app, spawn_app_with, spawn_binary,
};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_draining_readiness_is_503_and_new_subscribers_are_refused() {
    let app = spawn_app_with(json!({
        // Far longer than the test: what ends the stuck connection is the drain window.
        "limits": { "send_timeout_secs": 60 },
        "events": { "extra": ["bulk.updated"] },
        "emit": { "max_body_bytes": 262144 },
    }))
    .await;
    // A reader that never reads, sent ~20 MB: every buffer towards it fills, so its connection is
    // stuck in a write and holds the drain open until the drain window ends.
    let mut stuck = app.subscribe(Transport::Ws, "").await;
    stuck.ready().await;
    app.flood().await;

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"admin_push_connections{transport="ws"} 1"#),
        "the stuck connection must still be open when the drain starts"
    );

    app.shutdown.cancel();

    assert_eq!(app.ready_status().await, 503);
    assert_problem(
        app.refusal(Transport::Sse, "", Some(&admin_token("someone")), &[])
            .await,
        503,
        "shutting down",
    );
    // The drain window (drain_secs 1 + a 5 s margin) bounds the stuck connection, then the
    // servers get another 5 s to flush: the process stops on its own within both.
    tokio::time::timeout(std::time::Duration::from_secs(20), app.stopped)
        .await
        .expect("stops once the drain window is over")
        .expect("task")
        .expect("clean stop");
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// The child's exit code once it exits; fails after [`WAIT`].
async fn exit_code(child: &mut std::process::Child) -> Option<i32> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            return exit.code();
        }
        assert!(std::time::Instant::now() < deadline, "did not exit in time");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_binary_exits_0_on_sigterm() {
    let mut process = spawn_binary(&[]).await;
    let mut tab = process.app.subscribe(Transport::Sse, "").await;
    tab.ready().await;

    sigterm(&process.child);
    tab.expect("reconnect").await;
    assert_eq!(tab.end().await, End::Eof);
    assert_eq!(exit_code(&mut process.child).await, Some(0));
}

#[tokio::test]
async fn readiness_stays_503_and_emits_are_accepted_for_the_whole_drain_window() {
    let app = spawn_app_with(json!({ "server": { "drain_secs": 3 } })).await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;

    app.shutdown.cancel();
    tab.expect("reconnect").await;
    assert_eq!(tab.end().await, End::Closed(1012));

    // No connection is left, yet the listener stays up so a load balancer polling readiness
    // sees the instance leave, and publishers are still served while they are moved.
    assert_eq!(app.ready_status().await, 503);
    assert_eq!(
        app.emit(&json!({ "event": "product.updated", "data": { "id": "p" } }))
            .await
            .status(),
        202
    );
    assert!(
        !app.stopped.is_finished(),
        "stopped before the drain window"
    );
    tokio::time::timeout(WAIT, app.stopped)
        .await
        .expect("stops once the drain window is over")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test]
async fn a_second_sigterm_stops_the_binary_at_once() {
    let mut process = spawn_binary(&[("ADMIN_PUSH__SERVER__DRAIN_SECS", "600".to_owned())]).await;
    let mut tab = process.app.subscribe(Transport::Sse, "").await;
    tab.ready().await;
    sigterm(&process.child);
    tab.expect("reconnect").await;
    assert_eq!(process.app.ready_status().await, 503);
    sigterm(&process.child);
    assert_eq!(exit_code(&mut process.child).await, Some(0));
}
