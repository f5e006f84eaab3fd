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
#[path = "../../startup.rs"]
mod startup;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let settings = match startup::settings_or_exit() {
        Ok(settings) => settings,
        Err(code) => return code,
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
