//! EcoFlow: USER < ADMIN.

use std::cell::Cell;

use civic_testkit::api::{self, App, Auth};
use civic_testkit::authz::{self, Body, Req, Row};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{F, O, U, call, document, next, start};

const ECOFLOW_CALLERS: [&str; 5] = ["anonymous", "user", "admin", "other app", "device"];

pub(crate) const ECOFLOW: &[Row<5>] = &[
    ("POST", "/api/auth/register", [O, O, O, U, U]),
    ("POST", "/api/auth/login", [O, O, O, O, O]),
    ("POST", "/api/auth/refresh", [O, O, O, O, O]),
    ("GET", "/api/auth/me", [U, O, O, U, U]),
    ("PUT", "/api/auth/me", [U, O, O, U, U]),
    ("PATCH", "/api/auth/me", [U, O, O, U, U]),
    ("GET", "/api/organizations", [U, O, O, U, U]),
    ("POST", "/api/organizations", [U, F, O, U, U]),
    ("GET", "/api/organizations/{id}", [U, O, O, U, U]),
    ("PUT", "/api/organizations/{id}", [U, F, O, U, U]),
    ("DELETE", "/api/organizations/{id}", [U, F, O, U, U]),
    ("GET", "/api/zones", [U, O, O, U, U]),
    ("POST", "/api/zones", [U, F, O, U, U]),
    ("GET", "/api/zones/{id}", [U, O, O, U, U]),
    ("PUT", "/api/zones/{id}", [U, F, O, U, U]),
    ("DELETE", "/api/zones/{id}", [U, F, O, U, U]),
    ("GET", "/api/cameras", [U, O, O, U, U]),
    ("POST", "/api/cameras", [U, F, O, U, U]),
    ("GET", "/api/cameras/{id}", [U, O, O, U, U]),
    ("PUT", "/api/cameras/{id}", [U, F, O, U, U]),
    ("DELETE", "/api/cameras/{id}", [U, F, O, U, U]),
    ("GET", "/api/alerts", [U, O, O, U, U]),
    ("POST", "/api/alerts", [U, F, O, U, U]),
    ("GET", "/api/alerts/{id}", [U, O, O, U, U]),
    ("PUT", "/api/alerts/{id}", [U, F, O, U, U]),
    ("DELETE", "/api/alerts/{id}", [U, F, O, U, U]),
    ("POST", "/api/alerts/{id}/acknowledge", [U, F, O, U, U]),
    ("POST", "/api/alerts/{id}/close", [U, F, O, U, U]),
    ("GET", "/api/notifications", [U, O, O, U, U]),
    ("POST", "/api/notifications", [U, F, O, U, U]),
    ("GET", "/api/notifications/{id}", [U, O, O, U, U]),
    ("DELETE", "/api/notifications/{id}", [U, F, O, U, U]),
    ("GET", "/api/status", [O, O, O, O, O]),
    ("GET", "/api/health", [O, O, O, O, O]),
    ("POST", "/api/sensor/detect", [U, O, O, U, U]),
    ("POST", "/api/sensor/uploads", [U, O, O, U, U]),
    ("GET", "/api/sensor/detections", [U, O, O, U, U]),
    ("GET", "/api/carbon/stats", [U, O, O, U, U]),
];

const ECOFLOW_APP: App = App {
    root: "/ecoflow",
    api: "/ecoflow/api",
    is_error: api::drf_error,
    lagging: &[],
};

