//! What verifying an access token costs on one core, next to the bare signature check of the same primitive
//! measured in the same run: the difference is the crate's overhead (decoding, claims, the key choice, and
//! with a guard the revocation feed's deny-set).
//!
//! For each of HS256, EdDSA and ES256:
//! - `primitive`: the signature check alone, on the token's own signing input and signature (HMAC-SHA256
//!   and a constant-time compare; Ed25519 verify; ECDSA P-256 verify), the signature decoded from base64url;
//! - `verifier`: `JwtVerifier::verify` (header, key by `kid`, signature, `iss`/`aud`/`exp`/`typ`, claims);
//! - `guard`: `Guard::authenticate` on the `Authorization` header value, stateless;
//! - `guard+deny-set`: the same with a `RevocationFeed` holding 100,000 ended sessions (served by a local
//!   stream below, as the api would), the token's own session not among them.
//!
//! `cargo bench -p securecrud-auth --features jwks --bench verify` (`make bench-auth`; figures in
//! docs/BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{io::Write, net::TcpListener, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use securecrud_auth::{
    JwtKeys, JwtVerifier, KeyAlgorithm, Role, SigningKey,
    feed::{FeedOptions, RevocationFeed},
    guard::Guard,
};
use uuid::Uuid;

const ISSUER: &str = "https://api.example.com";
const AUDIENCE: &str = "securecrud-api";
const DENIED: usize = 100_000;

/// The signing input (`header.payload`) and the decoded signature of a compact JWT.
fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    (input, URL_SAFE_NO_PAD.decode(signature).unwrap())
}

/// The bare check of a token's signature.
type Primitive = Box<dyn Fn(&str) -> bool>;

/// Keys of `alg`, and the bare check of a token's signature with the same key, from its private PEM.
fn keys(alg: KeyAlgorithm) -> (JwtKeys, Primitive) {
    let ttl = time::Duration::minutes(15);
    match alg {
        KeyAlgorithm::Hs256 => {
            let raw = b"a benchmark secret of at least thirty-two bytes".to_vec();
            let secret = SecretSlice::from(raw.clone());
            let keys = JwtKeys::new(&secret, &[], ISSUER, AUDIENCE, ttl);
            let check = move |token: &str| {
                let (input, signature) = split(token);
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&raw).unwrap();
                mac.update(input.as_bytes());
                mac.verify_slice(&signature).is_ok()
            };
            (keys, Box::new(check))
        }
        KeyAlgorithm::EdDsa => {
            let (signing, pem) = SigningKey::generate(alg).unwrap();
            let public = {
                use ed25519_dalek::pkcs8::DecodePrivateKey;
                ed25519_dalek::SigningKey::from_pkcs8_pem(pem.expose_secret())
                    .unwrap()
                    .verifying_key()
            };
            let accepted = vec![signing.verifying_key().unwrap()];
            let keys = JwtKeys::with_signing_key(signing, accepted, ISSUER, AUDIENCE, ttl);
            let check = move |token: &str| {
                let (input, signature) = split(token);
                let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
                public.verify_strict(input.as_bytes(), &signature).is_ok()
            };
            (keys, Box::new(check))
        }
        KeyAlgorithm::Es256 => {
            let (signing, pem) = SigningKey::generate(alg).unwrap();
            let public = {
                use p256::pkcs8::DecodePrivateKey;
                *p256::ecdsa::SigningKey::from_pkcs8_pem(pem.expose_secret())
                    .unwrap()
                    .verifying_key()
            };
            let accepted = vec![signing.verifying_key().unwrap()];
            let keys = JwtKeys::with_signing_key(signing, accepted, ISSUER, AUDIENCE, ttl);
            let check = move |token: &str| {
                use p256::ecdsa::signature::Verifier;
                let (input, signature) = split(token);
                let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
                public.verify(input.as_bytes(), &signature).is_ok()
            };
            (keys, Box::new(check))
        }
    }
}

/// A local revocation feed that sends `DENIED` ended sessions, then a comment every second (so that the
/// feed stays current), as the api's `/api/v1/auth/revocations` would.
fn serve_feed() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/feed", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let until = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
                let mut body = String::from(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\n\r\nretry: 1000\n\n",
                );
                for cursor in 1..=DENIED {
                    body.push_str(&format!(
                        "event: revoked\nid: {cursor}\ndata: {{\"sid\":\"{}\",\"until\":{until}}}\n\n",
                        Uuid::now_v7()
                    ));
                }
                body.push_str(": caught up\n\n");
                if stream.write_all(body.as_bytes()).is_err() {
                    return;
                }
                while stream.write_all(b": keep-alive\n\n").is_ok() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    url
}

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let feed = runtime.block_on(async {
        let feed = RevocationFeed::follow_with(&serve_feed(), FeedOptions::default()).unwrap();
        while !(feed.status().current && feed.status().ended_sessions == DENIED) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        feed
    });

    for (name, alg) in [
        ("HS256", KeyAlgorithm::Hs256),
        ("EdDSA", KeyAlgorithm::EdDsa),
        ("ES256", KeyAlgorithm::Es256),
    ] {
        let (keys, primitive) = keys(alg);
        let token = keys
            .issue(Uuid::now_v7(), Uuid::now_v7(), Role::User)
            .unwrap()
            .token;
        let header = format!("Bearer {token}");
        let verifier: &JwtVerifier = keys.verifier();
        assert!(primitive(&token));
        assert!(verifier.verify(&token).is_ok());
        let stateless = Guard::new(JwtVerifier::with_keys(verifier.keys(), ISSUER, AUDIENCE));
        let with_feed = stateless.clone().with_feed(feed.clone());

        let mut group = c.benchmark_group(name);
        group.bench_function("primitive", |b| b.iter(|| primitive(&token)));
        group.bench_function("verifier", |b| b.iter(|| verifier.verify(&token)));
        group.bench_function("guard", |b| {
            b.to_async(&runtime)
                .iter(|| stateless.authenticate(Some(&header)))
        });
        group.bench_function("guard+deny-set", |b| {
            b.to_async(&runtime)
                .iter(|| with_feed.authenticate(Some(&header)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = verification
}
criterion_main!(benches);
