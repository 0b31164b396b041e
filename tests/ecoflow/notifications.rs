//! Notifications: broadcasts by admins that every user reads.

use civic_testkit::api::Auth;
use serde_json::json;

use crate::{Api, Expect, id, ids};

#[tokio::test]
async fn notifications_are_broadcast_to_every_user() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));
    let welcome = api
        .post(
            "/notifications/",
            a,
            json!({"title": "Welcome", "message": "Welcome to the EcoFlow system."}),
        )
        .await;
    let welcome = welcome.is(201).clone();
    assert_eq!(
        (&welcome["title"], &welcome["message"]),
        (&json!("Welcome"), &json!("Welcome to the EcoFlow system."))
    );
    let maint = id(api
        .post(
            "/notifications/",
            a,
            json!({"title": "System Maintenance", "message": "Servers will restart in 10 mins."}),
        )
        .await
        .is(201));

    // Every user sees every broadcast, newest first.
    api.register("late@example.com", None, None).await.is(201);
    let late = api.login("late@example.com").await["access"]
        .as_str()
        .unwrap()
        .to_owned();
    for who in [u, Auth::Bearer(&late), a] {
        assert_eq!(
            ids(api.get("/notifications/", who).await.is(200)),
            [maint, id(&welcome)]
        );
    }
    assert_eq!(
        api.get(&format!("/notifications/{}/", id(&welcome)), u)
            .await
            .is(200),
        &welcome
    );
    let page = api.get("/notifications/?limit=1", u).await;
    assert_eq!(ids(page.is(200)), [maint]);
    assert!(page.headers.contains_key("x-next-cursor"));

    // Only admins broadcast or delete.
    api.post("/notifications/", u, json!({"title": "t", "message": "m"}))
        .await
        .detail(403);
    api.delete(&format!("/notifications/{maint}/"), u)
        .await
        .detail(403);
    api.get("/notifications/", None).await.detail(401);
    api.post("/notifications/", None, json!({}))
        .await
        .detail(401);
    assert_eq!(
        api.post("/notifications/", a, json!({"title": "t"}))
            .await
            .field("message"),
        "This field is required."
    );
    api.delete(&format!("/notifications/{maint}/"), a)
        .await
        .is(204);
    api.delete(&format!("/notifications/{maint}/"), a)
        .await
        .detail(404);
    api.get(&format!("/notifications/{maint}/"), u)
        .await
        .detail(404);
    assert_eq!(
        ids(api.get("/notifications/", u).await.is(200)),
        [id(&welcome)]
    );
}
