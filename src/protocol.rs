//! The wire protocol: event ids, the rendered forms of an event, and the control messages.
//!
//! Everything a client sees is produced here, so the wire format lives in one file: the hub renders
//! each [`Event`]'s WebSocket frame and SSE record exactly once and every connection writes those
//! same reference-counted bytes; [`Control`] messages are per connection and have no id. Server
//! frames are never masked (RFC 6455 §5.1), so a WebSocket frame, header included, is the same
//! bytes for every connection and is encoded here, once.

use std::{borrow::Cow, fmt, str::FromStr};

use actix_http::ws::{OpCode, Parser};
use bytes::{Bytes, BytesMut};
use serde::Serialize;

use crate::catalog::{CONTROL_NAMES, EventName};

/// Strictly increasing, globally unique event id: `<ms>-<seq>`, the shape of a Redis stream id.
///
/// In memory mode `ms` is the boot time (the epoch) and `seq` counts events, so ids from an earlier
/// run are recognisably foreign. In Redis mode the stream assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct EventId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl EventId {
    pub(crate) const ZERO: EventId = EventId { ms: 0, seq: 0 };

    pub(crate) fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an event id")]
pub(crate) struct BadEventId;

impl FromStr for EventId {
    type Err = BadEventId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ms, seq) = s.split_once('-').ok_or(BadEventId)?;
        let digits = |part: &str| {
            if part.is_empty() || part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadEventId);
            }
            part.parse::<u64>().map_err(|_| BadEventId)
        };
        Ok(EventId::new(digits(ms)?, digits(seq)?))
    }
}

/// The resume id a `Last-Event-ID` header names, as text for the hub to look up. A header is bytes,
/// not necessarily text: bytes that cannot be an id are kept (lossily), so such a header gets
/// `resync{gap}` like any other unknown id, never a silent fresh start.
pub(crate) fn last_event_id(header: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(header)
}

/// A published event with its wire forms rendered once, shared by every connection.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) id: EventId,
    pub(crate) name: EventName,
    /// The whole WebSocket text frame, header included.
    pub(crate) ws_frame: Bytes,
    pub(crate) sse_record: Bytes,
    /// When this instance's hub took it in: the start of its delivery latency.
    pub(crate) received: std::time::Instant,
}

impl Event {
    /// Renders both wire forms; `data` is the catalog's compact single-line JSON object.
    pub(crate) fn new(id: EventId, name: EventName, data: &str) -> Self {
        let ws_text = format!(r#"{{"id":"{id}","event":"{name}","data":{data}}}"#);
        let sse_record = format!("id: {id}\nevent: {name}\ndata: {data}\n\n");
        Self {
            id,
            name,
            ws_frame: ws_text_frame(&ws_text),
            sse_record: Bytes::from(sse_record),
            received: std::time::Instant::now(),
        }
    }
}

/// One unmasked, unfragmented WebSocket text frame carrying `text`.
pub(crate) fn ws_text_frame(text: &str) -> Bytes {
    let mut frame = BytesMut::with_capacity(text.len() + 10);
    Parser::write_message(&mut frame, text, OpCode::Text, true, false);
    frame.freeze()
}

/// Which transport a connection uses; reported in `ready` and in logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportKind {
    Ws,
    Sse,
}

impl TransportKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransportKind::Ws => "ws",
            TransportKind::Sse => "sse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ResyncReason {
    /// The resume id is not covered by the history.
    Gap,
    /// The connection fell behind the live broadcast.
    Lagged,
    /// The backplane lost its history while this instance was connected to it.
    Restart,
}

impl ResyncReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResyncReason::Gap => "gap",
            ResyncReason::Lagged => "lagged",
            ResyncReason::Restart => "restart",
        }
    }
}

/// A connection's name for what it tells the service about itself (presence reports over HTTP
/// name it): 64 random bits, as 16 hex digits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnectionId(pub(crate) u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for ConnectionId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 {
            return Err(());
        }
        u64::from_str_radix(s, 16).map(ConnectionId).map_err(drop)
    }
}

/// As its 16 hex digits, as in `ready` (the presence backplane forwards reports naming it).
impl Serialize for ConnectionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ConnectionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|()| serde::de::Error::custom("not the 16 hex digits of a connection"))
    }
}

/// Control events: per-connection messages with no id, never replayed.
#[derive(Debug, Clone)]
pub(crate) enum Control {
    Ready {
        last_event_id: EventId,
        transport: TransportKind,
        connection: ConnectionId,
        actor_id: String,
        /// The share of events to send screen-refresh receipts for (0 to 1).
        receipt_rate: f64,
        /// How long a presence report stands unless repeated.
        presence_ttl_ms: u64,
    },
    Resync(ResyncReason),
    Reconnect {
        after_ms: u64,
    },
    AuthExpired,
    /// A presence report was refused, whole; `error` is its stable code, `message` names the limit.
    PresenceRefused {
        error: &'static str,
        message: String,
    },
    /// The share of events to send receipts for from now on, replacing `ready`'s.
    ReceiptRate {
        rate: f64,
    },
}

