//! The graceful stop on SIGTERM or SIGINT, in an order that loses no request behind a proxy (see
//! [`stop_on_signal`]): no new handshakes, the ones begun accepted, the listener closed, in-flight requests
//! finished.

use std::net::TcpListener;

use securecrud_service::Services;

/// How long, after the listener is closed, connections it had already accepted get to reach a worker
/// before the graceful stop begins (a worker that is stopping drops the connections still queued for it).
const ACCEPTED_CONNECTIONS_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// How long, after new handshakes are refused (see [`refuse_new_handshakes`]), the handshakes already begun
/// get to finish and be accepted before the listener closes: one round trip, far below this on a network a
/// proxy reaches its instances over.
const HANDSHAKES_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// How long, after new handshakes begin to be dropped, the process stays (at least): a client whose SYN was
/// dropped sends it again about a second later, and must then find the closed socket of a host that is still
/// there, which refuses it at once. Were the process gone and its network with it (a container stopping),
/// nothing would answer, and a proxy would wait out its connect timeout.
const SYN_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(1_300);

/// On SIGTERM or SIGINT, stops the server gracefully, in an order that loses no request behind a proxy:
/// 1. the services are told (see `Services::begin_draining`): every answer from now on closes its
///    connection, and the mail sender finishes the message it is sending and starts no other;
/// 2. the kernel stops beginning connections on the listening socket (Linux: [`refuse_new_handshakes`]),
///    and for [`HANDSHAKES_GRACE`] the accept loop takes and serves the connections already begun, so that
///    none is left queued when the socket closes: closing it resets those, requests already sent on them
///    included, and a proxy cannot resend a POST it sent;
/// 3. actix's accept loop pauses and the listening socket is shut, so a new connection is refused (a proxy
///    sends that request to another instance: nothing was sent, so even a POST is retried safely; a client
///    whose first attempt fell in step 2 is refused at its retry, a second later);
/// 4. after [`ACCEPTED_CONNECTIONS_GRACE`] (and no sooner than [`SYN_RETRY_WAIT`] after step 2), actix's graceful stop: in-flight requests finish (up to
///    `SHUTDOWN_TIMEOUT_SECS`), then the workers end. A second signal meanwhile stops at once.
pub(crate) async fn stop_on_signal(
    services: Services,
    (listener, accept_fd): (TcpListener, Option<i32>),
    server: actix_web::dev::ServerHandle,
    mail_sender: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
) {
    let Some(mut signals) = Signals::listen() else {
        log::error!("cannot listen for SIGTERM or SIGINT: the api stops only when killed");
        return;
    };
    let name = signals.next().await;
    log::info!("{name} received: stopping gracefully (a second signal stops at once)");
    services.begin_draining();
    let _ = mail_sender.send(true);
    // No new connection is begun; those whose handshake had begun are accepted and served meanwhile.
    let mut stay_until = tokio::time::Instant::now();
    #[cfg(any(target_os = "linux", target_os = "android"))]
    match refuse_new_handshakes(&listener) {
        Ok(()) => {
            stay_until += SYN_RETRY_WAIT;
            tokio::time::sleep(HANDSHAKES_GRACE).await;
        }
        Err(err) => log::warn!(
            "could not stop new connections before closing the listener ({err}); a request sent in the \
             instant of the close may be cut"
        ),
    }
    // The accept thread lets go of the listener first (so it never meets the shut socket, which it would
    // log as two errors), then the socket is shut: new connections are refused from here on.
    let watcher = accept_fd.and_then(|fd| epoll_watching(fd).map(|info| (info, fd)));
    server.pause().await;
    if let Some((info, fd)) = &watcher {
        accept_loop_released(info, *fd).await;
    }
    if let Err(err) = socket2::SockRef::from(&listener).shutdown(std::net::Shutdown::Both) {
        log::warn!("closing the listener failed ({err}); stopping anyway");
    }
    tokio::time::sleep_until(
        stay_until.max(tokio::time::Instant::now() + ACCEPTED_CONNECTIONS_GRACE),
    )
    .await;
    let graceful = server.stop(true);
    tokio::select! {
        () = graceful => {}
        name = signals.next() => {
            log::warn!("{name} received again: stopping now, cutting requests still in flight");
            server.stop(false).await;
        }
    }
}

