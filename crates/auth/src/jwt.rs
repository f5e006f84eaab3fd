//! JWT access tokens: HS256 with a shared secret, or EdDSA / ES256 with a private key (see [`crate::keys`]).
//!
//! Verification pins the algorithm per key whatever the token's header says (`alg: none`, another HMAC, or
//! a header naming another algorithm than the key's are refused), and checks the signature, `iss`, `aud`,
//! `exp` (5 s leeway) and `typ: "access"`. The header's `kid` names the key (for HS256 a digest of the
//! secret, never the secret; for a key pair its RFC 7638 thumbprint).

use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::{Header, Validation, errors::ErrorKind};
use secrecy::SecretSlice;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::keys::{SigningKey, VerifyingKey};

/// The `typ` claim of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "access";
/// Clock skew tolerated on `exp`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Uuid,
    /// The session id: the token is valid only while this session is live.
    pub sid: Uuid,
    /// `user` or `admin` at issue time. Servers with a database take the role from there instead.
    pub role: String,
    /// Always `access`.
    pub typ: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// The issuer: the api's `JWT_ISSUER`.
    pub iss: String,
    /// The audience: the api's `JWT_AUDIENCE`.
    pub aud: String,
    /// A unique token id.
    pub jti: Uuid,
}

impl AccessClaims {
    /// The user's id (`sub`).
    pub const fn user_id(&self) -> Uuid {
        self.sub
    }

    /// The session's id (`sid`): what a revocation names.
    pub const fn session_id(&self) -> Uuid {
        self.sid
    }

    /// The role claimed at issue time, if it is one this version knows.
    pub fn role(&self) -> Option<Role> {
        self.role.parse().ok()
    }
}

/// The role an access token carries. A server with the accounts' database takes the current role from
/// there; a service verifying tokens on its own sees the role at issue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Any account.
    User,
    /// An administrator.
    Admin,
}

impl Role {
    /// The claim's value: `user` or `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// A `role` claim this version does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the role is neither 'user' nor 'admin'")]
pub struct UnknownRole;

impl std::str::FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            _ => Err(UnknownRole),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was refused. Deliberately coarse: callers answer 401 either way and tell the client no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Past `exp` (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// Not a valid access token of this issuer and audience: bad signature, algorithm, claims or form.
    #[error("the token is invalid")]
    Invalid,
    /// Well formed, but its `kid` names no key known here: the issuer may have rotated to a key this
    /// verifier has not fetched yet (a JWKS verifier fetches again, at a bounded rate).
    #[error("the token is signed with an unknown key")]
    UnknownKey,
}

/// The `kid` in a token's header, if the header decodes and names one (nothing is verified).
pub fn token_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}

/// A freshly issued access token and its lifetime.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// How long it is valid from now.
    pub expires_in: Duration,
}

/// One accepted key and the validation pinned to its algorithm.
struct Entry {
    key: VerifyingKey,
    validation: Validation,
}

/// Verifies access tokens with a set of keys chosen by the token's `kid` (a token without one is tried
/// with the first key only). Each key verifies exactly one algorithm, fixed when the key was made: a
/// token's `alg` header never chooses it, so `alg: none`, or an HS256 token "signed" with a public key,
/// are refused. `iss`, `aud`, `exp` (5 s leeway) and `typ: "access"` are checked; a retired key stops
/// being accepted at its `not_after`. The key set can be replaced while in use ([`JwtVerifier::set_keys`]).
pub struct JwtVerifier {
    entries: RwLock<Arc<[Entry]>>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<VerifyingKey> = self.keys();
        f.debug_struct("JwtVerifier")
            .field("keys", &keys)
            .field("iss", &self.issuer)
            .field("aud", &self.audience)
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier accepting HS256 tokens signed with `current` or any of `previous`, issued by `issuer` for
    /// `audience`.
    pub fn new(
        current: &SecretSlice<u8>,
        previous: &[SecretSlice<u8>],
        issuer: &str,
        audience: &str,
    ) -> Self {
        let keys = std::iter::once(current)
            .chain(previous)
            .map(VerifyingKey::hs256)
            .collect();
        Self::with_keys(keys, issuer, audience)
    }

