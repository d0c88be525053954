//! Nothing lost, nothing twice: resume on both transports and across them, gaps, lag, expiry.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    BOTH, End, TestApp, Transport, WAIT, admin_token_valid_for, sign, spawn_app,
    spawn_app_for_a_stall, spawn_app_with,
};

async fn emit_n(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(app.emit_product(&format!("prod_{i}")).await);
    }
    ids
}

fn ids(events: &[crate::helpers::Message]) -> Vec<String> {
    events.iter().filter_map(|e| e.id.clone()).collect()
}

#[tokio::test]
async fn resume_after_n_events_replays_exactly_the_missed_ones_on_both_transports() {
    let app = spawn_app().await;
    for transport in BOTH {
        let mut first = app.subscribe(transport, "").await;
        first.ready().await;
        let seen = emit_n(&app, 3).await;
        assert_eq!(ids(&first.events(3).await), seen);
        drop(first);

        let missed = emit_n(&app, 5).await;
        let mut resumed = app
            .subscribe(transport, &format!("last_event_id={}", seen[2]))
            .await;
        assert_eq!(
            resumed.ready().await,
            seen[2],
            "ready repeats the resume point"
        );
        assert_eq!(ids(&resumed.events(5).await), missed);
        let live = app.emit_product("live").await;
        assert_eq!(ids(&resumed.events(1).await), vec![live]);
    }
}

#[tokio::test]
async fn sse_resumes_from_the_last_event_id_header_over_the_query() {
    let app = spawn_app().await;
    let ids_emitted = emit_n(&app, 4).await;
    let mut sse = app
        .connect(
            Transport::Sse,
            &format!("last_event_id={}", ids_emitted[0]),
            Some(&crate::helpers::admin_token("user_1")),
            &[("last-event-id", &ids_emitted[2])],
        )
        .await
        .expect("connects");
    assert_eq!(sse.ready().await, ids_emitted[2]);
    assert_eq!(ids(&sse.events(1).await), ids_emitted[3..]);
}

#[tokio::test]
async fn a_tab_can_switch_transports_without_loss() {
    let app = spawn_app().await;
    for (from, to) in [
        (Transport::Ws, Transport::Sse),
        (Transport::Sse, Transport::Ws),
    ] {
        let mut before = app.subscribe(from, "").await;
        before.ready().await;
        let first = app.emit_product("a").await;
        assert_eq!(ids(&before.events(1).await), vec![first.clone()]);
        drop(before);
        let missed = emit_n(&app, 2).await;
        let mut after = app.subscribe(to, &format!("last_event_id={first}")).await;
        after.ready().await;
        assert_eq!(ids(&after.events(2).await), missed);
    }
}

#[tokio::test]
async fn the_ready_id_resumes_a_tab_that_saw_no_event() {
    let app = spawn_app().await;
    for transport in BOTH {
        let mut tab = app.subscribe(transport, "").await;
        let resume_point = tab.ready().await;
        drop(tab);
        let missed = emit_n(&app, 2).await;
        let mut back = app
            .subscribe(transport, &format!("last_event_id={resume_point}"))
            .await;
        back.ready().await;
        assert_eq!(ids(&back.events(2).await), missed);
    }
}

#[tokio::test]
async fn an_id_older_than_the_history_gets_resync_gap_then_live_events() {
    let app = spawn_app_with(json!({ "hub": { "history": 3 } })).await;
    let emitted = emit_n(&app, 6).await;
    let mut head = emitted[5].clone();
    for transport in BOTH {
        let mut tab = app
            .subscribe(transport, &format!("last_event_id={}", emitted[0]))
            .await;
        assert_eq!(tab.ready().await, head, "after a gap, ready gives the head");
        assert_eq!(tab.expect("resync").await.data, json!({ "reason": "gap" }));
        head = app.emit_product("live").await;
        assert_eq!(ids(&tab.events(1).await), vec![head.clone()]);
    }
}

#[tokio::test]
async fn garbage_and_foreign_ids_get_resync_gap_never_an_error() {
    let app = spawn_app().await;
    let foreign = "1000-5"; // an epoch this server never had: an earlier run, say
    for transport in BOTH {
        for garbage in [
            "nope",
            "12",
            "1-2-3",
            "-1",
            foreign,
            "99999999999999999999-1",
        ] {
            let mut tab = app
                .subscribe(transport, &format!("last_event_id={garbage}"))
                .await;
            tab.ready().await;
            assert_eq!(
                tab.expect("resync").await.data["reason"],
                "gap",
                "{garbage:?}"
            );
        }
    }
}

