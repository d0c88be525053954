//! `admin-push emit` and the credentials the command-line clients take: the real binary against a
//! real server.

use std::process::Output;

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{EMIT_SECRET, WAIT, spawn_app};

/// The binary with no configuration file and no credential in its environment, so that what a
/// test passes is all it has.
fn admin_push(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_admin-push"));
    command
        .args(["--config", "/dev/null"])
        .args(args)
        .env_remove("ADMIN_PUSH_URL")
        .env_remove("ADMIN_PUSH_SECRET")
        .env_remove("ADMIN_PUSH_TOKEN")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

async fn run(command: &mut Command) -> Output {
    tokio::time::timeout(WAIT, command.output())
        .await
        .expect("the command ends in time")
        .expect("the command runs")
}

/// Asserts that `admin-push emit` printed `202 {"id":"…"}` and exited 0.
fn assert_published(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout} {stderr}");
    let body = stdout
        .trim()
        .strip_prefix("202 ")
        .unwrap_or_else(|| panic!("not a 202: {stdout:?}"));
    let body: Value = serde_json::from_str(body).expect("a JSON answer");
    assert!(body["id"].is_string(), "{body}");
}

#[tokio::test]
async fn emit_publishes_to_the_url_with_the_secret_given_by_flag_or_environment() {
    let app = spawn_app().await;
    let event = ["product.updated", r#"{"id":"prod_01"}"#];
    let flags = ["--url", &app.internal_base, "--secret", EMIT_SECRET];
    assert_published(&run(admin_push(&["emit"]).args(flags).args(event)).await);
    assert_published(
        &run(admin_push(&["emit"])
            .args(event)
            .env("ADMIN_PUSH_URL", &app.internal_base)
            .env("ADMIN_PUSH_SECRET", EMIT_SECRET))
        .await,
    );
}

#[tokio::test]
async fn emit_shows_the_servers_refusal_and_exits_1() {
    let app = spawn_app().await;
    let output = run(admin_push(&["emit", "--url", &app.internal_base])
        .args(["--secret", "not-the-secret"])
        .args(["product.updated", r#"{"id":"prod_01"}"#]))
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("401 {"), "{stdout}");
}

#[tokio::test]
async fn a_credential_that_cannot_be_sent_is_refused_with_a_plain_message() {
    let app = spawn_app().await;
    let split = "secret-part-one\nsecret-part-two";
    let listen = |token| vec!["listen", "--url", &app.base, "--token", token];
    let emit = |secret| {
        vec![
            "emit",
            "--url",
            &app.internal_base,
            "--secret",
            secret,
            "product.updated",
            r#"{"id":"prod_01"}"#,
        ]
    };
    let cases = [
        (listen(split), "--token", "line break"),
        (listen(""), "--token", "empty"),
        (listen("secret-part one"), "--token", "space"),
        (emit(split), "--secret", "line break"),
        (emit(""), "--secret", "empty"),
    ];
    for (args, flag, says) in cases {
        let output = run(&mut admin_push(&args)).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag} {says}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains(says),
            "{flag} should say {says:?}: {stderr}"
        );
        assert!(
            !stderr.contains("secret-part"),
            "the value was echoed: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{flag} {says}");
    }
}
