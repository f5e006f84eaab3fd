//! Tasks: titles, descriptions, and the query types of task lists.

use std::{fmt, str::FromStr};

use time::OffsetDateTime;

use crate::{Invalid, UserId, ValidationErrors};

/// A task id: a positive database integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(i64);

impl TaskId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Text that PostgreSQL can store: no NUL characters.
fn no_nul(raw: &str) -> Result<(), Invalid> {
    if raw.contains('\0') {
        return Err(Invalid::new("must not contain NUL characters"));
    }
    Ok(())
}

/// A task title: 1–200 characters after trimming, counted as characters (not bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// Refuses titles that are empty after trimming, longer than 200 characters, or contain NUL.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::checked(raw).map(|title| Self(title.to_owned()))
    }

    /// As [`parse`](Self::parse), keeping `raw`'s allocation when it needs no trimming (a stored title does
    /// not).
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn parse_owned(raw: String) -> Result<Self, Invalid> {
        let trimmed = Self::checked(&raw)?;
        if trimmed.len() == raw.len() {
            Ok(Self(raw))
        } else {
            Ok(Self(trimmed.to_owned()))
        }
    }

    /// `raw` trimmed, if that is a valid title.
    fn checked(raw: &str) -> Result<&str, Invalid> {
        let trimmed = raw.trim();
        no_nul(trimmed)?;
        match trimmed.chars().count() {
            0 => Err(Invalid::new("must not be empty")),
            n if n > Self::MAX_CHARS => Err(Invalid::new(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            ))),
            _ => Ok(trimmed),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A task description: at most 1000 characters, kept as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDescription(String);

impl TaskDescription {
    pub const MAX_CHARS: usize = 1000;

    /// # Errors
    /// Refuses descriptions longer than 1000 characters or containing NUL.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::parse_owned(raw.to_owned())
    }

    /// As [`parse`](Self::parse), keeping `raw`'s allocation.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn parse_owned(raw: String) -> Result<Self, Invalid> {
        no_nul(&raw)?;
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    pub owner_id: UserId,
    pub title: TaskTitle,
    pub description: Option<TaskDescription>,
    pub completed: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A task to create.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: TaskTitle,
    pub description: Option<TaskDescription>,
    pub completed: bool,
}

/// A task with given times, for seeding.
#[derive(Debug, Clone)]
pub struct ImportedTask {
    pub owner: UserId,
    pub task: NewTask,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A partial update: `None` keeps a field; `description: Some(None)` clears the description.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<TaskTitle>,
    pub description: Option<Option<TaskDescription>>,
    pub completed: Option<bool>,
}

/// The order of a task list: a field, ascending or (with `-`) descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskSort {
    CreatedAt,
    #[default]
    CreatedAtDesc,
    UpdatedAt,
    UpdatedAtDesc,
    Title,
    TitleDesc,
}

impl TaskSort {
    pub const ALL: [&'static str; 6] = [
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "title",
        "-title",
    ];
}

impl FromStr for TaskSort {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "created_at" => Self::CreatedAt,
            "-created_at" => Self::CreatedAtDesc,
            "updated_at" => Self::UpdatedAt,
            "-updated_at" => Self::UpdatedAtDesc,
            "title" => Self::Title,
            "-title" => Self::TitleDesc,
            _ => {
                return Err(Invalid::new(format!(
                    "must be one of {}",
                    Self::ALL.join(", ")
                )));
            }
        })
    }
}

/// A search text: matched as a literal, case-insensitive substring (`%`, `_` and `\` are not wildcards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub const MAX_CHARS: usize = 200;

    /// # Errors
    /// Refuses texts longer than 200 characters or containing NUL.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        no_nul(raw)?;
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The normalised form that search matches on: Unicode lower case. Stored beside titles and descriptions
/// so that SQLite and PostgreSQL match case-insensitively in the same way, non-ASCII letters included.
pub fn search_key(text: &str) -> String {
    text.to_lowercase()
}

/// Paging of a list: `limit` 1–100 (default 20), `offset` ≥ 0 (at most `i64::MAX`). Only
/// [`Paging::parse`] and the default make one, so its bounds always hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    limit: u64,
    offset: u64,
}

impl Paging {
    pub const DEFAULT_LIMIT: u64 = 20;
    pub const MAX_LIMIT: u64 = 100;

