//! The outbox sender: a background task in the api process that delivers the messages written to
//! `mail_outbox`, safely with several instances.
//!
//! Each round it claims due messages (a lease, so a crashed sender's claims come back), sends them one by
//! one, and marks each sent, or due again after an exponential backoff (`MAIL_RETRY_BASE_SECS`, doubling,
//! at most an hour), or dead after `MAIL_MAX_ATTEMPTS` (logged as an error). A circuit breaker stops calling a
//! mail server that keeps failing and probes it with one message after `MAIL_BREAKER_COOLDOWN_SECS`; while it
//! is open nothing is claimed and no attempt is counted. On shutdown the message being sent finishes; the rest
//! of a claim is given back.
//!
//! A message's bodies may carry a live token in a link, so they never wait readable: [`Services::enqueue_mail`]
//! seals each (XChaCha20-Poly1305, key derived from `MFA_ENCRYPTION_KEY` for this purpose alone) bound to its
//! part, recipient and subject, and the sender opens them just before sending. A row that does not open (another
//! key, or altered: a body moved to another recipient's row) is never sent: it is logged and left to its lease
//! (an instance that has the right key may take it), and given up after `MAIL_MAX_ATTEMPTS` like any failure.
//! During a rolling upgrade, rows written by the previous release are plain; they are sent as they are.

use std::sync::Arc;

use securecrud_auth::seal::{SealError, Sealer};
use securecrud_domain::{Mail, SealedMail};
use securecrud_mail::{Admission, MailError, Mailer};
use securecrud_persistence::{OutboxBody, OutboxMail, Transaction};
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
    /// Within `tx` (the transaction that makes the message's token, if it has one): puts `mail` in the outbox,
    /// sealed, due now.
    pub(crate) async fn enqueue_mail(
        &self,
        tx: &Transaction,
        mail: Mail,
    ) -> Result<(), crate::ServiceError> {
        let sealed = seal_mail(&self.inner.mail_sealer, &mail)
            .map_err(|err| anyhow::anyhow!("sealing a message for the outbox failed: {err}"))?;
        tx.enqueue_mail(sealed).await?;
        Ok(())
    }

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
        let opened = match &message.body {
            OutboxBody::Sealed(sealed) => open_mail(&self.inner.mail_sealer, sealed),
            OutboxBody::Plain(mail) => Ok(mail.clone()),
        };
        let Ok(mail) = opened else {
            let max = self.inner.mail.max_attempts;
            if message.attempts >= max {
                db.mark_mail_failed(message.id, UNOPENED, None).await?;
                log::error!(mail_id = message.id; "mail dead after {max} attempts: {UNOPENED}");
            } else {
                // Its claim runs out and another instance, or this one with the right key, may take it.
                db.note_mail_error(message.id, UNOPENED).await?;
                log::error!(
                    mail_id = message.id, attempts = message.attempts;
                    "mail not sent: {UNOPENED}; tried again after its lease"
                );
            }
            return Ok(());
        };
        match self.inner.mailer.send(&mail).await {
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
                    db.mark_mail_failed(message.id, &reason, Some(self.db.now() + delay))
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

/// Why a message whose bodies do not open is given up.
const UNOPENED: &str =
    "its bodies cannot be opened: sealed under another MFA_ENCRYPTION_KEY, or altered";

/// The outbox's sealer: its own key, derived from the configured key material.
pub(crate) fn mail_sealer(key_material: &[u8]) -> Result<Sealer, SealError> {
    Sealer::derive(
        key_material,
        b"securecrud-mail",
        b"outbox body encryption v1",
    )
}

/// What one body of a message is bound to: which body, and the message's readable fields.
fn body_context(part: &str, to: &str, subject: &str) -> Vec<u8> {
    [part, to, subject].join("\n").into_bytes()
}

fn seal_mail(sealer: &Sealer, mail: &Mail) -> Result<SealedMail, SealError> {
    Ok(SealedMail {
        sealed_text: sealer.seal(
            mail.text.as_bytes(),
            &body_context("text", &mail.to, &mail.subject),
        )?,
        sealed_html: sealer.seal(
            mail.html.as_bytes(),
            &body_context("html", &mail.to, &mail.subject),
        )?,
        to: mail.to.clone(),
        subject: mail.subject.clone(),
    })
}

fn open_mail(sealer: &Sealer, sealed: &SealedMail) -> Result<Mail, SealError> {
    let open = |part, body: &str| {
        let bytes = sealer.open(body, &body_context(part, &sealed.to, &sealed.subject))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| SealError::Open)
    };
    Ok(Mail {
        to: sealed.to.clone(),
        subject: sealed.subject.clone(),
        text: open("text", &sealed.sealed_text)?,
        html: open("html", &sealed.sealed_html)?,
    })
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message() -> Mail {
        Mail {
            to: "ada@example.com".to_owned(),
            subject: "Reset your password".to_owned(),
            text: "https://app.example.com/reset-password?token=abc".to_owned(),
            html: "<a href=\"https://app.example.com/reset-password?token=abc\">reset</a>"
                .to_owned(),
        }
    }

    #[test]
    fn a_sealed_message_keeps_no_link_readable_and_opens_as_it_was() {
        let sealer = mail_sealer(b"key material").unwrap();
        let sealed = seal_mail(&sealer, &message()).unwrap();
        assert_eq!(sealed.to, "ada@example.com");
        assert!(!sealed.sealed_text.contains("token") && !sealed.sealed_html.contains("token"));
        assert_eq!(open_mail(&sealer, &sealed).unwrap(), message());
    }

    #[test]
    fn a_sealed_body_opens_only_in_its_own_message_and_under_its_own_key() {
        let sealer = mail_sealer(b"key material").unwrap();
        let sealed = seal_mail(&sealer, &message()).unwrap();
        // A reset link moved to a row addressed to someone else.
        let redirected = SealedMail {
            to: "eve@example.com".to_owned(),
            ..sealed.clone()
        };
        assert_eq!(open_mail(&sealer, &redirected), Err(SealError::Open));
        let swapped = SealedMail {
            sealed_text: sealed.sealed_html.clone(),
            ..sealed.clone()
        };
        assert_eq!(open_mail(&sealer, &swapped), Err(SealError::Open));
        let other_key = mail_sealer(b"other key material").unwrap();
        assert_eq!(open_mail(&other_key, &sealed), Err(SealError::Open));
        // The TOTP secrets' sealer, on the same material, is another key.
        let totp = securecrud_auth::mfa::SecretSealer::new(b"key material").unwrap();
        assert!(totp.open(&sealed.sealed_text, b"").is_err());
    }

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let base = Duration::seconds(30);
        assert_eq!(retry_delay(base, 1), Duration::seconds(30));
        assert_eq!(retry_delay(base, 2), Duration::seconds(60));
        assert_eq!(retry_delay(base, 4), Duration::seconds(240));
        assert_eq!(retry_delay(base, 20), Duration::hours(1));
    }
}
