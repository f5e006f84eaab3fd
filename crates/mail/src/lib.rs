//! SecureCRUD outgoing mail, independent of the database and of HTTP.
//!
//! - [`Mailer`]: sends one [`Mail`] (plain text and HTML alternatives). [`SmtpMailer`] speaks SMTP through
//!   `lettre` (`smtps://` for TLS, `smtp://…?tls=required` for STARTTLS, plain `smtp://` for a local relay);
//!   [`FileMailer`] writes `.eml` files for development.
//! - [`templates`]: the wording of every message SecureCRUD sends.
//! - [`CircuitBreaker`]: stops calling a mail server that keeps failing and probes it again after a
//!   cool-down, logging every state change.
//!
//! Delivery guarantees (outbox, retries) are the service crate's job; a mailer only tries once.

mod breaker;
pub mod templates;

pub use breaker::{Admission, CircuitBreaker};

use std::{fmt, path::PathBuf, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Body, Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType},
    },
};

pub use securecrud_domain::Mail;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message itself cannot be sent (a bad address): retrying will not help.
    #[error("the message is invalid: {0}")]
    Invalid(String),
    /// The server refused or could not be reached: worth retrying.
    #[error("delivery failed: {0}")]
    Delivery(String),
}

/// Sends mail. Implementations try once; retries belong to the caller.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + fmt::Debug {
    /// # Errors
    /// [`MailError::Invalid`] for a message that can never be sent, [`MailError::Delivery`] otherwise.
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// The sender address, e.g. `SecureCRUD <no-reply@example.com>`.
///
/// # Errors
/// If `from` is not a mailbox.
pub fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse()
        .map_err(|err| MailError::Invalid(format!("MAIL_FROM: {err}")))
}

fn message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|err| MailError::Invalid(format!("recipient: {err}")))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(None)
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(readable_body(&mail.text)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(readable_body(&mail.html)),
                ),
        )
        .map_err(|err| MailError::Invalid(err.to_string()))
}

/// The longest line 7bit allows (RFC 5322 §2.1.1), without its CRLF.
const MAX_7BIT_LINE: usize = 998;

/// The text as it is (7bit) when that is valid: ASCII without NUL and no line over 998 characters, so links
/// stay whole and can be copied from the raw message (`lettre` itself picks quoted-printable for any line over
/// 76 characters, which splits links). Anything else gets `lettre`'s choice (quoted-printable or base64).
fn readable_body(text: &str) -> Body {
    let seven_bit = text.bytes().all(|b| b.is_ascii() && b != 0 && b != b'\r')
        && text.lines().all(|line| line.len() <= MAX_7BIT_LINE);
    if seven_bit {
        let crlf = text.replace('\n', "\r\n");
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text.to_owned())
    }
}

/// SMTP through `lettre`, configured by a URL (`SMTP_URL`).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The URL without credentials, for logs.
    server: String,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// How long one SMTP conversation may take.
    const TIMEOUT: Duration = Duration::from_secs(10);

    /// `url` as `lettre` reads it: `smtps://user:pass@host:465`, `smtp://host:587?tls=required`,
    /// `smtp://127.0.0.1:2525` (unencrypted, for a local relay).
    ///
    /// # Errors
    /// If the URL is not an SMTP URL.
    pub fn from_url(url: &str, from: Mailbox) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| MailError::Invalid(format!("SMTP_URL: {err}")))?
            .timeout(Some(Self::TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from,
            server: redact(url),
        })
    }
}

/// `scheme://host:port…` of an SMTP URL, without user and password.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => "(unparseable SMTP_URL)".to_owned(),
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(&self.from, mail)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|err| {
                if err.is_permanent() {
                    MailError::Invalid(err.to_string())
                } else {
                    MailError::Delivery(err.to_string())
                }
            })
    }
}

/// Writes each message as an `.eml` file (RFC 5322, openable by any mail client) into a folder.
#[derive(Debug)]
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    pub fn new(dir: impl Into<PathBuf>, from: Mailbox) -> Self {
        Self {
            dir: dir.into(),
            from,
        }
    }
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let bytes = message(&self.from, mail)?.formatted();
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|err| MailError::Delivery(format!("{}: {err}", self.dir.display())))?;
        let name = uuid::Uuid::now_v7().simple();
        let path = self.dir.join(format!("{name}.eml"));
        // Written under a hidden name and renamed, so that whoever reads the folder (a mail viewer, a test)
        // never sees half a message.
        let partial = self.dir.join(format!(".{name}.eml.partial"));
        let delivered = async {
            tokio::fs::write(&partial, bytes).await?;
            tokio::fs::rename(&partial, &path).await
        };
        if let Err(err) = delivered.await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(MailError::Delivery(format!("{}: {err}", path.display())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            to: "ada@example.com".to_owned(),
            subject: "Verify your email".to_owned(),
            text: "Open https://app.example.com/verify-email?token=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5".to_owned(),
            html: "<p><a href=\"https://app.example.com/verify-email?token=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5\">Verify</a></p>".to_owned(),
        }
    }

    #[tokio::test]
    async fn the_file_mailer_writes_one_eml_with_both_alternatives() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(
            dir.path().join("mail"),
            parse_from("App <app@example.com>").unwrap(),
        );
        mailer.send(&mail()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let eml = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(eml.contains("To: ada@example.com"));
        assert!(eml.contains("Subject: Verify your email"));
        assert!(eml.contains("text/plain") && eml.contains("text/html"));
        // Links stay whole in the raw file (no quoted-printable line breaks or `=3D`).
        assert!(eml.contains("https://app.example.com/verify-email?token=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"), "{eml}");
        assert!(eml.contains("Content-Transfer-Encoding: 7bit"));
        assert!(eml.contains("Message-ID: <"));
    }

    #[test]
    fn only_valid_7bit_text_is_sent_as_is() {
        assert_eq!(
            readable_body("a long line ".repeat(20).as_str()).encoding(),
            ContentTransferEncoding::SevenBit
        );
        assert_ne!(
            readable_body("Grüße").encoding(),
            ContentTransferEncoding::SevenBit
        );
        assert_ne!(
            readable_body(&"x".repeat(MAX_7BIT_LINE + 1)).encoding(),
            ContentTransferEncoding::SevenBit
        );
        let body = readable_body("one\ntwo");
        assert_eq!(body.as_ref(), b"one\r\ntwo");
    }

    #[tokio::test]
    async fn a_bad_recipient_is_invalid_not_a_delivery_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path(), parse_from("app@example.com").unwrap());
        let bad = Mail {
            to: "not an address".to_owned(),
            ..mail()
        };
        assert!(matches!(
            mailer.send(&bad).await,
            Err(MailError::Invalid(_))
        ));
    }

    #[test]
    fn smtp_urls_lose_their_credentials_in_logs() {
        assert_eq!(
            redact("smtps://user:secret@mail.example.com:465"),
            "smtps://mail.example.com:465"
        );
        assert_eq!(redact("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
        let mailer = SmtpMailer::from_url(
            "smtp://u:p@127.0.0.1:2525",
            parse_from("a@example.com").unwrap(),
        )
        .unwrap();
        assert!(!format!("{mailer:?}").contains(":p@"));
    }
}
