//! The outbox sender: a background task in the api process that delivers the messages written to
//! `mail_outbox`, safely with several instances.
//!
//! Each round it claims due messages (a lease, so a crashed sender's claims come back), sends them one by
//! one, and marks each sent, or due again after an exponential backoff (`MAIL_RETRY_BASE_SECS`, doubling,
//! at most an hour), or dead after `MAIL_MAX_ATTEMPTS` (logged as an error). A circuit breaker stops calling a
//! mail server that keeps failing and probes it with one message after `MAIL_BREAKER_COOLDOWN_SECS`; while it
//! is open nothing is claimed and no attempt is counted. On shutdown the message being sent finishes; the rest
//! of a claim is given back.

use std::sync::Arc;

use securecrud_mail::{Admission, MailError, Mailer};
use securecrud_persistence::{OutboxMail, now};
use time::Duration;
use tokio::sync::watch;

use crate::Services;

/// How many messages one claim takes.
const CLAIM_BATCH: u64 = 10;
/// How long a claim keeps other senders off a message.
const CLAIM_LEASE: Duration = Duration::minutes(5);
/// The longest delay between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::hours(1);

impl Services {
    /// Delivers outbox messages until `shutdown` turns true. Run it once per api process.
    pub async fn run_mail_sender(&self, mut shutdown: watch::Receiver<bool>) {
        let poll = self.inner.mail.poll_interval;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match self.send_due_mail(&shutdown).await {
                Ok(pause) => pause,
                Err(err) => {
                    log::warn!("the mail sender could not read the outbox: {err:#}");
                    poll
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One round: claims and sends what is due. Returns how long to wait before the next round.
    async fn send_due_mail(
        &self,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<std::time::Duration, crate::ServiceError> {
        let poll = self.inner.mail.poll_interval;
        let breaker = &self.inner.breaker;
        let batch = match breaker.admit() {
            Admission::Send => CLAIM_BATCH,
            Admission::Probe => 1,
            Admission::Wait(wait) => return Ok(wait.min(poll)),
        };
        let claimed = self.db.claim_mail(batch, CLAIM_LEASE).await?;
        if claimed.is_empty() {
            if batch == 1 {
                // Nothing due to probe with: the next due message will be the probe.
                breaker.probe_skipped();
            }
            return Ok(poll);
        }
        let mut claimed = claimed.into_iter();
        while let Some(message) = claimed.next() {
            if *shutdown.borrow() || breaker.is_open() {
                self.db.release_mail(message.id).await?;
                for rest in claimed.by_ref() {
                    self.db.release_mail(rest.id).await?;
                }
                break;
            }
            self.deliver(&message).await?;
        }
        Ok(std::time::Duration::ZERO)
    }

    async fn deliver(&self, message: &OutboxMail) -> Result<(), crate::ServiceError> {
        let db = &self.db;
        match self.inner.mailer.send(&message.mail).await {
            Ok(()) => {
                self.inner.breaker.succeeded();
                db.mark_mail_sent(message.id).await?;
                log::info!(mail_id = message.id, attempts = message.attempts; "mail sent");
            }
            Err(MailError::Invalid(reason)) => {
                // The server answered: it is up; this message can never be sent.
                self.inner.breaker.succeeded();
                db.mark_mail_failed(message.id, &reason, None).await?;
                log::error!(mail_id = message.id; "mail dead: the server refused it for good: {reason}");
            }
            Err(MailError::Delivery(reason)) => {
                self.inner.breaker.failed();
                let max = self.inner.mail.max_attempts;
                if message.attempts >= max {
                    db.mark_mail_failed(message.id, &reason, None).await?;
                    log::error!(
                        mail_id = message.id, attempts = message.attempts;
                        "mail dead after {max} attempts: {reason}"
                    );
                } else {
                    let delay = retry_delay(self.inner.mail.retry_base, message.attempts);
                    db.mark_mail_failed(message.id, &reason, Some(now() + delay))
                        .await?;
                    log::warn!(
                        mail_id = message.id, attempts = message.attempts,
                        retry_in_secs = delay.whole_seconds();
                        "mail delivery failed; will retry: {reason}"
                    );
                }
            }
        }
        Ok(())
    }
}

/// The delay after the `attempts`-th failed attempt: `base`, doubling, at most [`MAX_RETRY_DELAY`].
fn retry_delay(base: Duration, attempts: u32) -> Duration {
    crate::protection::capped_doubling(base, MAX_RETRY_DELAY, attempts.saturating_sub(1))
}

/// The mailer the settings ask for: SMTP when `SMTP_URL` is set, else `.eml` files in `MAIL_DIR`.
///
/// # Errors
/// If `SMTP_URL` or `MAIL_FROM` cannot be used.
pub(crate) fn mailer(settings: &crate::settings::MailSettings) -> anyhow::Result<Arc<dyn Mailer>> {
    let from = securecrud_mail::parse_from(&settings.from)?;
    Ok(match settings.smtp_url() {
        Some(url) => Arc::new(securecrud_mail::SmtpMailer::from_url(url, from)?),
        None => Arc::new(securecrud_mail::FileMailer::new(settings.dir.clone(), from)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let base = Duration::seconds(30);
        assert_eq!(retry_delay(base, 1), Duration::seconds(30));
        assert_eq!(retry_delay(base, 2), Duration::seconds(60));
        assert_eq!(retry_delay(base, 4), Duration::seconds(240));
        assert_eq!(retry_delay(base, 20), Duration::hours(1));
    }
}
