//! The caller's own profile (`/me/`): multipart, JSON and form bodies, and avatars.

use reqwest::Method;
use serde_json::json;

use crate::{Api, Expect, Multipart, jpeg, png};

#[tokio::test]
async fn the_seeds_multipart_profile_update_changes_the_password_and_revokes_the_token() {
    let api = Api::start().await;
    let mut u = api.users().await;
    // The seed's FormData example, with the current password (an extension).
    let form = Multipart::default()
        .text("first_name", "Johnny")
        .text("accent_color", "#FF5733")
        .text("password", "NewPass1")
        .text("current_password", "Attic-Lamp42");
    let me = api.multipart("/me/", &u.user, &form).await;
    assert_eq!(me.is(200)["first_name"], "Johnny");
    assert_eq!(me.body["last_name"], "Last", "absent fields stay");
    assert_eq!(me.body["profile"]["accent_color"], "#FF5733");
    api.login("ursula", "Attic-Lamp42").await.detail(401);
    // The change revoked the old token: the next requests use a new one.
    u.user = api.login("ursula", "NewPass1").await.is(200)["access"]
        .as_str()
        .unwrap()
        .to_owned();
    api.get("/me/", &u.user).await.is(200);
}

#[tokio::test]
async fn bad_profile_fields_are_400_and_nobody_raises_their_own_role() {
    let api = Api::start().await;
    let u = api.users().await;
    let bad = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default()
                .text("accent_color", "red")
                .text("password", "lower"),
        )
        .await;
    bad.field(400, "accent_color");
    bad.field(400, "password");
    // Nobody raises their own role; lowering it is allowed.
    let up = api
        .multipart("/me/", &u.user, &Multipart::default().text("role", "admin"))
        .await;
    assert_eq!(up.detail(403), "You cannot raise your own role.");
    api.multipart(
        "/me/",
        &u.admin,
        &Multipart::default().text("role", "owner"),
    )
    .await
    .detail(403);
    let unknown = api
        .multipart("/me/", &u.user, &Multipart::default().text("role", "root"))
        .await;
    unknown.field(400, "role");
}

#[tokio::test]
async fn json_and_urlencoded_bodies_work_too_and_other_types_are_415() {
    let api = Api::start().await;
    let u = api.users().await;
    // JSON and urlencoded bodies work too; other types are 415.
    let json_put = api
        .put(
            "/me/",
            &u.user,
            json!({"last_name": "Smith", "email": "u@example.org"}),
        )
        .await;
    assert_eq!(json_put.is(200)["last_name"], "Smith");
    assert_eq!(json_put.body["email"], "u@example.org");
    api.put("/me/", &u.user, json!({"first_name": 5}))
        .await
        .field(400, "first_name");
    api.put("/me/", &u.user, json!({"avatar": 5}))
        .await
        .field(400, "avatar");
    let form = api
        .raw(
            Method::PUT,
            "/me/",
            &u.user,
            "application/x-www-form-urlencoded",
            "first_name=Ursa",
        )
        .await;
    assert_eq!(form.is(200)["first_name"], "Ursa");
    api.raw(Method::PUT, "/me/", &u.user, "text/plain", "hi")
        .await
        .detail(415);
    api.raw(
        Method::PUT,
        "/me/",
        &u.user,
        "application/json",
        "{not json",
    )
    .await
    .detail(400);
    api.raw(
        Method::PUT,
        "/me/",
        &u.user,
        "multipart/form-data; boundary=x",
        "garbage",
    )
    .await
    .detail(400);
}

#[tokio::test]
async fn renaming_frees_the_old_username_and_anyone_signed_in_edits_their_own() {
    let api = Api::start().await;
    let u = api.users().await;
    // Renaming frees the old username and takes the new one; a taken one is refused.
    let renamed = api.put("/me/", &u.user, json!({"username": "ursa"})).await;
    assert_eq!(renamed.is(200)["username"], "ursa");
    api.login("ursula", "Attic-Lamp42").await.detail(401);
    api.login("ursa", "Attic-Lamp42").await.is(200);
    let taken = api.put("/me/", &u.user, json!({"username": "ADAM"})).await;
    assert_eq!(
        taken.field(400, "username"),
        ["A user with that username already exists."]
    );
    api.register("ursula", None, None).await.is(201);

    // A viewer edits their own profile too; anonymous callers cannot.
    api.put("/me/", &u.viewer, json!({"first_name": "Vic"}))
        .await
        .is(200);
    api.put("/me/", None, json!({})).await.detail(401);
}

