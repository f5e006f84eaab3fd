//! What both binaries (`api`, `seed`) do first: read `.env` into the environment (dotenvy lives here, never
//! in the library crates), then the settings, or stop with exit code 2 naming the bad variable. Included by
//! each binary with `#[path]`: two packages, one copy.

use std::process::ExitCode;

use securecrud_service::Settings;

/// Reads `.env` (if there is one) into the environment, or the exit code after printing why it is invalid.
/// Variables already set win over the file's.
pub fn load_dotenv() -> Result<(), ExitCode> {
    match dotenvy::dotenv() {
        Err(err) if !err.not_found() => {
            eprintln!("error: invalid configuration: .env: {err}");
            Err(ExitCode::from(2))
        }
        _ => Ok(()),
    }
}

/// The settings (after `.env`), or the exit code after printing why there are none.
pub fn settings_or_exit() -> Result<Settings, ExitCode> {
    load_dotenv()?;
    Settings::from_process_env().map_err(|err| {
        eprintln!("error: {err}");
        ExitCode::from(2)
    })
}
