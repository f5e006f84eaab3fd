//! What both binaries (`api`, `seed`) do first: read `.env` into the environment (dotenvy lives here, never
//! in the library crates), then the settings, or stop with exit code 2 naming the bad variable. Included by
//! each binary with `#[path]`: two packages, one copy.

use std::process::ExitCode;

use securecrud_service::Settings;

/// The settings, or the exit code after printing why there are none.
pub fn settings_or_exit() -> Result<Settings, ExitCode> {
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("error: invalid configuration: .env: {err}");
        return Err(ExitCode::from(2));
    }
    Settings::from_process_env().map_err(|err| {
        eprintln!("error: {err}");
        ExitCode::from(2)
    })
}
