//! Real clients: WebSocket (tokio-tungstenite) and SSE (reqwest + eventsource-stream) behind one
//! [`Subscriber`], so delivery tests run unchanged on both transports.

use admin_push::CONTROL_NAMES;
use eventsource_stream::Eventsource;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, client::IntoClientRequest},
};

use super::{WAIT, app::TestApp, tokens::admin_token};

impl TestApp {
    /// Connects and insists the server refuses; returns the status and JSON body.
    pub async fn refusal(
        &self,
        transport: Transport,
        query: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        match self.connect(transport, query, bearer, headers).await {
            Ok(_) => panic!("{transport:?} connection with {query:?} was accepted"),
            Err(refusal) => refusal,
        }
    }

    /// Connects a subscriber with a bearer token and the given query string.
    pub async fn subscribe(&self, transport: Transport, query: &str) -> Subscriber {
        self.connect(transport, query, Some(&admin_token("user_1")), &[])
            .await
            .expect("subscriber connects")
    }

    /// Connects, returning the HTTP refusal (status, JSON body) if the server says no.
    pub async fn connect(
        &self,
        transport: Transport,
        query: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Subscriber, (u16, Value)> {
        match transport {
            Transport::Ws => {
                let mut request = format!("{}/admin-ws?{query}", self.ws_base)
                    .into_client_request()
                    .expect("valid url");
                if let Some(token) = bearer {
                    request.headers_mut().insert(
                        "authorization",
                        format!("Bearer {token}").parse().expect("header"),
                    );
                }
                for (name, value) in headers {
                    request.headers_mut().insert(
                        tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                        value.parse().expect("header"),
                    );
                }
                match tokio_tungstenite::connect_async(request).await {
                    Ok((socket, _)) => Ok(Subscriber::Ws(Box::new(socket))),
                    Err(tungstenite::Error::Http(response)) => {
                        let status = response.status().as_u16();
                        let body = response
                            .body()
                            .as_ref()
                            .and_then(|b| serde_json::from_slice(b).ok())
                            .unwrap_or(Value::Null);
                        Err((status, body))
                    }
                    Err(e) => panic!("websocket connect failed: {e}"),
                }
            }
            Transport::Sse => {
                let mut request = self
                    .http
                    .get(format!("{}/admin-sse?{query}", self.base))
                    .header("accept", "text/event-stream");
                if let Some(token) = bearer {
                    request = request.bearer_auth(token);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let response = request.send().await.expect("sse request");
                if response.status() != 200 {
                    let status = response.status().as_u16();
                    return Err((status, response.json().await.unwrap_or(Value::Null)));
                }
                Ok(Subscriber::Sse(Box::pin(
                    response
                        .bytes_stream()
                        .eventsource()
                        .map(|e| e.map_err(|e| e.to_string())),
                )))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ws,
    Sse,
}

pub const BOTH: [Transport; 2] = [Transport::Ws, Transport::Sse];

type SseStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

pub enum Subscriber {
    Ws(Box<WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>>),
    Sse(SseStream),
}

/// One message as a client sees it, whichever the transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event: String,
    /// Set for real events (and SSE's `ready`); control events have none.
    pub id: Option<String>,
    pub data: Value,
}

/// How a subscription ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum End {
    /// WebSocket close frame with this code.
    Closed(u16),
    /// The stream ended without a close code (SSE), or the socket dropped.
    Eof,
}

impl Subscriber {
    /// The next message, or how the stream ended; panics after [`WAIT`].
    pub async fn next(&mut self) -> Result<Message, End> {
        tokio::time::timeout(WAIT, self.next_unbounded())
            .await
            .expect("the server sent nothing in time")
    }

    async fn next_unbounded(&mut self) -> Result<Message, End> {
        match self {
            Subscriber::Ws(socket) => loop {
                match socket.next().await {
                    Some(Ok(tungstenite::Message::Text(text))) => {
                        let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                        return Ok(Message {
                            event: frame["event"].as_str().expect("event name").to_owned(),
                            id: frame["id"].as_str().map(str::to_owned),
                            data: frame["data"].clone(),
                        });
                    }
                    Some(Ok(tungstenite::Message::Close(frame))) => {
                        return Err(End::Closed(frame.map_or(1005, |f| u16::from(f.code))));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Err(End::Eof),
                }
            },
            Subscriber::Sse(stream) => match stream.next().await {
                // SSE ids are sticky (a record without `id:` keeps the last one), so only real
                // events report theirs.
                Some(Ok(event)) => Ok(Message {
                    id: (!CONTROL_NAMES.contains(&event.event.as_str())).then(|| event.id.clone()),
                    data: serde_json::from_str(&event.data).expect("data is JSON"),
                    event: event.event,
                }),
                Some(Err(_)) | None => Err(End::Eof),
            },
        }
    }

    /// Reads the next message and insists it is `event`.
    pub async fn expect(&mut self, event: &str) -> Message {
        let message = self
            .next()
            .await
            .unwrap_or_else(|end| panic!("ended with {end:?} awaiting {event}"));
        assert_eq!(message.event, event, "unexpected {message:?}");
        message
    }

    /// Reads `ready` and returns its resume point.
    pub async fn ready(&mut self) -> String {
        let ready = self.expect("ready").await;
        ready.data["last_event_id"]
            .as_str()
            .expect("last_event_id")
            .to_owned()
    }

    /// Reads real events until `n` arrived, failing on any control event in between but a new
    /// receipt rate (news for the tab, not a break in its events).
    pub async fn events(&mut self, n: usize) -> Vec<Message> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            let message = self
                .next()
                .await
                .unwrap_or_else(|end| panic!("ended with {end:?}"));
            if message.event == "receipt_rate" {
                continue;
            }
            assert!(message.id.is_some(), "expected an event, got {message:?}");
            events.push(message);
        }
        events
    }

    /// Waits until the stream ends and says how.
    pub async fn end(&mut self) -> End {
        loop {
            if let Err(end) = self.next().await {
                return end;
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        match self {
            Subscriber::Ws(socket) => socket
                .send(tungstenite::Message::text(text))
                .await
                .expect("send"),
            Subscriber::Sse(_) => panic!("SSE clients cannot send"),
        }
    }

    pub async fn send_raw(&mut self, message: tungstenite::Message) {
        match self {
            Subscriber::Ws(socket) => socket.send(message).await.expect("send"),
            Subscriber::Sse(_) => panic!("SSE clients cannot send"),
        }
    }
}