/// Thousands of events while a client drops and resumes at random points: it must see every id
/// exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_reconnecting_sees_every_event_once_in_order() {
    const EVENTS: usize = 3000;
    // This test is about resume, not lag: a broadcast buffer larger than the whole run means a
    // busy machine can only ever cause a (legitimate) lag resync by a real bug.
    let app = spawn_app_with(json!({ "hub": { "buffer": 4096 } })).await;
    for transport in BOTH {
        // The tab's first resume point predates every event the emitter will send.
        let mut resume = app.subscribe(transport, "").await.ready().await;
        let emitter = {
            let app_base = app.internal_base.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut ids = Vec::with_capacity(EVENTS);
                for chunk in 0..EVENTS / 10 {
                    let batch: Vec<_> = (0..10)
                        .map(|i| json!({ "event": "product.updated", "data": { "id": format!("p{chunk}-{i}") } }))
                        .collect();
                    let answer: serde_json::Value = http
                        .post(format!("{app_base}/internal/emit"))
                        .bearer_auth(crate::helpers::EMIT_SECRET)
                        .json(&batch)
                        .send()
                        .await
                        .expect("emit")
                        .json()
                        .await
                        .expect("json");
                    ids.extend(
                        answer["ids"]
                            .as_array()
                            .expect("ids")
                            .iter()
                            .map(|v| v.as_str().expect("id").to_owned()),
                    );
                }
                ids
            })
        };

        let mut seen: Vec<String> = Vec::with_capacity(EVENTS);
        let mut round = 0u64;
        while seen.len() < EVENTS {
            round += 1;
            let mut tab = app
                .subscribe(transport, &format!("last_event_id={resume}"))
                .await;
            tab.ready().await;
            // Read a pseudo-random number of events, then drop the connection mid-stream.
            let take = 1 + (round.wrapping_mul(2_654_435_761) % 400) as usize;
            for _ in 0..take.min(EVENTS - seen.len()) {
                let event = tab.next().await.expect("stream open");
                assert_ne!(
                    event.event, "resync",
                    "history covers every drop: nothing may be skipped"
                );
                let id = event.id.expect("an event");
                seen.push(id.clone());
                resume = id;
            }
        }
        let emitted = emitter.await.expect("emitter");
        assert_eq!(
            seen, emitted,
            "{transport:?}: every id exactly once, in order"
        );
    }
}

/// A reader that never reads must not slow the others, and afterwards must see either contiguous
/// events or an explicit resync: never a silent gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_never_delays_others_and_never_skips_silently() {
    const EVENTS: usize = 5000;
    // 5000 events of ~3 KB (15 MB) overflow every socket buffer between the server and a reader
    // that never reads, so the stalled connection really falls behind the 256-event broadcast
    // buffer. Emits return before the fan-out, so the emitter is paced on the prompt reader's
    // progress (never more than two batches ahead): "prompt" is then true by construction, not
    // by the machine's speed.
    let app = spawn_app_for_a_stall().await;
    let filler = "x".repeat(3000);
    for transport in BOTH {
        let mut stalled = app.subscribe(transport, "").await;
        stalled.ready().await;
        let mut prompt = app.subscribe(transport, "").await;
        prompt.ready().await;

        let (progress, mut seen) = tokio::sync::watch::channel(0usize);
        let reader = tokio::spawn(async move {
            let mut got = Vec::with_capacity(EVENTS);
            while got.len() < EVENTS {
                got.push(prompt.next().await.expect("open").id.expect("event"));
                progress.send_replace(got.len());
            }
            got
        });
        let mut emitted = Vec::with_capacity(EVENTS);
        for chunk in 0..EVENTS / 50 {
            let batch: Vec<_> = (0..50)
                .map(|i| json!({ "event": "bulk.updated", "data": { "id": format!("p{chunk}-{i}"), "filler": filler } }))
                .collect();
            emitted.extend(app.emit_batch(&batch).await);
            let behind = emitted.len().saturating_sub(100);
            tokio::time::timeout(WAIT, seen.wait_for(|n| *n >= behind))
                .await
                .expect("the prompt reader keeps up while the other stalls")
                .expect("reader alive");
        }
        let got = tokio::time::timeout(Duration::from_secs(30), reader)
            .await
            .expect("the prompt reader got everything while the other stalled")
            .expect("reader");
        assert_eq!(got, emitted);

        // Now drain the stalled one: between any two consecutive events, either they are
        // consecutive in emission order or a resync sits between them.
        let position = |id: &str| emitted.iter().position(|e| e == id).expect("known id");
        let mut last: Option<usize> = None;
        let mut resyncs = 0;
        loop {
            match stalled.next().await {
                Ok(message) if message.event == "resync" => {
                    assert_eq!(message.data["reason"], "lagged");
                    resyncs += 1;
                    last = None;
                }
                Ok(message) => {
                    let at = position(&message.id.expect("event"));
                    if let Some(previous) = last {
                        assert_eq!(at, previous + 1, "silent gap after a stall");
                    }
                    last = Some(at);
                    if at == EVENTS - 1 {
                        break;
                    }
                }
                Err(end) => panic!("stalled reader ended: {end:?}"),
            }
        }
        assert!(
            resyncs >= 1,
            "{transport:?}: a 64-event buffer cannot hold 5000 events unread"
        );
    }
}

