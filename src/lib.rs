//! admin-push: real-time push for Medusa admin dashboards.
//!
//! Medusa subscribers and admin routes `POST` tiny events to `/internal/emit`; one hub fans each of
//! them out to every connected admin tab over WebSocket (`/admin-ws`) or Server-Sent Events
//! (`/admin-sse`). A tab that drops resumes from its last event id, or is told to `resync`.
//!
//! # Layout
//! - [`settings`] — the typed configuration, checked once at start.
//! - [`telemetry`] — logging.
//! - [`auth`] — admin JWTs, tickets, origins.
//! - [`event`] — event ids, names, typed payloads, wire forms.
//! - [`hub`] — history and live broadcast; where events enter.
//! - [`backplane`] — the Redis Streams log several instances share.
//! - [`session`] — one connection's loop, shared by both transports.
//! - [`ws`], [`sse`] — the two transports.
//! - [`emit`] — the publishing webhook.
//! - [`metrics`] — Prometheus counters, kept off the allocation path.
//! - [`startup`] — wiring, listeners, routes, shutdown.
//! - [`problem`] — the JSON error body every rejection uses.

pub mod auth;
pub mod backplane;
pub mod emit;
pub mod event;
pub mod hub;
pub mod metrics;
pub mod problem;
pub mod session;
pub mod settings;
pub mod sse;
pub mod startup;
pub mod telemetry;
pub mod ws;

pub use settings::Settings;
pub use startup::Application;
