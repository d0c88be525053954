//! One subscriber connection: bind to a source address, connect, authenticate, wait for `ready`, then
//! record every bench event it receives into the worker's shared [`Tally`].
//!
//! WebSocket goes through `tokio_tungstenite::client_async` over a pre-bound `TcpStream`. SSE is a plain
//! HTTP/1.1 GET over the same kind of stream (hyper's connection-level client, which also takes care of
//! chunked transfer encoding) whose body is parsed by `eventsource-stream`.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures_util::{SinkExt, Stream, StreamExt};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpSocket, sync::Notify};
use tokio_tungstenite::tungstenite::{
    Message,
    client::IntoClientRequest,
    http::{HeaderValue, Request, header},
    protocol::WebSocketConfig,
};
use tokio_util::sync::CancellationToken;

use crate::proto::{Target, new_histogram, parse_marker, unix_ns};

/// Which transport a subscriber uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Ws,
    Sse,
}

/// Where and how one subscriber connects.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub(crate) target: Target,
    pub(crate) port: u16,
    pub(crate) source: Ipv4Addr,
    pub(crate) transport: Transport,
    /// `Authorization` header value, if the target needs one.
    pub(crate) authorization: Option<String>,
    pub(crate) nchan_channel: String,
    pub(crate) timeout: Duration,
    /// Bytes sent in one binary frame once connected (0: none).
    pub(crate) ws_burst: usize,
    /// The record a WebSocket subscriber reports as viewed once connected (presence).
    pub(crate) presence: Option<String>,
}

/// What all subscribers of one worker add up; shared, lock-light.
#[derive(Debug)]
pub(crate) struct Tally {
    events: u64,
    latency_shards: Vec<Mutex<Histogram<u64>>>,
    last_receipt_ns: Vec<AtomicU64>,
    pub(crate) delivered: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) unexpected: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) closed_early: AtomicU64,
    pub(crate) complete: AtomicU64,
    /// Woken whenever a subscriber completes or ends.
    pub(crate) progress: Notify,
}

const SHARDS: usize = 8;

impl Tally {
    pub(crate) fn new(events: u64) -> Self {
        Self {
            events,
            latency_shards: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            last_receipt_ns: (0..events).map(|_| AtomicU64::new(0)).collect(),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            closed_early: AtomicU64::new(0),
            complete: AtomicU64::new(0),
            progress: Notify::new(),
        }
    }

    /// All shards merged into one latency histogram (µs).
    pub(crate) fn latency(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for shard in &self.latency_shards {
            let shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            all.add(&*shard).expect("histograms share bounds");
        }
        all
    }

    pub(crate) fn last_receipts(&self) -> Vec<u64> {
        self.last_receipt_ns
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect()
    }
}

/// Per-connection view: which sequence numbers this subscriber has seen.
struct Seen {
    bits: Vec<u64>,
    count: u64,
    shard: usize,
}

impl Seen {
    fn new(events: u64, shard: usize) -> Self {
        let words = usize::try_from(events.div_ceil(64)).unwrap_or(0);
        Self {
            bits: vec![0; words],
            count: 0,
            shard: shard % SHARDS,
        }
    }

    /// Records one received frame or SSE data payload.
    fn record(&mut self, tally: &Tally, text: &str) {
        let received = unix_ns();
        let Some((seq, sent)) = parse_marker(text) else {
            return;
        };
        let (word, bit) = (
            usize::try_from(seq / 64).unwrap_or(usize::MAX),
            1u64 << (seq % 64),
        );
        if seq >= tally.events || word >= self.bits.len() {
            tally.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.bits[word] & bit != 0 {
            tally.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.bits[word] |= bit;
        self.count += 1;
        tally.delivered.fetch_add(1, Ordering::Relaxed);
        let latency_us = received.saturating_sub(sent) / 1_000;
        tally.latency_shards[self.shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .saturating_record(latency_us.max(1));
        if let Some(slot) = usize::try_from(seq)
            .ok()
            .and_then(|i| tally.last_receipt_ns.get(i))
        {
            slot.fetch_max(received, Ordering::Relaxed);
        }
        if self.count == tally.events {
            tally.complete.fetch_add(1, Ordering::Relaxed);
            tally.progress.notify_one();
        }
    }
}

/// Failure to open a subscriber, with a short human reason.
pub(crate) type ConnectError = String;

/// Opens one subscriber (with `attempts` tries) and, once it is ready, reports the connect time through
/// `ready` and keeps receiving until `stop` fires or the server closes the connection.
pub(crate) async fn run(
    endpoint: Endpoint,
    id: usize,
    attempts: u32,
    tally: Arc<Tally>,
    stop: CancellationToken,
    ready: tokio::sync::oneshot::Sender<Result<Duration, ConnectError>>,
) {
    let started = Instant::now();
    let mut last_error = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        }
        let opened = tokio::time::timeout(endpoint.timeout, open(&endpoint)).await;
        match opened {
            Ok(Ok(session)) => {
                // Ignore a dropped receiver: the worker gave up waiting, the tally still counts.
                let _ = ready.send(Ok(started.elapsed()));
                let mut seen = Seen::new(tally.events, id);
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = session.receive(&tally, &mut seen) => {
                        tally.closed_early.fetch_add(1, Ordering::Relaxed);
                        tally.progress.notify_one();
                    }
                }
                return;
            }
            Ok(Err(e)) => last_error = e,
            Err(_) => last_error = format!("no ready within {:?}", endpoint.timeout),
        }
    }
    let _ = ready.send(Err(last_error));
}

