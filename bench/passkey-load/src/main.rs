//! `passkey-load BASE_URL ORIGIN WORKERS SECONDS PASSWORD`: the passkey login benchmark of `make bench`.
//!
//! wrk cannot sign a fresh challenge, so this client does what a browser and its authenticator do:
//! each of WORKERS workers registers its own user with its own passkey (a software authenticator: 1Password's
//! `passkey` crates, ES256, with a signature counter, so two workers never race one counter), then, for
//! SECONDS, signs in over and over: `POST /auth/passkey/options`, sign the challenge, `POST
//! /auth/passkey/verify`. For comparison the same workers then sign in with their password (`POST
//! /auth/login`) for SECONDS on the same api. Prints one Markdown table row per scenario:
//! `| scenario | workers | logins/s | p50 | p99 | errors |`, a login being the whole exchange (both requests
//! and the signing for a passkey). Any answer but 200 is an error (and the exit status is 1), except a `503`
//! that sheds password logins while hashing is at capacity (by design; counted apart, as the wrk row does).

#![allow(clippy::print_stdout, reason = "the table rows are this tool's output")]

use std::time::{Duration, Instant};

use passkey::{
    authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod},
    client::{Client, DefaultClientData},
    crypto::AvailableBackend,
};
use passkey_types::{
    Passkey,
    ctap2::{Aaguid, Ctap2Error},
    webauthn::{
        CredentialCreationOptions, CredentialRequestOptions, PublicKeyCredentialCreationOptions,
        PublicKeyCredentialRequestOptions,
    },
};
use public_suffix::PublicSuffixList;
use serde_json::{Value, json};
use url::Url;

/// Present and verified, at once.
struct Person;

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

type Device = Client<Option<Passkey>, Person, AvailableBackend, PublicSuffixList, ()>;

struct Worker {
    http: reqwest::Client,
    base: String,
    origin: Url,
    device: Device,
    username: String,
    password: String,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A `503` that sheds load by design (password hashing at capacity: `PASSWORD_QUEUE_TIMEOUT_MS`), counted
/// apart from errors, as the wrk login row of `make bench` counts it.
#[derive(Debug)]
struct Shed;

impl std::fmt::Display for Shed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("503: shed")
    }
}

impl std::error::Error for Shed {}

impl Worker {
    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Result<Value, Failure> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err(Box::new(Shed));
        }
        let body: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {body}").into());
        }
        Ok(body)
    }

    /// Registers the worker's user and its passkey.
    async fn set_up(&mut self) -> Result<(), Failure> {
        let email = format!("{}@example.com", self.username);
        self.post(
            "/api/v1/auth/register",
            &json!({"username": self.username, "email": email, "password": self.password}),
            None,
        )
        .await?;
        let tokens = self.password_login().await?;
        let token = tokens["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let options = self
            .post(
                "/api/v1/users/me/passkeys/options",
                &json!({"current_password": self.password}),
                Some(&token),
            )
            .await?;
        let public_key: PublicKeyCredentialCreationOptions =
            serde_json::from_value(options["publicKey"].clone())?;
        let created = self
            .device
            .register(
                &self.origin,
                CredentialCreationOptions { public_key },
                DefaultClientData,
            )
            .await
            .map_err(|err| format!("the authenticator refused: {err:?}"))?;
        self.post(
            "/api/v1/users/me/passkeys",
            &json!({"registration_id": options["registration_id"], "credential": created}),
            Some(&token),
        )
        .await?;
        Ok(())
    }

    async fn password_login(&self) -> Result<Value, Failure> {
        self.post(
            "/api/v1/auth/login",
            &json!({"login": self.username, "password": self.password}),
            None,
        )
        .await
    }

    async fn passkey_login(&mut self) -> Result<Value, Failure> {
        let options = self
            .post("/api/v1/auth/passkey/options", &json!({}), None)
            .await?;
        let public_key: PublicKeyCredentialRequestOptions =
            serde_json::from_value(options["publicKey"].clone())?;
        let asserted = self
            .device
            .authenticate(
                &self.origin,
                CredentialRequestOptions { public_key },
                DefaultClientData,
            )
            .await
            .map_err(|err| format!("the authenticator refused: {err:?}"))?;
        self.post(
            "/api/v1/auth/passkey/verify",
            &json!({"challenge_id": options["challenge_id"], "credential": asserted}),
            None,
        )
        .await
    }
}

