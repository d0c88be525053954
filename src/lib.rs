//! admin-push: real-time push for Medusa admin dashboards.
//!
//! Medusa subscribers and admin routes `POST` tiny events to `/internal/emit`; one hub fans each of
//! them out to every connected admin tab over WebSocket (`/admin-ws`) or Server-Sent Events
//! (`/admin-sse`). A tab that drops resumes from its last event id, or is told to `resync`.
//!
//! The public surface is what the binary and the tests need: [`Application`], [`Settings`],
//! [`telemetry::init`], [`auth::mint_token`] and the protocol's [`CONTROL_NAMES`]. Everything else is crate-private; ARCHITECTURE.md
//! at the repository root maps the modules and the path an event takes through them.

pub mod auth;
mod broker;
mod catalog;
mod emit;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod hub;
mod idempotency;
mod metrics;
mod presence;
mod problem;
mod protocol;
mod rate;
mod receipts;
mod routes;
mod session;
pub mod settings;
mod sse;
mod startup;
pub mod telemetry;
mod tickets;
mod ws;

pub use catalog::CONTROL_NAMES;
pub use settings::Settings;
pub use startup::{Application, StartupError};
