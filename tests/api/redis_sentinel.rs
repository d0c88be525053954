//! Sentinel: a real master, a replica and three `redis-sentinel`s, every one of them with the ACL
//! user docs/redis.md gives, and two instances with WebSocket and SSE tabs in the middle of an emit
//! storm while the master is failed over (`SENTINEL FAILOVER`) or killed (`kill -9`).
//!
//! Replication is asynchronous, so the new master may lack appends the old one acknowledged: every
//! tab must end with every acknowledged event or one `resync`, never with silence. The instances
//! follow the sentinels' `+switch-master`, so whatever they acknowledge from a second after the
//! sentinels name the new master on must be in the new master's stream: nothing acknowledged from
//! then on is lost. And no server or sentinel logs a command or channel the ACL rules refused.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{
    Ack, BOTH, RedisServer, Storm, Tabs, TestApp, WAIT, acl_rules, add_acl_user, delivered_again,
    emit_until_acknowledged, eventually, free_port, one_storm_at_a_time, require, spawn_binary,
    spawn_ready_redis_app, stream_ids,
};

const MASTER: &str = "pushmaster";
/// Where the sentinels announce a new master.
const SWITCH_CHANNEL: &str = "+switch-master";
/// How soon after the sentinels name a new master the instances must be writing to it.
const SWITCH_WITHIN: Duration = Duration::from_secs(1);
/// Upper bound on Sentinel turning the old master into a replica after a forced failover.
const DEMOTION_WAIT: Duration = Duration::from_secs(40);
/// The master's password for the service's ACL user, and the sentinels' (kept apart on purpose).
const PASSWORD: &str = "a-long-redis-password-for-the-push-service";
const SENTINEL_PASSWORD: &str = "another-long-password-for-the-sentinels";
/// The sentinel rule docs/redis.md gives: `ROLE` and `SENTINEL MASTERS` (the `redis` crate's
/// lookup of the master), and subscribing to `+switch-master`.
const SENTINEL_ACL_RULES: &str =
    "on -@all +role +sentinel|masters +subscribe resetchannels &+switch-master";

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

