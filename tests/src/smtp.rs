//! A real SMTP server for the mail tests: `aiosmtpd` (PyPI; `make test` installs it) in a child process,
//! storing every message it accepts in a Maildir. It can be stopped and started again on the same port to
//! play a mail-server outage.

use std::{
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// One aiosmtpd server on 127.0.0.1.
#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpServer {
    /// Starts a server on a free port. A port found free may be taken by another test's process before
    /// aiosmtpd binds it: aiosmtpd then exits, and another port is tried.
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let mut server = Self {
                port,
                maildir: tempfile::tempdir().expect("maildir"),
                child: None,
            };
            if server.try_resume() {
                return server;
            }
        }
        panic!("aiosmtpd did not start on any of five free ports");
    }

    /// The `SMTP_URL` of this server (plain SMTP, as a local relay).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server: connections are refused until [`Self::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.accepts() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port, keeping the messages received so far.
    pub fn resume(&mut self) {
        assert!(
            self.try_resume(),
            "aiosmtpd did not start on port {}",
            self.port
        );
    }

    /// Starts aiosmtpd on this server's port; whether it greets there as an SMTP server (false if it exited
    /// first: the port was taken).
    fn try_resume(&mut self) -> bool {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            installed,
            "the mail tests need aiosmtpd: `make test` installs it, or `python3 -m pip install aiosmtpd`"
        );
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            // A path that does not exist yet: Python's Maildir only lays out new/cur/tmp when it creates it.
            .arg(self.maildir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.greets() {
            if child.try_wait().ok().flatten().is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
        true
    }

    /// Whether an SMTP server answers on this port (its greeting begins with 220).
    fn greets(&self) -> bool {
        use std::io::Read;
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut greeting = [0; 4];
        stream.read_exact(&mut greeting).is_ok() && greeting.starts_with(b"220")
    }

    fn accepts(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    /// Every message received so far, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        let new: PathBuf = self.maildir.path().join("maildir").join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .collect()
    }

    /// Waits until at least `count` messages have arrived (or `timeout` passes) and returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The decoded text of a message (quoted-printable soft breaks and `=3D` undone), to find links in.
pub fn decoded(message: &str) -> String {
    message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The token of the first link in `message` that contains `path` (e.g. `/verify-email?token=`).
pub fn link_token(message: &str, path: &str) -> Option<String> {
    let text = decoded(message);
    let start = text.find(path)? + path.len();
    Some(
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .collect(),
    )
}
