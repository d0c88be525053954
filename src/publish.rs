//! `admin-push emit`: publishes one event from the terminal, as a Medusa subscriber would, and
//! prints the service's answer as `<status> <body>` (`202 {"id":"…"}`).
//!
//! Without `--url` and `--secret` it uses the configuration it was started with: the internal
//! listener (or `server.emit_url`) and the first of `internal.secrets`, so on a development
//! machine `emit product.updated '{"id":"prod_01"}'` just works against `cargo run`.

use admin_push::Settings;
use reqwest::Url;
use secrecy::ExposeSecret;

use crate::remote::{Credential, CredentialParser, base_url};

#[derive(Debug, clap::Args)]
pub(crate) struct EmitArgs {
    /// Event name: a built-in event (`banner.updated`, `product.updated`, `order.updated`) or one
    /// listed in `events.extra`.
    event: String,
    /// The event's `data`, a JSON object, e.g. '{"id":"prod_01"}'.
    #[arg(value_parser = json_object)]
    data: serde_json::Value,
    /// Base URL of the service's internal routes, where `/internal/emit` is [default: the
    /// configured `server.emit_url`, else http://<server.internal_bind or server.bind>].
    #[arg(long, env = "ADMIN_PUSH_URL", value_parser = base_url)]
    url: Option<Url>,
    /// Emit secret, one of the service's `internal.secrets` [default: the first configured].
    #[arg(long, env = "ADMIN_PUSH_SECRET", hide_env_values = true, value_parser = CredentialParser)]
    secret: Option<Credential>,
}

fn json_object(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(object @ serde_json::Value::Object(_)) => Ok(object),
        Ok(_) => Err("data must be a JSON object".to_owned()),
        Err(e) => Err(format!("data is not JSON: {e}")),
    }
}

/// Publishes and prints the answer; a refusal (anything but 2xx) is an error after it is printed.
pub(crate) async fn run(settings: &Settings, args: EmitArgs) -> Result<(), String> {
    let base = match args.url {
        Some(url) => url,
        None => base_url(&settings.emit_url()).map_err(|e| format!("server.emit_url: {e}"))?,
    };
    let secret = match &args.secret {
        Some(secret) => secret.expose(),
        None => settings
            .internal
            .secrets
            .first()
            .ok_or("internal.secrets is empty; pass --secret")?
            .expose_secret(),
    };
    let url = base
        .join("internal/emit")
        .map_err(|e| format!("--url {base}: {e}"))?;
    let response = reqwest::Client::new()
        .post(url.clone())
        .bearer_auth(secret)
        .json(&serde_json::json!({ "event": args.event, "data": args.data }))
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::error_chain(&e)))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    println!("{} {body}", status.as_u16());
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("emit refused ({status})"))
    }
}
