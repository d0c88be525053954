//! `admin-push listen`, the built-in subscriber: the real binary against a real server, through
//! the public routes and the ticket flow, on both transports.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

use crate::helpers::{TestApp, WAIT, admin_token, spawn_app};

const TRANSPORTS: [(&str, &[&str]); 2] = [("ws", &[]), ("sse", &["--sse"])];

fn listen(app: &TestApp, token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_admin-push"));
    command
        .args(["--config", "/dev/null", "listen", "--url", &app.base])
        .args(args)
        .env("ADMIN_PUSH_TOKEN", token)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// A running `listen`, read line by line.
struct Listener {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Listener {
    fn start(app: &TestApp, args: &[&str]) -> Self {
        let mut child = listen(app, &admin_token("user_1"), args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("listen starts");
        let stdout = child.stdout.take().expect("stdout");
        Self {
            _child: child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next printed line, which must be one JSON value.
    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("a line in time")
            .expect("stdout readable")
            .expect("listen still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
    }

    async fn ready(&mut self, transport: &str) {
        let ready = self.line().await;
        assert_eq!(ready["event"], "ready", "{ready}");
        assert_eq!(ready["data"]["transport"], transport, "{ready}");
        assert!(
            ready.get("id").is_none(),
            "control messages carry no id: {ready}"
        );
    }
}

#[tokio::test]
async fn listen_prints_every_event_as_the_websocket_frame_on_both_transports() {
    let app = spawn_app().await;
    for (transport, args) in TRANSPORTS {
        let mut listener = Listener::start(&app, args);
        listener.ready(transport).await;
        let id = app.emit_product("prod_1").await;
        assert_eq!(
            listener.line().await,
            json!({ "id": id, "event": "product.updated", "data": { "id": "prod_1" } }),
            "{transport}"
        );
    }
}

#[tokio::test]
async fn listen_resumes_after_the_last_event_id_and_keeps_to_its_filter() {
    let app = spawn_app().await;
    let first = app.emit_product("prod_1").await;
    let order = app
        .emit(&json!({ "event": "order.updated", "data": { "id": "order_1" } }))
        .await;
    assert_eq!(order.status(), 202);
    let third = app.emit_product("prod_3").await;
    for (transport, args) in TRANSPORTS {
        let mut args = args.to_vec();
        args.extend(["--last-event-id", &first, "--events", "product.updated"]);
        let mut listener = Listener::start(&app, &args);
        listener.ready(transport).await;
        let replayed = listener.line().await;
        assert_eq!(replayed["id"], third.as_str(), "{transport}: {replayed}");
        assert_eq!(replayed["data"]["id"], "prod_3", "{transport}");
    }
}

#[tokio::test]
async fn listen_shows_the_servers_refusal_and_exits_1() {
    let app = spawn_app().await;
    let good = admin_token("user_1");
    for (token, args, says) in [
        ("not-a-jwt", &[][..], "ticket refused: 401 "),
        (
            good.as_str(),
            &["--events", "nope.event"][..],
            "connection refused: 400 ",
        ),
        (
            good.as_str(),
            &["--sse", "--events", "nope.event"][..],
            "connection refused: 400 ",
        ),
    ] {
        let output = tokio::time::timeout(WAIT, listen(&app, token, args).output())
            .await
            .expect("listen gives up in time")
            .expect("listen runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        // The server's own reason, as it sent it.
        assert!(stderr.contains("\"message\":"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
