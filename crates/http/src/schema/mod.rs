//! Field types that carry their own OpenAPI rules, so that the document says exactly what the server accepts.
//!
//! A request DTO is built from these wrappers; each rule is declared once, here beside the wire type that
//! enforces it, and read off the domain type's constants:
//! - [`Text<R>`]: a string (or, in a query, any scalar) whose JSON Schema is `R::schema()` ([`Rule`]). It
//!   refuses NUL characters wherever it is deserialised (JSON, form or query), so a NUL is a `422` on that
//!   field, never a database error.
//! - [`Required<T>`], [`Optional<T>`] and [`Nullable<T>`]: presence. A required field may be missing at
//!   deserialisation (so that validation can list every missing field at once) but is `required` in the
//!   document; an optional one may be left out but not be `null`; a nullable one may be `null` too.
//! - [`OrNull<T>`]: a response field that may be `null`.
//!
//! paperclip's schema model (OpenAPI 2) has no `minLength`, `maxLength`, `pattern`, `nullable`, and its
//! conversion to OpenAPI 3 drops `minimum`/`maximum`. So a wrapper puts its JSON Schema keywords into the
//! one free-form slot paperclip carries through, `example`, under [`RULES_KEY`]; [`apply_rules`] (called by
//! the document's one post-processing step) moves them into place. Query parameters are built from the same
//! keywords by [`query_parameters`].

use std::{fmt, marker::PhantomData};

use paperclip::v2::{
    models::{DataType, DefaultSchemaRaw},
    schema::Apiv2Schema,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use serde_json::{Value, json};

/// The key, inside a schema's `example`, of the JSON Schema keywords that [`apply_rules`] moves into it.
pub const RULES_KEY: &str = "x-securecrud-rules";

/// What the server refuses in every text: the NUL character.
const NO_NUL: &str = "^[^\\x00]*$";

/// The characters Rust's `str::trim` removes (Unicode `White_Space`), as a regex class body, so that a
/// "non-blank after trimming" pattern means exactly what the server checks.
const WHITESPACE: &str =
    "\\t\\n\\x0B\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";

/// The JSON Schema of a wire value: `type` and its constraints, from the domain type's own constants.
pub trait Rule {
    fn schema() -> Value;
}

/// A pattern for text that is 1 to `max` characters long after trimming and holds no NUL.
pub fn trimmed_pattern(max: usize) -> String {
    let ws = WHITESPACE;
    format!(
        "^[{ws}]*[^{ws}\\x00](?:[^\\x00]{{0,{inner}}}[^{ws}\\x00])?[{ws}]*$",
        inner = max.saturating_sub(2)
    )
}

/// The schema of a string with an optional pattern; without one, only NUL is refused.
pub fn string(min: Option<usize>, max: Option<usize>, pattern: Option<&str>) -> Value {
    let mut schema = json!({ "type": "string", "pattern": pattern.unwrap_or(NO_NUL) });
    if let Some(min) = min {
        schema["minLength"] = json!(min);
    }
    if let Some(max) = max {
        schema["maxLength"] = json!(max);
    }
    schema
}

/// The schema of one of `values`.
pub fn one_of(values: &[&str]) -> Value {
    json!({ "type": "string", "enum": values })
}

/// A text field whose rules are `R`'s. Holds the raw text; the domain type parses it.
pub struct Text<R>(String, PhantomData<fn() -> R>);

impl<R> Text<R> {
    /// A text for a response (responses are not parsed, so their values already hold the rules).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into(), PhantomData)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<R> fmt::Debug for Text<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<'de, R> Deserialize<'de> for Text<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.contains('\0') {
            return Err(de::Error::custom("must not contain NUL characters"));
        }
        Ok(Self(text, PhantomData))
    }
}

impl<R> Serialize for Text<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<R: Rule> Apiv2Schema for Text<R> {
    fn raw_schema() -> DefaultSchemaRaw {
        ruled(R::schema())
    }
}

