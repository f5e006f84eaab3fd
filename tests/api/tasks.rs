use futures_util::future::join_all;
use reqwest::Method;
use securecrud_tests::{TestApp, assert_problem, error_fields};
use serde_json::{Value, json};

async fn patch(app: &TestApp, token: &str, path: &str, body: &Value) -> reqwest::Response {
    app.send_json(Method::PATCH, path, token, body).await
}

#[actix_web::test]
async fn create_returns_201_with_location_and_the_task() {
    let app = TestApp::spawn().await;
    let (user, pair) = app.signed_up("ada_l").await;
    let token = pair.access_token.clone();

    let response = app
        .post_json_authed("/api/v1/tasks", &token, &json!({"title": "  Buy milk  "}))
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let task: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/tasks/{}", task["id"]));
    assert_eq!(task["title"], "Buy milk", "trimmed");
    assert_eq!(task["description"], Value::Null);
    assert_eq!(task["completed"], false);
    assert_eq!(task["owner_id"], user.id.as_str());
    assert_eq!(task["created_at"], task["updated_at"]);
    let fetched: Value = app
        .get_authed(&location, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, task);
}

#[actix_web::test]
async fn invalid_tasks_are_422_naming_every_field() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let cases: Vec<(Value, Vec<&str>, &str)> = vec![
        (json!({}), vec!["title"], "title is required"),
        (json!({"title": "   "}), vec!["title"], "blank title"),
        (
            json!({"title": "a".repeat(201)}),
            vec!["title"],
            "201 characters",
        ),
        (
            json!({"title": "x", "description": "d".repeat(1001)}),
            vec!["description"],
            "1001 characters",
        ),
        (
            json!({"title": "", "description": "d".repeat(1001)}),
            vec!["title", "description"],
            "both",
        ),
        (
            json!({"title": "x", "completed": "yes"}),
            vec!["completed"],
            "completed must be a boolean",
        ),
        (
            json!({"title": "x", "owner_id": "someone"}),
            vec!["owner_id"],
            "unknown field",
        ),
        (json!({"title": "a\u{0}b"}), vec!["title"], "NUL"),
    ];
    for (body, fields, why) in cases {
        let response = app.post_json_authed("/api/v1/tasks", &token, &body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), fields, "{why}");
    }
    let page: Value = app
        .get_authed("/api/v1/tasks", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 0, "nothing was created");
}

#[actix_web::test]
async fn lengths_are_counted_in_characters_not_bytes() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let task = app
        .create_task(
            &token,
            &json!({"title": "é".repeat(200), "description": "ü".repeat(1000)}),
        )
        .await;

    assert_eq!(task["title"].as_str().unwrap().chars().count(), 200);
}

