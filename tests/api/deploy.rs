//! The deployment recipes (`Containerfile`, `deploy/`), each run or checked with the real tool:
//! the image is built and run with podman, nginx and Caddy carry real subscribers, systemd-analyze
//! judges the unit, the Kubernetes manifests are read back through the service's own settings, and
//! the Grafana dashboard is held against what `/metrics` really exports.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Instant,
};

use admin_push::{Settings, settings::HubBackend};
use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    EMIT_SECRET, End, JWT_SECRET, Subscriber, TestApp, Transport, eventually, require, spawn_app,
};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fresh directory for one test's generated files (readable by nginx's unprivileged workers).
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `text` with `from` replaced, insisting it occurs exactly once (so a recipe edit that moves the
/// line fails here instead of testing something else).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "expected one {from:?}");
    text.replacen(from, to, 1)
}

/// Runs `command` to completion and returns its stdout; panics with its output if it fails.
fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// A proxy process, stopped when the test ends however it ends: with SIGTERM, so that nginx's
/// master stops its workers too (SIGKILL would orphan them).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let terminated = Command::new("kill").arg(self.0.id().to_string()).status();
        if !terminated.is_ok_and(|s| s.success()) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn start(command: &mut Command) -> Running {
    Running(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?}: {e}")),
    )
}

/// Starts this build's binary the way a recipe does (`--config` and the recipe's environment) and
/// insists that it refuses to start because the development secrets are in use: a copy-paste of
/// the recipe must not serve with the published secrets.
fn assert_refuses_the_development_secrets(config: &Path, environment: &[(String, String)]) {
    let output = Command::new(env!("CARGO_BIN_EXE_admin-push"))
        .arg("--config")
        .arg(config)
        .envs(environment.iter().map(|(k, v)| (k, v)))
        // Should the refusal ever fail, the server must not take a real port.
        .env("ADMIN_PUSH__SERVER__BIND", "127.0.0.1:0")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("auth.jwt_secret"), "{stderr}");
}

/// `KEY=value` pairs of the admin-push variables in `assignments` (space-separated, unquoted).
fn admin_push_variables<'a>(assignments: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    assignments
        .flat_map(str::split_whitespace)
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| key.starts_with("ADMIN_PUSH__"))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// A client's view of a service reached at `public` (a proxy or a published container port),
/// emitting to `internal`.
fn client(public: &str, internal: &str) -> TestApp {
    TestApp {
        base: format!("http://{public}"),
        ws_base: format!("ws://{public}"),
        internal_base: internal.to_owned(),
        http: reqwest::Client::new(),
        shutdown: CancellationToken::new(),
        stopped: tokio::spawn(async { Ok(()) }),
    }
}

/// A WebSocket and an SSE subscriber connected through `front` both receive `event`, emitted
/// once; returns them, still connected.
async fn assert_both_transports_deliver(front: &TestApp, event: Value) -> [Subscriber; 2] {
    let mut tabs = [
        front.subscribe(Transport::Ws, "").await,
        front.subscribe(Transport::Sse, "").await,
    ];
    for tab in &mut tabs {
        tab.ready().await;
    }
    let response = front.emit(&event).await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json answer");
    for tab in &mut tabs {
        let got = tab.events(1).await.remove(0);
        assert_eq!(got.event, event["event"]);
        assert_eq!(got.data, event["data"]);
        assert_eq!(got.id.as_deref(), answer["id"].as_str());
    }
    tabs
}

