//! Presence: who else has a record open. Two (or more) admins with tokens naming them, real
//! sockets, reports over WebSocket frames and, for SSE, over HTTP.

use serde_json::{Value, json};

use crate::helpers::{
    BOTH, Subscriber, TestApp, Transport, eventually, named_token, spawn_app,
    spawn_app_for_a_stall, spawn_app_with, spawn_redis_app, two_instances,
};

/// One admin's tab: its connection, its token, and the id its `ready` gave it.
pub(crate) struct Tab {
    subscriber: Subscriber,
    transport: Transport,
    token: String,
    connection: String,
}

impl Tab {
    pub(crate) async fn open(
        app: &TestApp,
        transport: Transport,
        actor_id: &str,
        name: &str,
    ) -> Self {
        let token = named_token(actor_id, name);
        let mut subscriber = app
            .connect(transport, "", Some(&token), &[])
            .await
            .expect("the tab connects");
        let ready = subscriber.expect("ready").await;
        assert_eq!(ready.data["actor_id"], actor_id, "{ready:?}");
        Self {
            subscriber,
            transport,
            token,
            connection: ready.data["connection"]
                .as_str()
                .expect("ready names the connection")
                .to_owned(),
        }
    }

    /// Reports `records` the way its transport can: a frame, or `POST /admin-ws/presence`.
    pub(crate) async fn report(&mut self, app: &TestApp, records: Value) {
        match self.transport {
            Transport::Ws => {
                let report = json!({ "type": "presence", "records": records });
                self.subscriber.send_text(&report.to_string()).await;
            }
            Transport::Sse => {
                let (status, body) = report_over_http(
                    app,
                    &self.token,
                    &json!({ "connection": self.connection, "records": records }),
                )
                .await;
                assert_eq!(status, 204, "{body}");
            }
        }
    }

    /// The next `presence` message, which must be about `record`: its viewers as
    /// `(actor_id, name, state)`.
    async fn presence(&mut self, record: &str) -> Vec<(String, String, String)> {
        let message = self.subscriber.expect("presence").await;
        assert_eq!(message.data["record"], record, "{message:?}");
        message.data["viewers"]
            .as_array()
            .expect("viewers")
            .iter()
            .map(|v| {
                let field = |name: &str| v[name].as_str().unwrap_or_default().to_owned();
                (field("actor_id"), field("name"), field("state"))
            })
            .collect()
    }

    /// Reads `presence` messages about `record` until one lists exactly `who` (actor ids); a
    /// `resync` (a backplane failover) may come between them, any other message may not.
    pub(crate) async fn sees(&mut self, record: &str, who: &[&str]) {
        loop {
            let message = self.subscriber.next().await.expect("a message");
            if message.event == "resync" {
                continue;
            }
            assert_eq!(message.event, "presence", "{message:?}");
            assert_eq!(message.data["record"], record, "{message:?}");
            let ids: Vec<&str> = message.data["viewers"]
                .as_array()
                .expect("viewers")
                .iter()
                .filter_map(|viewer| viewer["actor_id"].as_str())
                .collect();
            if ids == who {
                return;
            }
        }
    }
}

async fn report_over_http(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    app.post_as_tab("/admin-ws/presence", token, body).await
}

fn viewer(actor_id: &str, name: &str, state: &str) -> (String, String, String) {
    (actor_id.to_owned(), name.to_owned(), state.to_owned())
}

#[tokio::test]
async fn admins_on_the_same_record_see_each_other_by_the_names_their_tokens_carry() {
    for transport in BOTH {
        let app = spawn_app().await;
        let mut anna = Tab::open(&app, transport, "user_anna", "Anna").await;
        let mut ben = Tab::open(&app, Transport::Ws, "user_ben", "Ben").await;
        anna.report(&app, json!({ "order:order_1": "viewing" }))
            .await;
        assert_eq!(
            anna.presence("order:order_1").await,
            [viewer("user_anna", "Anna", "viewing")]
        );
        ben.report(&app, json!({ "order:order_1": "editing" }))
            .await;
        let both = [
            viewer("user_anna", "Anna", "viewing"),
            viewer("user_ben", "Ben", "editing"),
        ];
        assert_eq!(ben.presence("order:order_1").await, both);
        assert_eq!(anna.presence("order:order_1").await, both, "{transport:?}");
    }
}