#[tokio::test]
async fn a_connection_never_outlives_its_token() {
    let app = spawn_app_with(json!({ "auth": { "leeway_secs": 0 } })).await;
    for transport in BOTH {
        let token = admin_token_valid_for("user_1", 2);
        let mut tab = app
            .connect(transport, "", Some(&token), &[])
            .await
            .expect("connects");
        tab.ready().await;
        tab.expect("auth_expired").await;
        let end = tab.end().await;
        match transport {
            Transport::Ws => assert_eq!(end, End::Closed(4401)),
            Transport::Sse => assert_eq!(end, End::Eof),
        }
    }
}

#[tokio::test]
async fn a_refresh_frame_extends_a_websocket_session() {
    let app = spawn_app_with(json!({ "auth": { "leeway_secs": 0 } })).await;
    let token = admin_token_valid_for("user_1", 2);
    let mut tab = app
        .connect(Transport::Ws, "", Some(&token), &[])
        .await
        .expect("connects");
    tab.ready().await;
    let fresh = admin_token_valid_for("user_1", 600);
    tab.send_text(&json!({ "type": "refresh", "token": fresh }).to_string())
        .await;
    // Beyond the first token's life the session still delivers.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let id = app.emit_product("after-expiry").await;
    assert_eq!(tab.expect("product.updated").await.id, Some(id));
}

#[tokio::test]
async fn an_invalid_refresh_closes_with_4401() {
    let app = spawn_app().await;
    for bad in [
        "not-a-jwt".to_owned(),
        admin_token_valid_for("someone_else", 600),
        sign(&json!({ "actor_id": "user_1", "actor_type": "user", "exp": 1 })),
    ] {
        let mut tab = app.subscribe(Transport::Ws, "").await;
        tab.ready().await;
        tab.send_text(&json!({ "type": "refresh", "token": bad }).to_string())
            .await;
        assert_eq!(tab.end().await, End::Closed(4401));
    }
}

#[tokio::test]
async fn an_empty_resume_id_is_a_fresh_start_not_a_gap() {
    let app = spawn_app().await;
    for transport in BOTH {
        let mut tab = app.subscribe(transport, "last_event_id=&events=").await;
        tab.ready().await;
        let id = app.emit_product("first-thing-seen").await;
        // No resync in between, and an empty filter filters nothing.
        assert_eq!(tab.next().await.expect("open").id, Some(id));
    }
}

#[tokio::test]
async fn a_filtered_tab_resumes_with_only_the_events_it_asked_for() {
    let app = spawn_app().await;
    for transport in BOTH {
        let mut tab = app.subscribe(transport, "events=order.updated").await;
        let resume = tab.ready().await;
        drop(tab);
        app.emit_product("not-wanted").await;
        let wanted = app
            .emit(&json!({ "event": "order.updated", "data": { "id": "o1" } }))
            .await;
        let wanted: serde_json::Value = wanted.json().await.expect("json");
        let mut back = app
            .subscribe(
                transport,
                &format!("events=order.updated&last_event_id={resume}"),
            )
            .await;
        back.ready().await;
        let first = back.next().await.expect("open");
        assert_eq!(
            first.event, "order.updated",
            "{transport:?}: replay skipped the filter"
        );
        assert_eq!(first.id.as_deref(), wanted["id"].as_str());
    }
}

/// Events in the history, and their bytes, that a resume from the start must replay: far more
/// than the kernel's socket buffers hold, so a client reading slowly is mid-replay for seconds.
const LONG_REPLAY: usize = 3000;

