//! Test support for SecureCRUD's black-box tests: [`TestApp`] starts the real application
//! (`Application::with_services`) on port 0 against a fresh database, and offers typed helpers.
//!
//! The database is chosen by `TEST_DATABASE`: `sqlite` (default; a temp file per test) or `postgres` (a new
//! database per test on the server named by `TEST_POSTGRES_URL`, dropped afterwards).

// Test support: a failed set-up step must fail the test at once and loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod database;
pub mod oidc;
mod process;
pub mod smtp;
pub mod sse;

use database::TestDatabase;
pub use database::{Backend, FreshDatabase};
pub use process::Served;

use std::collections::HashMap;

use actix_web::dev::ServerHandle;
use reqwest::{Client, Response, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use securecrud_http::Application;
use securecrud_service::{Services, Settings};
use serde_json::{Value, json};

/// The secret test apps sign tokens with, so tests can forge tokens on purpose.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";
pub const PASSWORD: &str = "correct horse battery staple";
/// The admin that [`TestApp::admin_change`] acts as.
const FIXTURE_ADMIN: &str = "fixture_admin";

/// The User object of the contract, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub role: String,
    pub email_verified: bool,
    pub is_active: bool,
    pub mfa_enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A token pair as login, refresh and the token endpoint give it (JSON mode).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
}

