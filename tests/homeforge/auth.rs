//! Registration (the first user is the owner), login, token refresh and token scope.

use civic_testkit::http::send;
use serde_json::json;

use crate::{Api, Expect};

/// John Doe (the first user: the owner, whatever role he asked for) and Jane (a user); their
/// tokens.
async fn johndoe_and_jane(api: &Api) -> (String, String) {
    api.register("johndoe", Some("viewer"), None).await.is(201);
    api.register("jane", None, None).await.is(201);
    (api.token("johndoe").await, api.token("jane").await)
}

#[tokio::test]
async fn first_user_is_owner_and_superuser_later_ones_get_what_they_ask_up_to_user() {
    let api = Api::start().await;
    let first = api.register("johndoe", Some("viewer"), None).await;
    let me = first.is(201);
    assert_eq!(me["id"], 1);
    assert_eq!(me["username"], "johndoe");
    assert_eq!(me["email"], "johndoe@example.com");
    assert_eq!(me["first_name"], "First");
    assert_eq!(me["profile"]["role"], "owner");
    assert_eq!(me["is_superuser"], true);
    assert_eq!(me["profile"]["accent_color"], "#3B82F6");
    assert!(me["profile"]["avatar"].is_null());
    assert!(me.get("password").is_none() && me.get("password_hash").is_none());

    let second = api.register("jane", None, None).await;
    assert_eq!(second.is(201)["profile"]["role"], "user");
    assert_eq!(second.body["is_superuser"], false);
    let viewer = api.register("vic", Some("viewer"), None).await;
    assert_eq!(viewer.is(201)["profile"]["role"], "viewer");
}

#[tokio::test]
async fn higher_roles_need_an_owners_or_admins_token_up_to_their_own_role() {
    let api = Api::start().await;
    let (owner, user) = johndoe_and_jane(&api).await;
    // Asking for more than `user` needs an owner's or admin's token, up to their own role.
    api.register("a1", Some("admin"), None).await.detail(403);
    api.register("a1", Some("admin"), Some(&user))
        .await
        .detail(403);
    let admin = api.register("a1", Some("admin"), Some(&owner)).await;
    assert_eq!(admin.is(201)["profile"]["role"], "admin");
    let admin = api.token("a1").await;
    api.register("o2", Some("owner"), Some(&admin))
        .await
        .detail(403);
    let a2 = api.register("a2", Some("admin"), Some(&admin)).await;
    assert_eq!(a2.is(201)["profile"]["role"], "admin");
    let o2 = api.register("o2", Some("owner"), Some(&owner)).await;
    assert_eq!(o2.is(201)["profile"]["role"], "owner");
    assert_eq!(
        o2.body["is_superuser"], false,
        "only the first user is superuser"
    );
    // A token that comes along must be valid.
    api.register("x", None, Some("garbage")).await.detail(401);
}

#[tokio::test]
async fn bad_registrations_are_400_per_field() {
    let api = Api::start().await;
    johndoe_and_jane(&api).await;
    // Unknown roles, duplicate usernames (any case), weak passwords, missing fields.
    let bad = api.register("x", Some("superhero"), None).await;
    assert_eq!(
        bad.field(400, "role"),
        ["\"superhero\" is not a valid choice."]
    );
    let dup = api.register("JohnDoe", None, None).await;
    assert_eq!(
        dup.field(400, "username"),
        ["A user with that username already exists."]
    );
    let weak = api
        .post(
            "/register/",
            None,
            json!({"username": "weak", "password": "abc"}),
        )
        .await;
    assert_eq!(weak.field(400, "password").len(), 2);
    let lower = api
        .post(
            "/register/",
            None,
            json!({"username": "weak", "password": "abcdef"}),
        )
        .await;
    assert_eq!(
        lower.field(400, "password"),
        ["Password must contain at least one uppercase letter."]
    );
    let missing = api.post("/register/", None, json!({})).await;
    assert_eq!(missing.field(400, "username"), ["This field is required."]);
    assert_eq!(missing.field(400, "password"), ["This field is required."]);
    let bad_name = api
        .post(
            "/register/",
            None,
            json!({"username": "no spaces", "password": "Abcd", "email": "nope"}),
        )
        .await;
    bad_name.field(400, "username");
    bad_name.field(400, "email");
    // The minimum passes: 4 characters, one uppercase.
    api.post(
        "/register/",
        None,
        json!({"username": "min", "password": "Abcd"}),
    )
    .await
    .is(201);
}

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_owner() {
    let api = Api::start().await;
    let names: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let regs = futures::future::join_all(names.iter().map(|n| api.register(n, None, None))).await;
    let owners = regs
        .iter()
        .filter(|r| r.is(201)["profile"]["role"] == "owner")
        .count();
    assert_eq!(owners, 1);
    // The same username at once: exactly one wins.
    let same = futures::future::join_all((0..4).map(|_| api.register("same", None, None))).await;
    assert_eq!(same.iter().filter(|r| r.status == 201).count(), 1);
    assert_eq!(same.iter().filter(|r| r.status == 400).count(), 3);
}

#[tokio::test]
async fn login_refresh_and_token_scope() {
    let api = Api::start().await;
    api.register("johndoe", None, None).await.is(201);
    let pair = api.login("JohnDoe", "Attic-Lamp42").await;
    let pair = pair.is(200).clone();
    assert_eq!(pair.as_object().unwrap().len(), 2);
    let (access, refresh) = (
        pair["access"].as_str().unwrap(),
        pair["refresh"].as_str().unwrap(),
    );
    assert_eq!(api.get("/me/", access).await.is(200)["username"], "johndoe");

    let wrong = api.login("johndoe", "Password124").await;
    assert_eq!(
        wrong.detail(401),
        "No active account found with the given credentials"
    );
    api.login("nobody", "Attic-Lamp42").await.detail(401);
    let missing = api
        .post("/login/", None, json!({"username": "johndoe"}))
        .await;
    assert_eq!(missing.field(400, "password"), ["This field is required."]);

    // Refresh tokens rotate; each works once, and reuse is refused.
    let next = api
        .post("/token/refresh/", None, json!({"refresh": refresh}))
        .await;
    let next = next.is(200).clone();
    assert!(next["access"].is_string() && next["refresh"].is_string());
    api.get("/me/", next["access"].as_str().unwrap())
        .await
        .is(200);
    api.post("/token/refresh/", None, json!({"refresh": refresh}))
        .await
        .detail(401);
    api.post("/token/refresh/", None, json!({"refresh": access}))
        .await
        .detail(401);
    api.post("/token/refresh/", None, json!({}))
        .await
        .field(400, "refresh");

    // Without, with a bad, or with another app's token: 401 in DRF's words.
    let anon = api.get("/me/", None).await;
    assert_eq!(
        anon.detail(401),
        "Authentication credentials were not provided."
    );
    assert_eq!(
        api.get("/me/", "garbage").await.detail(401),
        "Given token not valid for any token type"
    );
    let street = send(api.http.post(api.server.url("/streetlight/api/auth/register")).json(
        &json!({"name": "s", "email": "s@example.com", "password": "password123", "city": "Delhi"}),
    ))
    .await;
    let foreign = street.is(201)["data"]["token"].as_str().unwrap().to_owned();
    api.get("/me/", &foreign).await.detail(401);
}
