//! What a connection says about itself: the records its tabs have open, each viewed or being
//! edited, as typed values; and every way such a report (or a receipt, which the same connection
//! table bounds) can be refused.
//!
//! A report replaces the connection's previous one whole (it names every record, not a change),
//! so a lost or refused report is healed by the next, and a leader tab carrying several tabs
//! simply reports their union.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

/// The longest record kind (`order`, `product`, …) and record id accepted.
const MAX_KIND: usize = 32;
const MAX_ID: usize = 64;

/// A record others may have open: `<kind>:<id>`, as `order:order_01J…`. Kinds are lowercase
/// letters, digits and `_`, starting with a letter; ids are letters, digits, `_` and `-`. Any
/// record of such a shape may be named: every admin may open every record, so there is nothing
/// to hide, and a record no one else names simply has no other viewer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct RecordKey(String);

impl RecordKey {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RecordKey {
    type Error = String;

    fn try_from(key: String) -> Result<Self, Self::Error> {
        let shaped = key.split_once(':').is_some_and(|(kind, id)| {
            (1..=MAX_KIND).contains(&kind.len())
                && kind.starts_with(|c: char| c.is_ascii_lowercase())
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && (1..=MAX_ID).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if shaped {
            Ok(Self(key))
        } else {
            let shown: String = key.chars().take(MAX_KIND + MAX_ID + 1).collect();
            Err(format!(
                "record {shown:?} is not `<kind>:<id>` (kind: a-z, 0-9, _, at most {MAX_KIND}; id: A-Z, a-z, 0-9, _, -, at most {MAX_ID})"
            ))
        }
    }
}

impl From<RecordKey> for String {
    fn from(key: RecordKey) -> Self {
        key.0
    }
}

/// What an admin is doing on a record. `Editing` outranks `Viewing` when one admin has it open
/// in several tabs or on several instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ViewState {
    Viewing,
    Editing,
}

/// The records a connection has open; at most `presence.max_records`, checked where it is made.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Report(BTreeMap<RecordKey, ViewState>);

impl Report {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn records(&self) -> impl Iterator<Item = (&RecordKey, ViewState)> {
        self.0.iter().map(|(key, state)| (key, *state))
    }

    pub(crate) fn state_of(&self, key: &RecordKey) -> Option<ViewState> {
        self.0.get(key).copied()
    }
}

/// Why a report (or a receipt) was refused. Nothing of a report was taken: the connection's
/// previous report stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("not a presence report: {0}")]
    Malformed(String),
    #[error("not a receipt: {0}")]
    BadReceipt(String),
    #[error("{count} records in one report; presence.max_records allows {limit}")]
    TooManyRecords { count: usize, limit: usize },
    #[error("more than presence.max_reports_per_sec ({limit}) reports in a second")]
    TooManyReports { limit: u32 },
    #[error("no open connection {0} of this admin")]
    UnknownConnection(String),
    #[error("more than receipts.max_per_sec ({limit}) receipts in a second")]
    TooManyReceipts { limit: u32 },
    #[error("the history holds no event with this id")]
    UnknownEvent,
    #[error("the connection is not on this instance, and the others could not be reached")]
    Unforwarded,
}

impl Refusal {
    /// The stable code clients branch on (`error` in the refusal).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "bad_report",
            Refusal::BadReceipt(_) => "bad_receipt",
            Refusal::TooManyRecords { .. } => "too_many_records",
            Refusal::TooManyReports { .. } => "too_many_reports",
            Refusal::UnknownConnection(_) => "unknown_connection",
            Refusal::TooManyReceipts { .. } => "too_many_receipts",
            Refusal::UnknownEvent => "unknown_event",
            Refusal::Unforwarded => "backplane_unavailable",
        }
    }
}

/// Describes a `serde_json` failure by where it happened, without echoing a whole hostile body.
pub(crate) fn malformed(error: impl fmt::Display) -> Refusal {
    Refusal::Malformed(brief(error))
}

/// An error's text, cut short enough to answer a client with.
pub(crate) fn brief(error: impl fmt::Display) -> String {
    error.to_string().chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Result<RecordKey, String> {
        RecordKey::try_from(text.to_owned())
    }

    #[test]
    fn record_keys_are_a_kind_and_an_id() {
        for good in [
            "order:order_01JABC",
            "product:prod-1",
            "draft_order:x",
            "a1:Z",
        ] {
            assert!(key(good).is_ok(), "{good}");
        }
        let long_id = format!("order:{}", "x".repeat(65));
        for bad in [
            "",
            "order",
            "order:",
            ":id",
            "Order:1",
            "1order:1",
            "order:a b",
            "order:a:b",
            "or-der:1",
            "order:é",
            long_id.as_str(),
        ] {
            assert!(key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_report_names_each_record_once_with_its_state() {
        let report: Report =
            serde_json::from_str(r#"{"order:o1":"viewing","product:p1":"editing"}"#)
                .expect("a report");
        assert_eq!(report.len(), 2);
        let order = key("order:o1").expect("key");
        assert_eq!(report.state_of(&order), Some(ViewState::Viewing));
        for bad in [
            r#"{"order:o1":"typing"}"#,
            r#"{"order o1":"viewing"}"#,
            r#"["order:o1"]"#,
            r#"{"order:o1":1}"#,
        ] {
            assert!(serde_json::from_str::<Report>(bad).is_err(), "{bad}");
        }
    }
}
