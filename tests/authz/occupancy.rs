//! Occupancy with `OCCUPANCY_REQUIRE_AUTH=true` (the deployed default): any occupancy token.

use std::cell::Cell;

use civic_testkit::api::{App, Auth};
use civic_testkit::authz::{self, Body, Req, Row};
use civic_testkit::local::LocalServer;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{O, U, call, document, next, start};

const OCCUPANCY_CALLERS: [&str; 5] = ["anonymous", "token", "other app", "device", "own device"];

pub(crate) const OCCUPANCY: &[Row<5>] = &[
    ("POST", "/api/occupancy/cameras", [U, O, U, U, U]),
    ("GET", "/api/occupancy/cameras", [U, O, U, U, U]),
    ("GET", "/api/occupancy/cameras/{camera_id}", [U, O, U, U, U]),
    ("PUT", "/api/occupancy/cameras/{camera_id}", [U, O, U, U, U]),
    ("POST", "/api/occupancy/lines", [U, O, U, U, U]),
    (
        "GET",
        "/api/occupancy/cameras/{camera_id}/lines",
        [U, O, U, U, U],
    ),
    ("GET", "/api/occupancy/lines/{line_id}", [U, O, U, U, U]),
    ("PUT", "/api/occupancy/lines/{line_id}", [U, O, U, U, U]),
    (
        "POST",
        "/api/occupancy/cameras/{camera_id}/events",
        [U, O, U, U, U],
    ),
    (
        "POST",
        "/api/occupancy/cameras/{camera_id}/calibrate",
        [U, O, U, U, U],
    ),
    (
        "GET",
        "/api/occupancy/cameras/{camera_id}/live",
        [U, O, U, U, U],
    ),
    (
        "GET",
        "/api/occupancy/cameras/{camera_id}/logs",
        [U, O, U, U, U],
    ),
    (
        "GET",
        "/api/occupancy/cameras/{camera_id}/hourly",
        [U, O, U, U, U],
    ),
    (
        "GET",
        "/api/occupancy/cameras/{camera_id}/daily",
        [U, O, U, U, U],
    ),
    (
        "GET",
        "/api/occupancy/cameras/{camera_id}/monthly",
        [U, O, U, U, U],
    ),
    ("GET", "/api/occupancy/facility/live", [U, O, U, U, U]),
    ("GET", "/api/occupancy/facility/stats", [U, O, U, U, U]),
    ("GET", "/api/occupancy/alerts", [U, O, U, U, U]),
    (
        "PUT",
        "/api/occupancy/alerts/{alert_id}/resolve",
        [U, O, U, U, U],
    ),
    (
        "POST",
        "/api/occupancy/cameras/{camera_id}/frames",
        [U, O, U, U, U],
    ),
    (
        "GET",
        "/api/occupancy/cameras/{camera_id}/frames",
        [U, O, U, U, U],
    ),
    ("POST", "/api/occupancy/aggregate", [U, O, U, U, U]),
    (
        "POST",
        "/api/occupancy/cameras/{camera_id}/credential",
        [U, O, U, U, U],
    ),
];

const OCCUPANCY_APP: App = App {
    root: "/occupancy",
    api: "/occupancy/api/occupancy",
    is_error: |b| b.as_object().is_some_and(|o| o.len() == 1) && b["detail"].is_string(),
    lagging: &[],
};

/// An occupancy access token signed with the platform's key for the app (Occupancy has no
/// users of its own: an operator mints its tokens).
fn occupancy_token(server: &LocalServer) -> String {
    let mut key = std::fs::read(server.data_dir.join("jwt-secret")).unwrap();
    key.extend_from_slice(b":civic:occupancy");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "ops", "role": "viewer", "typ": "access", "aud": "occupancy", "iss": "civic", "iat": now, "exp": now + 3600, "jti": "authz"});
    let key = jsonwebtoken::EncodingKey::from_secret(&key);
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[tokio::test]
async fn occupancy_matrix() {
    let (api, out) = start(OCCUPANCY_APP).await;
    authz::assert_rows_match("occupancy", &document(&api).await, OCCUPANCY);
    let token = occupancy_token(&api.server);
    let base = "/occupancy/api/occupancy";
    let cam = json!({"camera_id": "GATE", "camera_name": "Gate", "max_occupancy": 10});
    let cam = call(
        &api,
        Method::POST,
        &format!("{base}/cameras"),
        Auth::Bearer(&token),
        cam,
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let line =
        json!({"camera_id": cam, "line_name": "door", "x1": 0, "y1": 300, "x2": 1920, "y2": 300});
    let line = call(
        &api,
        Method::POST,
        &format!("{base}/lines"),
        Auth::Bearer(&token),
        line,
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let path = format!("{base}/cameras/{cam}/credential");
    let login = call(&api, Method::POST, &path, Auth::Bearer(&token), json!({})).await;
    let own_device = login["password"].as_str().unwrap().to_owned();
    let n = Cell::new(0);
    let fill = |method: &str, path: &str, _who: usize| {
        let k = next(&n);
        let json = |v: Value| Body::Json(v);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = match (method, path.trim_start_matches("/api/occupancy")) {
            ("POST", "/cameras") => {
                json(json!({"camera_id": format!("CAM{k}"), "camera_name": "c"}))
            }
            ("PUT", "/cameras/{camera_id}") => json(json!({"camera_name": format!("Gate {k}")})),
            ("POST", "/lines") => json(
                json!({"camera_id": cam, "line_name": format!("l{k}"), "x1": 0, "y1": 10, "x2": 100, "y2": 10}),
            ),
            ("PUT", "/lines/{line_id}") => json(json!({"line_name": format!("door {k}")})),
            (_, "/cameras/{camera_id}/events") => json(
                json!({"events": [{"line_id": line, "direction": "entry", "timestamp": now, "confidence": 0.9}]}),
            ),
            (_, "/cameras/{camera_id}/calibrate") => json(json!({"occupancy_value": 0})),
            (_, "/aggregate") => json(json!({"aggregation_level": "hourly"})),
            ("POST", "/cameras/{camera_id}/frames") => json(json!({"content_length": 10240})),
            _ => Body::None,
        };
        let path = path
            .replace("{camera_id}", &cam.to_string())
            .replace("{line_id}", &line.to_string())
            .replace("{alert_id}", "1");
        Req::new(path, body)
    };
    let who = [
        Auth::None,
        Auth::Bearer(&token),
        Auth::Bearer(&out.streetlight),
        Auth::Bearer(&out.device),
        Auth::Bearer(&own_device),
    ];
    authz::check(&api, OCCUPANCY_CALLERS, who, OCCUPANCY, fill).await;
}
