use proptest::strategy::{Strategy, ValueTree};
use securecrud_tests::{TestApp, assert_problem, error_fields};
use serde_json::{Value, json};

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .get_authed(&format!("/api/v1/tasks{query}"), token)
        .await;
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect()
}

fn q(text: &str) -> String {
    format!("?q={}", urlencode(text))
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn the_list_pages_with_limit_offset_and_total() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    for title in ["one", "two", "three"] {
        app.create_task(&token, &json!({"title": title})).await;
    }

    let first = list(&app, &token, "").await;
    assert_eq!(
        (
            first["total"].clone(),
            first["limit"].clone(),
            first["offset"].clone()
        ),
        (json!(3), json!(20), json!(0))
    );
    assert_eq!(
        titles(&first),
        ["three", "two", "one"],
        "newest first by default"
    );

    let page = list(&app, &token, "?limit=2&offset=1").await;
    assert_eq!(titles(&page), ["two", "one"]);
    assert_eq!(
        (
            page["total"].clone(),
            page["limit"].clone(),
            page["offset"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );

    let past_the_end = list(&app, &token, "?offset=10").await;
    assert_eq!(titles(&past_the_end), Vec::<String>::new());
    assert_eq!(past_the_end["total"], 3);
}

#[actix_web::test]
async fn the_six_sort_orders() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let b = app.create_task(&token, &json!({"title": "banana"})).await;
    app.create_task(&token, &json!({"title": "Apple"})).await;
    app.create_task(&token, &json!({"title": "cherry"})).await;
    app.send_json(
        reqwest::Method::PATCH,
        &format!("/api/v1/tasks/{}", b["id"]),
        &token,
        &json!({"completed": true}),
    )
    .await;

    let cases = [
        ("created_at", ["banana", "Apple", "cherry"]),
        ("-created_at", ["cherry", "Apple", "banana"]),
        ("updated_at", ["Apple", "cherry", "banana"]),
        ("-updated_at", ["banana", "cherry", "Apple"]),
        ("title", ["Apple", "banana", "cherry"]),
        ("-title", ["cherry", "banana", "Apple"]),
    ];
    for (sort, expected) in cases {
        assert_eq!(
            titles(&list(&app, &token, &format!("?sort={sort}")).await),
            expected,
            "sort={sort}"
        );
    }
}

#[actix_web::test]
async fn completed_filters() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    app.create_task(&token, &json!({"title": "done", "completed": true}))
        .await;
    app.create_task(&token, &json!({"title": "open"})).await;

    assert_eq!(
        titles(&list(&app, &token, "?completed=true").await),
        ["done"]
    );
    assert_eq!(
        titles(&list(&app, &token, "?completed=false").await),
        ["open"]
    );
}

#[actix_web::test]
async fn q_matches_title_or_description_case_insensitively_including_non_ascii() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    app.create_task(&token, &json!({"title": "Ärger im Büro"}))
        .await;
    app.create_task(
        &token,
        &json!({"title": "Groceries", "description": "MILK and Éclairs"}),
    )
    .await;
    app.create_task(&token, &json!({"title": "Unrelated"}))
        .await;

    let cases = [
        ("ärger", vec!["Ärger im Büro"]),
        ("BÜRO", vec!["Ärger im Büro"]),
        ("milk", vec!["Groceries"]),
        ("éclairs", vec!["Groceries"]),
        ("ÉCLAIRS", vec!["Groceries"]),
        ("nothing like it", vec![]),
    ];
    for (text, expected) in cases {
        assert_eq!(
            titles(&list(&app, &token, &q(text)).await),
            expected,
            "q={text}"
        );
    }
}

