//! What a newcomer meets first: the release binary started anywhere, and configuration mistakes
//! reported as one plain line that names the key.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
};

use serde_json::Value;

fn admin_push(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_admin-push"));
    command.current_dir(dir).args(args);
    // Only what the test sets: a developer's own ADMIN_PUSH__* must not leak in.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("ADMIN_PUSH")) {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

#[tokio::test]
async fn without_a_config_file_the_binary_serves_on_development_defaults_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = admin_push(
        dir.path(),
        &[],
        &[
            ("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0"),
            ("ADMIN_PUSH__LOG__FORMAT", "json"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (warned, port) = tokio::task::spawn_blocking(move || {
        let mut warned = false;
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            let log: Value = serde_json::from_str(&line).expect("json log line");
            let message = log["message"].as_str().unwrap_or_default();
            warned |= log["level"] == "WARN" && message.contains("DEVELOPMENT SECRETS");
            if message == "listening" {
                // Keep draining stdout so the child never writes into a closed pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return (warned, log["port"].as_u64().expect("port"));
            }
        }
        panic!("the binary stopped before listening");
    })
    .await
    .expect("reader");
    assert!(
        warned,
        "the development-secrets warning comes before serving"
    );

    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    // The built-in emit secret is the development one, like the shipped config.toml.
    let emitted = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/internal/emit"))
        .bearer_auth(admin_push::settings::DEV_INTERNAL_SECRET)
        .json(&serde_json::json!({ "event": "product.updated", "data": { "id": "prod_1" } }))
        .send()
        .await
        .expect("emit answers");
    assert_eq!(emitted.status(), 202);

    child.kill().expect("kill");
    child.wait().expect("reaped");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(stderr, "", "nothing went wrong");
}

/// Runs the binary in a directory holding `config_toml` (if any) and returns its output.
fn run_with_config(config_toml: Option<&str>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(text) = config_toml {
        std::fs::write(dir.path().join("config.toml"), text).expect("config written");
    }
    admin_push(dir.path(), args, env)
        .stdin(Stdio::null())
        .output()
        .expect("binary runs")
}

/// A configuration mistake and the line it must produce, after `admin-push: configuration: `.
struct Case {
    config: Option<&'static str>,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    says: &'static str,
}

#[test]
fn configuration_errors_are_one_plain_line_naming_the_key_and_exit_2() {
    const SERVE: &[&str] = &[];
    const TOKEN: &[&str] = &["token"];
    let cases = [
        Case {
            config: Some("[server]\nbindd = \"127.0.0.1:8080\"\n"),
            args: TOKEN,
            env: &[],
            says: "server.bindd: unknown key; expected one of bind, internal_bind, \
             header_timeout_secs, drain_secs, production, workers, emit_url",
        },
        Case {
            config: Some("[hub]\nhistory = \"ten\"\n"),
            args: TOKEN,
            env: &[],
            says: "hub.history: expected a whole number, found \"ten\"",
        },
        Case {
            config: Some("[hub]\nbackend = \"mysql\"\n"),
            args: TOKEN,
            env: &[],
            says: "hub.backend: \"mysql\" is not one of memory, redis",
        },
        Case {
            config: Some("[hub]\nhistory = 0\n"),
            args: TOKEN,
            env: &[],
            says: "hub.history: must be between 1 and 10000000",
        },
        Case {
            config: Some("# comment\n[server\nbind = \"127.0.0.1:8080\"\n"),
            args: TOKEN,
            env: &[],
            says: "config.toml line 2: invalid table header; expected `.`, `]`",
        },
        Case {
            config: None,
            args: TOKEN,
            env: &[("ADMIN_PUSH__WS__PING_INTERVAL_SECS", "often")],
            says: "ws.ping_interval_secs: expected a whole number, found \"often\" \
             (from ADMIN_PUSH__WS__PING_INTERVAL_SECS)",
        },
        // Found while building the server rather than while loading: the same line, the same code.
        Case {
            config: Some("[auth]\nalgorithm = \"none\"\n"),
            args: SERVE,
            env: &[("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0")],
            says: "auth.algorithm: unknown algorithm \"none\"",
        },
        Case {
            config: Some("[hub]\nbackend = \"redis\"\nredis_url = \"not a url\"\n"),
            args: SERVE,
            env: &[("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0")],
            says: "hub.redis_url: ",
        },
    ];
    for Case {
        config,
        args,
        env,
        says: expected,
    } in cases
    {
        let output = run_with_config(config, args, env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{config:?} {env:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(
            stderr.starts_with(&format!("admin-push: configuration: {expected}")),
            "{stderr:?} should say {expected:?}"
        );
    }
}
