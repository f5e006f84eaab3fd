//! `api`: the SecureCRUD server binary. Thin by design: parse the command line, load settings, set up
//! logging, and hand over to the library crates.
//!
//! - `api` / `api serve`: migrate the database, then serve on `BIND_ADDR` until SIGTERM/SIGINT.
//! - `api migrate up|down [--steps N]|status`: manage the schema without serving.
//! - `api create-admin --username NAME --email EMAIL [--password-stdin] [--promote]`: create the first admin
//!   (password from standard input or `ADMIN_PASSWORD`, never from the command line), or promote a user.
//! - `api audit prune --older-than 90d`: delete audit events older than an age (`s`, `m`, `h` or `d`).
//! - `api keys generate [--algorithm EdDSA|ES256] [--out FILE]`: write a new signing key (no database, no
//!   other settings needed); `api keys rotate`: replace `JWT_PRIVATE_KEY_FILE` with a new current key;
//!   `api keys list`.

mod cli;
mod commands;
mod logging;
#[path = "../../startup.rs"]
mod startup;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the system's allocator: measured on the task list, +5 % throughput at the same peak
/// memory (mimalloc gave +8 % but a 50 % higher peak, and lost its lead when tuned to return memory; see
/// docs/BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // `.env` first, so that arguments read from the environment (`api keys generate`) see it too; but a
    // broken `.env` stops only commands that run, never `--help` or `--version`.
    let dotenv = startup::load_dotenv();
    let cli = cli::Cli::parse();
    if let Err(message) = dotenv {
        eprintln!("error: invalid configuration: {message}");
        return ExitCode::from(2);
    }
    // Making the first key file needs no settings: they would refuse to load without it in production.
    if let Some(cli::Command::Keys {
        action: cli::KeysAction::Generate { algorithm, out },
    }) = &cli.command
    {
        logging::init(securecrud_service::LogFormat::Text);
        return match commands::generate_key(algorithm, out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let loaded = match startup::settings_or_exit() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    logging::init(loaded.settings.server.log_format);
    // The server's failure is a log event (JSON with LOG_FORMAT=json); a command's is its answer, on
    // standard error whatever RUST_LOG filters.
    let serving = matches!(cli.command, None | Some(cli::Command::Serve));
    let result = actix_web::rt::System::new().block_on(commands::run(cli.command, loaded));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if serving => {
            log::error!("{err:#}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
