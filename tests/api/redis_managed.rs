//! Redis as managed services offer it, each against real servers the test starts: TLS only (with
//! a CA and a client certificate made by `openssl` here), an ACL user with the least privileges
//! the documentation lists, and a Cluster (also through the failover of the master holding the
//! stream).

use std::{
    collections::HashSet,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use admin_push::Application;
use serde_json::json;

use crate::helpers::{
    RedisServer, Storm, Tabs, TestApp, Transport, acl_rules, add_acl_user,
    assert_ticket_opens_exactly_once, delivered_again, emit_until_acknowledged, emit_with_key,
    eventually, free_cluster_port, free_port, info, one_storm_at_a_time, require, spawn_binary,
    spawn_ready_redis_app, stream_ids, test_settings,
};

/// What docs/redis.md adds to the ACL rule in cluster mode.
const CLUSTER_ACL: &str = "+cluster|slots";

/// The ACL user's password in these tests.
const PASSWORD: &str = "a-long-redis-password-for-the-push-service";

fn run(program: &str, args: &[&str], dir: &Path) {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`<name>.pem`) and, signed by it, a certificate and key for `<name>-server` and
/// `<name>-client`, valid for 127.0.0.1.
fn make_ca(dir: &Path, name: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_key = format!("{name}.key");
    let ca = format!("{name}.pem");
    let subject = format!("/CN={name}");
    let mut args = vec!["req", "-x509", "-days", "1", "-subj", &subject];
    args.extend(ec);
    args.extend(["-keyout", &ca_key, "-out", &ca]);
    run("openssl", &args, dir);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write");
    for role in ["server", "client"] {
        let key = format!("{name}-{role}.key");
        let csr = format!("{name}-{role}.csr");
        let cert = format!("{name}-{role}.pem");
        let mut args = vec![
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &csr,
        ];
        args.extend(ec);
        run("openssl", &args, dir);
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-days",
                "1",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-extfile",
                "san.ext",
                "-out",
                &cert,
            ],
            dir,
        );
    }
}

/// CAs made in a fresh directory (`ca` and `also`), and a TLS-only server with the `ca-server`
/// certificate that trusts `ca.pem` for clients; `client_auth` is `tls-auth-clients` (`yes`: a
/// client certificate is required). `None` after a loud skip when openssl is missing.
async fn tls_redis(client_auth: &str, also: &[&str]) -> Option<(tempfile::TempDir, RedisServer)> {
    if !require("openssl") {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for name in std::iter::once("ca").chain(also.iter().copied()) {
        make_ca(dir.path(), name);
    }
    let file = |name: &str| dir.path().join(name).display().to_string();
    let args = [
        "--tls-cert-file".to_owned(),
        file("ca-server.pem"),
        "--tls-key-file".to_owned(),
        file("ca-server.key"),
        "--tls-ca-cert-file".to_owned(),
        file("ca.pem"),
        "--tls-auth-clients".to_owned(),
        client_auth.to_owned(),
    ];
    let redis = RedisServer::start_with(free_port(), &args).await?;
    Some((dir, redis))
}

/// Why an instance with these `hub` settings (on the Redis backplane) refuses to start.
async fn start_up_error(mut hub: serde_json::Value) -> String {
    hub["backend"] = json!("redis");
    let settings = test_settings(json!({ "hub": hub })).expect("valid settings");
    Application::build(settings)
        .await
        .expect_err("a configuration mistake stops the start")
        .to_string()
}

/// Publishes and delivers through `app`, keyed and not, and a ticket opens a connection once.
async fn assert_it_works(app: &TestApp) {
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let id = app.emit_product("prod_1").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(id));
    let order = json!({ "event": "order.updated", "data": { "id": "order_1" } });
    let keyed = || emit_with_key(app, "order_1-placed", &order);
    let first: serde_json::Value = keyed().await.json().await.expect("json");
    let again: serde_json::Value = keyed().await.json().await.expect("json");
    assert_eq!(again, first, "a repeated key publishes once");
    assert_eq!(
        tab.expect("order.updated").await.id.as_deref(),
        first["id"].as_str()
    );
    assert_ticket_opens_exactly_once(app, app).await;
}