/// A JSON object carried as it is: WebAuthn's JSON forms (`publicKey` options, a `credential`), whose
/// shape the WebAuthn library checks and the browser defines. Anything but an object is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonObject(pub serde_json::Map<String, Value>);

impl JsonObject {
    /// `value` when it is an object, else an empty one.
    pub fn of(value: Value) -> Self {
        match value {
            Value::Object(map) => Self(map),
            _ => Self::default(),
        }
    }
}

impl Apiv2Schema for JsonObject {
    fn raw_schema() -> DefaultSchemaRaw {
        DefaultSchemaRaw {
            data_type: Some(DataType::Object),
            ..DefaultSchemaRaw::default()
        }
    }
}

/// The paperclip type of a rule's JSON Schema `type` (string unless integer or boolean).
fn data_type(rules: &Value) -> DataType {
    match rules.get("type").and_then(Value::as_str) {
        Some("integer") => DataType::Integer,
        Some("boolean") => DataType::Boolean,
        _ => DataType::String,
    }
}

/// A schema whose JSON Schema keywords `rules` ride in `example` until [`apply_rules`].
fn ruled(rules: Value) -> DefaultSchemaRaw {
    DefaultSchemaRaw {
        data_type: Some(data_type(&rules)),
        example: Some(json!({ RULES_KEY: rules })),
        ..DefaultSchemaRaw::default()
    }
}

/// Adds `rules` to `schema`'s (merging with any already there).
fn add_rules(schema: &mut DefaultSchemaRaw, rules: Value) {
    let mut merged = schema
        .example
        .as_ref()
        .and_then(|example| example.get(RULES_KEY))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Value::Object(rules) = rules {
        merged.extend(rules);
    }
    schema.example = Some(json!({ RULES_KEY: merged }));
}

/// A field the contract requires. It deserialises when missing (as `None`, with the DTO's
/// `#[serde(default)]`) so that validation reports every missing field together, but the document marks it
/// required, and `null` is refused as the wrong type.
pub struct Required<T>(pub Option<T>);

/// A field that may be left out, but not sent as `null`.
pub struct Optional<T>(pub Option<T>);

/// A field that may be left out, sent as `null` (to clear it), or given a value.
#[derive(Default)]
pub enum Nullable<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

macro_rules! presence {
    ($($wrapper:ident => $required:expr),+) => {$(
        impl<T> Default for $wrapper<T> {
            fn default() -> Self {
                Self(None)
            }
        }

        impl<T: fmt::Debug> fmt::Debug for $wrapper<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl<'de, T: Deserialize<'de>> Deserialize<'de> for $wrapper<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                T::deserialize(deserializer).map(|value| Self(Some(value)))
            }
        }

        impl<T: Apiv2Schema> Apiv2Schema for $wrapper<T> {
            fn required() -> bool {
                $required
            }

            fn raw_schema() -> DefaultSchemaRaw {
                T::raw_schema()
            }
        }

        impl<T> $wrapper<T> {
            pub fn into_option(self) -> Option<T> {
                self.0
            }

            pub fn as_ref(&self) -> Option<&T> {
                self.0.as_ref()
            }
        }
    )+};
}

presence!(Required => true, Optional => false);

impl<R> Required<Text<R>> {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_ref().map(Text::as_str)
    }
}

impl<R> Optional<Text<R>> {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_ref().map(Text::as_str)
    }
}

impl<T: fmt::Debug> fmt::Debug for Nullable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absent => f.write_str("Absent"),
            Self::Null => f.write_str("Null"),
            Self::Value(value) => f.debug_tuple("Value").field(value).finish(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Self::Value(value),
            None => Self::Null,
        })
    }
}

/// `T`'s schema, `null` allowed.
fn nullable<T: Apiv2Schema>() -> DefaultSchemaRaw {
    let mut schema = T::raw_schema();
    add_rules(&mut schema, json!({ "nullable": true }));
    schema
}

impl<T: Apiv2Schema> Apiv2Schema for Nullable<T> {
    fn required() -> bool {
        false
    }

    fn raw_schema() -> DefaultSchemaRaw {
        nullable::<T>()
    }
}

