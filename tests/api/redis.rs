//! Several instances on one Redis stream, against a real `redis-server`: global ids, resume
//! anywhere, outages and an empty restart.

use serde_json::json;

use crate::helpers::{
    BOTH, Message, RedisServer, Transport, assert_ticket_opens_exactly_once, emit_with_key,
    eventually, info, spawn_binary, spawn_redis_app, stream_ids, two_instances,
};

fn ids(events: &[Message]) -> Vec<String> {
    events.iter().filter_map(|e| e.id.clone()).collect()
}

#[tokio::test]
async fn an_event_emitted_on_one_instance_reaches_the_other_with_the_same_id() {
    let Some((_redis, a, b)) = two_instances("t:fanout").await else {
        return;
    };
    for transport in BOTH {
        let mut on_a = a.subscribe(transport, "").await;
        let mut on_b = b.subscribe(transport, "").await;
        on_a.ready().await;
        on_b.ready().await;
        let id = a.emit_product("prod_1").await;
        assert_eq!(on_b.expect("product.updated").await.id, Some(id.clone()));
        assert_eq!(on_a.expect("product.updated").await.id, Some(id));
    }
}

#[tokio::test]
async fn an_id_delivered_by_one_instance_resumes_on_the_other() {
    let Some((_redis, a, b)) = two_instances("t:resume").await else {
        return;
    };
    let mut tab = b.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let seen = a.emit_product("first").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(seen.clone()));
    drop(tab);
    let missed = vec![b.emit_product("x").await, a.emit_product("y").await];
    let mut back = a
        .subscribe(Transport::Sse, &format!("last_event_id={seen}"))
        .await;
    back.ready().await;
    assert_eq!(ids(&back.events(2).await), missed);
}

#[tokio::test]
async fn a_tab_of_a_killed_instance_resumes_on_the_other_with_nothing_lost() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let env = [
        ("ADMIN_PUSH__HUB__BACKEND", "redis".to_owned()),
        ("ADMIN_PUSH__HUB__REDIS_URL", redis.url()),
        ("ADMIN_PUSH__HUB__STREAM_KEY", "t:kill".to_owned()),
    ];
    let mut doomed = spawn_binary(&env).await;
    let survivor = spawn_redis_app(&redis, "t:kill").await;
    eventually("the doomed instance to be ready", || async {
        doomed.app.ready_status().await == 200
    })
    .await;

    let mut tab = doomed.app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let seen = survivor.emit_product("before").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(seen.clone()));

    doomed.child.kill().expect("kill -9");
    doomed.child.wait().expect("reaped");
    let missed = vec![
        survivor.emit_product("during-1").await,
        survivor.emit_product("during-2").await,
    ];

    let mut resumed = survivor
        .subscribe(Transport::Ws, &format!("last_event_id={seen}"))
        .await;
    assert_eq!(resumed.ready().await, seen);
    assert_eq!(ids(&resumed.events(2).await), missed);
}

#[tokio::test]
async fn while_redis_is_down_emit_is_503_readiness_is_503_and_tabs_stay_connected() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let app = spawn_redis_app(&redis, "t:outage").await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let before = app.emit_product("before").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(before));

    redis.stop();
    let lost = json!({ "event": "product.updated", "data": { "id": "lost?" } });
    // Once the instance has seen its connections close (its readiness says so), the connection
    // Redis died under is known to be closed before anything is written on it, so an emit is
    // refused before it is sent: 503, never a 504 "outcome unknown". (An emit racing the kill
    // itself may be written into the dying connection, and then its outcome is unknown.)
    eventually("readiness to turn 503", || async {
        app.ready_status().await == 503
    })
    .await;
    for _ in 0..2 {
        let response = app.emit(&lost).await;
        assert_eq!(response.status(), 503, "{response:?}");
        assert!(response.headers().contains_key("retry-after"));
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["error"], "unavailable");
    }

    // The same connection carries on once Redis is back (empty: it kept nothing on disk).
    redis.restart().await;
    eventually("readiness to come back", || async {
        app.ready_status().await == 200
    })
    .await;
    let after = app.emit_product("after").await;
    // Redis came back without the history this tab was following: it must be told so.
    assert_eq!(tab.expect("resync").await.data["reason"], "restart");
    assert_eq!(tab.expect("product.updated").await.id, Some(after));
}

