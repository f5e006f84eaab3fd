//! The revocation feed against readers that never read, measured on `api serve` as a process: the api
//! writes a stream only as its client takes it, so such readers cost it a bounded amount of memory however
//! many sessions end, and the readers that do read get every ending.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use sea_orm::ConnectionTrait;
use securecrud_tests::{Backend, FreshDatabase, PASSWORD, Served, binary, wait_until_answers};
use tokio::io::AsyncWriteExt;

/// Endings made at once: were each silent reader's stream kept in the api, 4 × 100,000 × ~110 bytes (44 MB)
/// on top of what reading them costs anyway (12 MiB measured on SQLite, whose connections each keep a page
/// cache of up to 2 MiB; 2.3 MiB on PostgreSQL): the bound below, 32 MiB, lies between.
const ENDINGS: usize = 100_000;
const SILENT_READERS: usize = 4;

/// The api's resident memory now, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A client that asks for the feed and never reads a byte, with a small receive buffer so that the kernel
/// holds little of what the api sends.
async fn silent_reader(port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    stream
        .write_all(
            b"GET /api/v1/auth/revocations HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .unwrap();
    stream
}

#[actix_web::test]
async fn readers_that_never_read_cost_the_api_bounded_memory_and_hold_up_no_one() {
    let database = FreshDatabase::create().await;
    let mut command = binary(
        env!("CARGO_BIN_EXE_api"),
        env!("CARGO_TARGET_TMPDIR"),
        &database,
    );
    command.env("REVOCATION_FEED_MAX_STREAMS_PER_IP", "8");
    let api = Served::start(command);
    let base = api.base();
    let client = reqwest::Client::new();
    wait_until_answers(&client, &format!("{base}/health")).await;
    let response = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "username": "ada_l",
            "email": "ada_l@example.com",
            "password": PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"login": "ada_l", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the session the copies are made of");

    let mut silent = Vec::new();
    for _ in 0..SILENT_READERS {
        silent.push(silent_reader(api.port()).await);
    }
    let reading = client
        .get(format!("{base}/api/v1/auth/revocations"))
        .send()
        .await
        .unwrap();
    assert_eq!(reading.status(), 200);
    let mut reading = securecrud_tests::sse::Feed::new(reading);
    assert!(
        reading.next_within(Duration::from_secs(5)).await.is_some(),
        "the reader's stream opened"
    );
    let before = resident_kib(api.pid());

    // ENDINGS more live sessions of ada_l, copies of the login's written past the api (a login each would
    // take minutes), then all ended in one statement: the feed's triggers record every one.
    let db = sea_orm::Database::connect(&database.url).await.unwrap();
    let new_id = match Backend::current() {
        Backend::Sqlite => "randomblob(16)",
        Backend::Postgres => "gen_random_uuid()",
    };
    db.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ENDINGS}) \
         INSERT INTO sessions (id, user_id, refresh_hash, created_at, last_used_at, expires_at) \
         SELECT {new_id}, s.user_id, 'copy' || n.i, s.created_at, s.last_used_at, s.expires_at \
         FROM sessions s, n"
    ))
    .await
    .unwrap();
    db.execute_unprepared("UPDATE sessions SET revoked_at = last_used_at WHERE revoked_at IS NULL")
        .await
        .unwrap();

    // The reader that reads gets every ending (the login's session and the copies), in order, while the
    // silent ones hold their streams open.
    let got = reading.revoked_until_quiet(Duration::from_secs(5)).await;
    assert_eq!(got.len(), ENDINGS + 1, "every ending reached the reader");
    assert!(got.windows(2).all(|pair| pair[0].cursor < pair[1].cursor));

    let grown_kib = resident_kib(api.pid()).saturating_sub(before);
    assert!(
        grown_kib < 32 * 1024,
        "the api grew by {} MiB with {SILENT_READERS} silent readers of {ENDINGS} endings",
        grown_kib / 1024
    );
    eprintln!(
        "{SILENT_READERS} silent readers, {ENDINGS} endings ({:?}): the api grew by {} KiB",
        Backend::current(),
        grown_kib
    );
    drop(silent);
}
