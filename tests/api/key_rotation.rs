use securecrud_tests::{TEST_JWT_SECRET, TestApp, assert_problem};

const NEW_SECRET: &str = "the-next-secret-the-next-secret-0123456789";

#[actix_web::test]
async fn tokens_signed_with_a_previous_secret_keep_working_during_a_rotation() {
    let before = TestApp::spawn().await;
    let (_, pair) = before.signed_up("ada_l").await;
    let old_token = pair.access_token.clone();

    let rotated = before
        .sibling(&[
            ("JWT_SECRET", NEW_SECRET),
            ("JWT_PREVIOUS_SECRETS", TEST_JWT_SECRET),
        ])
        .await;
    let without_previous = before.sibling(&[("JWT_SECRET", NEW_SECRET)]).await;

    assert_eq!(
        rotated
            .get_authed("/api/v1/users/me", &old_token)
            .await
            .status(),
        200
    );
    let refused = without_previous
        .get_authed("/api/v1/users/me", &old_token)
        .await;
    assert_problem(refused, 401, "invalid_token").await;
    let fresh = rotated.tokens("ada_l").await;
    let new_token = fresh.access_token.clone();
    assert_eq!(
        without_previous
            .get_authed("/api/v1/users/me", &new_token)
            .await
            .status(),
        200
    );
    let old_instance = before.get_authed("/api/v1/users/me", &new_token).await;
    assert_problem(old_instance, 401, "invalid_token").await;
}

#[actix_web::test]
async fn a_refresh_repeated_across_old_and_new_instances_during_a_rotation_is_not_reuse() {
    let old_instance = TestApp::spawn().await;
    let new_instance = old_instance
        .sibling(&[
            ("JWT_SECRET", NEW_SECRET),
            ("JWT_PREVIOUS_SECRETS", TEST_JWT_SECRET),
        ])
        .await;
    old_instance.signed_up("ada_l").await;

    for (first, second) in [
        (&new_instance, &old_instance),
        (&old_instance, &new_instance),
    ] {
        let refresh = first.tokens("ada_l").await.refresh_token.clone();
        let a: serde_json::Value = first.refresh(&refresh).await.json().await.unwrap();
        let repeat = second.refresh(&refresh).await;
        assert_eq!(repeat.status(), 200, "a repeat within the grace window");
        let b: serde_json::Value = repeat.json().await.unwrap();
        assert_eq!(
            a["refresh_token"], b["refresh_token"],
            "both instances give the same successor"
        );
    }
}
