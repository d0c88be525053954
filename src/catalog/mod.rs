//! The event catalog: every name on the wire, which events may be published, the schema of each
//! one's `data`, and the validation that turns a publish body into [`PendingEvent`]s.
//!
//! Adding a built-in event is one payload type and one row in the table in [`schemas`] (plus the
//! browser client and the Medusa plugin, which name events too). Deployments add names without code via
//! `events.extra`; their `data` is any JSON object within the size limit.
//!
//! Publishing is parse-don't-validate: a request body becomes a list of [`PendingEvent`]s only if
//! every envelope names a known event and its `data` deserializes into that event's typed payload
//! (unknown fields rejected). The payload is then re-serialized compactly, which both keeps payloads
//! minimal and guarantees single-line JSON that is safe inside an SSE `data:` field.

mod schemas;

use std::{borrow::Borrow, collections::HashMap, fmt, sync::Arc};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_path_to_error::Segment;

use self::schemas::{BUILTIN, Compactor, EXTRA};

/// The names of the control messages (see `protocol::Control`): no published event may take one.
pub const CONTROL_NAMES: [&str; 7] = [
    "ready",
    "resync",
    "reconnect",
    "auth_expired",
    "presence",
    "presence_refused",
    "receipt_rate",
];

/// An accepted event name. Cheap to clone and compare; shared by every event of that name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EventName(Arc<str>);

impl EventName {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets the catalog's map be searched with a plain `&str` (the derived `Hash` and `Eq` are those
/// of the inner `str`, as `Borrow` requires).
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

/// A validated event that has no id yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub(crate) name: EventName,
    /// Compact single-line JSON object.
    pub(crate) data: Box<str>,
}

/// A parsed publish body: its events in order, and whether it came as an array (the answer's shape
/// follows the request's).
#[derive(Debug)]
pub(crate) struct ParsedBody {
    pub(crate) events: Vec<PendingEvent>,
    pub(crate) is_batch: bool,
}

/// Why a publish body was refused. `Malformed` is a syntax problem (400); `Invalid` names the field
/// that broke a rule (422); the size limits have their own status codes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("{field}: {message}")]
    Invalid { field: Field, message: String },
    #[error("batch has {count} events; at most {max} are accepted")]
    BatchTooLarge { count: usize, max: usize },
    #[error("{field}: data is {size} bytes; at most {max} are accepted")]
    DataTooLarge {
        field: Field,
        size: usize,
        max: usize,
    },
}

impl PublishError {
    fn invalid(field: &Field, message: impl Into<String>) -> Self {
        PublishError::Invalid {
            field: field.clone(),
            message: message.into(),
        }
    }

    /// A shape error names its field (`at`, and then `path` below it) and says what is wrong in
    /// serde's words, without the position serde_json appends (`at line 1 column 19`): the path
    /// already says where, and a caller who built the body as an object has no use for a column.
    /// A syntax error keeps its position.
    fn from_serde(at: &Field, path: &[&Segment], error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => {
                let message = error.to_string();
                let position = format!(" at line {} column {}", error.line(), error.column());
                let message = match message.strip_suffix(&position) {
                    Some(reason) => reason.to_owned(),
                    None => message,
                };
                // The path of an unknown field ends at that field, which the message names
                // already: the refusal names the object it was found in, as for a missing field.
                let path = match path.split_last() {
                    Some((Segment::Map { key }, object))
                        if message.starts_with(&format!("unknown field `{key}`")) =>
                    {
                        object
                    }
                    _ => path,
                };
                PublishError::Invalid {
                    field: at.join(path),
                    message,
                }
            }
            Category::Io | Category::Syntax | Category::Eof => {
                PublishError::Malformed(error.to_string())
            }
        }
    }
}

/// Where in a publish body a problem lies, as refusals name it: `events[1].data.ids[0]` in a
/// batch, `data.id` in a single envelope. A problem with an object itself (a missing or unknown
/// field) names that object: `events[1]`, `events[1].data`, or `envelope` for a single envelope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Field(String);

impl Field {
    /// The array of a batch.
    fn batch() -> Self {
        Field("events".to_owned())
    }

    fn index(&self, index: usize) -> Self {
        Field(format!("{}[{index}]", self.0))
    }

    fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            Field(key.to_owned())
        } else {
            Field(format!("{}.{key}", self.0))
        }
    }

    /// The field `path` leads to from this one.
    fn join(&self, path: &[&Segment]) -> Self {
        path.iter()
            .fold(self.clone(), |field, segment| match segment {
                Segment::Seq { index } => field.index(*index),
                Segment::Map { key } | Segment::Enum { variant: key } => field.key(key),
                Segment::Unknown => field.key("?"),
            })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "envelope"
        } else {
            &self.0
        })
    }
}

