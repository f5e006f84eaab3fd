//! SecureCRUD seed data: `fake`-based factories for users and tasks.
//!
//! Job: realistic demo data that passes the api's own rules, because it is built with the domain's parsers
//! (`NewUser::parse`, `TaskTitle::parse`, …): the seed binary and the tests cannot create anything a client
//! could not. With a seed ([`Factory::seeded`]) the same calls give the same data.
//!
//! Rules: no I/O and no database here; callers store what the factory makes through the service crate.

use std::collections::HashSet;

use fake::{
    Fake,
    faker::{
        lorem::en::{Sentence, Sentences},
        name::en::{FirstName, LastName},
    },
    rand::{RngExt, SeedableRng, rngs::StdRng},
};
use securecrud_domain::{NewTask, NewUser, TaskDescription, TaskTitle, Username, ValidationErrors};
use time::{Duration, OffsetDateTime};

/// The username of the seeded admin.
pub const ADMIN_USERNAME: &str = "admin";
/// The share of seeded tasks that are completed.
pub const COMPLETED_SHARE: f64 = 0.35;
/// How far back seeded tasks were created.
pub const HISTORY: Duration = Duration::weeks(6);
const EMAIL_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];

/// A task with the times it was created and last updated.
#[derive(Debug, Clone)]
pub struct FakeTask {
    pub task: NewTask,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Makes users and tasks. Usernames and emails it makes are unique within one factory.
#[derive(Debug)]
pub struct Factory {
    rng: StdRng,
    usernames: HashSet<String>,
    now: OffsetDateTime,
}

impl Factory {
    /// A factory whose output is fixed by `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self::with_rng(StdRng::seed_from_u64(seed))
    }

    /// A factory seeded from the operating system.
    pub fn random() -> Self {
        Self::with_rng(fake::rand::make_rng())
    }

    fn with_rng(rng: StdRng) -> Self {
        Self {
            rng,
            usernames: HashSet::new(),
            now: OffsetDateTime::now_utc(),
        }
    }

    /// The admin account, `admin` / `admin@example.com`.
    ///
    /// # Errors
    /// When `password` breaks the password rules.
    pub fn admin(&mut self, password: &str) -> Result<NewUser, ValidationErrors> {
        self.usernames.insert(ADMIN_USERNAME.to_owned());
        NewUser::parse(
            Some(ADMIN_USERNAME),
            Some("admin@example.com"),
            Some(password),
        )
    }

    /// A user with a realistic name turned into a valid, unique username (`ada.lovelace`,
    /// `ada.lovelace2`, …) and a matching unique email.
    ///
    /// # Errors
    /// When `password` breaks the password rules (e.g. it equals the generated username).
    pub fn user(&mut self, password: &str) -> Result<NewUser, ValidationErrors> {
        let first: String = FirstName().fake_with_rng(&mut self.rng);
        let last: String = LastName().fake_with_rng(&mut self.rng);
        let base: String = format!("{}.{}", ascii_letters(&first), ascii_letters(&last))
            .chars()
            .take(Username::MAX_CHARS - 6)
            .collect();
        let base = if base.len() < Username::MIN_CHARS {
            format!("user.{base}")
        } else {
            base
        };
        let mut username = base.clone();
        let mut n = 1;
        while !self.usernames.insert(username.clone()) {
            n += 1;
            username = format!("{base}{n}");
        }
        let domain = EMAIL_DOMAINS[self.rng.random_range(0..EMAIL_DOMAINS.len())];
        let email = format!("{username}@{domain}");
        NewUser::parse(Some(&username), Some(&email), Some(password))
    }