/// What a scenario measured: each login's duration, and the failures.
#[derive(Default)]
struct Tally {
    durations: Vec<Duration>,
    shed: usize,
    errors: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

/// Runs `workers` for `seconds`, each doing `passkeys` or password logins, and prints the row.
async fn measure(
    name: &'static str,
    workers: Vec<Worker>,
    seconds: u64,
    passkeys: bool,
) -> Result<(Vec<Worker>, usize), Failure> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let began = Instant::now();
                    let result = if passkeys {
                        worker.passkey_login().await
                    } else {
                        worker.password_login().await
                    };
                    match result {
                        Ok(_) => tally.durations.push(began.elapsed()),
                        Err(err) if err.is::<Shed>() => tally.shed += 1,
                        Err(err) => {
                            if tally.errors == 0 {
                                eprintln!("{name}: {err}");
                            }
                            tally.errors += 1;
                        }
                    }
                }
                (worker, tally)
            })
        })
        .collect();
    let count = tasks.len();
    let mut workers = Vec::with_capacity(count);
    let mut all = Tally::default();
    for task in tasks {
        let (worker, tally) = task.await?;
        workers.push(worker);
        all.durations.extend(tally.durations);
        all.errors += tally.errors;
        all.shed += tally.shed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.durations.sort();
    let shed = if all.shed > 0 {
        format!(" ({} shed with 503)", all.shed)
    } else {
        String::new()
    };
    println!(
        "| {name}{shed} | {count} | {:.1} | {} | {} | {} |",
        all.durations.len() as f64 / elapsed,
        ms(percentile(&all.durations, 50.0)),
        ms(percentile(&all.durations, 99.0)),
        all.errors
    );
    Ok((workers, all.errors))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, origin, workers, seconds, password] = args.as_slice() else {
        return Err("usage: passkey-load BASE_URL ORIGIN WORKERS SECONDS PASSWORD".into());
    };
    let workers: usize = workers.parse()?;
    let seconds: u64 = seconds.parse()?;
    let origin = Url::parse(origin)?;
    let http = reqwest::Client::new();
    let run = std::process::id();
    let mut ready = Vec::with_capacity(workers);
    for i in 0..workers {
        let mut authenticator =
            Authenticator::new(Aaguid::new_empty(), None, Person, AvailableBackend);
        authenticator.set_make_credentials_with_signature_counter(true);
        let mut worker = Worker {
            http: http.clone(),
            base: base.trim_end_matches('/').to_owned(),
            origin: origin.clone(),
            device: Client::new(authenticator).allows_insecure_localhost(true),
            username: format!("pk{run}_{i}"),
            password: password.clone(),
        };
        worker.set_up().await?;
        ready.push(worker);
    }
    let (ready, passkey_errors) = measure(
        "passkey login: POST /auth/passkey/options + sign + POST /auth/passkey/verify",
        ready,
        seconds,
        true,
    )
    .await?;
    // Password logins of passkey users answer `mfa_required` (two-factor is on): the comparison row signs
    // in users without a passkey, one per worker, on the same api.
    let mut plain = Vec::with_capacity(ready.len());
    for (i, worker) in ready.into_iter().enumerate() {
        let email = format!("pw{run}_{i}@example.com");
        let username = format!("pw{run}_{i}");
        worker
            .post(
                "/api/v1/auth/register",
                &json!({"username": username, "email": email, "password": worker.password}),
                None,
            )
            .await?;
        plain.push(Worker { username, ..worker });
    }
    let (_, password_errors) =
        measure("password login: POST /auth/login", plain, seconds, false).await?;
    if passkey_errors + password_errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
