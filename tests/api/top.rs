//! `admin-push top`: the real binary reading a real server's `/metrics` while tabs receive events
//! and send screen-refresh receipts.

use std::process::{ExitStatus, Stdio};

use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines},
    process::{Child, ChildStderr, Command},
};

use crate::helpers::{Subscriber, TestApp, Transport, WAIT, spawn_app_with};

/// `top --once` (two scrapes `interval` seconds apart) with no configuration file and no URL in
/// its environment.
fn admin_push_top(url: &str, interval: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_admin-push"));
    command
        .args(["--config", "/dev/null", "top", "--once"])
        .args(["--url", url, "--interval", interval])
        .env_remove("ADMIN_PUSH_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Waits for `top` to say it took its first scrape (on stderr), and returns the rest of its
/// stderr, still open.
async fn first_scrape_taken(top: &mut Child) -> Lines<BufReader<ChildStderr>> {
    let stderr = top.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let line = lines
        .next_line()
        .await
        .expect("stderr")
        .expect("top ended before its first scrape");
    assert!(line.contains("sampling"), "unexpected from top: {line}");
    lines
}

/// One event the way a dashboard sees it: published, shown by the tab, and receipted.
async fn an_event_shown_and_receipted(app: &TestApp, tab: &mut Subscriber) {
    let id = app.emit_product("prod_top").await;
    tab.events(1).await;
    let receipt = json!({ "type": "receipt", "id": id });
    tab.send_text(&receipt.to_string()).await;
}

/// Runs the command to its end and returns its exit status, stdout and stderr.
async fn finished(command: &mut Command) -> (ExitStatus, String, String) {
    let output = tokio::time::timeout(WAIT, command.output())
        .await
        .expect("top ends in time")
        .expect("top runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn top_names_each_event_with_its_screen_refresh_over_websocket() {
    // The tab receipts every event, as fast as they come: no budget of the service's stops it.
    let app = spawn_app_with(json!({
        "ws": { "max_client_frames_per_sec": 100_000 },
        "receipts": { "max_per_sec": 1000 },
    }))
    .await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let mut top = admin_push_top(&app.internal_base, "2")
        .spawn()
        .expect("top starts");
    let _stderr = tokio::time::timeout(WAIT, first_scrape_taken(&mut top))
        .await
        .expect("the first scrape in time");
    // Events flow and screens receipt them for as long as top is measuring.
    let status = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                status = top.wait() => break status.expect("top's exit status"),
                () = an_event_shown_and_receipted(&app, &mut tab) => {}
            }
        }
    })
    .await
    .expect("top ends after one interval");
    let mut table = String::new();
    let mut stdout = top.stdout.take().expect("piped stdout");
    stdout.read_to_string(&mut table).await.expect("stdout");
    assert!(status.success(), "{status}: {table}");

    let row = table
        .lines()
        .find(|line| line.starts_with("product.updated "))
        .unwrap_or_else(|| panic!("no row for product.updated:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let [_, per_sec, ws_p50, ws_p95, sse_p50, sse_p95] = cells[..] else {
        panic!("not event, events/s, ws p50/p95, sse p50/p95: {row:?}");
    };
    assert!(per_sec.parse::<f64>().is_ok_and(|n| n > 0.0), "{table}");
    for figure in [ws_p50, ws_p95] {
        assert!(is_a_latency(figure), "{figure:?} in\n{table}");
    }
    assert_eq!([sse_p50, sse_p95], ["-", "-"], "no SSE tab:\n{table}");
    assert!(table.contains("connections  ws 1  sse 0"), "{table}");
}

/// `35ms`, `0.42ms`, `1.25s`.
fn is_a_latency(figure: &str) -> bool {
    let number = figure
        .strip_suffix("ms")
        .or_else(|| figure.strip_suffix('s'));
    number.is_some_and(|n| n.parse::<f64>().is_ok_and(|n| n >= 0.0))
}

#[tokio::test]
async fn top_says_in_one_line_when_the_service_cannot_be_reached() {
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let (status, stdout, stderr) =
        finished(&mut admin_push_top(&format!("http://{nobody}"), "1")).await;
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("admin-push: cannot reach http://{nobody}/metrics")),
        "{stderr}"
    );
}

#[tokio::test]
async fn top_says_in_one_line_when_the_url_does_not_serve_metrics() {
    let app = spawn_app_with(json!({ "server": { "internal_bind": "127.0.0.1:0" } })).await;
    // The public listener does not serve /metrics when there is an internal one.
    let (status, stdout, stderr) = finished(&mut admin_push_top(&app.base, "1")).await;
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("answered 404 Not Found"), "{stderr}");
}
