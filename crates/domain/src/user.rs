//! Users: `Username`, `Email`, `Role` and the `User` / `NewUser` structs.

use std::{fmt, str::FromStr};

use email_address::{EmailAddress, Options};
use time::OffsetDateTime;

use crate::{Invalid, Password, UserId, ValidationErrors};

/// 3–32 characters of `[A-Za-z0-9_.-]`, stored as given, unique case-insensitively (see [`Username::normalized`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 32;

    /// # Errors
    /// Refuses anything outside 3–32 characters of `[A-Za-z0-9_.-]`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let len = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) {
            return Err(Invalid::new(format!(
                "must be {}–{} characters",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            )));
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(Invalid::new(
                "may contain only letters A–Z, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form that carries the uniqueness constraint and login look-ups.
    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid email address of at most 254 characters, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    /// # Errors
    /// Refuses addresses that are not valid, have no top-level domain, use a display name or an IP literal,
    /// or are longer than 254 characters.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let too_long = || Invalid::new(format!("must be at most {} characters", Self::MAX_CHARS));
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(too_long());
        }
        // What is stored is what was validated: the lower-cased form is the one checked. (Lower-casing can
        // lengthen a character and change what the parser sees: `İ` becomes `i` and a combining dot, which
        // an address checked before lower-casing would carry into the database, unreadable when read back.)
        let lowered = raw.to_lowercase();
        if lowered.chars().count() > Self::MAX_CHARS {
            return Err(too_long());
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        let address = EmailAddress::parse_with_options(&lowered, options)
            .map_err(|_| Invalid::new("is not a valid email address"))?;
        Ok(Self(address.as_str().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do. Registration always creates [`Role::User`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            _ => Err(Invalid::new("must be 'user' or 'admin'")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored user. Holds no password material: the hash stays in persistence and auth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub email: Email,
    pub role: Role,
    pub email_verified: bool,
    pub is_active: bool,
    /// Whether a login needs a second factor (a TOTP code or a recovery code).
    pub mfa_enabled: bool,
    /// Whether the account has a password: one made by an OpenID Connect provider has none until a
    /// password reset sets one.
    pub has_password: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Which unique value of an account a write collided on (the database's unique index decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictField {
    Username,
    Email,
    /// A passkey's credential id, registered already (by any user).
    Credential,
    /// An identity at an OpenID Connect provider (provider, subject), linked to an account already.
    Identity,
}

/// An admin's change to a user: role and/or active flag; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountChange {
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// Which users an admin lists.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// A case-insensitive substring of the username or email.
    pub q: Option<crate::SearchText>,
    pub role: Option<Role>,
    pub paging: crate::Paging,
}

/// A registration that passed every rule of the contract.
#[derive(Debug)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password: Password,
}

impl NewUser {
    /// Parses all three fields and reports every invalid or missing one.
    ///
    /// # Errors
    /// Lists each field that is missing or breaks its rule.
    pub fn parse(
        username: Option<&str>,
        email: Option<&str>,
        password: Option<&str>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let parsed_username = errors.required("username", username, Username::parse);
        let parsed_email = errors.required("email", email, Email::parse);
        let identities: Vec<&str> = [username, email].into_iter().flatten().collect();
        let password = errors.required("password", password, |raw| {
            Password::parse(raw, &identities)
        });
        errors.finish(|| {
            Some(Self {
                username: parsed_username?,
                email: parsed_email?,
                password: password?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_that_lower_casing_lengthens_past_254_characters_is_refused() {
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(62),
            "c".repeat(61),
            "d".repeat(61)
        );
        let raw = format!("\u{130}{}@{domain}", "a".repeat(62));
        assert_eq!(raw.chars().count(), 254);
        let refused = Email::parse(&raw).unwrap_err();
        assert!(refused.0.contains("at most 254"), "{refused:?}");
    }

    #[test]
    fn an_email_whose_lower_case_is_no_address_is_refused_not_stored() {
        // `İ` lower-cases to `i` and a combining dot above: the stored form must be one `parse` accepts.
        for raw in ["\u{130}da@example.com", "ada@EXAMPLE\u{130}.com"] {
            match Email::parse(raw) {
                Ok(email) => assert_eq!(Email::parse(email.as_str()), Ok(email)),
                Err(invalid) => assert_eq!(invalid.0, "is not a valid email address"),
            }
        }
    }

    #[test]
    fn usernames_follow_the_contract() {
        let cases: &[(&str, bool, &str)] = &[
            ("ada", true, "3 characters is the minimum"),
            ("ab", false, "2 characters is too short"),
            (&"a".repeat(32), true, "32 characters is the maximum"),
            (&"a".repeat(33), false, "33 characters is too long"),
            ("Ada_L.x-1", true, "letters, digits, _ . - are allowed"),
            ("ada l", false, "spaces are not allowed"),
            ("adä", false, "non-ASCII letters are not allowed"),
            ("ada@x", false, "@ is not allowed"),
            ("", false, "empty is refused"),
        ];
        for (raw, ok, why) in cases {
            assert_eq!(Username::parse(raw).is_ok(), *ok, "{why}: {raw:?}");
        }
    }

    #[test]
    fn usernames_keep_their_case_and_normalise_to_lower_case() {
        let name = Username::parse("Ada_L").unwrap();
        assert_eq!(name.as_str(), "Ada_L");
        assert_eq!(name.normalized(), "ada_l");
    }

    #[test]
    fn emails_follow_the_contract() {
        let label = |n: usize| "b".repeat(n);
        let long_local = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(64),
            label(60),
            label(60),
            label(63)
        );
        let too_long = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(64),
            label(61),
            label(60),
            label(63)
        );
        assert_eq!((long_local.len(), too_long.len()), (254, 255));
        let cases: &[(&str, bool, &str)] = &[
            ("ada@example.com", true, "a plain address"),
            ("ada+tag@sub.example.co.uk", true, "tags and sub-domains"),
            ("ada@localhost", false, "a top-level domain is required"),
            ("ada", false, "no @"),
            ("ada@", false, "no domain"),
            ("@example.com", false, "no local part"),
            ("Ada <ada@example.com>", false, "display names are refused"),
            ("ada@[127.0.0.1]", false, "IP literals are refused"),
            (" ada@example.com", false, "surrounding spaces are refused"),
            (&long_local, true, "254 characters is the maximum"),
            (&too_long, false, "255 characters is too long"),
        ];
        for (raw, ok, why) in cases {
            assert_eq!(Email::parse(raw).is_ok(), *ok, "{why}: {raw:?}");
        }
    }

    #[test]
    fn emails_are_lower_cased() {
        assert_eq!(
            Email::parse("Ada@Example.COM").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn new_user_reports_every_invalid_field() {
        let errors = NewUser::parse(Some("a"), Some("nope"), None).unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["username", "email", "password"]);
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::User, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }

    proptest::proptest! {
        #[test]
        fn username_parse_never_panics_and_accepts_only_the_alphabet(raw in "\\PC{0,40}") {
            if let Ok(name) = Username::parse(&raw) {
                proptest::prop_assert!(name.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
                proptest::prop_assert!((3..=32).contains(&name.as_str().len()));
            }
        }

        #[test]
        fn email_parse_never_panics_and_lower_cases(raw in "\\PC{0,60}") {
            if let Ok(email) = Email::parse(&raw) {
                proptest::prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
            }
        }

        /// What is stored parses again to itself (the database's value is read back through `parse`).
        #[test]
        fn a_parsed_email_parses_again_to_itself(
            local in "[a-zA-Z0-9\u{130}\u{212A}\u{1E9E}._%+-]{1,20}",
            domain in "[a-zA-Z0-9\u{130}\u{212A}-]{1,20}",
            tld in "[a-zA-Z]{2,6}",
        ) {
            let raw = format!("{local}@{domain}.{tld}");
            if let Ok(email) = Email::parse(&raw) {
                proptest::prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            }
        }
    }
}
