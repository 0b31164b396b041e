//! Issue 15, items 5–8: roles that apply at once, strict ranks, password changes that revoke,
//! per-account backoff.

use civic_testkit::http::Resp;
use civic_testkit::local::LocalServer;
use serde_json::json;

use crate::{Api, BIN, Envelope, token};

async fn login(api: &Api, name: &str, password: &str) -> Resp {
    let body = json!({"email": format!("{name}@example.com"), "password": password});
    api.post("/auth/login", None, body).await
}

fn refresh_of(r: &Resp) -> String {
    r.data()["refreshToken"].as_str().unwrap().to_owned()
}

async fn set_role(api: &Api, token: &str, name: &str, role: &str) -> Resp {
    let body = json!({"email": format!("{name}@example.com"), "role": role});
    api.post("/users/role", token, body).await
}

#[tokio::test]
async fn a_demoted_admins_token_is_refused_for_admin_actions_on_the_next_request() {
    let api = Api::start().await;
    let (first, _, _) = api.users().await;
    let second = token(&api.register("second", Some("admin"), Some(&first)).await);
    api.get("/users", &second).await.ok();
    set_role(&api, &first, "second", "viewer").await.ok();
    // The same, still unexpired token: no longer an admin's.
    api.get("/users", &second).await.assert_error(403);
    let mint = api.register("minted", Some("admin"), Some(&second)).await;
    mint.assert_error(403);
    set_role(&api, &second, "oper", "admin")
        .await
        .assert_error(403);
    // Still a viewer's token: reads work.
    api.get("/lights/list", &second).await.ok();
}

#[tokio::test]
async fn only_a_strictly_higher_rank_changes_an_account() {
    let api = Api::start().await;
    let (first, _, _) = api.users().await;
    let second = token(&api.register("second", Some("admin"), Some(&first)).await);
    api.register("third", Some("admin"), Some(&first))
        .await
        .ok();
    // A peer admin, and the first admin above all, are out of a second admin's reach.
    let peer = set_role(&api, &second, "third", "viewer").await;
    assert!(peer.assert_error(403).contains("first admin"));
    set_role(&api, &second, "admin", "viewer")
        .await
        .assert_error(403);
    // Below their rank they may: operators and viewers.
    set_role(&api, &second, "viewer", "operator").await.ok();
    // The first admin may change another admin.
    let demoted = set_role(&api, &first, "third", "operator").await;
    assert_eq!(demoted.data()["role"], "operator");
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_revokes_every_older_token() {
    let api = Api::start().await;
    let (_, _, viewer) = api.users().await;
    let session = login(&api, "viewer", "password123").await;
    let (access, refresh) = (token(&session), refresh_of(&session));
    let change = |current: Option<&str>| {
        let mut body = json!({"newPassword": "a-new-secret-9"});
        if let Some(c) = current {
            body["currentPassword"] = c.into();
        }
        body
    };
    let missing = api.post("/auth/password", &access, change(None)).await;
    assert!(missing.assert_error(400).contains("currentPassword"));
    let wrong = api
        .post("/auth/password", &access, change(Some("not-my-password")))
        .await;
    wrong.assert_error(403);
    let done = api
        .post("/auth/password", &access, change(Some("password123")))
        .await;
    let (new_access, new_refresh) = (token(&done), refresh_of(&done));
    // Every token from before the change, from this login or another, is refused.
    for old in [&access, &viewer] {
        api.get("/lights/list", old.as_str())
            .await
            .assert_error(401);
    }
    let body = json!({"refreshToken": refresh});
    api.post("/auth/refresh", None, body)
        .await
        .assert_error(401);
    login(&api, "viewer", "password123").await.assert_error(401);
    // The new pair works, and so does the new password.
    api.get("/lights/list", &new_access).await.ok();
    let body = json!({"refreshToken": new_refresh});
    token(&api.post("/auth/refresh", None, body).await);
    token(&login(&api, "viewer", "a-new-secret-9").await);
}

/// Backoff after 2 free failures, 2 s at first (so the test can wait it out).
const BACKOFF: [(&str, &str); 2] = [("AUTH_BACKOFF_FREE", "2"), ("AUTH_BACKOFF_BASE_SECS", "2")];

/// Retry-After of a 429 in the app's error format.
fn retry_after(r: &Resp) -> u64 {
    r.assert_error(429);
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn failed_logins_back_off_and_then_even_the_right_password_waits() {
    let api = Api::on(LocalServer::start_env(BIN, &[], &BACKOFF).await);
    api.users().await;
    for _ in 0..3 {
        login(&api, "viewer", "wrong-guess").await.assert_error(401);
    }
    let locked = login(&api, "viewer", "password123").await;
    assert!((1..=2).contains(&retry_after(&locked)));
    // Another account is not affected.
    token(&login(&api, "oper", "password123").await);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    token(&login(&api, "viewer", "password123").await);
    // The success reset the count: one failure is free again.
    login(&api, "viewer", "wrong-guess").await.assert_error(401);
    token(&login(&api, "viewer", "password123").await);
}

/// civic-local on moto's DynamoDB, with `env`; two of them are two Lambda instances.
async fn on_moto(env: &[(&str, &str)]) -> Api {
    let moto = civic_testkit::moto::moto_url();
    let bucket = civic_testkit::moto::unique("civic");
    let args = ["--backend", "aws", "--bucket", &bucket];
    let aws = [
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    Api::on(LocalServer::start_env(BIN, &args, &[&aws[..], env].concat()).await)
}

#[tokio::test]
async fn the_backoff_holds_across_instances() {
    let (a, b) = (on_moto(&BACKOFF).await, on_moto(&BACKOFF).await);
    let name = civic_testkit::moto::unique("bf");
    token(&a.register(&name, None, None).await);
    for api in [&a, &b, &a] {
        login(api, &name, "wrong-guess").await.assert_error(401);
    }
    // Instance b counts the failures seen by a, and refuses the right password too.
    assert!(retry_after(&login(&b, &name, "password123").await) >= 1);
    assert!(retry_after(&login(&a, &name, "password123").await) >= 1);
}
