//! What every endpoint shares: a token, 4xx in DRF's format for bad input, the OpenAPI
//! document.

use reqwest::Method;
use serde_json::json;

use crate::Api;

#[tokio::test]
async fn every_endpoint_wants_a_token() {
    let api = Api::start().await;
    let protected = [
        (Method::GET, "/me/"),
        (Method::PUT, "/me/"),
        (Method::GET, "/users/"),
        (Method::GET, "/users/1/"),
        (Method::PUT, "/users/1/"),
        (Method::GET, "/rooms/"),
        (Method::POST, "/rooms/"),
        (Method::GET, "/rooms/1/"),
        (Method::PUT, "/rooms/1/"),
        (Method::DELETE, "/rooms/1/"),
        (Method::GET, "/device-types/"),
        (Method::GET, "/device-types/mine/"),
        (Method::GET, "/device-types/1/"),
        (Method::POST, "/device-types/propose/"),
        (Method::GET, "/admin/device-types/pending/"),
        (Method::POST, "/admin/device-types/1/approve/"),
        (Method::POST, "/admin/device-types/1/deny/"),
        (Method::GET, "/devices/"),
        (Method::POST, "/devices/"),
        (Method::GET, "/devices/1/"),
        (Method::PUT, "/devices/1/"),
        (Method::DELETE, "/devices/1/"),
        (Method::PATCH, "/devices/1/state/"),
        (Method::GET, "/topology/"),
    ];
    for (method, path) in &protected {
        let res = api.call(method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(
            res.detail(401),
            "Authentication credentials were not provided.",
            "{method} {path}"
        );
        // Without the trailing slash too.
        let res = api
            .call(
                method.clone(),
                path.trim_end_matches('/'),
                None,
                Some(json!({})),
            )
            .await;
        res.detail(401);
    }
}

#[tokio::test]
async fn a_viewers_writes_are_403_before_the_body_is_read() {
    let api = Api::start().await;
    let u = api.users().await;
    // Writes a viewer may not make: 403 before the body is even read.
    let viewer_writes = [
        (Method::POST, "/rooms/"),
        (Method::POST, "/device-types/propose/"),
        (Method::POST, "/devices/"),
        (Method::PUT, "/devices/1/"),
        (Method::DELETE, "/devices/1/"),
        (Method::PATCH, "/devices/1/state/"),
    ];
    for (method, path) in &viewer_writes {
        api.raw(method.clone(), path, &u.viewer, "application/json", "{oops")
            .await
            .detail(403);
    }
}

#[tokio::test]
async fn bad_input_is_4xx_in_drf_format() {
    let api = Api::start().await;
    let u = api.users().await;
    // Malformed JSON, wrong types, wrong content types, unknown paths and methods.
    let bodies: [(&str, &str); 4] = [
        ("/rooms/", "{\"name\": "),
        ("/devices/", "[]"),
        ("/device-types/propose/", "{\"name\": 1}"),
        ("/register/", "null"),
    ];
    for (path, body) in bodies {
        let res = api
            .raw(Method::POST, path, &u.owner, "application/json", body)
            .await;
        res.detail(400);
    }
    api.raw(Method::POST, "/rooms/", &u.owner, "text/plain", "name=x")
        .await
        .detail(415);
    api.raw(
        Method::POST,
        "/login/",
        None,
        "application/json",
        "{\"username\": 1}",
    )
    .await
    .detail(400);
    api.get("/nowhere/", None).await.detail(404);
    let nothing = api.server.url("/homeforge/media/avatars/nothing.png");
    api.send(api.http.get(nothing)).await.detail(404);
    api.delete("/topology/", &u.owner).await.detail(405);
    api.get("/devices/?limit=abc", &u.owner).await.detail(400);
    let bad_cursor = api.get("/devices/?cursor=notacursor", &u.owner).await;
    bad_cursor.detail(400);
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let api = Api::start().await;
    api.assert_documented(&[
        "/api/register",
        "/api/login",
        "/api/token/refresh",
        "/api/me",
        "/api/users",
        "/api/users/{id}",
        "/api/rooms",
        "/api/rooms/{id}",
        "/api/device-types",
        "/api/device-types/mine",
        "/api/device-types/{id}",
        "/api/device-types/propose",
        "/api/admin/device-types/pending",
        "/api/admin/device-types/{id}/approve",
        "/api/admin/device-types/{id}/deny",
        "/api/devices",
        "/api/devices/{id}",
        "/api/devices/{id}/state",
        "/api/topology",
        "/media/avatars/{file}",
    ])
    .await;
}
