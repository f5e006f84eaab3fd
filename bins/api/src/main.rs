//! `api`: the SecureCRUD server binary. Thin by design: parse the command line, load settings, set up
//! logging, and hand over to the library crates.
//!
//! - `api` / `api serve`: migrate the database, then serve on `BIND_ADDR` until SIGTERM/SIGINT.
//! - `api migrate up|down [--steps N]|status`: manage the schema without serving.
//! - `api create-admin --username NAME --email EMAIL [--password-stdin] [--promote]`: create the first admin
//!   (password from standard input or `ADMIN_PASSWORD`, never from the command line), or promote a user.
//! - `api audit prune --older-than 90d`: delete audit events older than an age (`s`, `m`, `h` or `d`).

mod logging;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use securecrud_domain::{ConflictField, Email, NewUser, Username};
use securecrud_http::Application;
use securecrud_persistence::{ConnectOptions, Database};
use securecrud_service::{AppEnv, Promotion, ServiceError, Services, Settings};

#[derive(Debug, Parser)]
#[command(name = "api", version, about = "SecureCRUD authentication + task API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations and serve HTTP (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Create an admin account, or with --promote make an existing user an admin.
    ///
    /// The password comes from the first line of standard input (--password-stdin) or from ADMIN_PASSWORD,
    /// never from the command line, and must pass the registration rules.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// If a user with this username exists, make them an admin.
        #[arg(long)]
        promote: bool,
    },
    /// Manage the audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Delete audit events older than an age.
    Prune {
        /// The age: a whole number with a unit, `s`, `m`, `h` or `d` (e.g. `90d`).
        #[arg(long, value_parser = parse_age)]
        older_than: time::Duration,
    },
}

/// `90d`, `12h`, `30m`, `45s`: a positive whole number and a unit.
fn parse_age(raw: &str) -> Result<time::Duration, String> {
    let raw = raw.trim();
    let split = raw.len().saturating_sub(1);
    let (number, unit) = (
        raw.get(..split).unwrap_or(""),
        raw.get(split..).unwrap_or(""),
    );
    let number: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{raw:?} is not an age like 90d, 12h, 30m or 45s"))?;
    let seconds = match unit {
        "s" => Some(number),
        "m" => number.checked_mul(60),
        "h" => number.checked_mul(3_600),
        "d" => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("{raw:?} is not an age like 90d, 12h, 30m or 45s"))?;
    Ok(time::Duration::seconds(seconds))
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Revert the most recent migrations.
    Down {
        /// How many migrations to revert.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    logging::init(settings.log_format);
    let result = actix_web::rt::System::new().block_on(run(cli, settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
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
            log::info!("pruned {pruned} audit events older than {older_than}");
            Ok(())
        }
    }
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
    if promote {
        let name = Username::parse(username).map_err(|e| anyhow::anyhow!("username: {}", e.0))?;
        let address = Email::parse(email).map_err(|e| anyhow::anyhow!("email: {}", e.0))?;
        let outcome = services.promote_to_admin(&name, &address).await?;
        match outcome {
            Some(Promotion::Promoted) => log::info!("{username} is now an admin"),
            Some(Promotion::AlreadyAdmin) => log::info!("{username} is already an admin"),
            Some(Promotion::EmailMismatch) => anyhow::bail!(
                "user {username} exists with another email: not promoted (give both the username and the \
                 email of the account to promote)"
            ),
            Some(Promotion::EmailNotVerified) => anyhow::bail!(
                "user {username}'s email is not verified: not promoted (anyone can register an address they \
                 do not own; the user verifies it first, through the link sent at registration)"
            ),
            None => log::info!("no user {username} yet: creating an admin"),
        }
        if outcome.is_some() {
            return Ok(());
        }
    }
    let password =
        password.context("no password: pipe it in with --password-stdin or set ADMIN_PASSWORD")?;
    let new = NewUser::parse(Some(username), Some(email), Some(password.expose_secret())).map_err(
        |errors| {
            let lines: Vec<String> = errors
                .errors()
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            anyhow::anyhow!("invalid admin account: {}", lines.join("; "))
        },
    )?;
    match services.create_admin(new).await {
        Ok(user) => {
            log::info!("admin {} created ({})", user.username, user.id);
            Ok(())
        }
        Err(ServiceError::Conflict(field)) => anyhow::bail!(
            "the {} is already taken (to make an existing account an admin, pass --promote with both its \
             username and its email)",
            match field {
                ConflictField::Username => "username",
                ConflictField::Email => "email",
            }
        ),
        Err(err) => Err(err.into()),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.jwt_secret_generated {
        log::warn!(
            "JWT_SECRET is not set: using a random secret, so tokens stop working when the api restarts \
             (set JWT_SECRET; production refuses to start without it)"
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
        settings.bind_addr.ip(),
        app.port()
    );
    app.run_until_stopped().await.context("the server failed")?;
    log::info!("server stopped");
    Ok(())
}

async fn migrate(settings: &Settings, action: MigrateAction) -> anyhow::Result<()> {
    let db = Database::connect(
        settings.database_url(),
        &ConnectOptions {
            max_connections: 1,
            ..ConnectOptions::default()
        },
    )
    .await?;
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
        log::info!("{state:8} {}", migration.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages_take_a_unit_and_refuse_anything_else() {
        assert_eq!(parse_age("90d"), Ok(time::Duration::days(90)));
        assert_eq!(parse_age("12h"), Ok(time::Duration::hours(12)));
        assert_eq!(parse_age("30m"), Ok(time::Duration::minutes(30)));
        assert_eq!(parse_age("45s"), Ok(time::Duration::seconds(45)));
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "90",
            "90w",
            "1.5d",
            "99999999999999999d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
