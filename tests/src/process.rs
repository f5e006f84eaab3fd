//! `api serve` as a child process, on a port it bound itself.

use std::{
    io::BufRead,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

/// A running `api serve`, started with `BIND_ADDR=127.0.0.1:0`: the kernel gives it a free port, which is
/// read back from its "listening on http://…" log line. (A port found free by the test and bound by the
/// api a moment later can be taken in between by another test's process; the api then fails to start
/// while the other process answers in its place.) Its standard error is read all along, so a test can show
/// what it logged. Killed when dropped.
#[derive(Debug)]
pub struct Served {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Served {
    /// Spawns `command` (an `api` command from [`crate::binary`], whose log must include the `info` line
    /// of the start: the default `RUST_LOG`, or `info`) and waits until it listens.
    ///
    /// # Panics
    /// If it ends or does not listen within 60 seconds; the message holds what it logged.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .env("BIND_ADDR", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the api");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_sender, port) = mpsc::channel();
        let written = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = listening_port(&line) {
                    let _ = port_sender.send(port);
                }
                let mut log = written
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut served = Self {
            child,
            port: 0,
            log,
        };
        match port.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => served.port = port,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = served.child.wait().expect("wait for the api");
                panic!(
                    "the api ended ({status}) before it listened:\n{}",
                    served.log()
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the api did not listen within 60 s:\n{}", served.log());
            }
        }
        served
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id (e.g. to read `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends it SIGTERM.
    ///
    /// # Panics
    /// If `kill` cannot be run.
    pub fn terminate(&self) {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(signalled.success(), "kill -TERM failed");
    }

    /// Waits (at most a minute) for it to exit, and returns its status once what it logged has been read.
    ///
    /// # Panics
    /// If it does not exit within a minute.
    pub async fn exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the api") {
                // The reader thread sees the end of the pipe at once now; give it a moment to store the
                // last lines.
                let read = Instant::now() + Duration::from_secs(5);
                while Arc::strong_count(&self.log) > 1 && Instant::now() < read {
                    actix_web::rt::time::sleep(Duration::from_millis(5)).await;
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the api did not exit within a minute:\n{}",
                self.log()
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in a "listening on http://127.0.0.1:PORT" line, text or JSON.
fn listening_port(line: &str) -> Option<u16> {
    let (_, address) = line.split_once("listening on http://")?;
    let address = address
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()?;
    address.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::listening_port;

    #[test]
    fn the_port_is_read_from_the_start_line() {
        assert_eq!(
            listening_port(
                "2026-12-06T06:00:00Z INFO  api::commands: SecureCRUD 0.1.0 listening on \
                 http://127.0.0.1:43121 (docs at /docs)"
            ),
            Some(43121)
        );
        assert_eq!(
            listening_port(r#"{"msg":"SecureCRUD 0.1.0 listening on http://127.0.0.1:8080"}"#),
            Some(8080)
        );
        assert_eq!(listening_port("listening on http://[::1]:x"), None);
        assert_eq!(listening_port("migrated"), None);
    }
}
