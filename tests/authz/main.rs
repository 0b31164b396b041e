//! The authorization matrix: every operation of each app's OpenAPI document (as civic-local
//! serves it) × every kind of caller: anonymous, each of the app's roles, a valid token of
//! another app, and a device credential (Ozone's device token). Each app's expected outcomes
//! are stated once, in its table below; an operation without a row, or a row without an
//! operation, fails. `readme_role_tables_agree_with_the_matrix` checks the README's "who"
//! columns against the same tables. `CIVIC_AUTHZ_PRINT=1` prints what the server answered,
//! as rows, instead of failing (to review a new endpoint's row).

use std::cell::Cell;

use civic_testkit::api::{self, App, Auth};
use civic_testkit::authz::{self, Body, Outcome, Req, Row};
use civic_testkit::http;
use civic_testkit::local::LocalServer;
use civic_testkit::signin::{self, FirstUsers};
use reqwest::Method;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

const O: Outcome = Outcome::Ok;
const U: Outcome = Outcome::E401;
const F: Outcome = Outcome::E403;
const H: Outcome = Outcome::E404;

/// The first user of each app (a token of another app is one of these) and a device credential.
/// Apps whose devices have MQTT logins of their own (Streetlight, Occupancy, HomeForge) also
/// try one ("own device", its password sent as a bearer token): a device login is no HTTP
/// credential.
struct Outsiders {
    /// Streetlight's admin token (for the other apps) and HomeForge's owner token (for
    /// Streetlight).
    streetlight: String,
    homeforge: String,
    /// The first users of Ozone (a staff session) and EcoFlow (an admin token).
    ozone_staff: String,
    ecoflow: String,
    /// Ozone device `dev-a`'s bearer token, whose MAC is [`DEVICE_MAC`].
    device: String,
}

const DEVICE_MAC: &str = "EC:E3:34:46:2B:C0";
/// A second Ozone device, the object of device-management rows (so that rotating its token
/// does not disturb the device caller).
const VICTIM_MAC: &str = "EC:E3:34:46:2B:C1";

/// A counter for unique names (registrations, creations).
fn next(n: &Cell<u32>) -> u32 {
    n.set(n.get() + 1);
    n.get()
}

/// `method path` (from the server's root) with a JSON body as `auth`; the JSON answer.
async fn call(api: &api::Api, method: Method, path: &str, auth: Auth<'_>, body: Value) -> Value {
    signin::call(&api.http, &api.server, method, path, auth, body).await
}

/// civic-local (Occupancy's bearer tokens required) with the outsiders created.
async fn start(app: App) -> (api::Api, Outsiders) {
    let server = LocalServer::start_env(BIN, &[], &[("OCCUPANCY_REQUIRE_AUTH", "true")]).await;
    let api = api::Api::new(server, app);
    let first = FirstUsers::register(&api.http, &api.server).await;
    let device =
        signin::ozone_device(&api.http, &api.server, &first.ozone, DEVICE_MAC, "dev-a").await;
    let outsiders = Outsiders {
        streetlight: first.streetlight,
        homeforge: first.homeforge,
        ozone_staff: first.ozone,
        ecoflow: first.ecoflow,
        device,
    };
    (api, outsiders)
}

/// The app's OpenAPI document as civic-local serves it.
async fn document(api: &api::Api) -> Value {
    let url = api.server.url(&format!("{}/openapi.json", api.app.root));
    http::send(api.http.get(url)).await.ok().clone()
}

// ---------------------------------------------------------------------------------------------
// Streetlight: viewer < operator < admin.

const STREETLIGHT_CALLERS: [&str; 7] = [
    "anonymous",
    "viewer",
    "operator",
    "admin",
    "other app",
    "device",
    "own device",
];

const STREETLIGHT: &[Row<7>] = &[
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
};