    /// The paging of `limit` and `offset` as given (`None`: the default), each bad one recorded in
    /// `errors` under its name (the default stands in for it).
    pub fn parse(errors: &mut ValidationErrors, limit: Option<&str>, offset: Option<&str>) -> Self {
        let defaults = Self::default();
        Self {
            limit: limit
                .and_then(|raw| errors.check("limit", Self::parse_limit(raw)))
                .unwrap_or(defaults.limit),
            offset: offset
                .and_then(|raw| errors.check("offset", Self::parse_offset(raw)))
                .unwrap_or(defaults.offset),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// # Errors
    /// Refuses a limit outside 1–100.
    pub fn parse_limit(raw: &str) -> Result<u64, Invalid> {
        raw.parse::<u64>()
            .ok()
            .filter(|n| (1..=Self::MAX_LIMIT).contains(n))
            .ok_or_else(|| Invalid::new("must be an integer from 1 to 100"))
    }

    /// # Errors
    /// Refuses anything but a non-negative integer (up to `i64::MAX`).
    pub fn parse_offset(raw: &str) -> Result<u64, Invalid> {
        raw.parse::<u64>()
            .ok()
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or_else(|| Invalid::new("must be a non-negative integer"))
    }
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            limit: Self::DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only this owner's tasks (always set for a user's own list).
    pub owner: Option<UserId>,
    pub completed: Option<bool>,
    pub q: Option<SearchText>,
    pub sort: TaskSort,
    pub paging: Paging,
}

/// One page of a list and the number of items matching in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// `true` or `false`, nothing else.
///
/// # Errors
/// Refuses any other text.
pub fn parse_bool(raw: &str) -> Result<bool, Invalid> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Invalid::new("must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_counted_in_characters() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("  Buy milk  ", Some("Buy milk"), "trimmed"),
            ("", None, "empty"),
            ("   \t\n", None, "blank"),
            (
                &"é".repeat(200),
                Some(&"é".repeat(200)),
                "200 two-byte characters fit",
            ),
            (&"a".repeat(201), None, "201 characters"),
            ("a\0b", None, "NUL"),
            (
                "%_\\' OR 1=1 --",
                Some("%_\\' OR 1=1 --"),
                "SQL-ish text is just text",
            ),
        ];
        for (raw, expected, why) in cases {
            let parsed = TaskTitle::parse(raw).ok();
            assert_eq!(parsed.as_ref().map(TaskTitle::as_str), *expected, "{why}");
            let owned = TaskTitle::parse_owned((*raw).to_owned()).ok();
            assert_eq!(owned, parsed, "{why}, parsed from an owned string");
        }
    }

    #[test]
    fn an_owned_title_or_description_keeps_its_allocation_when_it_needs_no_trimming() {
        let raw = String::from("Buy milk");
        let at = raw.as_ptr();
        let title = TaskTitle::parse_owned(raw).unwrap().into_string();
        assert_eq!(title.as_ptr(), at);
        let raw = String::from(" milk and bread ");
        let at = raw.as_ptr();
        let description = TaskDescription::parse_owned(raw).unwrap().into_string();
        assert_eq!(description.as_ptr(), at);
        assert_eq!(description, " milk and bread ");
    }

    #[test]
    fn descriptions_allow_1000_characters() {
        assert!(TaskDescription::parse(&"ü".repeat(1000)).is_ok());
        assert!(TaskDescription::parse(&"a".repeat(1001)).is_err());
        assert!(TaskDescription::parse("").is_ok());
    }

    #[test]
    fn sorts_parse_the_six_values_only() {
        for value in TaskSort::ALL {
            assert!(value.parse::<TaskSort>().is_ok(), "{value}");
        }
        for bad in ["", "id", "+title", "TITLE", "-"] {
            assert!(bad.parse::<TaskSort>().is_err(), "{bad}");
        }
        assert_eq!(TaskSort::default(), TaskSort::CreatedAtDesc);
    }

    #[test]
    fn paging_bounds() {
        assert_eq!(Paging::parse_limit("1"), Ok(1));
        assert_eq!(Paging::parse_limit("100"), Ok(100));
        for bad in ["0", "101", "-1", "x", "", "1.5"] {
            assert!(Paging::parse_limit(bad).is_err(), "{bad}");
        }
        assert_eq!(Paging::parse_offset("0"), Ok(0));
        for bad in ["-1", "x", "9223372036854775808"] {
            assert!(Paging::parse_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_keys_fold_non_ascii_letters() {
        assert_eq!(search_key("ÄRGER Über ÇA"), "ärger über ça");
    }

    proptest::proptest! {
        #[test]
        fn any_title_parses_to_its_trimmed_self_or_a_clear_refusal(raw in "\\PC{0,210}") {
            match TaskTitle::parse(&raw) {
                Ok(title) => {
                    proptest::prop_assert_eq!(title.as_str(), raw.trim());
                    proptest::prop_assert!((1..=200).contains(&title.as_str().chars().count()));
                }
                Err(Invalid(message)) => proptest::prop_assert!(!message.is_empty()),
            }
        }
    }
}
