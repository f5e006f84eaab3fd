//! The api's background tasks beside the server, stopped together: one stop signal, and every task awaited
//! (within a deadline) before the server's runtime ends, so that none is dropped holding a database
//! connection.

use std::{sync::Arc, time::Duration};

use securecrud_service::{KEYRING_REFRESH, Services};
use tokio::sync::watch;

/// How often the api deletes expired rate-limit counters, idle lockout state and long-ended sessions.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How long the stop waits for the tasks: the mail sender finishes the message it is sending (an SMTP
/// exchange, bounded by the mailer's own timeouts); every other task stops at once.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// The running tasks and their stop signals.
pub(crate) struct Background {
    stop: watch::Sender<bool>,
    /// The mail sender's own: the graceful stop tells it at the signal already (see [`Self::mail_stopper`]).
    mail_stop: Arc<watch::Sender<bool>>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl Background {
    /// Starts the sweeper, the signing-key refresh, the OpenID Connect providers' first discovery, the
    /// database probe, the session-change watcher
    /// (PostgreSQL), the revocation feed's poller and the outbox mail sender on the current runtime.
    pub(crate) fn start(services: &Services) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (mail_stop, mail_stopped) = watch::channel(false);
        let mut background = Self {
            stop,
            mail_stop: Arc::new(mail_stop),
            tasks: Vec::new(),
        };
        let s = services.clone();
        background.spawn(
            "sweeper",
            &stopped,
            every(SWEEP_EVERY, move || sweep(s.clone())),
        );
        let s = services.clone();
        background.spawn("signing-key refresh", &stopped, refresh_keys(s));
        let s = services.clone();
        background.spawn("OpenID Connect discovery", &stopped, async move {
            s.discover_oidc_providers().await;
        });
        let s = services.clone();
        background.spawn("database probe", &stopped, async move {
            s.watch_database().await
        });
        let s = services.clone();
        background.spawn("session-change watcher", &stopped, async move {
            s.watch_session_changes().await;
        });
        let s = services.clone();
        background.spawn("revocation feed", &stopped, async move {
            s.follow_session_endings().await;
        });
        // The mail sender stops between two messages by itself (it is never cut mid-message).
        let s = services.clone();
        background.tasks.push((
            "mail sender",
            actix_web::rt::spawn(async move { s.run_mail_sender(mail_stopped).await }),
        ));
        background
    }

    /// Runs `task` beside the others until it ends or the stop signal comes.
    pub(crate) fn run(&mut self, name: &'static str, task: impl Future<Output = ()> + 'static) {
        let stopped = self.stop.subscribe();
        self.spawn(name, &stopped, task);
    }

    /// What tells the mail sender to finish the message it is sending and start no other.
    pub(crate) fn mail_stopper(&self) -> Arc<watch::Sender<bool>> {
        Arc::clone(&self.mail_stop)
    }

    /// Runs `task` until it ends or the stop signal comes.
    fn spawn(
        &mut self,
        name: &'static str,
        stopped: &watch::Receiver<bool>,
        task: impl Future<Output = ()> + 'static,
    ) {
        let mut stopped = stopped.clone();
        self.tasks.push((
            name,
            actix_web::rt::spawn(async move {
                tokio::select! {
                    () = task => {}
                    _ = stopped.wait_for(|stop| *stop) => {}
                }
            }),
        ));
    }

    /// Signals every task to stop and waits for each, for [`STOP_GRACE`] in all; one still running then is
    /// cut, and said so.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.mail_stop.send(true);
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for (name, task) in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
                log::warn!(
                    "the {name} did not stop in time; it was cut (a claimed message is retried)"
                );
            }
        }
    }
}

/// Runs `round` every `period`, the first at once.
async fn every<F, Fut>(period: Duration, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    loop {
        interval.tick().await;
        round().await;
    }
}

/// Deletes protection state nobody needs any more (several instances may all sweep: the deletes are
/// idempotent).
async fn sweep(services: Services) {
    match services.sweep().await {
        Ok(swept) if swept != Default::default() => log::info!(
            counters = swept.rate_limit_counters, lockouts = swept.login_lockouts,
            sessions = swept.ended_sessions, sent_mail = swept.sent_mail;
            "swept expired protection state and sent mail"
        ),
        Ok(_) => {}
        Err(err) => log::warn!("sweeping expired protection state failed: {err:#}"),
    }
}

/// Every [`KEYRING_REFRESH`], takes a new key from `JWT_PRIVATE_KEY_FILE` and accepts the keys other
/// instances installed (EdDSA / ES256 only; nothing to do with HS256).
async fn refresh_keys(services: Services) {
    let mut interval = tokio::time::interval(KEYRING_REFRESH);
    interval.tick().await;
    loop {
        interval.tick().await;
        match services.refresh_keys().await {
            Ok(false) => return,
            Ok(true) => {}
            Err(err) => log::warn!("refreshing the signing keys failed: {err:#}"),
        }
    }
}