#[tokio::test]
async fn the_service_runs_on_tls_only_redis_with_a_configured_ca_and_client_certificate() {
    let Some((dir, redis)) = tls_redis("yes", &[]).await else {
        return;
    };
    let file = |name: &str| dir.path().join(name).display().to_string();
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let app = spawn_ready_redis_app(json!({
        "redis_url": url,
        "stream_key": "t:tls",
        "redis_ca_file": file("ca.pem"),
        "redis_client_cert_file": file("ca-client.pem"),
        "redis_client_key_file": file("ca-client.key"),
    }))
    .await;
    assert_it_works(&app).await;
}

/// Why an instance that trusts the CA `ca` and has no client certificate refuses to start on a
/// [`tls_redis`] server (`client_auth`, with the CAs `also` made beside). `None` after a loud skip.
async fn tls_start_up_error(client_auth: &str, also: &[&str], ca: &str) -> Option<String> {
    let (dir, redis) = tls_redis(client_auth, also).await?;
    let error = start_up_error(json!({
        "redis_url": format!("rediss://127.0.0.1:{}", redis.port),
        "redis_ca_file": dir.path().join(ca).display().to_string(),
    }))
    .await;
    Some(error)
}

#[tokio::test]
async fn a_redis_certificate_from_another_ca_stops_the_start_naming_the_ca_setting() {
    let Some(error) = tls_start_up_error("no", &["other"], "other.pem").await else {
        return;
    };
    assert!(error.contains("hub.redis_ca_file"), "{error}");
    assert!(error.contains("TLS"), "{error}");
}

#[tokio::test]
async fn a_redis_that_requires_a_client_certificate_stops_a_start_without_one_naming_the_client_certificate()
 {
    let Some(error) = tls_start_up_error("yes", &[], "ca.pem").await else {
        return;
    };
    assert!(
        error.starts_with("configuration: hub.redis_client_cert_file:"),
        "{error}"
    );
    assert!(error.contains("requires a client certificate"), "{error}");
}

/// A server with the documented ACL user for the default stream key.
async fn acl_redis() -> Option<RedisServer> {
    let redis = RedisServer::start().await?;
    add_acl_user(&redis.url(), &acl_rules("admin-push:events", ""), PASSWORD).await;
    Some(redis)
}

#[tokio::test]
async fn the_service_runs_as_an_acl_user_with_only_the_documented_rules() {
    let Some(redis) = acl_redis().await else {
        return;
    };
    let app = spawn_ready_redis_app(json!({
        "redis_url": redis.url(),
        "redis_username": "admin-push",
        "redis_password": PASSWORD,
    }))
    .await;
    assert_it_works(&app).await;
    // The same credentials in the URL work too.
    let in_url = format!("redis://admin-push:{PASSWORD}@127.0.0.1:{}", redis.port);
    let other = spawn_ready_redis_app(json!({ "redis_url": in_url })).await;
    let mut tab = other.subscribe(Transport::Sse, "").await;
    tab.ready().await;
    let id = app.emit_product("prod_2").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(id));
}

#[tokio::test]
async fn a_wrong_redis_password_stops_the_start_naming_the_setting() {
    let Some(redis) = acl_redis().await else {
        return;
    };
    let error = start_up_error(json!({
        "redis_url": redis.url(),
        "redis_username": "admin-push",
        "redis_password": "a-wrong-password",
    }))
    .await;
    assert!(error.contains("hub.redis_password"), "{error}");
    assert!(
        !error.contains("a-wrong-password"),
        "never echo a secret: {error}"
    );
}

#[test]
fn cluster_mode_refuses_a_stream_key_without_a_hash_tag() {
    let error = test_settings(json!({ "hub": {
        "backend": "redis",
        "redis_mode": "cluster",
        "redis_nodes": ["redis://127.0.0.1:7000"],
        "stream_key": "admin-push:events",
    }}))
    .expect_err("keys would spread over slots")
    .to_string();
    assert!(error.contains("hub.stream_key"), "{error}");
}