/// The real app, served on a free port, with a client and typed helpers.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<port>` of `GET /metrics`, when the test set `METRICS_ADDR`.
    pub metrics_address: Option<String>,
    pub client: Client,
    pub services: Services,
    /// A second connection to the app's database, for arranging states no route can reach yet.
    pub db: DatabaseConnection,
    database_url: String,
    /// Where the file mailer writes `.eml` files (unless the test set `SMTP_URL` or `MAIL_DIR`).
    pub mail_dir: tempfile::TempDir,
    handle: ServerHandle,
    /// The thread the app runs on, joined when the app is dropped.
    thread: Option<std::thread::JoinHandle<()>>,
    /// The database is dropped with the app that created it; siblings share it and own nothing.
    _database: Option<TestDatabase>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts an app whose environment is the test defaults overridden by `vars`.
    pub async fn spawn_with(vars: &[(&str, &str)]) -> Self {
        let (database, url) = TestDatabase::migrated().await;
        Self::start(url, vars, Some(database)).await
    }

    /// An app on an existing database (which must outlive it).
    pub async fn spawn_on(database: &FreshDatabase) -> Self {
        Self::spawn_on_with(database, &[]).await
    }

    /// An app on an existing database (which must outlive it), configured with `vars`.
    pub async fn spawn_on_with(database: &FreshDatabase, vars: &[(&str, &str)]) -> Self {
        Self::start(database.url.clone(), vars, None).await
    }

    /// Another api instance on this app's database (as behind a load balancer), configured with `vars`.
    pub async fn sibling(&self, vars: &[(&str, &str)]) -> Self {
        Self::start(self.database_url.clone(), vars, None).await
    }

    async fn start(url: String, vars: &[(&str, &str)], database: Option<TestDatabase>) -> Self {
        let mut env: HashMap<String, String> = [
            ("BIND_ADDR", "127.0.0.1:0"),
            ("BCRYPT_COST", "4"),
            ("JWT_SECRET", TEST_JWT_SECRET),
            ("WORKERS", "2"),
            // Six apps at a time (RUST_TEST_THREADS), some with a sibling instance, each with its pools and three
            // connections of its own, must stay under PostgreSQL's 100 (at 10 they did not: `too many clients`).
            ("DB_MAX_CONNECTIONS", "6"),
            // The tests run many apps at once on two cores: a connection can take longer than the
            // production default to open without the database being down.
            ("DB_ACQUIRE_TIMEOUT_MS", "5000"),
            // Every test talks from 127.0.0.1: the auth limiter still counts (its write runs in every test)
            // but at a limit no ordinary test reaches; the in-memory one is off. Protection tests lower them.
            ("RATE_LIMIT_AUTH_PER_MIN", "1000000"),
            ("RATE_LIMIT_API_PER_MIN", "0"),
            ("MAIL_POLL_MS", "50"),
            // Port 0 has no URL of its own to derive the public one from: the tests' issuer and mail links
            // are those of a development api on its default address.
            ("PUBLIC_BASE_URL", "http://127.0.0.1:8080"),
        ]
        .iter()
        .chain(vars)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        env.insert("DATABASE_URL".into(), url.clone());
        let mail_dir = tempfile::tempdir().expect("mail dir");
        env.entry("MAIL_DIR".into())
            .or_insert_with(|| mail_dir.path().display().to_string());
        let settings = Settings::from_vars(&env).expect("test settings");
        let (ready, started) = tokio::sync::oneshot::channel();
        // As the `api` binary runs it: on a runtime of its own, which ends once the app has stopped (see
        // `Drop`), its background tasks with it.
        let thread = std::thread::Builder::new()
            .name("test-app".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = match Application::build(&settings).await {
                        Ok(app) => app,
                        Err(err) => {
                            let _ = ready.send(Err(format!("{err:#}")));
                            return;
                        }
                    };
                    let running = (
                        app.port(),
                        app.metrics_port(),
                        app.handle(),
                        app.services().clone(),
                    );
                    if ready.send(Ok(running)).is_ok()
                        && let Err(err) = app.run_until_stopped().await
                    {
                        eprintln!("the test app failed: {err}");
                    }
                });
            })
            .expect("start the app's thread");
        let (port, metrics_port, handle, services) = started
            .await
            .expect("the app's thread")
            .unwrap_or_else(|err| panic!("the test app did not start: {err}"));
        let address = format!("http://127.0.0.1:{port}");
        let metrics_address = metrics_port.map(|port| format!("http://127.0.0.1:{port}"));
        let raw = sea_orm::Database::connect(&url)
            .await
            .expect("second connection");
        Self {
            address,
            metrics_address,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // The api closes a connection idle for 5 s (actix's keep-alive): a request sent on one just
                // as it closes fails (`IncompleteMessage`, seen on a loaded machine). Connections idle for
                // 2 s are not reused.
                .pool_idle_timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("client"),
            services,
            db: raw,
            database_url: url,
            mail_dir,
            handle,
            thread: Some(thread),
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Logs the session of `tokens` out (`POST /auth/logout` with its refresh token), which must answer `204`.
    pub async fn logout(&self, tokens: &Tokens) {
        let response = self
            .post_json(
                "/api/v1/auth/logout",
                &serde_json::json!({"refresh_token": tokens.refresh_token.clone()}),
            )
            .await;
        assert_eq!(response.status(), 204, "logout");
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, username: &str, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"username": username, "email": email, "password": password}),
        )
        .await
    }

    pub async fn post_json_authed(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/refresh",
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a task with `body` and returns its JSON.
    pub async fn create_task(&self, token: &str, body: &Value) -> Value {
        let response = self.post_json_authed("/api/v1/tasks", token, body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "create task {body}");
        response.json().await.expect("task json")
    }

    /// An access token of a new admin, made as `api create-admin` makes one (the service's use case: admins
    /// are never made over HTTP).
    pub async fn admin_token(&self, username: &str) -> String {
        let email = format!("{}@example.com", username.to_lowercase());
        let new = securecrud_domain::NewUser::parse(Some(username), Some(&email), Some(PASSWORD))
            .expect("valid admin");
        self.services.create_admin(new).await.expect("create admin");
        self.tokens(username).await.access_token
    }

    /// `PATCH /api/v1/admin/users/{id}` with `body`, as a fixture admin of the test's own (made on first use).
    pub async fn admin_change(&self, user_id: &str, body: &Value) -> Response {
        let admin = match self.login(FIXTURE_ADMIN, PASSWORD).await {
            response if response.status() == StatusCode::OK => {
                text(&response.json().await.expect("token json"), "access_token")
            }
            _ => self.admin_token(FIXTURE_ADMIN).await,
        };
        self.send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/admin/users/{user_id}"),
            &admin,
            body,
        )
        .await
    }

    /// Deactivates a user through the admin route.
    pub async fn deactivate(&self, user_id: &str) {
        let response = self
            .admin_change(user_id, &json!({"is_active": false}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "deactivate {user_id}");
    }

    /// Starts a TOTP enrolment (`POST /api/v1/users/me/mfa/totp` with [`PASSWORD`]), which must succeed:
    /// `{"secret", "otpauth_uri"}`.
    pub async fn start_totp(&self, access_token: &str) -> Value {
        let response = self
            .post_json_authed(
                "/api/v1/users/me/mfa/totp",
                access_token,
                &json!({ "current_password": PASSWORD }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "start a TOTP enrolment");
        response.json().await.expect("enrolment json")
    }

    /// A fresh token pair for an existing user.
    pub async fn tokens(&self, login: &str) -> Tokens {
        let response = self.login(login, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login {login}");
        response.json().await.expect("token json")
    }

    /// The OAuth 2.0 password grant at `/api/v1/auth/token` (RFC 6749 §4.3), as a form.
    pub async fn password_grant(&self, username: &str, password: &str) -> Response {
        self.client
            .post(self.url("/api/v1/auth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .expect("token request")
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"login": login, "password": password}),
        )
        .await
    }

    /// Registers `username` (email `username@example.com`, password [`PASSWORD`]), logs in, and returns
    /// the user and the token pair.
    pub async fn signed_up(&self, username: &str) -> (User, Tokens) {
        let email = format!("{}@example.com", username.to_lowercase());
        let response = self.register(username, &email, PASSWORD).await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "register {username}"
        );
        let user = response.json().await.expect("user json");
        let response = self.login(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login {username}");
        (user, response.json().await.expect("token json"))
    }

    /// `GET /api/v1/users/me` with `token`, which must succeed.
    pub async fn me(&self, token: &str) -> User {
        let response = self.get_authed("/api/v1/users/me", token).await;
        assert_eq!(response.status(), StatusCode::OK, "GET /users/me");
        response.json().await.expect("user json")
    }

    /// The messages the file mailer has written so far, oldest first (whole ones only: it writes each under
    /// a hidden `.partial` name first, and names the finished file with a time-ordered id).
    pub fn mailed(&self) -> Vec<String> {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(self.mail_dir.path())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect()
    }

    /// Verifies `email` through the API, with the newest verification link the file mailer wrote to it.
    pub async fn verify_email(&self, email: &str) {
        let mut token = None;
        for _ in 0..200 {
            token = self
                .mailed()
                .iter()
                .rev()
                .find(|message| message.contains(&format!("To: {email}")))
                .and_then(|message| smtp::link_token(message, "/verify-email?token="));
            if token.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let token = token.expect("a verification message for that address");
        let response = self
            .post_json("/api/v1/auth/verify-email", &json!({ "token": token }))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "verify {email}");
    }

    /// An access token for a new user.
    pub async fn access_token(&self, username: &str) -> String {
        self.signed_up(username).await.1.access_token
    }

    /// Runs SQL against the app's database (for arranging states, e.g. a deactivated account), and empties
    /// the app's session cache, which cannot hear writes made past its repository on SQLite (see
    /// `tests/api/session_cache.rs` for what it promises about those).
    pub async fn execute(&self, sql: &str) {
        self.db.execute_unprepared(sql).await.expect("execute sql");
        self.services.database().forget_cached_sessions();
    }

    /// Opens the revocation feed (`GET /api/v1/auth/revocations` with `query` and, if given, `Last-Event-ID`),
    /// which must answer `200`, and reads its first line (the reconnection delay) so that the stream is known
    /// to be open before the test goes on.
    pub async fn feed(&self, query: &str, last_event_id: Option<i64>) -> sse::Feed {
        let response = self.open_feed(query, last_event_id).await;
        let mut feed = sse::Feed::new(response);
        let first = feed.next_within(std::time::Duration::from_secs(5)).await;
        assert!(
            matches!(&first, Some(sse::Said::Comment(text)) if text.starts_with("retry:")),
            "the stream begins with its reconnection delay: {first:?}"
        );
        feed
    }

    /// `GET /api/v1/auth/revocations` with `query` and, if given, `Last-Event-ID`, as answered.
    pub async fn open_feed(&self, query: &str, last_event_id: Option<i64>) -> Response {
        let mut request = self
            .client
            .get(self.url(&format!("/api/v1/auth/revocations{query}")))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        request.send().await.expect("feed request")
    }

    /// Moves the app's clock on to the start of the next window of `secs` seconds. The rate limits count
    /// in fixed windows aligned to Unix time (`RATE_LIMIT_AUTH_WINDOW_SECS`, the in-memory limit's
    /// minute): a test that fills a window calls this first, so that the wall clock cannot cross a
    /// boundary, and empty the counts, halfway through it.
    pub fn start_a_fresh_window(&self, secs: u32) {
        let clock = self.services.database().clock();
        let window_us = i128::from(secs) * 1_000_000;
        let now_us = clock.now().unix_timestamp_nanos() / 1_000;
        let to_boundary = window_us - now_us.rem_euclid(window_us);
        clock.advance(std::time::Duration::from_micros(
            u64::try_from(to_boundary).expect("a window is positive"),
        ));
    }

    /// Moves every session's `last_used_at` back by `by`.
    pub async fn age_sessions(&self, by: time::Duration) {
        self.set_every_session("last_used_at", time::OffsetDateTime::now_utc() - by)
            .await;
    }

    /// Sets one timestamp column of every session (tests reach past the API to move time).
    async fn set_every_session(&self, column: &str, at: time::OffsetDateTime) {
        let backend = self.db.get_database_backend();
        let placeholder = match backend {
            sea_orm::DbBackend::Postgres => "$1",
            _ => "?",
        };
        self.db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                format!("UPDATE sessions SET {column} = {placeholder}"),
                [at.into()],
            ))
            .await
            .expect("set a session timestamp");
        self.services.database().forget_cached_sessions();
    }

    /// `last_used_at` of every session.
    pub async fn sessions_last_used(&self) -> Vec<time::OffsetDateTime> {
        let statement = sea_orm::Statement::from_string(
            self.db.get_database_backend(),
            "SELECT last_used_at FROM sessions",
        );
        self.db
            .query_all_raw(statement)
            .await
            .expect("query")
            .iter()
            .map(|row| {
                row.try_get_by_index::<time::OffsetDateTime>(0)
                    .expect("a timestamp")
            })
            .collect()
    }

    /// Every file the app's database keeps on disk, with its bytes, for tests of what can be read at rest:
    /// SQLite's database file, its WAL and shared-memory index; PostgreSQL's files of this database (its
    /// tables, indexes and TOAST), after a checkpoint has written every change to them. Reading PostgreSQL's
    /// files needs the server on this machine and a user who can read its data directory (root, postgres).
    pub async fn database_files(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let paths: Vec<std::path::PathBuf> = match self.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                self.db
                    .execute_unprepared("CHECKPOINT")
                    .await
                    .expect("CHECKPOINT (the test role must be a superuser)");
                let location = self
                    .query_strings(
                        "SELECT current_setting('data_directory') || '/base/' || oid::text \
                         FROM pg_database WHERE datname = current_database()",
                    )
                    .await;
                let directory = std::path::Path::new(&location[0]);
                std::fs::read_dir(directory)
                    .unwrap_or_else(|err| {
                        panic!(
                            "cannot read {} ({err}): run the PostgreSQL tests on the server's machine, \
                             as root or postgres",
                            directory.display()
                        )
                    })
                    .map(|entry| entry.expect("a directory entry").path())
                    .collect()
            }
            _ => {
                let file = self
                    .database_url
                    .trim_start_matches("sqlite://")
                    .split('?')
                    .next()
                    .expect("a path")
                    .to_owned();
                ["", "-wal", "-shm"]
                    .iter()
                    .map(|suffix| std::path::PathBuf::from(format!("{file}{suffix}")))
                    .filter(|path| path.exists())
                    .collect()
            }
        };
        paths
            .into_iter()
            .filter(|path| path.is_file())
            .map(|path| {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
                (path, bytes)
            })
            .collect()
    }

    /// The first column of every row of a query, as strings.
    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        let statement = sea_orm::Statement::from_string(self.db.get_database_backend(), sql);
        self.db
            .query_all_raw(statement)
            .await
            .expect("query")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("a text column"))
            .collect()
    }
}

