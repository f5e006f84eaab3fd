//! Signing and verifying keys: HS256 secrets, Ed25519 (`EdDSA`) and P-256 (`ES256`) key pairs.
//!
//! A private key is read from PEM (PKCS#8, or SEC1 for P-256, as `openssl` writes them) or generated here;
//! its public half is published as a JWK (RFC 7517) whose `kid` is the key's RFC 7638 thumbprint, so the
//! same key always has the same id on every instance. Each [`VerifyingKey`] is bound to one algorithm: a
//! token's `alg` header never chooses how it is checked (see [`crate::JwtVerifier`]).

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand::TryRngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The algorithms access tokens can be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// HMAC-SHA256 with a shared secret: whoever can verify can also sign.
    Hs256,
    /// Ed25519 (RFC 8037): the production default.
    EdDsa,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl KeyAlgorithm {
    /// The JOSE name: `HS256`, `EdDSA` or `ES256`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// Whether tokens are signed with a private key and verified with a public one.
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, Self::Hs256)
    }

    pub(crate) const fn jose(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = KeyError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "HS256" => Ok(Self::Hs256),
            "EdDSA" => Ok(Self::EdDsa),
            "ES256" => Ok(Self::Es256),
            _ => Err(KeyError::UnknownAlgorithm),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key could not be read, made or used. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not one of `HS256`, `EdDSA`, `ES256`.
    #[error("the algorithm must be HS256, EdDSA or ES256")]
    UnknownAlgorithm,
    /// The PEM holds no private key of the algorithm.
    #[error("the PEM does not hold an {0} private key (PKCS#8, or SEC1 for ES256)")]
    BadPrivateKey(KeyAlgorithm),
    /// The JWK is not a public key this crate verifies with.
    #[error("the JWK is not a usable EdDSA (OKP, Ed25519) or ES256 (EC, P-256) public key")]
    BadPublicKey,
    /// An HS256 secret where a key pair is needed.
    #[error("HS256 keys are secrets, not key pairs")]
    Symmetric,
    /// Encoding a key (PEM, JWK) failed.
    #[error("encoding the key failed")]
    Encoding,
}

/// A public key as a JWK (RFC 7517), as `/.well-known/jwks.json` publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// `OKP` (Ed25519) or `EC` (P-256).
    pub kty: String,
    /// `Ed25519` or `P-256`.
    pub crv: String,
    /// The public key (Ed25519) or its x coordinate (P-256), base64url.
    pub x: String,
    /// The y coordinate (P-256 only), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The key's id: its RFC 7638 thumbprint.
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

impl PublicJwk {
    fn new(alg: KeyAlgorithm, x: &[u8], y: Option<&[u8]>) -> Self {
        let (kty, crv) = match alg {
            KeyAlgorithm::Es256 => ("EC", "P-256"),
            _ => ("OKP", "Ed25519"),
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = y.map(|y| URL_SAFE_NO_PAD.encode(y));
        let kid = thumbprint(kty, crv, &x, y.as_deref());
        Self {
            kty: kty.to_owned(),
            crv: crv.to_owned(),
            x,
            y,
            kid,
            alg: alg.as_str().to_owned(),
            use_: "sig".to_owned(),
        }
    }

    /// The algorithm this key verifies, checked against its key type and curve.
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] for any other combination (RSA, another curve, `use` other than `sig`).
    pub fn algorithm(&self) -> Result<KeyAlgorithm, KeyError> {
        match (
            self.kty.as_str(),
            self.crv.as_str(),
            self.alg.as_str(),
            self.use_.as_str(),
        ) {
            ("OKP", "Ed25519", "EdDSA", "sig") => Ok(KeyAlgorithm::EdDsa),
            ("EC", "P-256", "ES256", "sig") => Ok(KeyAlgorithm::Es256),
            _ => Err(KeyError::BadPublicKey),
        }
    }

    /// The key that verifies signatures, after checking that it is a valid point of its curve.
    fn decoding_key(&self) -> Result<(KeyAlgorithm, DecodingKey), KeyError> {
        let alg = self.algorithm()?;
        let bytes = |b64: &str| {
            URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|_| KeyError::BadPublicKey)
        };
        let x = bytes(&self.x)?;
        match alg {
            KeyAlgorithm::EdDsa => {
                let raw: [u8; 32] = x
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyError::BadPublicKey)?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map_err(|_| KeyError::BadPublicKey)?;
                Ok((
                    alg,
                    DecodingKey::from_ed_components(&self.x).map_err(|_| KeyError::BadPublicKey)?,
                ))
            }
            _ => {
                let y = bytes(self.y.as_deref().ok_or(KeyError::BadPublicKey)?)?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::BadPublicKey);
                }
                let point = [&[0x04][..], &x, &y].concat();
                p256::PublicKey::from_sec1_bytes(&point).map_err(|_| KeyError::BadPublicKey)?;
                let y = self.y.as_deref().unwrap_or_default();
                Ok((
                    alg,
                    DecodingKey::from_ec_components(&self.x, y)
                        .map_err(|_| KeyError::BadPublicKey)?,
                ))
            }
        }
    }
}

