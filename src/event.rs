//! The event model: what may be published, how it is identified, and the bytes that go on the wire.
//!
//! Publishing is parse-don't-validate: a request body becomes a list of [`PendingEvent`]s only if
//! every envelope names a known event and its `data` deserializes into that event's typed payload
//! (unknown fields rejected). The payload is then re-serialized compactly, which both keeps payloads
//! minimal and guarantees single-line JSON that is safe inside an SSE `data:` field.
//!
//! Once the hub assigns an [`EventId`], an [`Event`] renders its WebSocket frame and its SSE record
//! exactly once; every connection writes those same reference-counted bytes.

use std::{borrow::Borrow, collections::HashSet, fmt, str::FromStr, sync::Arc};

use bytes::Bytes;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Strictly increasing, globally unique event id: `<ms>-<seq>`, the shape of a Redis stream id.
///
/// In memory mode `ms` is the boot time (the epoch) and `seq` counts events, so ids from an earlier
/// run are recognisably foreign. In Redis mode the stream assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub ms: u64,
    pub seq: u64,
}

impl EventId {
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };

    pub fn new(ms: u64, seq: u64) -> Self {
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
pub struct BadEventId;

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

/// An accepted event name. Cheap to clone and compare; shared by every event of that name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventName(Arc<str>);

impl EventName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets a `HashSet<EventName>` be searched with a plain `&str` (the derived `Hash` and `Eq` are
/// those of the inner `str`, as `Borrow` requires).
impl Borrow<str> for EventName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const BANNER_UPDATED: &str = "banner.updated";
pub const PRODUCT_UPDATED: &str = "product.updated";
pub const ORDER_UPDATED: &str = "order.updated";

/// An identifier of a shop resource: non-empty, short, printable. Anything else is a caller bug.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String")]
struct ResourceId(String);

const MAX_RESOURCE_ID_BYTES: usize = 256;

impl TryFrom<String> for ResourceId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        if value.len() > MAX_RESOURCE_ID_BYTES {
            return Err(format!("must be at most {MAX_RESOURCE_ID_BYTES} bytes"));
        }
        if value.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(value))
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BannerAction {
    Created,
    Updated,
    Deleted,
    Reordered,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BannerData {
    action: BannerAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<ResourceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<ResourceId>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductData {
    id: ResourceId,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderData {
    id: ResourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<ResourceId>,
}

/// A validated event that has no id yet.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub name: EventName,
    /// Compact single-line JSON object.
    pub data: Box<str>,
}

/// A parsed publish body: its events in order, and whether it came as an array (the answer's shape
/// follows the request's).
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<PendingEvent>,
    pub is_batch: bool,
}

/// Why a publish body was refused. `Malformed` is a syntax problem (400); `Invalid` names the field
/// that broke a rule (422); the size limits have their own status codes.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("batch has {count} events; at most {max} are accepted")]
    BatchTooLarge { count: usize, max: usize },
    #[error("{field}: data is {size} bytes; at most {max} are accepted")]
    DataTooLarge {
        field: String,
        size: usize,
        max: usize,
    },
}

impl PublishError {
    fn from_serde(field: impl FnOnce() -> String, err: serde_json::Error) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => PublishError::Invalid {
                field: field(),
                message: err.to_string(),
            },
            Category::Io | Category::Syntax | Category::Eof => {
                PublishError::Malformed(err.to_string())
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope<'a> {
    event: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The set of event names this deployment accepts and the limits on their payloads.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Built-in and `events.extra` names alike.
    names: HashSet<EventName>,
    max_batch: usize,
    max_data_bytes: usize,
}

impl Catalog {
    pub fn new(extra: &[String], max_batch: usize, max_data_bytes: usize) -> Self {
        let builtin = [BANNER_UPDATED, PRODUCT_UPDATED, ORDER_UPDATED];
        Self {
            names: builtin
                .into_iter()
                .chain(extra.iter().map(String::as_str))
                .map(|name| EventName(Arc::from(name)))
                .collect(),
            max_batch,
            max_data_bytes,
        }
    }

    /// Looks a name up; the returned value shares its allocation with every other event of that name.
    pub fn name(&self, name: &str) -> Option<EventName> {
        self.names.get(name).cloned()
    }

    /// Parses a publish body: one envelope or an array of them, all-or-nothing.
    pub fn parse_body(&self, body: &[u8]) -> Result<Batch, PublishError> {
        let is_batch = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'[');
        if !is_batch {
            let envelope: RawEnvelope<'_> = serde_json::from_slice(body)
                .map_err(|e| PublishError::from_serde(String::new, e))?;
            return Ok(Batch {
                events: vec![self.parse_envelope(&envelope, "")?],
                is_batch: false,
            });
        }
        let envelopes: Vec<RawEnvelope<'_>> = serde_json::from_slice(body)
            .map_err(|e| PublishError::from_serde(|| "events".to_owned(), e))?;
        if envelopes.is_empty() {
            return Err(PublishError::Invalid {
                field: "events".into(),
                message: "a batch must hold at least one event".into(),
            });
        }
        if envelopes.len() > self.max_batch {
            return Err(PublishError::BatchTooLarge {
                count: envelopes.len(),
                max: self.max_batch,
            });
        }
        let events = envelopes
            .iter()
            .enumerate()
            .map(|(i, envelope)| self.parse_envelope(envelope, &format!("events[{i}].")))
            .collect::<Result<_, _>>()?;
        Ok(Batch {
            events,
            is_batch: true,
        })
    }

    fn parse_envelope(
        &self,
        envelope: &RawEnvelope<'_>,
        at: &str,
    ) -> Result<PendingEvent, PublishError> {
        let name = self
            .name(envelope.event)
            .ok_or_else(|| PublishError::Invalid {
                field: format!("{at}event"),
                message: format!("unknown event {:?}", envelope.event),
            })?;
        self.parse_data(name, envelope.data.get(), || format!("{at}data"))
    }

    /// Re-checks an event read back from the Redis stream exactly as if it were being published:
    /// anyone who can write to Redis must not be able to send tabs what `/internal/emit` refuses.
    /// A well-formed name this instance does not know is accepted as an extra event, so a rolling
    /// deploy that adds a name to `events.extra` never makes older instances skip it silently.
    pub fn from_stream(&self, name: &str, data: &str) -> Result<PendingEvent, PublishError> {
        let name = match self.name(name) {
            Some(known) => known,
            None if is_extra_event_name(name) => EventName(Arc::from(name)),
            None => {
                return Err(PublishError::Invalid {
                    field: "event".into(),
                    message: format!("unknown event {name:?}"),
                });
            }
        };
        self.parse_data(name, data, || "data".to_owned())
    }

    fn parse_data(
        &self,
        name: EventName,
        raw: &str,
        field: impl Fn() -> String,
    ) -> Result<PendingEvent, PublishError> {
        let too_large = |size| PublishError::DataTooLarge {
            field: field(),
            size,
            max: self.max_data_bytes,
        };
        // Before parsing, so a huge body costs nothing; and after, because the compact form (the
        // one stored and sent) can be longer (`1e2` becomes `100.0`) and is checked on read-back.
        if raw.len() > self.max_data_bytes {
            return Err(too_large(raw.len()));
        }
        let data = match name.as_str() {
            BANNER_UPDATED => compact::<BannerData>(raw),
            PRODUCT_UPDATED => compact::<ProductData>(raw),
            ORDER_UPDATED => compact::<OrderData>(raw),
            _ => compact::<serde_json::Map<String, serde_json::Value>>(raw),
        }
        .map_err(|e| PublishError::from_serde(&field, e))?;
        if data.len() > self.max_data_bytes {
            return Err(too_large(data.len()));
        }
        Ok(PendingEvent {
            name,
            data: data.into_boxed_str(),
        })
    }
}

/// Extra names go into JSON and SSE frames unescaped and into `?events=` lists, and must never pose
/// as a built-in or control event.
pub fn is_extra_event_name(name: &str) -> bool {
    const TAKEN: [&str; 7] = [
        "banner.updated",
        "product.updated",
        "order.updated",
        "ready",
        "resync",
        "reconnect",
        "auth_expired",
    ];
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !TAKEN.contains(&name)
}

/// Round-trips `raw` through its typed form: rejects what the type rejects, drops whitespace.
fn compact<T: Serialize + for<'de> Deserialize<'de>>(
    raw: &str,
) -> Result<String, serde_json::Error> {
    serde_json::to_string(&serde_json::from_str::<T>(raw)?)
}

/// A published event with its wire forms rendered once, shared by every connection.
#[derive(Debug)]
pub struct Event {
    pub id: EventId,
    pub name: EventName,
    pub ws_frame: ByteString,
    pub sse_record: Bytes,
    /// When this instance's hub took it in: the start of its delivery latency.
    pub received: std::time::Instant,
}

impl Event {
    pub fn new(id: EventId, name: EventName, data: &str) -> Self {
        let ws_frame = format!(r#"{{"id":"{id}","event":"{name}","data":{data}}}"#);
        let sse_record = format!("id: {id}\nevent: {name}\ndata: {data}\n\n");
        Self {
            id,
            name,
            ws_frame: ByteString::from(ws_frame),
            sse_record: Bytes::from(sse_record),
            received: std::time::Instant::now(),
        }
    }
}

/// Which transport a connection uses; reported in `ready` and in logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Ws,
    Sse,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Ws => "ws",
            TransportKind::Sse => "sse",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResyncReason {
    /// The resume id is not covered by the history.
    Gap,
    /// The connection fell behind the live broadcast.
    Lagged,
    /// The backplane lost its history while this instance was connected to it.
    Restart,
}

impl ResyncReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncReason::Gap => "gap",
            ResyncReason::Lagged => "lagged",
            ResyncReason::Restart => "restart",
        }
    }
}

