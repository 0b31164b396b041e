//! Registration, sessions as cookies, bad credentials, and the CSRF and CORS rules for
//! browsers.

use civic_testkit::api::Auth;
use reqwest::{Method, header};
use serde_json::json;

use crate::{Api, OzoneResp, Session};

#[tokio::test]
async fn the_first_user_is_staff_and_privileges_need_a_superuser() {
    let api = Api::start().await;
    let first = api.register("admin", json!({}), Auth::None).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["success"], true);
    assert_eq!(first.body["message"], "User created successfully");
    let user = &first.body["user"];
    assert_eq!(
        (user["id"].as_i64(), &user["username"], &user["email"]),
        (Some(1), &json!("admin"), &json!("admin@example.com"))
    );
    assert_eq!(
        (&user["first_name"], &user["last_name"]),
        (&json!("F"), &json!("L"))
    );
    assert_eq!(
        (&user["is_staff"], &user["is_superuser"]),
        (&json!(true), &json!(true))
    );
    assert!(user.get("password_hash").is_none());

    let second = api.register("bob", json!({}), Auth::None).await;
    assert_eq!(second.status, 201);
    assert_eq!(
        (
            &second.body["user"]["is_staff"],
            second.body["user"]["id"].as_i64()
        ),
        (&json!(false), Some(2))
    );
    // Privileges need a superuser's session.
    api.register("carol", json!({"is_staff": true}), Auth::None)
        .await
        .assert_error(403);
    let bob = api.login("bob").await;
    api.register("carol", json!({"is_superuser": true}), &bob)
        .await
        .assert_error(403);
    let admin = api.login("admin").await;
    let carol = api
        .register("carol", json!({"is_staff": true}), &admin)
        .await;
    assert_eq!(carol.body["user"]["is_staff"], true);
    // Usernames are unique regardless of case.
    let dup = api.register("ADMIN", json!({}), Auth::None).await;
    assert!(
        dup.assert_error(400)["username"][0]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
}

#[tokio::test]
async fn login_sets_a_session_cookie_that_logout_ends() {
    let api = Api::start().await;
    api.register("admin", json!({}), Auth::None).await.ok();
    // Login sets an HttpOnly, SameSite=Lax cookie (not Secure over local http).
    let res = api
        .post(
            "/auth/login/",
            Auth::None,
            json!({"username": "admin", "password": "password123"}),
        )
        .await;
    assert_eq!(res.body["success"], true);
    assert_eq!(res.body["user"]["username"], "admin");
    let set = res.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("ozone_sessionid=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    let session = Session(set.split(';').next().unwrap().to_owned());

    let check = api.get("/auth/check/", &session).await;
    assert_eq!(check.body["authenticated"], true);
    assert_eq!(check.body["user"]["is_superuser"], true);
    let me = api.get("/auth/user/", &session).await;
    assert_eq!(
        (&me.body["success"], &me.body["user"]["username"]),
        (&json!(true), &json!("admin"))
    );

    let out = api
        .call(Method::POST, "/auth/logout/", &session, None)
        .await;
    assert_eq!(
        out.ok(),
        &json!({"success": true, "message": "Successfully logged out"})
    );
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie is dead.
    assert_eq!(
        api.get("/auth/check/", &session).await.body,
        json!({"authenticated": false, "user": null})
    );
    api.get("/auth/user/", &session).await.assert_error(401);
    api.get("/auth/user", Auth::None).await.assert_error(401);
    api.get("/auth/check", Auth::None).await.ok();
}

#[tokio::test]
async fn auth_rejects_bad_input_and_bad_credentials() {
    let api = Api::start().await;
    api.register("admin", json!({}), Auth::None).await.ok();
    let wrong = api
        .post(
            "/auth/login/",
            Auth::None,
            json!({"username": "admin", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(wrong.assert_error(401)["error"], "Invalid credentials");
    api.post(
        "/auth/login/",
        Auth::None,
        json!({"username": "ghost", "password": "password123"}),
    )
    .await
    .assert_error(401);
    let missing = api
        .post("/auth/login/", Auth::None, json!({"username": "admin"}))
        .await;
    assert_eq!(
        missing.assert_error(400)["password"],
        json!(["This field is required."])
    );
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": "x y", "password": "password123"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": "xy", "password": "short"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": "xy", "password": "password123", "email": "nope"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": 5, "password": "password123"}),
    )
    .await
    .assert_error(400);
    let malformed = api
        .raw(
            Method::POST,
            "/auth/login/",
            Auth::None,
            "application/json",
            "{\"username\":",
        )
        .await;
    malformed.assert_error(400);
    api.raw(Method::POST, "/auth/login/", Auth::None, "text/plain", "hi")
        .await
        .assert_error(415);
    // Unknown paths and methods come out in the same format.
    assert_eq!(
        api.get("/auth/nothing", Auth::None).await.assert_error(404)["detail"],
        "Not found"
    );
    api.delete("/auth/login/", Auth::None)
        .await
        .assert_error(405);
}

#[tokio::test]
async fn state_changing_requests_from_foreign_origins_are_refused() {
    let api = Api::start().await;
    let (admin, _) = api.users().await;
    let req = api
        .request(Method::POST, "/outlets/", &admin)
        .json(&json!({"name": "O"}))
        .header(header::ORIGIN, "https://evil.example");
    assert!(
        api.send(req).await.assert_error(403)["error"]
            .as_str()
            .unwrap()
            .contains("CSRF")
    );
    let own = api.server.base.clone();
    let req = api
        .request(Method::POST, "/outlets/", &admin)
        .json(&json!({"name": "O"}))
        .header(header::ORIGIN, own);
    assert_eq!(api.send(req).await.status, 201);
    // Granting privilege with the session is state-changing too.
    let req = api
        .request(Method::POST, "/auth/register/", &admin)
        .json(&json!({"username": "mallory", "password": "password123", "is_staff": true}))
        .header(header::ORIGIN, "https://evil.example");
    api.send(req).await.assert_error(403);
    // Reads are not state-changing.
    let req = api
        .request(Method::GET, "/outlets/", &admin)
        .header(header::ORIGIN, "https://evil.example");
    api.send(req).await.ok();
}

#[tokio::test]
async fn trusted_frontend_origins_get_cors_with_credentials() {
    let app = "https://app.example.com";
    let api = Api::with(&[], &[("CSRF_TRUSTED_ORIGINS", app)]).await;
    let (admin, _) = api.users().await;
    let preflight = api
        .http
        .request(Method::OPTIONS, api.url("/outlets/"))
        .header(header::ORIGIN, app)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], app);
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    let req = api
        .request(Method::POST, "/outlets/", &admin)
        .json(&json!({"name": "O"}))
        .header(header::ORIGIN, app);
    let created = api.send(req).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.headers["access-control-allow-origin"], app);
    let req = api
        .request(Method::GET, "/outlets/", &admin)
        .header(header::ORIGIN, "https://evil.example");
    assert!(
        api.send(req)
            .await
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
}
