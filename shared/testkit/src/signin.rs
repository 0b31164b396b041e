//! Credentials for tests that talk to several apps of one civic-local at once (the
//! authorization matrix, the API fuzzing): each app's first user, who is its admin/owner/staff,
//! and an Ozone device.

use reqwest::{Client, Method, header};
use serde_json::{Value, json};

use crate::api::Auth;
use crate::http;
use crate::local::LocalServer;

/// `method path` (from the server's root, e.g. `/ozone/api/...`) with a JSON body as `auth`;
/// fails unless it succeeds, and returns the JSON answer.
pub async fn call(
    http: &Client,
    server: &LocalServer,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Value,
) -> Value {
    let mut req = http.request(method, server.url(path)).json(&body);
    req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Cookie(c) => req.header(header::COOKIE, c),
    };
    let res = http::send(req).await;
    assert!(
        res.status.is_success(),
        "{path}: {} {}",
        res.status,
        res.text
    );
    res.body
}

/// Logs in to Ozone as `name` (password `matrix-pass-8812`): the session's `Cookie` value.
pub async fn ozone_login(http: &Client, server: &LocalServer, name: &str) -> String {
    let body = json!({"username": name, "password": "matrix-pass-8812"});
    let res = http::send(http.post(server.url("/ozone/api/auth/login/")).json(&body)).await;
    assert!(res.status.is_success(), "ozone login: {}", res.text);
    let set = res.headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// Registers an Ozone user (the first is staff and superuser) and returns its session.
pub async fn ozone_user(http: &Client, server: &LocalServer, name: &str) -> String {
    let body = json!({"username": name, "password": "matrix-pass-8812"});
    let path = "/ozone/api/auth/register/";
    call(http, server, Method::POST, path, Auth::None, body).await;
    ozone_login(http, server, name).await
}

/// Hand-shakes `mac`, has `staff` assign it `device_id`, hand-shakes again: the device token.
pub async fn ozone_device(
    http: &Client,
    server: &LocalServer,
    staff: &str,
    mac: &str,
    device_id: &str,
) -> String {
    let hs = json!({"mac": mac, "firmware": "1.0.0"});
    let handshake = "/ozone/api/handshake/";
    call(
        http,
        server,
        Method::POST,
        handshake,
        Auth::None,
        hs.clone(),
    )
    .await;
    let assign = json!({"mac": mac, "device_id": device_id});
    let path = "/ozone/api/devices/assign/";
    call(
        http,
        server,
        Method::POST,
        path,
        Auth::Cookie(staff),
        assign,
    )
    .await;
    let res = call(http, server, Method::POST, handshake, Auth::None, hs).await;
    res["token"].as_str().expect("device token").to_owned()
}

/// Each app's first user (admin, staff, owner), signed in. Occupancy has no users.
pub struct FirstUsers {
    /// Streetlight's admin token.
    pub streetlight: String,
    /// Ozone's staff session (`Cookie` value), user `staff`.
    pub ozone: String,
    /// HomeForge's owner token, user `owner` (password `Forge-Matrix-42`).
    pub homeforge: String,
    /// EcoFlow's admin token, `admin@example.com`.
    pub ecoflow: String,
}

impl FirstUsers {
    /// Registers the first user of each app on a fresh `server` and signs them in.
    pub async fn register(http: &Client, server: &LocalServer) -> Self {
        let post = |path: &'static str, body: Value| {
            call(http, server, Method::POST, path, Auth::None, body)
        };
        let sl = json!({"name": "admin", "email": "admin@example.com", "password": "matrix-pass-8812", "city": "Delhi"});
        let sl = post("/streetlight/api/auth/register", sl).await;
        let hf = json!({"username": "owner", "password": "Forge-Matrix-42"});
        post("/homeforge/api/register/", hf.clone()).await;
        let hf = post("/homeforge/api/login/", hf).await;
        let ef = json!({"email": "admin@example.com", "password": "securematrix-pass-8812", "first_name": "A", "last_name": "D"});
        post("/ecoflow/api/auth/register/", ef.clone()).await;
        let ef = post("/ecoflow/api/auth/login/", ef).await;
        let token = |v: &Value| v.as_str().expect("token").to_owned();
        Self {
            streetlight: token(&sl["data"]["token"]),
            ozone: ozone_user(http, server, "staff").await,
            homeforge: token(&hf["access"]),
            ecoflow: token(&ef["access"]),
        }
    }
}
