use securecrud_tests::{PASSWORD, TestApp, assert_problem, error_fields};

#[actix_web::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = TestApp::spawn().await;

    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/users/me",
        "/api/v1/users/me/extra",
    ] {
        assert_problem(app.get(path).await, 404, "not_found").await;
    }
}

#[actix_web::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let app = TestApp::spawn().await;
    let cases = [
        (reqwest::Method::GET, "/api/v1/auth/register", "POST"),
        (reqwest::Method::DELETE, "/api/v1/auth/login", "POST"),
        (reqwest::Method::PUT, "/api/v1/auth/token", "POST"),
        (
            reqwest::Method::POST,
            "/api/v1/users/me",
            "GET, HEAD, PATCH, DELETE",
        ),
        (reqwest::Method::HEAD, "/api/v1/auth/login", "POST"),
        (reqwest::Method::GET, "/api/v1/auth/refresh", "POST"),
        (reqwest::Method::GET, "/api/v1/auth/logout", "POST"),
        (reqwest::Method::DELETE, "/api/v1/auth/logout-all", "POST"),
        (reqwest::Method::GET, "/api/v1/users/me/password", "POST"),
        (reqwest::Method::POST, "/health", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], allow, "{path}");
        if method == reqwest::Method::HEAD {
            assert_eq!(response.status(), 405, "{path}");
        } else {
            assert_problem(response, 405, "method_not_allowed").await;
        }
    }
}

