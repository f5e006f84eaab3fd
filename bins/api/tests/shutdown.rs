//! Graceful shutdown of `api serve`, as a process: SIGTERM stops accepting connections, lets the requests in
//! flight finish (within `SHUTDOWN_TIMEOUT_SECS`), and the process exits 0.
//!
//! On PostgreSQL this held only about three runs in four until each worker runtime got a pool of its own
//! (`Database::for_this_runtime`): actix's workers end one by one, each with its async runtime, and a
//! pooled connection opened on a worker that had ended failed a request still using it on another with
//! "A Tokio 1.x context was found, but it is being shutdown" (503).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use securecrud_tests::{FreshDatabase, PASSWORD, Served, binary, wait_until_answers};

#[actix_web::test]
async fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let database = FreshDatabase::create().await;
    let mail_dir = tempfile::tempdir().unwrap();
    let mut api = Served::start({
        let mut command = binary(
            env!("CARGO_BIN_EXE_api"),
            env!("CARGO_TARGET_TMPDIR"),
            &database,
        );
        command
            // The production cost: each login is a few hundred milliseconds of bcrypt, so several are in
            // flight at the signal.
            .env("BCRYPT_COST", "12")
            .env("PASSWORD_QUEUE_TIMEOUT_MS", "30000")
            // Concurrent logins of one account count against its lockout quota while in flight.
            .env("LOGIN_MAX_FAILURES", "1000")
            .env("SHUTDOWN_TIMEOUT_SECS", "30")
            // The metrics listener too: a second actix server must not cut the api's workers at the
            // signal.
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("MAIL_DIR", mail_dir.path());
        command
    });
    let base = api.base();
    let client = reqwest::Client::new();
    wait_until_answers(&client, &format!("{base}/health/live")).await;
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({"username": "ada_l", "email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    // The logins on connections of their own (a new client keeps none idle), counted from here.
    let already = connected_to(api.port());
    let logins_client = reqwest::Client::new();
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let (client, base) = (logins_client.clone(), base.clone());
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
    // Once the kernel has connected all eight to the api (what is connected before the signal is served),
    // signal while bcrypt works.
    let deadline = Instant::now() + Duration::from_secs(10);
    while connected_to(api.port()) < already + 8 {
        assert!(Instant::now() < deadline, "the logins did not connect");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    api.terminate();

    let statuses: Vec<u16> = futures_util::future::join_all(logins)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().expect("an in-flight request is answered"))
        .collect();
    assert_eq!(
        statuses, [200; 8],
        "every request in flight at SIGTERM finished"
    );
    let status = api.exit().await;
    assert!(status.success(), "exit status {status}:\n{}", api.log());
    assert!(
        client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_err(),
        "nothing listens any more"
    );
}

/// How many connections to local port `port` are established, as Linux lists them in /proc/net/tcp and tcp6
/// (a line per socket: `sl local_address rem_address st …`, addresses as hex `IP:PORT`, state 01 established).
fn connected_to(port: u16) -> usize {
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let mut fields = line.split_whitespace().skip(1);
                    let local = fields.next().unwrap_or_default();
                    let state = fields.nth(1).unwrap_or_default();
                    local.ends_with(&port) && state == "01"
                })
                .count()
        })
        .sum()
}

/// An SMTP server (aiosmtpd) that takes `delay` seconds to accept each message's DATA, writing a line to
/// `started` when DATA begins and each accepted message to `maildir` as `<n>.eml`.
const SLOW_SMTP: &str = r#"
import asyncio, os, sys, time
from aiosmtpd.smtp import SMTP
delay, started, maildir = float(sys.argv[1]), sys.argv[2], sys.argv[3]
class Slow:
    async def handle_DATA(self, server, session, envelope):
        with open(started, "a") as f:
            f.write(",".join(envelope.rcpt_tos) + "\n")
        await asyncio.sleep(delay)
        with open(os.path.join(maildir, f"{time.time_ns()}.eml"), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        return "250 Message accepted"
async def serve():
    # Port 0: the kernel picks a free port, which no other process can take between choosing and binding.
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(Slow(), enable_SMTPUTF8=True), "127.0.0.1", 0)
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(serve())
"#;