/// Through the proxy at `port`: the service answers, both transports deliver, and the webhook
/// and the metrics are not reachable from the public origin.
async fn assert_proxy_serves(app: &TestApp, port: u16) {
    let front = client(&format!("127.0.0.1:{port}"), &app.internal_base);
    eventually("the proxy to serve /healthz", || async {
        let response = front.http.get(format!("{}/healthz", front.base)).send();
        response.await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let event = json!({ "event": "product.updated", "data": { "id": "prod_proxy" } });
    assert_both_transports_deliver(&front, event).await;
    for path in ["/internal/emit", "/metrics"] {
        let response = front.http.post(format!("{}{path}", front.base)).send();
        let status = response.await.expect("request").status();
        assert_eq!(status, 404, "{path} must not be public");
    }
}

fn host_port(app: &TestApp) -> &str {
    app.base.strip_prefix("http://").expect("http base")
}

/// Starts the service and, with `launch(upstream, port, dir)`, a proxy in front of it on a free
/// port (with a fresh directory for its files); then checks what every proxy recipe must do.
async fn check_proxy_recipe(program: &str, launch: impl FnOnce(&str, u16, &Path) -> Running) {
    if !require(program) {
        return;
    }
    let app = spawn_app().await;
    let port = free_port();
    let dir = scratch_dir(program);
    let _proxy = launch(host_port(&app), port, &dir);
    assert_proxy_serves(&app, port).await;
}

#[tokio::test]
async fn nginx_recipe_carries_websocket_and_sse_and_hides_the_webhook() {
    check_proxy_recipe("nginx", |upstream, port, dir| {
        let site = read("deploy/nginx/admin-push.conf");
        let site = replace_once(&site, "server 127.0.0.1:8080;", &format!("server {upstream};"));
        let site = replace_once(&site, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        std::fs::write(dir.join("admin-push.conf"), site).expect("site");
        let temp = dir.display();
        let main = format!(
            "worker_processes 1;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  \
             client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n  \
             fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n  \
             scgi_temp_path {temp}/scgi;\n  include {temp}/admin-push.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("nginx.conf");
        start(
            Command::new("nginx")
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .arg("-g")
                .arg(format!("daemon off; pid {temp}/nginx.pid; error_log stderr;")),
        )
    })
    .await;
}

#[tokio::test]
async fn caddy_recipe_validates_carries_websocket_and_sse_and_hides_the_webhook() {
    check_proxy_recipe("caddy", |upstream, port, dir| {
        let caddy = |verb: &str| {
            let mut command = Command::new("caddy");
            command
                .arg(verb)
                .arg("--config")
                .arg(repo_file("deploy/caddy/Caddyfile"))
                .args(["--adapter", "caddyfile"])
                // A plain-http site address: no certificates, no traffic beyond loopback.
                .env("ADMIN_PUSH_SITE", format!("http://127.0.0.1:{port}"))
                .env("ADMIN_PUSH_UPSTREAM", upstream)
                .env("CADDY_ADMIN", "off")
                .env("HOME", dir)
                .env("XDG_CONFIG_HOME", dir)
                .env("XDG_DATA_HOME", dir);
            command
        };
        run(&mut caddy("validate"));
        start(caddy("run").stderr(Stdio::null()))
    })
    .await;
}

#[test]
fn systemd_unit_runs_in_production_and_refuses_the_shipped_development_secrets() {
    let unit = read("deploy/systemd/admin-push.service");
    let environment =
        admin_push_variables(unit.lines().filter_map(|l| l.strip_prefix("Environment=")));
    assert!(
        environment.contains(&(
            "ADMIN_PUSH__SERVER__PRODUCTION".to_owned(),
            "true".to_owned()
        )),
        "the unit should set ADMIN_PUSH__SERVER__PRODUCTION=true: {environment:?}"
    );
    // Step 1 of docs/deploy.md copies the shipped config.toml before anyone edits it.
    assert_refuses_the_development_secrets(&repo_file("config.toml"), &environment);
}

#[test]
fn systemd_unit_verifies_with_a_strict_sandbox_and_outlasts_the_drain() {
    if !require("systemd-analyze") {
        return;
    }
    let unit = read("deploy/systemd/admin-push.service");
    let has = |line: &str| unit.lines().any(|l| l == line);
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "KillSignal=SIGTERM",
    ] {
        assert!(has(line), "the unit should say {line}");
    }
    let stop_secs: u64 = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .expect("TimeoutStopSec=<n>s");
    let shipped = Settings::load(&repo_file("config.toml")).expect("config.toml loads");
    assert!(
        stop_secs > shipped.server.drain_secs,
        "stop timeout must outlast the drain"
    );

    // `verify` insists that ExecStart's program exists: point it at this build's binary.
    let dir = scratch_dir("systemd");
    let path = dir.join("admin-push.service");
    let local = replace_once(
        &unit,
        "ExecStart=/usr/local/bin/admin-push ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_admin-push")),
    );
    std::fs::write(&path, local).expect("unit");
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.is_empty(),
        "{complaints}"
    );
    // The exposure score, 0 (locked down) to 10 (unprotected), in tenths: fail above 2.0.
    run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&path));
}

/// Every document of a multi-document YAML file, as JSON values.
fn yaml_documents(path: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(&read(path))
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .collect()
}

/// The container port a probe or Service names (by name or number).
fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(number) = port.as_u64() {
        return number;
    }
    container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == *port)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {port}"))
}

