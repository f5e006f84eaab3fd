//! `seed`: fills the configured database (same `DATABASE_URL` / `.env` as the api, migrated first) with demo
//! users and tasks, through the service crate's use cases: the same validation and bcrypt hashing as the api.
//!
//! `cargo run --bin seed` makes 10 users (one of them the admin `admin`) and 100 tasks spread across them.
//! Flags: `--users N`, `--tasks N`, `--seed N` (same seed, same data), `--reset` (wipe users, sessions,
//! tasks and the audit trail first; without it a database that has users is left alone), `--password` or `SEED_PASSWORD` (else
//! a random password, printed once), `--mfa-demo` (one more user, `mfa_demo`, with two-factor authentication
//! on: its TOTP secret, `otpauth://` URI and recovery codes are printed once).

// A command-line tool whose job is to print a summary on standard output.
#![allow(clippy::print_stdout)]

#[path = "../../startup.rs"]
mod startup;

use std::{process::ExitCode, time::Instant};

use clap::Parser;
use secrecy::ExposeSecret;
use securecrud_domain::{ImportedTask, NewUser, Role, UserId};
use securecrud_seeds::{ADMIN_USERNAME, Factory, random_password};
use securecrud_service::{SeededMfa, Services, Settings};

/// Users hashed and inserted per batch (and per progress line).
const USER_BATCH: usize = 1000;
/// Tasks inserted per batch (and per progress line).
const TASK_BATCH: usize = 10_000;

#[derive(Debug, Parser)]
#[command(
    name = "seed",
    version,
    about = "Fill the SecureCRUD database with demo users and tasks"
)]
struct Cli {
    /// How many users, the admin included.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    users: u32,
    /// How many tasks, spread across the users.
    #[arg(long, default_value_t = 100)]
    tasks: u32,
    /// Random seed: the same seed makes the same users and tasks.
    #[arg(long)]
    seed: Option<u64>,
    /// Delete every user, session, task and audit event first.
    #[arg(long)]
    reset: bool,
    /// The password of every seeded user (else SEED_PASSWORD, else a random one, printed once).
    #[arg(long)]
    password: Option<String>,
    /// Also make `mfa_demo` (mfa_demo@example.com), with two-factor authentication on; prints its TOTP
    /// secret, otpauth:// URI and recovery codes once.
    #[arg(long)]
    mfa_demo: bool,
}

/// The demo user with two-factor authentication on (`--mfa-demo`).
const MFA_DEMO_USERNAME: &str = "mfa_demo";