/// A Redis Cluster of `masters` masters with `replicas` replicas each, created with
/// `redis-cli --cluster create` and waited on until every node sees it as ok and every replica
/// has synced with its master. A node that stops
/// answering is failed over after `node_timeout_ms`. `None` (after a loud skip) without the programs.
async fn start_cluster(
    masters: usize,
    replicas: usize,
    node_timeout_ms: u32,
) -> Option<(tempfile::TempDir, Vec<RedisServer>)> {
    if !require("redis-cli") {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nodes = Vec::new();
    for _ in 0..masters * (1 + replicas) {
        let port = free_cluster_port();
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &dir.path()
                .join(format!("nodes-{port}.conf"))
                .display()
                .to_string(),
            "--cluster-node-timeout",
            &node_timeout_ms.to_string(),
            // A replica syncs at once (not after the default 5 s wait for more replicas), so
            // that it may be promoted: one that never synced is refused a failover.
            "--repl-diskless-sync-delay",
            "0",
        ]
        .map(str::to_owned);
        nodes.push(RedisServer::start_with(port, &args).await?);
    }
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let replicas = replicas.to_string();
    let mut create = vec!["--cluster", "create"];
    create.extend(addresses.iter().map(String::as_str));
    create.extend(["--cluster-replicas", &replicas, "--cluster-yes"]);
    run("redis-cli", &create, dir.path());
    for node in &nodes {
        let url = node.url();
        eventually("every node to see the cluster as ok", || {
            let url = url.clone();
            async move {
                let (Some(cluster), Some(replication)) = (
                    info(&url, "CLUSTER", "INFO").await,
                    info(&url, "INFO", "replication").await,
                ) else {
                    return false;
                };
                cluster.contains("cluster_state:ok")
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            }
        })
        .await;
    }
    Some((dir, nodes))
}

/// Which of `nodes` is the master holding `key` now: the one that serves it (the others answer
/// `MOVED`, replicas included).
async fn master_of(nodes: &[RedisServer], key: &str) -> usize {
    for (i, node) in nodes.iter().enumerate() {
        let Ok(client) = ::redis::Client::open(node.url()) else {
            continue;
        };
        let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
            continue;
        };
        let served: Result<i64, _> = ::redis::cmd("XLEN")
            .arg(key)
            .query_async(&mut connection)
            .await;
        if served.is_ok() {
            return i;
        }
    }
    panic!("no node serves {key}");
}

#[tokio::test]
async fn the_service_runs_on_a_three_node_cluster_as_an_acl_user_and_its_instances_share_presence()
{
    let Some((_dir, nodes)) = start_cluster(3, 0, 2000).await else {
        return;
    };
    let stream_key = "{t-cluster}:events";
    let rules = acl_rules(stream_key, CLUSTER_ACL);
    for node in &nodes {
        add_acl_user(&node.url(), &rules, PASSWORD).await;
    }
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let instance = || {
        spawn_ready_redis_app(json!({
            "redis_mode": "cluster",
            "redis_nodes": urls,
            "stream_key": stream_key,
            "redis_username": "admin-push",
            "redis_password": PASSWORD,
        }))
    };
    let (app, other) = (instance().await, instance().await);
    assert_it_works(&app).await;
    crate::presence::assert_instances_share_presence(&app, &other).await;
}

#[tokio::test]
async fn when_the_clusters_stream_master_dies_every_tab_is_told_to_resync_and_emits_recover() {
    cluster_failover(|master| master.stop()).await;
}

#[tokio::test]
async fn when_the_clusters_stream_master_hangs_every_tab_is_told_to_resync_and_emits_recover() {
    cluster_failover(|master| master.pause()).await;
}

