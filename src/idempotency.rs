//! `Idempotency-Key` answers: a key the caller chose, and the event ids its first publish got.
//!
//! A key is parsed once at the edge ([`IdempotencyKey`]) and travels with the publish into the
//! broker, because only there can "have I seen it?" and "append" be one step. The Redis broker
//! records answers inside the same script that appends (so no retry can ever publish twice); the
//! memory broker keeps them here, in a bounded map where a key being handled right now is
//! "in progress" (a concurrent repeat is refused with 409 rather than published twice).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use crate::protocol::EventId;

/// Idempotency keys longer than this are refused: they are opaque tokens, not documents.
const MAX_KEY_BYTES: usize = 200;

/// A caller's idempotency key: 1 to 200 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdempotencyKey(String);

#[derive(Debug, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 200 visible ASCII characters")]
pub(crate) struct BadIdempotencyKey;

impl IdempotencyKey {
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, BadIdempotencyKey> {
        if raw.is_empty() || raw.len() > MAX_KEY_BYTES || !raw.iter().all(u8::is_ascii_graphic) {
            return Err(BadIdempotencyKey);
        }
        // All visible ASCII, so valid UTF-8.
        String::from_utf8(raw.to_vec())
            .map(Self)
            .map_err(|_| BadIdempotencyKey)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the memory store says about a key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Never seen (or forgotten): the caller publishes, then [`MemoryAnswers::finish`]es.
    First,
    /// Another request with this key is being handled right now.
    InProgress,
    /// Already published: these are its ids.
    Replay(Vec<EventId>),
}

/// Remembers the ids published under each key for a while; bounded, oldest forgotten first.
#[derive(Debug)]
pub(crate) struct MemoryAnswers {
    entries: Mutex<Entries>,
    ttl: Duration,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Entries {
    answers: HashMap<String, (Instant, Option<Vec<EventId>>)>,
    order: VecDeque<(Instant, String)>,
}

impl MemoryAnswers {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            ttl,
            capacity,
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn begin(&self, key: &IdempotencyKey) -> Begin {
        let now = Instant::now();
        let mut entries = self.entries();
        let Entries { answers, order } = &mut *entries;
        // Forget what expired, and the oldest when full: memory stays bounded by `capacity`.
        while let Some((at, oldest)) = order.front() {
            if now.duration_since(*at) < self.ttl && answers.len() < self.capacity {
                break;
            }
            if answers.get(oldest).is_some_and(|(stamp, _)| stamp == at) {
                answers.remove(oldest);
            }
            order.pop_front();
        }
        match answers.get(key.as_str()) {
            Some((_, Some(ids))) => Begin::Replay(ids.clone()),
            Some((_, None)) => Begin::InProgress,
            None => {
                answers.insert(key.as_str().to_owned(), (now, None));
                order.push_back((now, key.as_str().to_owned()));
                Begin::First
            }
        }
    }

    pub(crate) fn finish(&self, key: &IdempotencyKey, ids: Vec<EventId>) {
        if let Some((_, slot)) = self.entries().answers.get_mut(key.as_str()) {
            *slot = Some(ids);
        }
    }

    /// Nothing was published under `key`: a retry may run.
    pub(crate) fn abandon(&self, key: &IdempotencyKey) {
        self.entries().answers.remove(key.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text.as_bytes()).expect("valid key")
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(IdempotencyKey::parse(b"order_1-placed").is_ok());
        for bad in [&b""[..], b"has space", b"\xff", &[b'k'; 201]] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_key_is_first_then_in_progress_then_replayed() {
        let answers = MemoryAnswers::new(Duration::from_secs(60), 10);
        let ids = vec![EventId::new(1, 1)];
        assert_eq!(answers.begin(&key("k")), Begin::First);
        assert_eq!(answers.begin(&key("k")), Begin::InProgress);
        answers.finish(&key("k"), ids.clone());
        assert_eq!(answers.begin(&key("k")), Begin::Replay(ids));
        assert_eq!(answers.begin(&key("other")), Begin::First);
        answers.abandon(&key("other"));
        assert_eq!(answers.begin(&key("other")), Begin::First);
    }

    #[test]
    fn the_answer_store_is_bounded() {
        let answers = MemoryAnswers::new(Duration::from_secs(60), 2);
        for k in ["a", "b", "c"] {
            assert_eq!(answers.begin(&key(k)), Begin::First);
            answers.finish(&key(k), vec![EventId::new(1, 1)]);
        }
        assert_eq!(answers.begin(&key("a")), Begin::First, "oldest forgotten");
    }
}
