//! The `api` command line as a newcomer meets it: `.env.example` copied to `.env`, `--help`, the answers of
//! the commands that report something, and the messages of a configuration or database that cannot be used.
//! Each runs the binary in a fresh folder with a cleared environment, so that nothing of this machine's (a
//! developer's `.env`, `DATABASE_URL`) leaks in.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Output, Stdio},
};

use securecrud_tests::wait_until_answers;

/// `api ARGS` in `dir` with only `env` set.
fn api_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(dir, args, env).output().expect("run api")
}

fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_api"));
    command.args(args).current_dir(dir).env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A folder with the repository's `.env.example` copied to `.env`, as the README says.
fn folder_with_env_example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example");
    std::fs::copy(example, dir.path().join(".env")).unwrap();
    dir
}

#[test]
fn env_example_copied_to_dot_env_is_loaded_and_commands_answer_on_stdout() {
    let dir = folder_with_env_example();

    let status = api_in(dir.path(), &["migrate", "status"], &[]);

    assert!(status.status.success(), "{}", stderr(&status));
    let lines: Vec<String> = stdout(&status).lines().map(str::to_owned).collect();
    assert!(lines.len() >= 10, "{lines:?}");
    assert!(
        lines.iter().all(|line| line.starts_with("pending  m")),
        "{lines:?}"
    );
    assert!(
        dir.path().join("data/securecrud.db").exists(),
        "DATABASE_URL from .env"
    );

    // `keys list` reads: it never migrates, and says what to run instead (on stderr, whatever RUST_LOG).
    let refused = api_in(dir.path(), &["keys", "list"], &[("RUST_LOG", "off")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("pending migrations: run `api migrate up`"),
        "{}",
        stderr(&refused)
    );
    let still = api_in(dir.path(), &["migrate", "status"], &[]);
    assert_eq!(stdout(&still), stdout(&status), "keys list applied nothing");

    // The answers are data on stdout whatever the log settings say; logs stay on stderr.
    let quiet = [("RUST_LOG", "off"), ("LOG_FORMAT", "json")];
    let up = api_in(dir.path(), &["migrate", "up"], &quiet);
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(stdout(&up).lines().count(), lines.len());
    assert!(
        stdout(&up)
            .lines()
            .all(|line| line.starts_with("applied  m"))
    );
    let down = api_in(dir.path(), &["migrate", "down", "--steps", "1"], &quiet);
    assert!(down.status.success(), "{}", stderr(&down));
    let after_down = stdout(&down);
    let after_down: Vec<&str> = after_down.lines().collect();
    assert_eq!(after_down.len(), lines.len());
    assert!(
        after_down.last().unwrap().starts_with("pending  m"),
        "{after_down:?}"
    );
    assert!(
        after_down[..lines.len() - 1]
            .iter()
            .all(|line| line.starts_with("applied  m"))
    );
    let again = api_in(dir.path(), &["migrate", "up"], &quiet);
    assert!(again.status.success(), "{}", stderr(&again));
    let listed = api_in(dir.path(), &["keys", "list"], &quiet);
    assert!(
        listed.status.success(),
        "{}\nafter down: {after_down:?}\nafter up again: {}",
        stderr(&listed),
        stdout(&again)
    );
    assert!(
        stdout(&listed).starts_with("no key pairs yet"),
        "{}",
        stdout(&listed)
    );

    // Development keeps its generated JWT_SECRET, readable by its owner only.
    let secret = dir.path().join("data/jwt-secret");
    let kept = std::fs::read_to_string(&secret).unwrap();
    assert!(kept.trim().len() >= 43);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    api_in(dir.path(), &["migrate", "status"], &[]);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), kept, "made once");
}

#[test]
fn a_dot_env_that_does_not_parse_names_its_line_and_variable_but_help_still_works() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# a comment\nBIND_ADDR=127.0.0.1:8080\nJWT_SECRET=s3cret value with spaces\n",
    )
    .unwrap();

    let help = api_in(dir.path(), &["--help"], &[]);
    let version = api_in(dir.path(), &["--version"], &[]);
    let status = api_in(dir.path(), &["migrate", "status"], &[]);

    assert!(help.status.success(), "{}", stderr(&help));
    assert!(stdout(&help).contains("Usage: api"));
    assert!(version.status.success());
    assert_eq!(status.status.code(), Some(2));
    let message = stderr(&status);
    assert!(message.contains(".env line 3"), "{message}");
    assert!(message.contains("JWT_SECRET"), "{message}");
    assert!(message.contains("quotes"), "{message}");
    assert!(
        !message.contains("s3cret"),
        "the value may be a secret: {message}"
    );
}

