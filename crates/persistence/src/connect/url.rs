//! Database URLs: checked once, never printed with their password; the file a SQLite URL names.

use anyhow::Context;

/// A database URL this crate can connect to: `sqlite:…`, `postgres://…` or `postgresql://…`. It may hold a
/// password, so `Debug` hides it. Checked once, by [`DatabaseUrl::parse`].
#[derive(Clone)]
pub struct DatabaseUrl(secrecy::SecretString);

impl DatabaseUrl {
    /// # Errors
    /// A message naming the schemes accepted, when `url` has another one.
    pub fn parse(url: &str) -> Result<Self, String> {
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            return Err("must start with sqlite:, postgres:// or postgresql://".to_owned());
        }
        // Checked here, where the message can leave the URL (and its password) out: the database library
        // would quote the whole URL in its error, and that error is logged.
        if let Err(err) = url::Url::parse(url) {
            return Err(format!(
                "is not a valid URL ({err}); a password with characters such as / @ : # ? must be \
                 percent-encoded (e.g. / as %2F)"
            ));
        }
        Ok(Self(secrecy::SecretString::from(url)))
    }

    /// Whether the URL names a SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    /// The URL (it may hold a password: never log it).
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl([REDACTED])")
    }
}

/// The file a `sqlite:` URL names (without its parameters).
pub(super) fn sqlite_path(url: &str) -> &str {
    url.trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default()
}

/// Creates the folder of a SQLite database file named by `url`, if it has one.
pub(super) fn create_sqlite_folder(url: &str) -> anyhow::Result<()> {
    let path = sqlite_path(url);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(folder) = std::path::Path::new(path).parent()
        && !folder.as_os_str().is_empty()
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("could not create the folder {}", folder.display()))?;
    }
    Ok(())
}