/// Starts `api serve` on `database` with mail going to `smtp_port`; returns it and its base URL once it
/// answers.
async fn serve_with_smtp(database: &FreshDatabase, smtp_port: u16) -> Served {
    let mut command = binary(
        env!("CARGO_BIN_EXE_api"),
        env!("CARGO_TARGET_TMPDIR"),
        database,
    );
    command
        .env("SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("MAIL_POLL_MS", "50");
    let api = Served::start(command);
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{}/health/ready", api.base()))
        .send()
        .await
        .map_or(true, |response| response.status() != 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the api did not become ready:\n{}",
            api.log()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    api
}

fn delivered(maildir: &std::path::Path) -> Vec<String> {
    let mut messages: Vec<String> = std::fs::read_dir(maildir)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    messages.sort();
    messages
}

async fn register(base: &str, username: &str) {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "password": PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[actix_web::test]
async fn a_message_being_sent_at_sigterm_is_delivered_once_and_the_next_waits_for_the_next_start() {
    let work = tempfile::tempdir().unwrap();
    let (started_file, maildir) = (work.path().join("started"), work.path().join("maildir"));
    std::fs::create_dir(&maildir).unwrap();
    let mut smtp = KillOnDrop(
        Command::new("python3")
            .arg("-c")
            .arg(SLOW_SMTP)
            .arg("2")
            .arg(&started_file)
            .arg(&maildir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (`make test` installs it)"),
    );
    let smtp_port: u16 = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(smtp.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim()
            .strip_prefix("ready ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                panic!("the SMTP server did not start (is aiosmtpd installed?): {line:?}")
            })
    };
    let database = FreshDatabase::create().await;
    let mut api = serve_with_smtp(&database, smtp_port).await;
    let base = api.base();

    // The first verification message is in the middle of its 2 s DATA when the signal comes; the second
    // is queued behind it.
    register(&base, "ada_l").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&started_file).is_ok_and(|s| s.contains("ada_l@example.com")) {
        assert!(
            Instant::now() < deadline,
            "the first message was never sent"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    register(&base, "grace_h").await;
    api.terminate();
    let status = api.exit().await;
    assert!(status.success(), "exit status {status}:\n{}", api.log());
    // Had it exited without waiting, the message would still arrive (the server finishes the DATA it got)
    // but stay unsent in the outbox, and the next start would send it again: checked below.
    let first = delivered(&maildir);
    assert_eq!(
        first.len(),
        1,
        "the message in flight was delivered, and only it"
    );
    assert!(first[0].contains("ada_l@example.com"));
    let attempts = std::fs::read_to_string(&started_file).unwrap();
    assert!(
        !attempts.contains("grace_h"),
        "no new message was started after the signal: {attempts}"
    );

    // The next start sends the second message, and not the first again.
    let _api = serve_with_smtp(&database, smtp_port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while delivered(&maildir).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second message was not sent after the restart"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Once the outbox holds nothing unsent, nothing else can arrive.
    let deadline = Instant::now() + Duration::from_secs(20);
    while database
        .count_rows("SELECT id FROM mail_outbox WHERE sent_at IS NULL")
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "the outbox was not emptied");
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    let all = delivered(&maildir);
    assert_eq!(all.len(), 2, "each message exactly once");
    assert_eq!(
        all.iter()
            .filter(|m| m.contains("ada_l@example.com"))
            .count(),
        1
    );
    assert_eq!(
        all.iter()
            .filter(|m| m.contains("grace_h@example.com"))
            .count(),
        1
    );
    let attempts = std::fs::read_to_string(&started_file).unwrap();
    assert_eq!(attempts.lines().count(), 2, "two sends in all: {attempts}");
}

/// A child process killed when the test ends, failed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Before the stop waited for actix's accept loop to let go of the listener, shutting the socket raced with
/// that loop, which then logged "Error accepting connection: Invalid argument" and "Can not deregister
/// server socket" (about one stop in six here). A clean stop logs no error.
#[actix_web::test]
async fn a_clean_stop_logs_no_error() {
    let database = FreshDatabase::create().await;
    let client = reqwest::Client::new();
    for round in 0..6 {
        let mut command = binary(
            env!("CARGO_BIN_EXE_api"),
            env!("CARGO_TARGET_TMPDIR"),
            &database,
        );
        command
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info");
        let mut api = Served::start(command);
        wait_until_answers(&client, &format!("{}/health", api.base())).await;
        actix_web::rt::time::sleep(Duration::from_millis(10 * round)).await;
        api.terminate();
        let status = api.exit().await;

        let log = api.log();
        assert!(status.success(), "round {round}: {status}:\n{log}");
        assert!(log.contains("server stopped"), "round {round}: {log}");
        assert!(
            !log.lines()
                .any(|line| line.contains(" ERROR ") || line.contains(" WARN ")),
            "round {round}: {log}"
        );
    }
}

/// What a proxy in front of a stopping instance sees, each request on a new connection (as nginx does
/// without upstream keep-alive): every connection opened across SIGTERM is either refused (nothing was sent,
/// so the proxy sends the request to another instance, a POST included) or answered in full. None is cut
/// after its request went out, as happens to a connection the kernel queued on the listening socket just
/// before it was shut: a proxy cannot resend a POST there, and its client gets a 502.
#[actix_web::test]
async fn connections_opened_across_sigterm_are_refused_or_answered_never_cut() {
    use std::io::{Read, Write};
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    };

    let database = FreshDatabase::create().await;
    let mut api = Served::start(binary(
        env!("CARGO_BIN_EXE_api"),
        env!("CARGO_TARGET_TMPDIR"),
        &database,
    ));
    let port = api.port();
    wait_until_answers(
        &reqwest::Client::new(),
        &format!("{}/health/live", api.base()),
    )
    .await;

    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let done = Arc::new(AtomicBool::new(false));
    let answered_so_far = Arc::new(AtomicU32::new(0));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (done, answered_so_far) = (Arc::clone(&done), Arc::clone(&answered_so_far));
            std::thread::spawn(move || {
                let (mut answered, mut refused, mut cut) = (0_u32, 0_u32, Vec::new());
                // Bounded, should the test fail before it says it is done.
                let deadline = Instant::now() + Duration::from_secs(120);
                while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let Ok(mut stream) =
                        std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
                    else {
                        refused += 1;
                        continue;
                    };
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    let request = format!(
                        "GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                    );
                    let mut response = Vec::new();
                    let outcome = stream
                        .write_all(request.as_bytes())
                        .and_then(|()| stream.read_to_end(&mut response));
                    match outcome {
                        Ok(_) if response.starts_with(b"HTTP/1.1 200 ") => {
                            answered += 1;
                            answered_so_far.fetch_add(1, Ordering::Relaxed);
                        }
                        other => cut.push(format!(
                            "{other:?} after {} bytes: {:?}",
                            response.len(),
                            String::from_utf8_lossy(&response)
                        )),
                    }
                }
                (answered, refused, cut)
            })
        })
        .collect();
    // Under load (every client answered many times), then the signal.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered_so_far.load(Ordering::Relaxed) < 300 {
        assert!(Instant::now() < deadline, "the clients get answers");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    api.terminate();
    let status = api.exit().await;
    done.store(true, Ordering::Relaxed);

    let (mut answered, mut refused, mut cut) = (0, 0, Vec::new());
    for client in clients {
        let (a, r, c) = client.join().unwrap();
        answered += a;
        refused += r;
        cut.extend(c);
    }
    assert!(status.success(), "exit status {status}:\n{}", api.log());
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
    assert!(
        cut.is_empty(),
        "{} of {} connections were cut after their request was sent ({answered} answered, {refused} \
         refused): {cut:?}",
        cut.len(),
        answered + refused + u32::try_from(cut.len()).unwrap()
    );
}

/// A revocation-feed stream never ends on its own: at SIGTERM the api ends it (its subscriber reconnects,
/// to another instance behind a proxy), so that the stop does not wait out `SHUTDOWN_TIMEOUT_SECS` for it.
#[actix_web::test]
async fn open_revocation_feed_streams_end_at_sigterm() {
    let database = FreshDatabase::create().await;
    let mut command = binary(
        env!("CARGO_BIN_EXE_api"),
        env!("CARGO_TARGET_TMPDIR"),
        &database,
    );
    command.env("SHUTDOWN_TIMEOUT_SECS", "30");
    let mut api = Served::start(command);
    let client = reqwest::Client::new();
    wait_until_answers(&client, &format!("{}/health", api.base())).await;
    let mut stream = client
        .get(format!("{}/api/v1/auth/revocations", api.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = stream
        .chunk()
        .await
        .unwrap()
        .expect("the stream's first line");
    assert!(first.starts_with(b"retry:"), "{first:?}");

    let signalled = Instant::now();
    api.terminate();
    let ended = actix_web::rt::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended at the stop");
    let status = api.exit().await;
    assert!(status.success(), "{status}:\n{}", api.log());
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "stopped in {:?}, not after the shutdown timeout",
        signalled.elapsed()
    );
}
