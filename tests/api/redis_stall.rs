//! A Redis that stops answering (a real `redis-server` frozen with SIGSTOP): every caller gets its
//! answer within its own deadline, nothing queues behind anyone, and nothing a caller was told
//! failed is published once Redis wakes up.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    RedisServer, Subscriber, TestApp, Transport, admin_token, emit_with_key, eventually,
    spawn_ready_redis_app,
};

/// `hub.redis_timeout_ms` in these tests.
const TIMEOUT_MS: u64 = 1000;
/// Callers arriving together during the stall.
const CALLERS: usize = 10;

/// An instance whose writer connection is open (one emit went through), so what a stall catches
/// is really sent to Redis.
async fn stalled_app(redis: &RedisServer, stream_key: &str) -> TestApp {
    let app = spawn_ready_redis_app(json!({
        "redis_url": redis.url(),
        "stream_key": stream_key,
        "redis_timeout_ms": TIMEOUT_MS,
    }))
    .await;
    app.emit_product("warm-up").await;
    app
}

/// A fresh Redis, a warmed-up instance on it, and a tab that is ready; `None` after a loud skip.
async fn watched_stall(
    stream_key: &str,
    transport: Transport,
) -> Option<(RedisServer, TestApp, Subscriber)> {
    let redis = RedisServer::start().await?;
    let app = stalled_app(&redis, stream_key).await;
    let mut tab = app.subscribe(transport, "").await;
    tab.ready().await;
    Some((redis, app, tab))
}

/// Runs `CALLERS` copies of `call` at once; returns each one's status and how long it took.
async fn together<F, Fut>(call: F) -> Vec<(u16, Duration)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let calls = (0..CALLERS).map(|i| {
        let started = Instant::now();
        let call = call(i);
        async move { (call.await, started.elapsed()) }
    });
    futures_util::future::join_all(calls).await
}

fn product(i: usize) -> serde_json::Value {
    json!({ "event": "product.updated", "data": { "id": format!("stalled-{i}") } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_redis_stall_every_emit_and_ticket_answers_within_its_own_timeout() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let app = stalled_app(&redis, "t:stall").await;
    let token = admin_token("user_1");

    redis.pause();
    let emits = together(|i| {
        let app = &app;
        async move { app.emit(&product(i)).await.status().as_u16() }
    })
    .await;
    let tickets = together(|_| {
        let (app, token) = (&app, &token);
        async move { app.ticket(token).await.status().as_u16() }
    })
    .await;
    eventually("readiness to turn 503 during the stall", || async {
        app.ready_status().await == 503
    })
    .await;
    redis.resume();

    // Each caller waits its own timeout once: the answers come together, a little after the
    // timeout, never one timeout after another. (A busy test machine may delay them all alike,
    // so the spread is what is asserted; quiet, they answer within the timeout + 1 %.)
    let timeout = Duration::from_millis(TIMEOUT_MS);
    for (what, answers) in [("emit", &emits), ("ticket", &tickets)] {
        let took: Vec<_> = answers.iter().map(|(_, d)| *d).collect();
        let millis: Vec<_> = took.iter().map(Duration::as_millis).collect();
        eprintln!("{what} answers during the stall ({CALLERS} at once), ms: {millis:?}");
        for (status, _) in answers {
            assert!(
                [503, 504].contains(status),
                "{what}: {status} during the stall"
            );
        }
        let (fastest, slowest) = (took.iter().min().copied(), took.iter().max().copied());
        let (Some(fastest), Some(slowest)) = (fastest, slowest) else {
            unreachable!("{CALLERS} callers")
        };
        assert!(
            fastest >= timeout,
            "{what} gave up before its timeout: {millis:?}"
        );
        assert!(
            slowest - fastest <= timeout / 10 && slowest < 2 * timeout,
            "{what}: callers queue behind each other: {millis:?}"
        );
    }

    eventually("readiness to come back after the stall", || async {
        app.ready_status().await == 200
    })
    .await;
    assert_eq!(app.ticket(&token).await.status(), 200, "tickets work again");
    app.emit_product("after").await;
}

/// Each publisher retries without a key after its emit failed during the stall: every event
/// arrives exactly once, because the stalled appends Redis runs on waking refuse to publish late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unkeyed_retry_after_a_stall_publishes_each_event_exactly_once() {
    let Some((redis, app, mut tab)) = watched_stall("t:stall-retry", Transport::Ws).await else {
        return;
    };

    redis.pause();
    let failed = together(|i| {
        let app = &app;
        async move { app.emit(&product(i)).await.status().as_u16() }
    })
    .await;
    redis.resume();
    assert!(
        failed.iter().all(|(status, _)| *status == 504),
        "each append reached the frozen Redis, which runs them when it wakes: {failed:?}"
    );

    eventually("the instance to be ready again", || async {
        app.ready_status().await == 200
    })
    .await;
    let mut retried = Vec::new();
    for i in 0..CALLERS {
        let response = app.emit(&product(i)).await;
        assert_eq!(response.status(), 202, "the retry goes through");
        let body: serde_json::Value = response.json().await.expect("json");
        retried.push(body["id"].as_str().expect("id").to_owned());
    }
    let marker = app.emit_product("marker").await;

    let mut seen = Vec::new();
    loop {
        let message = tab.next().await.expect("the tab stays connected");
        assert_eq!(message.event, "product.updated", "{message:?}");
        if message.id.as_deref() == Some(marker.as_str()) {
            break;
        }
        seen.push(message.id.expect("id"));
    }
    assert_eq!(
        seen, retried,
        "each event once: the stalled appends never published"
    );
}

#[tokio::test]
async fn a_keyed_emit_that_timed_out_in_a_stall_is_published_once_by_its_retry() {
    let Some((redis, app, mut tab)) = watched_stall("t:stall-keyed", Transport::Sse).await else {
        return;
    };
    let order = json!({ "event": "order.updated", "data": { "id": "order_5" } });
    let send = || emit_with_key(&app, "order_5-placed", &order);

    redis.pause();
    let stalled = send().await;
    redis.resume();
    assert_eq!(
        stalled.status(),
        504,
        "sent, unanswered: the outcome is unknown"
    );
    assert_eq!(
        stalled.json::<serde_json::Value>().await.expect("json")["error"],
        "outcome_unknown"
    );

    eventually("the instance to be ready again", || async {
        app.ready_status().await == 200
    })
    .await;
    let retry = send().await;
    assert_eq!(retry.status(), 202);
    let retry: serde_json::Value = retry.json().await.expect("json");
    let marker = app.emit_product("marker").await;
    assert_eq!(
        tab.expect("order.updated").await.id.as_deref(),
        retry["id"].as_str()
    );
    assert_eq!(tab.expect("product.updated").await.id, Some(marker));
}
