//! Screen-refresh receipts: a tab says its screen shows an event, and the service observes how
//! long that took, by event and transport, without trusting anything else the tab says.

use serde_json::{Value, json};

use crate::helpers::{
    BOTH, TestApp, Transport, admin_token, eventually, spawn_app, spawn_app_with, two_instances,
};

/// The value of one line of the metrics exposition, if the series exists.
async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    app.metrics().await.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

async fn receipt_over_http(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    app.post_as_tab("/admin-ws/receipt", token, body).await
}

#[tokio::test]
async fn a_receipt_is_observed_by_event_name_and_transport() {
    let app = spawn_app().await;
    let token = admin_token("user_1");
    for transport in BOTH {
        let mut tab = app
            .connect(transport, "", Some(&token), &[])
            .await
            .expect("connects");
        let ready = tab.expect("ready").await;
        assert_eq!(ready.data["receipt_rate"], 1.0, "{ready:?}");
        let id = app.emit_product("prod_1").await;
        tab.events(1).await;
        match transport {
            Transport::Ws => {
                let receipt = json!({ "type": "receipt", "id": id });
                tab.send_text(&receipt.to_string()).await;
            }
            Transport::Sse => {
                let body = json!({ "connection": ready.data["connection"], "id": id });
                let (status, refusal) = receipt_over_http(&app, &token, &body).await;
                assert_eq!(status, 204, "{refusal}");
            }
        }
        let series = format!(
            r#"admin_push_screen_refresh_seconds_count{{event="product.updated",transport="{}"}}"#,
            match transport {
                Transport::Ws => "ws",
                Transport::Sse => "sse",
            }
        );
        eventually("the receipt to be observed", || async {
            metric(&app, &series).await == Some(1.0)
        })
        .await;
    }
}

#[tokio::test]
async fn receipts_for_events_that_never_existed_are_not_observed() {
    let app = spawn_app().await;
    let token = admin_token("user_1");
    let mut ws = app
        .connect(Transport::Ws, "", Some(&token), &[])
        .await
        .expect("connects");
    ws.expect("ready").await;
    let mut sse = app
        .connect(Transport::Sse, "", Some(&token), &[])
        .await
        .expect("connects");
    let connection = sse.expect("ready").await.data["connection"].clone();
    for id in ["1-1", "99999999999999-0", "not an id", "product.updated"] {
        let receipt = json!({ "type": "receipt", "id": id, "event": "made.up" });
        ws.send_text(&receipt.to_string()).await;
        let body = json!({ "connection": connection, "id": id });
        let (status, refusal) = receipt_over_http(&app, &token, &body).await;
        assert_eq!((status, &refusal["error"]), (422, &json!("unknown_event")));
    }
    let (status, refusal) = receipt_over_http(
        &app,
        &admin_token("user_2"),
        &json!({ "connection": connection, "id": "1-1" }),
    )
    .await;
    assert_eq!(
        (status, &refusal["error"]),
        (404, &json!("unknown_connection"))
    );
    let (status, refusal) =
        receipt_over_http(&app, &token, &json!({ "connection": connection })).await;
    assert_eq!((status, &refusal["error"]), (400, &json!("bad_receipt")));
    // The WebSocket's four went the same way as the four over HTTP.
    eventually("every unknown id to be counted as such", || async {
        metric(
            &app,
            r#"admin_push_receipts_refused_total{reason="unknown_event"}"#,
        )
        .await
            == Some(8.0)
    })
    .await;
    let exposition = app.metrics().await;
    assert!(
        !exposition.contains("admin_push_screen_refresh_seconds_count"),
        "nothing observed, no series made up:\n{exposition}"
    );
}

#[tokio::test]
async fn receipts_beyond_the_per_second_budget_are_not_counted() {
    let app = spawn_app_with(json!({ "receipts": { "max_per_sec": 2 } })).await;
    let mut tab = app.subscribe(Transport::Ws, "").await;
    tab.expect("ready").await;
    let id = app.emit_product("prod_1").await;
    tab.events(1).await;
    for _ in 0..5 {
        let receipt = json!({ "type": "receipt", "id": id });
        tab.send_text(&receipt.to_string()).await;
    }
    eventually("the excess to be refused", || async {
        metric(
            &app,
            r#"admin_push_receipts_refused_total{reason="too_many_receipts"}"#,
        )
        .await
        .is_some_and(|refused| refused >= 1.0)
    })
    .await;
    let observed = metric(
        &app,
        r#"admin_push_screen_refresh_seconds_count{event="product.updated",transport="ws"}"#,
    )
    .await;
    assert!(observed.is_some_and(|n| n < 5.0), "{observed:?}");
}

#[tokio::test]
async fn the_receipt_rate_follows_the_open_tabs_so_that_about_sample_tabs_send_receipts() {
    let app = spawn_app_with(json!({ "receipts": { "sample_tabs": 2 } })).await;
    let mut tabs = Vec::new();
    // Opened with 0, 1, 2 and 3 others open: all, all, all (two in three is not yet half), half.
    for (transport, rate) in [
        (Transport::Ws, 1.0),
        (Transport::Sse, 1.0),
        (Transport::Ws, 1.0),
        (Transport::Sse, 0.5),
    ] {
        let mut tab = app.subscribe(transport, "").await;
        let ready = tab.expect("ready").await;
        assert_eq!(ready.data["receipt_rate"], rate, "{ready:?}");
        tabs.push(tab);
    }
    // The first three, told all, are told half on their next tick.
    for tab in &mut tabs[..3] {
        let news = tab.expect("receipt_rate").await;
        assert_eq!(news.data, json!({ "rate": 0.5 }));
    }
    let mut late = app.subscribe(Transport::Ws, "").await;
    assert_eq!(late.expect("ready").await.data["receipt_rate"], 0.5);
    // Back under the sample: all of them again.
    drop(late);
    let mut first = tabs.remove(0);
    drop(tabs);
    let news = first.expect("receipt_rate").await;
    assert_eq!(news.data, json!({ "rate": 1.0 }));

    let off = spawn_app_with(json!({ "receipts": { "sample_tabs": 0 } })).await;
    let mut tab = off.subscribe(Transport::Sse, "").await;
    assert_eq!(tab.expect("ready").await.data["receipt_rate"], 0.0);
}

#[tokio::test]
async fn a_receipt_made_on_another_instance_is_counted_where_it_lands() {
    let Some((_redis, a, b)) = two_instances("receipts-elsewhere").await else {
        return;
    };
    let token = admin_token("user_1");
    let mut tab = a
        .connect(Transport::Sse, "", Some(&token), &[])
        .await
        .expect("connects");
    let ready = tab.expect("ready").await;
    let mut beside = b.subscribe(Transport::Ws, "").await;
    beside.expect("ready").await;
    let id = a.emit_product("prod_1").await;
    tab.events(1).await;
    beside.events(1).await; // `b` has read it too
    let body = json!({ "connection": ready.data["connection"], "id": id });
    let (status, answer) = receipt_over_http(&b, &token, &body).await;
    assert_eq!(status, 204, "{answer}");
    let series =
        r#"admin_push_screen_refresh_seconds_count{event="product.updated",transport="sse"}"#;
    assert_eq!(metric(&b, series).await, Some(1.0));
    assert_eq!(metric(&a, series).await, None);
    let body = json!({ "connection": ready.data["connection"], "id": "1-1" });
    let (status, answer) = receipt_over_http(&b, &token, &body).await;
    assert_eq!(
        (status, &answer["error"]),
        (422, &json!("unknown_event")),
        "{answer}"
    );
}