/// A cluster with a replica per master, an instance with a WebSocket and an SSE tab, and `fail`
/// done to the master holding the stream: emits are refused plainly until the replica is
/// promoted, then acknowledged again, and every tab is told to resync before the first new event.
async fn cluster_failover(fail: impl FnOnce(&mut RedisServer)) {
    let Some((_dir, mut nodes)) = start_cluster(3, 1, 1000).await else {
        return;
    };
    let stream_key = "{t-failover}:events";
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let app = cluster_app(&urls, stream_key).await;
    let mut tabs = Vec::new();
    for transport in crate::helpers::BOTH {
        let mut tab = app.subscribe(transport, "").await;
        tab.ready().await;
        tabs.push(tab);
    }
    let before = app.emit_product("before").await;
    for tab in &mut tabs {
        assert_eq!(tab.expect("product.updated").await.id, Some(before.clone()));
    }

    // The replica that takes over may lack what the dead master acknowledged last: nothing can
    // tell, so every tab must be told to refetch.
    let master = master_of(&nodes, stream_key).await;
    fail(&mut nodes[master]);
    // Readiness tells the truth: the stream cannot be followed until a replica is promoted.
    eventually("readiness to turn 503", || async {
        app.ready_status().await == 503
    })
    .await;
    emit_until_acknowledged(&app).await;
    // Whatever was acknowledged meanwhile was delivered or is covered by the resync, which
    // comes first; from then on, what is emitted is delivered.
    for tab in &mut tabs {
        assert_eq!(tab.expect("resync").await.data["reason"], "restart");
        delivered_again(&app, tab).await;
    }
    assert_eq!(app.ready_status().await, 200);
}

/// An instance on the cluster at `urls`, following `stream_key`, once it is ready.
async fn cluster_app(urls: &[String], stream_key: &str) -> TestApp {
    cluster_app_with(urls, stream_key, json!({})).await
}

/// [`cluster_app`] with these other `hub` settings.
async fn cluster_app_with(
    urls: &[String],
    stream_key: &str,
    mut hub: serde_json::Value,
) -> TestApp {
    hub["redis_mode"] = json!("cluster");
    hub["redis_nodes"] = json!(urls);
    hub["stream_key"] = json!(stream_key);
    spawn_ready_redis_app(hub).await
}

#[tokio::test]
async fn an_instance_frozen_across_the_clusters_failover_tells_its_tabs_to_resync_when_it_thaws() {
    let Some((_dir, mut nodes)) = start_cluster(3, 1, 1000).await else {
        return;
    };
    let stream_key = "{t-thaw}:events";
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let frozen = spawn_binary(&[
        ("ADMIN_PUSH__HUB__BACKEND", "redis".to_owned()),
        ("ADMIN_PUSH__HUB__REDIS_MODE", "cluster".to_owned()),
        ("ADMIN_PUSH__HUB__REDIS_NODES", json!(urls).to_string()),
        ("ADMIN_PUSH__HUB__STREAM_KEY", stream_key.to_owned()),
    ])
    .await;
    let other = cluster_app(&urls, stream_key).await;
    eventually("the instance to be frozen to be ready", || async {
        frozen.app.ready_status().await == 200
    })
    .await;
    let mut tab = frozen.app.subscribe(Transport::Sse, "").await;
    tab.ready().await;
    let before = other.emit_product("before").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(before));

    // Frozen while the stream's master dies and its replica takes over; acknowledged meanwhile
    // through the other instance, which the promoted replica may or may not have.
    let pid = frozen.child.id().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    signal("-STOP");
    let master = master_of(&nodes, stream_key).await;
    nodes[master].stop();
    emit_until_acknowledged(&other).await;
    signal("-CONT");

    // Thawed, it cannot prove its tab missed nothing: resync first, then live events again.
    assert_eq!(tab.expect("resync").await.data["reason"], "restart");
    delivered_again(&other, &mut tab).await;
}