    /// A task: a short sentence as title, a description on most, about a third completed, created within
    /// the last six weeks (and updated since, if completed).
    pub fn task(&mut self) -> FakeTask {
        let sentence: String = Sentence(2..7).fake_with_rng(&mut self.rng);
        let title = TaskTitle::parse(sentence.trim_end_matches('.'))
            .or_else(|_| TaskTitle::parse("Untitled task"))
            .unwrap_or_else(|_| unreachable!("a constant valid title"));
        let description = self.rng.random_bool(0.6).then(|| {
            let sentences: Vec<String> = Sentences(1..4).fake_with_rng(&mut self.rng);
            let text: String = sentences
                .join(" ")
                .chars()
                .take(TaskDescription::MAX_CHARS)
                .collect();
            TaskDescription::parse(&text).ok()
        });
        let completed = self.rng.random_bool(COMPLETED_SHARE);
        let age = self.rng.random_range(0..HISTORY.whole_seconds());
        let created_at = self.now - Duration::seconds(age);
        let updated_at = if completed {
            created_at + Duration::seconds(self.rng.random_range(0..=age))
        } else {
            created_at
        };
        FakeTask {
            task: NewTask {
                title,
                description: description.flatten(),
                completed,
            },
            created_at,
            updated_at,
        }
    }

    /// An index in `0..len`, to spread tasks over owners.
    pub fn pick(&mut self, len: usize) -> usize {
        self.rng.random_range(0..len.max(1))
    }
}

/// A random, memorable password that passes the rules, e.g. `velit-quia-omnis-4821`, from the operating
/// system's randomness (never from a seed).
pub fn random_password() -> String {
    let mut rng: StdRng = fake::rand::make_rng();
    let words: Vec<String> = fake::faker::lorem::en::Words(4..5).fake_with_rng(&mut rng);
    format!("{}-{}", words.join("-"), rng.random_range(1000..10_000))
}

/// The lower-case ASCII letters of a name (`O'Connor` → `oconnor`).
fn ascii_letters(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "a demo passphrase";

    #[test]
    fn users_are_valid_unique_and_look_like_names() {
        let mut factory = Factory::seeded(7);
        let mut emails = HashSet::new();
        for _ in 0..2000 {
            let user = factory.user(PASSWORD).unwrap();
            assert!(user.username.as_str().contains('.'), "{}", user.username);
            assert!(
                emails.insert(user.email.as_str().to_owned()),
                "duplicate {}",
                user.email
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let names = |seed| {
            let mut factory = Factory::seeded(seed);
            (0..20)
                .map(|_| {
                    let user = factory.user(PASSWORD).unwrap();
                    let task = factory.task();
                    format!("{} {}", user.username, task.task.title.as_str())
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(names(42), names(42));
        assert_ne!(names(42), names(43));
    }

    #[test]
    fn tasks_follow_the_rules_with_a_realistic_share_completed_over_past_weeks() {
        let mut factory = Factory::seeded(1);
        let tasks: Vec<FakeTask> = (0..2000).map(|_| factory.task()).collect();
        let completed = tasks.iter().filter(|t| t.task.completed).count();
        assert!(
            (500..900).contains(&completed),
            "{completed} of 2000 completed"
        );
        let now = OffsetDateTime::now_utc();
        for t in &tasks {
            assert!(t.created_at <= now && now - t.created_at <= HISTORY + Duration::minutes(1));
            assert!(t.updated_at >= t.created_at);
            assert!(t.task.title.as_str().chars().count() <= TaskTitle::MAX_CHARS);
        }
        assert!(tasks.iter().any(|t| t.task.description.is_some()));
        assert!(tasks.iter().any(|t| t.task.description.is_none()));
    }

    #[test]
    fn random_passwords_pass_the_rules_and_differ() {
        let (a, b) = (random_password(), random_password());
        assert_ne!(a, b);
        assert!(Factory::seeded(1).admin(&a).is_ok(), "{a}");
    }

    #[test]
    fn a_password_equal_to_the_admin_username_is_refused() {
        assert!(Factory::seeded(1).admin("admin").is_err());
        assert!(Factory::seeded(1).admin(PASSWORD).is_ok());
    }
}