impl Drop for TestApp {
    /// Stops the app as SIGTERM's second signal would (requests still in flight are cut: the test is over)
    /// and waits for its thread, so that its background tasks have ended and its connections are given back
    /// before the database is dropped.
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            eprintln!("warning: a test app did not stop within 20 s");
        }
    }
}

/// A run of one of the workspace's binaries (`binary`: the test's `env!("CARGO_BIN_EXE_…")`) on `database`,
/// as every test runs one: from `target_tmpdir` (the test's `env!("CARGO_TARGET_TMPDIR")`, where no `.env`
/// is), with a clean environment (nothing of the shell or the CI job leaks in: only `PATH` is kept), the
/// database's URL and a cheap bcrypt. The test adds its own variables and arguments.
pub fn binary(
    binary: &str,
    target_tmpdir: &str,
    database: &FreshDatabase,
) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    command
        .current_dir(target_tmpdir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", &database.url)
        .env("BCRYPT_COST", "4");
    command
}

/// A temp dir holding a new private key of `alg` (as `api keys generate` writes it), and the key's path.
pub fn key_file(alg: securecrud_auth::KeyAlgorithm) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jwt.pem");
    securecrud_service::write_new_key(alg, &path, false).expect("a new key file");
    (dir, path)
}

/// The claims of a JWT, decoded without verifying it (tests read what the server put there).
pub fn jwt_claims(token: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// The header of a JWT, decoded without verifying it.
pub fn jwt_header(token: &str) -> Value {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url"))
        .expect("JSON header")
}

/// Asserts that `response` is a problem+json with `status` and `code`, and returns its body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["request_id"],
        header_id.as_str(),
        "request id in body and header"
    );
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://"))
    );
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// The field names of a 422 problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The string field `name` of a JSON object.
pub fn text(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not a string in {value}"))
        .to_owned()
}

/// Waits until `url` answers at all (a process started by a test is listening), at most 30 s.
pub async fn wait_until_answers(client: &Client, url: &str) {
    let started = std::time::Instant::now();
    while client.get(url).send().await.is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{url} did not answer within 30 s"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Polls `check` every 25 ms until it holds, for what happens at a moment the test cannot move (a retired
/// key's end as the auth crate's verifiers see it, a cache's age); fails after `within`.
pub async fn eventually<F, Fut>(what: &str, within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
