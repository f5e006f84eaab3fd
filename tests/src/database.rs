//! The tests' databases: a new one per test, on the engine `TEST_DATABASE` names, dropped with the test.
//!
//! A test app's database starts as a copy of a template migrated once per test binary (SQLite: a file copy;
//! PostgreSQL: `CREATE DATABASE … TEMPLATE`), instead of running every migration again for each test.

use std::path::{Path, PathBuf};

use sea_orm::ConnectionTrait;
use securecrud_persistence::{ConnectOptions, Database, DatabaseUrl};
use tokio::sync::OnceCell;

/// Which engine the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend selected by `TEST_DATABASE`.
    pub fn current() -> Self {
        match std::env::var("TEST_DATABASE").as_deref() {
            Ok("postgres") => Self::Postgres,
            Ok("sqlite") | Err(_) => Self::Sqlite,
            Ok(other) => panic!("TEST_DATABASE must be sqlite or postgres, not {other:?}"),
        }
    }
}

/// A fresh, empty database (of [`Backend::current`]) that removes itself when dropped.
#[derive(Debug)]
pub struct FreshDatabase {
    pub url: String,
    _database: TestDatabase,
}

impl FreshDatabase {
    /// A database with no table at all (the binaries under test migrate it themselves).
    pub async fn create() -> Self {
        let (database, url) = TestDatabase::create(None).await;
        Self {
            url,
            _database: database,
        }
    }

    /// How many rows `sql` returns, on a connection of its own (for a test of a binary, to see where it
    /// is).
    pub async fn count_rows(&self, sql: &str) -> usize {
        let connection = sea_orm::Database::connect(&self.url)
            .await
            .expect("connect to the test database");
        let statement =
            sea_orm::Statement::from_string(connection.get_database_backend(), sql.to_owned());
        let rows = connection
            .query_all_raw(statement)
            .await
            .expect("the test query")
            .len();
        connection.close().await.ok();
        rows
    }
}

/// A fresh database that removes itself when dropped.
#[derive(Debug)]
pub(crate) enum TestDatabase {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new database with every migration applied, copied from this test binary's template.
    pub(crate) async fn migrated() -> (Self, String) {
        let template = TEMPLATE
            .get_or_init(|| Template::create(Backend::current()))
            .await;
        Self::create(Some(template)).await
    }

    /// A new database: a copy of `template`, or empty.
    async fn create(template: Option<&Template>) -> (Self, String) {
        match Backend::current() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let file = dir.path().join("test.db");
                if let Some(Template::Sqlite(template)) = template {
                    std::fs::copy(template, &file).expect("copy the template database");
                }
                let url = format!("sqlite://{}?mode=rwc", file.display());
                (Self::Sqlite { _dir: dir }, url)
            }
            Backend::Postgres => {
                let admin_url = admin_url();
                let name = format!("securecrud_test_{}", uuid::Uuid::new_v4().simple());
                let from = match template {
                    Some(Template::Postgres(template)) => format!(" TEMPLATE \"{template}\""),
                    _ => String::new(),
                };
                admin_execute(&admin_url, &format!("CREATE DATABASE \"{name}\"{from}"))
                    .await
                    .expect("create test database");
                // A test's commits need not survive a crash of the server: not waiting for each to reach
                // the disk spares the tests most of their time on PostgreSQL.
                admin_execute(
                    &admin_url,
                    &format!("ALTER DATABASE \"{name}\" SET synchronous_commit = off"),
                )
                .await
                .expect("configure test database");
                let url = database_url(&admin_url, &name);
                (Self::Postgres { admin_url, name }, url)
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { admin_url, name } = self {
            let (admin_url, database) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; a separate thread with its own runtime may block.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(admin_execute(
                    &admin_url,
                    &format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
                ))
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("warning: could not drop test database {name}");
            }
        }
    }
}

/// The migrated database every test app's database is copied from, made once per test binary (the first
/// test to need it makes it; the others wait).
static TEMPLATE: OnceCell<Template> = OnceCell::const_new();

