//! JWT access tokens (HS256).
//!
//! Verification pins the algorithm to HS256 whatever the token's header says (`alg: none`, another HMAC or an
//! RS/ES header are refused), and checks the signature, `iss`, `aud`, `exp` (5 s leeway) and `typ: "access"`.
//! The header's `kid` names the key (a digest of the secret, never the secret).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use securecrud_domain::{Role, SessionId, UserId};

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
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// A unique token id.
    pub jti: Uuid,
}

impl AccessClaims {
    pub fn user_id(&self) -> UserId {
        UserId::from_uuid(self.sub)
    }

    pub fn session_id(&self) -> SessionId {
        SessionId::from_uuid(self.sid)
    }

    /// The role claimed at issue time, if it is one this version knows.
    pub fn role(&self) -> Option<Role> {
        self.role.parse().ok()
    }
}

/// Why a token was refused. Deliberately coarse: callers answer 401 either way and tell the client no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is invalid")]
    Invalid,
}

/// A freshly issued access token and its lifetime.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: Duration,
}

/// Verifies access tokens: HS256 only, with the current secret and any previous ones still accepted during a
/// rotation, chosen by the token's `kid`. Needs only the secrets: a service that merely accepts tokens builds
/// one of these (see the `actix` feature).
pub struct JwtVerifier {
    /// `(kid, key)`, the current secret first.
    keys: Vec<(String, DecodingKey)>,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|(kid, _)| kid.as_str()).collect();
        f.debug_struct("JwtVerifier")
            .field("kids", &kids)
            .field("iss", &self.validation.iss)
            .field("aud", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier accepting tokens signed with `current` or any of `previous`, issued by `issuer` for
    /// `audience`.
    pub fn new(
        current: &SecretSlice<u8>,
        previous: &[SecretSlice<u8>],
        issuer: &str,
        audience: &str,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        let keys = std::iter::once(current)
            .chain(previous)
            .map(|secret| {
                let bytes = secret.expose_secret();
                (key_id(bytes), DecodingKey::from_secret(bytes))
            })
            .collect();
        Self { keys, validation }
    }

    /// Verifies an access token.
    ///
    /// # Errors
    /// [`TokenError::Expired`] past `exp` (plus leeway), [`TokenError::Invalid`] for anything else: bad shape,
    /// unknown `kid`, signature, algorithm, issuer, audience, or a `typ` other than `access`.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let key = match header.kid.as_deref() {
            Some(kid) => self.keys.iter().find(|(id, _)| id == kid),
            None => self.keys.first(),
        }
        .map(|(_, key)| key)
        .ok_or(TokenError::Invalid)?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(|err| {
                match err.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid,
                }
            })?;
        if data.claims.typ != ACCESS_TOKEN_TYPE {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

/// Issues access tokens with the current secret and verifies them with [`JwtVerifier`]. Build once at
/// start-up and share.
pub struct JwtKeys {
    kid: String,
    encoding: EncodingKey,
    verifier: JwtVerifier,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
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
            kid: key_id(secret.expose_secret()),
            encoding: EncodingKey::from_secret(secret.expose_secret()),
            verifier: JwtVerifier::new(secret, previous, issuer, audience),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }

    /// Issues an access token for `user` in `session`.
    ///
    /// # Errors
    /// Only if signing fails, which HS256 with an in-memory key does not do in practice.
    pub fn issue(
        &self,
        user: UserId,
        session: SessionId,
        role: Role,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let now = OffsetDateTime::now_utc();
        let claims = AccessClaims {
            sub: user.as_uuid(),
            sid: session.as_uuid(),
            role: role.as_str().to_owned(),
            typ: ACCESS_TOKEN_TYPE.to_owned(),
            iat: now.unix_timestamp(),
            exp: (now + self.ttl).unix_timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl,
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

/// A short public name for a secret: the first 8 bytes of its SHA-256, hex.
fn key_id(secret: &[u8]) -> String {
    hex::encode(&Sha256::digest(secret)[..8])
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
        let (user, session) = (UserId::new(), SessionId::new());
        let issued = keys.issue(user, session, Role::Admin).unwrap();
        let claims = keys.verify(&issued.token).unwrap();
        assert_eq!(claims.user_id(), user);
        assert_eq!(claims.session_id(), session);
        assert_eq!(claims.role(), Some(Role::Admin));
        assert_eq!(claims.typ, "access");
        assert_eq!(claims.exp - claims.iat, 900);
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
        cases.push(("unknown kid", kid("0123456789abcdef"), TokenError::Invalid));
        cases.push(("kid of the secret itself", kid(SECRET), TokenError::Invalid));
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
            .issue(UserId::new(), SessionId::new(), Role::User)
            .unwrap();
        assert_eq!(
            keys(NEW, &[]).verify(&old_token.token).err(),
            Some(TokenError::Invalid)
        );
        assert!(keys(NEW, &[OLD]).verify(&old_token.token).is_ok());
    }

    #[test]
    fn new_tokens_are_signed_with_the_current_secret() {
        let rotated = keys(NEW, &[OLD]);
        let token = rotated
            .issue(UserId::new(), SessionId::new(), Role::User)
            .unwrap();
        assert!(keys(NEW, &[]).verify(&token.token).is_ok());
        assert!(keys(OLD, &[]).verify(&token.token).is_err());
    }
}