#[tokio::test]
async fn a_tab_opened_with_a_ticket_is_shown_by_the_name_of_the_token_that_bought_it() {
    let Some((_redis, a, b)) = two_instances("presence-ticket").await else {
        return;
    };
    for (issuer, redeemer) in [(&a, &a), (&a, &b)] {
        let answer: Value = issuer
            .ticket(&named_token("user_anna", "Anna"))
            .await
            .json()
            .await
            .expect("a ticket");
        let ticket = answer["ticket"].as_str().expect("ticket");
        let subscriber = redeemer
            .connect(Transport::Ws, &format!("ticket={ticket}"), None, &[])
            .await
            .expect("the ticket opens");
        let mut tab = Tab {
            subscriber,
            transport: Transport::Ws,
            token: String::new(),
            connection: String::new(),
        };
        tab.subscriber.expect("ready").await;
        tab.report(redeemer, json!({ "order:order_1": "viewing" }))
            .await;
        assert_eq!(
            tab.presence("order:order_1").await,
            [viewer("user_anna", "Anna", "viewing")]
        );
    }
}

#[tokio::test]
async fn presence_is_per_record() {
    let app = spawn_app().await;
    let mut anna = Tab::open(&app, Transport::Ws, "user_anna", "Anna").await;
    let mut carl = Tab::open(&app, Transport::Ws, "user_carl", "Carl").await;
    carl.report(&app, json!({ "order:order_2": "viewing" }))
        .await;
    carl.sees("order:order_2", &["user_carl"]).await;
    anna.report(&app, json!({ "order:order_1": "viewing" }))
        .await;
    anna.sees("order:order_1", &["user_anna"]).await;
    // Carl's next message is about his own record: nothing about order_1 came before it.
    carl.report(&app, json!({ "order:order_2": "editing" }))
        .await;
    assert_eq!(
        carl.presence("order:order_2").await,
        [viewer("user_carl", "Carl", "editing")]
    );
}

#[tokio::test]
async fn an_admin_who_leaves_the_record_or_closes_the_tab_is_gone_at_once() {
    let app = spawn_app().await;
    let mut anna = Tab::open(&app, Transport::Ws, "user_anna", "Anna").await;
    anna.report(&app, json!({ "product:prod_1": "viewing" }))
        .await;
    anna.sees("product:prod_1", &["user_anna"]).await;
    for transport in BOTH {
        let mut ben = Tab::open(&app, transport, "user_ben", "Ben").await;
        ben.report(&app, json!({ "product:prod_1": "viewing" }))
            .await;
        anna.sees("product:prod_1", &["user_anna", "user_ben"])
            .await;
        // Navigating away: a report without the record.
        ben.report(&app, json!({})).await;
        anna.sees("product:prod_1", &["user_anna"]).await;
        // Closing the tab.
        ben.report(&app, json!({ "product:prod_1": "editing" }))
            .await;
        anna.sees("product:prod_1", &["user_anna", "user_ben"])
            .await;
        drop(ben);
        anna.sees("product:prod_1", &["user_anna"]).await;
    }
}

#[tokio::test]
async fn one_admin_with_three_tabs_counts_once_and_editing_wins() {
    let app = spawn_app().await;
    let mut ben = Tab::open(&app, Transport::Ws, "user_ben", "Ben").await;
    ben.report(&app, json!({ "order:order_1": "viewing" }))
        .await;
    ben.sees("order:order_1", &["user_ben"]).await;
    let mut tabs = Vec::new();
    for (n, transport) in [Transport::Ws, Transport::Sse, Transport::Ws]
        .into_iter()
        .enumerate()
    {
        let mut tab = Tab::open(&app, transport, "user_anna", "Anna").await;
        let state = if n == 2 { "editing" } else { "viewing" };
        tab.report(&app, json!({ "order:order_1": state })).await;
        tabs.push(tab);
    }
    loop {
        let viewers = ben.presence("order:order_1").await;
        if viewers.iter().any(|(_, _, state)| state == "editing") {
            assert_eq!(
                viewers,
                [
                    viewer("user_anna", "Anna", "editing"),
                    viewer("user_ben", "Ben", "viewing"),
                ]
            );
            break;
        }
        assert_eq!(viewers.len(), 2, "one entry per admin: {viewers:?}");
    }
    // Two of Anna's tabs close: she is still there, once.
    tabs.truncate(1);
    ben.sees("order:order_1", &["user_anna", "user_ben"]).await;
}