/// A migrated database, named after the running test binary and its build: a rebuild (new migrations
/// included) makes a new one, which replaces that binary's earlier ones; run again without a rebuild, a
/// test binary reuses its own.
#[derive(Debug)]
enum Template {
    /// The file (beside the build output, in `target/<profile>/test-templates`).
    Sqlite(PathBuf),
    /// The database's name.
    Postgres(String),
}

impl Template {
    async fn create(backend: Backend) -> Self {
        let (binary, build) = build_identity();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::current_exe()
                    .ok()
                    .and_then(|exe| Some(exe.parent()?.parent()?.join("test-templates")))
                    .unwrap_or_else(std::env::temp_dir);
                std::fs::create_dir_all(&dir).expect("template directory");
                let file = dir.join(format!("sqlite-{binary}-{build}.db"));
                if !file.exists() {
                    // Made under a name of its own, then renamed: a reader never sees half of it.
                    let partial = dir.join(format!("partial-{binary}-{}.db", std::process::id()));
                    for leftover in ["", "-wal", "-shm"] {
                        let mut name = partial.clone().into_os_string();
                        name.push(leftover);
                        let _ = std::fs::remove_file(name);
                    }
                    migrate(&format!("sqlite://{}?mode=rwc", partial.display())).await;
                    for leftover in ["-wal", "-shm"] {
                        let mut name = partial.clone().into_os_string();
                        name.push(leftover);
                        assert!(
                            !Path::new(&name).exists(),
                            "the template's {leftover} file outlived its last connection"
                        );
                    }
                    std::fs::rename(&partial, &file).expect("keep the template");
                    // Earlier builds' templates of this test binary.
                    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if name.starts_with(&format!("sqlite-{binary}-")) && entry.path() != file {
                            let _ = std::fs::remove_file(entry.path());
                        }
                    }
                }
                Self::Sqlite(file)
            }
            Backend::Postgres => {
                let admin_url = admin_url();
                let name = format!("securecrud_template_{binary}_{build}");
                if !postgres_database_exists(&admin_url, &name).await {
                    // Migrated under a name of its own and renamed when complete (a concurrent run that
                    // renamed first wins; ours is dropped), then older builds' templates are dropped.
                    let partial = format!(
                        "{PARTIAL_PREFIX}{}_{}",
                        server_unix_now(&admin_url).await,
                        uuid::Uuid::new_v4().simple()
                    );
                    admin_execute(&admin_url, &format!("CREATE DATABASE \"{partial}\""))
                        .await
                        .expect("create the template database");
                    migrate(&database_url(&admin_url, &partial)).await;
                    let renamed = admin_execute(
                        &admin_url,
                        &format!("ALTER DATABASE \"{partial}\" RENAME TO \"{name}\""),
                    )
                    .await;
                    if renamed.is_err() {
                        let _ = admin_execute(&admin_url, &format!("DROP DATABASE \"{partial}\""))
                            .await;
                        // Another run's template won the rename; without it (ours was dropped as
                        // abandoned, or the rename failed otherwise) no test could start.
                        assert!(
                            postgres_database_exists(&admin_url, &name).await,
                            "the template database {name} could not be made: {renamed:?}"
                        );
                    }
                    drop_other_templates(&admin_url, &binary, &name).await;
                }
                Self::Postgres(name)
            }
        }
    }
}

/// The running test binary (its path) and its build (its size and modification time), as two hex words.
fn build_identity() -> (String, String) {
    use std::hash::{Hash, Hasher};
    let exe = std::env::current_exe().expect("the test binary's path");
    let metadata = std::fs::metadata(&exe).expect("the test binary's metadata");
    let mut binary = std::collections::hash_map::DefaultHasher::new();
    exe.hash(&mut binary);
    let mut build = std::collections::hash_map::DefaultHasher::new();
    metadata.len().hash(&mut build);
    metadata.modified().ok().hash(&mut build);
    (
        format!("{:08x}", binary.finish() as u32),
        format!("{:08x}", build.finish() as u32),
    )
}

