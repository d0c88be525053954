//! Who may subscribe: every JWT failure, tickets, tokens in URLs, origins.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::helpers::{
    BOTH, JWT_SECRET, Transport, admin_token, admin_token_valid_for, assert_problem,
    assert_ticket_opens_exactly_once, sign, sign_with, spawn_app, spawn_app_with, unix_now,
};

const RSA_PRIVATE: &str = include_str!("../fixtures/rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("../fixtures/rsa_public.pem");

/// Connects on both transports with `token` and returns each refusal.
async fn refusals(app: &crate::helpers::TestApp, token: &str) -> Vec<(u16, Value)> {
    let mut refusals = Vec::new();
    for transport in BOTH {
        match app.connect(transport, "", Some(token), &[]).await {
            Ok(_) => panic!("{transport:?} accepted the token"),
            Err(refusal) => refusals.push(refusal),
        }
    }
    refusals
}

async fn assert_unauthorized(app: &crate::helpers::TestApp, token: &str, why: &str) {
    for (status, body) in refusals(app, token).await {
        assert_eq!(status, 401);
        assert_eq!(body["error"], "unauthorized");
        let message = body["message"].as_str().expect("message");
        assert!(message.contains(why), "{message:?} should say {why:?}");
    }
    let ticket = app.ticket(token).await;
    assert_eq!(ticket.status(), 401);
    assert_eq!(
        ticket.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
}

fn claims(overrides: Value) -> Value {
    let now = unix_now();
    let mut claims =
        json!({ "actor_id": "user_1", "actor_type": "user", "iat": now, "exp": now + 600 });
    if let (Some(base), Some(extra)) = (claims.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    claims
}

#[tokio::test]
async fn a_medusa_admin_token_is_accepted_unchanged() {
    let app = spawn_app().await;
    for transport in BOTH {
        let mut subscriber = app.subscribe(transport, "").await;
        subscriber.ready().await;
    }
}

#[tokio::test]
async fn missing_credentials_are_rejected_with_401() {
    let app = spawn_app().await;
    for transport in BOTH {
        assert_problem(app.refusal(transport, "", None, &[]).await, 401, "missing");
    }
}

#[tokio::test]
async fn expired_token_is_rejected_with_401() {
    let app = spawn_app().await;
    let token = sign(&claims(json!({ "exp": unix_now() - 120 })));
    assert_unauthorized(&app, &token, "expired").await;
}

#[tokio::test]
async fn a_token_expired_within_the_leeway_is_still_accepted() {
    let app = spawn_app().await;
    let token = sign(&claims(json!({ "exp": unix_now() - 5 })));
    assert_eq!(app.ticket(&token).await.status(), 200);
}

#[tokio::test]
async fn bad_signature_is_rejected_with_401() {
    let app = spawn_app().await;
    let token = sign_with(
        Algorithm::HS256,
        &claims(json!({})),
        &EncodingKey::from_secret(b"some-other-secret"),
    );
    assert_unauthorized(&app, &token, "bad signature").await;
}

#[tokio::test]
async fn alg_none_is_rejected_with_401() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as b64};
    let app = spawn_app().await;
    let token = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims(json!({})).to_string())
    );
    assert_unauthorized(&app, &token, "malformed").await;
}

#[tokio::test]
async fn hs_rs_confusion_is_rejected_with_401() {
    let app =
        spawn_app_with(json!({ "auth": { "algorithm": "RS256", "jwt_public_key": RSA_PUBLIC } }))
            .await;
    // The classic attack: sign HS256 with the public key as the HMAC secret.
    let forged = sign_with(
        Algorithm::HS256,
        &claims(json!({})),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    );
    assert_unauthorized(&app, &forged, "algorithm not accepted").await;
    // The genuine RS256 token passes.
    let genuine = sign_with(
        Algorithm::RS256,
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("pem"),
    );
    assert_eq!(app.ticket(&genuine).await.status(), 200);
}

#[tokio::test]
async fn wrong_actor_type_is_rejected_with_403() {
    let app = spawn_app().await;
    let token = sign(&claims(json!({ "actor_type": "customer" })));
    for (status, body) in refusals(&app, &token).await {
        assert_eq!(status, 403);
        assert_eq!(body["error"], "forbidden");
    }
}

#[tokio::test]
async fn a_token_without_an_actor_id_is_rejected_with_401_naming_the_claim() {
    let app = spawn_app().await;
    for actor_id in [json!(""), Value::Null] {
        let token = sign(&claims(json!({ "actor_id": actor_id })));
        assert_unauthorized(&app, &token, "actor_id claim").await;
    }
}

#[tokio::test]
async fn a_token_without_an_actor_type_is_rejected_with_401_naming_the_claim() {
    let app = spawn_app().await;
    // Not a valid token of another actor type (403): a token that says no type at all.
    for actor_type in [json!(""), Value::Null] {
        let token = sign(&claims(json!({ "actor_type": actor_type })));
        assert_unauthorized(&app, &token, "actor_type claim").await;
    }
}

