//! Each sample event in `events/` goes through lambda_http's API Gateway v2 conversion into the
//! function's own router, exactly as in Lambda.

use axum::body::Body;
use civic_core::{Function, Limits, Platform};
use civic_store::Backend;
use http::StatusCode;
use serde_json::{Value, json};
use tower::ServiceExt;

fn event(name: &str) -> http::Request<Body> {
    let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("sample event");
    lambda_http::request::from_str(&text)
        .expect("valid API Gateway v2 event")
        .map(Body::new)
}

/// The event with a real bearer token in place of its placeholder.
fn with_token(mut req: http::Request<Body>, token: &str) -> http::Request<Body> {
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
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

fn json_request(method: &str, path: &str, token: &str, body: Value) -> http::Request<Body> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn sample_events_reach_their_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::local(
        dir.path(),
        Backend::embedded(dir.path()).unwrap(),
        Limits::default(),
    )
    .unwrap();

    let (status, body) = call(&ecoflow::AUTH, &p, event("ecoflow-auth")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["role"], "ADMIN");
    let login = http::Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"email": "jane@example.com", "password": "securepassword123"}).to_string(),
        ))
        .unwrap();
    let (status, body) = call(&ecoflow::AUTH, &p, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access"].as_str().unwrap().to_owned();

    // The placeholder token is refused in the app's format; a real one is accepted.
    let (status, body) = call(&ecoflow::SITES, &p, event("ecoflow-sites")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["detail"].is_string());
    let org = json_request(
        "POST",
        "/api/organizations",
        &token,
        json!({"name": "HQ", "org_type": "Corporate"}),
    );
    assert_eq!(call(&ecoflow::SITES, &p, org).await.0, StatusCode::CREATED);
    let (status, body) = call(
        &ecoflow::SITES,
        &p,
        with_token(event("ecoflow-sites"), &token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["name"], "HQ");

    let alert = json_request(
        "POST",
        "/api/alerts",
        &token,
        json!({"heading": "Fire Drill"}),
    );
    assert_eq!(
        call(&ecoflow::ALERTS, &p, alert).await.0,
        StatusCode::CREATED
    );
    let (status, body) = call(
        &ecoflow::ALERTS,
        &p,
        with_token(event("ecoflow-alerts"), &token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0]["heading"], "Fire Drill");

    let (status, body) = call(&ecoflow::STATUS, &p, event("ecoflow-status")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"overall_status": "OK", "database": "OK", "external_service": "OK"})
        )
    );
}
