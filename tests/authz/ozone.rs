//! Ozone: a session ("user"), staff (`is_staff`), devices by bearer token.

use std::cell::Cell;

use civic_testkit::api::{App, Auth};
use civic_testkit::authz::{self, Body, Req, Row};
use civic_testkit::signin;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{DEVICE_MAC, F, O, U, VICTIM_MAC, call, document, next, start};

const OZONE_CALLERS: [&str; 5] = ["anonymous", "user", "staff", "other app", "device"];

pub(crate) const OZONE: &[Row<5>] = &[
    ("GET", "/api/auth/check", [O, O, O, O, O]),
    ("POST", "/api/auth/login", [O, O, O, O, O]),
    ("POST", "/api/auth/logout", [O, O, O, O, O]),
    ("POST", "/api/auth/password", [U, O, O, U, U]),
    ("POST", "/api/auth/register", [O, O, O, O, O]),
    ("GET", "/api/auth/user", [U, O, O, U, U]),
    ("POST", "/api/auth/live", [U, O, O, U, U]),
    ("POST", "/api/handshake", [O, O, O, O, O]),
    ("POST", "/api/device/events", [U, U, U, U, O]),
    ("POST", "/api/iot", [U, U, U, U, O]),
    ("POST", "/api/devices/assign", [U, F, O, U, U]),
    ("POST", "/api/devices/{device_id}/token", [U, F, O, U, U]),
    ("DELETE", "/api/devices/{device_id}/token", [U, F, O, U, U]),
    ("PUT", "/api/devices/{device_id}/notes", [U, F, O, U, U]),
    (
        "POST",
        "/api/devices/{device_id}/certificate",
        [U, F, O, U, U],
    ),
    (
        "PUT",
        "/api/devices/{device_id}/legacy-ingest",
        [U, F, O, U, U],
    ),
    ("GET", "/api/devices/pending", [U, F, O, U, U]),
    ("GET", "/api/events", [U, O, O, U, U]),
    ("GET", "/api/devices/online", [U, O, O, U, U]),
    ("GET", "/api/devices/all", [U, O, O, U, U]),
    ("GET", "/api/devices-data", [U, O, O, U, U]),
    ("GET", "/api/telemetry/summary", [U, O, O, U, U]),
    ("GET", "/api/telemetry/latest", [U, O, O, U, U]),
    ("GET", "/api/outlets", [U, O, O, U, U]),
    ("POST", "/api/outlets", [U, F, O, U, U]),
    ("GET", "/api/outlets/{id}", [U, O, O, U, U]),
    ("PUT", "/api/outlets/{id}", [U, F, O, U, U]),
    ("DELETE", "/api/outlets/{id}", [U, F, O, U, U]),
    ("GET", "/api/machines", [U, O, O, U, U]),
    ("POST", "/api/machines", [U, F, O, U, U]),
    ("GET", "/api/machines/{id}", [U, O, O, U, U]),
    ("PUT", "/api/machines/{id}", [U, F, O, U, U]),
    ("DELETE", "/api/machines/{id}", [U, F, O, U, U]),
    ("POST", "/api/machines/register", [U, F, O, U, U]),
    ("GET", "/api/machines/unregistered", [U, O, O, U, U]),
    ("GET", "/api/test/stats", [U, O, O, U, U]),
    ("GET", "/api/test/stats-options", [U, O, O, U, U]),
    ("GET", "/api/test/stats-export.csv", [U, O, O, U, U]),
    ("GET", "/api/events/analytics", [U, O, O, U, U]),
    ("GET", "/api/export", [U, F, O, U, U]),
    ("POST", "/api/flush", [U, F, O, U, U]),
];

const OZONE_APP: App = App {
    root: "/ozone",
    api: "/ozone/api",
    is_error: |b| b["success"] == false && b["error"].is_string(),
    lagging: &[],
};

#[tokio::test]
async fn ozone_matrix() {
    let (api, out) = start(OZONE_APP).await;
    authz::assert_rows_match("ozone", &document(&api).await, OZONE);
    let staff = out.ozone_staff.clone();
    let user = signin::ozone_user(&api.http, &api.server, "user").await;
    signin::ozone_device(&api.http, &api.server, &staff, VICTIM_MAC, "dev-v").await;
    let post = |path: &'static str, body: Value| {
        let (api, staff) = (&api, &staff);
        async move { call(api, Method::POST, path, Auth::Cookie(staff), body).await }
    };
    let outlet = post("/ozone/api/outlets/", json!({"name": "Outlet"})).await["id"]
        .as_i64()
        .unwrap();
    let machine = post(
        "/ozone/api/machines/",
        json!({"outlet": outlet, "name": "M"}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let n = Cell::new(0);
    let fill = |method: &str, path: &str, _who: usize| {
        let k = next(&n);
        let json = |v: Value| Body::Json(v);
        let mac = format!("02:00:00:00:{:02X}:{:02X}", k / 256, k % 256);
        let body = match (method, path) {
            (_, "/api/auth/login") => {
                json(json!({"username": "user", "password": "matrix-pass-8812"}))
            }
            (_, "/api/auth/register") => {
                json(json!({"username": format!("new{k}"), "password": "matrix-pass-8812"}))
            }
            (_, "/api/handshake") => json(json!({"mac": mac, "firmware": "1.0.0"})),
            (_, "/api/device/events") => json(
                json!({"device_id": "dev-a", "firmware": "1.0.0", "event_id": format!("e{k}"), "event": "treatment", "treatment": "BASIC", "counter": k}),
            ),
            (_, "/api/iot") => Body::Raw(
                "application/x-www-form-urlencoded".into(),
                format!("mode=BASIC&macaddr={DEVICE_MAC}&count1={k}").into(),
            ),
            (_, "/api/devices/assign") => {
                json(json!({"mac": mac, "device_id": format!("dev-n{k}")}))
            }
            ("PUT", "/api/devices/{device_id}/notes") => json(json!({"notes": "n"})),
            (_, "/api/devices/{device_id}/legacy-ingest") => json(json!({"allowed": false})),
            (_, "/api/auth/password") => json(
                json!({"current_password": "matrix-pass-8812", "new_password": "matrix-pass-9923"}),
            ),
            ("POST", "/api/outlets") => json(json!({"name": format!("Outlet {k}")})),
            ("PUT", "/api/outlets/{id}" | "/api/machines/{id}") => {
                json(json!({"name": format!("Renamed {k}")}))
            }
            ("POST", "/api/machines") => json(json!({"outlet": outlet, "name": format!("M{k}")})),
            (_, "/api/machines/register") => {
                json(json!({"device_id": "dev-v", "outlet_id": outlet, "name": format!("R{k}")}))
            }
            _ => Body::None,
        };
        let path = path
            .replace("{device_id}", "dev-v")
            .replace("/outlets/{id}", &format!("/outlets/{outlet}"))
            .replace("/machines/{id}", &format!("/machines/{machine}"));
        let query = match path.as_str() {
            "/api/telemetry/summary" | "/api/telemetry/latest" | "/api/events" => {
                "?device_id=dev-a"
            }
            _ => "",
        };
        Req::new(format!("{path}{query}"), body)
    };
    let who = [
        Auth::None,
        Auth::Cookie(&user),
        Auth::Cookie(&staff),
        Auth::Bearer(&out.streetlight),
        Auth::Bearer(&out.device),
    ];
    authz::check(&api, OZONE_CALLERS, who, OZONE, fill).await;
}