#[tokio::test]
async fn a_name_is_taken_only_from_the_token() {
    let app = spawn_app().await;
    let mut anna = Tab::open(&app, Transport::Ws, "user_anna", "Anna").await;
    let spoof = json!({
        "type": "presence",
        "records": { "order:order_1": "viewing" },
        "name": "Mallory",
        "actor_id": "user_mallory",
    });
    anna.subscriber.send_text(&spoof.to_string()).await;
    assert_eq!(
        anna.presence("order:order_1").await,
        [viewer("user_anna", "Anna", "viewing")]
    );
}

#[tokio::test]
async fn a_report_over_a_limit_is_refused_whole_and_names_the_limit() {
    let app = spawn_app_with(json!({
        "presence": { "max_records": 2, "max_reports_per_sec": 2 }
    }))
    .await;
    let mut anna = Tab::open(&app, Transport::Ws, "user_anna", "Anna").await;
    let three = json!({ "order:o1": "viewing", "order:o2": "viewing", "order:o3": "viewing" });
    anna.report(&app, three).await;
    let refused = anna.subscriber.expect("presence_refused").await;
    assert_eq!(refused.data["error"], "too_many_records");
    assert!(
        refused.data["message"]
            .as_str()
            .is_some_and(|m| m.contains("presence.max_records")),
        "{refused:?}"
    );
    // Three more reports at once: the third at least is over two a second.
    for _ in 0..3 {
        anna.report(&app, json!({ "order:o1": "viewing" })).await;
    }
    loop {
        let message = anna.subscriber.next().await.expect("a message");
        if message.event == "presence_refused" {
            assert_eq!(message.data["error"], "too_many_reports");
            assert!(
                message.data["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("presence.max_reports_per_sec")),
                "{message:?}"
            );
            break;
        }
        assert_eq!(message.event, "presence", "{message:?}");
    }
    for bad in [
        json!({ "order o1": "viewing" }),
        json!({ "order:o1": "typing" }),
        json!(["order:o1"]),
    ] {
        let report = json!({ "type": "presence", "records": bad });
        anna.subscriber.send_text(&report.to_string()).await;
        let refused = anna.subscriber.expect("presence_refused").await;
        assert_eq!(refused.data["error"], "bad_report", "{bad}");
    }
    anna.subscriber.send_text(r#"{"type":"presence"}"#).await;
    let refused = anna.subscriber.expect("presence_refused").await;
    assert_eq!(
        refused.data["error"], "bad_report",
        "a report without records"
    );
    let metrics = app.metrics().await;
    for counted in [
        r#"admin_push_presence_refused_total{reason="bad_report"} 4"#,
        r#"admin_push_presence_refused_total{reason="too_many_records"} 1"#,
    ] {
        assert!(metrics.lines().any(|line| line == counted), "{counted}");
    }
}

#[tokio::test]
async fn a_report_over_http_must_name_an_open_connection_of_the_same_admin() {
    let app = spawn_app().await;
    let anna = Tab::open(&app, Transport::Sse, "user_anna", "Anna").await;
    let records = json!({ "order:order_1": "viewing" });
    let mallory = named_token("user_mallory", "Mallory");
    let cases = [
        (
            mallory.as_str(),
            json!({ "connection": anna.connection, "records": records }),
            404,
            "unknown_connection",
        ),
        (
            anna.token.as_str(),
            json!({ "connection": "0000000000000000", "records": records }),
            404,
            "unknown_connection",
        ),
        (
            anna.token.as_str(),
            json!({ "connection": "not-an-id", "records": records }),
            400,
            "bad_report",
        ),
        (
            anna.token.as_str(),
            json!({ "connection": anna.connection, "records": { "x": "viewing" } }),
            400,
            "bad_report",
        ),
        (
            anna.token.as_str(),
            json!({ "connection": anna.connection }),
            400,
            "bad_report",
        ),
    ];
    for (token, body, status, error) in cases {
        let refusal = report_over_http(&app, token, &body).await;
        assert_eq!(refusal.0, status, "{body}: {refusal:?}");
        assert_eq!(refusal.1["error"], error, "{body}: {refusal:?}");
    }
    let unauthenticated = app
        .http
        .post(format!("{}/admin-ws/presence", app.base))
        .json(&json!({ "connection": anna.connection, "records": {} }))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), 401);
    let oversized = app
        .http
        .post(format!("{}/admin-ws/presence", app.base))
        .bearer_auth(&anna.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 17 * 1024])
        .send()
        .await
        .expect("request");
    assert_eq!(oversized.status(), 413);
}

