//! Logging: `tracing` to stdout, human-readable or JSON lines, filtered by `log.level` (or `RUST_LOG`).
//!
//! Nothing on the per-event fan-out path logs above `trace`; connections log one line when they open
//! and one when they close. Secrets never reach a log line: they are `SecretString`s whose `Debug`
//! prints a redaction.
//!
//! One thing is logged differently from how its library logs it: actix-http reports every
//! connection it gives up on because of what the peer sent (a garbled request line, a head too
//! large, a request that never finished) as one ERROR line, from deep inside its dispatcher where no
//! hook reaches. Those are anonymous clients' doing, not the server's, and one line each would let
//! anyone flood the error log; [`PeerErrors`] turns each into a count on
//! `admin_push_http_refused_total{reason}` and a debug line.

use tracing::{Event, Level, Subscriber, field};
use tracing_subscriber::{
    EnvFilter, Layer, fmt, layer::Context, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::{
    metrics,
    settings::{LogFormat, LogSettings},
};

pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // A second init (tests building several apps) is harmless; keep the first subscriber.
    let _ = match settings.format {
        LogFormat::Pretty => builder.finish().with(PeerErrors).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(PeerErrors)
            .try_init(),
    };
}

/// Where actix-http's HTTP/1 connection handling logs.
const ACTIX_H1: &str = "actix_http::h1";

/// Counts actix-http's per-connection errors and logs them at debug instead of ERROR.
struct PeerErrors;

impl<S: Subscriber> Layer<S> for PeerErrors {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || !metadata.target().starts_with(ACTIX_H1) {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let reason = classify(&message.0);
        metrics::http_refused(reason);
        tracing::debug!(reason, error = %message.0, "connection refused or dropped");
        false
    }
}

/// The `reason` label for an actix-http connection error, from its text (the only form it has).
fn classify(message: &str) -> &'static str {
    if message.contains("message head is too large") {
        "head_too_large"
    } else if message.contains("request parse error") {
        "malformed"
    } else if message.contains("timeout") {
        "timeout"
    } else if message.contains("I/O error") {
        "io"
    } else {
        "other"
    }
}

/// An event's formatted message.
#[derive(Default)]
struct Message(String);

impl field::Visit for Message {
    fn record_debug(&mut self, field: &field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn actix_connection_errors_are_classified_by_their_text() {
        for (message, reason) in [
            (
                "stream error: request parse error: message head is too large",
                "head_too_large",
            ),
            (
                "stream error: request parse error: invalid method specified",
                "malformed",
            ),
            (
                "stream error: request did not complete within the specified timeout",
                "timeout",
            ),
            ("stream error: I/O error: connection reset", "io"),
            ("write zero; closing", "other"),
        ] {
            assert_eq!(classify(message), reason, "{message}");
        }
    }
}
