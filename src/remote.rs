//! How the command-line clients (`listen`, `emit`) reach a running service: its base URL, and the
//! bearer credential they present (`listen --token`, `emit --secret`).
//!
//! Both are parsed as the arguments arrive, so a value that cannot be used is refused with a plain
//! sentence before anything is sent, instead of an HTTP library's "builder error" or the server's
//! "not a Bearer credential". A refused credential is never echoed: it may be a real secret.

use std::{ffi::OsStr, fmt};

use clap::{Arg, Command, builder::TypedValueParser, error::ErrorKind};
use reqwest::Url;

/// The base URL routes are joined onto. A path prefix (a proxy's `/push`) keeps its place: the
/// path always ends in `/`, so `admin-ws` joins as `/push/admin-ws`.
pub(crate) fn base_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} is not an http:// or https:// URL"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A value an `Authorization: Bearer` header can carry: one or more visible ASCII characters.
#[derive(Clone)]
pub(crate) struct Credential(String);

impl Credential {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    fn parse(value: &OsStr) -> Result<Self, &'static str> {
        let value = value
            .to_str()
            .ok_or("is not valid UTF-8, so it cannot be a credential")?;
        if value.is_empty() {
            return Err("is empty");
        }
        if value.contains(['\n', '\r']) {
            return Err(
                "contains a line break (read from a file with its final newline?); \
                        a credential is one line",
            );
        }
        if value.contains(char::is_whitespace) {
            return Err("contains a space or tab; a credential has none");
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "contains a character that cannot be sent in an HTTP header \
                        (only visible ASCII can)",
            );
        }
        Ok(Self(value.to_owned()))
    }
}

/// Never printed: it may be a real secret.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(..)")
    }
}

/// Parses a [`Credential`] argument; a refusal names the flag (and its environment variable)
/// and says what is wrong, without repeating the value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CredentialParser;

impl TypedValueParser for CredentialParser {
    type Value = Credential;

    fn parse_ref(
        &self,
        cmd: &Command,
        arg: Option<&Arg>,
        value: &OsStr,
    ) -> Result<Credential, clap::Error> {
        Credential::parse(value).map_err(|why| {
            let flag = arg.and_then(Arg::get_long).unwrap_or("credential");
            let env = arg
                .and_then(Arg::get_env)
                .map(|env| format!(" (or {})", env.to_string_lossy()))
                .unwrap_or_default();
            clap::Error::raw(ErrorKind::ValueValidation, format!("--{flag}{env} {why}\n"))
                .with_cmd(cmd)
        })
    }
}
