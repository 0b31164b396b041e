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

/// The sensor sample asks for an upload URL; the counter sample is S3's event for that upload:
/// run twice (S3 delivers at least once), it counts the frame once.
#[tokio::test]
async fn sensor_and_counter_samples_count_an_upload_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = Platform::local(
        dir.path(),
        Backend::embedded(dir.path()).unwrap(),
        Limits::default(),
    )
    .unwrap();
    let (status, _) = call(&ecoflow::AUTH, &p, event("ecoflow-auth")).await;
    assert_eq!(status, StatusCode::CREATED);
    let login = http::Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"email": "jane@example.com", "password": "securepassword123"}).to_string(),
        ))
        .unwrap();
    let token = call(&ecoflow::AUTH, &p, login).await.1["access"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, body) in [
        (
            "/api/organizations",
            json!({"name": "HQ", "org_type": "Corporate"}),
        ),
        (
            "/api/zones",
            json!({"name": "Lobby", "zone_type": "Entrance", "capacity": 100, "organization_id": 1}),
        ),
        (
            "/api/cameras",
            json!({"name": "Front Desk Cam", "zone_id": 1}),
        ),
    ] {
        let (status, body) = call(
            &ecoflow::SITES,
            &p,
            json_request("POST", path, &token, body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let (status, upload) = call(
        &ecoflow::SENSOR,
        &p,
        with_token(event("ecoflow-sensor"), &token),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    assert!(
        upload["key"]
            .as_str()
            .unwrap()
            .starts_with("ecoflow/zones/1/cameras/1/uploads/")
    );

    // The camera's PUT, as S3 stores it under the sample event's key.
    let sample: aws_lambda_events::s3::S3Event = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../../events/ecoflow-counter.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let key = sample.records[0].s3.object.key.clone().unwrap();
    let (photo, people) = civic_vision::fixtures::labelled()
        .into_iter()
        .find(|(path, _)| path.ends_with("vtest-0105.jpg"))
        .unwrap();
    p.blob()
        .put(&key, std::fs::read(photo).unwrap().into(), "image/jpeg")
        .await
        .unwrap();

    let first = (ecoflow::COUNTER.run)(&p, sample.clone()).await.unwrap();
    assert_eq!(
        (
            first["counted"].as_array().unwrap().len(),
            &first["duplicates"]
        ),
        (1, &json!(0)),
        "{first}"
    );
    let again = (ecoflow::COUNTER.run)(&p, sample).await.unwrap();
    assert_eq!(
        (
            again["counted"].as_array().unwrap().len(),
            &again["duplicates"]
        ),
        (0, &json!(1)),
        "{again}"
    );

    let list = http::Request::get("/api/sensor/detections?zone_id=1")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, list) = call(&ecoflow::SENSOR, &p, list).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(
        (&list[0]["source"], &list[0]["image_key"]),
        (&json!("UPLOAD"), &json!(key))
    );
    let counted = list[0]["detected_people"].as_i64().unwrap();
    assert!(
        (counted - people as i64).abs() <= 2,
        "counted {counted} of {people}"
    );

    let stats = http::Request::get("/api/carbon/stats")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (_, stats) = call(&ecoflow::CARBON, &p, stats).await;
    assert_eq!(
        stats["recent_history"].as_array().unwrap().len(),
        1,
        "{stats}"
    );
    assert_eq!(stats["summary"]["total_saved_all_time"], list[0]["saved"]);
}