    /// A verifier accepting tokens signed with any of `keys` (the first is tried for a token without `kid`).
    pub fn with_keys(keys: Vec<VerifyingKey>, issuer: &str, audience: &str) -> Self {
        let verifier = Self {
            entries: RwLock::new(Arc::from(Vec::new())),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        };
        verifier.set_keys(keys);
        verifier
    }

    /// Replaces the accepted keys (after a rotation or a JWKS fetch).
    pub fn set_keys(&self, keys: Vec<VerifyingKey>) {
        let entries: Vec<Entry> = keys
            .into_iter()
            .map(|key| {
                let mut validation = Validation::new(key.alg.jose());
                validation.set_issuer(&[&self.issuer]);
                validation.set_audience(&[&self.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.leeway = LEEWAY_SECS;
                validation.validate_exp = true;
                // A token that is not valid yet is refused (RFC 7519 §4.1.5): the api issues none with `nbf`,
                // but one that carries it must hold.
                validation.validate_nbf = true;
                Entry { key, validation }
            })
            .collect();
        *self.entries.write().unwrap_or_else(PoisonError::into_inner) = Arc::from(entries);
    }

    /// The accepted keys, current first.
    pub fn keys(&self) -> Vec<VerifyingKey> {
        self.snapshot()
            .iter()
            .map(|entry| entry.key.clone())
            .collect()
    }

    /// Whether a key with this id is accepted.
    pub fn knows(&self, kid: &str) -> bool {
        self.snapshot().iter().any(|entry| entry.key.kid == kid)
    }

    fn snapshot(&self) -> Arc<[Entry]> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Verifies an access token.
    ///
    /// # Errors
    /// [`TokenError::Expired`] past `exp` (plus leeway); [`TokenError::UnknownKey`] for a `kid` no accepted
    /// key has; [`TokenError::Invalid`] for anything else: bad shape, signature, an algorithm other than
    /// the key's, a retired key past its time, issuer, audience, or a `typ` other than `access`.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let entries = self.snapshot();
        let entry = match header.kid.as_deref() {
            Some(kid) => entries
                .iter()
                .find(|entry| entry.key.kid == kid)
                .ok_or(TokenError::UnknownKey)?,
            None => entries.first().ok_or(TokenError::Invalid)?,
        };
        if entry
            .key
            .not_after
            .is_some_and(|end| OffsetDateTime::now_utc() >= end)
        {
            return Err(TokenError::Invalid);
        }
        let data = jsonwebtoken::decode::<AccessClaims>(token, &entry.key.key, &entry.validation)
            .map_err(|err| match err.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        if data.claims.typ != ACCESS_TOKEN_TYPE {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

/// Issues access tokens with the current signing key and verifies them with [`JwtVerifier`]. Build once at
/// start-up and share; the signing key and the accepted keys can be replaced while in use (a rotation).
pub struct JwtKeys {
    signing: RwLock<Arc<SigningKey>>,
    verifier: JwtVerifier,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("signing", &self.signing_key())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("verifier", &self.verifier)
            .finish()
    }
}

impl JwtKeys {
    /// Keys for HS256 with `secret` (tokens carry `iss = issuer`, `aud = audience` and live `ttl`), also
    /// accepting tokens signed with any of `previous`.
    pub fn new(
        secret: &SecretSlice<u8>,
        previous: &[SecretSlice<u8>],
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> Self {
        Self {
            signing: RwLock::new(Arc::new(SigningKey::hs256(secret))),
            verifier: JwtVerifier::new(secret, previous, issuer, audience),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    /// Keys that sign with `signing` and accept `accepted` (which should include `signing`'s own
    /// verifying key; see [`SigningKey::verifying_key`]).
    pub fn with_signing_key(
        signing: SigningKey,
        accepted: Vec<VerifyingKey>,
        issuer: &str,
        audience: &str,
        ttl: Duration,
    ) -> Self {
        Self {
            signing: RwLock::new(Arc::new(signing)),
            verifier: JwtVerifier::with_keys(accepted, issuer, audience),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    /// Signs new tokens with `key` from now on (accept its verifying key first: [`JwtVerifier::set_keys`]).
    pub fn set_signing_key(&self, key: SigningKey) {
        self.set_signing_key_shared(Arc::new(key));
    }

    /// As [`JwtKeys::set_signing_key`], with a key already shared.
    pub fn set_signing_key_shared(&self, key: Arc<SigningKey>) {
        *self.signing.write().unwrap_or_else(PoisonError::into_inner) = key;
    }

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        self.signing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The lifetime of the tokens issued (a session's end can cut one shorter).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The `iss` of the tokens issued here.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The verifier of the tokens these keys issue (and of those of the keys still accepted).
    pub fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }

    /// Issues an access token for `user` in `session`, with the current key's `kid` in its header.
    ///
    /// # Errors
    /// Only if signing fails, which an in-memory key does not do in practice.
    pub fn issue(
        &self,
        user: Uuid,
        session: Uuid,
        role: Role,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        self.issue_until(user, session, role, None)
    }

    /// Issues an access token as [`JwtKeys::issue`] does, expiring no later than `session_ends` (its
    /// session's end): a token never outlives its session, so a service verifying tokens on its own needs
    /// no word of a session that simply ran out.
    ///
    /// # Errors
    /// Only if signing fails, which an in-memory key does not do in practice.
    pub fn issue_until(
        &self,
        user: Uuid,
        session: Uuid,
        role: Role,
        session_ends: Option<OffsetDateTime>,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = OffsetDateTime::now_utc();
        let expires_at = session_ends.map_or(now + self.ttl, |end| (now + self.ttl).min(end));
        let claims = AccessClaims {
            sub: user,
            sid: session,
            role: role.as_str().to_owned(),
            typ: ACCESS_TOKEN_TYPE.to_owned(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
        };
        let key = self.signing_key();
        let mut header = Header::new(key.alg().jose());
        header.kid = Some(key.kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, key.encoding())?;
        Ok(IssuedToken {
            token,
            expires_in: Duration::seconds(claims.exp - claims.iat),
        })
    }

    /// Verifies an access token (see [`JwtVerifier::verify`]).
    ///
    /// # Errors
    /// As [`JwtVerifier::verify`].
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verifier.verify(token)
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde_json::json;

    use super::*;

    fn secret(raw: &str) -> SecretSlice<u8> {
        SecretSlice::from(raw.as_bytes().to_vec())
    }

    fn keys(raw: &str) -> JwtKeys {
        JwtKeys::new(
            &secret(raw),
            &[],
            "securecrud",
            "securecrud-api",
            Duration::minutes(15),
        )
    }

    fn sign(header: serde_json::Value, claims: serde_json::Value, secret: &str) -> String {
        use hmac_sign::sign_hs;
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let message = format!("{h}.{c}");
        let signature = sign_hs(&header, &message, secret);
        format!("{message}.{signature}")
    }

    /// Signs arbitrary headers with the right secret, to prove the verifier, not the signature, refuses them.
    mod hmac_sign {
        use jsonwebtoken::{Algorithm, EncodingKey, crypto};

        pub(super) fn sign_hs(header: &serde_json::Value, message: &str, secret: &str) -> String {
            let alg = match header["alg"].as_str() {
                Some("HS384") => Algorithm::HS384,
                Some("HS512") => Algorithm::HS512,
                _ => Algorithm::HS256,
            };
            crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(secret.as_bytes()),
                alg,
            )
            .unwrap()
        }
    }

    fn valid_claims() -> serde_json::Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "sub": Uuid::new_v4(), "sid": Uuid::new_v4(), "role": "user", "typ": "access",
            "iat": now, "exp": now + 600, "iss": "securecrud", "aud": "securecrud-api", "jti": Uuid::new_v4()
        })
    }

    const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let keys = keys(SECRET);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let issued = keys.issue(user, session, Role::Admin).unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.user_id(), user);
        assert_eq!(claims.session_id(), session);
        assert_eq!(claims.role(), Some(Role::Admin));
        assert_eq!(claims.typ, "access");
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_token_never_outlives_its_session() {
        let keys = keys(SECRET);
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let ends = OffsetDateTime::now_utc() + Duration::seconds(60);
        let issued = keys
            .issue_until(user, session, Role::User, Some(ends))
            .unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.exp, ends.unix_timestamp());
        assert_eq!(issued.expires_in.whole_seconds(), claims.exp - claims.iat);
        let later = OffsetDateTime::now_utc() + Duration::days(30);
        let issued = keys
            .issue_until(user, session, Role::User, Some(later))
            .unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(
            claims.exp - claims.iat,
            900,
            "a distant end leaves the lifetime"
        );
    }

    #[test]
    fn expiry_has_a_small_leeway_for_clock_skew() {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = valid_claims();
        claims["exp"] = json!(now - 2);
        let just_expired = sign(json!({"alg": "HS256"}), claims, SECRET);
        assert!(
            keys(SECRET).verify(&just_expired).is_ok(),
            "2 s past exp is within the 5 s leeway"
        );
    }

    #[test]
    fn a_hand_signed_valid_token_is_accepted() {
        let token = sign(
            json!({"alg": "HS256", "typ": "JWT"}),
            valid_claims(),
            SECRET,
        );
        assert!(keys(SECRET).verify(&token).is_ok());
    }

    #[test]
    fn tokens_are_refused_for_each_broken_rule() {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut cases: Vec<(&str, String, TokenError)> = Vec::new();
        let with = |field: &str, value: serde_json::Value| {
            let mut claims = valid_claims();
            claims[field] = value;
            sign(json!({"alg": "HS256"}), claims, SECRET)
        };
        cases.push(("expired", with("exp", json!(now - 60)), TokenError::Expired));
        cases.push((
            "not valid before a minute from now",
            with("nbf", json!(now + 60)),
            TokenError::Invalid,
        ));
        cases.push((
            "wrong issuer",
            with("iss", json!("evil")),
            TokenError::Invalid,
        ));
        cases.push((
            "wrong audience",
            with("aud", json!("other")),
            TokenError::Invalid,
        ));
        cases.push((
            "refresh typ",
            with("typ", json!("refresh")),
            TokenError::Invalid,
        ));
        cases.push((
            "HS512 header",
            sign(json!({"alg": "HS512"}), valid_claims(), SECRET),
            TokenError::Invalid,
        ));
        cases.push((
            "other secret",
            sign(
                json!({"alg": "HS256"}),
                valid_claims(),
                "another-secret-0123456789-0123456789",
            ),
            TokenError::Invalid,
        ));
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(valid_claims().to_string())
        );
        cases.push(("alg none", unsigned, TokenError::Invalid));
        // An RS256 header over an HMAC signature: a verifier that let the header choose would try RSA.
        let rs256 = sign(json!({"alg": "RS256"}), valid_claims(), SECRET);
        cases.push(("RS256 header", rs256, TokenError::Invalid));
        let es256 = sign(json!({"alg": "ES256"}), valid_claims(), SECRET);
        cases.push(("ES256 header", es256, TokenError::Invalid));
        cases.push((
            "no exp",
            {
                let mut claims = valid_claims();
                claims.as_object_mut().unwrap().remove("exp");
                sign(json!({"alg": "HS256"}), claims, SECRET)
            },
            TokenError::Invalid,
        ));
        cases.push(("garbage", "not.a.token".to_owned(), TokenError::Invalid));
        let good = sign(json!({"alg": "HS256"}), valid_claims(), SECRET);
        let mut tampered = good.clone();
        tampered.push('x');
        cases.push(("tampered signature", tampered, TokenError::Invalid));
        let parts: Vec<&str> = good.split('.').collect();
        let mut admin = valid_claims();
        admin["role"] = json!("admin");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(admin.to_string()),
            parts[2]
        );
        cases.push(("tampered payload", forged, TokenError::Invalid));

        let kid = |kid: &str| sign(json!({"alg": "HS256", "kid": kid}), valid_claims(), SECRET);
        cases.push((
            "unknown kid",
            kid("0123456789abcdef"),
            TokenError::UnknownKey,
        ));
        cases.push((
            "kid of the secret itself",
            kid(SECRET),
            TokenError::UnknownKey,
        ));
        let keys = keys(SECRET);
        for (why, token, expected) in cases {
            assert_eq!(keys.verify(&token).err(), Some(expected), "{why}");
        }
    }
}

#[cfg(test)]
mod rotation_tests {
    use secrecy::SecretSlice;

    use super::*;

    fn secret(raw: &str) -> SecretSlice<u8> {
        SecretSlice::from(raw.as_bytes().to_vec())
    }

    const OLD: &str = "the-old-secret-the-old-secret-0123456789";
    const NEW: &str = "the-new-secret-the-new-secret-0123456789";

    fn keys(current: &str, previous: &[&str]) -> JwtKeys {
        let previous: Vec<_> = previous.iter().map(|p| secret(p)).collect();
        JwtKeys::new(
            &secret(current),
            &previous,
            "securecrud",
            "securecrud-api",
            Duration::minutes(15),
        )
    }

    #[test]
    fn tokens_of_a_previous_secret_verify_during_a_rotation() {
        let old_token = keys(OLD, &[])
            .issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)
            .unwrap();
        assert_eq!(
            keys(NEW, &[]).verify(&old_token.token).err(),
            Some(TokenError::UnknownKey)
        );
        assert!(keys(NEW, &[OLD]).verify(&old_token.token).is_ok());
    }

    #[test]
    fn new_tokens_are_signed_with_the_current_secret() {
        let rotated = keys(NEW, &[OLD]);
        let token = rotated
            .issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)
            .unwrap();
        assert!(keys(NEW, &[]).verify(&token.token).is_ok());
        assert!(keys(OLD, &[]).verify(&token.token).is_err());
    }
}