#[tokio::test]
async fn after_redis_restarts_empty_old_ids_get_resync_gap_and_emits_work_again() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let app = spawn_redis_app(&redis, "t:wipe").await;
    let old = app.emit_product("before-wipe").await;

    redis.restart().await;
    eventually("emits to be accepted again", || async {
        app.emit(&json!({ "event": "product.updated", "data": { "id": "probe" } }))
            .await
            .status()
            == 202
    })
    .await;
    eventually("the instance to follow the new stream", || async {
        app.ready_status().await == 200
    })
    .await;

    for transport in BOTH {
        let mut tab = app
            .subscribe(transport, &format!("last_event_id={old}"))
            .await;
        tab.ready().await;
        assert_eq!(
            tab.expect("resync").await.data["reason"],
            "gap",
            "{transport:?}"
        );
        let fresh = app.emit_product("after-wipe").await;
        assert_eq!(tab.expect("product.updated").await.id, Some(fresh));
    }
}

/// Thousands of events published alternately through both instances; one client on each sees
/// every id exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_events_across_both_instances_reach_each_client_once_in_order() {
    const EVENTS: usize = 2000;
    let Some((_redis, a, b)) = two_instances("t:long").await else {
        return;
    };
    let mut on_a = a.subscribe(Transport::Ws, "").await;
    let mut on_b = b.subscribe(Transport::Sse, "").await;
    on_a.ready().await;
    on_b.ready().await;

    let readers =
        [on_a, on_b].map(|mut tab| tokio::spawn(async move { ids(&tab.events(EVENTS).await) }));
    let mut emitted = Vec::with_capacity(EVENTS);
    for chunk in 0..EVENTS / 20 {
        let via = if chunk % 2 == 0 { &a } else { &b };
        let batch: Vec<_> = (0..20)
            .map(|i| json!({ "event": "order.updated", "data": { "id": format!("o{chunk}-{i}") } }))
            .collect();
        emitted.extend(via.emit_batch(&batch).await);
    }
    for reader in readers {
        assert_eq!(reader.await.expect("reader"), emitted);
    }
}

#[tokio::test]
async fn an_idempotency_key_is_honoured_across_instances() {
    let Some((_redis, a, b)) = two_instances("t:idem").await else {
        return;
    };
    let mut tab = a.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let order = json!({ "event": "order.updated", "data": { "id": "order_9" } });
    let first = emit_with_key(&a, "order_9-placed", &order).await;
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.expect("json");
    // The retry lands on the other instance, as it would behind a load balancer.
    let retry = emit_with_key(&b, "order_9-placed", &order).await;
    assert_eq!(retry.status(), 202);
    assert_eq!(
        retry.json::<serde_json::Value>().await.expect("json"),
        first
    );

    let marker = b.emit_product("marker").await;
    assert_eq!(
        tab.expect("order.updated").await.id.as_deref(),
        first["id"].as_str()
    );
    assert_eq!(tab.expect("product.updated").await.id, Some(marker));
}

#[tokio::test]
async fn a_ticket_bought_from_one_instance_opens_exactly_one_connection_on_any_instance() {
    let Some((_redis, a, b)) = two_instances("t:tickets").await else {
        return;
    };
    assert_ticket_opens_exactly_once(&a, &b).await;
}

#[tokio::test]
async fn stream_entries_are_validated_like_emits() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let app = spawn_redis_app(&redis, "t:validate").await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    let client = ::redis::Client::open(redis.url()).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let xadd = |event: &str, data: &str| {
        let mut cmd = ::redis::cmd("XADD");
        cmd.arg("t:validate")
            .arg("*")
            .arg("event")
            .arg(event)
            .arg("data")
            .arg(data);
        cmd
    };
    // Written behind the service's back: what /internal/emit would refuse never reaches a tab.
    let _: String = xadd("product.updated", "{\"id\":\"p\",\"evil\":\"x\\ny\"}")
        .query_async(&mut connection)
        .await
        .expect("xadd");
    // A well-formed name this instance does not know (a newer deploy added it) still arrives.
    let newer: String = xadd("collection.updated", r#"{"id":"col_1"}"#)
        .query_async(&mut connection)
        .await
        .expect("xadd");
    let event = tab.next().await.expect("open");
    assert_eq!(event.event, "collection.updated");
    assert_eq!(event.id, Some(newer));
}

