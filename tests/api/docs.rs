use securecrud_tests::{TestApp, assert_problem};
use serde_json::Value;

#[actix_web::test]
async fn the_openapi_document_lists_every_route_with_security_and_errors() {
    let app = TestApp::spawn().await;

    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("/health", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/token", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/logout-all", "post"),
        ("/api/v1/users/me", "get"),
        ("/api/v1/users/me", "patch"),
        ("/api/v1/users/me", "delete"),
        ("/api/v1/users/me/password", "post"),
        ("/api/v1/tasks", "get"),
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks/{id}", "get"),
        ("/api/v1/tasks/{id}", "put"),
        ("/api/v1/tasks/{id}", "patch"),
        ("/api/v1/tasks/{id}", "delete"),
        ("/api/v1/tasks/{id}/complete", "patch"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/users/{id}", "patch"),
        ("/api/v1/admin/tasks", "get"),
    ];
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|s| s.starts_with('4') || s.starts_with('5'))
        );
    }
    let me = &doc["paths"]["/api/v1/users/me"]["get"];
    for (path, method) in [
        ("/api/v1/users/me", "get"),
        ("/api/v1/users/me", "patch"),
        ("/api/v1/users/me", "delete"),
        ("/api/v1/users/me/password", "post"),
        ("/api/v1/auth/logout-all", "post"),
    ] {
        let security = doc["paths"][path][method]["security"].to_string();
        assert!(
            security.contains("OAuth2PasswordBearer") && security.contains("bearerAuth"),
            "{method} {path}"
        );
    }
    assert!(
        doc["paths"]["/api/v1/auth/refresh"]["post"]["security"].is_null(),
        "refresh takes no bearer"
    );
    let list_params: Vec<&str> = doc["paths"]["/api/v1/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["completed", "q", "sort", "limit", "offset"] {
        assert!(list_params.contains(&name), "{name} documented");
    }
    assert_eq!(
        doc["components"]["schemas"]["TaskResponse"]["properties"]["description"]["nullable"],
        true
    );
    assert!(doc["paths"]["/api/v1/admin/users"]["get"]["responses"]["403"].is_object());
    assert!(me["responses"]["401"]["content"]["application/problem+json"].is_object());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"],
        "/api/v1/auth/token"
    );
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let register = &doc["paths"]["/api/v1/auth/register"]["post"];
    assert!(register["responses"]["201"].is_object());
    assert!(register["requestBody"]["content"]["application/json"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["RegisterRequest"]["required"],
        serde_json::json!(["email", "password", "username"])
    );
    let form = &doc["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["schema"]["$ref"];
    assert_eq!(form, "#/components/schemas/TokenForm");
    assert_eq!(
        doc["components"]["schemas"]["TokenForm"]["required"],
        serde_json::json!(["grant_type"])
    );
    for (path, method) in [
        ("/api/v1/auth/revoke", "post"),
        ("/api/v1/auth/check", "get"),
        ("/.well-known/oauth-authorization-server", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    let check = &doc["paths"]["/api/v1/auth/check"]["get"];
    assert!(check["responses"]["204"]["headers"]["X-Auth-User-Id"].is_object());
    assert!(check["security"].to_string().contains("bearerAuth"));
}

#[actix_web::test]
async fn swagger_ui_is_served_by_the_api_itself() {
    let app = TestApp::spawn().await;

    let redirect = app.get("/docs").await;
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN: {html}"
    );
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
        "swagger-ui.css",
    ] {
        assert!(html.contains(asset), "{asset} linked");
        let response = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.bytes().await.unwrap().len() > 100,
            "{asset} has content"
        );
    }
}

#[actix_web::test]
async fn an_unknown_docs_file_is_a_404_problem_not_a_crash() {
    let app = TestApp::spawn().await;

    for path in [
        "/docs/nope.js",
        "/docs/../Cargo.toml",
        "/docs/swagger-ui-bundle.js.map",
        "/docs/a/b",
    ] {
        assert_problem(app.get(path).await, 404, "not_found").await;
    }
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "the server still answers"
    );
}
