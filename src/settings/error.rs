//! How a refused configuration reads: one plain line naming the key (or, for a file that cannot be
//! read or parsed, the file and line), in the words of someone editing `config.toml`.
//!
//! The config library's own errors nest quotes, name internal profiles and speak of Rust types;
//! this module translates them, and says which environment variable a bad value came from.

use figment::error::{Actual, Kind};

use super::load::ENV_PREFIX;

/// Why the configuration was refused: one plain line that names the offending key (or, for a file
/// that cannot be read or parsed, the file and line).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    File(String),
    /// A value that does not fit its key's type, or a key that does not exist.
    #[error("configuration: {key}: {problem}")]
    Value { key: String, problem: String },
    /// A well-typed value that the checks refuse.
    #[error("configuration: {key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

pub(super) fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key,
        problem: problem.into(),
    }
}

/// Turns the config library's error into the key it concerns and a plain sentence, in our words:
/// its own text nests quotes and names internal profiles (`for key "default.server.bindd"`).
pub(super) fn value_error(error: figment::Error) -> SettingsError {
    let mut path = error.path.clone();
    let problem = match &error.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            format!("unknown key; expected one of {}", expected.join(", "))
        }
        Kind::UnknownVariant(found, expected) => {
            format!("{found:?} is not one of {}", expected.join(", "))
        }
        Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
            format!(
                "expected {}, found {}",
                plain_expected(expected),
                plain_actual(found)
            )
        }
        Kind::InvalidLength(len, expected) => format!("expected {expected}, found {len} items"),
        Kind::MissingField(field) => {
            path.push(field.to_string());
            "is required".to_owned()
        }
        Kind::DuplicateField(field) => {
            path.push((*field).to_owned());
            "is given twice".to_owned()
        }
        Kind::ISizeOutOfRange(n) => format!("{n} is out of range"),
        Kind::USizeOutOfRange(n) => format!("{n} is out of range"),
        Kind::Unsupported(found) | Kind::UnsupportedKey(found, _) => {
            format!("unsupported value: {}", plain_actual(found))
        }
        Kind::Message(message) => one_line(message),
    };
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    let problem = if from_env && !path.is_empty() {
        format!(
            "{problem} (from {ENV_PREFIX}{})",
            path.join("__").to_uppercase()
        )
    } else {
        problem
    };
    SettingsError::Value {
        key: if path.is_empty() {
            "(top level)".to_owned()
        } else {
            path.join(".")
        },
        problem,
    }
}

pub(super) fn one_line(message: &str) -> String {
    message.lines().collect::<Vec<_>>().join("; ")
}

/// serde names Rust types (`u64`, `struct ServerSettings`); a reader of the config file thinks
/// in TOML values.
fn plain_expected(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
        "a sequence" => "a list",
        struct_name if struct_name.starts_with("struct ") => "a table",
        other => other,
    }
}

fn plain_actual(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => format!("{s:?}"),
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Seq => "a list".to_owned(),
        Actual::Map => "a table".to_owned(),
        other => other.to_string(),
    }
}