impl Control {
    fn name(&self) -> &'static str {
        let [
            ready,
            resync,
            reconnect,
            auth_expired,
            _presence,
            presence_refused,
            receipt_rate,
        ] = CONTROL_NAMES;
        match self {
            Control::Ready { .. } => ready,
            Control::Resync(_) => resync,
            Control::Reconnect { .. } => reconnect,
            Control::AuthExpired => auth_expired,
            Control::PresenceRefused { .. } => presence_refused,
            Control::ReceiptRate { .. } => receipt_rate,
        }
    }

    fn data(&self) -> String {
        match self {
            Control::Ready {
                last_event_id,
                transport,
                connection,
                actor_id,
                receipt_rate,
                presence_ttl_ms,
            } => format!(
                r#"{{"last_event_id":"{last_event_id}","transport":"{}","connection":"{connection}","actor_id":{},"receipt_rate":{},"presence_ttl_ms":{presence_ttl_ms}}}"#,
                transport.as_str(),
                serde_json::Value::from(actor_id.as_str()),
                serde_json::Value::from(*receipt_rate)
            ),
            Control::Resync(reason) => format!(r#"{{"reason":"{}"}}"#, reason.as_str()),
            Control::Reconnect { after_ms } => format!(r#"{{"after_ms":{after_ms}}}"#),
            Control::AuthExpired => "{}".to_owned(),
            Control::PresenceRefused { error, message } => {
                serde_json::json!({ "error": error, "message": message }).to_string()
            }
            Control::ReceiptRate { rate } => serde_json::json!({ "rate": rate }).to_string(),
        }
    }

    pub(crate) fn ws_frame(&self) -> Bytes {
        Message::render(self.name(), &self.data()).ws_frame
    }

    /// `ready` carries the resume point as the record id so a browser's own reconnect resumes there.
    pub(crate) fn sse_record(&self) -> Bytes {
        let id = match self {
            Control::Ready { last_event_id, .. } => format!("id: {last_event_id}\n"),
            _ => String::new(),
        };
        Bytes::from(format!(
            "{id}event: {}\ndata: {}\n\n",
            self.name(),
            self.data()
        ))
    }
}

/// A message without an id for some connections only, rendered once in both wire forms.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) ws_frame: Bytes,
    pub(crate) sse_record: Bytes,
}

impl Message {
    /// `data` is compact single-line JSON.
    fn render(name: &str, data: &str) -> Self {
        Self {
            ws_frame: ws_text_frame(&format!(r#"{{"event":"{name}","data":{data}}}"#)),
            sse_record: Bytes::from(format!("event: {name}\ndata: {data}\n\n")),
        }
    }

    /// Who has `record` open: `data` is the `presence` message's JSON object.
    pub(crate) fn presence(data: &str) -> Self {
        Self::render(CONTROL_NAMES[4], data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn event_ids_round_trip_and_order_numerically() {
        let id: EventId = "1700000000000-12".parse().expect("valid id");
        assert_eq!(id.to_string(), "1700000000000-12");
        assert!(EventId::new(1, 9) < EventId::new(1, 10));
        assert!(EventId::new(1, 99) < EventId::new(2, 0));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "+1-2",
            "1 -2",
            "99999999999999999999999-1",
        ] {
            assert_eq!(bad.parse::<EventId>(), Err(BadEventId), "{bad:?}");
        }
    }

    #[test]
    fn wire_forms_match_the_contract() {
        let name = Catalog::new(&[], 3, 64)
            .name("banner.updated")
            .expect("builtin");
        let event = Event::new(
            EventId::new(5, 1),
            name,
            r#"{"action":"updated","id":"hb_1"}"#,
        );
        let text =
            r#"{"id":"5-1","event":"banner.updated","data":{"action":"updated","id":"hb_1"}}"#;
        // FIN + text opcode, unmasked, the 7-bit length, then the JSON.
        assert_eq!(event.ws_frame[..2], [0x81, text.len() as u8]);
        assert_eq!(&event.ws_frame[2..], text.as_bytes());
        assert_eq!(
            &event.sse_record[..],
            b"id: 5-1\nevent: banner.updated\ndata: {\"action\":\"updated\",\"id\":\"hb_1\"}\n\n"
        );
        let ready = Control::Ready {
            last_event_id: EventId::new(5, 1),
            transport: TransportKind::Sse,
            connection: ConnectionId(0xab),
            actor_id: "user_1".to_owned(),
            receipt_rate: 0.25,
            presence_ttl_ms: 30_000,
        };
        assert_eq!(
            ready.sse_record(),
            b"id: 5-1\nevent: ready\ndata: {\"last_event_id\":\"5-1\",\"transport\":\"sse\",\"connection\":\"00000000000000ab\",\"actor_id\":\"user_1\",\"receipt_rate\":0.25,\"presence_ttl_ms\":30000}\n\n"[..]
        );
    }

    mod hostile_input {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_string_is_an_event_id_or_an_error(text in ".{0,48}") {
                let _ = text.parse::<EventId>();
            }

            #[test]
            fn event_ids_round_trip(ms in any::<u64>(), seq in any::<u64>()) {
                let id = EventId::new(ms, seq);
                prop_assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
            }
        }
    }
}
