//! Streetlight: viewer < operator < admin.

use std::cell::Cell;

use civic_testkit::api::{self, App, Auth};
use civic_testkit::authz::{self, Body, Req, Row};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{F, O, U, call, document, next, start};

const STREETLIGHT_CALLERS: [&str; 7] = [
    "anonymous",
    "viewer",
    "operator",
    "admin",
    "other app",
    "device",
    "own device",
];

pub(crate) const STREETLIGHT: &[Row<7>] = &[
    ("POST", "/api/auth/register", [O, O, O, O, U, U, U]),
    ("POST", "/api/auth/login", [O, O, O, O, O, O, O]),
    ("POST", "/api/auth/refresh", [O, O, O, O, O, O, O]),
    ("POST", "/api/auth/logout", [O, O, O, O, O, O, O]),
    ("POST", "/api/auth/password", [U, O, O, O, U, U, U]),
    ("GET", "/api/lights/list", [U, O, O, O, U, U, U]),
    ("GET", "/api/lights/detail", [U, O, O, O, U, U, U]),
    ("GET", "/api/lights/summary", [U, O, O, O, U, U, U]),
    ("GET", "/api/lights/map", [U, O, O, O, U, U, U]),
    ("POST", "/api/lights/control", [U, F, O, O, U, U, U]),
    ("POST", "/api/lights/update-status", [U, F, O, O, U, U, U]),
    ("POST", "/api/lights/create", [U, F, F, O, U, U, U]),
    ("PUT", "/api/lights/update", [U, F, F, O, U, U, U]),
    ("DELETE", "/api/lights/delete", [U, F, F, O, U, U, U]),
    ("POST", "/api/lights/import", [U, F, F, O, U, U, U]),
    ("POST", "/api/lights/credential", [U, F, F, O, U, U, U]),
    ("GET", "/api/lights/logs", [U, F, O, O, U, U, U]),
    ("GET", "/api/users", [U, F, F, O, U, U, U]),
    ("POST", "/api/users/role", [U, F, F, O, U, U, U]),
];

const STREETLIGHT_APP: App = App {
    root: "/streetlight",
    api: "/streetlight/api",
    is_error: |b| b["status"].is_u64() && b["message"].is_string() && b["data"].is_null(),
    lagging: &[],
};

#[tokio::test]
async fn streetlight_matrix() {
    let (api, out) = start(STREETLIGHT_APP).await;
    authz::assert_rows_match("streetlight", &document(&api).await, STREETLIGHT);
    let admin = out.streetlight.clone();
    let mut fx = fixtures(&api, &admin).await;
    let n = Cell::new(0);
    let fill =
        |method: &str, path: &str, _who: usize| request(method, path, next(&n), &mut fx.refresh);
    let who = [
        Auth::None,
        Auth::Bearer(&fx.viewer),
        Auth::Bearer(&fx.operator),
        Auth::Bearer(&admin),
        Auth::Bearer(&out.homeforge),
        Auth::Bearer(&out.device),
        Auth::Bearer(&fx.own_device),
    ];
    authz::check(&api, STREETLIGHT_CALLERS, who, STREETLIGHT, fill).await;
}

/// The callers besides the admin, and the refresh tokens that the refresh and logout cells
/// spend, one each.
struct Fixtures {
    operator: String,
    viewer: String,
    /// Light SLDEV's MQTT password (sent as a bearer token).
    own_device: String,
    refresh: Vec<String>,
}

/// A registration body for `name`, asking for `role` if given.
fn register(name: &str, role: Option<&str>) -> Value {
    let mut body = json!({"name": name, "email": format!("{name}@example.com"), "password": "matrix-pass-8812", "city": "Delhi"});
    if let Some(r) = role {
        body["role"] = r.into();
    }
    body
}

/// The users (an operator, a viewer, the victim of role changes, 14 refreshers) and lights
/// (SL001 to act on, SLDEL to delete, SLDEV whose MQTT login is the own-device caller).
async fn fixtures(api: &api::Api, admin: &str) -> Fixtures {
    let reg = |body: Value, by: Option<String>| async move {
        let auth = by.as_deref().map_or(Auth::None, Auth::Bearer);
        call(
            api,
            Method::POST,
            "/streetlight/api/auth/register",
            auth,
            body,
        )
        .await
    };
    let token = |v: &Value| v["data"]["token"].as_str().unwrap().to_owned();
    let operator = token(
        &reg(
            register("operator", Some("operator")),
            Some(admin.to_owned()),
        )
        .await,
    );
    let viewer = token(&reg(register("viewer", None), None).await);
    reg(register("victim", None), None).await;
    let mut refresh = Vec::new();
    for i in 0..14 {
        let r = reg(register(&format!("refresher{i}"), None), None).await;
        refresh.push(r["data"]["refreshToken"].as_str().unwrap().to_owned());
    }
    for id in ["SL001", "SLDEL", "SLDEV"] {
        let light = json!({"lightId": id, "name": id, "city": "Delhi", "latitude": 28.6, "longitude": 77.2});
        call(
            api,
            Method::POST,
            "/streetlight/api/lights/create",
            Auth::Bearer(admin),
            light,
        )
        .await;
    }
    let path = "/streetlight/api/lights/credential?lightId=SLDEV";
    let login = call(api, Method::POST, path, Auth::Bearer(admin), json!({})).await;
    let own_device = login["data"]["password"].as_str().unwrap().to_owned();
    Fixtures {
        operator,
        viewer,
        own_device,
        refresh,
    }
}

/// The request of cell `k`: a valid body (unique where it creates) and the query that names
/// the light or the city, so that the caller alone decides the outcome.
fn request(method: &str, path: &str, k: u32, refresh: &mut Vec<String>) -> Req {
    let json = |v: Value| Body::Json(v);
    let body = match (method, path) {
        (_, "/api/auth/register") => json(register(&format!("new{k}"), None)),
        (_, "/api/auth/login") => {
            json(json!({"email": "viewer@example.com", "password": "matrix-pass-8812"}))
        }
        (_, "/api/auth/refresh" | "/api/auth/logout") => {
            json(json!({"refreshToken": refresh.pop().expect("a refresh token")}))
        }
        (_, "/api/lights/control") => json(json!({"lightId": "SL001", "action": "on"})),
        (_, "/api/lights/update-status") => json(json!({"lightId": "SL001", "status": "on"})),
        (_, "/api/lights/create") => json(
            json!({"lightId": format!("SLN{k}"), "name": "n", "city": "Delhi", "latitude": 28.6, "longitude": 77.2}),
        ),
        (_, "/api/lights/update") => json(json!({"lightId": "SL001", "name": "Renamed"})),
        (_, "/api/lights/import") => Body::Raw(
            "text/csv".into(),
            format!("lightId,name,city,latitude,longitude\nSLI{k},I,Delhi,28.1,77.1\n").into(),
        ),
        (_, "/api/users/role") => json(json!({"email": "victim@example.com", "role": "viewer"})),
        (_, "/api/auth/password") => {
            json(json!({"currentPassword": "matrix-pass-8812", "newPassword": "matrix-pass-9923"}))
        }
        _ => Body::None,
    };
    let query = match path {
        "/api/lights/detail" | "/api/lights/logs" | "/api/lights/credential" => "?lightId=SL001",
        "/api/lights/delete" => "?lightId=SLDEL",
        "/api/lights/list" | "/api/lights/summary" | "/api/lights/map" => "?city=Delhi",
        _ => "",
    };
    Req::new(format!("{path}{query}"), body)
}
