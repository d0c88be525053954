//! Configuration: one typed tree loaded from `config.toml` (or the built-in defaults when there is
//! no file) plus `ADMIN_PUSH__SECTION__KEY` environment overrides.
//!
//! Every section rejects unknown keys and every value is checked once, at start-up, so the rest of
//! the program can trust what it is handed. A mistake stops the start with one plain line that
//! names the key (`hub.history: must be between 1 and 10000000`) instead of surfacing later as odd
//! behaviour. One concern a file: `tree` (the sections and their keys), `defaults` (what runs when
//! nothing is configured), `load` (file, then environment), `check` (what a well-typed value must
//! still pass, production included) and `error` (how a refusal reads).

mod check;
mod defaults;
mod error;
mod load;
#[cfg(test)]
mod tests;
mod tree;

pub use defaults::{DEV_INTERNAL_SECRET, DEV_JWT_SECRET};
pub use error::SettingsError;
pub use tree::{
    AuthSettings, EmitAuth, EmitSettings, EventsSettings, HubBackend, HubSettings,
    InternalSettings, LimitSettings, LogFormat, LogSettings, PresenceSettings, ReceiptSettings,
    RedisMode, ServerSettings, Settings, SseSettings, WsSettings,
};
