//! Staff manage users: the list, one user, and the admin override.

use serde_json::json;

use crate::{Api, Expect, ids};

#[tokio::test]
async fn staff_list_and_read_users_page_by_page() {
    let api = Api::start().await;
    let u = api.users().await;
    for token in [&u.owner, &u.admin] {
        let list = api.get("/users/", token).await;
        assert_eq!(ids(list.is(200)).len(), 4);
        assert_eq!(list.body[0]["profile"]["role"], "owner");
        let one = api.get(&format!("/users/{}/", u.user_id), token).await;
        assert_eq!(one.is(200)["username"], "ursula");
    }
    for token in [&u.user, &u.viewer] {
        let res = api.get("/users/", token).await;
        assert_eq!(
            res.detail(403),
            "Only Admins/Owners can perform this action."
        );
        api.get(&format!("/users/{}/", u.user_id), token)
            .await
            .detail(403);
        api.put(
            &format!("/users/{}/", u.user_id),
            token,
            json!({"first_name": "x"}),
        )
        .await
        .detail(403);
    }
    api.get("/users/", None).await.detail(401);
    api.get("/users/999/", &u.admin).await.detail(404);
    api.get("/users/abc/", &u.admin).await.detail(404);
    // Pages continue through X-Next-Cursor.
    let first = api.get("/users/?limit=3", &u.owner).await;
    assert_eq!(ids(first.is(200)).len(), 3);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = api
        .http
        .get(api.url("/users/"))
        .query(&[("limit", "3"), ("cursor", cursor.as_str())])
        .bearer_auth(&u.owner);
    assert_eq!(ids(api.send(rest).await.is(200)).len(), 1);
    api.get("/users/?limit=0", &u.owner).await.detail(400);
}

#[tokio::test]
async fn the_admin_override_changes_roles_and_passwords_below_ones_own_rank() {
    let api = Api::start().await;
    let u = api.users().await;
    // Admin override: promote a user, reset a password; never above one's own role or an owner.
    let path = format!("/users/{}/", u.user_id);
    let promoted = api
        .put(
            &path,
            &u.admin,
            json!({"role": "admin", "password": "Reset1"}),
        )
        .await;
    assert_eq!(promoted.is(200)["profile"]["role"], "admin");
    // The reset revoked the user's tokens; a new login gets the new role at once.
    api.get("/users/", &u.user).await.detail(401);
    let reset = api.login("ursula", "Reset1").await;
    api.get("/users/", reset.is(200)["access"].as_str().unwrap())
        .await
        .is(200);
    api.put(&path, &u.admin, json!({"role": "owner"}))
        .await
        .detail(403);
    api.put(
        &format!("/users/{}/", u.owner_id),
        &u.admin,
        json!({"first_name": "x"}),
    )
    .await
    .detail(403);
    let by_owner = api.put(&path, &u.owner, json!({"role": "viewer"})).await;
    assert_eq!(by_owner.is(200)["profile"]["role"], "viewer");
    api.put(
        &format!("/users/{}/", u.admin_id),
        &u.owner,
        json!({"accent_color": "#12345"}),
    )
    .await
    .field(400, "accent_color");
    api.put("/users/999/", &u.owner, json!({"first_name": "x"}))
        .await
        .detail(404);
}
