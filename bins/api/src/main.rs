//! `api`: the SecureCRUD server binary. Thin by design: parse the command line, load settings, set up
//! logging, and hand over to the library crates.
//!
//! - `api` / `api serve`: migrate the database, then serve on `BIND_ADDR` until SIGTERM/SIGINT.
//! - `api migrate up|down [--steps N]|status`: manage the schema without serving.

mod logging;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use securecrud_http::Application;
use securecrud_persistence::{ConnectOptions, Database};
use securecrud_service::Settings;

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
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.jwt_secret_generated {
        log::warn!(
            "JWT_SECRET is not set: using a random secret, so tokens stop working when the api restarts \
             (set JWT_SECRET; production refuses to start without it)"
        );
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