#[tokio::test]
async fn streetlight_matrix() {
    let (api, out) = start(STREETLIGHT_APP).await;
    authz::assert_rows_match("streetlight", &document(&api).await, STREETLIGHT);
    let admin = out.streetlight.clone();
    let register = |name: &str, role: Option<&str>| {
        let mut body = json!({"name": name, "email": format!("{name}@example.com"), "password": "matrix-pass-8812", "city": "Delhi"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        body
    };
    let reg = |body: Value, by: Option<String>| {
        let api = &api;
        async move {
            let auth = by.as_deref().map_or(Auth::None, Auth::Bearer);
            call(
                api,
                Method::POST,
                "/streetlight/api/auth/register",
                auth,
                body,
            )
            .await
        }
    };
    let token = |v: &Value| v["data"]["token"].as_str().unwrap().to_owned();
    let operator = token(&reg(register("operator", Some("operator")), Some(admin.clone())).await);
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
            &api,
            Method::POST,
            "/streetlight/api/lights/create",
            Auth::Bearer(&admin),
            light,
        )
        .await;
    }
    let path = "/streetlight/api/lights/credential?lightId=SLDEV";
    let login = call(&api, Method::POST, path, Auth::Bearer(&admin), json!({})).await;
    let own_device = login["data"]["password"].as_str().unwrap().to_owned();
    let n = Cell::new(0);
    let fill = |method: &str, path: &str, _who: usize| {
        let k = next(&n);
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
            (_, "/api/users/role") => {
                json(json!({"email": "victim@example.com", "role": "viewer"}))
            }
            (_, "/api/auth/password") => json(
                json!({"currentPassword": "matrix-pass-8812", "newPassword": "matrix-pass-9923"}),
            ),
            _ => Body::None,
        };
        let query = match path {
            "/api/lights/detail" | "/api/lights/logs" | "/api/lights/credential" => {
                "?lightId=SL001"
            }
            "/api/lights/delete" => "?lightId=SLDEL",
            "/api/lights/list" | "/api/lights/summary" | "/api/lights/map" => "?city=Delhi",
            _ => "",
        };
        Req::new(format!("{path}{query}"), body)
    };
    let who = [
        Auth::None,
        Auth::Bearer(&viewer),
        Auth::Bearer(&operator),
        Auth::Bearer(&admin),
        Auth::Bearer(&out.homeforge),
        Auth::Bearer(&out.device),
        Auth::Bearer(&own_device),
    ];
    authz::check(&api, STREETLIGHT_CALLERS, who, STREETLIGHT, fill).await;
}

// ---------------------------------------------------------------------------------------------
// Ozone: a session ("user"), staff (`is_staff`), devices by bearer token.

const OZONE_CALLERS: [&str; 5] = ["anonymous", "user", "staff", "other app", "device"];