/// An app whose history holds a [`LONG_REPLAY`] of 12 KB events, and the id to resume them from.
async fn app_with_a_long_replay() -> (TestApp, String) {
    let app = spawn_app_with(json!({
        "auth": { "leeway_secs": 0 },
        "hub": { "history": LONG_REPLAY },
        "events": { "extra": ["blob.updated"] },
        "emit": { "max_data_bytes": 16384, "max_body_bytes": 2_000_000 },
    }))
    .await;
    let mut first = app.subscribe(Transport::Ws, "").await;
    let from = first.ready().await;
    let blob = "x".repeat(12_000);
    for _ in 0..LONG_REPLAY / 100 {
        let batch: Vec<_> = (0..100)
            .map(|_| json!({ "event": "blob.updated", "data": { "blob": blob } }))
            .collect();
        assert_eq!(app.emit(&json!(batch)).await.status(), 202);
    }
    (app, from)
}

/// Reads like a slow tab (one message per 2 ms) until a control message other than `ready`;
/// returns it and how many replayed events came before it.
async fn read_slowly_until_control(tab: &mut crate::helpers::Subscriber) -> (String, usize) {
    let mut replayed = 0;
    loop {
        let message = tab.next().await.expect("still open");
        match message.id {
            Some(_) => replayed += 1,
            None if message.event == "ready" => {}
            None => return (message.event, replayed),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_replay_larger_than_every_socket_buffer_arrives_whole_and_once() {
    let (app, from) = app_with_a_long_replay().await;
    let mut tab = app
        .subscribe(Transport::Ws, &format!("last_event_id={from}"))
        .await;
    tab.ready().await;
    // 36 MB: the server's writes stop short of a frame's end again and again; each frame must
    // still arrive whole, and none twice.
    let replayed = tab.events(LONG_REPLAY).await;
    let distinct: std::collections::HashSet<_> = ids(&replayed).into_iter().collect();
    assert_eq!(distinct.len(), LONG_REPLAY);
    assert!(
        replayed
            .iter()
            .all(|event| event.data["blob"].as_str().map(str::len) == Some(12_000))
    );
    let next = app.emit_product("prod_after").await;
    assert_eq!(tab.events(1).await[0].id.as_deref(), Some(&*next));
}

#[tokio::test]
async fn a_close_sent_in_the_middle_of_a_long_replay_ends_it_with_1000() {
    let (app, from) = app_with_a_long_replay().await;
    let mut tab = app
        .subscribe(Transport::Ws, &format!("last_event_id={from}"))
        .await;
    tab.ready().await;
    tab.events(10).await;
    tab.send_raw(tokio_tungstenite::tungstenite::Message::Close(None))
        .await;
    let mut replayed = 10;
    let end = loop {
        match tab.next().await {
            Ok(message) => replayed += usize::from(message.id.is_some()),
            Err(end) => break end,
        }
    };
    assert_eq!(end, End::Closed(1000));
    assert!(
        replayed < LONG_REPLAY,
        "the close waited for the whole replay"
    );
}

#[tokio::test]
async fn a_token_expires_even_in_the_middle_of_a_long_replay() {
    let (app, from) = app_with_a_long_replay().await;
    let token = admin_token_valid_for("user_1", 2);
    let mut tab = app
        .connect(
            Transport::Ws,
            &format!("last_event_id={from}"),
            Some(&token),
            &[],
        )
        .await
        .expect("connects");
    let (control, replayed) = read_slowly_until_control(&mut tab).await;
    assert_eq!(control, "auth_expired");
    assert!(
        replayed < LONG_REPLAY,
        "the whole replay went out before the token's expiry was noticed"
    );
    assert_eq!(tab.end().await, End::Closed(4401));
}

#[tokio::test]
async fn a_drain_reaches_tabs_in_the_middle_of_a_long_replay() {
    let (app, from) = app_with_a_long_replay().await;
    let query = format!("last_event_id={from}");
    let mut tabs = Vec::new();
    for transport in BOTH {
        let mut tab = app.subscribe(transport, &query).await;
        tab.ready().await;
        tab.events(10).await;
        tabs.push((transport, tab));
    }
    app.shutdown.cancel();
    for (transport, mut tab) in tabs {
        let (control, replayed) = read_slowly_until_control(&mut tab).await;
        assert_eq!(control, "reconnect", "{transport:?}");
        assert!(
            replayed < LONG_REPLAY,
            "{transport:?}: the drain waited for the whole replay"
        );
        let expected = match transport {
            Transport::Ws => End::Closed(1012),
            Transport::Sse => End::Eof,
        };
        assert_eq!(tab.end().await, expected, "{transport:?}");
    }
}