/// Opens one subscriber, waits for its `ready` and closes the socket: one cycle of churn.
pub(crate) async fn open_and_close(endpoint: &Endpoint) -> Result<(), ConnectError> {
    tokio::time::timeout(endpoint.timeout, open(endpoint))
        .await
        .map_err(|_| format!("no ready within {:?}", endpoint.timeout))?
        .map(drop)
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
type SseEvents = std::pin::Pin<
    Box<
        dyn Stream<
                Item = Result<
                    eventsource_stream::Event,
                    eventsource_stream::EventStreamError<hyper::Error>,
                >,
            > + Send,
    >,
>;

/// An open subscriber that has passed its `ready`.
enum Session {
    Ws(Box<WsStream>),
    Sse(SseEvents),
}

async fn tcp(endpoint: &Endpoint) -> Result<tokio::net::TcpStream, ConnectError> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::from((endpoint.source, 0)))
        .map_err(|e| format!("bind {}: {e}", endpoint.source))?;
    socket
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, endpoint.port)))
        .await
        .map_err(|e| format!("connect: {e}"))
}

async fn open(endpoint: &Endpoint) -> Result<Session, ConnectError> {
    let stream = tcp(endpoint).await?;
    match endpoint.transport {
        Transport::Ws => open_ws(endpoint, stream).await,
        Transport::Sse => open_sse(endpoint, stream).await,
    }
}

async fn open_ws(
    endpoint: &Endpoint,
    stream: tokio::net::TcpStream,
) -> Result<Session, ConnectError> {
    let path = match endpoint.target {
        Target::AdminPush => "/admin-ws".to_owned(),
        Target::Nchan => format!("/sub/{}", endpoint.nchan_channel),
    };
    let mut request = format!("ws://127.0.0.1:{}{path}", endpoint.port)
        .into_client_request()
        .map_err(|e| format!("ws request: {e}"))?;
    if let Some(auth) = &endpoint.authorization {
        let value = HeaderValue::from_str(auth).map_err(|e| format!("auth header: {e}"))?;
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    // Small buffers: the default 128 KiB read buffer would make 19k client sockets cost gigabytes.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("ws handshake: {e}"))?;
    if endpoint.target == Target::AdminPush {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str().contains(r#""event":"ready""#) => {
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("ws before ready: {e}")),
                None => return Err("ws closed before ready".to_owned()),
            }
        }
    }
    if let Some(record) = &endpoint.presence {
        let report = serde_json::json!({ "type": "presence", "records": { record: "viewing" } });
        ws.send(Message::text(report.to_string()))
            .await
            .map_err(|e| format!("ws presence: {e}"))?;
    }
    if endpoint.ws_burst > 0 {
        ws.send(Message::binary(vec![0u8; endpoint.ws_burst]))
            .await
            .map_err(|e| format!("ws burst: {e}"))?;
    }
    Ok(Session::Ws(Box::new(ws)))
}

async fn open_sse(
    endpoint: &Endpoint,
    stream: tokio::net::TcpStream,
) -> Result<Session, ConnectError> {
    let path = match endpoint.target {
        Target::AdminPush => "/admin-sse".to_owned(),
        Target::Nchan => format!("/sub/{}", endpoint.nchan_channel),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(connection);
    let mut request = Request::get(path)
        .header(header::HOST, format!("127.0.0.1:{}", endpoint.port))
        .header(header::ACCEPT, "text/event-stream");
    if let Some(auth) = &endpoint.authorization {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("sse request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("sse request: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("sse status {}", response.status()));
    }
    let mut events: SseEvents = Box::pin(response.into_body().into_data_stream().eventsource());
    if endpoint.target == Target::AdminPush {
        loop {
            match events.next().await {
                Some(Ok(event)) if event.event == "ready" => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("sse before ready: {e}")),
                None => return Err("sse closed before ready".to_owned()),
            }
        }
    }
    Ok(Session::Sse(events))
}

impl Session {
    /// Receives until the connection ends.
    async fn receive(self, tally: &Tally, seen: &mut Seen) {
        match self {
            Self::Ws(mut ws) => {
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Text(text) = message {
                        let text = text.as_str();
                        if text.contains(r#""event":"resync""#) {
                            tally.resyncs.fetch_add(1, Ordering::Relaxed);
                        } else {
                            seen.record(tally, text);
                        }
                    }
                }
            }
            Self::Sse(mut events) => {
                while let Some(Ok(event)) = events.next().await {
                    if event.event == "resync" {
                        tally.resyncs.fetch_add(1, Ordering::Relaxed);
                    } else {
                        seen.record(tally, &event.data);
                    }
                }
            }
        }
    }
}
