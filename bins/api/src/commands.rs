//! What each `api` command does, over the library crates.
//!
//! A command's answer (a listing, what it did) is written to standard output as plain lines, whatever
//! `RUST_LOG` or `LOG_FORMAT` say; logs and errors go to standard error.

use std::{fmt::Display, io::Write};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use securecrud_domain::{ConflictField, Email, NewUser, Username};
use securecrud_http::Application;
use securecrud_persistence::{ConnectOptions, Database};
use securecrud_service::{AppEnv, Promotion, ServiceError, Services, Settings};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    cli::{AuditAction, Command, KeysAction, MigrateAction},
    startup::{KeptSecret, Loaded},
};

/// Writes one line of a command's answer to standard output. A closed pipe (`api keys list | head -1`) is
/// not an error; any other failure to write (a full disk) is.
fn say(line: impl Display) -> anyhow::Result<()> {
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("could not write the answer to standard output")
        }
        _ => Ok(()),
    }
}

/// A timestamp as RFC 3339 UTC, to the second (`2026-12-06T00:03:50Z`).
fn timestamp(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// Runs `command` (`serve` when none is given).
pub async fn run(command: Option<Command>, loaded: Loaded) -> anyhow::Result<()> {
    let settings = loaded.settings;
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings, loaded.kept_secret).await,
        Command::Migrate { action } => migrate(&settings, action).await,
        Command::CreateAdmin {
            username,
            email,
            password_stdin,
            promote,
        } => create_admin(&settings, &username, &email, password_stdin, promote).await,
        Command::Audit {
            action: AuditAction::Prune { older_than },
        } => {
            let services = Services::connect(&settings).await?;
            let pruned = services.prune_audit(older_than).await?;
            say(format_args!(
                "pruned {pruned} audit events older than {}",
                timestamp(OffsetDateTime::now_utc() - older_than)
            ))?;
            Ok(())
        }
        Command::Keys { action } => keys(&settings, action).await,
    }
}

/// `api keys generate`: before any settings (the key file they name may not exist yet).
pub fn generate_key(algorithm: &str, out: &std::path::Path) -> anyhow::Result<()> {
    let algorithm: securecrud_auth::KeyAlgorithm = algorithm
        .parse()
        .ok()
        .filter(|alg: &securecrud_auth::KeyAlgorithm| alg.is_asymmetric())
        .context("--algorithm (JWT_ALGORITHM) must be EdDSA or ES256")?;
    let key = securecrud_service::write_new_key(algorithm, out, false)?;
    say(format_args!(
        "wrote a new {algorithm} private key to {} (kid {}); set JWT_ALGORITHM={algorithm} and \
         JWT_PRIVATE_KEY_FILE={} and keep the file secret",
        out.display(),
        key.kid(),
        out.display()
    ))?;
    Ok(())
}

async fn keys(settings: &Settings, action: KeysAction) -> anyhow::Result<()> {
    match action {
        KeysAction::Generate { algorithm, out } => generate_key(&algorithm, &out)?,
        KeysAction::Rotate { revoke_previous } => {
            let services = Services::connect(settings).await?;
            let (kid, previous) = services.rotate_key(revoke_previous).await?;
            let previous_name = previous.as_deref().unwrap_or("the previous key");
            if revoke_previous {
                say(format_args!(
                    "rotated: new tokens are signed with {kid}; {previous_name} is revoked"
                ))?;
                report_revoked(&services, previous.as_slice()).await?;
            } else {
                say(format_args!(
                    "rotated: new tokens are signed with {kid}; {previous_name} stays accepted for {} s",
                    settings.jwt.key_retire.whole_seconds()
                ))?;
            }
        }
        KeysAction::Revoke { kids } => {
            let services = Services::connect(settings).await?;
            services.revoke_keys(&kids).await?;
            report_revoked(&services, &kids).await?;
        }
        KeysAction::List => list_keys(settings).await?,
    }
    Ok(())
}

/// After a revocation: each key's state read back from the shared table, which is what every instance
/// applies (not what this process's settings would say).
async fn report_revoked(services: &Services, kids: &[String]) -> anyhow::Result<()> {
    let keys = services.list_keys().await?;
    for kid in kids {
        match keys
            .iter()
            .find(|key| &key.kid == kid)
            .and_then(|key| key.revoked_at)
        {
            Some(at) => say(format_args!(
                "revoked {kid} at {}: refused from then on by every instance (each reads the table \
                 within 10 s) and left out of the JWKS",
                timestamp(at)
            ))?,
            None => anyhow::bail!("{kid} does not read back as revoked"),
        }
    }
    Ok(())
}

/// A key's state as `api keys list` shows it.
fn key_state(key: &securecrud_service::KeyListing, now: OffsetDateTime) -> String {
    match (key.revoked_at, key.retired_at, key.accepted_until) {
        (Some(revoked), _, _) => format!("revoked at {}", timestamp(revoked)),
        (None, None, _) => "current".to_owned(),
        (None, Some(_), Some(until)) if until > now => {
            format!("retired, accepted until {}", timestamp(until))
        }
        _ => "retired, no longer accepted".to_owned(),
    }
}

