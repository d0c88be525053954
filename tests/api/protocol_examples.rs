//! The protocol document's examples, replayed: every ```` ```http ```` request block in
//! docs/protocol.md is sent to a real server, and the answer must be what the response block after
//! it says (status, the headers shown, the JSON body's keys and values). The document and the
//! service cannot drift apart without this failing.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::helpers::{EMIT_SECRET, admin_token, sign, spawn_app_with, unix_now};

const PROTOCOL: &str = include_str!("../../docs/protocol.md");

/// One documented exchange.
#[derive(Debug)]
struct Example {
    /// The configuration after `http` on the request's fence, as a settings override.
    settings: Value,
    request: Message,
    response: Message,
}

/// A request (`POST /path HTTP/1.1`) or a response (`HTTP/1.1 202 Accepted`): its first line,
/// headers and body.
#[derive(Debug)]
struct Message {
    start: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Message {
    fn parse(block: &str) -> Self {
        let (head, body) = block.split_once("\n\n").unwrap_or((block, ""));
        let mut lines = head.lines();
        let start = lines.next().expect("a first line").to_owned();
        let headers = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("not a header: {line:?}"));
                (name.to_owned(), value.to_owned())
            })
            .collect();
        Self {
            start,
            headers,
            body: body.trim_end().to_owned(),
        }
    }
}

/// `emit.max_batch=2 a.b="x"` as `{"emit":{"max_batch":2},"a":{"b":"x"}}`.
fn settings(attributes: &str) -> Value {
    let mut settings = json!({});
    for attribute in attributes.split_whitespace() {
        let (key, value) = attribute
            .split_once('=')
            .unwrap_or_else(|| panic!("not a setting: {attribute:?}"));
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        let mut at = &mut settings;
        for part in key.split('.') {
            at = at
                .as_object_mut()
                .expect("a table")
                .entry(part)
                .or_insert_with(|| json!({}));
        }
        *at = value;
    }
    settings
}

/// Every ```` ```http ```` block of the document, requests paired with the response after them.
fn examples(document: &str) -> Vec<Example> {
    let mut blocks = Vec::new();
    let mut lines = document.lines();
    while let Some(line) = lines.next() {
        let Some(attributes) = line.strip_prefix("```http") else {
            continue;
        };
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        blocks.push((attributes.trim().to_owned(), block.join("\n")));
    }
    let mut examples = Vec::new();
    let mut blocks = blocks.into_iter();
    while let Some((attributes, request)) = blocks.next() {
        let request = Message::parse(&request);
        assert!(
            !request.start.starts_with("HTTP/"),
            "a response block without a request before it: {request:?}"
        );
        let (_, response) = blocks
            .next()
            .unwrap_or_else(|| panic!("no response block after {:?}", request.start));
        let response = Message::parse(&response);
        assert!(
            response.start.starts_with("HTTP/1.1 "),
            "the block after {:?} is not a response",
            request.start
        );
        examples.push(Example {
            settings: settings(&attributes),
            request,
            response,
        });
    }
    examples
}

/// Whether `actual` is what `documented` says: the same keys in every object, the same values,
/// `"<…>"` for any string and `"text…"` for any string that starts with `text`.
fn check(documented: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (documented, actual) {
        (Value::String(placeholder), Value::String(_))
            if placeholder.starts_with('<') && placeholder.ends_with('>') =>
        {
            Ok(())
        }
        (Value::String(documented), Value::String(actual))
            if documented.ends_with('…')
                && actual.starts_with(documented.trim_end_matches('…')) =>
        {
            Ok(())
        }
        (Value::Object(documented), Value::Object(actual)) => {
            let keys =
                |object: &Map<String, Value>| object.keys().cloned().collect::<BTreeSet<_>>();
            if keys(documented) != keys(actual) {
                return Err(format!(
                    "{at}: keys {:?}, documented {:?}",
                    keys(actual),
                    keys(documented)
                ));
            }
            documented
                .iter()
                .try_for_each(|(key, value)| check(value, &actual[key], &format!("{at}.{key}")))
        }
        (Value::Array(documented), Value::Array(actual)) if documented.len() == actual.len() => {
            documented
                .iter()
                .zip(actual)
                .enumerate()
                .try_for_each(|(i, (documented, actual))| {
                    check(documented, actual, &format!("{at}[{i}]"))
                })
        }
        _ if documented == actual => Ok(()),
        _ => Err(format!("{at}: {actual}, documented {documented}")),
    }
}

