//! Logging: `tracing` to stdout, human-readable or JSON lines, filtered by `log.level` (or `RUST_LOG`).
//!
//! Nothing on the per-event fan-out path logs above `trace`; connections log one line when they open
//! and one when they close. Secrets never reach a log line: they are `SecretString`s whose `Debug`
//! prints a redaction.

use tracing_subscriber::{EnvFilter, fmt};

use crate::settings::{LogFormat, LogSettings};

pub fn init(settings: &LogSettings) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // A second init (tests building several apps) is harmless; keep the first subscriber.
    let _ = match settings.format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
