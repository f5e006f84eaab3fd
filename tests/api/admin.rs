use reqwest::Method;
use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields};
use serde_json::{Value, json};

async fn admin_patch(app: &TestApp, token: &str, id: &str, body: &Value) -> reqwest::Response {
    let path = format!("/api/v1/admin/users/{id}");
    app.send_json(Method::PATCH, &path, token, body).await
}

#[actix_web::test]
async fn every_admin_route_is_403_for_a_user() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;
    let token = pair.access_token.clone();

    assert_problem(
        app.get_authed("/api/v1/admin/users", &token).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get_authed("/api/v1/admin/tasks", &token).await,
        403,
        "forbidden",
    )
    .await;
    let promote = admin_patch(&app, &token, &user.id, &json!({"role": "admin"})).await;
    assert_problem(promote, 403, "forbidden").await;
    assert_problem(app.get("/api/v1/admin/users").await, 401, "unauthorized").await;
}

#[actix_web::test]
async fn admins_list_and_search_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    app.signed_up("Ada_L").await;
    app.signed_up("grace").await;

    let all: Value = app
        .get_authed("/api/v1/admin/users", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["total"], 3);
    let by_name: Value = app
        .get_authed("/api/v1/admin/users?q=ADA", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_name["items"][0]["username"], "Ada_L");
    assert_eq!(by_name["total"], 1);
    let by_email: Value = app
        .get_authed("/api/v1/admin/users?q=grace%40example", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_email["items"][0]["username"], "grace");
    let admins: Value = app
        .get_authed("/api/v1/admin/users?role=admin", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["items"][0]["username"], "root");
    let paged: Value = app
        .get_authed("/api/v1/admin/users?limit=1&offset=1", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            paged["items"].as_array().unwrap().len(),
            paged["total"].clone()
        ),
        (1, json!(3))
    );
    assert!(!all.to_string().contains("$2b$"), "no hashes");
    for (query, field) in [("?role=root", "role"), ("?limit=0", "limit"), ("?x=1", "x")] {
        let response = app
            .get_authed(&format!("/api/v1/admin/users{query}"), &admin)
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field]);
    }
}

#[actix_web::test]
async fn an_admin_changes_roles_and_the_change_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let (user, pair) = app.signed_up("ada_l").await;
    let token = pair.access_token.clone();

    let promoted = admin_patch(&app, &admin, &user.id, &json!({"role": "admin"})).await;

    assert_eq!(promoted.status(), 200);
    assert_eq!(promoted.json::<Value>().await.unwrap()["role"], "admin");
    let now_admin = app.get_authed("/api/v1/admin/users", &token).await;
    assert_eq!(
        now_admin.status(),
        200,
        "the same token, the role from the database"
    );
    admin_patch(&app, &admin, &user.id, &json!({"role": "user"})).await;
    assert_problem(
        app.get_authed("/api/v1/admin/users", &token).await,
        403,
        "forbidden",
    )
    .await;
}

#[actix_web::test]
async fn deactivating_a_user_ends_their_sessions_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let (user, pair) = app.signed_up("ada_l").await;

    let response = admin_patch(&app, &admin, &user.id, &json!({"is_active": false})).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["is_active"], false);
    let me = app
        .get_authed("/api/v1/users/me", &pair.access_token.clone())
        .await;
    assert_problem(me, 401, "invalid_token").await;
    assert_problem(
        app.refresh(&pair.refresh_token.clone()).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(app.login("ada_l", PASSWORD).await, 403, "forbidden").await;

    admin_patch(&app, &admin, &user.id, &json!({"is_active": true})).await;
    assert_eq!(
        app.login("ada_l", PASSWORD).await.status(),
        200,
        "reactivated"
    );
}

#[actix_web::test]
async fn an_admin_cannot_demote_or_deactivate_themself() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let me: Value = app
        .get_authed("/api/v1/users/me", &admin)
        .await
        .json()
        .await
        .unwrap();

    let response = admin_patch(
        &app,
        &admin,
        me["id"].as_str().unwrap(),
        &json!({"role": "user", "is_active": false}),
    )
    .await;

    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["role", "is_active"]);
    assert_eq!(
        app.get_authed("/api/v1/admin/users", &admin).await.status(),
        200,
        "still an admin"
    );
}

#[actix_web::test]
async fn unknown_or_malformed_user_ids_are_404_and_bad_bodies_422() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let (user, _) = app.signed_up("ada_l").await;

    let unknown = admin_patch(
        &app,
        &admin,
        &uuid::Uuid::new_v4().to_string(),
        &json!({"role": "admin"}),
    )
    .await;
    assert_problem(unknown, 404, "not_found").await;
    let malformed = app
        .send_json(
            Method::PATCH,
            "/api/v1/admin/users/not-a-uuid",
            &admin,
            &json!({"role": "admin"}),
        )
        .await;
    assert_problem(malformed, 404, "not_found").await;
    let bad = admin_patch(
        &app,
        &admin,
        &user.id,
        &json!({"role": "root", "is_active": "no"}),
    )
    .await;
    let problem = assert_problem(bad, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["is_active"], "type errors first");
    let bad_role = admin_patch(&app, &admin, &user.id, &json!({"role": "root"})).await;
    let problem = assert_problem(bad_role, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["role"]);
}

#[actix_web::test]
async fn admins_list_every_users_tasks_and_filter_by_owner() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let (ada, ada_pair) = app.signed_up("ada_l").await;
    let grace = app.access_token("grace").await;
    app.create_task(
        &ada_pair.access_token.clone(),
        &json!({"title": "ada's", "completed": true}),
    )
    .await;
    app.create_task(&grace, &json!({"title": "grace's"})).await;

    let all: Value = app
        .get_authed("/api/v1/admin/tasks", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["total"], 2);
    let owner = ada.id.as_str();
    let ada_only: Value = app
        .get_authed(&format!("/api/v1/admin/tasks?owner_id={owner}"), &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ada_only["total"], 1);
    assert_eq!(ada_only["items"][0]["owner_id"], owner);
    let filtered: Value = app
        .get_authed(
            "/api/v1/admin/tasks?completed=false&q=GRACE&sort=title",
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["items"][0]["title"], "grace's");
    let bad = app
        .get_authed("/api/v1/admin/tasks?owner_id=nope", &admin)
        .await;
    let problem = assert_problem(bad, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["owner_id"]);
}

#[actix_web::test]
async fn deleting_a_user_deletes_their_tasks() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token("root").await;
    let token = app.access_token("ada_l").await;
    app.create_task(&token, &json!({"title": "doomed"})).await;

    let response = app
        .send_json(
            Method::DELETE,
            "/api/v1/users/me",
            &token,
            &json!({"password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status(), 204);
    let all: Value = app
        .get_authed("/api/v1/admin/tasks", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["total"], 0);
}
