//! bcrypt password hashing.
//!
//! Passwords longer than bcrypt's 72 bytes are refused ([`PasswordError::TooLong`]), never truncated. These
//! calls take tens to hundreds of milliseconds at production costs: async callers must run them on a blocking
//! thread pool with bounded concurrency.

use std::sync::OnceLock;

use bcrypt::HashParts;

/// Costs accepted by bcrypt.
pub const MIN_COST: u32 = 4;
/// The highest cost bcrypt accepts.
pub const MAX_COST: u32 = 31;
/// The longest password bcrypt reads in full.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Why hashing or verifying a password failed (never carries the password).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Over [`MAX_PASSWORD_BYTES`]: refused rather than silently truncated.
    #[error("password is longer than {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// A cost outside [`MIN_COST`]..=[`MAX_COST`].
    #[error("bcrypt cost must be between {MIN_COST} and {MAX_COST}")]
    InvalidCost,
    /// bcrypt itself failed (a malformed stored hash).
    #[error("bcrypt failed")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

/// Hashes and verifies passwords at one bcrypt cost.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    cost: u32,
    /// A real hash of a random password at `cost`: verifying against it costs what a real verification
    /// costs, so an unknown login takes as long as a wrong password. Made on first use, not at start-up.
    dummy_hash: OnceLock<String>,
}

impl PasswordHasher {
    /// # Errors
    /// [`PasswordError::InvalidCost`] outside 4–31.
    pub fn new(cost: u32) -> Result<Self, PasswordError> {
        if !(MIN_COST..=MAX_COST).contains(&cost) {
            return Err(PasswordError::InvalidCost);
        }
        Ok(Self {
            cost,
            dummy_hash: OnceLock::new(),
        })
    }

    /// The bcrypt cost new hashes get.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// # Errors
    /// [`PasswordError::TooLong`] past 72 bytes; [`PasswordError::Bcrypt`] if bcrypt fails.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        // bcrypt's own "non-truncating" mode counts the NUL terminator and so refuses exactly 72 bytes; with
        // the length checked above, plain `hash` uses every byte of the password (it only drops the NUL).
        Ok(bcrypt::hash(password, self.cost)?)
    }

    /// Whether `password` matches `hash`. A password past 72 bytes or a malformed hash never matches.
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        password.len() <= MAX_PASSWORD_BYTES && bcrypt::verify(password, hash).unwrap_or(false)
    }

    /// Spends the time of one verification and returns `false`: for logins naming no user.
    pub fn verify_dummy(&self, password: &str) -> bool {
        let bytes = password.as_bytes();
        let dummy = self.dummy_hash.get_or_init(|| {
            // The cost was checked in `new`, so hashing cannot fail; an empty hash would only make this faster.
            bcrypt::hash(crate::token::generate_token(), self.cost).unwrap_or_default()
        });
        let _ = bcrypt::verify(&bytes[..bytes.len().min(MAX_PASSWORD_BYTES)], dummy);
        false
    }

    /// Whether `hash` was made at another cost than the current one (re-hash it after a successful login).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash.parse::<HashParts>()
            .map(|parts| parts.get_cost() != self.cost)
            .unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(4).unwrap();
        let hash = hasher.hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(hasher.verify("correct horse battery", &hash));
        assert!(!hasher.verify("correct horse batterY", &hash));
    }

    #[test]
    fn passwords_past_72_bytes_are_refused_not_truncated() {
        let hasher = PasswordHasher::new(4).unwrap();
        let long = "a".repeat(73);
        assert!(matches!(hasher.hash(&long), Err(PasswordError::TooLong)));
        let hash = hasher.hash(&"a".repeat(72)).unwrap();
        assert!(
            !hasher.verify(&long, &hash),
            "a 73-byte password must not match its 72-byte prefix"
        );
    }

    #[test]
    fn dummy_verification_never_matches() {
        let hasher = PasswordHasher::new(4).unwrap();
        assert!(!hasher.verify_dummy("anything at all"));
        assert!(!hasher.verify_dummy(&"é".repeat(60)));
    }

    #[test]
    fn a_cost_change_asks_for_a_rehash() {
        let old = PasswordHasher::new(4)
            .unwrap()
            .hash("correct horse")
            .unwrap();
        assert!(!PasswordHasher::new(4).unwrap().needs_rehash(&old));
        assert!(PasswordHasher::new(5).unwrap().needs_rehash(&old));
        assert!(PasswordHasher::new(4).unwrap().needs_rehash("not a hash"));
    }

    #[test]
    fn costs_outside_bcrypts_range_are_refused() {
        assert!(matches!(
            PasswordHasher::new(3),
            Err(PasswordError::InvalidCost)
        ));
        assert!(matches!(
            PasswordHasher::new(32),
            Err(PasswordError::InvalidCost)
        ));
    }
}