/// `api keys list`: reads the keys table and applies no migration (a database that needs one is refused
/// with what to run).
async fn list_keys(settings: &Settings) -> anyhow::Result<()> {
    let db = Database::connect(&settings.database_url, &command_line_options()).await?;
    let pending = db
        .migration_status()
        .await?
        .into_iter()
        .filter(|migration| !migration.applied)
        .count();
    if pending > 0 {
        anyhow::bail!(
            "the database has {pending} pending migrations: run `api migrate up` (or start the api) first"
        );
    }
    let services = Services::new(settings, db)?;
    let keys = services.list_keys().await?;
    if keys.is_empty() {
        say(
            "no key pairs yet (the api installs its key when it starts with JWT_ALGORITHM=EdDSA or ES256)",
        )?;
        return Ok(());
    }
    let width = keys
        .iter()
        .map(|key| key.kid.len())
        .max()
        .unwrap_or(3)
        .max(3);
    say(format_args!(
        "{:width$}  {:5}  {:20}  STATE",
        "KID", "ALG", "CREATED"
    ))?;
    let now = OffsetDateTime::now_utc();
    for key in keys {
        let state = key_state(&key, now);
        say(format_args!(
            "{:width$}  {:5}  {:20}  {state}",
            key.kid,
            key.alg,
            timestamp(key.created_at)
        ))?;
    }
    Ok(())
}

/// How the one-shot commands that only read connect: one connection, no session cache.
fn command_line_options() -> ConnectOptions {
    ConnectOptions {
        max_connections: 1,
        // The command line checks no sessions.
        session_cache_max_age: std::time::Duration::ZERO,
        ..ConnectOptions::default()
    }
}

/// `create-admin --promote`: makes the user `username` with `email` an admin; whether there was one (if not,
/// the caller creates the admin).
async fn promoted(services: &Services, username: &str, email: &str) -> anyhow::Result<bool> {
    let name = Username::parse(username).map_err(|e| anyhow::anyhow!("username: {}", e.0))?;
    let address = Email::parse(email).map_err(|e| anyhow::anyhow!("email: {}", e.0))?;
    match services.promote_to_admin(&name, &address).await? {
        Some(Promotion::Promoted) => say(format_args!("{username} is now an admin"))?,
        Some(Promotion::AlreadyAdmin) => say(format_args!("{username} is already an admin"))?,
        Some(Promotion::EmailMismatch) => anyhow::bail!(
            "user {username} exists with another email: not promoted (give both the username and the \
             email of the account to promote)"
        ),
        Some(Promotion::EmailNotVerified) => anyhow::bail!(
            "user {username}'s email is not verified: not promoted (anyone can register an address they \
             do not own; the user verifies it first, through the link sent at registration)"
        ),
        None => {
            log::info!("no user {username} yet: creating an admin");
            return Ok(false);
        }
    }
    Ok(true)
}

async fn create_admin(
    settings: &Settings,
    username: &str,
    email: &str,
    password_stdin: bool,
    promote: bool,
) -> anyhow::Result<()> {
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("could not read the password from standard input")?;
        Some(SecretString::from(line.trim_end_matches(['\n', '\r'])))
    } else {
        settings.admin_password.clone()
    };
    let services = Services::connect(settings).await?;
    if promote && promoted(&services, username, email).await? {
        return Ok(());
    }
    let password =
        password.context("no password: pipe it in with --password-stdin or set ADMIN_PASSWORD")?;
    let new = NewUser::parse(Some(username), Some(email), Some(password.expose_secret()))
        .map_err(|errors| anyhow::anyhow!("invalid admin account: {}", errors.summary()))?;
    match services.create_admin(new).await {
        Ok(user) => {
            say(format_args!(
                "admin {} created (id {})",
                user.username, user.id
            ))?;
            Ok(())
        }
        Err(ServiceError::Conflict(field)) => anyhow::bail!(
            "the {} is already taken (to make an existing account an admin, pass --promote with both its \
             username and its email)",
            match field {
                ConflictField::Username => "username",
                ConflictField::Email => "email",
                ConflictField::Credential => "passkey credential",
                ConflictField::Identity => "provider identity",
            }
        ),
        Err(err) => Err(err.into()),
    }
}

async fn serve(settings: Settings, kept_secret: Option<KeptSecret>) -> anyhow::Result<()> {
    match kept_secret {
        Some(KeptSecret::Kept(path)) => log::info!(
            "JWT_SECRET is not set: using the development secret kept in {} (production requires \
             JWT_SECRET)",
            path.display()
        ),
        Some(KeptSecret::Unusable { path, why }) => log::warn!(
            "JWT_SECRET is not set and {} {why}: using a random secret for this run, so tokens stop \
             working when the api restarts (set JWT_SECRET, or fix the file)",
            path.display()
        ),
        None => {}
    }
    if settings.mfa.development_key {
        log::warn!(
            "MFA_ENCRYPTION_KEY and JWT_SECRET are not set: TOTP secrets are sealed with a fixed development \
             key (production refuses to start without MFA_ENCRYPTION_KEY)"
        );
    }
    match settings.mail.smtp_url() {
        None if settings.env == AppEnv::Production => log::warn!(
            "SMTP_URL is not set: verification and reset emails are written to {} instead of being sent",
            settings.mail.dir.display()
        ),
        None => log::info!("mail goes to .eml files in {}", settings.mail.dir.display()),
        Some(_) => {}
    }
    let app = Application::build(&settings).await?;
    log::info!(
        "SecureCRUD {} listening on http://{}:{} (docs at /docs)",
        env!("CARGO_PKG_VERSION"),
        settings.server.bind_addr.ip(),
        app.port()
    );
    app.run_until_stopped().await.context("the server failed")?;
    log::info!("server stopped");
    Ok(())
}

async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = Database::connect(&settings.database_url, &command_line_options()).await?;
    match action {
        MigrateAction::Up => db.migrate_up().await?,
        MigrateAction::Down { steps } => db.migrate_down(steps).await?,
        MigrateAction::Status => {}
    }
    for migration in db.migration_status().await? {
        let state = if migration.applied {
            "applied"
        } else {
            "pending"
        };
        say(format_args!("{state:8} {}", migration.name))?;
    }
    Ok(())
}