#[tokio::test]
async fn a_keyed_emit_retried_across_an_outage_is_published_exactly_once() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let app = spawn_redis_app(&redis, "t:retry").await;
    let order = json!({ "event": "order.updated", "data": { "id": "order_7" } });
    let send = || emit_with_key(&app, "order_7-placed", &order);
    redis.stop();
    eventually("the instance to see Redis gone", || async {
        app.ready_status().await == 503
    })
    .await;
    assert_eq!(send().await.status(), 503, "nothing published yet");
    redis.restart().await;
    eventually("the instance to follow the new stream", || async {
        app.ready_status().await == 200
    })
    .await;
    let mut tab = app.subscribe(Transport::Sse, "").await;
    tab.ready().await;
    let first = send().await;
    assert_eq!(
        first.status(),
        202,
        "the retry goes through once Redis is back"
    );
    let first: serde_json::Value = first.json().await.expect("json");
    let again: serde_json::Value = send().await.json().await.expect("json");
    assert_eq!(again, first, "a further retry gets the same answer");

    let marker = app.emit_product("marker").await;
    assert_eq!(
        tab.expect("order.updated").await.id.as_deref(),
        first["id"].as_str()
    );
    assert_eq!(
        tab.expect("product.updated").await.id,
        Some(marker),
        "published exactly once"
    );
}

/// A master and a replica of it that has synced; `None` after a loud skip.
async fn master_and_replica() -> Option<(RedisServer, RedisServer)> {
    let master = RedisServer::start().await?;
    let replica = RedisServer::start_with(
        crate::helpers::free_port(),
        &[
            "--replicaof".to_owned(),
            format!("127.0.0.1 {}", master.port),
        ],
    )
    .await?;
    let url = replica.url();
    eventually("the replica to sync", || async {
        info(&url, "INFO", "replication")
            .await
            .is_some_and(|info| info.contains("master_link_status:up"))
    })
    .await;
    Some((master, replica))
}

#[tokio::test]
async fn with_min_replicas_emits_are_acknowledged_while_the_replica_keeps_up() {
    let Some((master, replica)) = master_and_replica().await else {
        return;
    };
    let app = crate::helpers::spawn_ready_redis_app(json!({
        "redis_url": master.url(),
        "stream_key": "t:durable",
        "redis_min_replicas": 1,
    }))
    .await;
    for i in 0..20 {
        let id = app.emit_product(&format!("durable-{i}")).await;
        // Acknowledged: a failover to the replica right now would keep it.
        assert!(
            stream_ids(&replica.url(), "t:durable").await.contains(&id),
            "{id} acknowledged before the replica had it"
        );
    }
}

#[tokio::test]
async fn with_min_replicas_and_the_replica_frozen_an_emit_is_504_and_its_keyed_retry_publishes_once()
 {
    let Some((master, replica)) = master_and_replica().await else {
        return;
    };
    let app = crate::helpers::spawn_ready_redis_app(json!({
        "redis_url": master.url(),
        "stream_key": "t:durable-frozen",
        "redis_min_replicas": 1,
        "redis_timeout_ms": 1000,
    }))
    .await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.ready().await;
    replica.pause();
    let body = json!({ "event": "product.updated", "data": { "id": "durable" } });
    let first = emit_with_key(&app, "durable-1", &body).await;
    assert_eq!(first.status(), 504, "not on a replica: not acknowledged");
    assert!(first.headers().contains_key("retry-after"));
    replica.resume();
    let retry = emit_with_key(&app, "durable-1", &body).await;
    assert_eq!(retry.status(), 202);
    let id = retry.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The first call's append was on the master all along: the retry names it, adds nothing.
    assert_eq!(tab.expect("product.updated").await.id, Some(id.clone()));
    assert_eq!(
        stream_ids(&master.url(), "t:durable-frozen")
            .await
            .iter()
            .filter(|i| **i == id)
            .count(),
        1
    );
    let next = app.emit_product("after").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(next));
}