#[test]
fn kubernetes_manifests_probe_drain_and_keep_the_webhook_on_its_own_service() {
    let manifests = "deploy/kubernetes/admin-push.yaml";
    // Against the Kubernetes API schemas; strict: an unknown or misspelt field fails.
    if require("kubernetes-validate") {
        run(Command::new("kubernetes-validate")
            .args(["--strict", "--quiet"])
            .arg(repo_file(manifests)));
    }
    let documents = yaml_documents(manifests);
    let all =
        |kind: &str| -> Vec<&Value> { documents.iter().filter(|d| d["kind"] == kind).collect() };
    let one = |kind: &str| -> &Value {
        let found = all(kind);
        assert_eq!(found.len(), 1, "exactly one {kind}");
        found[0]
    };

    // The ConfigMap's config.toml, with the Secret's variables, is a configuration the service
    // accepts in production mode.
    let toml = one("ConfigMap")["data"]["config.toml"]
        .as_str()
        .expect("config.toml");
    let settings = Settings::from_figment(Figment::from(Toml::string(toml)).merge(
        Serialized::defaults(json!({
            "auth": { "jwt_secret": JWT_SECRET },
            "internal": { "secrets": [EMIT_SECRET] },
        })),
    ))
    .expect("the ConfigMap's config.toml loads");
    assert!(settings.server.production);
    let without_secret = Settings::from_figment(Figment::from(Toml::string(toml)))
        .expect_err("without the Secret's variables the development secrets are refused");
    assert!(
        without_secret.to_string().contains("auth.jwt_secret"),
        "{without_secret}"
    );
    let internal_bind = settings.server.internal_bind.expect("an internal listener");

    let deployment = one("Deployment");
    let replicas = deployment["spec"]["replicas"].as_u64().expect("replicas");
    assert!(
        replicas == 1 || matches!(settings.hub.backend, HubBackend::Redis),
        "several replicas need the Redis backplane"
    );
    let pod = &deployment["spec"]["template"];
    let labels = pod["metadata"]["labels"].as_object().expect("pod labels");
    let selects_pods = |selector: &Value| {
        let wanted = selector["matchLabels"].as_object().expect("matchLabels");
        !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
    };
    assert!(selects_pods(&deployment["spec"]["selector"]));

    let spec = &pod["spec"];
    let grace = spec["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace period");
    assert!(
        grace > settings.server.drain_secs,
        "grace {grace}s must outlast the drain"
    );
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    let container = &spec["containers"][0];
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        let port = container_port(container, &get["port"]);
        assert_eq!(port, u64::from(settings.server.bind.port()), "{probe} port");
    }

    // One Service per listener: the public one never reaches the webhook, the internal one
    // reaches nothing else.
    let service_ports = |name: &str| -> BTreeSet<u64> {
        let service = all("Service")
            .into_iter()
            .find(|s| s["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("a Service named {name}"));
        assert!(selects_pods(
            &json!({ "matchLabels": service["spec"]["selector"] })
        ));
        let ports = service["spec"]["ports"].as_array().expect("ports");
        ports
            .iter()
            .map(|p| container_port(container, &p["targetPort"]))
            .collect()
    };
    let public = BTreeSet::from([u64::from(settings.server.bind.port())]);
    let internal = BTreeSet::from([u64::from(internal_bind.port())]);
    assert_eq!(service_ports("admin-push"), public);
    assert_eq!(service_ports("admin-push-internal"), internal);

    let budget = one("PodDisruptionBudget");
    assert!(selects_pods(&budget["spec"]["selector"]));
    assert!(
        budget["spec"]["maxUnavailable"].is_number() || budget["spec"]["minAvailable"].is_number()
    );
}

/// Every string under an `expr` key (panel queries) or a `definition` key (variables).
fn queries(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr" | "definition", Value::String(query)) => found.push(query.clone()),
                    _ => queries(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| queries(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn grafana_dashboard_queries_only_series_the_service_exports() {
    let app = spawn_app().await;
    // Labelled series appear once counted: a delivery, an accepted emit, a refused emit, a
    // refused subscriber, a counted and a refused receipt and a refused presence report make
    // every family show.
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let id = app.emit_product("prod_metrics").await;
    tab.events(1).await;
    for receipt in [
        json!({ "type": "receipt", "id": id }),
        json!({ "type": "receipt", "id": "1-1" }),
    ] {
        tab.send_text(&receipt.to_string()).await;
    }
    // One record more than `presence.max_records` (16 by default).
    let records: serde_json::Map<String, Value> = (0..17)
        .map(|i| (format!("order:order_{i}"), json!("viewing")))
        .collect();
    let report = json!({ "type": "presence", "records": records });
    tab.send_text(&report.to_string()).await;
    tab.expect("presence_refused").await;
    let refused = app
        .http
        .post(format!("{}/internal/emit", app.internal_base));
    assert_eq!(refused.send().await.expect("emit").status(), 401);
    let (status, _) = app
        .refusal(Transport::Sse, "", Some("not-a-jwt"), &[])
        .await;
    assert_eq!(status, 401);

    eventually("the receipts to be counted", || async {
        let text = app.metrics().await;
        text.contains("admin_push_screen_refresh_seconds_count")
            && text.contains("admin_push_receipts_refused_total")
    })
    .await;
    let text = app.metrics().await;
    let mut exported = BTreeSet::new();
    for line in text.lines() {
        if let Some([name, kind]) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.split_once(' '))
            .map(|(name, kind)| [name, kind])
        {
            exported.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{suffix}"));
                }
            }
        }
    }

    let dashboard: Value =
        serde_json::from_str(&read("deploy/grafana/admin-push.json")).expect("dashboard JSON");
    let mut found = Vec::new();
    queries(&dashboard, &mut found);
    let mut used = BTreeSet::new();
    for query in &found {
        let names: Vec<&str> = query
            .match_indices("admin_push_")
            .map(|(at, _)| {
                let rest = &query[at..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect();
        assert!(!names.is_empty(), "{query:?} reads no admin-push series");
        for name in names {
            assert!(
                exported.contains(name),
                "{name} is not exported; /metrics has {exported:?}"
            );
            used.insert(name);
        }
    }
    for topic in [
        "admin_push_connections",
        "admin_push_deliveries_total",
        "admin_push_delivery_seconds_bucket",
        "admin_push_resyncs_total",
        "admin_push_emit_rejected_total",
        "admin_push_screen_refresh_seconds_bucket",
        "admin_push_presence_records",
        "admin_push_presence_refused_total",
        "admin_push_receipts_refused_total",
    ] {
        assert!(used.contains(topic), "the dashboard should chart {topic}");
    }
}

/// The variables the `Containerfile`'s `ENV` instructions set (continuation lines joined).
fn containerfile_environment() -> Vec<(String, String)> {
    let file = read("Containerfile").replace("\\\n", " ");
    admin_push_variables(file.lines().filter_map(|l| l.strip_prefix("ENV ")))
}

#[test]
fn container_image_runs_in_production_and_refuses_the_development_secrets() {
    let environment = containerfile_environment();
    assert!(
        environment.contains(&(
            "ADMIN_PUSH__SERVER__PRODUCTION".to_owned(),
            "true".to_owned()
        )),
        "the image should set ADMIN_PUSH__SERVER__PRODUCTION=true: {environment:?}"
    );
    // The image ships an empty config.toml: every key at its default, secrets included.
    let empty = scratch_dir("container-environment").join("config.toml");
    std::fs::write(&empty, "").expect("config");
    assert_refuses_the_development_secrets(&empty, &environment);
}

const IMAGE: &str = "localhost/admin-push:test";
const BUILDER: &str = "localhost/admin-push-test-builder:bookworm-ca";
/// crun, podman's default runtime on Debian, refuses hosts that mix cgroup v1 and v2; runc runs
/// on both. podman's default limits (a million open files) can exceed what the host allows.
const RUNTIME: [&str; 2] = ["--runtime", "runc"];
const LIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
];

fn podman(args: &[&str]) -> Command {
    let mut command = Command::new("podman");
    command.args(args);
    command
}

/// The stand-in for the public Rust image: a Debian rootfs made here by debootstrap, run with
/// this machine's toolchain and crate cache mounted read-only (so the build needs no registry).
fn ensure_builder_image() {
    if podman(&["image", "exists", BUILDER])
        .status()
        .expect("podman")
        .success()
    {
        return;
    }
    let rootfs = scratch_dir("builder-rootfs");
    run(Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=gcc,libc6-dev,busybox-static,ca-certificates",
            "bookworm",
        ])
        .arg(&rootfs)
        .stdout(Stdio::null()));
    run(Command::new("sh").arg("-c").arg(format!(
        "tar -C '{}' -c . | podman import \
         --change 'ENV PATH=/usr/local/rust/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
         --change 'ENV CARGO_HOME=/cargo' --change 'ENV CARGO_NET_OFFLINE=true' - {BUILDER}",
        rootfs.display()
    )));
    std::fs::remove_dir_all(&rootfs).expect("rootfs removed");
}

fn build_image() {
    let sysroot = run(
        Command::new(std::env::var("RUSTC").unwrap_or("rustc".into())).args(["--print", "sysroot"]),
    );
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").expect("HOME")));
    let started = Instant::now();
    // At the lowest priority: a cold build compiles for minutes, and the rest of the suite runs
    // beside it with waits of its own.
    run(Command::new("nice")
        .args(["-n", "19", "podman", "build"])
        .args(RUNTIME)
        .args(["--format", "docker", "-t", IMAGE])
        .arg("-f")
        .arg(repo_file("Containerfile"))
        .args(["--build-arg", &format!("RUST_IMAGE={BUILDER}")])
        .args(["-v", &format!("{}:/usr/local/rust:ro", sysroot.trim())])
        .args(["-v", &format!("{cargo_home}/registry:/cargo/registry:ro")])
        .arg(env!("CARGO_MANIFEST_DIR")));
    eprintln!("container image built in {:.0?}", started.elapsed());
}

fn inspect(what: &str, format: &str) -> String {
    run(&mut podman(&["inspect", "--format", format, what]))
        .trim()
        .to_owned()
}

/// A container, removed when the test ends however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", &self.0]).output();
    }
}

