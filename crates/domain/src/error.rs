//! Validation errors: one entry per invalid field, all of them collected before the request is refused.

use std::fmt;

/// Why one value was refused, without naming the field (the caller knows which field it parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl Invalid {
    /// A refusal with the given human-readable message, e.g. `"must be at least 8 characters"`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// One invalid field of a request and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every invalid or missing field of one request. Never empty when returned as an error.
///
/// At most [`ValidationErrors::MAX_LISTED`] entries are kept (a body of thousands of bad keys costs no more
/// than that to report); [`ValidationErrors::len`] counts them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
    total: usize,
}

impl ValidationErrors {
    /// An error list with a single entry.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.push(field, message);
        errors
    }

    /// The most entries kept; further ones are only counted.
    pub const MAX_LISTED: usize = 50;

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.total += 1;
        if self.errors.len() < Self::MAX_LISTED {
            self.errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
    }

    /// Records `result`'s error under `field` and returns its value, if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Invalid>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Invalid(message)) => {
                self.push(field, message);
                None
            }
        }
    }

    /// Parses a required field: a missing value is recorded as `is required`.
    pub fn required<T>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        match raw {
            Some(raw) => self.check(field, parse(raw)),
            None => {
                self.push(field, "is required");
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many fields were refused, listed or not.
    pub fn len(&self) -> usize {
        self.total
    }

    /// The refused fields on one line, `field: message; field: message` (for a command line).
    pub fn summary(&self) -> String {
        self.errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The first [`ValidationErrors::MAX_LISTED`] refused fields.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// `Ok(value)` when nothing was recorded, else `Err(self)`.
    ///
    /// # Errors
    /// Returns `self` when at least one field was invalid.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Self> {
        if self.is_empty()
            && let Some(value) = value()
        {
            return Ok(value);
        }
        Err(self)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.total {
            1 => write!(f, "1 field is invalid"),
            n if n > self.errors.len() => write!(
                f,
                "{n} fields are invalid (the first {} are listed)",
                self.errors.len()
            ),
            n => write!(f, "{n} fields are invalid"),
        }
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_of_errors_are_counted_but_only_fifty_listed() {
        let mut errors = ValidationErrors::default();
        for i in 0..5_000 {
            errors.push(format!("k{i}"), "is not a known field");
        }
        assert_eq!(errors.len(), 5_000);
        assert_eq!(errors.errors().len(), ValidationErrors::MAX_LISTED);
        assert_eq!(
            errors.to_string(),
            "5000 fields are invalid (the first 50 are listed)"
        );
    }
}