#[actix_web::test]
async fn put_and_patch_change_only_the_given_fields_and_null_clears_the_description() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let task = app
        .create_task(
            &token,
            &json!({"title": "Buy milk", "description": "2 litres"}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"]);

    let patched: Value = patch(&app, &token, &path, &json!({"completed": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (patched["title"].clone(), patched["description"].clone()),
        (json!("Buy milk"), json!("2 litres"))
    );
    assert_eq!(patched["completed"], true);
    assert_ne!(
        patched["updated_at"], task["updated_at"],
        "updated_at moves"
    );

    let put = app
        .send_json(
            Method::PUT,
            &path,
            &token,
            &json!({"title": " Buy oat milk "}),
        )
        .await;
    assert_eq!(put.status(), 200);
    let put: Value = put.json().await.unwrap();
    assert_eq!(put["title"], "Buy oat milk");
    assert_eq!(put["completed"], true, "left out, kept");

    let cleared: Value = patch(&app, &token, &path, &json!({"description": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["created_at"], task["created_at"]);

    let same: Value = patch(&app, &token, &path, &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        same["updated_at"], cleared["updated_at"],
        "every update moves updated_at"
    );
}

#[actix_web::test]
async fn invalid_updates_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let task = app.create_task(&token, &json!({"title": "Buy milk"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"]);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"title": null}), vec!["title"]),
        (json!({"title": ""}), vec!["title"]),
        (json!({"completed": null}), vec!["completed"]),
        (
            json!({"description": "d".repeat(1001), "title": " "}),
            vec!["title", "description"],
        ),
        (json!({"id": 5}), vec!["id"]),
    ];
    for (body, fields) in cases {
        let problem = assert_problem(
            patch(&app, &token, &path, &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(error_fields(&problem), fields, "{body}");
    }
    let unchanged: Value = app.get_authed(&path, &token).await.json().await.unwrap();
    assert_eq!(unchanged, task);
}

#[actix_web::test]
async fn complete_sets_the_flag_both_ways() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let task = app.create_task(&token, &json!({"title": "Buy milk"})).await;
    let path = format!("/api/v1/tasks/{}/complete", task["id"]);

    let done: Value = patch(&app, &token, &path, &json!({"completed": true}))
        .await
        .json()
        .await
        .unwrap();
    let undone: Value = patch(&app, &token, &path, &json!({"completed": false}))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        (done["completed"].clone(), undone["completed"].clone()),
        (json!(true), json!(false))
    );
    let missing = patch(&app, &token, &path, &json!({})).await;
    assert_problem(missing, 422, "validation_failed").await;
}

#[actix_web::test]
async fn delete_is_204_then_404() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let task = app.create_task(&token, &json!({"title": "Buy milk"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"]);

    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(deleted.status(), 204);
    assert_problem(app.get_authed(&path, &token).await, 404, "not_found").await;
    let again = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(again, 404, "not_found").await;
}

#[actix_web::test]
async fn another_users_task_is_404_for_every_method() {
    let app = TestApp::spawn().await;
    let owner = app.access_token("ada_l").await;
    let intruder = app.access_token("mallory").await;
    let task = app.create_task(&owner, &json!({"title": "Private"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"]);

    let attempts = [
        app.get_authed(&path, &intruder).await,
        app.send_json(Method::PUT, &path, &intruder, &json!({"title": "Mine"}))
            .await,
        patch(&app, &intruder, &path, &json!({"title": "Mine"})).await,
        patch(
            &app,
            &intruder,
            &format!("{path}/complete"),
            &json!({"completed": true}),
        )
        .await,
        app.client
            .delete(app.url(&path))
            .bearer_auth(&intruder)
            .send()
            .await
            .unwrap(),
    ];
    for response in attempts {
        assert_problem(response, 404, "not_found").await;
    }
    let page: Value = app
        .get_authed("/api/v1/tasks", &intruder)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 0);
    let still: Value = app.get_authed(&path, &owner).await.json().await.unwrap();
    assert_eq!(still, task, "untouched");
}

#[actix_web::test]
async fn ids_that_are_not_integers_are_404_never_500() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    for id in [
        "abc",
        "1.5",
        "99999999999999999999",
        "-1",
        "0",
        "9223372036854775807",
        "%00",
    ] {
        let response = app.get_authed(&format!("/api/v1/tasks/{id}"), &token).await;
        assert_problem(response, 404, "not_found").await;
    }
}

#[actix_web::test]
async fn tasks_need_authentication() {
    let app = TestApp::spawn().await;

    assert_problem(app.get("/api/v1/tasks").await, 401, "unauthorized").await;
    let create = app.post_json("/api/v1/tasks", &json!({"title": "x"})).await;
    assert_problem(create, 401, "unauthorized").await;
}

#[actix_web::test]
async fn fifty_concurrent_creates_all_succeed_and_the_total_matches() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let statuses = join_all((0..50).map(|i| {
        let (app, token) = (&app, &token);
        async move {
            app.post_json_authed(
                "/api/v1/tasks",
                token,
                &json!({"title": format!("task {i}")}),
            )
            .await
            .status()
            .as_u16()
        }
    }))
    .await;

    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let page: Value = app
        .get_authed("/api/v1/tasks?limit=100", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 50);
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
}

#[actix_web::test]
async fn concurrent_updates_of_one_task_never_fail() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let task = app
        .create_task(&token, &json!({"title": "contended"}))
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"]);

    let statuses = join_all((0..30).map(|i| {
        let (app, token, path) = (&app, &token, &path);
        async move {
            let body = json!({"title": format!("title {i}"), "completed": i % 2 == 0});
            patch(app, token, path, &body).await.status().as_u16()
        }
    }))
    .await;

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
