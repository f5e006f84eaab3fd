//! The `api` command line.

use clap::{Parser, Subcommand};

/// Where every command's settings come from (shown by `--help`).
const SETTINGS_HELP: &str = "Settings come from environment variables and from a .env file in the current \
folder (or the nearest parent folder that has one); a variable set in the environment wins over the file. \
Every variable is optional in development. See docs/CONFIGURATION.md and .env.example.";

#[derive(Debug, Parser)]
#[command(
    name = "api",
    version,
    about = "SecureCRUD authentication + task API",
    after_help = SETTINGS_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations and serve HTTP on BIND_ADDR (the default command).
    ///
    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight (up to SHUTDOWN_TIMEOUT_SECS)
    /// and exits 0. The database is DATABASE_URL (default: the SQLite file data/securecrud.db, created).
    #[command(after_help = SETTINGS_HELP)]
    Serve,
    /// Manage the database schema.
    #[command(after_help = SETTINGS_HELP)]
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Create an admin account, or with --promote make an existing user an admin.
    ///
    /// The password comes from the first line of standard input (--password-stdin) or from ADMIN_PASSWORD,
    /// never from the command line, and must pass the registration rules.
    #[command(after_help = SETTINGS_HELP)]
    CreateAdmin {
        /// The admin's username (3–32 characters of letters, digits, '_', '.' and '-').
        #[arg(long)]
        username: String,
        /// The admin's email address (with --promote: the existing account's).
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
    #[command(after_help = SETTINGS_HELP)]
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Manage the key pairs that sign access tokens (JWT_ALGORITHM=EdDSA or ES256).
    #[command(after_help = SETTINGS_HELP)]
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Write a new private key (PEM, mode 0600) for a first deployment; refuses to overwrite a file.
    ///
    /// Needs no database and no other configuration. The api installs the key when it starts with it.
    Generate {
        /// EdDSA (Ed25519) or ES256 (P-256).
        #[arg(long, env = "JWT_ALGORITHM", default_value = "EdDSA")]
        algorithm: String,
        /// Where to write the key.
        #[arg(long, env = "JWT_PRIVATE_KEY_FILE")]
        out: std::path::PathBuf,
    },
    /// Replace JWT_PRIVATE_KEY_FILE with a new key and make it current. The previous key stays published
    /// and accepted for JWT_KEY_RETIRE_SECS; running instances that share the file take the new key
    /// within 10 s.
    Rotate {
        /// The previous key leaked: stop accepting it now (every instance within 10 s); the tokens it
        /// signed are refused and their clients refresh.
        #[arg(long)]
        revoke_previous: bool,
    },
    /// Stop accepting retired keys now (they leaked): every instance within 10 s. The current key cannot
    /// be revoked: rotate with --revoke-previous instead.
    Revoke {
        /// The `kid` of each key to revoke (see `api keys list`). A kid may start with `-` (it is base64url).
        #[arg(required = true, allow_hyphen_values = true)]
        kids: Vec<String>,
    },
    /// List the key pairs the database knows, newest first, with when retired ones stop being accepted.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
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
pub enum MigrateAction {
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, KeysAction, parse_age};

    /// A kid is a base64url thumbprint: about one in 32 starts with `-`, which must not read as an option.
    #[test]
    fn a_kid_that_starts_with_a_hyphen_is_a_kid() {
        let cli = Cli::try_parse_from(["api", "keys", "revoke", "-9xY", "abc"]).unwrap();
        match cli.command {
            Some(Command::Keys {
                action: KeysAction::Revoke { kids },
            }) => assert_eq!(kids, ["-9xY", "abc"]),
            other => panic!("{other:?}"),
        }
    }

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
