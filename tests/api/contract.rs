//! Input the contract refuses as a whole class: NUL characters in any text, `null` where a field is not
//! nullable. And the served OpenAPI document states the rules the server enforces.

use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields};
use serde_json::{Value, json};

/// A 422 naming exactly `fields` (in any order).
async fn assert_fields(response: reqwest::Response, fields: &[&str]) {
    let problem = assert_problem(response, 422, "validation_failed").await;
    let mut found = error_fields(&problem);
    found.sort();
    let mut expected: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected, "{problem}");
}

#[actix_web::test]
async fn nul_characters_in_json_bodies_are_422_on_their_field() {
    let app = TestApp::spawn().await;
    let (_, pair) = app.signed_up("ada_l").await;
    let token = pair.access_token.clone();

    let cases: &[(&str, Value, &[&str])] = &[
        (
            "/api/v1/auth/login",
            json!({"login": "ada_l\u{0}", "password": PASSWORD}),
            &["login"],
        ),
        (
            "/api/v1/auth/login",
            json!({"login": "ada_l@example.com", "password": "pass\u{0}word"}),
            &["password"],
        ),
        (
            "/api/v1/auth/register",
            json!({"username": "ada\u{0}", "email": "a\u{0}@example.com", "password": "long enough\u{0}"}),
            &["username", "email", "password"],
        ),
        (
            "/api/v1/auth/refresh",
            json!({"refresh_token": "\u{0}"}),
            &["refresh_token"],
        ),
        (
            "/api/v1/auth/verify-email",
            json!({"token": "abc\u{0}"}),
            &["token"],
        ),
        (
            "/api/v1/auth/password-reset/request",
            json!({"email": "ada_l@example.com\u{0}"}),
            &["email"],
        ),
    ];
    for (path, body, fields) in cases {
        assert_fields(app.post_json(path, body).await, fields).await;
    }

    let task = app
        .post_json_authed(
            "/api/v1/tasks",
            &token,
            &json!({"title": "milk\u{0}", "description": "\u{0}"}),
        )
        .await;
    assert_fields(task, &["title", "description"]).await;
    let me = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &token,
            &json!({"username": "ada\u{0}l"}),
        )
        .await;
    assert_fields(me, &["username"]).await;
    let password = app
        .post_json_authed(
            "/api/v1/users/me/password",
            &token,
            &json!({"current_password": "\u{0}", "new_password": "new\u{0}passphrase"}),
        )
        .await;
    assert_fields(password, &["current_password", "new_password"]).await;

    assert_eq!(
        app.login("ada_l", PASSWORD).await.status(),
        200,
        "nothing was locked or lost"
    );
}

#[actix_web::test]
async fn nul_characters_in_forms_and_query_parameters_are_422_on_their_field() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let form = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=ada_l%00&password=x%00y")
        .send()
        .await
        .unwrap();
    // The token endpoint answers in RFC 6749's terms: 400 invalid_request, with the same field list.
    let problem = assert_problem(form, 400, "invalid_request").await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["password", "username"], "{problem}");

    for query in ["q=%00", "sort=title%00", "limit=5%00", "completed=true%00"] {
        let list = app
            .get_authed(&format!("/api/v1/tasks?{query}"), &token)
            .await;
        let field = query.split('=').next().unwrap();
        assert_fields(list, &[field]).await;
    }
}

#[actix_web::test]
async fn null_is_refused_where_a_field_is_not_nullable() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;

    let created = app
        .post_json_authed(
            "/api/v1/tasks",
            &token,
            &json!({"title": "Buy milk", "completed": null}),
        )
        .await;
    assert_fields(created, &["completed"]).await;
    let created = app
        .post_json_authed(
            "/api/v1/tasks",
            &token,
            &json!({"title": null, "description": null}),
        )
        .await;
    assert_fields(created, &["title"]).await;

    let task = app
        .create_task(&token, &json!({"title": "Buy milk", "description": null}))
        .await;
    assert_eq!(task["description"], Value::Null, "description is nullable");
    let path = format!("/api/v1/tasks/{}", task["id"]);
    let patched = app
        .send_json(
            reqwest::Method::PATCH,
            &path,
            &token,
            &json!({"title": null, "completed": null}),
        )
        .await;
    assert_fields(patched, &["title", "completed"]).await;
    let me = app
        .send_json(
            reqwest::Method::PATCH,
            "/api/v1/users/me",
            &token,
            &json!({"username": null}),
        )
        .await;
    assert_fields(me, &["username"]).await;
}