#[tokio::test]
async fn missing_exp_is_rejected_with_401() {
    let app = spawn_app().await;
    assert_unauthorized(&app, &sign(&claims(json!({ "exp": null }))), "missing exp").await;
}

#[tokio::test]
async fn a_token_with_critical_extensions_is_rejected_with_401() {
    let app = spawn_app().await;
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood, and none are.
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.crit = Some(vec!["urn:example:bound-to".to_owned()]);
    header.extras.insert("urn:example:bound-to", "device-42");
    let token = jsonwebtoken::encode(
        &header,
        &claims(json!({})),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("signable");
    assert_unauthorized(&app, &token, "crit").await;
}

#[tokio::test]
async fn a_not_yet_valid_token_is_rejected_with_401() {
    let app = spawn_app().await;
    let token = sign(&claims(json!({ "nbf": unix_now() + 600 })));
    assert_unauthorized(&app, &token, "nbf").await;
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let app =
        spawn_app_with(json!({ "auth": { "audience": "admin-push", "issuer": "shop" } })).await;
    let good = sign(&claims(json!({ "aud": "admin-push", "iss": "shop" })));
    assert_eq!(app.ticket(&good).await.status(), 200);
    assert_unauthorized(
        &app,
        &sign(&claims(json!({ "aud": "medusa", "iss": "shop" }))),
        "audience",
    )
    .await;
    assert_unauthorized(
        &app,
        &sign(&claims(json!({ "aud": "admin-push", "iss": "evil" }))),
        "issuer",
    )
    .await;
    // A plain Medusa token has no audience, so it cannot be used where one is required.
    assert_unauthorized(&app, &admin_token("user_1"), "missing").await;
}

#[tokio::test]
async fn a_token_in_the_url_is_never_accepted() {
    let app = spawn_app().await;
    let token = admin_token("user_1");
    for param in ["token", "access_token", "jwt"] {
        for transport in BOTH {
            assert_problem(
                app.refusal(transport, &format!("{param}={token}"), None, &[])
                    .await,
                401,
                "not accepted in the URL",
            );
        }
    }
}

#[tokio::test]
async fn a_ticket_opens_either_transport_exactly_once() {
    let app = spawn_app().await;
    assert_ticket_opens_exactly_once(&app, &app).await;
}

#[tokio::test]
async fn a_ticket_is_random_and_says_when_it_expires() {
    let app = spawn_app().await;
    let response = app.ticket(&admin_token("user_1")).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["expires_in"], 30);
    let ticket = body["ticket"].as_str().expect("ticket");
    assert!(ticket.len() >= 32 && ticket.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(ticket, app.ticket_for("user_1").await);
}

#[tokio::test]
async fn an_expired_ticket_is_rejected_with_401() {
    let app = spawn_app_with(json!({ "auth": { "ticket_ttl_secs": 1 } })).await;
    let ticket = app.ticket_for("user_1").await;
    // Expiry is the behaviour under test: outlive the ticket's one-second life.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_problem(
        app.refusal(Transport::Ws, &format!("ticket={ticket}"), None, &[])
            .await,
        401,
        "ticket",
    );
}

#[tokio::test]
async fn a_garbage_ticket_and_a_non_bearer_header_are_401() {
    let app = spawn_app().await;
    let (status, _) = app
        .refusal(Transport::Sse, "ticket=deadbeef", None, &[])
        .await;
    assert_eq!(status, 401);
    let response = app
        .http
        .post(format!("{}/admin-ws/ticket", app.base))
        .header("authorization", format!("Basic {JWT_SECRET}"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_ticket_never_outlives_its_tokens_exp_whatever_the_leeway() {
    // The default 30 s leeway keeps the token itself acceptable for 30 s more: not the ticket.
    let app = spawn_app().await;
    let response = app.ticket(&admin_token_valid_for("user_1", 2)).await;
    let body: Value = response.json().await.expect("json");
    let expires_in = body["expires_in"].as_u64().expect("expires_in");
    assert!(
        (1..=2).contains(&expires_in),
        "it says it lives {expires_in} s"
    );
    // Expiry is the behaviour under test: outlive the token, well inside the 30 s ticket TTL.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let ticket = body["ticket"].as_str().expect("ticket");
    let (status, _) = app
        .refusal(Transport::Sse, &format!("ticket={ticket}"), None, &[])
        .await;
    assert_eq!(status, 401, "the ticket died with its token");
}

#[tokio::test]
async fn a_request_refused_for_its_filter_does_not_spend_the_ticket() {
    let app = spawn_app().await;
    for transport in BOTH {
        let ticket = app.ticket_for("user_1").await;
        let (status, _) = app
            .refusal(
                transport,
                &format!("ticket={ticket}&events=nope"),
                None,
                &[],
            )
            .await;
        assert_eq!(status, 400);
        let mut tab = app
            .connect(transport, &format!("ticket={ticket}"), None, &[])
            .await
            .unwrap_or_else(|e| panic!("the ticket was spent by a refused request: {e:?}"));
        tab.ready().await;
    }
}