#[tokio::test]
async fn when_the_clusters_stream_master_restarts_empty_every_tab_is_told_to_resync() {
    // No replica: the master comes back with its slots and without its data.
    let Some((_dir, mut nodes)) = start_cluster(3, 0, 1000).await else {
        return;
    };
    let stream_key = "{t-empty}:events";
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let app = cluster_app(&urls, stream_key).await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let before = app.emit_product("before").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(before));

    let master = master_of(&nodes, stream_key).await;
    nodes[master].restart().await;
    emit_until_acknowledged(&app).await;
    assert_eq!(tab.expect("resync").await.data["reason"], "restart");
    delivered_again(&app, &mut tab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_clusters_stream_master_restarts_empty_during_an_emit_storm_every_tab_on_every_instance_is_told_to_resync_once()
 {
    let _alone = one_storm_at_a_time().await;
    let label = "cluster master restarted empty";
    // No replica: the master comes back with its slots and without its data.
    let Some((_dir, mut nodes)) = start_cluster(3, 0, 1000).await else {
        return;
    };
    let stream_key = "{t-empty-storm}:events";
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let settings = json!({ "history": 1_000_000, "redis_timeout_ms": 1000 });
    let apps = [
        Arc::new(cluster_app_with(&urls, stream_key, settings.clone()).await),
        Arc::new(cluster_app_with(&urls, stream_key, settings).await),
    ];
    let tabs = Tabs::open(&apps).await;
    let storm = Storm::start(&apps).await;
    let master = master_of(&nodes, stream_key).await;
    let restarted = Instant::now();
    nodes[master].restart().await;
    tabs.resynced().await;
    storm
        .acknowledged_after("emits acknowledged after the restart", Instant::now())
        .await;
    let (acks, refused) = storm.stop().await;
    let kept: HashSet<String> = stream_ids(&nodes[master].url(), stream_key)
        .await
        .into_iter()
        .collect();
    let lost = acks.iter().filter(|ack| !kept.contains(&ack.id)).count();
    eprintln!(
        "{label}: acknowledged {} (refused {refused}), of which {lost} went with the restart; \
         every tab resynced within {:?} of it",
        acks.len(),
        restarted.elapsed()
    );
    let acknowledged: HashSet<String> = acks.into_iter().map(|ack| ack.id).collect();
    tabs.assert_every_tab_resynced_once(&apps[0], &acknowledged, label)
        .await;
}

#[tokio::test]
async fn in_a_cluster_min_replicas_waits_on_the_stream_masters_replica() {
    let Some((_dir, nodes)) = start_cluster(3, 1, 2000).await else {
        return;
    };
    let stream_key = "{t-durable}:events";
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let app = spawn_ready_redis_app(json!({
        "redis_mode": "cluster",
        "redis_nodes": urls,
        "stream_key": stream_key,
        "redis_min_replicas": 1,
    }))
    .await;
    assert_it_works(&app).await;
    // Every replica frozen: no append can reach one, so none is acknowledged.
    let master = master_of(&nodes, stream_key).await;
    let replicas: Vec<&RedisServer> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != master)
        .map(|(_, node)| node)
        .collect();
    for node in &replicas {
        node.pause();
    }
    let response = app
        .emit(&json!({ "event": "product.updated", "data": { "id": "unreplicated" } }))
        .await;
    for node in &replicas {
        node.resume();
    }
    assert_eq!(response.status(), 504);
}

/// How a storm test fails the master holding the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ClusterFailure {
    /// `kill -9`: the cluster promotes a replica once the master is down for the node timeout.
    Killed,
    /// `CLUSTER FAILOVER` run on a replica: the master stops taking writes until the replica has
    /// them all, and hands over.
    Manual,
    /// SIGSTOP: the master hangs, holding its connections open, until the cluster promotes a
    /// replica; thawed afterwards, it finds itself demoted.
    Frozen,
}

/// The nodes replicating `nodes[master]`.
async fn replicas_of(nodes: &[RedisServer], master: usize) -> Vec<usize> {
    let mut replicas = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let replication = info(&node.url(), "INFO", "replication").await;
        if replication.is_some_and(|r| {
            r.contains("role:slave") && r.contains(&format!("master_port:{}\r", nodes[master].port))
        }) {
            replicas.push(i);
        }
    }
    replicas
}

/// Which of `candidates` says it is a master now, if any.
async fn promoted(nodes: &[RedisServer], candidates: &[usize]) -> Option<usize> {
    for &i in candidates {
        let replication = info(&nodes[i].url(), "INFO", "replication").await;
        if replication.is_some_and(|r| r.contains("role:master")) {
            return Some(i);
        }
    }
    None
}