/// Applies every migration to the database at `url`, and closes every connection to it.
async fn migrate(url: &str) {
    let url = DatabaseUrl::parse(url).expect("a template database URL");
    let database = Database::connect(&url, &ConnectOptions::default())
        .await
        .expect("connect to the template database");
    database
        .migrate_up()
        .await
        .expect("migrate the template database");
    database.close().await.expect("close the template database");
}

fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").expect("TEST_DATABASE=postgres needs TEST_POSTGRES_URL")
}

/// The URL of database `name` on the server of `admin_url`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, _) = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .expect("TEST_POSTGRES_URL has a database path");
    format!("{base}/{name}")
}

/// Runs one statement on the server's administration database, on a connection of its own.
async fn admin_execute(admin_url: &str, statement: &str) -> Result<(), sea_orm::DbErr> {
    let admin = sea_orm::Database::connect(admin_url).await?;
    let done = admin.execute_unprepared(statement).await.map(|_| ());
    admin.close().await.ok();
    done
}

async fn postgres_database_exists(admin_url: &str, name: &str) -> bool {
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    let found = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .expect("read pg_database")
        .is_some();
    admin.close().await.ok();
    found
}

/// The name of a template while it is being migrated: this prefix, the Unix time it was begun, a random id.
const PARTIAL_PREFIX: &str = "securecrud_template_partial_";
/// A template still unfinished after this long was left by a run that was killed while migrating (migrating
/// takes seconds).
const ABANDONED_AFTER_SECS: u64 = 600;

/// The database server's Unix time: the one clock every machine sharing the server agrees on.
async fn server_unix_now(admin_url: &str) -> u64 {
    let admin = sea_orm::Database::connect(admin_url)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    let now = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT extract(epoch FROM now())::bigint AS now",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get::<i64>("", "now").ok())
        .expect("the server's time");
    admin.close().await.ok();
    u64::try_from(now).unwrap_or(0)
}

/// Drops the templates of this test binary's earlier builds, so that rebuilding does not fill the server,
/// and any template a killed run left half-migrated. (A run of an earlier build of the same checkout still
/// going on the same server would lose its template.)
async fn drop_other_templates(admin_url: &str, binary: &str, keep: &str) {
    let Ok(admin) = sea_orm::Database::connect(admin_url).await else {
        return;
    };
    let names = admin
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT datname FROM pg_database WHERE datname LIKE 'securecrud\\_template\\_%' AND datname <> $1",
            [keep.into()],
        ))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|row| row.try_get::<String>("", "datname").ok());
    let older_build = format!("securecrud_template_{binary}_");
    let now = server_unix_now(admin_url).await;
    for name in names.filter(|name| name.starts_with(&older_build) || is_abandoned(name, now)) {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .await;
    }
    admin.close().await.ok();
}

/// Whether `name` is a template a run began migrating long before `now` (the server's time) and never
/// finished. (`DROP DATABASE` without `FORCE` also refuses one that still has a connection.)
fn is_abandoned(name: &str, now: u64) -> bool {
    name.strip_prefix(PARTIAL_PREFIX)
        .and_then(|rest| rest.split('_').next()?.parse::<u64>().ok())
        .is_some_and(|begun| now.saturating_sub(begun) > ABANDONED_AFTER_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_templates_left_half_migrated_long_ago_are_abandoned() {
        let now = 1_800_000_000;
        let begun = |secs_ago: u64| format!("{PARTIAL_PREFIX}{}_0123abcd", now - secs_ago);
        assert!(is_abandoned(&begun(ABANDONED_AFTER_SECS + 60), now));
        assert!(!is_abandoned(&begun(5), now), "one being migrated now");
        assert!(
            !is_abandoned("securecrud_template_0123abcd_89abcdef", now),
            "a finished one"
        );
        assert!(!is_abandoned(&format!("{PARTIAL_PREFIX}not-a-time"), now));
    }
}