/// The RFC 7638 thumbprint of a public key: SHA-256 over its required members in lexicographic order.
fn thumbprint(kty: &str, crv: &str, x: &str, y: Option<&str>) -> String {
    let canonical = match y {
        Some(y) => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}","y":"{y}"}}"#),
        None => format!(r#"{{"crv":"{crv}","kty":"{kty}","x":"{x}"}}"#),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The `kid` of an HS256 secret: the first 8 bytes of its SHA-256, hex (never the secret).
pub(crate) fn secret_kid(secret: &[u8]) -> String {
    hex::encode(&Sha256::digest(secret)[..8])
}

/// A key that signs access tokens: an HS256 secret or a private key. Its `Debug` shows only its id and
/// algorithm.
pub struct SigningKey {
    alg: KeyAlgorithm,
    kid: String,
    encoding: EncodingKey,
    /// The public half, for an asymmetric key.
    public: Option<PublicJwk>,
    /// The HS256 secret, kept so that the matching verifying key can be made.
    secret: Option<secrecy::SecretSlice<u8>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HS256 key: the secret signs and verifies.
    pub fn hs256(secret: &secrecy::SecretSlice<u8>) -> Self {
        use secrecy::ExposeSecret;
        let bytes = secret.expose_secret();
        Self {
            alg: KeyAlgorithm::Hs256,
            kid: secret_kid(bytes),
            encoding: EncodingKey::from_secret(bytes),
            public: None,
            secret: Some(secret.clone()),
        }
    }

    /// A private key of `alg` from PEM: PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey` and
    /// [`SigningKey::generate`] write), or SEC1 (`-----BEGIN EC PRIVATE KEY-----`) for ES256.
    ///
    /// # Errors
    /// [`KeyError::BadPrivateKey`] when the PEM holds no such key; [`KeyError::Symmetric`] for HS256.
    pub fn from_pem(alg: KeyAlgorithm, pem: &str) -> Result<Self, KeyError> {
        match alg {
            KeyAlgorithm::Hs256 => Err(KeyError::Symmetric),
            KeyAlgorithm::EdDsa => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                    .map_err(|_| KeyError::BadPrivateKey(alg))?;
                Self::from_ed25519(&key)
            }
            KeyAlgorithm::Es256 => {
                let key = p256::SecretKey::from_pkcs8_pem(pem)
                    .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
                    .map_err(|_| KeyError::BadPrivateKey(alg))?;
                Self::from_p256(&key)
            }
        }
    }

    /// A new random private key of `alg` (from the operating system's CSPRNG), and its PKCS#8 PEM to store.
    ///
    /// # Errors
    /// [`KeyError::Symmetric`] for HS256 (make a secret instead).
    pub fn generate(alg: KeyAlgorithm) -> Result<(Self, SecretString), KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        match alg {
            KeyAlgorithm::Hs256 => Err(KeyError::Symmetric),
            KeyAlgorithm::EdDsa => {
                rand::rngs::OsRng
                    .try_fill_bytes(seed.as_mut())
                    .map_err(|_| KeyError::Encoding)?;
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|_| KeyError::Encoding)?;
                Ok((Self::from_ed25519(&key)?, SecretString::from(pem.as_str())))
            }
            KeyAlgorithm::Es256 => {
                // A random 32-byte string is a valid scalar except with probability ~2^-32; draw again then.
                let key = loop {
                    rand::rngs::OsRng
                        .try_fill_bytes(seed.as_mut())
                        .map_err(|_| KeyError::Encoding)?;
                    if let Ok(key) = p256::SecretKey::from_slice(seed.as_ref()) {
                        break key;
                    }
                };
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|_| KeyError::Encoding)?;
                Ok((Self::from_p256(&key)?, SecretString::from(pem.as_str())))
            }
        }
    }

    fn from_ed25519(key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let der = key.to_pkcs8_der().map_err(|_| KeyError::Encoding)?;
        let public = PublicJwk::new(KeyAlgorithm::EdDsa, key.verifying_key().as_bytes(), None);
        Ok(Self {
            alg: KeyAlgorithm::EdDsa,
            kid: public.kid.clone(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            public: Some(public),
            secret: None,
        })
    }

    fn from_p256(key: &p256::SecretKey) -> Result<Self, KeyError> {
        let der = key.to_pkcs8_der().map_err(|_| KeyError::Encoding)?;
        let point = key.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(KeyError::Encoding);
        };
        let public = PublicJwk::new(KeyAlgorithm::Es256, x, Some(y));
        Ok(Self {
            alg: KeyAlgorithm::Es256,
            kid: public.kid.clone(),
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            public: Some(public),
            secret: None,
        })
    }

    /// The algorithm the key signs with.
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The key's id, in the `kid` header of every token it signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half of an asymmetric key, as a JWK; `None` for HS256.
    pub fn public_jwk(&self) -> Option<&PublicJwk> {
        self.public.as_ref()
    }

    /// The key that verifies this key's signatures.
    ///
    /// # Errors
    /// Only if the public half does not decode, which a key made here never does.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        match (&self.public, &self.secret) {
            (Some(public), _) => VerifyingKey::from_jwk(public),
            (None, Some(secret)) => Ok(VerifyingKey::hs256(secret)),
            (None, None) => Err(KeyError::BadPublicKey),
        }
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }
}

