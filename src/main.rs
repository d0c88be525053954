//! The `admin-push` binary: settings → telemetry → `Application::build` → `run_until_stopped`,
//! plus helpers for trying it out and for debugging a live instance (`token`, `emit`, `listen`,
//! `top`).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use admin_push::{Application, Settings, StartupError, auth, settings::SettingsError, telemetry};
use clap::{Parser, Subcommand};

mod listen;
mod publish;
mod remote;
mod top;

#[derive(Parser)]
#[command(name = "admin-push", version, about)]
struct Cli {
    /// Configuration file (default: ./config.toml, if present); every key can be overridden by
    /// ADMIN_PUSH__SECTION__KEY. A file named here must exist.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Print a development admin JWT signed with the configured `auth.jwt_secret`.
    Token {
        /// The admin user the token names (its `actor_id` claim).
        #[arg(long, default_value = "user_dev")]
        actor_id: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Publish one event and print the answer, e.g. `emit product.updated '{"id":"prod_1"}'`.
    Emit(publish::EmitArgs),
    /// Subscribe like an admin tab and print every message as one JSON line.
    Listen(listen::ListenArgs),
    /// Watch an instance live from its /metrics: events/s and screen refresh p50/p95 per event,
    /// delivery latency, connections, presence, refusals.
    Top(top::TopArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // A file named with --config must exist: a typo must not silently start on the development
    // defaults. Without --config, ./config.toml is optional.
    let default = Path::new("config.toml");
    let loaded = match &cli.config {
        Some(path) => Settings::load(path),
        None if default.exists() => Settings::load(default),
        None => Settings::from_environment(),
    };
    let settings = match loaded {
        Ok(settings) => settings,
        Err(e) => return configuration_error(&e),
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => return serve(settings).await,
        Command::Token { actor_id, ttl } => {
            auth::mint_token(&settings.auth, &actor_id, Duration::from_secs(ttl))
                .map(|token| println!("{token}"))
                .map_err(|e| format!("cannot sign a token: {e}"))
        }
        Command::Emit(args) => publish::run(&settings, args).await,
        Command::Listen(options) => listen::run(&settings, options).await,
        Command::Top(args) => top::run(&settings, args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&e),
    }
}

/// Every configuration mistake, found at load or while building the server, exits 2.
fn configuration_error(error: &SettingsError) -> ExitCode {
    eprintln!("admin-push: {error}");
    ExitCode::from(2)
}

async fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.log);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(StartupError::Settings(e)) => return configuration_error(&e),
        Err(e) => return failure(&error_chain(&e)),
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&error_chain(&e)),
    }
}

fn failure(message: &str) -> ExitCode {
    eprintln!("admin-push: {message}");
    ExitCode::FAILURE
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn every_argument_of_every_command_has_help() {
        let cli = Cli::command();
        for command in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in command.get_arguments() {
                assert!(
                    arg.get_help().is_some(),
                    "{} {} has no help",
                    command.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
