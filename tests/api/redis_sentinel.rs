//! Sentinel: a real master, a replica and three `redis-sentinel`s, and a forced failover in the
//! middle of an emit storm. Replication is asynchronous, so the new master may lack appends the
//! old one acknowledged; every tab must end with every acknowledged event or a `resync`, never
//! with silence.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use serde_json::json;

use crate::helpers::{
    RedisServer, Transport, acl_rules, add_acl_user, eventually, free_port, require,
    spawn_ready_redis_app,
};

const MASTER: &str = "pushmaster";
/// Upper bound on Sentinel turning the old master into a replica after a forced failover.
const DEMOTION_WAIT: std::time::Duration = std::time::Duration::from_secs(40);

/// What `ROLE` says a server is (`master`, `slave`), or why it cannot say.
async fn role(server: &RedisServer) -> String {
    let answer = async {
        let client = ::redis::Client::open(server.url())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let role: Vec<::redis::Value> = ::redis::cmd("ROLE").query_async(&mut connection).await?;
        Ok::<_, ::redis::RedisError>(match role.first() {
            Some(::redis::Value::BulkString(name)) => String::from_utf8_lossy(name).into_owned(),
            other => format!("{other:?}"),
        })
    };
    answer.await.unwrap_or_else(|e| e.to_string())
}

/// A `redis-sentinel` on a free port with its own (writable) configuration file; killed on drop.
struct Sentinel {
    port: u16,
    child: std::process::Child,
}

impl Sentinel {
    fn start(dir: &std::path::Path, master_port: u16) -> Self {
        let port = free_port();
        let config = dir.join(format!("sentinel-{port}.conf"));
        std::fs::write(
            &config,
            format!(
                "port {port}\nbind 127.0.0.1\n\
                 sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER} 2000\n\
                 sentinel failover-timeout {MASTER} 10000\n"
            ),
        )
        .expect("sentinel config");
        let child = std::process::Command::new("redis-sentinel")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-sentinel starts");
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn query<T: ::redis::FromRedisValue>(&self, args: &[&str]) -> Option<T> {
        let client = ::redis::Client::open(self.url()).ok()?;
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        let mut cmd = ::redis::cmd("SENTINEL");
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut connection).await.ok()
    }

    /// The port of the master this sentinel currently names.
    async fn master_port(&self) -> Option<u16> {
        let (_, port): (String, String) = self.query(&["GET-MASTER-ADDR-BY-NAME", MASTER]).await?;
        port.parse().ok()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Emits unkeyed `order.updated` events one after another until told to stop; returns the ids
/// answered `202` and how many attempts were refused (503/504) along the way.
async fn storm(
    app: &crate::helpers::TestApp,
    name: &str,
    stop: &AtomicBool,
) -> (Vec<String>, usize) {
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = json!({ "event": "order.updated", "data": { "id": format!("{name}-{n}") } });
        let response = app.emit(&body).await;
        match response.status().as_u16() {
            202 => {
                let answer: serde_json::Value = response.json().await.expect("json");
                acknowledged.push(answer["id"].as_str().expect("id").to_owned());
            }
            503 | 504 => refused += 1,
            other => panic!("unexpected {other} during the storm"),
        }
    }
    (acknowledged, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sentinel_failover_during_an_emit_storm_every_tab_has_every_acknowledged_event_or_a_resync()
 {
    if !require("redis-sentinel") {
        return;
    }
    let Some(master) = RedisServer::start().await else {
        return;
    };
    let replica_args = ["--replicaof", "127.0.0.1", &master.port.to_string()].map(str::to_owned);
    let Some(replica) = RedisServer::start_with(free_port(), &replica_args).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|_| Sentinel::start(dir.path(), master.port))
        .collect();
    eventually("the sentinels to know the replica", || async {
        let replicas: Option<Vec<::redis::Value>> = sentinels[0].query(&["REPLICAS", MASTER]).await;
        replicas.is_some_and(|r| !r.is_empty())
    })
    .await;

    // The documented ACL user, on both servers (ACLs are not replicated).
    let password = "a-long-redis-password-for-the-push-service";
    for server in [&master, &replica] {
        add_acl_user(&server.url(), &acl_rules("t:failover", ""), password).await;
    }
    let nodes: Vec<String> = sentinels.iter().map(Sentinel::url).collect();
    let app = Arc::new(
        spawn_ready_redis_app(json!({
            "redis_mode": "sentinel",
            "redis_nodes": nodes,
            "redis_master": MASTER,
            "stream_key": "t:failover",
            "redis_timeout_ms": 1000,
            "redis_username": "admin-push",
            "redis_password": password,
        }))
        .await,
    );
    let mut tabs = Vec::new();
    for transport in [Transport::Ws, Transport::Sse] {
        let mut tab = app.subscribe(transport, "").await;
        tab.ready().await;
        tabs.push((transport, tab));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let storms: Vec<_> = ["a", "b"]
        .map(|name| {
            let (app, stop) = (Arc::clone(&app), Arc::clone(&stop));
            tokio::spawn(async move { storm(&app, name, &stop).await })
        })
        .into_iter()
        .collect();
    // Let the storm get going, force the failover in its middle, and keep it blowing until the
    // service publishes through the new master.
    for _ in 0..50 {
        app.emit_product("before-failover").await;
    }
    let _: Option<::redis::Value> = sentinels[0].query(&["FAILOVER", MASTER]).await;
    eventually("the sentinels to name the replica as master", || async {
        sentinels[0].master_port().await == Some(replica.port)
    })
    .await;
    // Sentinel demotes the old master only once its own periodic checks see it still claiming
    // the role, which takes longer than most waits here.
    let started = std::time::Instant::now();
    while role(&master).await != "slave" {
        assert!(
            started.elapsed() < DEMOTION_WAIT,
            "the old master is still {:?}",
            role(&master).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    eprintln!(
        "old master demoted {:?} after the failover",
        started.elapsed()
    );
    eventually("the instance to be ready on the new master", || async {
        app.ready_status().await == 200
    })
    .await;
    let probe = json!({ "event": "product.updated", "data": { "id": "after-failover" } });
    eventually("emits to go through the new master", || async {
        app.emit(&probe).await.status() == 202
    })
    .await;
    for _ in 0..50 {
        app.emit(&probe).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = HashSet::new();
    let mut refused = 0;
    for storm in storms {
        let (ids, failed) = storm.await.expect("storm");
        acknowledged.extend(ids);
        refused += failed;
    }
    let marker = app.emit_product("marker").await;

    for (transport, mut tab) in tabs {
        let (mut delivered, mut resyncs) = (HashSet::new(), 0);
        loop {
            let message = tab.next().await.expect("the tab stays connected");
            if message.event == "resync" {
                resyncs += 1;
                continue;
            }
            let id = message.id.expect("an event");
            if id == marker {
                break;
            }
            if message.event == "order.updated" {
                assert!(delivered.insert(id.clone()), "{transport:?}: {id} twice");
            }
        }
        let missing = acknowledged.difference(&delivered).count();
        eprintln!(
            "{transport:?}: storm acknowledged {} (refused {refused}), delivered {}, missing {missing}, resyncs {resyncs}",
            acknowledged.len(),
            delivered.len()
        );
        assert!(
            missing == 0 || resyncs > 0,
            "{transport:?}: {missing} acknowledged events lost without a resync"
        );
    }
}