#[test]
fn a_dot_env_line_without_a_name_is_named_by_its_number_and_comments_are_never_blamed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# SMTP_URL=smtps://user:pass@host:465 (TLS)\nBIND_ADDR=127.0.0.1:8080\nhunter2-pasted-alone\n",
    )
    .unwrap();
    let nameless = stderr(&api_in(dir.path(), &["migrate", "status"], &[]));
    assert!(
        nameless.contains(".env line 3: not of the form NAME=value"),
        "{nameless}"
    );
    assert!(!nameless.contains("hunter2"), "{nameless}");

    std::fs::write(
        dir.path().join(".env"),
        "# SMTP_URL=smtps://user:pass@host:465 (TLS)\nSMTP_URL=smtps://user:pass@host:465 (TLS)\n",
    )
    .unwrap();
    let value = stderr(&api_in(dir.path(), &["migrate", "status"], &[]));
    assert!(
        value.contains(".env line 2: the value of SMTP_URL cannot be parsed"),
        "{value}"
    );
    assert!(!value.contains("pass@"), "{value}");
}

#[test]
fn production_reports_every_missing_setting_in_one_start() {
    let dir = tempfile::tempdir().unwrap();

    let refused = api_in(dir.path(), &["serve"], &[("APP_ENV", "production")]);

    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(message.contains("(5 problems)"), "{message}");
    for var in [
        "PUBLIC_BASE_URL",
        "SMTP_URL",
        "JWT_PRIVATE_KEY_FILE",
        "JWT_SECRET",
        "MFA_ENCRYPTION_KEY",
    ] {
        assert!(
            message.contains(&format!("  - {var}: ")),
            "{var}: {message}"
        );
    }
}

#[test]
fn help_describes_every_argument_and_where_settings_come_from() {
    let dir = tempfile::tempdir().unwrap();

    let create_admin = stdout(&api_in(dir.path(), &["create-admin", "--help"], &[]));
    let serve = stdout(&api_in(dir.path(), &["serve", "--help"], &[]));

    for flag in ["--username", "--email", "--password-stdin", "--promote"] {
        let line = create_admin
            .lines()
            .find(|line| line.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag}: {create_admin}"));
        let described = line
            .split_once("  ")
            .is_some_and(|(_, rest)| !rest.trim().is_empty());
        assert!(described, "{flag} has a description: {create_admin}");
    }
    assert!(
        serve.contains(".env") && serve.contains("BIND_ADDR"),
        "{serve}"
    );
}

#[test]
fn an_unreachable_database_is_named_with_its_cause_and_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = "postgres://app:hunter2@127.0.0.1:1/securecrud";

    let failed = api_in(dir.path(), &["migrate", "status"], &[("DATABASE_URL", url)]);

    assert_eq!(failed.status.code(), Some(1));
    let message = stderr(&failed);
    assert!(message.contains("127.0.0.1:1/securecrud"), "{message}");
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains("pool timed out"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

/// Kills the child when dropped (a failed assertion must not leave a server behind).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, port: u16) -> KillOnDrop {
    let bind = format!("127.0.0.1:{port}");
    KillOnDrop(
        command(
            dir,
            &["serve"],
            &[
                ("BIND_ADDR", &bind),
                ("BCRYPT_COST", "4"),
                ("RUST_LOG", "warn"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    )
}

/// What a served api logged so far, after stopping it.
fn stop_and_read_log(mut api: KillOnDrop) -> String {
    let _ = api.0.kill();
    let mut log = String::new();
    if let Some(mut err) = api.0.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut log);
    }
    log
}

#[actix_web::test]
async fn a_development_restart_keeps_tokens_valid_and_the_public_url_follows_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let first = serve(dir.path(), port);
    wait_until_answers(&client, &format!("{base}/health/live")).await;
    let metadata: serde_json::Value = client
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["issuer"],
        base.as_str(),
        "PUBLIC_BASE_URL follows BIND_ADDR"
    );
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({"username": "ada_l", "email": "ada@example.com", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let tokens: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"login": "ada_l", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    drop(first);

    let second = serve(dir.path(), port);
    wait_until_answers(&client, &format!("{base}/health/live")).await;
    let me = client
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();

    assert_eq!(me.status(), 200, "the restart did not log anyone out");
    assert_eq!(stop_and_read_log(second), "", "nothing to warn about");
}

#[cfg(unix)]
#[actix_web::test]
async fn a_kept_secret_that_others_could_read_or_a_link_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let client = reqwest::Client::new();
    for (case, prepare) in [("readable by others", 0), ("a symbolic link", 1)] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let secret = data.join("jwt-secret");
        let chosen = "a secret someone else chose, 0123456789abcdef";
        if prepare == 0 {
            std::fs::write(&secret, chosen).unwrap();
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        } else {
            let elsewhere = dir.path().join("elsewhere");
            std::fs::write(&elsewhere, chosen).unwrap();
            std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &secret).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let api = serve(dir.path(), port);
        wait_until_answers(&client, &format!("http://127.0.0.1:{port}/health/live")).await;

        let log = stop_and_read_log(api);

        assert!(
            log.contains("data/jwt-secret") && log.contains("using a random secret for this run"),
            "{case}: {log}"
        );
    }
}