#[cfg(test)]
mod asymmetric_tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, crypto};
    use serde_json::json;

    use super::*;
    use crate::keys::KeyAlgorithm;

    const ISS: &str = "https://api.example.com";
    const AUD: &str = "securecrud-api";

    fn keys_for(alg: KeyAlgorithm) -> (JwtKeys, VerifyingKey) {
        let (signing, _) = SigningKey::generate(alg).unwrap();
        let public = signing.verifying_key().unwrap();
        let keys = JwtKeys::with_signing_key(
            signing,
            vec![public.clone()],
            ISS,
            AUD,
            Duration::minutes(15),
        );
        (keys, public)
    }

    fn claims() -> serde_json::Value {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        json!({
            "sub": Uuid::new_v4(), "sid": Uuid::new_v4(), "role": "admin", "typ": "access",
            "iat": now, "exp": now + 600, "iss": ISS, "aud": AUD, "jti": Uuid::new_v4()
        })
    }

    /// A token whose header and signature are chosen by an attacker.
    fn forged(header: serde_json::Value, signature: impl Fn(&str) -> String) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims().to_string())
        );
        let signature = signature(&message);
        format!("{message}.{signature}")
    }

    #[test]
    fn key_pairs_sign_with_their_kid_and_verify_from_the_public_key_alone() {
        for alg in [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256] {
            let (keys, public) = keys_for(alg);
            let issued = keys
                .issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)
                .unwrap();
            let header = jsonwebtoken::decode_header(&issued.token).unwrap();
            assert_eq!(header.alg, alg.jose());
            assert_eq!(header.kid.as_deref(), Some(public.kid()));
            let verifier = JwtVerifier::with_keys(vec![public], ISS, AUD);
            assert!(verifier.verify(&issued.token).is_ok(), "{alg}");
        }
    }

    #[test]
    fn the_algorithm_is_pinned_by_the_key_never_by_the_header() {
        let (keys, public) = keys_for(KeyAlgorithm::EdDsa);
        let jwk = public.public_jwk().unwrap().clone();
        let kid = public.kid().to_owned();
        let verifier = keys.verifier();
        // HS256 "signed" with the public key's bytes: the classic key-confusion forgery.
        let confused = forged(json!({"alg": "HS256", "kid": kid}), |message| {
            let public_bytes = URL_SAFE_NO_PAD.decode(&jwk.x).unwrap();
            crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(&public_bytes),
                Algorithm::HS256,
            )
            .unwrap()
        });
        assert_eq!(verifier.verify(&confused).err(), Some(TokenError::Invalid));
        let unsigned = forged(json!({"alg": "none", "kid": kid}), |_| String::new());
        assert_eq!(verifier.verify(&unsigned).err(), Some(TokenError::Invalid));
        // A genuine ES256 signature by another key, under this key's kid.
        let (other, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let es = forged(json!({"alg": "ES256", "kid": kid}), |message| {
            crypto::sign(message.as_bytes(), other.encoding(), Algorithm::ES256).unwrap()
        });
        assert_eq!(verifier.verify(&es).err(), Some(TokenError::Invalid));
        // Another Ed25519 key's signature under this kid.
        let (impostor, _) = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let ed = forged(json!({"alg": "EdDSA", "kid": kid}), |message| {
            crypto::sign(message.as_bytes(), impostor.encoding(), Algorithm::EdDSA).unwrap()
        });
        assert_eq!(verifier.verify(&ed).err(), Some(TokenError::Invalid));
    }

    #[test]
    fn a_retired_key_is_refused_from_its_not_after() {
        let (keys, public) = keys_for(KeyAlgorithm::EdDsa);
        let token = keys
            .issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)
            .unwrap()
            .token;
        let later = OffsetDateTime::now_utc() + Duration::minutes(1);
        let retiring =
            JwtVerifier::with_keys(vec![public.clone().accepted_until(Some(later))], ISS, AUD);
        assert!(retiring.verify(&token).is_ok());
        let past = OffsetDateTime::now_utc() - Duration::seconds(1);
        let retired = JwtVerifier::with_keys(vec![public.accepted_until(Some(past))], ISS, AUD);
        assert_eq!(retired.verify(&token).err(), Some(TokenError::Invalid));
    }

    #[test]
    fn a_new_signing_key_takes_over_and_both_verify_while_accepted() {
        let (keys, old_public) = keys_for(KeyAlgorithm::EdDsa);
        let old = keys
            .issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)
            .unwrap()
            .token;
        let (next, _) = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let next_public = next.verifying_key().unwrap();
        keys.set_signing_key(next);
        assert_eq!(keys.verify(&old).err(), None);
        let new = keys
            .issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)
            .unwrap()
            .token;
        assert_eq!(keys.verify(&new).err(), Some(TokenError::UnknownKey));
        keys.verifier()
            .set_keys(vec![next_public.clone(), old_public]);
        assert!(keys.verify(&new).is_ok() && keys.verify(&old).is_ok());
        keys.verifier().set_keys(vec![next_public]);
        assert_eq!(keys.verify(&old).err(), Some(TokenError::UnknownKey));
    }
}