const OZONE: &[Row<5>] = &[
    ("GET", "/api/auth/check", [O, O, O, O, O]),
    ("POST", "/api/auth/login", [O, O, O, O, O]),
    ("POST", "/api/auth/logout", [O, O, O, O, O]),
    ("POST", "/api/auth/password", [U, O, O, U, U]),
    ("POST", "/api/auth/register", [O, O, O, O, O]),
    ("GET", "/api/auth/user", [U, O, O, U, U]),
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

// ---------------------------------------------------------------------------------------------
// Occupancy with `OCCUPANCY_REQUIRE_AUTH=true` (the deployed default): any occupancy token.

const OCCUPANCY_CALLERS: [&str; 5] = ["anonymous", "token", "other app", "device", "own device"];

const OCCUPANCY: &[Row<5>] = &[
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

// ---------------------------------------------------------------------------------------------
// HomeForge: viewer < user < admin < owner; "staff" = admin or owner. The room and device in
// the paths belong to the owner, so they are hidden (404) from a user and a viewer.

const HOMEFORGE_CALLERS: [&str; 8] = [
    "anonymous",
    "viewer",
    "user",
    "admin",
    "owner",
    "other app",
    "device",
    "own device",
];

const HOMEFORGE: &[Row<8>] = &[
    ("POST", "/api/register", [O, O, O, O, O, U, U, U]),
    ("POST", "/api/login", [O, O, O, O, O, O, O, O]),
    ("POST", "/api/token/refresh", [O, O, O, O, O, O, O, O]),
    ("GET", "/api/me", [U, O, O, O, O, U, U, U]),
    ("PUT", "/api/me", [U, O, O, O, O, U, U, U]),
    ("GET", "/media/avatars/{file}", [O, O, O, O, O, O, O, O]),
    ("GET", "/api/users", [U, F, F, O, O, U, U, U]),
    ("GET", "/api/users/{id}", [U, F, F, O, O, U, U, U]),
    ("PUT", "/api/users/{id}", [U, F, F, O, O, U, U, U]),
    ("GET", "/api/rooms", [U, O, O, O, O, U, U, U]),
    ("POST", "/api/rooms", [U, F, F, O, O, U, U, U]),
    ("GET", "/api/rooms/{id}", [U, H, H, O, O, U, U, U]),
    ("PUT", "/api/rooms/{id}", [U, F, F, O, O, U, U, U]),
    ("DELETE", "/api/rooms/{id}", [U, F, F, O, O, U, U, U]),
    ("GET", "/api/device-types", [U, O, O, O, O, U, U, U]),
    ("GET", "/api/device-types/mine", [U, O, O, O, O, U, U, U]),
    ("GET", "/api/device-types/{id}", [U, O, O, O, O, U, U, U]),
    (
        "POST",
        "/api/device-types/propose",
        [U, F, O, O, O, U, U, U],
    ),
    (
        "GET",
        "/api/admin/device-types/pending",
        [U, F, F, O, O, U, U, U],
    ),
    (
        "POST",
        "/api/admin/device-types/{id}/approve",
        [U, F, F, O, O, U, U, U],
    ),
    (
        "POST",
        "/api/admin/device-types/{id}/deny",
        [U, F, F, O, O, U, U, U],
    ),
    ("GET", "/api/devices", [U, O, O, O, O, U, U, U]),
    ("POST", "/api/devices", [U, F, O, O, O, U, U, U]),
    ("GET", "/api/devices/{id}", [U, H, H, O, O, U, U, U]),
    ("PUT", "/api/devices/{id}", [U, F, H, O, O, U, U, U]),
    ("DELETE", "/api/devices/{id}", [U, F, H, O, O, U, U, U]),
    ("PATCH", "/api/devices/{id}/state", [U, F, H, O, O, U, U, U]),
    (
        "POST",
        "/api/devices/{id}/credential",
        [U, F, H, O, O, U, U, U],
    ),
    ("GET", "/api/topology", [U, O, O, O, O, U, U, U]),
];

const HOMEFORGE_APP: App = App {
    root: "/homeforge",
    api: "/homeforge/api",
    is_error: api::drf_error,
};

/// The seed's Smart Fan proposal, named `name`.
fn fan(name: &str) -> Value {
    json!({
        "name": name,
        "definition": {"name": "Fan v1", "structure": [
            {"id": "mcu-1", "type": "mcu", "label": "ESP32", "position": {"x": 50, "y": 50}},
            {"id": "relay_1", "type": "relay", "label": "Power", "position": {"x": 150, "y": 50}}
        ]},
        "card_template": {"layout_config": {"w": 2, "h": 2}, "controls": [
            {"widget_type": "TOGGLE", "label": "Power", "variable_mapping": "relay_1"}
        ]}
    })
}

#[tokio::test]
async fn homeforge_matrix() {
    let (api, out) = start(HOMEFORGE_APP).await;
    authz::assert_rows_match("homeforge", &document(&api).await, HOMEFORGE);
    let owner = out.homeforge.clone();
    let hf = |method: Method, path: String, auth: Option<String>, body: Value| {
        let api = &api;
        async move {
            let auth = auth.as_deref().map_or(Auth::None, Auth::Bearer);
            call(api, method, &format!("/homeforge/api{path}"), auth, body).await
        }
    };
    let user = |name: &'static str, role: Option<&'static str>| {
        let hf = &hf;
        let owner = owner.clone();
        async move {
            let mut body = json!({"username": name, "password": "Forge-Matrix-42"});
            if let Some(r) = role {
                body["role"] = r.into();
            }
            let id = hf(Method::POST, "/register/".into(), Some(owner), body).await["id"]
                .as_i64()
                .unwrap();
            let pair = hf(
                Method::POST,
                "/login/".into(),
                None,
                json!({"username": name, "password": "Forge-Matrix-42"}),
            )
            .await;
            (
                id,
                pair["access"].as_str().unwrap().to_owned(),
                pair["refresh"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (_, admin, _) = user("adam", Some("admin")).await;
    let (_, usr, _) = user("ursula", None).await;
    let (_, viewer, _) = user("victor", Some("viewer")).await;
    let (victim, _, _) = user("vera", None).await;
    let mut refresh = Vec::new();
    for i in 0..14 {
        refresh.push(
            user(
                [
                    "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11",
                    "r12", "r13",
                ][i],
                None,
            )
            .await
            .2,
        );
    }
    let id = |v: Value| v["id"].as_i64().unwrap();
    let room = id(hf(
        Method::POST,
        "/rooms/".into(),
        Some(owner.clone()),
        json!({"name": "Hall"}),
    )
    .await);
    let approved = id(hf(
        Method::POST,
        "/device-types/propose/".into(),
        Some(owner.clone()),
        fan("Approved Fan"),
    )
    .await);
    hf(
        Method::POST,
        format!("/admin/device-types/{approved}/approve/"),
        Some(owner.clone()),
        json!({}),
    )
    .await;
    let pending = id(hf(
        Method::POST,
        "/device-types/propose/".into(),
        Some(usr.clone()),
        fan("Pending Fan"),
    )
    .await);
    let device =
        json!({"name": "Fan", "ip_address": "192.168.1.50", "device_type": approved, "room": room});
    let device = hf(
        Method::POST,
        "/devices/".into(),
        Some(owner.clone()),
        device,
    )
    .await;
    let own_device = device["mqtt"]["password"].as_str().unwrap().to_owned();
    let device = id(device);
    let n = Cell::new(0);
    let fill = |method: &str, path: &str, _who: usize| {
        let k = next(&n);
        let json = |v: Value| Body::Json(v);
        let body = match (method, path) {
            (_, "/api/register") => {
                json(json!({"username": format!("new{k}"), "password": "Forge-Matrix-42"}))
            }
            (_, "/api/login") => json(json!({"username": "ursula", "password": "Forge-Matrix-42"})),
            (_, "/api/token/refresh") => {
                json(json!({"refresh": refresh.pop().expect("a refresh token")}))
            }
            ("PUT", "/api/me" | "/api/users/{id}") => json(json!({"first_name": format!("F{k}")})),
            ("POST", "/api/rooms") => json(json!({"name": format!("Room {k}")})),
            ("PUT", "/api/rooms/{id}") => json(json!({"description": format!("d{k}")})),
            (_, "/api/device-types/propose") => json(fan(&format!("Fan {k}"))),
            (_, "/api/admin/device-types/{id}/approve") => json(json!({})),
            (_, "/api/admin/device-types/{id}/deny") => json(json!({"reason": "r"})),
            ("POST", "/api/devices") => json(
                json!({"name": format!("D{k}"), "ip_address": "192.168.1.51", "device_type": approved}),
            ),
            ("PUT", "/api/devices/{id}") => json(json!({"name": format!("Fan {k}")})),
            (_, "/api/devices/{id}/state") => json(json!({"relay_1": true})),
            _ => Body::None,
        };
        let path = if path.starts_with("/api/admin/device-types/") {
            path.replace("{id}", &pending.to_string())
        } else if path.starts_with("/api/device-types/") {
            path.replace("{id}", &approved.to_string())
        } else if path.starts_with("/api/rooms/") {
            path.replace("{id}", &room.to_string())
        } else if path.starts_with("/api/devices/") {
            path.replace("{id}", &device.to_string())
        } else {
            path.replace("{id}", &victim.to_string())
                .replace("{file}", "none.png")
        };
        Req::new(path, body)
    };
    let who = [
        Auth::None,
        Auth::Bearer(&viewer),
        Auth::Bearer(&usr),
        Auth::Bearer(&admin),
        Auth::Bearer(&owner),
        Auth::Bearer(&out.streetlight),
        Auth::Bearer(&out.device),
        Auth::Bearer(&own_device),
    ];
    authz::check(&api, HOMEFORGE_CALLERS, who, HOMEFORGE, fill).await;
}

// ---------------------------------------------------------------------------------------------
// EcoFlow: USER < ADMIN.

const ECOFLOW_CALLERS: [&str; 5] = ["anonymous", "user", "admin", "other app", "device"];

const ECOFLOW: &[Row<5>] = &[
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
    let ef = |path: String, auth: Option<String>, body: Value| {
        let api = &api;
        async move {
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
    };
    let person = |email: String| {
        let ef = &ef;
        async move {
            let body = json!({"email": email, "password": "securematrix-pass-8812", "first_name": "J", "last_name": "D"});
            ef("/auth/register/".into(), None, body.clone()).await;
            ef("/auth/login/".into(), None, body).await
        }
    };
    let admin = out.ecoflow.clone();
    let user = person("user@example.com".into()).await["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut refresh = Vec::new();
    for i in 0..10 {
        let pair = person(format!("r{i}@example.com")).await;
        refresh.push(pair["refresh"].as_str().unwrap().to_owned());
    }
    let id = |v: Value| v["id"].as_i64().unwrap();
    let a = || Some(admin.clone());
    let org = id(ef(
        "/organizations/".into(),
        a(),
        json!({"name": "Org", "org_type": "Corporate", "total_capacity": 500}),
    )
    .await);
    let zone = id(ef(
        "/zones/".into(),
        a(),
        json!({"name": "Z", "zone_type": "Entrance", "capacity": 50, "organization_id": org}),
    )
    .await);
    let camera = id(ef(
        "/cameras/".into(),
        a(),
        json!({"name": "C", "is_active": true, "zone_id": zone}),
    )
    .await);
    let alert = id(ef("/alerts/".into(), a(), json!({"heading": "H"})).await);
    let note = id(ef(
        "/notifications/".into(),
        a(),
        json!({"title": "t", "message": "m"}),
    )
    .await);
    let n = Cell::new(0);
    let fill = |method: &str, path: &str, _who: usize| {
        let k = next(&n);
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
            ("POST", "/api/organizations") => json(
                json!({"name": format!("Org {k}"), "org_type": "Corporate", "total_capacity": 5}),
            ),
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
            ("POST", "/api/notifications") => {
                json(json!({"title": "t", "message": format!("m{k}")}))
            }
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
    };
    let who = [
        Auth::None,
        Auth::Bearer(&user),
        Auth::Bearer(&admin),
        Auth::Bearer(&out.streetlight),
        Auth::Bearer(&out.device),
    ];
    authz::check(&api, ECOFLOW_CALLERS, who, ECOFLOW, fill).await;
}

// ---------------------------------------------------------------------------------------------
// The README's endpoint tables against the matrix.

/// The operations of an app's README table: `(METHOD, path as in the document, who)`. Rows
/// list several methods (`GET, PUT`), several paths, trailing slashes and query strings; a
/// "who" of `a / b` is `a` for GET and `b` for the other methods.
fn readme_rows(readme: &str, section: &str, prefix: &str) -> Vec<(String, String, String)> {
    let start = readme
        .find(&format!("\n### {section}\n"))
        .unwrap_or_else(|| panic!("README has no {section} section"));
    let body = &readme[start + section.len() + 6..];
    let body = &body[..body.find("\n### ").unwrap_or(body.len())];
    let mut rows = Vec::new();
    for line in body.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line
            .split(" | ")
            .map(|c| c.trim_matches(['|', ' ']))
            .collect();
        let methods: Vec<&str> = cells[0].split(", ").collect();
        let known = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        if !methods.iter().all(|m| known.contains(m)) {
            continue; // the header row, or a schedule
        }
        let who: Vec<&str> = cells[2].split(" / ").collect();
        for path in cells[1].split('`').skip(1).step_by(2) {
            let path = path.split('?').next().unwrap().trim_end_matches('/');
            for m in &methods {
                let w = match (who.len(), *m) {
                    (2, "GET") => who[0],
                    (2, _) => who[1],
                    _ => cells[2],
                };
                rows.push((m.to_string(), format!("{prefix}{path}"), w.to_owned()));
            }
        }
    }
    rows
}

/// Which of the first callers (anonymous, then the app's roles) a README "who" admits.
fn admits(app: &str, who: &str) -> Vec<bool> {
    let v = |s: &str| s.chars().map(|c| c == '1').collect::<Vec<_>>();
    match (app, who) {
        (_, "anyone") => v("11111"),
        ("streetlight", "any role") => v("0111"),
        ("streetlight", "operator, admin") => v("0011"),
        ("streetlight", "admin") => v("0001"),
        // A device's handshake and legacy report carry no user credential.
        ("ozone", "device" | "device (MAC)") => v("111"),
        ("ozone", "device token") => v("000"),
        ("ozone", "session") => v("011"),
        ("ozone", "staff") => v("001"),
        ("homeforge", "any role" | "owner of the device, staff") => v("01111"),
        ("homeforge", "user, staff" | "owner of the device (not a viewer), staff") => v("00111"),
        ("homeforge", "staff") => v("00011"),
        ("ecoflow", "user") => v("011"),
        ("ecoflow", "admin") => v("001"),
        _ => panic!("{app}: README's who {who:?} is not a known phrase; add it to `admits`"),
    }
}

/// Compares an app's README table with its matrix: the same operations and, where the README
/// has a "who" column (`roles`: how many roles follow the anonymous column), the same callers
/// admitted. A caller refused with 404 (the object is
/// hidden from it) is admitted: the README's "owner of the device" is ownership, not role.
fn compare_readme<const N: usize>(
    readme: &str,
    app: &str,
    section: &str,
    prefix: &str,
    roles: Option<usize>,
    rows: &[Row<N>],
) -> Vec<String> {
    let documented = readme_rows(readme, section, prefix);
    let mut wrong = Vec::new();
    for (method, path, outcomes) in rows {
        let Some((_, _, who)) = documented.iter().find(|(m, p, _)| m == method && p == path) else {
            wrong.push(format!(
                "{app}: {method} {path} is missing from the README's table"
            ));
            continue;
        };
        let Some(roles) = roles else { continue };
        let reach: Vec<bool> = outcomes[..=roles]
            .iter()
            .map(|o| *o == O || *o == H)
            .collect();
        let said = &admits(app, who)[..=roles];
        if reach != said {
            wrong.push(format!(
                "{app}: {method} {path}: the README says {who:?}, the matrix admits {reach:?}"
            ));
        }
    }
    for (method, path, _) in &documented {
        if !rows.iter().any(|(m, p, _)| m == method && p == path) {
            wrong.push(format!(
                "{app}: the README lists {method} {path}, which has no row"
            ));
        }
    }
    wrong
}

#[test]
fn readme_role_tables_agree_with_the_matrix() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let mut wrong = Vec::new();
    wrong.extend(compare_readme(
        &readme,
        "streetlight",
        "Streetlight",
        "",
        Some(3),
        STREETLIGHT,
    ));
    wrong.extend(compare_readme(
        &readme,
        "ozone",
        "Ozone",
        "",
        Some(2),
        OZONE,
    ));
    wrong.extend(compare_readme(
        &readme,
        "homeforge",
        "HomeForge",
        "",
        Some(4),
        HOMEFORGE,
    ));
    wrong.extend(compare_readme(
        &readme,
        "ecoflow",
        "EcoFlow",
        "",
        Some(2),
        ECOFLOW,
    ));
    // Occupancy's third column names the function, not who: with tokens required every route
    // needs one, which its matrix states row by row.
    wrong.extend(compare_readme(
        &readme,
        "occupancy",
        "Occupancy",
        "/api/occupancy",
        None,
        OCCUPANCY,
    ));
    assert!(
        wrong.is_empty(),
        "README and matrix disagree:\n{}",
        wrong.join("\n")
    );
}
