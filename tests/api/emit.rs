//! `POST /internal/emit`: every rejection, batches, idempotency.

use serde_json::{Value, json};

use crate::helpers::{EMIT_SECRET, Transport, assert_problem, spawn_app, spawn_app_with};

async fn post(
    app: &crate::helpers::TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/internal/emit", app.internal_base))
        .bearer_auth(EMIT_SECRET)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("every answer is JSON"))
}

#[tokio::test]
async fn emit_without_the_secret_is_401() {
    let app = spawn_app().await;
    let url = format!("{}/internal/emit", app.internal_base);
    let event = json!({ "event": "product.updated", "data": { "id": "p" } });
    let missing = app
        .http
        .post(&url)
        .json(&event)
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 401);
    let wrong = app
        .http
        .post(&url)
        .bearer_auth("nope")
        .json(&event)
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
}

#[tokio::test]
async fn every_configured_secret_is_accepted_for_rotation() {
    let app = spawn_app_with(json!({ "internal": { "secrets": ["old-secret-000000000000000000000000", "new-secret-000000000000000000000000"] } })).await;
    for secret in [
        "old-secret-000000000000000000000000",
        "new-secret-000000000000000000000000",
    ] {
        let response = app
            .http
            .post(format!("{}/internal/emit", app.internal_base))
            .bearer_auth(secret)
            .json(&json!({ "event": "product.updated", "data": { "id": "p" } }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 202);
    }
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    assert_problem(
        post(
            &app,
            "text/plain",
            r#"{"event":"product.updated","data":{"id":"p"}}"#,
        )
        .await,
        415,
        "application/json",
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(json!({ "emit": { "max_body_bytes": 64 } })).await;
    let body = format!(
        r#"{{"event":"product.updated","data":{{"id":"{}"}}}}"#,
        "p".repeat(100)
    );
    assert_problem(post(&app, "application/json", body).await, 413, "64 bytes");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;
    assert_problem(
        post(&app, "application/json", "{\"event\":").await,
        400,
        "malformed",
    );
}

#[tokio::test]
async fn an_unknown_event_is_422_naming_the_field() {
    let app = spawn_app().await;
    assert_problem(
        post(
            &app,
            "application/json",
            r#"{"event":"cart.updated","data":{"id":"c"}}"#,
        )
        .await,
        422,
        "event: unknown event \"cart.updated\"",
    );
}

#[tokio::test]
async fn invalid_data_is_422_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            r#"{"event":"product.updated","data":{"id":"p","name":"x"}}"#,
            "unknown field `name`",
        ),
        (
            r#"{"event":"product.updated","data":{}}"#,
            "missing field `id`",
        ),
        (
            r#"{"event":"product.updated","data":{"id":""}}"#,
            "must not be empty",
        ),
        (
            r#"{"event":"banner.updated","data":{"action":"exploded"}}"#,
            "unknown variant `exploded`",
        ),
        (
            r#"{"event":"order.updated","data":{"id":42}}"#,
            "invalid type",
        ),
        (r#"{"event":"order.updated"}"#, "missing field `data`"),
        (
            r#"{"event":"order.updated","data":{"id":"o"},"extra":1}"#,
            "unknown field `extra`",
        ),
    ];
    for (body, says) in cases {
        assert_problem(post(&app, "application/json", body).await, 422, says);
    }
}