/// A key that verifies access tokens of exactly one algorithm, by `kid`, optionally only until a moment
/// (a retired key).
#[derive(Clone)]
pub struct VerifyingKey {
    pub(crate) alg: KeyAlgorithm,
    pub(crate) kid: String,
    pub(crate) key: DecodingKey,
    pub(crate) not_after: Option<OffsetDateTime>,
    pub(crate) jwk: Option<PublicJwk>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HS256 secret (which could also sign: only for services trusted with it).
    pub fn hs256(secret: &secrecy::SecretSlice<u8>) -> Self {
        use secrecy::ExposeSecret;
        let bytes = secret.expose_secret();
        Self {
            alg: KeyAlgorithm::Hs256,
            kid: secret_kid(bytes),
            key: DecodingKey::from_secret(bytes),
            not_after: None,
            jwk: None,
        }
    }

    /// A public key from its JWK; its algorithm is fixed by the JWK's `kty`, `crv` and `alg` together.
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] for anything but a valid Ed25519 or P-256 signing key.
    pub fn from_jwk(jwk: &PublicJwk) -> Result<Self, KeyError> {
        let (alg, key) = jwk.decoding_key()?;
        Ok(Self {
            alg,
            kid: jwk.kid.clone(),
            key,
            not_after: None,
            jwk: Some(jwk.clone()),
        })
    }

    /// This key, accepted only until `at` (a retired key), or for as long as it is configured (`None`).
    #[must_use]
    pub fn accepted_until(mut self, at: Option<OffsetDateTime>) -> Self {
        self.not_after = at;
        self
    }

    /// The algorithm the key verifies (and nothing else).
    pub fn alg(&self) -> KeyAlgorithm {
        self.alg
    }

    /// The key's id: its RFC 7638 thumbprint, or for HS256 a digest of the secret.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// When this key stops being accepted, if ever.
    pub fn not_after(&self) -> Option<OffsetDateTime> {
        self.not_after
    }

    /// The public key as a JWK; `None` for HS256.
    pub fn public_jwk(&self) -> Option<&PublicJwk> {
        self.jwk.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_with_the_same_kid() {
        for alg in [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256] {
            let (key, pem) = SigningKey::generate(alg).unwrap();
            assert!(
                pem.expose_secret()
                    .starts_with("-----BEGIN PRIVATE KEY-----")
            );
            let again = SigningKey::from_pem(alg, pem.expose_secret()).unwrap();
            assert_eq!(again.kid(), key.kid(), "{alg}");
            assert_eq!(again.public_jwk(), key.public_jwk());
            let jwk = key.public_jwk().unwrap();
            assert_eq!(jwk.alg, alg.as_str());
            assert_eq!(jwk.use_, "sig");
            assert_eq!(key.kid().len(), 43, "a SHA-256 thumbprint, base64url");
            assert!(
                !format!("{key:?}").contains(&jwk.x),
                "Debug shows the id only"
            );
        }
    }

    #[test]
    fn a_pem_of_the_other_algorithm_is_refused() {
        let (_, ed_pem) = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let (_, ec_pem) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        assert_eq!(
            SigningKey::from_pem(KeyAlgorithm::Es256, ed_pem.expose_secret()).err(),
            Some(KeyError::BadPrivateKey(KeyAlgorithm::Es256))
        );
        assert_eq!(
            SigningKey::from_pem(KeyAlgorithm::EdDsa, ec_pem.expose_secret()).err(),
            Some(KeyError::BadPrivateKey(KeyAlgorithm::EdDsa))
        );
        assert!(SigningKey::from_pem(KeyAlgorithm::EdDsa, "not a pem").is_err());
    }

    /// RFC 8037 appendix A.3: the thumbprint of its example Ed25519 public key.
    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        assert_eq!(
            thumbprint(
                "OKP",
                "Ed25519",
                "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                None
            ),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn public_keys_must_match_their_type_curve_and_use() {
        let (key, _) = SigningKey::generate(KeyAlgorithm::EdDsa).unwrap();
        let good = key.public_jwk().unwrap().clone();
        assert!(VerifyingKey::from_jwk(&good).is_ok());
        let mut wrong_alg = good.clone();
        wrong_alg.alg = "ES256".to_owned();
        let mut wrong_use = good.clone();
        wrong_use.use_ = "enc".to_owned();
        let mut short = good.clone();
        short.x = URL_SAFE_NO_PAD.encode([1u8; 16]);
        for bad in [wrong_alg, wrong_use, short] {
            assert_eq!(
                VerifyingKey::from_jwk(&bad).err(),
                Some(KeyError::BadPublicKey)
            );
        }
        let (ec, _) = SigningKey::generate(KeyAlgorithm::Es256).unwrap();
        let mut off_curve = ec.public_jwk().unwrap().clone();
        off_curve.y = Some(URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert_eq!(
            VerifyingKey::from_jwk(&off_curve).err(),
            Some(KeyError::BadPublicKey)
        );
    }
}