/// Control events: per-connection messages with no id, never replayed.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    Ready {
        last_event_id: EventId,
        transport: TransportKind,
    },
    Resync(ResyncReason),
    Reconnect {
        after_ms: u64,
    },
    AuthExpired,
}

impl Control {
    pub fn name(&self) -> &'static str {
        match self {
            Control::Ready { .. } => "ready",
            Control::Resync(_) => "resync",
            Control::Reconnect { .. } => "reconnect",
            Control::AuthExpired => "auth_expired",
        }
    }

    fn data(&self) -> String {
        match self {
            Control::Ready {
                last_event_id,
                transport,
            } => format!(
                r#"{{"last_event_id":"{last_event_id}","transport":"{}"}}"#,
                transport.as_str()
            ),
            Control::Resync(reason) => format!(r#"{{"reason":"{}"}}"#, reason.as_str()),
            Control::Reconnect { after_ms } => format!(r#"{{"after_ms":{after_ms}}}"#),
            Control::AuthExpired => "{}".to_owned(),
        }
    }

    pub fn ws_frame(&self) -> String {
        format!(r#"{{"event":"{}","data":{}}}"#, self.name(), self.data())
    }

    /// `ready` carries the resume point as the record id so a browser's own reconnect resumes there.
    pub fn sse_record(&self) -> String {
        let id = match self {
            Control::Ready { last_event_id, .. } => format!("id: {last_event_id}\n"),
            _ => String::new(),
        };
        format!("{id}event: {}\ndata: {}\n\n", self.name(), self.data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::new(&["coupon.updated".to_owned()], 3, 64)
    }

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
    fn payloads_are_recompacted_and_unknown_fields_rejected() {
        let events = catalog()
            .parse_body(
                br#" { "event": "order.updated", "data": { "id": "order_1" , "status":"paid" } } "#,
            )
            .expect("valid")
            .events;
        assert_eq!(&*events[0].data, r#"{"id":"order_1","status":"paid"}"#);

        let err = catalog()
            .parse_body(br#"[{"event":"product.updated","data":{"id":"p"}},{"event":"product.updated","data":{"id":"p","price":1}}]"#)
            .expect_err("unknown field");
        assert!(
            err.to_string()
                .starts_with("events[1].data: unknown field `price`"),
            "{err}"
        );
    }

    #[test]
    fn extra_events_take_any_object_within_the_size_limit() {
        let events = catalog()
            .parse_body(br#"{"event":"coupon.updated","data":{"code":"X\nY"}}"#)
            .expect("valid")
            .events;
        assert!(
            !events[0].data.contains('\n'),
            "data must stay on one SSE line"
        );
        assert!(matches!(
            catalog().parse_body(br#"{"event":"coupon.updated","data":[1]}"#),
            Err(PublishError::Invalid { .. })
        ));
        let big = format!(
            r#"{{"event":"coupon.updated","data":{{"k":"{}"}}}}"#,
            "x".repeat(80)
        );
        assert!(matches!(
            catalog().parse_body(big.as_bytes()),
            Err(PublishError::DataTooLarge { .. })
        ));
    }

    #[test]
    fn syntax_errors_are_malformed_and_shape_errors_invalid() {
        assert!(matches!(
            catalog().parse_body(b"{nope"),
            Err(PublishError::Malformed(_))
        ));
        assert!(matches!(
            catalog().parse_body(b""),
            Err(PublishError::Malformed(_))
        ));
        assert!(matches!(
            catalog().parse_body(br#"{"event":"nope","data":{}}"#),
            Err(PublishError::Invalid { .. })
        ));
        assert!(matches!(
            catalog().parse_body(b"[]"),
            Err(PublishError::Invalid { .. })
        ));
        let four = br#"[{"event":"product.updated","data":{"id":"a"}},{"event":"product.updated","data":{"id":"a"}},{"event":"product.updated","data":{"id":"a"}},{"event":"product.updated","data":{"id":"a"}}]"#;
        assert!(matches!(
            catalog().parse_body(four),
            Err(PublishError::BatchTooLarge { count: 4, max: 3 })
        ));
    }

    #[test]
    fn wire_forms_match_the_contract() {
        let name = catalog().name("banner.updated").expect("builtin");
        let event = Event::new(
            EventId::new(5, 1),
            name,
            r#"{"action":"updated","id":"hb_1"}"#,
        );
        assert_eq!(
            &*event.ws_frame,
            r#"{"id":"5-1","event":"banner.updated","data":{"action":"updated","id":"hb_1"}}"#
        );
        assert_eq!(
            &event.sse_record[..],
            b"id: 5-1\nevent: banner.updated\ndata: {\"action\":\"updated\",\"id\":\"hb_1\"}\n\n"
        );
        let ready = Control::Ready {
            last_event_id: EventId::new(5, 1),
            transport: TransportKind::Sse,
        };
        assert_eq!(
            ready.sse_record(),
            "id: 5-1\nevent: ready\ndata: {\"last_event_id\":\"5-1\",\"transport\":\"sse\"}\n\n"
        );
    }

    mod hostile_input {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                ".{0,24}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::hash_map(
                        "id|ids|action|status|event|data|[a-z]{1,6}",
                        inner,
                        0..6
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn envelope() -> impl Strategy<Value = Value> {
            let name = prop_oneof![
                Just("banner.updated"),
                Just("product.updated"),
                Just("order.updated"),
                Just("coupon.updated"),
                Just("nope"),
            ];
            (name, json())
                .prop_map(|(event, data)| serde_json::json!({ "event": event, "data": data }))
        }

        proptest! {
            #[test]
            fn any_bytes_get_an_answer_never_a_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
                let _ = catalog().parse_body(&body);
            }

            #[test]
            fn any_json_gets_an_answer_never_a_panic(value in json()) {
                let _ = catalog().parse_body(value.to_string().as_bytes());
            }

            #[test]
            fn accepted_envelopes_always_render_single_line_data(batch in prop::collection::vec(envelope(), 1..4)) {
                if let Ok(parsed) = catalog().parse_body(Value::from(batch).to_string().as_bytes()) {
                    for event in parsed.events {
                        prop_assert!(!event.data.contains('\n'));
                        prop_assert!(serde_json::from_str::<Value>(&event.data).is_ok_and(|v| v.is_object()));
                    }
                }
            }

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