/// A response field that may be `null`.
#[derive(Debug)]
pub struct OrNull<T>(pub Option<T>);

impl<T: Serialize> Serialize for OrNull<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<T: Apiv2Schema> Apiv2Schema for OrNull<T> {
    fn required() -> bool {
        true
    }

    fn raw_schema() -> DefaultSchemaRaw {
        nullable::<T>()
    }
}

impl<T> From<Option<T>> for OrNull<T> {
    fn from(value: Option<T>) -> Self {
        Self(value)
    }
}

mod document;
mod rules;

pub use document::{RequestBody, apply_rules, move_form_bodies, query_parameters};
pub use rules::*;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use securecrud_domain::{TaskTitle, Username};

    use super::*;

    /// Whether `text` satisfies the string keywords of `schema` (as a JSON Schema validator would).
    fn satisfies(schema: &Value, text: &str) -> bool {
        let chars = text.chars().count();
        let min = schema["minLength"].as_u64().unwrap_or(0);
        let max = schema["maxLength"].as_u64().unwrap_or(u64::MAX);
        let pattern = schema["pattern"]
            .as_str()
            .map(|p| regex::Regex::new(p).unwrap());
        (min..=max).contains(&(chars as u64)) && pattern.is_none_or(|p| p.is_match(text))
    }

    /// Text that mixes letters, the whitespace `trim` removes and the whitespace it keeps.
    fn tricky_text(max: usize) -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("\u{3000}".to_owned()),
            Just("\u{85}".to_owned()),
            Just("\u{1c}".to_owned()),
            Just("\u{200b}".to_owned()),
            Just("a".to_owned()),
            Just("é".to_owned()),
            Just("_".to_owned()),
            Just(".".to_owned()),
            Just("\0".to_owned()),
            "[a-zA-Z0-9]{1,40}",
        ];
        proptest::collection::vec(pieces, 0..max).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn the_title_schema_accepts_exactly_what_the_title_parser_accepts(raw in tricky_text(60)) {
            let schema = TaskTitle::schema();
            let parsed = TaskTitle::parse(&raw).is_ok() && !raw.contains('\0');
            prop_assert_eq!(satisfies(&schema, &raw), parsed, "{:?}", raw);
        }

        #[test]
        fn the_username_schema_accepts_exactly_what_the_username_parser_accepts(raw in tricky_text(12)) {
            let schema = Username::schema();
            prop_assert_eq!(satisfies(&schema, &raw), Username::parse(&raw).is_ok(), "{:?}", raw);
        }

        #[test]
        fn the_login_schema_accepts_exactly_non_blank_logins_up_to_254_characters(raw in tricky_text(80)) {
            let schema = LoginId::schema();
            let trimmed = raw.trim();
            let accepted = !trimmed.is_empty() && trimmed.chars().count() <= MAX_LOGIN_CHARS && !raw.contains('\0');
            prop_assert_eq!(satisfies(&schema, &raw), accepted, "{:?}", raw);
        }
    }

    #[test]
    fn the_title_schema_counts_200_characters_after_trimming() {
        let schema = TaskTitle::schema();
        let longest = format!("  {}  ", "é".repeat(200));
        assert!(satisfies(&schema, &longest));
        assert!(!satisfies(&schema, &"é".repeat(201)));
        assert!(!satisfies(&schema, " \u{3000} "));
    }

    #[test]
    fn carried_rules_move_into_their_schema_and_leave_no_carrier() {
        let mut doc = json!({"components": {"schemas": {"X": {"properties": {
            "name": { "type": "string", "description": "d", "example": { RULES_KEY: { "minLength": 3, "nullable": true } } },
            "other": { "type": "string", "example": "kept" }
        }}}}});
        apply_rules(&mut doc);
        let properties = &doc["components"]["schemas"]["X"]["properties"];
        assert_eq!(
            properties["name"],
            json!({"type": "string", "description": "d", "minLength": 3, "nullable": true})
        );
        assert_eq!(
            properties["other"]["example"], "kept",
            "ordinary examples stay"
        );
    }
}
