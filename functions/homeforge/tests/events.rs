//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use axum::body::Body;
use civic_core::{Function, Limits, Platform};
use civic_store::Backend;
use http::StatusCode;
use serde_json::{Value, json};
use tower::ServiceExt;

fn event(name: &str, token: Option<&str>) -> http::Request<Body> {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("sample event");
    let mut req = lambda_http::request::from_str(&text)
        .expect("valid API Gateway v2 event")
        .map(Body::new);
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

async fn call(f: &Function, p: &Platform, req: http::Request<Body>) -> (StatusCode, Value) {
    let (router, _) = f.build(p);
    let res = civic_core::layers::into_service(router)
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path()).unwrap();
    let p = Platform::local(dir.path(), backend, Limits::default()).unwrap();

    // The first registration makes the owner, whatever role it asked for.
    let (status, body) = call(&homeforge::AUTH, &p, event("homeforge-auth", None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "johndoe");
    assert_eq!(body["profile"]["role"], "owner");

    // The events carry a placeholder token: refused in DRF's shape...
    let (status, body) = call(&homeforge::USERS, &p, event("homeforge-users", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"detail": "Given token not valid for any token type"})
    );

    // ...and with a real one each reaches its handler.
    let login = lambda_http::request::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../events/homeforge-auth.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .replace("/api/register/", "/api/login/"),
    )
    .unwrap()
    .map(Body::new);
    let (status, body) = call(&homeforge::AUTH, &p, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access"].as_str().unwrap().to_owned();
    let t = Some(token.as_str());

    let (status, body) = call(&homeforge::USERS, &p, event("homeforge-users", t)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["email"], "john@example.com");

    let (status, body) = call(&homeforge::ROOMS, &p, event("homeforge-rooms", t)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "Living Room");

    let types = event("homeforge-device-types", t);
    let (status, body) = call(&homeforge::DEVICE_TYPES, &p, types).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "pending");

    let (status, body) = call(&homeforge::DEVICES, &p, event("homeforge-devices", t)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["nodes"][0]["id"], "homeforge-gateway");
    assert_eq!(body["edges"], json!([]));
}
