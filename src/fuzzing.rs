//! Entry points for the fuzz targets in `fuzz/`, and the test that replays their corpora.
//!
//! Each function takes arbitrary bytes, drives one parser that faces the network exactly as the
//! service does, and asserts what must hold for any input: no panic, and the property stated on the
//! function. The fuzz targets call these (built with the `fuzzing` feature, which is all that
//! exposes them); `cargo test` replays every committed corpus file through the same functions, so
//! an input that once found a bug stays a regression test.

use std::sync::LazyLock;

use jsonwebtoken::{EncodingKey, Header};
use secrecy::ExposeSecret;

use crate::{
    auth::Verifier,
    catalog::Catalog,
    protocol,
    settings::AuthSettings,
    ws::guard::{self, FrameGuard, check_header},
};

/// The catalog the emit route would build from a config with one extra event.
static CATALOG: LazyLock<Catalog> =
    LazyLock::new(|| Catalog::new(&["coupon.updated".to_owned()], 100, 4096));

/// The default settings' verifier (HS256 over the development secret).
static VERIFIER: LazyLock<(AuthSettings, Verifier)> = LazyLock::new(|| {
    let settings = AuthSettings::default();
    let verifier = Verifier::new(&settings).expect("the default auth settings are valid");
    (settings, verifier)
});

/// An emit body: refused, or turned into events whose `data` is a compact single-line JSON object
/// within the limit, which reads back from storage unchanged (compacting is idempotent).
pub fn emit_body(body: &[u8]) {
    let Ok(parsed) = CATALOG.parse_body(body) else {
        return;
    };
    assert!(!parsed.events.is_empty() && parsed.events.len() <= 100);
    for event in parsed.events {
        assert!(event.data.starts_with('{') && !event.data.contains('\n'));
        assert!(event.data.len() <= 4096);
        let stored = CATALOG
            .parse_stored(event.name.as_str(), &event.data)
            .expect("an accepted event reads back");
        assert_eq!(stored.data, event.data);
    }
}

/// A `Last-Event-ID` header: a non-empty header never reads as "no header" (that would be a
/// silent fresh start), and an id that parses prints back to itself.
pub fn last_event_id(header: &[u8]) {
    let text = protocol::last_event_id(header);
    assert_eq!(text.is_empty(), header.is_empty());
    if let Ok(id) = text.parse::<protocol::EventId>() {
        assert_eq!(id.to_string().parse(), Ok(id));
    }
}

/// A bearer token. The first byte picks the form: odd, the rest is the token as sent; even, the
/// rest is `<header JSON>\n<claims JSON>`, signed with the verifier's own key, so the fuzzer reaches
/// the checks behind the signature. Whatever passes is an unexpired admin token with no `crit`.
pub fn token(input: &[u8]) {
    let (settings, verifier) = &*VERIFIER;
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        let _ = verifier.verify(&String::from_utf8_lossy(rest));
        return;
    }
    let Some((header, claims)) = split_once(rest, b'\n') else {
        return;
    };
    let (Ok(header), Ok(claims)) = (
        serde_json::from_slice::<Header>(header),
        serde_json::from_slice::<serde_json::Value>(claims),
    ) else {
        return;
    };
    let key = EncodingKey::from_secret(settings.jwt_secret.expose_secret().as_bytes());
    let Ok(token) = jsonwebtoken::encode(&header, &claims, &key) else {
        return;
    };
    if let Ok(principal) = verifier.verify(&token) {
        assert!(header.crit.is_none(), "a crit header passed: {token}");
        assert_eq!(claims["actor_type"], "user");
        assert!(!principal.actor_id.is_empty());
    }
}

/// A WebSocket client's byte stream through the frame guard. The first byte sets the limit, the
/// second how the stream is cut into chunks (as reads would cut it). Whatever the cuts, the guard
/// refuses exactly when a frame, walked from the start of the whole stream, declares more than
/// the limit.
pub fn ws_frames(input: &[u8]) {
    let [limit, cut, stream @ ..] = input else {
        return;
    };
    let limit = usize::from(*limit) * 4;
    let mut guard = FrameGuard::new(limit);
    let step = usize::from(*cut % 16) + 1;
    let verdict = stream
        .chunks(step)
        .try_for_each(|chunk| guard.inspect(chunk));
    assert_eq!(
        verdict.is_err(),
        refused(stream, limit),
        "limit {limit}, chunks of {step}"
    );
}

/// The straightforward reading: frame after frame from the start, until one is too large (true) or
/// the bytes run out (false).
fn refused(stream: &[u8], limit: usize) -> bool {
    let mut at = 0;
    while at < stream.len() {
        match check_header(&stream[at..], limit) {
            Err(_) => return true,
            Ok(guard::Header::Incomplete) => return false,
            Ok(guard::Header::Frame {
                header_len,
                payload_len,
            }) => at += header_len + payload_len,
        }
    }
    false
}

fn split_once(bytes: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == at)?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Feeds every file of `fuzz/corpus/<target>` through `check`; an empty or missing corpus fails.
    fn replay(target: &str, check: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus is committed") {
            let path = entry.expect("corpus entry").path();
            check(&std::fs::read(&path).expect("corpus file"));
            count += 1;
        }
        assert!(count > 0, "{} is empty", dir.display());
    }

    #[test]
    fn the_emit_body_corpus_replays_cleanly() {
        replay("emit_body", super::emit_body);
    }

    #[test]
    fn the_last_event_id_corpus_replays_cleanly() {
        replay("last_event_id", super::last_event_id);
    }

    #[test]
    fn the_token_corpus_replays_cleanly() {
        replay("token", super::token);
    }

    #[test]
    fn the_ws_frames_corpus_replays_cleanly() {
        replay("ws_frames", super::ws_frames);
    }
}