#[tokio::test]
async fn data_that_is_not_an_object_is_422_even_when_its_values_would_fit() {
    let app = spawn_app().await;
    // An array of a payload's fields in order would otherwise read as that payload.
    for data in [r#"["x"]"#, r#"["o","paid"]"#, r#""x""#, "1", "null", "true"] {
        for event in ["product.updated", "order.updated"] {
            let body = format!(r#"{{"event":"{event}","data":{data}}}"#);
            assert_problem(
                post(&app, "application/json", body).await,
                422,
                "data: must be a JSON object",
            );
        }
    }
}

#[tokio::test]
async fn oversized_data_is_413() {
    let app = spawn_app_with(json!({ "emit": { "max_data_bytes": 32 } })).await;
    let body = format!(
        r#"{{"event":"product.updated","data":{{"id":"{}"}}}}"#,
        "p".repeat(40)
    );
    assert_problem(post(&app, "application/json", body).await, 413, "data is");
}

#[tokio::test]
async fn extra_events_from_the_config_are_accepted() {
    let app = spawn_app_with(json!({ "events": { "extra": ["collection.updated"] } })).await;
    let mut subscriber = app.subscribe(Transport::Ws, "").await;
    subscriber.ready().await;
    let response = app
        .emit(&json!({ "event": "collection.updated", "data": { "id": "col_1", "title": "x" } }))
        .await;
    assert_eq!(response.status(), 202);
    let event = subscriber.expect("collection.updated").await;
    assert_eq!(event.data, json!({ "id": "col_1", "title": "x" }));
}

#[tokio::test]
async fn a_batch_is_published_in_order_and_answers_every_id() {
    let app = spawn_app().await;
    let mut subscriber = app.subscribe(Transport::Sse, "").await;
    subscriber.ready().await;
    let response = app
        .emit(&json!([
            { "event": "banner.updated", "data": { "action": "reordered", "ids": ["hb_2", "hb_1"] } },
            { "event": "product.updated", "data": { "id": "prod_1" } },
            { "event": "order.updated", "data": { "id": "order_1" } },
        ]))
        .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    let ids: Vec<String> = serde_json::from_value(body["ids"].clone()).expect("ids");
    let events = subscriber.events(3).await;
    let received: Vec<String> = events.iter().filter_map(|e| e.id.clone()).collect();
    assert_eq!(received, ids);
    assert_eq!(
        events[0].data,
        json!({ "action": "reordered", "ids": ["hb_2", "hb_1"] })
    );
}

#[tokio::test]
async fn an_invalid_batch_publishes_nothing() {
    let app = spawn_app().await;
    let mut subscriber = app.subscribe(Transport::Ws, "").await;
    subscriber.ready().await;
    let response = app
        .emit(&json!([
            { "event": "product.updated", "data": { "id": "first" } },
            { "event": "product.updated", "data": { "sku": "broken" } },
        ]))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("events[1].data")
    );
    // The next event a subscriber sees is one emitted afterwards: nothing of the batch went out.
    let marker = app.emit_product("marker").await;
    assert_eq!(subscriber.expect("product.updated").await.id, Some(marker));
}

