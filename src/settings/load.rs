//! Where the values come from: the TOML file (or none, for the built-in defaults), then the
//! `ADMIN_PUSH__SECTION__KEY` environment variables over it, then the checks.
//!
//! Every way in ends in `from_figment`, so no path can skip the checks.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};

use super::{
    Settings,
    error::{SettingsError, one_line, value_error},
};

/// `ADMIN_PUSH__AUTH__JWT_SECRET` sets `auth.jwt_secret`.
pub(super) const ENV_PREFIX: &str = "ADMIN_PUSH__";

impl Settings {
    /// Loads the TOML file at `path`, which must exist, then the environment.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SettingsError::File(match e.kind() {
                std::io::ErrorKind::NotFound => format!("file {} not found", path.display()),
                _ => format!("cannot read {}: {e}", path.display()),
            })
        })?;
        // The TOML parser's own error is a multi-line snippet; one line with the position reads
        // better in a terminal and in a service manager's log.
        if let Err(e) = text.parse::<toml::Table>() {
            let line = e
                .span()
                .map_or(1, |span| text[..span.start].matches('\n').count() + 1);
            return Err(SettingsError::File(format!(
                "{} line {line}: {}",
                path.display(),
                one_line(e.message())
            )));
        }
        Self::from_figment(
            Figment::new()
                .merge(Toml::string(&text))
                .merge(environment()),
        )
    }

    /// The built-in defaults and the environment: what runs when there is no configuration file.
    pub fn from_environment() -> Result<Self, SettingsError> {
        Self::from_figment(Figment::new().merge(environment()))
    }

    /// Loads from an explicit figment; tests use it to layer overrides on the defaults.
    pub fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment.extract().map_err(value_error)?;
        settings.check()?;
        Ok(settings)
    }
}

fn environment() -> Env {
    Env::prefixed(ENV_PREFIX).split("__")
}