/// Uploads a PNG avatar for the user; returns its URL.
async fn png_avatar(api: &Api, token: &str) -> String {
    let form = Multipart::default().file("avatar", "me.png", "image/png", png(64, 48));
    let me = api.multipart("/me/", token, &form).await;
    me.is(200)["profile"]["avatar"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn avatars_are_validated_images_served_back() {
    let api = Api::start().await;
    let u = api.users().await;
    let png_bytes = png(64, 48);
    let me = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default().file("avatar", "me.png", "image/png", png_bytes.clone()),
        )
        .await;
    let url = me.is(200)["profile"]["avatar"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!(
            "{}/homeforge/media/avatars/{}-",
            api.server.base, u.user_id
        )),
        "{url}"
    );
    assert!(url.ends_with(".png"), "{url}");
    assert_eq!(
        api.get("/me/", &u.user).await.is(200)["profile"]["avatar"],
        url.as_str()
    );
    let file = api.http.get(&url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    assert_eq!(file.bytes().await.unwrap().as_ref(), png_bytes.as_slice());

    // A JPEG replaces it (the client's content type is not trusted); the old file is gone.
    let jpg = jpeg(120, 80);
    let me = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default().file("avatar", "x.bin", "application/octet-stream", jpg.clone()),
        )
        .await;
    let url2 = me.is(200)["profile"]["avatar"].as_str().unwrap().to_owned();
    assert!(url2.ends_with(".jpg"), "{url2}");
    let file = api.http.get(&url2).send().await.unwrap();
    assert_eq!(file.headers()["content-type"], "image/jpeg");
    assert_eq!(file.bytes().await.unwrap().as_ref(), jpg.as_slice());
    let old = api.send(api.http.get(&url)).await;
    assert_eq!(old.detail(404), "Not found.");
    let escape = api
        .server
        .url("/homeforge/media/avatars/..%2f..%2fjwt-secret");
    api.send(api.http.get(escape)).await.detail(404);
}

#[tokio::test]
async fn refused_avatars_leave_the_current_one() {
    let api = Api::start().await;
    let u = api.users().await;
    let png_bytes = png(64, 48);
    let current = png_avatar(&api, &u.user).await;
    // Not an image, a truncated one, a decompression bomb: 400 on the avatar field.
    let refused = [
        b"<html><script>alert(1)</script></html>".to_vec(),
        png_bytes[..png_bytes.len() / 2].to_vec(),
        civic_vision::decode::png_bomb(50_000, 50_000),
    ];
    for bytes in refused {
        let res = api
            .multipart(
                "/me/",
                &u.user,
                &Multipart::default().file("avatar", "a.png", "image/png", bytes),
            )
            .await;
        res.field(400, "avatar");
    }
    // An oversize upload is 413 (the request body limit, 1 MiB by default), refused from its
    // Content-Length before it is read.
    let head = format!(
        "PUT /homeforge/api/me/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1500000\r\n\r\n--b\r\n",
        u.user
    );
    let raw = civic_testkit::http::raw(&api.server.base, &head).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.ends_with(r#"{"detail":"Request body is too large"}"#),
        "{raw}"
    );
    // Nothing refused replaced the avatar.
    assert_eq!(
        api.get("/me/", &u.user).await.is(200)["profile"]["avatar"],
        current.as_str()
    );
}

#[tokio::test]
async fn staff_set_another_users_avatar() {
    let api = Api::start().await;
    let u = api.users().await;
    // Staff can set another user's avatar through the admin override.
    let res = api
        .multipart(
            &format!("/users/{}/", u.user_id),
            &u.admin,
            &Multipart::default().file("avatar", "p.png", "image/png", png(8, 8)),
        )
        .await;
    assert!(
        res.is(200)["profile"]["avatar"]
            .as_str()
            .unwrap()
            .ends_with(".png")
    );
}

#[tokio::test]
async fn avatars_above_the_image_limit_are_413_even_when_the_body_limit_allows_them() {
    let api = Api::with(&["--body-limit", "8388608"]).await;
    let u = api.users().await;
    let big = vec![7u8; 3 << 20];
    let res = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default().file("avatar", "big.png", "image/png", big),
        )
        .await;
    assert!(res.detail(413).contains("larger than"), "{}", res.text);
}
