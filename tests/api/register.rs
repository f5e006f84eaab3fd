use futures_util::future::join_all;
use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields};
use serde_json::{Value, json};

#[actix_web::test]
async fn register_creates_a_user_and_points_at_me() {
    let app = TestApp::spawn().await;

    let response = app.register("Ada_L", "Ada@Example.COM", PASSWORD).await;

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/api/v1/users/me");
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(PASSWORD) && !text.contains("$2b$"),
        "no password or hash: {text}"
    );
    let user: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(user["username"], "Ada_L", "stored as given");
    assert_eq!(user["email"], "ada@example.com", "stored lower-cased");
    assert_eq!(user["role"], "user");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["is_active"], true);
    assert_eq!(user["mfa_enabled"], false);
    assert_eq!(user["has_password"], true);
    assert!(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    let created = user["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'), "RFC 3339 UTC: {created}");
    // Sorted: whether serde_json keeps insertion order depends on the features other crates turn on.
    let mut keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "email_verified",
            "has_password",
            "id",
            "is_active",
            "mfa_enabled",
            "role",
            "updated_at",
            "username"
        ]
    );
}

#[actix_web::test]
async fn a_username_taken_in_another_case_is_a_409() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    let response = app.register("ADA_L", "other@example.com", PASSWORD).await;

    assert_problem(response, 409, "username_taken").await;
}

#[actix_web::test]
async fn an_email_taken_in_another_case_is_a_409() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", PASSWORD).await;

    let response = app.register("grace", "ADA@example.com", PASSWORD).await;

    assert_problem(response, 409, "email_taken").await;
}

#[actix_web::test]
async fn invalid_registrations_are_422_naming_every_bad_field() {
    let app = TestApp::spawn().await;
    let long_password = "a1".repeat(36) + "b"; // 73 bytes
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (
            json!({}),
            vec!["username", "email", "password"],
            "every missing field is listed",
        ),
        (
            json!({"username": "ab", "email": "ada@example.com", "password": PASSWORD}),
            vec!["username"],
            "username too short",
        ),
        (
            json!({"username": "a".repeat(33), "email": "ada@example.com", "password": PASSWORD}),
            vec!["username"],
            "username too long",
        ),
        (
            json!({"username": "ada l", "email": "ada@example.com", "password": PASSWORD}),
            vec!["username"],
            "username with a space",
        ),
        (
            json!({"username": "ada_l", "email": "not-an-email", "password": PASSWORD}),
            vec!["email"],
            "invalid email",
        ),
        (
            json!({"username": "ada_l", "email": format!("{}@example.com", "a".repeat(250)), "password": PASSWORD}),
            vec!["email"],
            "email too long",
        ),
        (
            json!({"username": "ada_l", "email": "ada@example.com", "password": "short1"}),
            vec!["password"],
            "password too short",
        ),
        (
            json!({"username": "ada_l", "email": "ada@example.com", "password": long_password}),
            vec!["password"],
            "password over 72 bytes",
        ),
        (
            json!({"username": "ada_l", "email": "ada@example.com", "password": "password1"}),
            vec!["password"],
            "common password",
        ),
        (
            json!({"username": "ada_lovelace", "email": "ada@example.com", "password": "Ada_Lovelace"}),
            vec!["password"],
            "password equal to the username",
        ),
        (
            json!({"username": "ada_l", "email": "ada@example.com", "password": "ADA@EXAMPLE.COM"}),
            vec!["password"],
            "password equal to the email",
        ),
        (
            json!({"username": 42, "email": "ada@example.com", "password": PASSWORD}),
            vec!["username"],
            "username of the wrong type",
        ),
        (
            json!({"username": "ada_l", "email": "ada@example.com", "password": PASSWORD, "role": "admin"}),
            vec!["role"],
            "unknown field (no self-promotion)",
        ),
        (
            json!({"username": "a", "email": "b", "password": "c"}),
            vec!["username", "email", "password"],
            "all three invalid",
        ),
        (json!(["ada_l"]), vec!["body"], "not an object"),
    ];
    for (body, fields, why) in cases {
        let response = app.post_json("/api/v1/auth/register", &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        let mut found = error_fields(&problem);
        found.sort();
        let mut expected: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        expected.sort();
        assert_eq!(found, expected, "{why}: {problem}");
        assert!(
            !problem.to_string().contains(PASSWORD),
            "{why}: the password is never echoed"
        );
    }
}

#[actix_web::test]
async fn a_refused_registration_creates_nothing() {
    let app = TestApp::spawn().await;
    app.register("ada_l", "ada@example.com", "password1").await;

    let response = app.register("ada_l", "ada@example.com", PASSWORD).await;

    assert_eq!(
        response.status(),
        201,
        "the username was not taken by the refused attempt"
    );
}

#[actix_web::test]
async fn concurrent_registrations_with_one_email_give_one_201_and_409_for_the_rest() {
    let app = TestApp::spawn().await;

    let attempts = (0..100).map(|i| {
        let app = &app;
        async move {
            app.register(&format!("user_{i}"), "same@example.com", PASSWORD)
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = join_all(attempts).await;

    let created = statuses.iter().filter(|s| **s == 201).count();
    let conflicts = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, conflicts), (1, 99), "{statuses:?}");
}

/// `İ` (U+0130) lower-cases to `i` and a combining dot: an address checked before lower-casing was stored
/// in a form that failed the same check when read back (`500`). What is stored is what was validated.
#[actix_web::test]
async fn an_email_that_lower_casing_changes_is_stored_as_validated_or_refused() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up("ada_l").await;
    let token = tokens.access_token.clone();
    for raw in ["\u{130}da@example.com", "ada@\u{130}xample.com"] {
        let registered = app.register("grace_h", raw, PASSWORD).await;
        let status = registered.status().as_u16();
        assert!(status == 201 || status == 422, "{raw}: {status}");
        if status == 422 {
            assert_eq!(error_fields(&registered.json().await.unwrap()), ["email"]);
        }
        let changed = app
            .client
            .patch(app.url("/api/v1/users/me"))
            .bearer_auth(&token)
            .json(&json!({"email": raw, "current_password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let status = changed.status().as_u16();
        assert!(
            status == 200 || status == 422 || status == 409,
            "{raw}: {status}"
        );
        // Whatever was stored reads back.
        assert_eq!(
            app.get_authed("/api/v1/users/me", &token).await.status(),
            200
        );
    }
}
