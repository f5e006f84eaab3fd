//! The messages SecureCRUD sends, one function each: subject, plain-text and HTML bodies (user input in the
//! HTML escaped). The use cases choose the message and fill in the facts; the wording lives here.

use crate::Mail;

/// The verification of `to` for `username`, with the `link` that verifies it, valid `hours` hours.
pub fn verify_email(to: &str, username: &str, link: &str, hours: i64) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Verify your email address".to_owned(),
        text: format!(
            "Hello {username},\n\nplease confirm that this is your email address by opening this link:\n\n\
             {link}\n\nThe link works once and expires in {hours} hours. If you did not sign up, ignore \
             this message.\n"
        ),
        html: format!(
            "<p>Hello {name},</p><p>please confirm that this is your email address:</p>\
             <p><a href=\"{href}\">Verify my email address</a></p>\
             <p>The link works once and expires in {hours} hours. If you did not sign up, ignore this \
             message.</p>",
            name = escape(username),
            href = escape(link),
        ),
    }
}

/// A password reset for `username` at `to`, with the `link` that resets it, valid `minutes` minutes.
pub fn password_reset(to: &str, username: &str, link: &str, minutes: i64) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Reset your password".to_owned(),
        text: format!(
            "Hello {username},\n\nsomeone asked to reset the password of your account. To choose a new one, \
             open this link:\n\n{link}\n\nThe link works once and expires in {minutes} minutes. If it was \
             not you, ignore this message: your password stays as it is.\n"
        ),
        html: format!(
            "<p>Hello {name},</p><p>someone asked to reset the password of your account.</p>\
             <p><a href=\"{href}\">Choose a new password</a></p><p>The link works once and expires in \
             {minutes} minutes. If it was not you, ignore this message: your password stays as it is.</p>",
            name = escape(username),
            href = escape(link),
        ),
    }
}

/// The notice to `old_address` that `username`'s email changed. No link in it: if the change was not
/// theirs, the owner must reach an administrator, since resets now go to the new address.
pub fn email_changed(old_address: &str, username: &str) -> Mail {
    Mail {
        to: old_address.to_owned(),
        subject: "Your email address was changed".to_owned(),
        text: format!(
            "Hello {username},\n\nthe email address of your account was changed from this address to \
             another one. Password reset links now go to the new address, and any reset link sent here no \
             longer works.\n\nIf you did not make this change, contact your administrator at once.\n"
        ),
        html: format!(
            "<p>Hello {name},</p><p>the email address of your account was changed from this address to \
             another one. Password reset links now go to the new address, and any reset link sent here no \
             longer works.</p><p>If you did not make this change, contact your administrator at once.</p>",
            name = escape(username),
        ),
    }
}

/// The notice to `to` that `username`'s two-factor codes are refused after `failures` wrong ones in a row:
/// someone who has the password is trying codes. No link in it: an administrator reopens the account.
pub fn second_factor_locked(to: &str, username: &str, failures: u32) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Two-factor codes locked on your account".to_owned(),
        text: format!(
            "Hello {username},\n\n{failures} wrong two-factor codes in a row were entered for your account, \
             so codes (and recovery codes) are now refused. Whoever entered them knew your password: change \
             it, and ask your administrator to reset your two-factor authentication to sign in again.\n"
        ),
        html: format!(
            "<p>Hello {name},</p><p>{failures} wrong two-factor codes in a row were entered for your \
             account, so codes (and recovery codes) are now refused. Whoever entered them knew your \
             password: change it, and ask your administrator to reset your two-factor authentication to \
             sign in again.</p>",
            name = escape(username),
        ),
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn links_appear_in_both_bodies_and_the_notice_has_none() {
        let reset = password_reset(
            "a@example.com",
            "ada",
            "https://x/reset-password?token=T",
            60,
        );
        assert!(reset.text.contains("token=T") && reset.html.contains("token=T"));
        let notice = email_changed("a@example.com", "ada");
        assert!(!notice.text.contains("http") && !notice.html.contains("href"));
    }
}
