//! `seed`, run as a process against a fresh database (SQLite, or PostgreSQL with `TEST_DATABASE=postgres`),
//! then checked through the HTTP api.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Output;

use securecrud_tests::{FreshDatabase, TEST_JWT_SECRET, TestApp, assert_problem, binary, text};
use serde_json::{Value, json};

const PASSWORD: &str = "a demo passphrase";

fn seed(database: &FreshDatabase, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = binary(
        env!("CARGO_BIN_EXE_seed"),
        env!("CARGO_TARGET_TMPDIR"),
        database,
    );
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run seed")
}

fn out(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn admin_get(app: &TestApp, password: &str, path: &str) -> Value {
    let response = app.login("admin", password).await;
    assert_eq!(response.status(), 200, "admin logs in");
    let token = text(&response.json().await.unwrap(), "access_token");
    app.get_authed(path, &token).await.json().await.unwrap()
}

#[actix_web::test]
async fn seed_makes_ten_users_with_an_admin_and_a_hundred_tasks() {
    let database = FreshDatabase::create().await;

    let output = seed(&database, &["--password", PASSWORD], &[]);

    assert!(output.status.success(), "{}", out(&output));
    assert!(
        out(&output).contains("Seeded 10 users and 100 tasks"),
        "{}",
        out(&output)
    );
    let app = TestApp::spawn_on(&database).await;
    let users = admin_get(&app, PASSWORD, "/api/v1/admin/users?limit=100").await;
    assert_eq!(users["total"], 10);
    let admins = admin_get(&app, PASSWORD, "/api/v1/admin/users?role=admin").await;
    assert_eq!(admins["items"][0]["username"], "admin");
    let tasks = admin_get(&app, PASSWORD, "/api/v1/admin/tasks?limit=100").await;
    assert_eq!(tasks["total"], 100);
    let owners: std::collections::HashSet<&str> = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["owner_id"].as_str().unwrap())
        .collect();
    assert!(owners.len() > 3, "tasks are spread across users");
    let someone = users["items"][1]["username"].as_str().unwrap();
    assert_eq!(
        app.login(someone, PASSWORD).await.status(),
        200,
        "every user has the password"
    );
}

#[actix_web::test]
async fn seed_refuses_a_database_with_users_unless_reset() {
    let database = FreshDatabase::create().await;
    assert!(
        seed(
            &database,
            &["--password", PASSWORD, "--users", "3", "--tasks", "5"],
            &[]
        )
        .status
        .success()
    );

    let refused = seed(&database, &["--password", PASSWORD], &[]);
    assert!(!refused.status.success());
    assert!(out(&refused).contains("--reset"), "{}", out(&refused));

    let reset = seed(
        &database,
        &["--reset", "--users", "4", "--tasks", "7"],
        &[("SEED_PASSWORD", PASSWORD)],
    );
    assert!(reset.status.success(), "{}", out(&reset));
    let app = TestApp::spawn_on(&database).await;
    assert_eq!(
        admin_get(&app, PASSWORD, "/api/v1/admin/users").await["total"],
        4
    );
    assert_eq!(
        admin_get(&app, PASSWORD, "/api/v1/admin/tasks").await["total"],
        7
    );
}

#[actix_web::test]
async fn the_same_seed_makes_the_same_data() {
    let (first, second) = (FreshDatabase::create().await, FreshDatabase::create().await);
    for database in [&first, &second] {
        assert!(
            seed(database, &["--seed", "42", "--password", PASSWORD], &[])
                .status
                .success()
        );
    }
    let usernames = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| text(u, "username"))
            .collect()
    };
    let titles = |page: &Value| -> Vec<String> {
        let mut titles: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| text(t, "title"))
            .collect();
        titles.sort();
        titles
    };

    let (a, b) = (
        TestApp::spawn_on(&first).await,
        TestApp::spawn_on(&second).await,
    );
    let path = "/api/v1/admin/users?limit=100";
    assert_eq!(
        usernames(&admin_get(&a, PASSWORD, path).await),
        usernames(&admin_get(&b, PASSWORD, path).await)
    );
    let path = "/api/v1/admin/tasks?limit=100";
    assert_eq!(
        titles(&admin_get(&a, PASSWORD, path).await),
        titles(&admin_get(&b, PASSWORD, path).await)
    );
}

#[actix_web::test]
async fn without_a_password_a_random_one_is_printed_once_and_works() {
    let database = FreshDatabase::create().await;

    let output = seed(&database, &["--users", "2", "--tasks", "0"], &[]);

    assert!(output.status.success(), "{}", out(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .expect("password line");
    let password = line.split_whitespace().nth(1).unwrap();
    let app = TestApp::spawn_on(&database).await;
    assert_eq!(app.login("admin", password).await.status(), 200);
}

#[actix_web::test]
async fn a_password_that_breaks_the_rules_is_refused_before_anything_is_written() {
    let database = FreshDatabase::create().await;

    let output = seed(&database, &["--password", "password1"], &[]);

    assert!(!output.status.success());
    assert!(out(&output).contains("too common"), "{}", out(&output));
    let retry = seed(&database, &["--password", PASSWORD], &[]);
    assert!(
        retry.status.success(),
        "nothing was written the first time: {}",
        out(&retry)
    );
}

#[actix_web::test]
async fn mfa_demo_makes_a_user_with_two_factor_authentication_on() {
    let database = FreshDatabase::create().await;
    // The test app seals TOTP secrets with its JWT_SECRET (development): the seed must use the same key.
    let output = seed(
        &database,
        &[
            "--password",
            PASSWORD,
            "--users",
            "2",
            "--tasks",
            "0",
            "--mfa-demo",
        ],
        &[("JWT_SECRET", TEST_JWT_SECRET)],
    );
    assert!(output.status.success(), "{}", out(&output));
    let printed = out(&output);
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} in {printed}"))
    };
    let secret = field("TOTP secret:");
    assert!(field("otpauth URI:").starts_with("otpauth://totp/SecureCRUD:mfa_demo?"));
    assert_eq!(field("recovery codes:").split(' ').count(), 10);

    let app = TestApp::spawn_on(&database).await;
    let problem = assert_problem(app.login("mfa_demo", PASSWORD).await, 401, "mfa_required").await;
    let bytes = totp_rs::Secret::Encoded(secret).to_bytes().unwrap();
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .unwrap();
    let response = app
        .post_json(
            "/api/v1/auth/mfa/verify",
            &json!({ "mfa_token": text(&problem, "mfa_token"), "code": totp.generate_current().unwrap() }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let user = app
        .me(&text(&response.json().await.unwrap(), "access_token"))
        .await;
    assert!(user.mfa_enabled);
    assert_eq!(
        app.login("admin", PASSWORD).await.status(),
        200,
        "the others have no second factor"
    );
}