#[tokio::test]
async fn a_report_that_is_not_repeated_lapses_after_the_ttl() {
    let app = spawn_app_with(json!({ "presence": { "ttl_secs": 3 } })).await;
    let mut anna = Tab::open(&app, Transport::Ws, "user_anna", "Anna").await;
    let mut ben = Tab::open(&app, Transport::Sse, "user_ben", "Ben").await;
    anna.report(&app, json!({ "order:order_1": "viewing" }))
        .await;
    ben.report(&app, json!({ "order:order_1": "viewing" }))
        .await;
    ben.sees("order:order_1", &["user_anna", "user_ben"]).await;
    // Anna's socket stays open, but her browser stopped repeating its report; Ben's repeats his
    // every second (over HTTP, so his stream stays free to read).
    let body = json!({ "connection": ben.connection, "records": { "order:order_1": "viewing" } });
    let repeat = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let (status, refusal) = report_over_http(&app, &ben.token, &body).await;
            assert_eq!(status, 204, "{refusal}");
        }
    };
    let mut stream = std::mem::replace(&mut ben.subscriber, anna.subscriber);
    let alone = async {
        loop {
            let message = stream.expect("presence").await;
            let viewers = message.data["viewers"].as_array().expect("viewers").clone();
            if viewers.len() == 1 {
                assert_eq!(viewers[0]["actor_id"], "user_ben");
                return;
            }
        }
    };
    tokio::select! {
        () = repeat => unreachable!("the repeating never ends"),
        () = alone => {}
    }
}

/// Anna on `a` (WebSocket) and Ben on `b` (SSE) see each other on one order, and Anna sees Ben
/// leave it; Anna's tab is returned, still on the order.
pub(crate) async fn assert_instances_share_presence(a: &TestApp, b: &TestApp) -> Tab {
    let mut anna = Tab::open(a, Transport::Ws, "user_anna", "Anna").await;
    let mut ben = Tab::open(b, Transport::Sse, "user_ben", "Ben").await;
    anna.report(a, json!({ "order:order_1": "viewing" })).await;
    anna.sees("order:order_1", &["user_anna"]).await;
    ben.report(b, json!({ "order:order_1": "editing" })).await;
    ben.sees("order:order_1", &["user_anna", "user_ben"]).await;
    anna.sees("order:order_1", &["user_anna", "user_ben"]).await;
    ben.report(b, json!({})).await;
    anna.sees("order:order_1", &["user_anna"]).await;
    anna
}

#[tokio::test]
async fn instances_sharing_redis_show_each_other_s_viewers() {
    let Some((redis, a, b)) = two_instances("presence-shared").await else {
        return;
    };
    let mut anna = assert_instances_share_presence(&a, &b).await;
    // An instance that starts later hears who is already there.
    let c = spawn_redis_app(&redis, "presence-shared").await;
    let mut carl = Tab::open(&c, Transport::Ws, "user_carl", "Carl").await;
    carl.report(&c, json!({ "order:order_1": "viewing" })).await;
    carl.sees("order:order_1", &["user_anna", "user_carl"])
        .await;
    anna.sees("order:order_1", &["user_anna", "user_carl"])
        .await;
    // An instance that stops takes its viewers with it.
    c.shutdown.cancel();
    anna.sees("order:order_1", &["user_anna"]).await;
}

