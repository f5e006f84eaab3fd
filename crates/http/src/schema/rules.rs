//! The rules of the contract's values, from the constants of the domain types that parse them: each
//! [`Rule`] is the JSON Schema of one kind of value, declared once here beside its parser's constants.

use securecrud_domain::{
    AuditKind, Email, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, Paging, SearchText, TaskDescription,
    TaskSort, TaskTitle, Username,
};
use serde_json::{Value, json};

use super::{Rule, one_of, string, trimmed_pattern};

/// The characters a username may hold (what [`Username::parse`] accepts).
const USERNAME_PATTERN: &str = "^[A-Za-z0-9_.-]*$";
/// The longest login identifier: the longest email.
pub const MAX_LOGIN_CHARS: usize = Email::MAX_CHARS;

impl Rule for Username {
    fn schema() -> Value {
        string(
            Some(Username::MIN_CHARS),
            Some(Username::MAX_CHARS),
            Some(USERNAME_PATTERN),
        )
    }
}

/// An address with a top-level domain (what [`Email::parse`] requires beyond `format: email`).
const EMAIL_PATTERN: &str = "^[^@\\s\\x00]+@[^@\\s\\x00]+\\.[^@\\s\\x00]+$";

impl Rule for Email {
    fn schema() -> Value {
        json!({ "type": "string", "format": "email", "maxLength": Email::MAX_CHARS,
                "pattern": EMAIL_PATTERN })
    }
}

/// A new password ([`securecrud_domain::Password`]): at least 8 characters and at most 72 bytes of UTF-8
/// (JSON Schema counts characters, so `maxLength` says 72 and the description says bytes), not the username
/// or email, not a common password.
#[derive(Debug)]
pub enum NewPassword {}

impl Rule for NewPassword {
    fn schema() -> Value {
        string(Some(PASSWORD_MIN_CHARS), Some(PASSWORD_MAX_BYTES), None)
    }
}

/// A password as typed to prove who one is: anything non-empty.
#[derive(Debug)]
pub enum CurrentPassword {}

impl Rule for CurrentPassword {
    fn schema() -> Value {
        string(Some(1), None, None)
    }
}

/// A username or an email: 1–254 characters after trimming.
#[derive(Debug)]
pub enum LoginId {}

impl Rule for LoginId {
    fn schema() -> Value {
        string(None, None, Some(&trimmed_pattern(MAX_LOGIN_CHARS)))
    }
}

/// An opaque token (refresh, verification or reset): non-empty; an unknown one is refused by the use case.
#[derive(Debug)]
pub enum OpaqueToken {}

impl Rule for OpaqueToken {
    fn schema() -> Value {
        string(Some(1), None, None)
    }
}

impl Rule for TaskTitle {
    fn schema() -> Value {
        string(None, None, Some(&trimmed_pattern(TaskTitle::MAX_CHARS)))
    }
}

impl Rule for TaskDescription {
    fn schema() -> Value {
        string(None, Some(TaskDescription::MAX_CHARS), None)
    }
}

impl Rule for SearchText {
    fn schema() -> Value {
        string(None, Some(SearchText::MAX_CHARS), None)
    }
}

impl Rule for TaskSort {
    fn schema() -> Value {
        one_of(&TaskSort::ALL)
    }
}

impl Rule for AuditKind {
    fn schema() -> Value {
        let names: Vec<&str> = AuditKind::ALL.iter().map(|kind| kind.as_str()).collect();
        one_of(&names)
    }
}

impl Rule for securecrud_domain::Role {
    fn schema() -> Value {
        one_of(&["user", "admin"])
    }
}

/// `grant_type` of the token endpoint.
#[derive(Debug)]
pub enum GrantType {}

impl Rule for GrantType {
    fn schema() -> Value {
        one_of(&["password", "refresh_token"])
    }
}

/// `session` of a login: how the session is handed to the client.
#[derive(Debug)]
pub enum SessionModeRule {}

impl Rule for SessionModeRule {
    fn schema() -> Value {
        one_of(&["token", "cookie"])
    }
}

/// The longest second factor accepted (spaces and dashes included).
pub const MFA_CODE_MAX_CHARS: usize = 64;

/// A second factor: a 6-digit TOTP code, or a recovery code (`xxxx-xxxx-xxxx-xxxx`).
#[derive(Debug)]
pub enum MfaCodeRule {}

impl Rule for MfaCodeRule {
    fn schema() -> Value {
        string(
            Some(6),
            Some(MFA_CODE_MAX_CHARS),
            Some("^(?: *(?:[0-9] *){6}|[ -]*(?:[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z][ -]*){16})$"),
        )
    }
}

/// `token_type_hint` of the revocation endpoint (RFC 7009 §2.1): any string; the server searches every token
/// type whatever it says (RFC 7009 §2.1 lets clients send hints from an extensible registry).
#[derive(Debug)]
pub enum TokenTypeHint {}

impl Rule for TokenTypeHint {
    fn schema() -> Value {
        string(None, None, None)
    }
}

/// `limit`: an integer from 1 to 100.
#[derive(Debug)]
pub enum Limit {}

impl Rule for Limit {
    fn schema() -> Value {
        json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": Paging::MAX_LIMIT,
                "default": Paging::DEFAULT_LIMIT })
    }
}

/// `offset`: a non-negative integer (up to `i64::MAX`).
#[derive(Debug)]
pub enum Offset {}

impl Rule for Offset {
    fn schema() -> Value {
        json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX, "default": 0 })
    }
}

/// An audit cursor: a positive integer that the previous page gave.
#[derive(Debug)]
pub enum Cursor {}

impl Rule for Cursor {
    fn schema() -> Value {
        json!({ "type": "integer", "format": "int64", "minimum": 1, "maximum": i64::MAX })
    }
}

/// A revocation-feed cursor: the `id` of an event the subscriber saw (0: from the oldest kept).
#[derive(Debug)]
pub enum FeedCursor {}

impl Rule for FeedCursor {
    fn schema() -> Value {
        json!({ "type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX })
    }
}

/// `true` or `false`.
#[derive(Debug)]
pub enum Flag {}

impl Rule for Flag {
    fn schema() -> Value {
        json!({ "type": "boolean" })
    }
}

/// A UUID in its hyphenated form (`UserId`).
#[derive(Debug)]
pub enum UuidText {}

impl Rule for UuidText {
    fn schema() -> Value {
        json!({ "type": "string", "format": "uuid" })
    }
}

/// An RFC 3339 timestamp.
#[derive(Debug)]
pub enum DateTime {}

impl Rule for DateTime {
    fn schema() -> Value {
        json!({ "type": "string", "format": "date-time" })
    }
}

/// A passkey's name: 1–64 characters after trimming.
#[derive(Debug)]
pub enum PasskeyName {}

impl Rule for PasskeyName {
    fn schema() -> Value {
        string(
            None,
            None,
            Some(&trimmed_pattern(crate::dto::PASSKEY_NAME_MAX_CHARS)),
        )
    }
}
