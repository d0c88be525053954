//! The defaults as the code has them, held against what people read: the shipped `config.toml`
//! claims to document every key, and the README's configuration table lists them. The keys come
//! from the typed tree itself (its defaults, serialised), not from a list kept by hand, so a key
//! added to a section and not documented fails here, naming the key.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::Settings;

/// Serialises a secret as its text: only these tests ever serialise settings.
pub(super) fn exposed<T: Exposed, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.exposed().serialize(serializer)
}

pub(super) trait Exposed {
    fn exposed(&self) -> Value;
}

impl Exposed for SecretString {
    fn exposed(&self) -> Value {
        Value::from(self.expose_secret())
    }
}

impl<T: Exposed> Exposed for Option<T> {
    fn exposed(&self) -> Value {
        self.as_ref().map_or(Value::Null, Exposed::exposed)
    }
}

impl<T: Exposed> Exposed for Vec<T> {
    fn exposed(&self) -> Value {
        self.iter().map(Exposed::exposed).collect()
    }
}

/// Every key as `section.key`, with its default; `null` for a key that is unset by default.
fn defaults() -> BTreeMap<String, Value> {
    let Value::Object(sections) = serde_json::to_value(Settings::default()).expect("serialises")
    else {
        panic!("the settings are a table of sections");
    };
    let mut keys = BTreeMap::new();
    for (section, table) in sections {
        let Value::Object(table) = table else {
            panic!("{section}: every top-level key is a section");
        };
        for (key, value) in table {
            assert!(
                !value.is_object(),
                "{section}.{key}: a table inside a section; teach these tests a third level"
            );
            keys.insert(format!("{section}.{key}"), value);
        }
    }
    keys
}

fn repository_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One documented key of `config.toml`: its line, and whether it is commented out.
struct Line {
    text: String,
    commented: bool,
}

/// The `key = value` lines of `config.toml` by `section.key`, commented out or not.
fn config_toml_lines() -> BTreeMap<String, Line> {
    let mut section = String::new();
    let mut lines = BTreeMap::new();
    for line in repository_file("config.toml").lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (text, commented) = match line.strip_prefix("# ") {
            Some(rest) => (rest, true),
            None => (line, false),
        };
        let Some((key, _)) = text.split_once(" = ") else {
            continue;
        };
        let key = key.trim();
        if !section.is_empty()
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            lines.insert(
                format!("{section}.{key}"),
                Line {
                    text: text.to_owned(),
                    commented,
                },
            );
        }
    }
    lines
}

/// The README's configuration table: its default cell by key.
fn readme_rows() -> BTreeMap<String, String> {
    let readme = repository_file("README.md");
    let (_, section) = readme
        .split_once("\n## Configuration\n")
        .expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|row| {
            let cells: Vec<&str> = row.strip_prefix("| `")?.split(" | ").collect();
            let key = cells.first()?.strip_suffix('`')?;
            Some((key.to_owned(), cells.get(1)?.trim().to_owned()))
        })
        .collect()
}

/// A default as the README writes it: `unset`, a string's text, `""`, or the value itself.
fn as_readme_writes_it(value: &Value) -> String {
    match value {
        Value::Null => "unset".to_owned(),
        Value::String(s) if s.is_empty() => "\"\"".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value a README default cell states, before any explanation: the first code span, or the
/// first word (`0 (one per core)` states 0).
fn stated(cell: &str) -> &str {
    match cell.strip_prefix('`') {
        Some(rest) => rest.split('`').next().unwrap_or_default(),
        None => cell.split_whitespace().next().unwrap_or_default(),
    }
}

fn assert_no_problems(file: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{file} does not document the settings as the code has them:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn config_toml_documents_every_key_with_its_default() {
    let lines = config_toml_lines();
    let mut problems = Vec::new();
    for (key, default) in defaults() {
        let Some(line) = lines.get(&key) else {
            problems.push(format!(
                "{key}: missing (default {})",
                as_readme_writes_it(&default)
            ));
            continue;
        };
        if default.is_null() {
            if !line.commented {
                problems.push(format!(
                    "{key}: unset by default, so its line must be commented out"
                ));
            }
            continue;
        }
        if line.commented {
            problems.push(format!(
                "{key}: defaults to {default}, so its line must not be commented out"
            ));
            continue;
        }
        let documented = line
            .text
            .parse::<toml::Table>()
            .ok()
            .and_then(|table| table.into_iter().next())
            .and_then(|(_, value)| serde_json::to_value(value).ok());
        if documented.as_ref() != Some(&default) {
            problems.push(format!(
                "{key}: says `{}`, but the default is {default}",
                line.text
            ));
        }
    }
    let defaults = defaults();
    for key in lines.keys().filter(|key| !defaults.contains_key(*key)) {
        problems.push(format!("{key}: documented, but there is no such key"));
    }
    assert_no_problems("config.toml", &problems);
}

#[test]
fn the_readme_table_lists_every_key_with_its_default() {
    let rows = readme_rows();
    let mut problems = Vec::new();
    for (key, default) in defaults() {
        let expected = as_readme_writes_it(&default);
        match rows.get(&key) {
            None => problems.push(format!("{key}: no row (default {expected})")),
            Some(cell) if stated(cell) != expected => problems.push(format!(
                "{key}: the row says {cell}, but the default is {expected}"
            )),
            Some(_) => {}
        }
    }
    let defaults = defaults();
    for key in rows.keys().filter(|key| !defaults.contains_key(*key)) {
        problems.push(format!("{key}: a row, but there is no such key"));
    }
    assert_no_problems("README.md's configuration table", &problems);
}