fn main() -> ExitCode {
    let dotenv = startup::load_dotenv();
    let cli = Cli::parse();
    if let Err(message) = dotenv {
        eprintln!("error: invalid configuration: {message}");
        return ExitCode::from(2);
    }
    let loaded = match startup::settings_or_exit() {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match &loaded.kept_secret {
        Some(startup::KeptSecret::Kept(path)) => {
            log::debug!(
                "JWT_SECRET: the development secret kept in {}",
                path.display()
            );
        }
        Some(startup::KeptSecret::Unusable { path, why }) => log::warn!(
            "JWT_SECRET is not set and {} {why}: two-factor secrets are sealed with a key the api will \
             not have",
            path.display()
        ),
        None => {}
    }
    let settings = loaded.settings;
    match actix_web::rt::System::new().block_on(run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let services = Services::connect(&settings).await?;
    let existing = services.count_users().await?;
    if existing > 0 && !cli.reset {
        anyhow::bail!(
            "the database already has {existing} users; nothing was changed.\n\
             Run `cargo run --bin seed -- --reset` to delete every user, session, task and audit event and seed again."
        );
    }
    if cli.reset {
        services.wipe_account_data().await?;
        eprintln!("reset: deleted every user, session, task and audit event");
    }
    let (password, generated) = match (cli.password, &settings.seed_password) {
        (Some(password), _) => (password, false),
        (None, Some(password)) => (password.expose_secret().to_owned(), false),
        (None, None) => (random_password(), true),
    };
    let mut factory = cli.seed.map_or_else(Factory::random, Factory::seeded);

    let mut users = make_users(&mut factory, cli.users, &password)?;
    if cli.mfa_demo {
        let demo = NewUser::parse(
            Some(MFA_DEMO_USERNAME),
            Some(&format!("{MFA_DEMO_USERNAME}@example.com")),
            Some(&password),
        )
        .map_err(|errors| anyhow::anyhow!("the seed password is refused: {}", errors.summary()))?;
        users.push((demo, Role::User));
    }
    let total_users = users.len();
    let ids = import_users(&services, users).await?;
    let mfa = match (cli.mfa_demo, ids.last()) {
        (true, Some(demo)) => Some(services.seed_mfa(*demo).await?),
        _ => None,
    };

    let made = import_tasks(&services, &mut factory, &ids, cli.tasks as usize).await?;

    println!(
        "Seeded {total_users} users and {made} tasks in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    print_logins(&settings, &password, generated, mfa.as_ref());
    Ok(())
}

/// How to log in as the seeded users (the password only when it was generated: shown once).
fn print_logins(settings: &Settings, password: &str, generated: bool, mfa: Option<&SeededMfa>) {
    println!();
    println!("  admin login:  {ADMIN_USERNAME} (admin@example.com)");
    if generated {
        println!("  password:     {password}   (every seeded user; shown only now)");
    } else {
        println!("  password:     the one you gave (every seeded user)");
    }
    println!();
    println!(
        "Log in at {}/docs (Authorize: username {ADMIN_USERNAME}) or with curl:",
        settings.mail.public_base_url
    );
    println!(
        "  curl -s -X POST {}/api/v1/auth/login -H 'Content-Type: application/json' \\\n    \
         -d '{{\"login\":\"{ADMIN_USERNAME}\",\"password\":\"…\"}}'",
        settings.mail.public_base_url
    );
    if let Some(mfa) = mfa {
        println!();
        println!(
            "Two-factor demo user: {MFA_DEMO_USERNAME} ({MFA_DEMO_USERNAME}@example.com), same password; \
             a login answers 401 mfa_required with an mfa_token for POST /api/v1/auth/mfa/verify."
        );
        println!("  TOTP secret:    {}", mfa.enrolment.secret);
        println!("  otpauth URI:    {}", mfa.enrolment.otpauth_uri);
        println!("  recovery codes: {}", mfa.recovery_codes.join(" "));
        println!("  (add the secret or URI to an authenticator app; shown only now)");
    }
}

/// Imports `users` in batches, saying how far it got; their ids in order.
async fn import_users(
    services: &Services,
    users: Vec<(NewUser, Role)>,
) -> anyhow::Result<Vec<UserId>> {
    let mut ids: Vec<UserId> = Vec::with_capacity(users.len());
    let total_users = users.len();
    let mut users = users.into_iter().peekable();
    while users.peek().is_some() {
        let batch: Vec<(NewUser, Role)> = users.by_ref().take(USER_BATCH).collect();
        ids.extend(services.import_users(batch).await?);
        eprintln!("users {:>7}/{total_users}", ids.len());
    }
    Ok(ids)
}

/// Imports `count` fake tasks owned by users of `ids` in batches, saying how far it got; how many.
async fn import_tasks(
    services: &Services,
    factory: &mut Factory,
    ids: &[UserId],
    count: usize,
) -> anyhow::Result<usize> {
    let mut made = 0;
    while made < count {
        let size = TASK_BATCH.min(count - made);
        let batch: Vec<ImportedTask> = (0..size)
            .map(|_| {
                let fake = factory.task();
                ImportedTask {
                    owner: ids[factory.pick(ids.len())],
                    task: fake.task,
                    created_at: fake.created_at,
                    updated_at: fake.updated_at,
                }
            })
            .collect();
        services.import_tasks(batch).await?;
        made += size;
        eprintln!("tasks {made:>7}/{count}");
    }
    Ok(made)
}

/// The admin and `count - 1` users, all with `password`; refuses a password that breaks the rules.
fn make_users(
    factory: &mut Factory,
    count: u32,
    password: &str,
) -> anyhow::Result<Vec<(NewUser, Role)>> {
    let describe = |errors: securecrud_domain::ValidationErrors| {
        anyhow::anyhow!("the seed password is refused: {}", errors.summary())
    };
    let mut users = Vec::with_capacity(count as usize);
    users.push((factory.admin(password).map_err(describe)?, Role::Admin));
    for _ in 1..count {
        users.push((factory.user(password).map_err(describe)?, Role::User));
    }
    Ok(users)
}