/// The entries `ACL LOG` holds at `url` (run as the default user): every command, key or
/// channel an ACL rule refused.
async fn acl_log(url: &str) -> Vec<::redis::Value> {
    let client = ::redis::Client::open(url).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect as the default user");
    ::redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut connection)
        .await
        .expect("ACL LOG")
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

    /// As the default user, for the test itself.
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// As the service's ACL user.
    fn service_url(&self) -> String {
        format!(
            "redis://admin-push:{SENTINEL_PASSWORD}@127.0.0.1:{}",
            self.port
        )
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

    /// How many of the other sentinels this one knows (they find each other through the master).
    async fn peers(&self) -> usize {
        let peers: Option<Vec<::redis::Value>> = self.query(&["SENTINELS", MASTER]).await;
        peers.map_or(0, |p| p.len())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A master, its replica and three sentinels that know both and each other, each with the
/// service's ACL user; and the instances' `hub.redis_min_replicas`.
struct Deployment {
    master: RedisServer,
    replica: RedisServer,
    sentinels: Vec<Sentinel>,
    min_replicas: u32,
    _dir: tempfile::TempDir,
}

impl Deployment {
    /// `None` (after a loud skip) when redis-server or redis-sentinel is not installed.
    async fn start(min_replicas: u32) -> Option<Self> {
        if !require("redis-sentinel") {
            return None;
        }
        let master = RedisServer::start().await?;
        let replica_args =
            ["--replicaof", "127.0.0.1", &master.port.to_string()].map(str::to_owned);
        let replica = RedisServer::start_with(free_port(), &replica_args).await?;
        let dir = tempfile::tempdir().expect("tempdir");
        let sentinels: Vec<Sentinel> = (0..3)
            .map(|_| Sentinel::start(dir.path(), master.port))
            .collect();
        eventually(
            "the sentinels to know the replica and each other",
            || async {
                let replicas: Option<Vec<::redis::Value>> =
                    sentinels[0].query(&["REPLICAS", MASTER]).await;
                let mut everyone = replicas.is_some_and(|r| !r.is_empty());
                for sentinel in &sentinels {
                    everyone &= sentinel.peers().await == 2;
                }
                everyone
            },
        )
        .await;
        // ACLs are per server and per sentinel: neither replicated nor shared.
        let durability = if min_replicas > 0 { "+wait" } else { "" };
        let rules = acl_rules("t:failover", &format!("+role {durability}"));
        for server in [&master, &replica] {
            add_acl_user(&server.url(), &rules, PASSWORD).await;
        }
        for sentinel in &sentinels {
            add_acl_user(&sentinel.url(), SENTINEL_ACL_RULES, SENTINEL_PASSWORD).await;
        }
        Some(Self {
            master,
            replica,
            sentinels,
            min_replicas,
            _dir: dir,
        })
    }

    /// An instance that reaches the master through the sentinels, as the ACL users.
    async fn instance(&self) -> TestApp {
        let nodes: Vec<String> = self.sentinels.iter().map(Sentinel::service_url).collect();
        spawn_ready_redis_app(json!({
            "redis_mode": "sentinel",
            "redis_nodes": nodes,
            "redis_master": MASTER,
            "stream_key": "t:failover",
            // Room for the whole storm, so the new master's stream still holds every id it got.
            "history": 1_000_000,
            "redis_timeout_ms": 1000,
            "redis_min_replicas": self.min_replicas,
            "redis_username": "admin-push",
            "redis_password": PASSWORD,
        }))
        .await
    }

    /// Subscribes to every sentinel's announcements; the task ends with the moment the first
    /// one names a new master.
    async fn switch_announced(&self) -> tokio::task::JoinHandle<Instant> {
        let mut announcements = Vec::new();
        for sentinel in &self.sentinels {
            let client = ::redis::Client::open(sentinel.url()).expect("url");
            let mut pubsub = client
                .get_async_pubsub()
                .await
                .expect("connect to a sentinel");
            pubsub.subscribe(SWITCH_CHANNEL).await.expect("SUBSCRIBE");
            announcements.push(pubsub.into_on_message());
        }
        tokio::spawn(async move {
            let mut any = futures_util::stream::select_all(announcements);
            any.next().await.expect("a sentinel announces the switch");
            Instant::now()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Failure {
    /// `SENTINEL FAILOVER`: the old master stays up, and accepts writes until it is demoted.
    Forced,
    /// `kill -9` of the master: the sentinels fail over once it is down for 2 s.
    Killed,
    /// SIGSTOP of the master: it hangs with its connections open; the sentinels fail over once
    /// it has not answered for 2 s, and it is thawed (to be demoted) after the switch.
    Frozen,
}

/// The storm and the failure; with `min_replicas`, nothing acknowledged may be lost at all.
async fn fail_over_during_an_emit_storm(failure: Failure, min_replicas: u32) {
    let _alone = one_storm_at_a_time().await;
    let label = format!("{failure:?} (min_replicas {min_replicas})");
    let Some(mut deployment) = Deployment::start(min_replicas).await else {
        return;
    };
    let apps = [
        Arc::new(deployment.instance().await),
        Arc::new(deployment.instance().await),
    ];
    let tabs = Tabs::open(&apps).await;
    let storm = Storm::start(&apps).await;

    let announced = deployment.switch_announced().await;
    let failed = Instant::now();
    match failure {
        Failure::Forced => {
            let _: Option<::redis::Value> =
                deployment.sentinels[0].query(&["FAILOVER", MASTER]).await;
        }
        Failure::Killed => deployment.master.stop(),
        Failure::Frozen => deployment.master.pause(),
    }
    let switched = tokio::time::timeout(WAIT, announced)
        .await
        .expect("the sentinels announce a new master in time")
        .expect("the announcement task");
    eprintln!(
        "{label}: the sentinels announced the new master {:?} after the failure",
        switched - failed
    );
    for sentinel in &deployment.sentinels {
        eventually("every sentinel to name the replica as master", || async {
            sentinel.master_port().await == Some(deployment.replica.port)
        })
        .await;
    }
    if failure == Failure::Frozen {
        deployment.master.resume();
    }
    if failure == Failure::Forced {
        // Sentinel demotes the old master only once its own periodic checks see it still
        // claiming the role; it accepts writes until then, and none may be acknowledged.
        let started = Instant::now();
        while role(&deployment.master).await != "slave" {
            assert!(
                started.elapsed() < DEMOTION_WAIT,
                "the old master is still {:?}",
                role(&deployment.master).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "{label}: old master demoted {:?} after the announcement",
            switched.elapsed()
        );
    }
    for app in &apps {
        eventually("the instance to be ready on the new master", || async {
            app.ready_status().await == 200
        })
        .await;
    }
    storm
        .acknowledged_after(
            "emits acknowledged more than a second after the switch",
            switched + SWITCH_WITHIN,
        )
        .await;
    let (acks, refused) = storm.stop().await;

    // Nothing acknowledged from a second after the announcement on is lost: the instances were
    // writing to the new master by then.
    let kept: HashSet<String> = stream_ids(&deployment.replica.url(), "t:failover")
        .await
        .into_iter()
        .collect();
    let lost: Vec<&Ack> = acks.iter().filter(|ack| !kept.contains(&ack.id)).collect();
    let late_lost = lost
        .iter()
        .filter(|ack| ack.at > switched + SWITCH_WITHIN)
        .count();
    // Milliseconds from the announcement, negative before it.
    let since_switch = |at: Instant| {
        if at >= switched {
            (at - switched).as_secs_f64() * 1e3
        } else {
            -(switched - at).as_secs_f64() * 1e3
        }
    };
    let lost_at: Vec<f64> = lost.iter().map(|ack| since_switch(ack.at)).collect();
    let first_kept = acks
        .iter()
        .filter(|ack| ack.at >= switched && kept.contains(&ack.id))
        .map(|ack| since_switch(ack.at))
        .reduce(f64::min);
    eprintln!(
        "{label}: acknowledged {} (refused {refused}), lost {} acknowledged between {:?} ms \
         and {:?} ms from the announcement; the first kept after it at {first_kept:?} ms",
        acks.len(),
        lost.len(),
        lost_at.iter().copied().reduce(f64::min),
        lost_at.iter().copied().reduce(f64::max),
    );
    assert_eq!(
        late_lost, 0,
        "{label}: emits acknowledged more than {SWITCH_WITHIN:?} after the switch were lost"
    );
    if min_replicas > 0 {
        assert!(
            lost.is_empty(),
            "{label}: a replica had every acknowledged emit"
        );
    }

    let acknowledged: HashSet<String> = acks.into_iter().map(|ack| ack.id).collect();
    tabs.assert_every_tab_resynced_once(&apps[0], &acknowledged, &label)
        .await;

    // The rules are enough: nothing the service sent was refused, anywhere.
    let mut urls = vec![deployment.replica.url()];
    if failure == Failure::Forced {
        urls.push(deployment.master.url());
    }
    urls.extend(deployment.sentinels.iter().map(Sentinel::url));
    for url in urls {
        assert_eq!(acl_log(&url).await, Vec::new(), "{url} refused something");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_forced_sentinel_failover_during_an_emit_storm_nothing_acknowledged_a_second_after_the_switch_is_lost_and_every_tab_has_every_event_or_a_resync()
 {
    fail_over_during_an_emit_storm(Failure::Forced, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_replica_required_a_forced_sentinel_failover_during_an_emit_storm_loses_nothing_acknowledged()
 {
    fail_over_during_an_emit_storm(Failure::Forced, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_master_hangs_during_an_emit_storm_nothing_acknowledged_a_second_after_the_switch_is_lost_and_every_tab_has_every_event_or_a_resync()
 {
    fail_over_during_an_emit_storm(Failure::Frozen, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_master_is_killed_during_an_emit_storm_nothing_acknowledged_a_second_after_the_switch_is_lost_and_every_tab_has_every_event_or_a_resync()
 {
    fail_over_during_an_emit_storm(Failure::Killed, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_master_restarts_empty_during_an_emit_storm_every_tab_on_every_instance_is_told_to_resync_once()
 {
    let _alone = one_storm_at_a_time().await;
    let label = "master restarted empty";
    let Some(mut deployment) = Deployment::start(0).await else {
        return;
    };
    let apps = [
        Arc::new(deployment.instance().await),
        Arc::new(deployment.instance().await),
    ];
    let tabs = Tabs::open(&apps).await;
    let storm = Storm::start(&apps).await;
    // Back before the sentinels think it down: no failover, the same master without its data
    // (and its replica, resynced from it, without it too). ACLs live in memory: set again.
    let restarted = Instant::now();
    deployment.master.restart().await;
    let rules = acl_rules("t:failover", "+role");
    add_acl_user(&deployment.master.url(), &rules, PASSWORD).await;
    tabs.resynced().await;
    storm
        .acknowledged_after("emits acknowledged after the restart", Instant::now())
        .await;
    let (acks, refused) = storm.stop().await;
    eprintln!(
        "{label}: acknowledged {} (refused {refused}); every tab resynced within {:?} of the restart",
        acks.len(),
        restarted.elapsed()
    );
    let acknowledged: HashSet<String> = acks.into_iter().map(|ack| ack.id).collect();
    tabs.assert_every_tab_resynced_once(&apps[0], &acknowledged, label)
        .await;
}

#[tokio::test]
async fn an_instance_frozen_across_a_sentinel_failover_tells_its_tabs_to_resync_when_it_thaws() {
    let _alone = one_storm_at_a_time().await;
    let Some(deployment) = Deployment::start(0).await else {
        return;
    };
    let nodes: Vec<String> = deployment
        .sentinels
        .iter()
        .map(Sentinel::service_url)
        .collect();
    let frozen = spawn_binary(&[
        ("ADMIN_PUSH__HUB__BACKEND", "redis".to_owned()),
        ("ADMIN_PUSH__HUB__REDIS_MODE", "sentinel".to_owned()),
        ("ADMIN_PUSH__HUB__REDIS_NODES", json!(nodes).to_string()),
        ("ADMIN_PUSH__HUB__REDIS_MASTER", MASTER.to_owned()),
        ("ADMIN_PUSH__HUB__REDIS_USERNAME", "admin-push".to_owned()),
        ("ADMIN_PUSH__HUB__REDIS_PASSWORD", PASSWORD.to_owned()),
        ("ADMIN_PUSH__HUB__STREAM_KEY", "t:failover".to_owned()),
    ])
    .await;
    let other = deployment.instance().await;
    eventually("the instance to be frozen to be ready", || async {
        frozen.app.ready_status().await == 200
    })
    .await;
    let mut tabs = Vec::new();
    for transport in BOTH {
        let mut tab = frozen.app.subscribe(transport, "").await;
        tab.ready().await;
        tabs.push(tab);
    }
    let before = other.emit_product("before").await;
    for tab in &mut tabs {
        assert_eq!(
            tab.expect("product.updated").await.id.as_ref(),
            Some(&before)
        );
    }

    // Frozen while the sentinels hand the master over; acknowledged meanwhile through the other
    // instance, which the old master may have taken before it was demoted.
    let pid = frozen.child.id().to_string();
    let signal = |name: &str| {
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    signal("-STOP");
    let switched = deployment.switch_announced().await;
    let _: Option<::redis::Value> = deployment.sentinels[0].query(&["FAILOVER", MASTER]).await;
    switched.await.expect("the switch is announced");
    emit_until_acknowledged(&other).await;
    signal("-CONT");

    // Thawed, it cannot prove its tabs missed nothing: one resync each, then live events again.
    for tab in &mut tabs {
        assert_eq!(tab.expect("resync").await.data["reason"], "restart");
        delivered_again(&other, tab).await;
    }
}

#[tokio::test]
async fn instances_behind_sentinel_share_presence_before_and_after_a_failover() {
    // A failover too: not while a storm takes the machine.
    let _alone = one_storm_at_a_time().await;
    let Some(deployment) = Deployment::start(0).await else {
        return;
    };
    let (a, b) = (deployment.instance().await, deployment.instance().await);
    let mut anna = crate::presence::assert_instances_share_presence(&a, &b).await;
    let switched = deployment.switch_announced().await;
    let _: Option<String> = deployment.sentinels[0].query(&["FAILOVER", MASTER]).await;
    switched.await.expect("the switch is announced");
    // On the new master, a newcomer on another instance is seen, and sees Anna.
    let mut carl =
        crate::presence::Tab::open(&b, crate::helpers::Transport::Ws, "user_carl", "Carl").await;
    carl.report(&b, json!({ "order:order_1": "viewing" })).await;
    carl.sees("order:order_1", &["user_anna", "user_carl"])
        .await;
    anna.sees("order:order_1", &["user_anna", "user_carl"])
        .await;
}