/// The schema of component `name` of the served document.
fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    &doc["components"]["schemas"][name]
}

#[actix_web::test]
async fn the_document_states_lengths_patterns_types_nullability_and_closed_bodies() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    let register = component(&doc, "RegisterRequest");
    assert_eq!(register["additionalProperties"], false);
    assert_eq!(
        register["required"],
        json!(["email", "password", "username"])
    );
    assert_eq!(register["properties"]["username"]["minLength"], 3);
    assert_eq!(register["properties"]["username"]["maxLength"], 32);
    assert_eq!(
        register["properties"]["username"]["pattern"],
        "^[A-Za-z0-9_.-]*$"
    );
    assert_eq!(register["properties"]["email"]["format"], "email");
    assert_eq!(register["properties"]["password"]["minLength"], 8);

    let task = component(&doc, "TaskResponse");
    assert_eq!(task["properties"]["description"]["nullable"], true);
    let page_item = &component(&doc, "TaskPageResponse")["properties"]["items"]["items"];
    assert_eq!(page_item["properties"]["description"]["nullable"], true);
    let create = component(&doc, "CreateTaskRequest");
    assert_eq!(create["properties"]["completed"]["type"], "boolean");
    assert!(create["properties"]["completed"].get("nullable").is_none());
    assert_eq!(create["properties"]["description"]["maxLength"], 1000);
    assert!(
        create["properties"]["title"]["pattern"]
            .as_str()
            .unwrap()
            .contains("{0,198}")
    );

    // An email change needs the current password of an account that has one (one made by an OpenID
    // Connect provider re-authenticates with a fresh session): the schema cannot tell them apart, so it
    // says so in words, and the server answers 422 naming the field.
    let update_me = component(&doc, "UpdateMeRequest");
    assert!(
        update_me["properties"]["current_password"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("required with `email` when the account has one")),
        "{update_me}"
    );

    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if name.ends_with("Request") || name.ends_with("Confirm") || name == "AdminUserUpdate" {
            assert_eq!(schema["additionalProperties"], false, "{name}");
        }
    }
    let token_form = &doc["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["schema"]["$ref"];
    assert_eq!(token_form, "#/components/schemas/TokenForm");
    assert_eq!(
        component(&doc, "TokenForm")["required"],
        json!(["grant_type"])
    );
    assert_eq!(
        component(&doc, "TokenForm")["oneOf"][1]["required"],
        json!(["refresh_token"]),
        "each grant's parameters are required for that grant"
    );
    assert_eq!(component(&doc, "RevokeForm")["required"], json!(["token"]));

    let params = doc["paths"]["/api/v1/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap()
    };
    assert_eq!(
        param("limit"),
        json!({"type": "integer", "format": "int64", "minimum": 1, "maximum": 100})
    );
    assert_eq!(param("completed"), json!({"type": "boolean"}));
    assert_eq!(param("sort")["enum"].as_array().unwrap().len(), 6);
    assert!(
        doc.to_string().find("x-securecrud").is_none(),
        "no carrier left"
    );
}

#[actix_web::test]
async fn thousands_of_unknown_fields_are_counted_and_fifty_listed() {
    let app = TestApp::spawn().await;
    let mut body = serde_json::Map::new();
    for i in 0..5_000 {
        body.insert(format!("k{i:04}"), json!(1));
    }
    body.insert("username".into(), json!("ada_l"));

    let response = app
        .post_json("/api/v1/auth/register", &Value::Object(body))
        .await;

    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 50);
    assert_eq!(
        problem["detail"],
        "5000 fields are invalid (the first 50 are listed)"
    );
}

/// serde_json keeps the last of two equal keys; a proxy or a WAF may read the first. A body two readers
/// could disagree about is refused, naming the key, and nothing is changed.
#[actix_web::test]
async fn a_key_given_twice_in_a_json_body_is_422_naming_it() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    for body in [
        r#"{"title":"harmless","title":"other"}"#,
        r#"{"title":"ok","description":"x","completed":false,"completed":true}"#,
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 422, "validation_failed").await;
        let field = problem["errors"][0]["field"].as_str().unwrap();
        assert!(field == "title" || field == "completed", "{problem}");
        assert_eq!(problem["errors"][0]["message"], "is given more than once");
    }
    let login = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("Content-Type", "application/json")
        .body(r#"{"login":"nobody","login":"ada_l","password":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(login, 422, "validation_failed").await;
    let page: serde_json::Value = app
        .get_authed("/api/v1/tasks", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 0, "nothing was created");
}