/// Makes the kernel drop every segment that would begin a connection on `listener` (a SYN), with a classic BPF
/// socket filter; the segments of handshakes already begun, and of accepted connections (which inherit the
/// filter), pass. Dropped rather than refused: a client tries again a second later and, the listener closed
/// by then, is refused. Closing a listener resets the connections it had queued, requests sent on them
/// included; with no new ones, the queue can be emptied first.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn refuse_new_handshakes(listener: &TcpListener) -> std::io::Result<()> {
    use socket2::SockFilter;
    // A socket filter sees a TCP segment from its TCP header on: byte 13 holds the flags, SYN is 0x02.
    const OPENS_A_CONNECTION: [SockFilter; 4] = [
        // BPF_LD | BPF_B | BPF_ABS: the flags byte.
        SockFilter::new(0x30, 0, 0, 13),
        // BPF_JMP | BPF_JSET | BPF_K: SYN set? Then the next instruction, else the one after.
        SockFilter::new(0x45, 0, 1, 0x02),
        // BPF_RET | BPF_K 0: dropped.
        SockFilter::new(0x06, 0, 0, 0),
        // BPF_RET | BPF_K all: kept whole.
        SockFilter::new(0x06, 0, 0, u32::MAX),
    ];
    socket2::SockRef::from(listener).attach_filter(&OPENS_A_CONNECTION)
}

/// The `/proc/self/fdinfo` file of the epoll instance that watches the listening socket `fd` (actix's accept
/// loop), where Linux shows one. Looked up before the pause, while the loop still serves, so that the wait
/// after it ([`accept_loop_released`]) reads one small file, not every descriptor of the process.
fn epoll_watching(fd: i32) -> Option<std::path::PathBuf> {
    let descriptors = std::fs::read_dir("/proc/self/fd").ok()?;
    descriptors.flatten().find_map(|entry| {
        let is_epoll = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.as_os_str() == "anon_inode:[eventpoll]");
        let info = std::path::Path::new("/proc/self/fdinfo").join(entry.file_name());
        (is_epoll && lists(&info, fd)).then_some(info)
    })
}

/// Whether the epoll instance whose fdinfo is `info` watches `fd` (a `tfd:` line names it).
fn lists(info: &std::path::Path, fd: i32) -> bool {
    let watched = fd.to_string();
    std::fs::read_to_string(info).is_ok_and(|text| {
        text.lines().any(|line| {
            let mut words = line.split_whitespace();
            words.next() == Some("tfd:") && words.next() == Some(watched.as_str())
        })
    })
}

/// Waits until actix's accept loop no longer watches the listening socket `fd`. `pause()` returns once the
/// pause is *asked for*; the accept thread deregisters the socket a moment later, on its own thread (within
/// microseconds, normally), and a socket shut before that is met by its `accept()` (logged as "Error
/// accepting connection: Invalid argument" and "Can not deregister server socket"). Every moment waited
/// here, new connections queue on a socket about to be shut, which resets them (a proxy cannot resend a
/// POST it sent on one), so the wait is a tight loop on one small file, bounded by 50 ms, not a sleep.
async fn accept_loop_released(info: &std::path::Path, fd: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    while lists(info, fd) {
        if std::time::Instant::now() >= deadline {
            log::warn!("the accept loop still watches the listener after 50 ms; closing it anyway");
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere), whichever of them could be listened for.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Option<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let term = signal(SignalKind::terminate())
                .inspect_err(|err| log::error!("cannot listen for SIGTERM: {err}"))
                .ok();
            let int = signal(SignalKind::interrupt())
                .inspect_err(|err| log::error!("cannot listen for SIGINT: {err}"))
                .ok();
            (term.is_some() || int.is_some()).then_some(Self { term, int })
        }
        #[cfg(not(unix))]
        Some(Self {})
    }

    /// Waits for the next signal and names it.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(self.term.as_mut()) => "SIGTERM",
                () = recv(self.int.as_mut()) => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::{
        io::{Read, Write},
        net::{TcpListener, TcpStream},
        time::Duration,
    };

    use super::refuse_new_handshakes;

    #[test]
    fn a_listener_refusing_new_handshakes_still_hands_over_the_connections_already_made() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut queued = TcpStream::connect(address).unwrap();

        refuse_new_handshakes(&listener).unwrap();

        let refused = TcpStream::connect_timeout(&address, Duration::from_millis(300))
            .expect_err("a new handshake is not answered");
        assert_eq!(refused.kind(), std::io::ErrorKind::TimedOut, "{refused}");
        // The connection made before is still queued, and its data (past the handshake) arrives.
        queued.write_all(b"ping").unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut received = [0; 4];
        accepted.read_exact(&mut received).unwrap();
        assert_eq!(&received, b"ping");
        accepted.write_all(b"pong").unwrap();
        queued.read_exact(&mut received).unwrap();
        assert_eq!(&received, b"pong");
    }
}
