//! Registration, login, token refresh and the profile (`/auth/...`).

use civic_testkit::http::send;
use serde_json::{Value, json};

use crate::{Api, Expect};

/// Jane (the first user, an admin) and Bob (a user), registered in that order; their logins.
async fn jane_and_bob(api: &Api) -> (Value, Value) {
    api.register("jane@example.com", None, None).await.is(201);
    api.register("bob@example.com", Some("USER"), None)
        .await
        .is(201);
    (
        api.login("jane@example.com").await,
        api.login("bob@example.com").await,
    )
}

#[tokio::test]
async fn the_first_user_is_admin_and_only_an_admin_grants_admin() {
    let api = Api::start().await;
    // The first user becomes ADMIN whatever they ask for; later ones get USER.
    let first = api.register("Jane@Example.com", None, None).await;
    assert_eq!(
        first.is(201),
        &json!({"message": "User registered successfully", "user": {"email": "jane@example.com", "role": "ADMIN"}})
    );
    let second = api.register("bob@example.com", Some("USER"), None).await;
    assert_eq!(second.is(201)["user"]["role"], "USER");
    // Asking for ADMIN without an admin's token: 403; a user's token is no better.
    api.register("eve@example.com", Some("ADMIN"), None)
        .await
        .detail(403);
    let bob = api.login("bob@example.com").await;
    let bob_access = bob["access"].as_str().unwrap();
    api.register("eve@example.com", Some("ADMIN"), bob_access)
        .await
        .detail(403);
    let jane = api.login("jane@example.com").await;
    let jane_access = jane["access"].as_str().unwrap();
    let made = api
        .register("root@example.com", Some("ADMIN"), jane_access)
        .await;
    assert_eq!(made.is(201)["user"]["role"], "ADMIN");
    // A bad token is an error, not anonymity.
    api.register("mallory@example.com", None, "garbage")
        .await
        .detail(401);
}

#[tokio::test]
async fn login_answers_in_the_seeds_shape_and_refuses_bad_credentials() {
    let api = Api::start().await;
    let (jane, _) = jane_and_bob(&api).await;
    // Login: the seed's customized response.
    assert_eq!(jane["user_id"], 1);
    assert_eq!(jane["email"], "jane@example.com");
    assert_eq!(jane["role"], "ADMIN");
    assert_eq!(jane["name"], "Jane");
    assert!(jane["refresh"].as_str().is_some_and(|r| r.len() > 20));
    let wrong = api
        .post(
            "/auth/login/",
            None,
            json!({"email": "jane@example.com", "password": "nope-nope"}),
        )
        .await;
    wrong.detail(401);
    let unknown = api
        .post(
            "/auth/login/",
            None,
            json!({"email": "who@example.com", "password": "securepassword123"}),
        )
        .await;
    unknown.detail(401);
    let missing = api.post("/auth/login/", None, json!({})).await;
    assert_eq!(missing.field("email"), "This field is required.");
    assert_eq!(missing.field("password"), "This field is required.");
}

#[tokio::test]
async fn registration_errors_are_per_field() {
    let api = Api::start().await;
    jane_and_bob(&api).await;
    let dup = api.register("JANE@example.com", None, None).await;
    assert_eq!(dup.field("email"), "user with this email already exists.");
    let bad = api
        .post("/auth/register/", None, json!({"email": "not-an-email", "password": "short", "role": "SUPERUSER", "first_name": 5}))
        .await;
    assert_eq!(bad.field("email"), "Enter a valid email address.");
    assert!(bad.field("password").contains("at least 8"));
    assert_eq!(bad.field("role"), "\"SUPERUSER\" is not a valid choice.");
    assert!(
        bad.body.get("first_name").is_none(),
        "numbers are valid strings"
    );
    let no_password = api
        .post("/auth/register/", None, json!({"email": "x@example.com"}))
        .await;
    assert_eq!(no_password.field("password"), "This field is required.");
}

#[tokio::test]
async fn refresh_rotates_and_reusing_an_old_token_revokes_the_session() {
    let api = Api::start().await;
    let (jane, _) = jane_and_bob(&api).await;
    // Refresh rotates: the answer has a new pair; the old refresh token is dead, and using it
    // again revokes the whole session (the newer token too).
    let r1 = jane["refresh"].as_str().unwrap();
    let next = api
        .post("/auth/refresh/", None, json!({"refresh": r1}))
        .await;
    let next = next.is(200).clone();
    let (access2, r2) = (
        next["access"].as_str().unwrap(),
        next["refresh"].as_str().unwrap(),
    );
    api.get("/auth/me/", access2).await.is(200);
    api.post("/auth/refresh/", None, json!({"refresh": r1}))
        .await
        .detail(401);
    api.post("/auth/refresh/", None, json!({"refresh": r2}))
        .await
        .detail(401);
    // An access token is not a refresh token.
    api.post("/auth/refresh/", None, json!({"refresh": access2}))
        .await
        .detail(401);
    assert_eq!(
        api.post("/auth/refresh/", None, json!({}))
            .await
            .field("refresh"),
        "This field is required."
    );
}

#[tokio::test]
async fn the_profile_changes_names_only() {
    let api = Api::start().await;
    let (_, bob) = jane_and_bob(&api).await;
    let bob_access = bob["access"].as_str().unwrap();
    // Profile: GET, then PATCH and PUT change names only; email, role and eco_points are
    // read-only and silently ignored.
    let me = api.get("/auth/me/", bob_access).await;
    assert_eq!(
        me.is(200),
        &json!({"id": 2, "email": "bob@example.com", "first_name": "Jane", "last_name": "Doe", "full_name": "Jane Doe", "role": "USER", "eco_points": 0})
    );
    let patched = api.patch("/auth/me/", bob_access, json!({"first_name": "Janet", "role": "ADMIN", "eco_points": 999, "email": "x@example.com"}))
        .await;
    let patched = patched.is(200);
    assert_eq!(
        (
            &patched["first_name"],
            &patched["full_name"],
            &patched["role"],
            &patched["eco_points"],
            &patched["email"]
        ),
        (
            &json!("Janet"),
            &json!("Janet Doe"),
            &json!("USER"),
            &json!(0),
            &json!("bob@example.com")
        )
    );
    let put = api
        .put("/auth/me", bob_access, json!({"last_name": "Smith"}))
        .await;
    assert_eq!(put.is(200)["full_name"], "Janet Smith");
    assert_eq!(
        api.get("/auth/me", bob_access).await.is(200)["last_name"],
        "Smith"
    );
    let bad = api
        .put("/auth/me/", bob_access, json!({"first_name": ["x"]}))
        .await;
    assert_eq!(bad.field("first_name"), "Not a valid string.");
}

#[tokio::test]
async fn the_profile_needs_an_ecoflow_token() {
    let api = Api::start().await;
    jane_and_bob(&api).await;
    assert_eq!(
        api.get("/auth/me/", None).await.detail(401),
        "Authentication credentials were not provided."
    );
    api.get("/auth/me/", "not.a.token").await.detail(401);

    // Another app's token is refused.
    let sl = send(
        api.http
            .post(api.server.url("/streetlight/api/auth/register"))
            .json(&json!({"name": "S", "email": "s@example.com", "password": "password123", "city": "Oslo"})),
    )
    .await;
    let sl_token = sl.is(201)["data"]["token"].as_str().unwrap().to_owned();
    api.get("/auth/me/", &sl_token).await.detail(401);
}