/// `sensor/detect/`'s form: the zone, the camera and a small grey PNG frame.
fn detect_form(zone: i64, camera: i64) -> Vec<u8> {
    let mut png = Vec::new();
    let frame = image::RgbImage::from_pixel(64, 48, image::Rgb([128, 128, 128]));
    frame
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let field = |name: &str, value: &str| {
        format!("--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    };
    let mut body = format!(
        "{}{}",
        field("zone_id", &zone.to_string()),
        field("camera_id", &camera.to_string())
    );
    body.push_str("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.png\"\r\nContent-Type: image/png\r\n\r\n");
    let mut bytes = body.into_bytes();
    bytes.extend_from_slice(&png);
    bytes.extend_from_slice(b"\r\n--b--\r\n");
    bytes
}

#[tokio::test]
async fn ecoflow_matrix() {
    let (api, out) = start(ECOFLOW_APP).await;
    authz::assert_rows_match("ecoflow", &document(&api).await, ECOFLOW);
    let admin = out.ecoflow.clone();
    let user = person(&api, "user@example.com".into()).await["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut refresh = Vec::new();
    for i in 0..10 {
        let pair = person(&api, format!("r{i}@example.com")).await;
        refresh.push(pair["refresh"].as_str().unwrap().to_owned());
    }
    let ids = objects(&api, &admin).await;
    let n = Cell::new(0);
    let fill =
        |method: &str, path: &str, _who: usize| request(method, path, next(&n), &ids, &mut refresh);
    let who = [
        Auth::None,
        Auth::Bearer(&user),
        Auth::Bearer(&admin),
        Auth::Bearer(&out.streetlight),
        Auth::Bearer(&out.device),
    ];
    authz::check(&api, ECOFLOW_CALLERS, who, ECOFLOW, fill).await;
}

/// `POST path` below `/ecoflow/api` as `auth`: the JSON answer.
async fn ef(api: &api::Api, path: String, auth: Option<String>, body: Value) -> Value {
    let auth = auth.as_deref().map_or(Auth::None, Auth::Bearer);
    call(
        api,
        Method::POST,
        &format!("/ecoflow/api{path}"),
        auth,
        body,
    )
    .await
}

/// A user `email`, registered and logged in: the login's answer (access and refresh tokens).
async fn person(api: &api::Api, email: String) -> Value {
    let body = json!({"email": email, "password": "securematrix-pass-8812", "first_name": "J", "last_name": "D"});
    ef(api, "/auth/register/".into(), None, body.clone()).await;
    ef(api, "/auth/login/".into(), None, body).await
}

/// The objects whose ids a row's `{id}` stands for, one of each kind.
struct Ids {
    org: i64,
    zone: i64,
    camera: i64,
    alert: i64,
    note: i64,
}

/// An organization with a zone and a camera in it, an alert and a notification, made by the
/// admin.
async fn objects(api: &api::Api, admin: &str) -> Ids {
    let id = |v: Value| v["id"].as_i64().unwrap();
    let a = || Some(admin.to_owned());
    let org = id(ef(
        api,
        "/organizations/".into(),
        a(),
        json!({"name": "Org", "org_type": "Corporate", "total_capacity": 500}),
    )
    .await);
    let zone = id(ef(
        api,
        "/zones/".into(),
        a(),
        json!({"name": "Z", "zone_type": "Entrance", "capacity": 50, "organization_id": org}),
    )
    .await);
    let camera = id(ef(
        api,
        "/cameras/".into(),
        a(),
        json!({"name": "C", "is_active": true, "zone_id": zone}),
    )
    .await);
    let alert = id(ef(api, "/alerts/".into(), a(), json!({"heading": "H"})).await);
    let note = id(ef(
        api,
        "/notifications/".into(),
        a(),
        json!({"title": "t", "message": "m"}),
    )
    .await);
    Ids {
        org,
        zone,
        camera,
        alert,
        note,
    }
}

/// The request of cell `k`: a valid body (unique where it creates) and the path with the
/// object of its kind for `{id}`.
fn request(method: &str, path: &str, k: u32, ids: &Ids, refresh: &mut Vec<String>) -> Req {
    let Ids {
        org,
        zone,
        camera,
        alert,
        note,
    } = *ids;
    let json = |v: Value| Body::Json(v);
    let body = match (method, path) {
        (_, "/api/auth/register") => json(
            json!({"email": format!("new{k}@example.com"), "password": "securematrix-pass-8812", "first_name": "J", "last_name": "D"}),
        ),
        (_, "/api/auth/login") => {
            json(json!({"email": "user@example.com", "password": "securematrix-pass-8812"}))
        }
        (_, "/api/auth/refresh") => {
            json(json!({"refresh": refresh.pop().expect("a refresh token")}))
        }
        ("PUT" | "PATCH", "/api/auth/me") => json(json!({"first_name": format!("F{k}")})),
        ("POST", "/api/organizations") => {
            json(json!({"name": format!("Org {k}"), "org_type": "Corporate", "total_capacity": 5}))
        }
        ("PUT", "/api/organizations/{id}" | "/api/zones/{id}" | "/api/cameras/{id}") => {
            json(json!({"name": format!("N{k}")}))
        }
        ("POST", "/api/zones") => json(
            json!({"name": format!("Z{k}"), "zone_type": "Entrance", "capacity": 5, "organization_id": org}),
        ),
        ("POST", "/api/cameras") => {
            json(json!({"name": format!("C{k}"), "is_active": true, "zone_id": zone}))
        }
        ("POST", "/api/alerts") => json(json!({"heading": format!("H{k}")})),
        ("PUT", "/api/alerts/{id}") => json(json!({"heading": format!("H{k}")})),
        ("POST", "/api/notifications") => json(json!({"title": "t", "message": format!("m{k}")})),
        (_, "/api/sensor/uploads") => {
            json(json!({"zone_id": zone, "camera_id": camera, "content_length": 10240}))
        }
        (_, "/api/sensor/detect") => Body::Raw(
            "multipart/form-data; boundary=b".into(),
            detect_form(zone, camera),
        ),
        _ => Body::None,
    };
    let id = match path.split('/').nth(2) {
        Some("organizations") => org,
        Some("zones") => zone,
        Some("cameras") => camera,
        Some("alerts") => alert,
        _ => note,
    };
    Req::new(path.replace("{id}", &id.to_string()), body)
}