#[tokio::test]
async fn an_sse_tab_s_report_made_on_another_instance_reaches_the_one_holding_its_stream() {
    let Some((_redis, a, b)) = two_instances("presence-forwarded").await else {
        return;
    };
    let mut anna = Tab::open(&a, Transport::Ws, "user_anna", "Anna").await;
    let mut ben = Tab::open(&a, Transport::Sse, "user_ben", "Ben").await;
    anna.report(&a, json!({ "order:order_1": "viewing" })).await;
    anna.sees("order:order_1", &["user_anna"]).await;
    // Ben's balancer sends his report to `b`, which does not hold his stream.
    let records = json!({ "order:order_1": "editing" });
    let body = json!({ "connection": ben.connection, "records": records });
    let (status, answer) = report_over_http(&b, &ben.token, &body).await;
    assert_eq!(status, 202, "{answer}");
    ben.sees("order:order_1", &["user_anna", "user_ben"]).await;
    anna.sees("order:order_1", &["user_anna", "user_ben"]).await;
    // Another admin naming Ben's connection gets the same answer, and changes nothing.
    let mallory = named_token("user_mallory", "Mallory");
    let stranger = json!({ "connection": ben.connection, "records": {} });
    let refused_on_a = |n: u32| {
        let a = &a;
        async move {
            let line =
                format!(r#"admin_push_presence_refused_total{{reason="unknown_connection"}} {n}"#);
            a.metrics().await.lines().any(|l| l == line)
        }
    };
    let (status, answer) = report_over_http(&b, &mallory, &stranger).await;
    assert_eq!(status, 202, "{answer}");
    eventually(
        "the stranger's report to be refused where the stream is",
        || refused_on_a(1),
    )
    .await;
    // Ben was told nothing of it: the next thing on his stream is Anna starting to edit.
    anna.report(&a, json!({ "order:order_1": "editing" })).await;
    let both_editing = [
        viewer("user_anna", "Anna", "editing"),
        viewer("user_ben", "Ben", "editing"),
    ];
    assert_eq!(ben.presence("order:order_1").await, both_editing);
    assert_eq!(anna.presence("order:order_1").await, both_editing);
    // Numbered reports: 5 made on `a`, then 4, older, the long way through `b`.
    let numbered = |records: Value, seq: u64| json!({ "connection": ben.connection, "records": records, "seq": seq });
    let viewing = json!({ "order:order_1": "viewing" });
    let (status, _) = report_over_http(&a, &ben.token, &numbered(viewing, 5)).await;
    assert_eq!(status, 204);
    let ben_viewing = [
        viewer("user_anna", "Anna", "editing"),
        viewer("user_ben", "Ben", "viewing"),
    ];
    assert_eq!(anna.presence("order:order_1").await, ben_viewing);
    let (status, _) = report_over_http(&b, &ben.token, &numbered(json!({}), 4)).await;
    assert_eq!(status, 202);
    // The stranger's second report follows it on the stream: once `a` refused that, it had 4.
    report_over_http(&b, &mallory, &stranger).await;
    eventually("`a` to have read both", || refused_on_a(2)).await;
    anna.report(&a, json!({ "order:order_1": "viewing" })).await;
    let both_viewing = [
        viewer("user_anna", "Anna", "viewing"),
        viewer("user_ben", "Ben", "viewing"),
    ];
    assert_eq!(
        anna.presence("order:order_1").await,
        both_viewing,
        "4 left Ben on"
    );
    // A limit `b` can see for itself is refused at once.
    let many: serde_json::Map<String, Value> = (0..17)
        .map(|n| (format!("order:o{n}"), json!("viewing")))
        .collect();
    let body = json!({ "connection": ben.connection, "records": many });
    let (status, answer) = report_over_http(&b, &ben.token, &body).await;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("too_many_records"))
    );
    // Leaving goes through `b` as well.
    let (status, answer) = report_over_http(&b, &ben.token, &numbered(json!({}), 6)).await;
    assert_eq!(status, 202, "{answer}");
    anna.sees("order:order_1", &["user_anna"]).await;
}