/// Sends `example`'s request to a server of its own and checks the answer against the document.
async fn replay(example: &Example) -> Result<u16, String> {
    let app = spawn_app_with(example.settings.clone()).await;
    let customer = sign(&json!({
        "actor_id": "cus_1",
        "actor_type": "customer",
        "exp": unix_now() + 600,
    }));
    let mut values = vec![
        ("<admin JWT>", admin_token("user_1")),
        ("<customer JWT>", customer),
        ("<emit secret>", EMIT_SECRET.to_owned()),
    ];
    let request = &example.request;
    let text = format!("{} {:?} {}", request.start, request.headers, request.body);
    if text.contains("<ticket>") {
        values.push(("<ticket>", app.ticket_for("user_1").await));
    }
    let fill = |text: &str| {
        values
            .iter()
            .fold(text.to_owned(), |text, (placeholder, value)| {
                text.replace(placeholder, value)
            })
    };
    let start = fill(&request.start);
    let mut parts = start.split(' ');
    let (Some(method), Some(target), Some("HTTP/1.1"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not a request line: {start:?}"));
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut call = app.http.request(method, format!("{}{target}", app.base));
    for (name, value) in &request.headers {
        call = call.header(name.as_str(), fill(value));
    }
    let answer = call
        .body(fill(&request.body))
        .send()
        .await
        .map_err(|e| e.to_string())?;

    let response = &example.response;
    let status: u16 = response
        .start
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {:?}", response.start))?;
    let mut problems = Vec::new();
    if answer.status().as_u16() != status {
        problems.push(format!("status {}, documented {status}", answer.status()));
    }
    for (name, documented) in &response.headers {
        let actual = answer
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if actual != Some(documented.as_str()) {
            problems.push(format!("{name}: {actual:?}, documented {documented:?}"));
        }
    }
    let body = answer.text().await.map_err(|e| e.to_string())?;
    if response.body.is_empty() {
        if !body.is_empty() {
            problems.push(format!("a body, documented none: {body}"));
        }
    } else {
        let documented: Value = serde_json::from_str(&response.body)
            .map_err(|e| format!("the documented body is not JSON: {e}"))?;
        match serde_json::from_str::<Value>(&body) {
            Ok(actual) => problems.extend(check(&documented, &actual, "body").err()),
            Err(_) => problems.push(format!("a body that is not JSON: {body:?}")),
        }
    }
    if problems.is_empty() {
        Ok(status)
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test]
async fn every_example_in_the_protocol_document_is_what_the_server_answers() {
    let examples = examples(PROTOCOL);
    let mut failures = Vec::new();
    let mut statuses = BTreeSet::new();
    for example in &examples {
        match replay(example).await {
            Ok(status) => {
                statuses.insert(status);
            }
            Err(problem) => failures.push(format!("{}: {problem}", example.request.start)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The examples the document must keep: the common answers of every route.
    for status in [200, 202, 400, 401, 403, 405, 413, 415, 422] {
        assert!(statuses.contains(&status), "no example answers {status}");
    }
}

#[test]
fn an_example_whose_body_differs_from_the_document_fails() {
    let documented =
        json!({ "error": "bad_request", "message": "malformed JSON: …", "ids": ["<id>"] });
    let same = json!({ "error": "bad_request", "message": "malformed JSON: EOF", "ids": ["1-1"] });
    assert_eq!(check(&documented, &same, "body"), Ok(()));
    for different in [
        json!({ "error": "bad_request", "message": "malformed JSON: EOF", "ids": [] }),
        json!({ "error": "invalid_event", "message": "malformed JSON: EOF", "ids": ["1-1"] }),
        json!({ "error": "bad_request", "message": "something else", "ids": ["1-1"] }),
        json!({ "error": "bad_request", "message": "malformed JSON: EOF", "ids": ["1-1"], "more": 1 }),
    ] {
        assert!(
            check(&documented, &different, "body").is_err(),
            "{different}"
        );
    }
}

#[tokio::test]
async fn an_example_the_server_contradicts_fails() {
    let document = "Some prose.\n\n```http\nGET /healthz HTTP/1.1\n```\n\n\
                    ```http\nHTTP/1.1 200 OK\nContent-Type: text/plain\n\n{\"status\":\"fine\"}\n```\n";
    let examples = examples(document);
    assert_eq!(examples.len(), 1);
    let problem = replay(&examples[0]).await.expect_err("contradicted");
    assert!(problem.contains("Content-Type"), "{problem}");
    assert!(problem.contains("body.status"), "{problem}");
}
