//! `api create-admin`, run as a process against a fresh database (SQLite, or PostgreSQL with
//! `TEST_DATABASE=postgres`), then checked through the HTTP api.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    io::Write,
    process::{Output, Stdio},
};

use securecrud_tests::{FreshDatabase, PASSWORD, TestApp, assert_problem, binary, text};

fn api(
    database: &FreshDatabase,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut command = binary(
        env!("CARGO_BIN_EXE_api"),
        env!("CARGO_TARGET_TMPDIR"),
        database,
    );
    command
        .args(args)
        .env("JWT_SECRET", securecrud_tests::TEST_JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run api");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("api output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn is_admin(app: &TestApp, login: &str, password: &str) -> bool {
    let response = app.login(login, password).await;
    assert_eq!(response.status(), 200, "{login} can log in");
    let token = text(&response.json().await.unwrap(), "access_token");
    app.get_authed("/api/v1/admin/users", &token).await.status() == 200
}

const CREATE: [&str; 5] = [
    "create-admin",
    "--username",
    "root",
    "--email",
    "root@example.com",
];

#[actix_web::test]
async fn create_admin_reads_the_password_from_stdin() {
    let database = FreshDatabase::create().await;

    let output = api(
        &database,
        &[&CREATE[..], &["--password-stdin"]].concat(),
        Some(&format!("{PASSWORD}\n")),
        &[],
    );

    assert!(output.status.success(), "{}", stderr(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.starts_with("admin root created (id "), "{said}");
    assert!(
        !stderr(&output).contains(PASSWORD) && !said.contains(PASSWORD),
        "the password is never printed"
    );
    let app = TestApp::spawn_on(&database).await;
    assert!(is_admin(&app, "root", PASSWORD).await);
}

#[actix_web::test]
async fn create_admin_reads_admin_password() {
    let database = FreshDatabase::create().await;

    let output = api(&database, &CREATE, None, &[("ADMIN_PASSWORD", PASSWORD)]);

    assert!(output.status.success(), "{}", stderr(&output));
    let app = TestApp::spawn_on(&database).await;
    assert!(is_admin(&app, "root@example.com", PASSWORD).await);
}

#[actix_web::test]
async fn create_admin_applies_the_registration_rules() {
    let database = FreshDatabase::create().await;

    let weak = api(
        &database,
        &[&CREATE[..], &["--password-stdin"]].concat(),
        Some("password1\n"),
        &[],
    );
    let none = api(&database, &CREATE, None, &[]);
    let bad_email = api(
        &database,
        &[
            "create-admin",
            "--username",
            "root",
            "--email",
            "nope",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
        &[],
    );

    assert!(!weak.status.success());
    assert!(
        stderr(&weak).contains("password: is too common"),
        "{}",
        stderr(&weak)
    );
    assert!(!none.status.success());
    assert!(
        stderr(&none).contains("--password-stdin"),
        "{}",
        stderr(&none)
    );
    assert!(!bad_email.status.success());
    assert!(
        stderr(&bad_email).contains("email"),
        "{}",
        stderr(&bad_email)
    );
    let app = TestApp::spawn_on(&database).await;
    assert_problem(
        app.login("root", "password1").await,
        401,
        "invalid_credentials",
    )
    .await;
}

#[actix_web::test]
async fn a_password_is_never_taken_from_the_command_line() {
    let database = FreshDatabase::create().await;

    let output = api(
        &database,
        &[&CREATE[..], &["--password", PASSWORD]].concat(),
        None,
        &[],
    );

    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unexpected argument"),
        "{}",
        stderr(&output)
    );
}

#[actix_web::test]
async fn promote_makes_an_existing_user_an_admin_and_without_it_nothing_changes() {
    let database = FreshDatabase::create().await;
    let app = TestApp::spawn_on(&database).await;
    app.signed_up("ada_l").await;
    app.verify_email("ada_l@example.com").await;
    let args = [
        "create-admin",
        "--username",
        "ADA_L",
        "--email",
        "ada_l@example.com",
    ];

    let refused = api(
        &database,
        &[&args[..], &["--password-stdin"]].concat(),
        Some(&format!("{PASSWORD}\n")),
        &[],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--promote"),
        "{}",
        stderr(&refused)
    );
    assert!(!is_admin(&app, "ada_l", PASSWORD).await);

    let promoted = api(&database, &[&args[..], &["--promote"]].concat(), None, &[]);
    assert!(promoted.status.success(), "{}", stderr(&promoted));
    assert_eq!(
        String::from_utf8_lossy(&promoted.stdout),
        "ADA_L is now an admin\n",
        "as given (logins match case-insensitively)"
    );
    assert!(is_admin(&app, "ada_l", PASSWORD).await);
}

#[actix_web::test]
async fn promote_refuses_a_user_whose_email_is_not_the_one_given() {
    let database = FreshDatabase::create().await;
    let app = TestApp::spawn_on(&database).await;
    // Someone registered the name the operator meant for the admin.
    app.signed_up("admin").await;

    let refused = api(
        &database,
        &[
            "create-admin",
            "--username",
            "admin",
            "--email",
            "ops@example.com",
            "--promote",
        ],
        None,
        &[],
    );

    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("another email"),
        "{}",
        stderr(&refused)
    );
    assert!(!is_admin(&app, "admin", PASSWORD).await);
}

#[actix_web::test]
async fn promote_refuses_an_account_whose_email_is_not_verified() {
    let database = FreshDatabase::create().await;
    let app = TestApp::spawn_on(&database).await;
    // Anyone can register an address they do not own: only a verified one proves the account.
    app.signed_up("ops").await;
    let args = [
        "create-admin",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        "--promote",
    ];

    let refused = api(&database, &args, None, &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("not verified"),
        "{}",
        stderr(&refused)
    );
    assert!(!is_admin(&app, "ops", PASSWORD).await);

    app.verify_email("ops@example.com").await;
    let promoted = api(&database, &args, None, &[]);
    assert!(promoted.status.success(), "{}", stderr(&promoted));
    assert!(is_admin(&app, "ops", PASSWORD).await);
}
