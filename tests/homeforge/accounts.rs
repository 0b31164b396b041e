//! Issue 15, items 6–8: strict ranks, password changes that revoke, per-account backoff,
//! common passwords.

use civic_testkit::api;
use civic_testkit::http::Resp;
use civic_testkit::local::LocalServer;
use serde_json::json;

use crate::{APP, Api, BIN, Expect};

fn access(r: &Resp) -> String {
    r.is(200)["access"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_cannot_take_over_a_peer_admin() {
    let api = Api::start().await;
    let u = api.users().await;
    let peer = api.register("ada", Some("admin"), Some(&u.owner)).await;
    let peer = format!("/users/{}/", peer.is(201)["id"]);
    let reset = api
        .put(&peer, &u.admin, json!({"password": "Taken-Over9"}))
        .await;
    assert_eq!(
        reset.detail(403),
        "Only a higher role can change this account."
    );
    api.put(&peer, &u.admin, json!({"role": "viewer"}))
        .await
        .detail(403);
    api.login("ada", "Taken-Over9").await.detail(401);
    // Below their rank they may.
    let user = format!("/users/{}/", u.user_id);
    api.put(&user, &u.admin, json!({"first_name": "U"}))
        .await
        .is(200);
}

#[tokio::test]
async fn a_second_owner_cannot_change_the_first_who_outranks_them() {
    let api = Api::start().await;
    let u = api.users().await;
    api.register("otto", Some("owner"), Some(&u.owner))
        .await
        .is(201);
    let otto = api.token("otto").await;
    let first = format!("/users/{}/", u.owner_id);
    for change in [
        json!({"role": "viewer"}),
        json!({"password": "Taken-Over9"}),
    ] {
        let r = api.put(&first, &otto, change).await;
        assert_eq!(
            r.detail(403),
            "Only the first owner can change their own account."
        );
    }
    let me = api.get("/me/", &u.owner).await;
    assert_eq!(me.is(200)["profile"]["role"], "owner");
    // The first owner outranks the second and may demote them.
    let otto_id = api.get("/me/", &otto).await.is(200)["id"].clone();
    let demoted = api
        .put(
            &format!("/users/{otto_id}/"),
            &u.owner,
            json!({"role": "user"}),
        )
        .await;
    assert_eq!(demoted.is(200)["profile"]["role"], "user");
    api.get("/users/", &otto).await.detail(403);
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_revokes_every_older_token() {
    let api = Api::start().await;
    let u = api.users().await;
    let pair = api.login("ursula", "Attic-Lamp42").await;
    let (old_access, old_refresh) = (access(&pair), pair.body["refresh"].clone());
    let missing = api
        .put("/me/", &old_access, json!({"password": "Fresh-Start7"}))
        .await;
    assert_eq!(
        missing.field(400, "current_password"),
        ["This field is required."]
    );
    let body = json!({"password": "Fresh-Start7", "current_password": "Wrong-Guess1"});
    let wrong = api.put("/me/", &old_access, body).await;
    assert_eq!(wrong.detail(403), "Current password is incorrect.");
    api.login("ursula", "Fresh-Start7").await.detail(401);
    let body = json!({"password": "Fresh-Start7", "current_password": "Attic-Lamp42"});
    api.put("/me/", &old_access, body).await.is(200);
    // Both logins' access tokens and the refresh token are refused from now on.
    for old in [&old_access, &u.user] {
        api.get("/me/", old.as_str()).await.detail(401);
    }
    api.post("/token/refresh/", None, json!({"refresh": old_refresh}))
        .await
        .detail(401);
    let fresh = access(&api.login("ursula", "Fresh-Start7").await);
    api.get("/me/", &fresh).await.is(200);
}

#[tokio::test]
async fn common_passwords_are_refused() {
    let api = Api::start().await;
    for common in ["Password1", "Qwerty123", "LETMEIN"] {
        let r = api
            .post(
                "/register/",
                None,
                json!({"username": "c", "password": common}),
            )
            .await;
        assert!(
            r.field(400, "password")
                .contains(&"This password is too common.".to_owned()),
            "{common}"
        );
    }
    api.post(
        "/register/",
        None,
        json!({"username": "c", "password": "Quiet-Fern31"}),
    )
    .await
    .is(201);
}

#[tokio::test]
async fn failed_logins_back_off_with_retry_after() {
    let env = [("AUTH_BACKOFF_FREE", "3"), ("AUTH_BACKOFF_BASE_SECS", "60")];
    let api = Api(api::Api::new(
        LocalServer::start_env(BIN, &[], &env).await,
        APP,
    ));
    api.users().await;
    for _ in 0..4 {
        api.login("ursula", "Wrong-Guess1").await.detail(401);
    }
    let locked = api.login("ursula", "Attic-Lamp42").await;
    assert!(locked.detail(429).contains("Too many failed attempts"));
    let wait: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&wait), "{wait}");
    // Per account: the others sign in as usual.
    access(&api.login("olivia", "Attic-Lamp42").await);
}