#[tokio::test]
async fn container_image_is_small_unprivileged_serves_both_transports_and_drains_on_sigterm() {
    if !["podman", "runc", "debootstrap"]
        .map(require)
        .iter()
        .all(|&found| found)
    {
        return;
    }
    ensure_builder_image();
    build_image();

    let bytes: u64 = inspect(IMAGE, "{{.Size}}").parse().expect("size");
    eprintln!("container image: {:.1} MB", bytes as f64 / 1e6);
    assert!(bytes < 40_000_000, "image is {bytes} bytes");
    let user = inspect(IMAGE, "{{.Config.User}}");
    assert!(
        !["", "0", "root"].contains(&user.split(':').next().unwrap_or("")),
        "{user:?}"
    );

    // Without secrets the image refuses to start, naming the key, instead of serving with the
    // published development ones.
    let refused = podman(&["run", "--rm"])
        .args(RUNTIME)
        .args(LIMITS)
        .arg(IMAGE)
        .output()
        .expect("podman run");
    let logs = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{logs}");
    assert!(logs.contains("auth.jwt_secret"), "{logs}");

    // Configuration from a mounted file (an extra event name) and from variables (the secrets).
    let dir = scratch_dir("container");
    let config = dir.join("config.toml");
    std::fs::write(&config, "[events]\nextra = [\"collection.updated\"]\n").expect("config");
    let id = run(podman(&["run", "-d", "-p", "127.0.0.1::8080"])
        .args(RUNTIME)
        .args(LIMITS)
        .args([
            "-v",
            &format!("{}:/etc/admin-push/config.toml:ro", config.display()),
        ])
        .args(["-e", &format!("ADMIN_PUSH__AUTH__JWT_SECRET={JWT_SECRET}")])
        .args([
            "-e",
            &format!("ADMIN_PUSH__INTERNAL__SECRETS=[\"{EMIT_SECRET}\"]"),
        ])
        .args(["-e", "ADMIN_PUSH__SERVER__DRAIN_SECS=1"])
        .arg(IMAGE));
    let container = Container(id.trim().to_owned());
    let published = run(&mut podman(&["port", &container.0, "8080/tcp"]));
    let published = published
        .lines()
        .next()
        .expect("a published port")
        .to_owned();
    let front = client(&published, &format!("http://{published}"));

    eventually("the container to serve /healthz", || async {
        let response = front.http.get(format!("{}/healthz", front.base)).send();
        response.await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    run(&mut podman(&["healthcheck", "run", &container.0]));
    let top = run(&mut podman(&["top", &container.0, "user"]));
    assert_eq!(top.lines().nth(1).map(str::trim), Some("65532"), "{top}");
    // `rediss://` without `hub.redis_ca_file` trusts the system roots: the image must carry them.
    run(&mut podman(&[
        "exec",
        &container.0,
        "/busybox",
        "test",
        "-s",
        "/etc/ssl/certs/ca-certificates.crt",
    ]));

    let event = json!({ "event": "collection.updated", "data": { "id": "pcol_1" } });
    let mut tabs = assert_both_transports_deliver(&front, event).await;

    // SIGTERM: every tab is told to reconnect, then closed; the process exits 0.
    let name = container.0.clone();
    let stop = tokio::task::spawn_blocking(move || run(&mut podman(&["stop", "-t", "30", &name])));
    for (tab, end) in tabs.iter_mut().zip([End::Closed(1012), End::Eof]) {
        tab.expect("reconnect").await;
        assert_eq!(tab.end().await, end);
    }
    stop.await.expect("podman stop");
    assert_eq!(inspect(&container.0, "{{.State.ExitCode}}"), "0");
}
