//! What both binaries (`api`, `seed`) do first: read `.env` into the environment (dotenvy lives here, never
//! in the library crates), then the settings, or stop with exit code 2 naming every bad variable. Included
//! by each binary with `#[path]`: two packages, one copy.
//!
//! In development without `JWT_SECRET`, the secret is kept in [`KEPT_SECRET_FILE`] (made on first use), so
//! that restarting `make run` does not log everyone out, and the api and `seed` share it.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use securecrud_service::Settings;

/// Where development keeps its generated `JWT_SECRET` (beside the default SQLite database).
pub const KEPT_SECRET_FILE: &str = "data/jwt-secret";

/// The settings, and where the development `JWT_SECRET` came from when it was not configured.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    /// The file that holds the development `JWT_SECRET`, when one was read from (or written to) it.
    pub kept_secret: Option<PathBuf>,
}

/// Reads the nearest `.env` (in the current folder or a parent), if there is one, into the environment.
/// Variables already set win over the file's.
///
/// # Errors
/// Why the file cannot be used: which line and variable, never the value (it may be a secret).
pub fn load_dotenv() -> Result<(), String> {
    let Some(path) = find_dotenv() else {
        return Ok(());
    };
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::LineParse(fragment, index)) => {
            Err(describe_line_error(&path, &fragment, index))
        }
        Err(err) => Err(format!("{}: {err}", path.display())),
    }
}

/// The `.env` in the current folder or the nearest parent that has one.
fn find_dotenv() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|dir| dir.join(".env"))
        .find(|candidate| candidate.is_file())
}

/// dotenvy reports the text it could not parse (part of a line, often the value) and where in it: this
/// finds the line and its variable, so that the message says what to fix without repeating the value.
fn describe_line_error(path: &Path, fragment: &str, index: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let needle = fragment.trim();
    let found = text
        .lines()
        .enumerate()
        .find(|(_, line)| !needle.is_empty() && line.contains(needle));
    let Some((number, line)) = found else {
        return format!(
            "{}: a line cannot be parsed (at character {})",
            path.display(),
            index + 1
        );
    };
    let var = line
        .trim_start()
        .trim_start_matches("export ")
        .split('=')
        .next()
        .unwrap_or_default()
        .trim();
    format!(
        "{} line {}: the value of {var} cannot be parsed (at character {} of the value): put a value \
         with spaces or special characters in quotes, e.g. {var}=\"…\"",
        path.display(),
        number + 1,
        index + 1,
    )
}

/// The settings (after `.env`), or the exit code after printing every problem.
pub fn settings_or_exit() -> Result<Loaded, ExitCode> {
    let mut vars: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .collect();
    let kept_secret = keep_development_secret(&mut vars);
    match Settings::from_vars(&vars) {
        Ok(settings) => Ok(Loaded {
            settings,
            kept_secret,
        }),
        Err(err) => {
            eprintln!("error: {err}");
            eprintln!("(settings come from the environment and .env; see docs/CONFIGURATION.md)");
            Err(ExitCode::from(2))
        }
    }
}

/// In development, when `JWT_SECRET` is not set: the one kept in [`KEPT_SECRET_FILE`], made (random, mode
/// 0600) on first use, added to `vars`. Production never gets here: it requires the variable. If the file
/// cannot be read or written, nothing is added and the settings make a secret for this run only (the api
/// warns that tokens die with it).
fn keep_development_secret(vars: &mut HashMap<String, String>) -> Option<PathBuf> {
    let set = |var: &str| vars.get(var).is_some_and(|v| !v.trim().is_empty());
    let development = vars
        .get("APP_ENV")
        .is_none_or(|v| matches!(v.trim(), "" | "development"));
    if !development || set("JWT_SECRET") {
        return None;
    }
    let path = PathBuf::from(KEPT_SECRET_FILE);
    let secret = match read_secret(&path) {
        Some(secret) => secret,
        None => {
            create_private(&path, &securecrud_auth::generate_token()).ok()?;
            // Another process may have made it first: everyone uses the file's.
            read_secret(&path)?
        }
    };
    vars.insert("JWT_SECRET".to_owned(), secret);
    Some(path)
}

/// The secret in `path`, if it holds one long enough.
fn read_secret(path: &Path) -> Option<String> {
    let secret = std::fs::read_to_string(path).ok()?;
    let secret = secret.trim();
    (secret.len() >= 32).then(|| secret.to_owned())
}

/// Creates `path` holding `text`, readable only by its owner, unless it exists: written to a file of this
/// process's own first and then linked into place, so that no process ever reads it half-written.
fn create_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let draft = path.with_extension(format!("new-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&draft)
        .and_then(|mut file| writeln!(file, "{text}"))
        .and_then(|()| match std::fs::hard_link(&draft, path) {
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        });
    let _ = std::fs::remove_file(&draft);
    written
}