/// Two instances with a WebSocket and an SSE tab each, an emit storm through both, and the
/// master holding the stream failed over: every tab is told to resync once, emits recover on the
/// promoted replica, and with `min_replicas` (and a replica left to wait on after the failover)
/// nothing acknowledged is lost.
async fn cluster_failover_during_an_emit_storm(failure: ClusterFailure, min_replicas: u32) {
    let _alone = one_storm_at_a_time().await;
    let label = format!("cluster {failure:?} (min_replicas {min_replicas})");
    // With replicas required, one more than required: the promoted one needs a replica too.
    let Some((_dir, mut nodes)) = start_cluster(3, 1 + min_replicas as usize, 1000).await else {
        return;
    };
    let stream_key = "{t-storm}:events";
    let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
    let settings = json!({
        // Room for the whole storm, so the new master's stream still holds every id it got.
        "history": 1_000_000,
        "redis_timeout_ms": 1000,
        "redis_min_replicas": min_replicas,
    });
    let apps = [
        Arc::new(cluster_app_with(&urls, stream_key, settings.clone()).await),
        Arc::new(cluster_app_with(&urls, stream_key, settings).await),
    ];
    let master = master_of(&nodes, stream_key).await;
    let replicas = replicas_of(&nodes, master).await;
    assert_eq!(replicas.len(), 1 + min_replicas as usize, "{replicas:?}");
    let tabs = Tabs::open(&apps).await;
    let storm = Storm::start(&apps).await;

    let failed = Instant::now();
    match failure {
        ClusterFailure::Killed => nodes[master].stop(),
        ClusterFailure::Frozen => nodes[master].pause(),
        ClusterFailure::Manual => {
            let client = ::redis::Client::open(nodes[replicas[0]].url()).expect("url");
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .expect("connect to the replica");
            let () = ::redis::cmd("CLUSTER")
                .arg("FAILOVER")
                .query_async(&mut connection)
                .await
                .expect("CLUSTER FAILOVER");
        }
    }
    eventually("a replica to be promoted", || async {
        promoted(&nodes, &replicas).await.is_some()
    })
    .await;
    let new_master = promoted(&nodes, &replicas).await.expect("promoted");
    let promoted_after = failed.elapsed();
    if failure == ClusterFailure::Frozen {
        nodes[master].resume();
    }
    for app in &apps {
        eventually("the instance to be ready on the new master", || async {
            app.ready_status().await == 200
        })
        .await;
    }
    // Every instance follows the new master, and emits go on there.
    tabs.resynced().await;
    storm
        .acknowledged_after("emits acknowledged after the failover", Instant::now())
        .await;
    let (acks, refused) = storm.stop().await;

    let kept: HashSet<String> = stream_ids(&nodes[new_master].url(), stream_key)
        .await
        .into_iter()
        .collect();
    let lost = acks.iter().filter(|ack| !kept.contains(&ack.id)).count();
    // How long emits went unacknowledged from the failure on.
    let mut last = failed;
    let mut outage = Duration::ZERO;
    for ack in acks.iter().filter(|ack| ack.at > failed) {
        outage = outage.max(ack.at - last);
        last = ack.at;
    }
    eprintln!(
        "{label}: replica promoted within {promoted_after:?}; acknowledged {} (refused {refused}), \
         lost {lost}; the longest wait for a 202 from the failure on: {outage:?}",
        acks.len()
    );
    if min_replicas > 0 || failure == ClusterFailure::Manual {
        assert_eq!(lost, 0, "{label}: acknowledged emits lost");
    }
    let acknowledged: HashSet<String> = acks.into_iter().map(|ack| ack.id).collect();
    tabs.assert_every_tab_resynced_once(&apps[0], &acknowledged, &label)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_clusters_stream_master_dies_during_an_emit_storm_every_tab_on_every_instance_is_told_to_resync_once()
 {
    cluster_failover_during_an_emit_storm(ClusterFailure::Killed, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_clusters_stream_master_hangs_during_an_emit_storm_every_tab_on_every_instance_is_told_to_resync_once()
 {
    cluster_failover_during_an_emit_storm(ClusterFailure::Frozen, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_replica_required_the_clusters_stream_master_dying_during_an_emit_storm_loses_nothing_acknowledged()
 {
    cluster_failover_during_an_emit_storm(ClusterFailure::Killed, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_cluster_failover_during_an_emit_storm_loses_nothing_and_tells_every_tab_to_resync_once()
 {
    cluster_failover_during_an_emit_storm(ClusterFailure::Manual, 0).await;
}
