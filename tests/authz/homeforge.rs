//! HomeForge: viewer < user < admin < owner; "staff" = admin or owner. The room and device in
//! the paths belong to the owner, so they are hidden (404) from a user and a viewer.

use std::cell::Cell;

use civic_testkit::api::{self, App, Auth};
use civic_testkit::authz::{self, Body, Req, Row};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{F, H, O, U, call, document, next, start};

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

pub(crate) const HOMEFORGE: &[Row<8>] = &[
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
    lagging: &[],
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
    let mut fx = fixtures(&api, &owner).await;
    let n = Cell::new(0);
    let fill = |method: &str, path: &str, _who: usize| {
        request(method, path, next(&n), &fx.ids, &mut fx.refresh)
    };
    let who = [
        Auth::None,
        Auth::Bearer(&fx.viewer),
        Auth::Bearer(&fx.usr),
        Auth::Bearer(&fx.admin),
        Auth::Bearer(&owner),
        Auth::Bearer(&out.streetlight),
        Auth::Bearer(&out.device),
        Auth::Bearer(&fx.own_device),
    ];
    authz::check(&api, HOMEFORGE_CALLERS, who, HOMEFORGE, fill).await;
}

/// The callers besides the owner, the refresh tokens that the refresh cells spend (one each)
/// and the objects in the paths.
struct Fixtures {
    admin: String,
    usr: String,
    viewer: String,
    /// The device's MQTT password (sent as a bearer token).
    own_device: String,
    refresh: Vec<String>,
    ids: Ids,
}

/// The ids that a row's `{id}` stands for: the owner's room and device (hidden from a user and
/// a viewer), an approved and a pending device type, and a user to edit.
struct Ids {
    victim: i64,
    room: i64,
    approved: i64,
    pending: i64,
    device: i64,
}

/// `method path` below `/homeforge/api` as `auth`: the JSON answer.
async fn hf(
    api: &api::Api,
    method: Method,
    path: String,
    auth: Option<String>,
    body: Value,
) -> Value {
    let auth = auth.as_deref().map_or(Auth::None, Auth::Bearer);
    call(api, method, &format!("/homeforge/api{path}"), auth, body).await
}

/// User `name`, registered by the owner with `role` and logged in: (id, access, refresh).
async fn user(
    api: &api::Api,
    owner: &str,
    name: &'static str,
    role: Option<&'static str>,
) -> (i64, String, String) {
    let mut body = json!({"username": name, "password": "Forge-Matrix-42"});
    if let Some(r) = role {
        body["role"] = r.into();
    }
    let id = hf(
        api,
        Method::POST,
        "/register/".into(),
        Some(owner.to_owned()),
        body,
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let pair = hf(
        api,
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

/// Users registered by the owner (an admin, a user, a viewer, `vera` to edit and 14 whose
/// refresh tokens the refresh cells spend), then the objects.
async fn fixtures(api: &api::Api, owner: &str) -> Fixtures {
    let (_, admin, _) = user(api, owner, "adam", Some("admin")).await;
    let (_, usr, _) = user(api, owner, "ursula", None).await;
    let (_, viewer, _) = user(api, owner, "victor", Some("viewer")).await;
    let (victim, _, _) = user(api, owner, "vera", None).await;
    let mut refresh = Vec::new();
    for i in 0..14 {
        refresh.push(
            user(
                api,
                owner,
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
    let (ids, own_device) = objects(api, owner, &usr, victim).await;
    Fixtures {
        admin,
        usr,
        viewer,
        own_device,
        refresh,
        ids,
    }
}

/// The owner's room and device, and device types approved (the owner's) and pending (the
/// user `usr`'s): their ids, with the user `victim`'s, and the device's MQTT password.
async fn objects(api: &api::Api, owner: &str, usr: &str, victim: i64) -> (Ids, String) {
    let id = |v: Value| v["id"].as_i64().unwrap();
    let room = id(hf(
        api,
        Method::POST,
        "/rooms/".into(),
        Some(owner.to_owned()),
        json!({"name": "Hall"}),
    )
    .await);
    let approved = id(hf(
        api,
        Method::POST,
        "/device-types/propose/".into(),
        Some(owner.to_owned()),
        fan("Approved Fan"),
    )
    .await);
    hf(
        api,
        Method::POST,
        format!("/admin/device-types/{approved}/approve/"),
        Some(owner.to_owned()),
        json!({}),
    )
    .await;
    let pending = id(hf(
        api,
        Method::POST,
        "/device-types/propose/".into(),
        Some(usr.to_owned()),
        fan("Pending Fan"),
    )
    .await);
    let device =
        json!({"name": "Fan", "ip_address": "192.168.1.50", "device_type": approved, "room": room});
    let device = hf(
        api,
        Method::POST,
        "/devices/".into(),
        Some(owner.to_owned()),
        device,
    )
    .await;
    let own_device = device["mqtt"]["password"].as_str().unwrap().to_owned();
    let device = id(device);
    let ids = Ids {
        victim,
        room,
        approved,
        pending,
        device,
    };
    (ids, own_device)
}

/// The request of cell `k`: a valid body (unique where it creates) and the path with the
/// object its `{id}` stands for.
fn request(method: &str, path: &str, k: u32, ids: &Ids, refresh: &mut Vec<String>) -> Req {
    let Ids {
        victim,
        room,
        approved,
        pending,
        device,
    } = *ids;
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
}
