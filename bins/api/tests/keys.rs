//! `api keys generate|rotate|list`, run as processes against a fresh database (SQLite, or PostgreSQL with
//! `TEST_DATABASE=postgres`), with an api instance serving on the same database and key file.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Output;

use securecrud_tests::{FreshDatabase, TestApp, assert_problem, binary, jwt_header};

fn api(database: &FreshDatabase, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = binary(
        env!("CARGO_BIN_EXE_api"),
        env!("CARGO_TARGET_TMPDIR"),
        database,
    );
    command
        .args(args)
        // A command's answer is data on standard output, whatever the log filter.
        .env("RUST_LOG", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run api")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[actix_web::test]
async fn generate_writes_a_private_key_file_and_refuses_to_overwrite_it() {
    let database = FreshDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/jwt.pem");
    let out = path.display().to_string();

    // Production settings that would refuse to start without the file: generating it needs none of them.
    let production = [
        ("APP_ENV", "production"),
        ("JWT_PRIVATE_KEY_FILE", out.as_str()),
    ];
    let generated = api(
        &database,
        &["keys", "generate", "--algorithm", "ES256"],
        &production,
    );

    assert!(generated.status.success(), "{}", stderr(&generated));
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        !stderr(&generated).contains(pem.lines().nth(1).unwrap()),
        "the key is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = api(&database, &["keys", "generate", "--out", &out], &[]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem, "untouched");
    let bad = api(
        &database,
        &[
            "keys",
            "generate",
            "--algorithm",
            "HS256",
            "--out",
            &format!("{out}.2"),
        ],
        &[],
    );
    assert!(!bad.status.success());
}

#[actix_web::test]
async fn rotate_makes_a_new_current_key_that_a_running_instance_takes_over() {
    let database = FreshDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwt.pem");
    let out = path.display().to_string();
    let generated = api(&database, &["keys", "generate", "--out", &out], &[]);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let env = [
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", out.as_str()),
    ];
    let app = TestApp::spawn_on_with(&database, &env).await;
    app.signed_up("ada_l").await;
    let old = app.tokens("ada_l").await.access_token;
    let old_kid = jwt_header(&old)["kid"].as_str().unwrap().to_owned();

    let rotated = api(&database, &["keys", "rotate"], &env);

    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let listed = api(&database, &["keys", "list"], &env);
    let list = stdout(&listed);
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("KID ") && lines[0].ends_with("STATE"),
        "{list}"
    );
    let old_line = lines
        .iter()
        .find(|line| line.starts_with(&old_kid))
        .unwrap_or_else(|| panic!("{old_kid} listed: {list}"));
    let columns: Vec<&str> = old_line.split_whitespace().collect();
    assert_eq!(columns[1], "EdDSA", "{list}");
    time::OffsetDateTime::parse(columns[2], &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| panic!("CREATED is RFC 3339: {list}"));
    assert!(
        columns[2].ends_with('Z') && columns[2].len() == 20,
        "{list}"
    );
    assert!(old_line.contains("retired, accepted until 20"), "{list}");
    assert_eq!(
        stdout(&rotated).lines().count(),
        1,
        "rotate answers on stdout: {}",
        stdout(&rotated)
    );
    assert_eq!(list.matches("current").count(), 1, "{list}");
    // The running instance takes the new key from the shared file at its next look (every 10 s; here now).
    app.services.refresh_keys().await.unwrap();
    let new = app.tokens("ada_l").await.access_token;
    assert_ne!(jwt_header(&new)["kid"], old_kid.as_str());
    assert!(
        list.contains(jwt_header(&new)["kid"].as_str().unwrap()),
        "{list}"
    );
    assert_eq!(
        app.get_authed("/api/v1/users/me", &old).await.status(),
        200,
        "old tokens live on"
    );

    // The first key leaked after all: revoke it by its kid; the current one cannot be revoked this way.
    let current = jwt_header(&new)["kid"].as_str().unwrap().to_owned();
    let refused = api(&database, &["keys", "revoke", &current], &env);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("rotate first"),
        "{}",
        stderr(&refused)
    );
    let revoked = api(&database, &["keys", "revoke", &old_kid], &env);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(
        stdout(&revoked).starts_with(&format!("revoked {old_kid} at 20")),
        "{}",
        stdout(&revoked)
    );
    app.services.refresh_keys().await.unwrap();
    assert_problem(
        app.get_authed("/api/v1/users/me", &old).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(app.get_authed("/api/v1/users/me", &new).await.status(), 200);

    let rotated = api(&database, &["keys", "rotate", "--revoke-previous"], &env);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    app.services.refresh_keys().await.unwrap();
    assert_problem(
        app.get_authed("/api/v1/users/me", &new).await,
        401,
        "invalid_token",
    )
    .await;
}

/// A revocation is a time in the shared table, not a retirement backdated by the revoking process's own
/// `JWT_KEY_RETIRE_SECS`: run without the servers' settings (as an operator's shell would be), it still
/// stops every instance, whose retirement window is a year, from accepting and publishing the key. Before,
/// such an instance kept the key for days and a token forged with it, claiming `admin`, verified.
#[actix_web::test]
async fn a_key_revoked_without_the_servers_settings_is_refused_by_every_instance() {
    let database = FreshDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwt.pem");
    let out = path.display().to_string();
    assert!(
        api(&database, &["keys", "generate", "--out", &out], &[])
            .status
            .success()
    );
    let server = [
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", out.as_str()),
        ("JWT_KEY_RETIRE_SECS", "31536000"),
    ];
    let app = TestApp::spawn_on_with(&database, &server).await;
    let other = app.sibling(&server).await;
    app.signed_up("ada_l").await;
    let old = app.tokens("ada_l").await.access_token;
    let old_kid = jwt_header(&old)["kid"].as_str().unwrap().to_owned();
    let operator = [
        ("JWT_ALGORITHM", "EdDSA"),
        ("JWT_PRIVATE_KEY_FILE", out.as_str()),
    ];
    assert!(
        api(&database, &["keys", "rotate"], &operator)
            .status
            .success()
    );
    for instance in [&app, &other] {
        instance.services.refresh_keys().await.unwrap();
        assert_eq!(
            instance.get_authed("/api/v1/users/me", &old).await.status(),
            200,
            "retired, still accepted for a year"
        );
    }

    let revoked = api(&database, &["keys", "revoke", &old_kid], &operator);

    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(
        stdout(&revoked).contains("refused from then on by every instance"),
        "{}",
        stdout(&revoked)
    );
    // Each instance reads the table within KEYRING_REFRESH (10 s); here, now.
    for instance in [&app, &other] {
        instance.services.refresh_keys().await.unwrap();
        assert_problem(
            instance.get_authed("/api/v1/users/me", &old).await,
            401,
            "invalid_token",
        )
        .await;
        let jwks: serde_json::Value = instance
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        assert!(
            !jwks.to_string().contains(&old_kid),
            "the revoked key is not published: {jwks}"
        );
    }
    let listed = stdout(&api(&database, &["keys", "list"], &server));
    let line = listed
        .lines()
        .find(|line| line.starts_with(&old_kid))
        .unwrap();
    assert!(
        line.contains("revoked at 20"),
        "whatever the retirement window: {listed}"
    );
}

#[actix_web::test]
async fn rotate_needs_a_key_pair_and_a_key_file() {
    let database = FreshDatabase::create().await;

    let hs256 = api(&database, &["keys", "rotate"], &[]);
    assert!(!hs256.status.success());
    assert!(
        stderr(&hs256).contains("JWT_ALGORITHM=EdDSA or ES256"),
        "{}",
        stderr(&hs256)
    );
    let no_file = api(
        &database,
        &["keys", "rotate"],
        &[("JWT_ALGORITHM", "EdDSA")],
    );
    assert!(!no_file.status.success());
    assert!(
        stderr(&no_file).contains("JWT_PRIVATE_KEY_FILE"),
        "{}",
        stderr(&no_file)
    );
}
