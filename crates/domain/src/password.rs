//! Passwords. A [`Password`] is a new password that passed the contract's rules; a [`LoginPassword`] is
//! whatever a client typed at login, checked only for bcrypt's length limit. Neither prints its content.

use std::{collections::HashSet, fmt, sync::LazyLock};

use secrecy::{ExposeSecret, SecretString};

use crate::Invalid;

pub const PASSWORD_MIN_CHARS: usize = 8;
/// bcrypt reads at most 72 bytes; longer passwords are refused, never truncated.
pub const PASSWORD_MAX_BYTES: usize = 72;

/// The 19,646 most common passwords (Django's `common-passwords.txt`, from Royce Williams' list), lower-case.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| line.chars().count() >= PASSWORD_MIN_CHARS)
        .collect()
});

/// Whether `candidate` (compared lower-cased) is on the bundled common-password list.
pub fn is_common(candidate: &str) -> bool {
    COMMON_PASSWORDS.contains(candidate.to_lowercase().as_str())
}

/// A new password that passed every rule: ≥ 8 characters, ≤ 72 bytes, not equal to one of the account's
/// identities (username, email; case-insensitive), not a common password.
pub struct Password(SecretString);

impl Password {
    /// # Errors
    /// Refuses passwords that break a rule; the message never contains the password.
    pub fn parse(raw: &str, identities: &[&str]) -> Result<Self, Invalid> {
        if raw.chars().count() < PASSWORD_MIN_CHARS {
            return Err(Invalid::new(format!(
                "must be at least {PASSWORD_MIN_CHARS} characters"
            )));
        }
        if raw.len() > PASSWORD_MAX_BYTES {
            return Err(Invalid::new(format!(
                "must be at most {PASSWORD_MAX_BYTES} bytes"
            )));
        }
        let lowered = raw.to_lowercase();
        if identities
            .iter()
            .any(|identity| identity.to_lowercase() == lowered)
        {
            return Err(Invalid::new(
                "must not be the same as the username or email",
            ));
        }
        if is_common(raw) {
            return Err(Invalid::new("is too common"));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A password as typed at login. Not checked against the rules (they may have changed since the account was
/// made); only bcrypt's 72-byte limit matters, and [`LoginPassword::fits_bcrypt`] tells whether it holds.
pub struct LoginPassword(SecretString);

impl LoginPassword {
    pub fn new(raw: &str) -> Self {
        Self(SecretString::from(raw))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether bcrypt can verify this password without truncating it.
    pub fn fits_bcrypt(&self) -> bool {
        self.expose().len() <= PASSWORD_MAX_BYTES
    }
}

impl fmt::Debug for LoginPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginPassword([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_the_contract() {
        let ids = ["ada_l", "ada@example.com"];
        let cases: &[(&str, bool, &str)] = &[
            ("correct horse battery", true, "a long passphrase"),
            ("Tr0ub4dor&3", true, "a mixed password"),
            ("short1!", false, "7 characters is too short"),
            (
                "éééééééé",
                true,
                "8 characters counted as characters, not bytes",
            ),
            (&"a1".repeat(36), true, "72 bytes is the maximum"),
            (
                &"a1".repeat(36).replacen('a', "é", 1),
                false,
                "73 bytes is too long",
            ),
            ("password", false, "a common password"),
            (
                "PassWord",
                false,
                "common passwords compare case-insensitively",
            ),
            (
                "ADA@EXAMPLE.COM",
                false,
                "equal to the email, whatever the case",
            ),
            ("Ada_L123x", true, "containing the username is fine"),
        ];
        for (raw, ok, why) in cases {
            assert_eq!(Password::parse(raw, &ids).is_ok(), *ok, "{why}: {raw:?}");
        }
    }

    #[test]
    fn a_password_equal_to_the_username_is_refused() {
        assert!(Password::parse("ada_lovelace", &["Ada_Lovelace"]).is_err());
    }

    #[test]
    fn the_common_list_holds_at_least_ten_thousand_passwords() {
        let all = include_str!("common-passwords.txt").lines().count();
        assert!(all >= 10_000, "only {all} passwords bundled");
        assert!(is_common("iloveyou1"));
    }

    #[test]
    fn debug_never_prints_the_password() {
        let password = Password::parse("correct horse battery", &[]).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        assert!(!format!("{:?}", LoginPassword::new("hunter22")).contains("hunter"));
    }
}
