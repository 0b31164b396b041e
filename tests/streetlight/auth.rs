//! Registration and login: the first user is the admin, bad input and bodies get the
//! envelope, every lights endpoint needs a token, and logins are rate-limited.

use civic_testkit::http;
use reqwest::{Client, Method};
use serde_json::json;

use crate::{Api, Envelope, token};

#[tokio::test]
async fn first_user_is_admin_and_later_registrations_get_the_default_role() {
    let api = Api::start().await;
    let first = api.register("alice", None, None).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["status"], 201);
    assert_eq!(first.body["message"], "User registered successfully");
    let user = &first.data()["user"];
    assert_eq!(user["role"], "admin");
    assert_eq!(user["id"], "1");
    assert_eq!(user["name"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["city"], "Delhi");
    assert!(first.data()["token"].as_str().unwrap().len() > 20);
    assert!(user.get("password_hash").is_none());

    let second = api.register("bob", None, None).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.data()["user"]["role"], "viewer");
    assert_eq!(second.data()["user"]["id"], "2");

    // Asking for a higher role without an admin's token is refused; with one it is honoured.
    api.register("carol", Some("operator"), None)
        .await
        .assert_error(403);
    api.register("carol", Some("admin"), Some(&token(&second)))
        .await
        .assert_error(403);
    let carol = api
        .register("carol", Some("operator"), Some(&token(&first)))
        .await;
    assert_eq!(carol.data()["user"]["role"], "operator");

    let dup = api.post("/auth/register", None, json!({"name": "x", "email": "ALICE@example.com", "password": "password123", "city": "Delhi"})).await;
    assert_eq!(dup.assert_error(400), "User already exists");
}

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_admin() {
    let api = Api::start().await;
    let names: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    let regs = futures::future::join_all(names.iter().map(|n| api.register(n, None, None))).await;
    let admins = regs
        .iter()
        .filter(|r| r.data()["user"]["role"] == "admin")
        .count();
    assert!(regs.iter().all(|r| r.status == 201));
    assert_eq!(admins, 1);
}

/// A small body limit, so the oversize body below fits in socket buffers and the client
/// reads the 413 instead of a reset.
async fn with_a_small_body_limit() -> Api {
    Api::with(&["--body-limit", "65536"]).await
}

#[tokio::test]
async fn registration_rejects_bad_input_with_the_envelope() {
    let api = with_a_small_body_limit().await;
    let missing = api
        .post("/auth/register", None, json!({"email": "a@example.com"}))
        .await;
    assert!(missing.assert_error(400).contains("name"));
    api.post(
        "/auth/register",
        None,
        json!({"name": 5, "email": "a@example.com", "password": "password123", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register",
        None,
        json!({"name": "a", "email": "not-an-email", "password": "password123", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register",
        None,
        json!({"name": "a", "email": "a@example.com", "password": "short", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post("/auth/register", None, json!({"name": "a", "email": "a@example.com", "password": "password123", "city": "Delhi", "role": "superuser"})).await.assert_error(400);
    api.post("/auth/register", None, json!([1, 2]))
        .await
        .assert_error(400);
}

#[tokio::test]
async fn malformed_and_oversize_bodies_get_the_envelope() {
    let api = with_a_small_body_limit().await;
    let login = |kind, body| api.raw(Method::POST, "/auth/login", None, kind, body);
    login("application/json", "{\"email\": ")
        .await
        .assert_error(400);
    login("text/plain", "hello").await.assert_error(415);
    // An oversize body is refused from its Content-Length, before it is read.
    let raw = http::raw(&api.server.base, "POST /streetlight/api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{").await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.contains(r#""status":413"#) && raw.contains(r#""data":null"#),
        "{raw}"
    );
    // And one that lies about its length is cut off at the limit while being read. Its own
    // client: the server closes the connection, which a pooled one would race against.
    let huge = "x".repeat(70_000);
    let chunked = Client::new()
        .post(api.url("/auth/register"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter([Ok::<
            _,
            std::io::Error,
        >(
            format!("{{\"name\": \"{huge}\"}}"),
        )])));
    match chunked.send().await {
        Ok(res) => assert_eq!(res.status(), 413),
        Err(e) => assert!(e.is_request(), "{e}"), // the server may close while we still write
    }
}

#[tokio::test]
async fn login_rejects_bad_credentials_with_the_envelope() {
    let api = with_a_small_body_limit().await;
    api.register("dora", None, None).await;
    api.post("/auth/login", None, json!({"email": "dora@example.com"}))
        .await
        .assert_error(400);
    let wrong = api
        .post(
            "/auth/login",
            None,
            json!({"email": "dora@example.com", "password": "wrongpass1"}),
        )
        .await;
    assert_eq!(wrong.assert_error(401), "Invalid credentials");
    api.post(
        "/auth/login",
        None,
        json!({"email": "nobody@example.com", "password": "password123"}),
    )
    .await
    .assert_error(401);
    let ok = api
        .post(
            "/auth/login",
            None,
            json!({"email": "Dora@Example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["message"], "Login successful");
    assert_eq!(ok.data()["user"]["email"], "dora@example.com");
    assert_eq!(ok.data()["user"]["role"], "admin");
}

#[tokio::test]
async fn every_lights_endpoint_requires_a_token() {
    let api = Api::start().await;
    for (method, path) in [
        (Method::GET, "/lights/list"),
        (Method::GET, "/lights/detail?lightId=SL001"),
        (Method::GET, "/lights/summary"),
        (Method::GET, "/lights/map"),
        (Method::POST, "/lights/control"),
        (Method::POST, "/lights/update-status"),
        (Method::POST, "/lights/create"),
        (Method::PUT, "/lights/update"),
        (Method::DELETE, "/lights/delete?lightId=SL001"),
        (Method::POST, "/lights/import"),
        (Method::GET, "/lights/logs?lightId=SL001"),
        (Method::GET, "/users"),
        (Method::POST, "/users/role"),
    ] {
        let r = api.call(method.clone(), path, None, Some(json!({}))).await;
        r.assert_error(401);
        let r = api
            .call(method, path, Some("not.a.jwt"), Some(json!({})))
            .await;
        r.assert_error(401);
    }
}

#[tokio::test]
async fn rate_limits_answer_429_in_the_envelope() {
    let api = Api::with(&["--rate-per-minute", "5", "--rate-per-hour", "1000"]).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let r = api
            .post(
                "/auth/login",
                None,
                json!({"email": "x@example.com", "password": "password123"}),
            )
            .await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            r.assert_error(429);
            assert!(r.headers.contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
}
