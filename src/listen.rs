//! `admin-push listen`: a subscriber in the terminal, for trying the service out and for debugging
//! a live instance.
//!
//! It goes through the public routes exactly as a browser tab does: it trades an admin JWT for a
//! ticket at `POST /admin-ws/ticket`, then opens `/admin-ws` (WebSocket) or `/admin-sse` (SSE) with
//! `?ticket=`, so what it shows is what a tab would get, refusals included. Every message is printed
//! as one JSON line in the WebSocket frame's shape, whichever transport carried it, so the output
//! of the two transports can be compared line for line and piped into `jq`.

use std::time::Duration;

use eventsource_stream::Eventsource;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_stream::StreamExt;
use tokio_tungstenite::tungstenite::{self, Message};

use admin_push::{Settings, auth};

use admin_push::CONTROL_NAMES;

use crate::remote::{Credential, CredentialParser, base_url};

#[derive(Debug, clap::Args)]
pub(crate) struct ListenArgs {
    /// Base URL of the service's public routes [default: http://<server.bind>].
    #[arg(long, value_parser = base_url)]
    url: Option<Url>,
    /// Admin JWT [default: a one-hour development token signed with `auth.jwt_secret`].
    #[arg(long, env = "ADMIN_PUSH_TOKEN", hide_env_values = true, value_parser = CredentialParser)]
    token: Option<Credential>,
    /// Actor id of the development token minted when no --token is given.
    #[arg(long, default_value = "user_dev")]
    actor_id: String,
    /// Subscribe over Server-Sent Events instead of WebSocket.
    #[arg(long)]
    sse: bool,
    /// Receive only these events (comma-separated), e.g. `product.updated,order.updated`.
    #[arg(long, value_delimiter = ',')]
    events: Vec<String>,
    /// Resume after this event id: every event since then first, then live ones.
    #[arg(long)]
    last_event_id: Option<String>,
}

#[derive(Deserialize)]
struct Ticket {
    ticket: String,
}

/// One printed line: the WebSocket frame's shape.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    event: &'a str,
    data: &'a RawValue,
}

/// Prints messages until the server ends the connection; an error explains a refusal or a failure.
pub(crate) async fn run(settings: &Settings, args: ListenArgs) -> Result<(), String> {
    let base = match args.url {
        Some(url) => url,
        None => base_url(&format!("http://{}", connectable(settings.server.bind)))
            .map_err(|e| format!("server.bind: {e}"))?,
    };
    let token = match &args.token {
        Some(token) => token.expose().to_owned(),
        None => auth::mint_token(&settings.auth, &args.actor_id, Duration::from_secs(3600))
            .map_err(|e| format!("cannot sign a development token: {e}"))?,
    };
    let http = reqwest::Client::new();
    let ticket = ticket(&http, &base, &token).await?;
    let mut url = base
        .join(if args.sse { "admin-sse" } else { "admin-ws" })
        .map_err(|e| format!("--url {base}: {e}"))?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("ticket", &ticket);
        if !args.events.is_empty() {
            query.append_pair("events", &args.events.join(","));
        }
        if let Some(id) = &args.last_event_id {
            query.append_pair("last_event_id", id);
        }
    }
    if args.sse {
        sse(&http, url).await
    } else {
        websocket(url).await
    }
}

/// A wildcard bind (`0.0.0.0:8080`) is reached on loopback.
fn connectable(bind: std::net::SocketAddr) -> std::net::SocketAddr {
    if bind.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], bind.port()))
    } else {
        bind
    }
}

async fn ticket(http: &reqwest::Client, base: &Url, token: &str) -> Result<String, String> {
    let url = base
        .join("admin-ws/ticket")
        .map_err(|e| format!("--url {base}: {e}"))?;
    let response = http
        .post(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(refused("ticket", status.as_u16(), &body));
    }
    serde_json::from_str::<Ticket>(&body)
        .map(|t| t.ticket)
        .map_err(|e| format!("ticket: unexpected answer {body:?}: {e}"))
}

/// The server's own words for a refusal: status and its `{"error","message"}` body.
fn refused(what: &str, status: u16, body: &str) -> String {
    format!("{what} refused: {status} {}", body.trim())
}

async fn websocket(mut url: Url) -> Result<(), String> {
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| format!("{url}: cannot be a WebSocket URL"))?;
    let (mut socket, _) = match tokio_tungstenite::connect_async(url.as_str()).await {
        Ok(connected) => connected,
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            return Err(refused("connection", response.status().as_u16(), &body));
        }
        Err(e) => return Err(format!("{}: {e}", without_query(&url))),
    };
    while let Some(message) = socket.next().await {
        match message.map_err(|e| format!("connection lost: {e}"))? {
            Message::Text(text) => println!("{text}"),
            Message::Close(frame) => {
                if let Some(frame) = frame {
                    eprintln!(
                        "admin-push: closed by the server: {} {}",
                        u16::from(frame.code),
                        frame.reason
                    );
                }
                break;
            }
            // Pings are answered by the library; the server sends nothing else.
            _ => {}
        }
    }
    Ok(())
}

async fn sse(http: &reqwest::Client, url: Url) -> Result<(), String> {
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|e| format!("{}: {e}", without_query(&url)))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(refused("connection", status.as_u16(), &body));
    }
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| format!("connection lost: {e}"))?;
        let data = RawValue::from_string(event.data)
            .map_err(|e| format!("event {:?}: data is not JSON: {e}", event.event))?;
        // Control messages carry no id on WebSocket. On SSE `ready` repeats its resume point as the
        // record id, and a record without `id:` inherits the previous one, so it is dropped here.
        let control = CONTROL_NAMES.contains(&event.event.as_str());
        let line = Line {
            id: Some(event.id.as_str()).filter(|id| !control && !id.is_empty()),
            event: &event.event,
            data: &data,
        };
        println!(
            "{}",
            serde_json::to_string(&line).map_err(|e| format!("encode: {e}"))?
        );
    }
    eprintln!("admin-push: the server ended the stream");
    Ok(())
}

/// The ticket is single use, but still stays out of printed errors.
fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}