#[tokio::test]
async fn thousands_of_visits_leave_nothing_behind_in_memory_or_in_redis() {
    const VISITS: usize = 10_000;
    const AT_ONCE: usize = 20;
    let Some((redis, a, b)) = two_instances("presence-churn").await else {
        return;
    };
    let mut watcher = Tab::open(&b, Transport::Ws, "user_watcher", "Watcher").await;
    watcher
        .report(&b, json!({ "order:order_0": "viewing" }))
        .await;
    watcher.sees("order:order_0", &["user_watcher"]).await;
    let visitor = |worker: usize| {
        let a = &a;
        async move {
            for visit in 0..VISITS / AT_ONCE {
                let actor = format!("user_{worker}");
                let mut tab = Tab::open(a, Transport::Ws, &actor, "Visitor").await;
                let record = format!("order:order_{}", visit % 50);
                tab.report(a, json!({ record.clone(): "viewing" })).await;
                tab.presence(&record).await;
            }
        }
    };
    futures_util::future::join_all((0..AT_ONCE).map(visitor)).await;
    watcher.report(&b, json!({})).await;
    for app in [&a, &b] {
        eventually("every record to be forgotten", || async {
            app.metrics()
                .await
                .lines()
                .any(|line| line == "admin_push_presence_records 0")
        })
        .await;
    }
    let client = ::redis::Client::open(redis.url()).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    keys.sort();
    assert_eq!(
        keys,
        ["presence-churn", "presence-churn:presence:shared"],
        "only the event stream and the bounded presence stream"
    );
    let length: usize = ::redis::cmd("XLEN")
        .arg("presence-churn:presence:shared")
        .query_async(&mut connection)
        .await
        .expect("XLEN");
    assert!(length <= 600, "the presence stream is trimmed: {length}");
}

/// A tab that fell behind the broadcast lost the lists that went by with it: after its
/// `resync{lagged}` it is sent the current ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_fell_behind_is_sent_the_current_lists_with_its_resync() {
    let app = spawn_app_for_a_stall().await;
    let mut anna = Tab::open(&app, Transport::Ws, "user_anna", "Anna").await;
    anna.report(&app, json!({ "order:order_1": "viewing" }))
        .await;
    anna.sees("order:order_1", &["user_anna"]).await;
    // Anna's tab stops reading; 15 MB of events overflow every buffer on the way to it, so its
    // connection falls far behind. Ben arrives meanwhile, and more events push the list that
    // told Anna out of the broadcast.
    let filler = "x".repeat(3000);
    let flood = |round: usize| {
        let app = &app;
        let filler = &filler;
        async move {
            for chunk in 0..50 {
                let batch: Vec<_> = (0..50)
                    .map(|i| json!({ "event": "bulk.updated", "data": { "id": format!("r{round}-{chunk}-{i}"), "filler": filler } }))
                    .collect();
                app.emit_batch(&batch).await;
            }
        }
    };
    flood(0).await;
    let mut ben = Tab::open(&app, Transport::Ws, "user_ben", "Ben").await;
    ben.report(&app, json!({ "order:order_1": "viewing" }))
        .await;
    ben.sees("order:order_1", &["user_anna", "user_ben"]).await;
    flood(1).await;
    let marker = app.emit_product("marker").await;
    let mut lagged = false;
    loop {
        let message = anna.subscriber.next().await.expect("still open");
        match message.event.as_str() {
            "resync" => lagged = true,
            "presence"
                if message.data["viewers"]
                    .as_array()
                    .is_some_and(|v| v.len() == 2) =>
            {
                assert!(lagged, "the list came after the resync: {message:?}");
                return;
            }
            _ => assert_ne!(
                message.id.as_ref(),
                Some(&marker),
                "the tab caught up without the current list"
            ),
        }
    }
}
