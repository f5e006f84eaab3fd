//! Third-party clients, unmodified, against a real api: Python's requests-oauthlib (fetch, use, refresh,
//! revoke, errors) and PyJWT's `PyJWKClient` (verify our key-pair tokens from the JWKS). The script is
//! `tests/oauth/third_party.py`; `make test` installs its packages from PyPI.

use std::process::Command;

use securecrud_auth::KeyAlgorithm;
use securecrud_tests::{PASSWORD, TestApp};

/// Runs the script against the api at `address` as `username` and returns what it printed.
fn run_clients(address: &str, username: &str) -> String {
    let installed = Command::new("python3")
        .args(["-c", "import requests_oauthlib, jwt, cryptography"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        installed,
        "the third-party client tests need requests-oauthlib and PyJWT[crypto]: `make test` installs them, \
         or `python3 -m pip install requests-oauthlib 'PyJWT[crypto]'`"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/oauth/third_party.py");
    let output = Command::new("python3")
        .args([script, address, username, PASSWORD])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && stdout.contains("ALL OK"),
        "the third-party clients failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[actix_web::test]
async fn oauth_and_jose_libraries_work_unmodified_with_key_pair_tokens() {
    for alg in [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256] {
        let (_dir, path) = securecrud_tests::key_file(alg);
        let key_file = path.display().to_string();
        let app = TestApp::spawn_with(&[
            ("JWT_ALGORITHM", alg.as_str()),
            ("JWT_PRIVATE_KEY_FILE", &key_file),
        ])
        .await;
        app.signed_up("ada_l").await;

        // The script blocks on HTTP to this test's server: it runs off the test's runtime thread.
        let address = app.address.clone();
        let output = actix_web::rt::task::spawn_blocking(move || run_clients(&address, "ada_l"))
            .await
            .unwrap();

        assert!(
            output.contains(&format!("PyJWKClient verified the {} token", alg.as_str())),
            "{output}"
        );
        assert!(
            output.contains("wrong password -> InvalidGrantError"),
            "{output}"
        );
        eprintln!("{alg}:\n{output}");
    }
}
