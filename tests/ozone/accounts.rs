//! Issue 15, items 7–8: a password change ends every older session; failed logins and
//! handshakes back off.

use civic_testkit::api::Auth;
use civic_testkit::http::Resp;
use reqwest::header;
use serde_json::{Value, json};

use crate::{Api, MAC, OzoneResp, Session};

fn cookie_of(r: &Resp) -> Session {
    let set = r.headers[header::SET_COOKIE].to_str().unwrap();
    Session(set.split(';').next().unwrap().to_owned())
}

async fn login(api: &Api, username: &str, password: &str) -> Resp {
    let body = json!({"username": username, "password": password});
    api.post("/auth/login/", Auth::None, body).await
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_every_older_session() {
    let api = Api::start().await;
    let (_, viewer) = api.users().await;
    let laptop = api.login("viewer").await;
    let change =
        |current: Value| json!({"new_password": "a-new-secret-9", "current_password": current});
    let missing = api
        .post("/auth/password/", &viewer, change(Value::Null))
        .await;
    assert!(missing.assert_error(400)["current_password"].is_array());
    api.post("/auth/password/", &viewer, change("not-mine".into()))
        .await
        .assert_error(403);
    let done = api
        .post("/auth/password/", &viewer, change("password123".into()))
        .await;
    assert_eq!(done.ok()["user"]["username"], "viewer");
    let fresh = cookie_of(&done);
    // Both older sessions, this device's and the other's, are over.
    for old in [&viewer, &laptop] {
        api.get("/auth/user/", old).await.assert_error(401);
        let check = api.get("/auth/check/", old).await;
        assert_eq!(check.ok()["authenticated"], false);
    }
    assert_eq!(
        api.get("/auth/user/", &fresh).await.ok()["user"]["username"],
        "viewer"
    );
    login(&api, "viewer", "password123").await.assert_error(401);
    login(&api, "viewer", "a-new-secret-9").await.ok();
}

#[tokio::test]
async fn failed_logins_back_off_with_retry_after() {
    let env = [("AUTH_BACKOFF_FREE", "2"), ("AUTH_BACKOFF_BASE_SECS", "60")];
    let api = Api::with(&[], &env).await;
    api.users().await;
    for _ in 0..3 {
        login(&api, "viewer", "wrong-guess").await.assert_error(401);
    }
    let locked = login(&api, "viewer", "password123").await;
    locked.assert_error(429);
    let wait: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((55..=60).contains(&wait), "{wait}");
    login(&api, "admin", "password123").await.ok();
}

#[tokio::test]
async fn guessed_device_tokens_back_off_per_mac() {
    let env = [("AUTH_BACKOFF_FREE", "2"), ("AUTH_BACKOFF_BASE_SECS", "60")];
    let api = Api::with(&[], &env).await;
    let (admin, _) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let hs = |auth| api.post("/handshake/", auth, json!({"mac": MAC}));
    for _ in 0..3 {
        hs(Auth::Bearer("guessed")).await.assert_error(401);
    }
    // Locked: the MAC's handshakes wait, even with the real token.
    let locked = hs(Auth::Bearer(&token)).await;
    locked.assert_error(429);
    assert!(locked.headers.contains_key("retry-after"));
    // Another device is not affected.
    api.device(&admin, "EC:E3:34:46:2B:C1", "esp32-002").await;
}
