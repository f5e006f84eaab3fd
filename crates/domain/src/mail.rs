//! An email message, as the use cases write it to the outbox and the mailers send it.

use std::fmt;

/// One message to one recipient. Its bodies may carry a live token in a link, so `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A message as the outbox keeps it: the recipient and subject readable, each body sealed with a key from the
/// settings (never in the database), since a body may carry a live token in a link. The service seals a
/// [`Mail`] into this and opens it again to send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedMail {
    pub to: String,
    pub subject: String,
    pub sealed_text: String,
    pub sealed_html: String,
}
