//! `api`: the SecureCRUD server binary. Thin by design: parse the command line, load settings, set up
//! logging, and hand over to the library crates.
//!
//! - `api` / `api serve`: migrate the database, then serve on `BIND_ADDR` until SIGTERM/SIGINT.
//! - `api migrate up|down [--steps N]|status`: manage the schema without serving.
//! - `api create-admin --username NAME --email EMAIL [--password-stdin] [--promote]`: create the first admin
//!   (password from standard input or `ADMIN_PASSWORD`, never from the command line), or promote a user.
//! - `api audit prune --older-than 90d`: delete audit events older than an age (`s`, `m`, `h` or `d`).

mod cli;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser;
use securecrud_service::Settings;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let settings = match load_settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    logging::init(settings.server.log_format);
    let result = actix_web::rt::System::new().block_on(commands::run(cli.command, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `.env` (if any) into the environment, then the settings from it.
fn load_settings() -> Result<Settings, String> {
    match dotenvy::dotenv() {
        Err(err) if !err.not_found() => {
            return Err(format!("invalid configuration: .env: {err}"));
        }
        _ => {}
    }
    Settings::from_process_env().map_err(|err| err.to_string())
}
