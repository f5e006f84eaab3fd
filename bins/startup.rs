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

/// The settings, and what became of the development `JWT_SECRET` when it was not configured.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    /// In development without `JWT_SECRET`: the kept secret, or why it could not be used.
    pub kept_secret: Option<KeptSecret>,
}

/// The development `JWT_SECRET` kept in [`KEPT_SECRET_FILE`].
#[derive(Debug)]
pub enum KeptSecret {
    /// Read from (or made in) this file.
    Kept(PathBuf),
    /// The file cannot be used (the api then makes a secret for this run only and says why).
    Unusable { path: PathBuf, why: String },
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

/// dotenvy reports the text it could not parse (the value, or the whole line when the name or the `=` is
/// wrong) and where in it: this finds the line, skipping comments, and names its variable, so that the
/// message says what to fix without repeating anything of the line (it may hold a secret).
fn describe_line_error(path: &Path, fragment: &str, index: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let needle = fragment.trim();
    let found = text.lines().enumerate().find(|(_, line)| {
        let line = line.trim_start();
        !needle.is_empty() && !line.starts_with('#') && line.contains(needle)
    });
    let Some((number, line)) = found else {
        return format!(
            "{}: a line cannot be parsed (at character {})",
            path.display(),
            index + 1
        );
    };
    match variable_of(line) {
        Some(var) => format!(
            "{} line {}: the value of {var} cannot be parsed: put a value with spaces or special \
             characters in double quotes, e.g. {var}=\"…\"",
            path.display(),
            number + 1,
        ),
        None => format!(
            "{} line {}: not of the form NAME=value (a comment starts with #)",
            path.display(),
            number + 1,
        ),
    }
}

/// The variable a `.env` line sets: `NAME=…` or `export NAME=…`, `NAME` letters, digits, `_` and `.`.
fn variable_of(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let (name, _) = line.split_once('=')?;
    let name = name.trim_end();
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    valid.then_some(name)
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
/// 0600) on first use, added to `vars`. Production never gets here: it requires the variable. A file that
/// is not a regular file of this user's, readable by no one else, holding at least 32 characters, is not
/// used (whoever could write it would choose the key that signs tokens): nothing is added, and the settings
/// make a secret for this run only.
fn keep_development_secret(vars: &mut HashMap<String, String>) -> Option<KeptSecret> {
    let set = |var: &str| vars.get(var).is_some_and(|v| !v.trim().is_empty());
    let development = vars
        .get("APP_ENV")
        .is_none_or(|v| matches!(v.trim(), "" | "development"));
    if !development || set("JWT_SECRET") {
        return None;
    }
    let path = PathBuf::from(KEPT_SECRET_FILE);
    let read = match read_secret(&path) {
        Ok(None) => create_private(&path, &securecrud_auth::generate_token())
            .map_err(|err| format!("cannot be written ({err})"))
            // Another process may have made it first: everyone uses the file's.
            .and_then(|()| read_secret(&path))
            .and_then(|secret| secret.ok_or_else(|| "vanished after it was written".to_owned())),
        Ok(Some(secret)) => Ok(secret),
        Err(why) => Err(why),
    };
    Some(match read {
        Ok(secret) => {
            vars.insert("JWT_SECRET".to_owned(), secret);
            KeptSecret::Kept(path)
        }
        Err(why) => KeptSecret::Unusable { path, why },
    })
}

/// The secret in `path`: `None` when there is no such file, an error when it must not be used.
fn read_secret(path: &Path) -> Result<Option<String>, String> {
    let metadata = match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("cannot be read ({err})")),
        Ok(metadata) => metadata,
    };
    if !metadata.file_type().is_file() {
        return Err("is not a regular file (a symbolic link is not followed)".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "may be read or written by other users (mode {mode:o}): make it 0600, or delete it"
            ));
        }
        // The owner of /proc/self is this process's user (Linux; elsewhere the check is skipped).
        if let Ok(me) = std::fs::metadata("/proc/self")
            && me.uid() != metadata.uid()
        {
            return Err("belongs to another user".to_owned());
        }
    }
    let secret = std::fs::read_to_string(path).map_err(|err| format!("cannot be read ({err})"))?;
    let secret = secret.trim();
    if secret.len() < 32 {
        return Err(
            "holds no secret of at least 32 characters: delete it to make a new one".to_owned(),
        );
    }
    Ok(Some(secret.to_owned()))
}

/// Creates `path` holding `text`, readable only by its owner, unless it exists: written to a new file of
/// this process's own first (never through an existing file or link) and then linked into place, so that no
/// process ever reads it half-written.
fn create_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let draft = path.with_extension(format!(
        "new-{}-{}",
        std::process::id(),
        securecrud_auth::generate_token()
            .get(..8)
            .unwrap_or_default()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
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