#[actix_web::test]
async fn wildcards_in_q_match_themselves() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    for title in [
        "100% done",
        "100 done",
        "a_b",
        "axb",
        r"back\slash",
        "backslash",
    ] {
        app.create_task(&token, &json!({"title": title})).await;
    }

    assert_eq!(titles(&list(&app, &token, &q("%")).await), ["100% done"]);
    assert_eq!(titles(&list(&app, &token, &q("_")).await), ["a_b"]);
    assert_eq!(titles(&list(&app, &token, &q(r"\")).await), [r"back\slash"]);
    assert_eq!(titles(&list(&app, &token, &q("0% d")).await), ["100% done"]);
}

#[actix_web::test]
async fn bad_list_parameters_are_422_naming_each() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let cases: &[(&str, &[&str])] = &[
        ("?limit=0", &["limit"]),
        ("?limit=101", &["limit"]),
        ("?limit=ten", &["limit"]),
        ("?offset=-1", &["offset"]),
        ("?sort=priority", &["sort"]),
        ("?completed=yes", &["completed"]),
        ("?page=2", &["page"]),
        ("?limit=1&limit=2", &["limit"]),
        (
            "?limit=0&offset=x&sort=up&completed=1",
            &["completed", "sort", "limit", "offset"],
        ),
        ("?owner_id=x", &["owner_id"]),
    ];
    for (query, fields) in cases {
        let response = app
            .get_authed(&format!("/api/v1/tasks{query}"), &token)
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        let mut found = error_fields(&problem);
        found.sort();
        let mut expected: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        expected.sort();
        assert_eq!(found, expected, "{query}");
    }
}

#[actix_web::test]
async fn a_list_shows_only_the_callers_tasks() {
    let app = TestApp::spawn().await;
    let ada = app.access_token("ada_l").await;
    let grace = app.access_token("grace").await;
    app.create_task(&ada, &json!({"title": "ada's"})).await;
    app.create_task(&grace, &json!({"title": "grace's"})).await;

    assert_eq!(titles(&list(&app, &ada, "").await), ["ada's"]);
    assert_eq!(titles(&list(&app, &grace, "").await), ["grace's"]);
}

#[actix_web::test]
async fn random_titles_round_trip_exactly_and_are_found_by_q() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let fixed = [
        "'; DROP TABLE tasks; --",
        "SELECT * FROM users WHERE 1=1",
        r#"quote " and ' and \" and `"#,
        "%_%_\\%",
        "emoji 🦀 and 中文 and עברית",
        "tab\tand\nnewline",
    ];
    let strategy = "[^\u{0}]{1,60}".prop_filter("not blank", |s| !s.trim().is_empty());
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let random: Vec<String> = (0..40)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();

    for raw in fixed.iter().map(|s| (*s).to_owned()).chain(random) {
        let created = app.create_task(&token, &json!({"title": raw})).await;
        let expected = raw.trim();
        assert_eq!(created["title"], expected, "round trip of {raw:?}");
        let fetched: Value = app
            .get_authed(&format!("/api/v1/tasks/{}", created["id"]), &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(fetched["title"], expected);
        let found = list(&app, &token, &format!("{}&limit=100", q(expected))).await;
        let ids: Vec<&Value> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["id"])
            .collect();
        assert!(
            ids.contains(&&created["id"]),
            "q={expected:?} finds its task"
        );
    }
}

/// Every member of a listed task is the task's own (the page reads its columns by position): compared with
/// `GET /tasks/{id}` on tasks whose members all differ (a description or none, completed or not, an update
/// after creation, so `updated_at` is not `created_at`).
#[actix_web::test]
async fn a_listed_task_is_the_task_itself_member_by_member() {
    let app = TestApp::spawn().await;
    let token = app.access_token("ada_l").await;
    let plain = app
        .create_task(
            &token,
            &json!({"title": "plain", "description": "first words"}),
        )
        .await;
    app.create_task(&token, &json!({"title": "bare", "description": null}))
        .await;
    let id = plain["id"].as_i64().unwrap();
    let patched = app
        .send_json(
            reqwest::Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            &token,
            &json!({"completed": true, "description": "other words"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let page = list(&app, &token, "?sort=title").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        let path = format!("/api/v1/tasks/{}", item["id"]);
        let alone: Value = app.get_authed(&path, &token).await.json().await.unwrap();
        assert_eq!(item, &alone);
    }
    let done = &items[1];
    assert_eq!(done["title"], "plain");
    assert_eq!(done["description"], "other words");
    assert_eq!(done["completed"], true);
    assert_ne!(done["updated_at"], done["created_at"]);
    assert_eq!(items[0]["description"], Value::Null);
    assert_eq!(items[0]["completed"], false);
}