#[tokio::test]
async fn a_batch_over_the_limit_is_413() {
    let app = spawn_app_with(json!({ "emit": { "max_batch": 2 } })).await;
    let one = json!({ "event": "product.updated", "data": { "id": "p" } });
    let (status, body) = post(&app, "application/json", json!([one, one, one]).to_string()).await;
    assert_problem((status, body), 413, "at most 2");
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_the_first_answer_and_broadcasts_once() {
    let app = spawn_app().await;
    let mut subscriber = app.subscribe(Transport::Ws, "").await;
    subscriber.ready().await;
    let send = || {
        app.http
            .post(format!("{}/internal/emit", app.internal_base))
            .bearer_auth(EMIT_SECRET)
            .header("idempotency-key", "order_1-placed")
            .json(&json!({ "event": "order.updated", "data": { "id": "order_1" } }))
            .send()
    };
    let first: Value = send().await.expect("request").json().await.expect("json");
    let second = send().await.expect("request");
    assert_eq!(second.status(), 202);
    assert_eq!(second.json::<Value>().await.expect("json"), first);

    let marker = app.emit_product("marker").await;
    assert_eq!(
        subscriber.expect("order.updated").await.id.as_deref(),
        first["id"].as_str()
    );
    assert_eq!(subscriber.expect("product.updated").await.id, Some(marker));
}

#[tokio::test]
async fn a_repeated_key_with_another_body_gets_the_first_ids_and_publishes_nothing() {
    let app = spawn_app().await;
    let mut subscriber = app.subscribe(Transport::Ws, "").await;
    subscriber.ready().await;
    let send = |id: &str| {
        app.http
            .post(format!("{}/internal/emit", app.internal_base))
            .bearer_auth(EMIT_SECRET)
            .header("idempotency-key", "one-key")
            .json(&json!({ "event": "product.updated", "data": { "id": id } }))
            .send()
    };
    let first: Value = send("first")
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let other = send("other").await.expect("request");
    assert_eq!(other.status(), 202);
    assert_eq!(other.json::<Value>().await.expect("json"), first);
    let marker = app.emit_product("marker").await;
    let delivered = subscriber.expect("product.updated").await;
    assert_eq!(delivered.data, json!({ "id": "first" }));
    assert_eq!(subscriber.expect("product.updated").await.id, Some(marker));
}

const HMAC_OLD: &str = "hmac-key-old-00000000000000000000000000";
const HMAC_NEW: &str = "hmac-key-new-00000000000000000000000000";

fn signature(key: &str, t: u64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn signed_post(
    app: &crate::helpers::TestApp,
    header: Option<String>,
    body: &str,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(format!("{}/internal/emit", app.internal_base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(header) = header {
        request = request.header("x-admin-push-signature", header);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn hmac_app(mode: &str) -> crate::helpers::TestApp {
    spawn_app_with(json!({ "internal": { "auth": mode, "hmac_secrets": [HMAC_OLD, HMAC_NEW] } }))
        .await
}

#[tokio::test]
async fn a_valid_signature_from_any_rotated_key_is_accepted() {
    let app = hmac_app("hmac").await;
    let body = r#"{"event":"product.updated","data":{"id":"p"}}"#;
    let now = crate::helpers::unix_now();
    for key in [HMAC_OLD, HMAC_NEW] {
        let (status, answer) = signed_post(&app, Some(signature(key, now, body)), body).await;
        assert_eq!(status, 202, "{answer}");
    }
}

#[tokio::test]
async fn a_stale_a_tampered_or_a_missing_signature_is_401() {
    let app = hmac_app("hmac").await;
    let body = r#"{"event":"product.updated","data":{"id":"p"}}"#;
    let now = crate::helpers::unix_now();
    // Well outside the ±300 s window: the server reads its clock later than the test, so a
    // timestamp one second outside could be inside by then.
    let cases = [
        (Some(signature(HMAC_NEW, now - 330, body)), "window"),
        (Some(signature(HMAC_NEW, now + 330, body)), "window"),
        (
            Some(signature(
                HMAC_NEW,
                now,
                r#"{"event":"product.updated","data":{"id":"q"}}"#,
            )),
            "does not match",
        ),
        (
            Some(signature("some-other-key-000000000000000000000", now, body)),
            "does not match",
        ),
        (Some(format!("t={now},v1=zz")), "must be t="),
        (Some("garbage".to_owned()), "must be t="),
        (None, "missing X-Admin-Push-Signature"),
    ];
    for (header, says) in cases {
        assert_problem(signed_post(&app, header, body).await, 401, says);
    }
    // In hmac mode the bearer secret alone is not enough.
    let response = app.emit(&serde_json::from_str(body).expect("json")).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn either_mode_accepts_a_bearer_or_a_signature() {
    let app = hmac_app("either").await;
    app.emit_product("via-bearer").await; // asserts the 202
    let body = r#"{"event":"product.updated","data":{"id":"via-signature"}}"#;
    let (status, _) = signed_post(
        &app,
        Some(signature(HMAC_OLD, crate::helpers::unix_now(), body)),
        body,
    )
    .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn a_refusal_names_the_field_by_its_path_and_never_a_position_in_the_text() {
    let app = spawn_app().await;
    let product = r#"{"event":"product.updated","data":{"id":"p"}}"#;
    let cases = [
        (
            r#"{"event":"product.updated","data":{"id":"p","price":1}}"#.to_owned(),
            "data: unknown field `price`, expected `id`",
        ),
        (
            format!(r#"[{product},{{"event":"product.updated","data":{{"id":"p","price":1}}}}]"#),
            "events[1].data: unknown field `price`, expected `id`",
        ),
        (
            r#"{"event":"banner.updated","data":{"action":"reordered","ids":["hb_1",""]}}"#
                .to_owned(),
            "data.ids[1]: must not be empty",
        ),
        (
            r#"{"event":"order.updated","data":{"id":42}}"#.to_owned(),
            "data.id: invalid type: integer `42`, expected a string",
        ),
        // A missing field is named by the object it is missing from.
        (
            r#"{"event":"order.updated"}"#.to_owned(),
            "envelope: missing field `data`",
        ),
        (
            format!(r#"[{product},{{"data":{{"id":"p"}}}}]"#),
            "events[1]: missing field `event`",
        ),
        (
            r#"{"event":"product.updated","data":{}}"#.to_owned(),
            "data: missing field `id`",
        ),
        (
            format!(r#"[{product},{{"event":"order.updated","data":{{}}}}]"#),
            "events[1].data: missing field `id`",
        ),
    ];
    for (body, says) in cases {
        let (status, answer) = post(&app, "application/json", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["message"], says, "{body}");
    }
}

/// The family events of the admin's other screens: one example of each, as the Medusa plugin sends
/// them, for every kind the family names.
const FAMILIES: [(&str, &[&str]); 6] = [
    (
        "catalog.updated",
        &["collection", "category", "tag", "type"],
    ),
    (
        "inventory.updated",
        &["inventory_item", "inventory_level", "reservation"],
    ),
    ("customer.updated", &["customer", "customer_group"]),
    ("promotion.updated", &["promotion", "campaign"]),
    ("price_list.updated", &["price_list"]),
    (
        "settings.updated",
        &[
            "store",
            "region",
            "tax_region",
            "sales_channel",
            "stock_location",
            "shipping_option",
            "shipping_profile",
            "user",
            "invite",
            "api_key",
        ],
    ),
];

#[tokio::test]
async fn every_family_event_is_accepted_with_a_kind_an_action_and_ids_and_delivered_as_sent() {
    let app = spawn_app().await;
    let mut subscriber = app.subscribe(Transport::Ws, "").await;
    subscriber.ready().await;
    for (event, kinds) in FAMILIES {
        for kind in kinds {
            for data in [
                json!({ "kind": kind, "action": "updated", "id": "rec_1" }),
                json!({ "kind": kind, "action": "deleted", "ids": ["rec_1", "rec_2"] }),
                json!({ "kind": kind, "action": "created" }),
            ] {
                let response = app.emit(&json!({ "event": event, "data": data })).await;
                assert_eq!(response.status(), 202, "{event} {data}");
                assert_eq!(subscriber.expect(event).await.data, data);
            }
        }
    }
    let response = app
        .emit(&json!({ "event": "notification.created", "data": { "id": "noti_1" } }))
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        subscriber.expect("notification.created").await.data,
        json!({ "id": "noti_1" })
    );
}

#[tokio::test]
async fn a_family_event_with_an_unknown_field_kind_or_action_is_422() {
    let app = spawn_app().await;
    let cases = [
        (
            r#"{"event":"customer.updated","data":{"kind":"customer","action":"updated","id":"c","email":"x"}}"#,
            "data: unknown field `email`",
        ),
        (
            r#"{"event":"customer.updated","data":{"kind":"promotion","action":"updated"}}"#,
            "data.kind: unknown variant `promotion`",
        ),
        (
            r#"{"event":"inventory.updated","data":{"kind":"inventory_level","action":"reordered"}}"#,
            "data.action: unknown variant `reordered`",
        ),
        (
            r#"{"event":"settings.updated","data":{"action":"updated"}}"#,
            "data: missing field `kind`",
        ),
        (
            r#"{"event":"price_list.updated","data":{"kind":"price_list","action":"updated","ids":["p",""]}}"#,
            "data.ids[1]: must not be empty",
        ),
        (
            r#"{"event":"notification.created","data":{"id":"n","channel":"feed"}}"#,
            "data: unknown field `channel`",
        ),
    ];
    for (body, says) in cases {
        assert_problem(post(&app, "application/json", body).await, 422, says);
    }
}