#[actix_web::test]
async fn head_answers_every_get_route_as_get_without_a_body() {
    let app = TestApp::spawn().await;
    let (_, tokens) = app.signed_up("ada_l").await;
    let token = tokens.access_token.clone();
    app.post_json_authed(
        "/api/v1/tasks",
        &token,
        &serde_json::json!({"title": "Buy milk"}),
    )
    .await;
    for (path, authed) in [
        ("/health", false),
        ("/health/live", false),
        ("/openapi.json", false),
        ("/.well-known/jwks.json", false),
        ("/.well-known/oauth-authorization-server", false),
        ("/api/v1/users/me", true),
        ("/api/v1/tasks?limit=5", true),
        ("/api/v1/tasks/1", true),
        ("/api/v1/users/me/sessions", true),
    ] {
        let request = |method: reqwest::Method| {
            let builder = app.client.request(method, app.url(path));
            if authed {
                builder.bearer_auth(&token)
            } else {
                builder
            }
        };
        let get = request(reqwest::Method::GET).send().await.unwrap();
        let head = request(reqwest::Method::HEAD).send().await.unwrap();

        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(get.status(), 200, "{path}");
        for name in ["content-type", "cache-control"] {
            assert_eq!(
                head.headers().get(name),
                get.headers().get(name),
                "{name} of {path}"
            );
        }
        let get_body = get.bytes().await.unwrap();
        assert_eq!(
            head.headers()["content-length"],
            get_body.len().to_string().as_str(),
            "{path}: the length of the body left out"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    // On the wire, the body is left out: on one kept-alive connection, the answer to a GET sent after a HEAD
    // begins right after the HEAD's headers (a client library never reads a HEAD's body, so this is read
    // raw). The GET is sent once the HEAD's headers are in: actix would apply a pipelined request's
    // `Connection: close` to the answer before it.
    use std::io::{Read, Write};
    let url = reqwest::Url::parse(&app.url("/")).unwrap();
    let mut stream =
        std::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    stream
        .write_all(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut byte = [0_u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "the HEAD's answer ended early"
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.contains("content-length: 0\r\n"),
        "the GET's length: {head}"
    );
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 200"),
        "no body after the HEAD's headers: {head}{rest}"
    );

    // An error keeps its status and headers.
    let unauthorized = app
        .client
        .head(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert!(unauthorized.headers().contains_key("www-authenticate"));
}

#[actix_web::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let body = format!(r#"{{"username":"{}"}}"#, "a".repeat(65 * 1024));

    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_problem(response, 413, "payload_too_large").await;
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_415_or_400() {
    let app = TestApp::spawn().await;
    let send = |content_type: Option<&'static str>, body: &'static str| {
        let mut request = app.client.post(app.url("/api/v1/auth/register")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };

    assert_problem(
        send(Some("text/plain"), "{}").await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_problem(
        send(None, "{}").await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_problem(
        send(Some("application/json"), "{not json").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert_problem(
        send(Some("application/json"), "").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
}

#[actix_web::test]
async fn a_good_client_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = TestApp::spawn().await;
    let send = |id: &'static str| {
        app.client
            .get(app.url("/api/v1/users/me"))
            .header("x-request-id", id)
            .send()
    };

    let kept = send("client-id_1.2:3").await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "client-id_1.2:3");
    let body = assert_problem(kept, 401, "unauthorized").await;
    assert_eq!(body["request_id"], "client-id_1.2:3");

    let replaced = send("bad id with spaces").await.unwrap();
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id, "bad id with spaces");
    assert!(!id.is_empty());
}

#[actix_web::test]
async fn every_response_has_a_request_id_and_security_headers() {
    let app = TestApp::spawn().await;
    let responses = [
        app.get("/health").await,
        app.get("/nope").await,
        app.get("/api/v1/users/me").await,
        app.register("ada_l", "ada@example.com", PASSWORD).await,
    ];
    let mut ids = Vec::new();
    for response in responses {
        let headers = response.headers();
        ids.push(headers["x-request-id"].to_str().unwrap().to_owned());
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "ids are unique");
}

#[actix_web::test]
async fn validation_errors_list_every_field_without_echoing_secrets() {
    let app = TestApp::spawn().await;

    let response = app
        .post_json(
            "/api/v1/auth/register",
            &serde_json::json!({"username": "x", "email": "y", "password": "hunter2", "pasword": "typo"}),
        )
        .await;

    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        error_fields(&problem),
        ["pasword"],
        "structural errors come first"
    );
    assert!(!problem.to_string().contains("hunter2"));
}

#[actix_web::test]
async fn cors_allows_configured_origins_only() {
    let app = TestApp::spawn_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/users/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );

    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_problem(refused, 400, "bad_request").await;
}

/// Sends `request` as raw bytes on a new connection and reads what comes back until the server closes it.
async fn raw_answer(app: &TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection")
    .unwrap();
    String::from_utf8(answer).unwrap()
}

/// [`raw_answer`] for one request: the head (lower-cased) and the problem body.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> (String, serde_json::Value) {
    let answer = raw_answer(app, request).await;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a head and a body in {answer:?}"));
    let body = serde_json::from_str(body)
        .unwrap_or_else(|err| panic!("{err}: a problem body in {answer:?}"));
    (head.to_lowercase(), body)
}

/// Requests the HTTP layer refuses before the app sees them (actix-http answers these itself, with an empty
/// body): they get problem+json like any other error, with a request id.
#[actix_web::test]
async fn requests_that_are_not_valid_http_get_problem_answers() {
    let app = TestApp::spawn().await;
    // (A head over the size limit is a 431 the same way, but the server closes with the rest of it unread,
    // which resets the connection and can discard the answer before a test reads it: too many headers
    // make the same 431 in a few bytes.)
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for (request, status, code) in [
        (&b"GET /health HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"[..], 400, "bad_request"),
        (&b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n"[..], 400, "bad_request"),
        (
            &b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello"[..],
            400,
            "bad_request",
        ),
        (many.as_bytes(), 431, "headers_too_large"),
    ] {
        let (head, body) = raw_exchange(&app, request).await;
        let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).into_owned();
        assert!(head.starts_with(&format!("http/1.1 {status} ")), "{shown:?}: {head}");
        assert!(head.contains("content-type: application/problem+json"), "{head}");
        assert_eq!(body["status"], status, "{shown:?}: {body}");
        assert_eq!(body["code"], code, "{shown:?}: {body}");
        let id = body["request_id"].as_str().expect("a request id");
        assert!(head.contains(&format!("x-request-id: {id}")), "{head}");
    }
    // A good request before a bad one on the same connection is answered as usual, then the bad one.
    let answer = raw_answer(
        &app,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nNo colon\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let second = &answer[answer.find("HTTP/1.1 400 ").expect("a second answer")..];
    assert!(second.contains("application/problem+json"), "{second}");
    assert!(second.contains(r#""code":"bad_request""#), "{second}");
}