/// Deserializes all of `json` as `T`; a shape error names its field by its path below `at`.
fn deserialize<'de, T: Deserialize<'de>>(json: &'de [u8], at: &Field) -> Result<T, PublishError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path: Vec<&Segment> = e.path().iter().collect();
        PublishError::from_serde(at, &path, e.inner())
    })?;
    // Trailing characters after the value, as `serde_json::from_slice` refuses them.
    deserializer
        .end()
        .map_err(|e| PublishError::from_serde(at, &[], &e))?;
    Ok(value)
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"an envelope {"event": name, "data": object}"#
)]
struct RawEnvelope<'a> {
    event: &'a str,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The event names this deployment accepts, each with its payload schema, and the payload limits.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// Built-in and `events.extra` names alike.
    names: HashMap<EventName, Compactor>,
    max_batch: usize,
    max_data_bytes: usize,
}

impl Catalog {
    pub(crate) fn new(extra: &[String], max_batch: usize, max_data_bytes: usize) -> Self {
        let extra = extra.iter().map(|name| (name.as_str(), EXTRA));
        Self {
            names: BUILTIN
                .iter()
                .copied()
                .chain(extra)
                .map(|(name, schema)| (EventName(Arc::from(name)), schema))
                .collect(),
            max_batch,
            max_data_bytes,
        }
    }

    /// Looks a name up; the returned value shares its allocation with every other event of that name.
    pub(crate) fn name(&self, name: &str) -> Option<EventName> {
        self.names.get_key_value(name).map(|(name, _)| name.clone())
    }

    /// Parses a publish body: one envelope or an array of them, all-or-nothing.
    pub(crate) fn parse_body(&self, body: &[u8]) -> Result<ParsedBody, PublishError> {
        let is_batch = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'[');
        if !is_batch {
            let envelope = Field::default();
            return Ok(ParsedBody {
                events: vec![self.parse_envelope(&deserialize(body, &envelope)?, &envelope)?],
                is_batch: false,
            });
        }
        let batch = Field::batch();
        let envelopes: Vec<RawEnvelope<'_>> = deserialize(body, &batch)?;
        if envelopes.is_empty() {
            return Err(PublishError::invalid(
                &batch,
                "a batch must hold at least one event",
            ));
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
            .map(|(i, envelope)| self.parse_envelope(envelope, &batch.index(i)))
            .collect::<Result<_, _>>()?;
        Ok(ParsedBody {
            events,
            is_batch: true,
        })
    }

    fn parse_envelope(
        &self,
        envelope: &RawEnvelope<'_>,
        at: &Field,
    ) -> Result<PendingEvent, PublishError> {
        let Some((name, schema)) = self.names.get_key_value(envelope.event) else {
            return Err(PublishError::invalid(
                &at.key("event"),
                format!("unknown event {:?}", envelope.event),
            ));
        };
        self.parse_data(name.clone(), *schema, envelope.data.get(), &at.key("data"))
    }

    /// Re-checks an event read back from the Redis stream exactly as if it were being published:
    /// anyone who can write to Redis must not be able to send tabs what `/internal/emit` refuses.
    /// A well-formed name this instance does not know is accepted as an extra event, so a rolling
    /// deploy that adds a name to `events.extra` never makes older instances skip it silently.
    pub(crate) fn parse_stored(
        &self,
        name: &str,
        data: &str,
    ) -> Result<PendingEvent, PublishError> {
        let (name, schema) = match self.names.get_key_value(name) {
            Some((known, schema)) => (known.clone(), *schema),
            None if is_extra_event_name(name) => (EventName(Arc::from(name)), EXTRA),
            None => {
                return Err(PublishError::invalid(
                    &Field::default().key("event"),
                    format!("unknown event {name:?}"),
                ));
            }
        };
        self.parse_data(name, schema, data, &Field::default().key("data"))
    }

    fn parse_data(
        &self,
        name: EventName,
        schema: Compactor,
        raw: &str,
        at: &Field,
    ) -> Result<PendingEvent, PublishError> {
        let too_large = |size| PublishError::DataTooLarge {
            field: at.clone(),
            size,
            max: self.max_data_bytes,
        };
        // Before parsing, so a huge body costs nothing; and after, because the compact form (the
        // one stored and sent) can be longer (`1e2` becomes `100.0`) and is checked on read-back.
        if raw.len() > self.max_data_bytes {
            return Err(too_large(raw.len()));
        }
        let data = schema(raw, at)?;
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
pub(crate) fn is_extra_event_name(name: &str) -> bool {
    let taken = BUILTIN
        .iter()
        .map(|(builtin, _)| *builtin)
        .chain(CONTROL_NAMES)
        .any(|taken| taken == name);
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::new(&["coupon.updated".to_owned()], 3, 64)
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
    fn extra_names_never_pose_as_builtin_or_control_events() {
        for taken in ["banner.updated", "order.updated", "ready", "auth_expired"] {
            assert!(!is_extra_event_name(taken), "{taken}");
        }
        assert!(is_extra_event_name("coupon.updated"));
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
        }
    }
}
