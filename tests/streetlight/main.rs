//! Black-box tests of Streetlight: the real `civic-local` binary over HTTP on 127.0.0.1.

use std::collections::HashMap;

use civic_testkit::api::{self, App};
use civic_testkit::http::{self, Resp};
use civic_testkit::local::LocalServer;
use reqwest::{Client, Method};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// Streetlight's mount point and its error envelope.
const APP: App = App {
    root: "/streetlight",
    api: "/streetlight/api",
    is_error: |b| b["status"].is_u64() && b["message"].is_string() && b["data"].is_null(),
};

// The shared client with Streetlight's fixtures.
civic_testkit::client!();

/// Streetlight's envelope: `{status, message, data}`.
trait Envelope {
    fn data(&self) -> &Value;
    fn assert_error(&self, status: u16) -> &str;
}

impl Envelope for Resp {
    fn data(&self) -> &Value {
        &self.body["data"]
    }
    /// Every error is the seed's envelope with the status repeated and `data: null`.
    #[track_caller]
    fn assert_error(&self, status: u16) -> &str {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["status"], status, "body: {}", self.body);
        assert!(self.body["data"].is_null(), "body: {}", self.body);
        self.body["message"].as_str().expect("message")
    }
}

impl Api {
    async fn start() -> Self {
        Self::with(&[]).await
    }
    async fn with(args: &[&str]) -> Self {
        Self::on(LocalServer::start(BIN, args).await)
    }
    /// The client for Streetlight on `server`.
    fn on(server: LocalServer) -> Self {
        Self(api::Api::new(server, APP))
    }

    async fn register(&self, name: &str, role: Option<&str>, token: Option<&str>) -> Resp {
        let mut body = json!({"name": name, "email": format!("{name}@example.com"), "password": "password123", "city": "Delhi"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        self.post("/auth/register", token, body).await
    }

    /// An admin (the first user), an operator and a viewer.
    async fn users(&self) -> (String, String, String) {
        let admin = self.register("admin", None, None).await;
        assert_eq!(admin.status, 201, "{}", admin.body);
        let admin = admin.data()["token"].as_str().unwrap().to_owned();
        let op = self.register("oper", Some("operator"), Some(&admin)).await;
        let viewer = self.register("viewer", None, None).await;
        (admin, token(&op), token(&viewer))
    }

    async fn create(&self, admin: &str, id: &str, city: &str) -> Resp {
        self.post("/lights/create", Some(admin), json!({"lightId": id, "name": format!("Light {id}"), "city": city, "latitude": 28.6139, "longitude": 77.2090, "address": "Main Road"})).await
    }
}

fn token(r: &Resp) -> String {
    assert!(r.status.is_success(), "{}", r.body);
    r.data()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn first_user_is_admin_and_later_registrations_get_the_default_role() {
    let api = Api::start().await;
    let first = api.register("alice", None, None).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["status"], 201);
    assert_eq!(first.body["message"], "User registered successfully");
    let user = &first.data()["user"];
    assert_eq!(user["role"], "admin");
    assert_eq!(user["id"], "1");
    assert_eq!(user["name"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["city"], "Delhi");
    assert!(first.data()["token"].as_str().unwrap().len() > 20);
    assert!(user.get("password_hash").is_none());

    let second = api.register("bob", None, None).await;
    assert_eq!(second.status, 201);
    assert_eq!(second.data()["user"]["role"], "viewer");
    assert_eq!(second.data()["user"]["id"], "2");

    // Asking for a higher role without an admin's token is refused; with one it is honoured.
    api.register("carol", Some("operator"), None)
        .await
        .assert_error(403);
    api.register("carol", Some("admin"), Some(&token(&second)))
        .await
        .assert_error(403);
    let carol = api
        .register("carol", Some("operator"), Some(&token(&first)))
        .await;
    assert_eq!(carol.data()["user"]["role"], "operator");

    let dup = api.post("/auth/register", None, json!({"name": "x", "email": "ALICE@example.com", "password": "password123", "city": "Delhi"})).await;
    assert_eq!(dup.assert_error(400), "User already exists");
}

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_admin() {
    let api = Api::start().await;
    let names: Vec<String> = (0..8).map(|i| format!("u{i}")).collect();
    let regs = futures::future::join_all(names.iter().map(|n| api.register(n, None, None))).await;
    let admins = regs
        .iter()
        .filter(|r| r.data()["user"]["role"] == "admin")
        .count();
    assert!(regs.iter().all(|r| r.status == 201));
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn registration_and_login_reject_bad_input_with_the_envelope() {
    // A small body limit, so the oversize body below fits in socket buffers and the client
    // reads the 413 instead of a reset.
    let api = Api::with(&["--body-limit", "65536"]).await;
    let missing = api
        .post("/auth/register", None, json!({"email": "a@example.com"}))
        .await;
    assert!(missing.assert_error(400).contains("name"));
    api.post(
        "/auth/register",
        None,
        json!({"name": 5, "email": "a@example.com", "password": "password123", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register",
        None,
        json!({"name": "a", "email": "not-an-email", "password": "password123", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register",
        None,
        json!({"name": "a", "email": "a@example.com", "password": "short", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post("/auth/register", None, json!({"name": "a", "email": "a@example.com", "password": "password123", "city": "Delhi", "role": "superuser"})).await.assert_error(400);
    api.post("/auth/register", None, json!([1, 2]))
        .await
        .assert_error(400);

    let login = |kind, body| api.raw(Method::POST, "/auth/login", None, kind, body);
    login("application/json", "{\"email\": ")
        .await
        .assert_error(400);
    login("text/plain", "hello").await.assert_error(415);
    // An oversize body is refused from its Content-Length, before it is read.
    let raw = http::raw(&api.server.base, "POST /streetlight/api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{").await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.contains(r#""status":413"#) && raw.contains(r#""data":null"#),
        "{raw}"
    );
    // And one that lies about its length is cut off at the limit while being read. Its own
    // client: the server closes the connection, which a pooled one would race against.
    let huge = "x".repeat(70_000);
    let chunked = Client::new()
        .post(api.url("/auth/register"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter([Ok::<
            _,
            std::io::Error,
        >(
            format!("{{\"name\": \"{huge}\"}}"),
        )])));
    match chunked.send().await {
        Ok(res) => assert_eq!(res.status(), 413),
        Err(e) => assert!(e.is_request(), "{e}"), // the server may close while we still write
    }

    api.register("dora", None, None).await;
    api.post("/auth/login", None, json!({"email": "dora@example.com"}))
        .await
        .assert_error(400);
    let wrong = api
        .post(
            "/auth/login",
            None,
            json!({"email": "dora@example.com", "password": "wrongpass1"}),
        )
        .await;
    assert_eq!(wrong.assert_error(401), "Invalid credentials");
    api.post(
        "/auth/login",
        None,
        json!({"email": "nobody@example.com", "password": "password123"}),
    )
    .await
    .assert_error(401);
    let ok = api
        .post(
            "/auth/login",
            None,
            json!({"email": "Dora@Example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["message"], "Login successful");
    assert_eq!(ok.data()["user"]["email"], "dora@example.com");
    assert_eq!(ok.data()["user"]["role"], "admin");
}

#[tokio::test]
async fn every_lights_endpoint_requires_a_token() {
    let api = Api::start().await;
    for (method, path) in [
        (Method::GET, "/lights/list"),
        (Method::GET, "/lights/detail?lightId=SL001"),
        (Method::GET, "/lights/summary"),
        (Method::GET, "/lights/map"),
        (Method::POST, "/lights/control"),
        (Method::POST, "/lights/update-status"),
        (Method::POST, "/lights/create"),
        (Method::PUT, "/lights/update"),
        (Method::DELETE, "/lights/delete?lightId=SL001"),
        (Method::POST, "/lights/import"),
        (Method::GET, "/lights/logs?lightId=SL001"),
        (Method::GET, "/users"),
        (Method::POST, "/users/role"),
    ] {
        let r = api.call(method.clone(), path, None, Some(json!({}))).await;
        r.assert_error(401);
        let r = api
            .call(method, path, Some("not.a.jwt"), Some(json!({})))
            .await;
        r.assert_error(401);
    }
}

#[tokio::test]
async fn lights_list_map_detail_and_summary_follow_the_seed() {
    let api = Api::start().await;
    let (admin, _op, viewer) = api.users().await;
    let created = api.create(&admin, "SL001", "Delhi").await;
    assert_eq!(created.status, 201, "{}", created.body);
    let light = created.data();
    assert_eq!(light["id"], 1);
    assert_eq!(light["status"], "off");
    assert_eq!(light["is_automatic"], true);
    assert_eq!(light["brightness"], 100);
    assert!(light["error_details"].is_null());
    api.create(&admin, "SL002", "Delhi").await;
    api.create(&admin, "MB001", "Mumbai").await;
    api.create(&admin, "SL001", "Delhi").await.assert_error(409);

    // The viewer's city (Delhi) is the default.
    let list = api.get("/lights/list", &viewer).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["message"], "Lights retrieved successfully");
    let ids: Vec<&str> = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["light_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["SL001", "SL002"]);
    let keys: Vec<&String> = list.data()[0].as_object().unwrap().keys().collect();
    for k in [
        "id",
        "light_id",
        "name",
        "city",
        "latitude",
        "longitude",
        "address",
        "status",
        "is_automatic",
        "brightness",
        "last_status_change",
        "error_details",
    ] {
        assert!(keys.iter().any(|x| *x == k), "missing {k}");
    }
    assert!(list.data()[0].get("PK").is_none() && list.data()[0].get("version").is_none());
    let mumbai = api.get("/lights/list?city=mumbai", &viewer).await;
    assert_eq!(mumbai.data().as_array().unwrap().len(), 1);

    let map = api.get("/lights/map?city=Delhi", &viewer).await;
    assert_eq!(map.body["message"], "Map data retrieved");
    assert_eq!(
        map.data()[0],
        json!({"light_id": "SL001", "name": "Light SL001", "location": {"latitude": 28.6139, "longitude": 77.209}, "status": "off"})
    );

    let summary = api.get("/lights/summary?city=Delhi", &viewer).await;
    assert_eq!(summary.body["message"], "City summary retrieved");
    let s = summary.data();
    assert_eq!(
        (
            s["total_lights"].as_i64(),
            s["lights_on"].as_i64(),
            s["lights_off"].as_i64(),
            s["lights_in_error"].as_i64()
        ),
        (Some(2), Some(0), Some(2), Some(0))
    );
    assert_eq!(s["city"], "Delhi");
    assert!(s["id"].as_i64().is_some() && s["last_updated"].is_string());
    let nowhere = api.get("/lights/summary?city=Atlantis", &viewer).await;
    assert_eq!(nowhere.assert_error(404), "No data for city");

    let detail = api.get("/lights/detail?lightId=SL001", &viewer).await;
    assert_eq!(detail.body["message"], "Light details retrieved");
    assert_eq!(detail.data()["light"]["light_id"], "SL001");
    assert_eq!(detail.data()["recentLogs"], json!([]));
    api.get("/lights/detail", &viewer).await.assert_error(400);
    api.get("/lights/detail?lightId=NOPE", &viewer)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn control_is_for_operators_and_keeps_counters_and_logs() {
    let api = Api::start().await;
    let (admin, op, viewer) = api.users().await;
    api.create(&admin, "SL001", "Delhi").await;
    api.create(&admin, "SL002", "Delhi").await;

    let denied = api
        .post(
            "/lights/control",
            &viewer,
            json!({"lightId": "SL001", "action": "on"}),
        )
        .await;
    denied.assert_error(403);
    // The role is checked before the body is read.
    api.post("/lights/control", &viewer, json!({"nonsense": true}))
        .await
        .assert_error(403);
    api.post("/lights/control", &op, json!({"lightId": "SL001"}))
        .await
        .assert_error(400);
    api.post(
        "/lights/control",
        &op,
        json!({"lightId": "SL001", "action": "dim"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/lights/control",
        &op,
        json!({"lightId": "NOPE", "action": "on"}),
    )
    .await
    .assert_error(404);

    let on = api
        .post(
            "/lights/control",
            &op,
            json!({"lightId": "SL001", "action": "on"}),
        )
        .await;
    assert_eq!(on.status, 200);
    assert_eq!(on.body["message"], "Light turned on");
    assert_eq!(on.data()["light_id"], "SL001");
    assert_eq!(on.data()["status"], "on");
    assert_eq!(on.data()["is_automatic"], false);
    assert!(on.data()["last_status_change"].is_string());
    let off = api
        .post(
            "/lights/control",
            &admin,
            json!({"lightId": "SL001", "action": "off"}),
        )
        .await;
    assert_eq!(off.body["message"], "Light turned off");
    api.post(
        "/lights/control",
        &admin,
        json!({"lightId": "SL001", "action": "on"}),
    )
    .await;

    let err = api
        .post(
            "/lights/update-status",
            &op,
            json!({"lightId": "SL002", "status": "error", "errorDetails": "Bulb failed"}),
        )
        .await;
    assert_eq!(err.status, 200);
    assert_eq!(err.body["message"], "Light status updated");
    assert_eq!(err.data()["error_details"], "Bulb failed");
    assert_eq!(err.data()["status"], "error");
    api.post("/lights/update-status", &op, json!({"lightId": "SL002"}))
        .await
        .assert_error(400);
    api.post(
        "/lights/update-status",
        &op,
        json!({"lightId": "SL002", "status": "broken"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/lights/update-status",
        &viewer,
        json!({"lightId": "SL002", "status": "on"}),
    )
    .await
    .assert_error(403);
    api.post(
        "/lights/update-status",
        &op,
        json!({"lightId": "NOPE", "status": "on"}),
    )
    .await
    .assert_error(404);

    let s = api.get("/lights/summary?city=delhi", &viewer).await;
    assert_eq!(s.data()["total_lights"], 2);
    assert_eq!(s.data()["lights_on"], 1);
    assert_eq!(s.data()["lights_off"], 0);
    assert_eq!(s.data()["lights_in_error"], 1);

    let detail = api.get("/lights/detail?lightId=SL001", &viewer).await;
    let logs = detail.data()["recentLogs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let actions: Vec<&str> = logs.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["on", "off", "on"], "newest first");
    assert_eq!(logs[0]["previous_status"], "off");
    assert_eq!(logs[0]["new_status"], "on");
    assert_eq!(logs[0]["performed_by"], "admin@example.com");
    assert_eq!(logs[0]["control_type"], "manual");
    assert_eq!(logs[2]["performed_by"], "oper@example.com");
    let auto = api.get("/lights/detail?lightId=SL002", &viewer).await;
    assert_eq!(auto.data()["recentLogs"][0]["control_type"], "automatic");
    assert_eq!(auto.data()["light"]["error_details"], "Bulb failed");

    // The control history: operators and admins only, paginated, newest first.
    api.get("/lights/logs?lightId=SL001", &viewer)
        .await
        .assert_error(403);
    api.get("/lights/logs", &op).await.assert_error(400);
    api.get("/lights/logs?lightId=NOPE", &op)
        .await
        .assert_error(404);
    let page1 = api.get("/lights/logs?lightId=SL001&limit=2", &op).await;
    assert_eq!(page1.data().as_array().unwrap().len(), 2);
    let cursor = page1.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let page2 = api
        .get(
            &format!("/lights/logs?lightId=SL001&limit=2&cursor={cursor}"),
            &op,
        )
        .await;
    assert_eq!(page2.data()[0]["action"], "on");
    assert_eq!(page2.data()[0]["previous_status"], "off");
    api.get("/lights/logs?lightId=SL001&cursor=garbage", &op)
        .await
        .assert_error(400);
    api.get("/lights/logs?lightId=SL001&limit=0", &op)
        .await
        .assert_error(400);
    api.get("/lights/logs?lightId=SL001&limit=ten", &op)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn concurrent_controls_keep_the_summary_exact() {
    let api = Api::start().await;
    let (admin, op, _) = api.users().await;
    api.create(&admin, "SL001", "Delhi").await;
    api.create(&admin, "SL002", "Delhi").await;
    let calls = (0..24).map(|i| {
        let action = if i % 3 == 0 { "off" } else { "on" };
        let light = if i % 2 == 0 { "SL001" } else { "SL002" };
        api.post(
            "/lights/control",
            &op,
            json!({"lightId": light, "action": action}),
        )
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let list = api.get("/lights/list", &op).await;
    let on = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] == "on")
        .count() as i64;
    let s = api.get("/lights/summary", &op).await;
    assert_eq!(s.data()["lights_on"].as_i64(), Some(on));
    assert_eq!(s.data()["lights_off"].as_i64(), Some(2 - on));
    let logs = api.get("/lights/logs?lightId=SL001&limit=500", &op).await;
    assert_eq!(logs.data().as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn admin_manages_lights_and_users() {
    let api = Api::start().await;
    let (admin, op, viewer) = api.users().await;
    api.create(&op, "SL009", "Delhi").await.assert_error(403);
    api.post("/lights/create", &admin, json!({"lightId": "SL009", "name": "x", "city": "Delhi", "latitude": 91.0, "longitude": 0.0})).await.assert_error(400);
    api.post("/lights/create", &admin, json!({"lightId": "bad id!", "name": "x", "city": "Delhi", "latitude": 1.0, "longitude": 0.0})).await.assert_error(400);
    api.post(
        "/lights/create",
        &admin,
        json!({"lightId": "SL009", "name": "x", "city": "Delhi"}),
    )
    .await
    .assert_error(400);
    api.post("/lights/create", &admin, json!({"lightId": "SL009", "name": "x", "city": "Delhi", "latitude": "north", "longitude": 0.0})).await.assert_error(400);
    api.create(&admin, "SL001", "Delhi").await;

    let upd = api
        .put(
            "/lights/update",
            &admin,
            json!({"lightId": "SL001", "name": "Renamed", "brightness": 40}),
        )
        .await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    assert_eq!(upd.data()["name"], "Renamed");
    assert_eq!(upd.data()["brightness"], 40);
    api.put(
        "/lights/update",
        &admin,
        json!({"lightId": "SL001", "brightness": 400}),
    )
    .await
    .assert_error(400);
    api.put(
        "/lights/update",
        &admin,
        json!({"lightId": "SL001", "city": "Mumbai"}),
    )
    .await
    .assert_error(400);
    api.put(
        "/lights/update",
        &op,
        json!({"lightId": "SL001", "name": "x"}),
    )
    .await
    .assert_error(403);
    api.put(
        "/lights/update",
        &admin,
        json!({"lightId": "NOPE", "name": "x"}),
    )
    .await
    .assert_error(404);

    // Bulk import, CSV and JSON; bad rows are reported, good rows land.
    let csv = "lightId,name,city,latitude,longitude,address,status\nSL010,Ten,Delhi,28.1,77.1,Ring Road,on\nSL011,Eleven,Delhi,28.2,77.2,,off\nSL001,Dup,Delhi,28.0,77.0,,off\nSL012,Bad,Delhi,north,77.0,,off\n";
    let import = |kind, body| api.raw(Method::POST, "/lights/import", &admin, kind, body);
    let imported = import("text/csv", csv).await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert_eq!(imported.data()["created"], 2);
    let failed = imported.data()["failed"].as_array().unwrap();
    assert_eq!(
        failed
            .iter()
            .map(|f| f["row"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );
    let json_import = api.post("/lights/import", &admin, json!({"lights": [{"lightId": "SL020", "name": "Twenty", "city": "Delhi", "latitude": 1.0, "longitude": 2.0}]})).await;
    assert_eq!(json_import.data()["created"], 1);
    import("application/xml", "<x/>").await.assert_error(415);
    api.post("/lights/import", &viewer, json!({"lights": []}))
        .await
        .assert_error(403);

    let s = api.get("/lights/summary", &viewer).await;
    assert_eq!(
        (
            s.data()["total_lights"].as_i64(),
            s.data()["lights_on"].as_i64(),
            s.data()["lights_off"].as_i64()
        ),
        (Some(4), Some(1), Some(3))
    );

    let del = api.delete("/lights/delete?lightId=SL010", &admin).await;
    assert_eq!(del.status, 200);
    api.delete("/lights/delete?lightId=SL010", &admin)
        .await
        .assert_error(404);
    api.delete("/lights/delete?lightId=SL011", &op)
        .await
        .assert_error(403);
    let s = api.get("/lights/summary", &viewer).await;
    assert_eq!(
        (
            s.data()["total_lights"].as_i64(),
            s.data()["lights_on"].as_i64()
        ),
        (Some(3), Some(0))
    );

    // Users: list and role changes, admin only; a new role applies from the next refresh.
    let users = api.get("/users", &admin).await;
    assert_eq!(users.data().as_array().unwrap().len(), 3);
    api.get("/users", &op).await.assert_error(403);
    api.post(
        "/users/role",
        &op,
        json!({"email": "viewer@example.com", "role": "admin"}),
    )
    .await
    .assert_error(403);
    api.post(
        "/users/role",
        &admin,
        json!({"email": "ghost@example.com", "role": "operator"}),
    )
    .await
    .assert_error(404);
    api.post(
        "/users/role",
        &admin,
        json!({"email": "viewer@example.com", "role": "owner"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/users/role",
        &admin,
        json!({"email": "admin@example.com", "role": "viewer"}),
    )
    .await
    .assert_error(400);
    let promoted = api
        .post(
            "/users/role",
            &admin,
            json!({"email": "viewer@example.com", "role": "operator"}),
        )
        .await;
    assert_eq!(promoted.data()["role"], "operator");
    let login = api
        .post(
            "/auth/login",
            None,
            json!({"email": "viewer@example.com", "password": "password123"}),
        )
        .await;
    let new_token = token(&login);
    let ctl = api
        .post(
            "/lights/control",
            &new_token,
            json!({"lightId": "SL001", "action": "on"}),
        )
        .await;
    assert_eq!(ctl.status, 200);
}

#[tokio::test]
async fn paths_work_with_and_without_a_trailing_slash_and_unknown_ones_get_the_envelope() {
    let api = Api::start().await;
    let r = api.post("/auth/register/", None, json!({"name": "a", "email": "a@example.com", "password": "password123", "city": "Delhi"})).await;
    assert_eq!(r.status, 201);
    let t = token(&r);
    assert_eq!(api.get("/lights/list/", &t).await.status, 200);
    assert_eq!(api.get("/lights/list", &t).await.status, 200);
    api.get("/lights/nothing", &t).await.assert_error(404);
    api.delete("/lights/list", &t).await.assert_error(405);
}

#[tokio::test]
async fn reads_cost_one_store_round_trip_whatever_the_data_size() {
    let api = Api::start().await;
    let (admin, _, viewer) = api.users().await;
    let mut cost = HashMap::new();
    for n in [1usize, 40] {
        for i in cost.len()..n {
            api.create(&admin, &format!("SL{i:03}"), "Delhi").await;
        }
        api.post(
            "/lights/control",
            &admin,
            json!({"lightId": "SL000", "action": "on"}),
        )
        .await;
        let costs = [
            api.get("/lights/summary", &viewer).await.round_trips(),
            api.get("/lights/list", &viewer).await.round_trips(),
            api.get("/lights/map", &viewer).await.round_trips(),
            api.get("/lights/detail?lightId=SL000", &viewer)
                .await
                .round_trips(),
        ];
        cost.insert(n, costs);
        assert_eq!(
            api.get("/lights/list", &viewer)
                .await
                .data()
                .as_array()
                .unwrap()
                .len(),
            n
        );
    }
    // One for the caller's record (role, city, token version: issue 15), one for the read.
    assert_eq!(cost[&1], [2, 2, 2, 2]);
    assert_eq!(cost[&1], cost[&40]);
}

#[tokio::test]
async fn rate_limits_answer_429_in_the_envelope() {
    let api = Api::with(&["--rate-per-minute", "5", "--rate-per-hour", "1000"]).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let r = api
            .post(
                "/auth/login",
                None,
                json!({"email": "x@example.com", "password": "password123"}),
            )
            .await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            r.assert_error(429);
            assert!(r.headers.contains_key("retry-after"));
        }
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
}

#[tokio::test]
async fn acknowledged_writes_survive_a_crash() {
    let api = Api::start().await;
    let (admin, _, _) = api.users().await;
    assert_eq!(api.create(&admin, "SL001", "Delhi").await.status, 201);
    assert_eq!(
        api.post(
            "/lights/control",
            &admin,
            json!({"lightId": "SL001", "action": "on"})
        )
        .await
        .status,
        200
    );
    let dir = api.server.data_dir.clone();
    let tmp = api.0.server.crash().await;
    let api = Api::on(LocalServer::start_in(BIN, &dir, &[], &[]).await);
    // The signing secret persisted too, so the old token still works.
    let d = api.get("/lights/detail?lightId=SL001", &admin).await;
    assert_eq!(d.status, 200);
    assert_eq!(d.data()["light"]["status"], "on");
    assert_eq!(d.data()["recentLogs"].as_array().unwrap().len(), 1);
    drop(tmp);
}

mod jwt {
    //! Attacks on tokens: each must get a 401 envelope.
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn key(api: &Api, app: &str) -> Vec<u8> {
        let mut k = std::fs::read(api.server.data_dir.join("jwt-secret")).unwrap();
        k.extend_from_slice(format!(":civic:{app}").as_bytes());
        k
    }

    fn claims(aud: &str, typ: &str, exp_offset: i64) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        json!({"sub": "1", "role": "admin", "typ": typ, "aud": aud, "iss": "civic", "iat": now, "exp": now + exp_offset, "jti": "x", "email": "admin@example.com", "city": "Delhi"})
    }

    fn forge(key: &[u8], claims: &Value) -> String {
        encode(&Header::default(), claims, &EncodingKey::from_secret(key)).unwrap()
    }

    #[tokio::test]
    async fn forged_expired_and_misused_tokens_are_refused() {
        let api = Api::start().await;
        let reg = api.register("admin", None, None).await;
        let good = token(&reg);
        let refresh = reg.data()["refreshToken"].as_str().unwrap().to_owned();
        assert_eq!(api.get("/lights/list", &good).await.status, 200);
        // A token we sign ourselves with the real key is accepted: the attacks below fail for
        // the reason they name, not because forging is broken.
        assert_eq!(
            api.get(
                "/lights/list",
                &forge(
                    &key(&api, "streetlight"),
                    &claims("streetlight", "access", 600)
                )
            )
            .await
            .status,
            200
        );

        let (header, payload, _) = {
            let mut parts = good.split('.');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            )
        };
        let none_header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let attacks = [
            ("alg none", format!("{none_header}.{payload}.")),
            (
                "tampered payload",
                format!(
                    "{header}.{}.{}",
                    B64.encode(claims("streetlight", "access", 600).to_string()),
                    good.rsplit('.').next().unwrap()
                ),
            ),
            (
                "tampered signature",
                format!("{header}.{payload}.{}", B64.encode([7u8; 32])),
            ),
            (
                "expired",
                forge(
                    &key(&api, "streetlight"),
                    &claims("streetlight", "access", -10),
                ),
            ),
            ("refresh as access", refresh.clone()),
            (
                "another app's token",
                forge(&key(&api, "ozone"), &claims("ozone", "access", 600)),
            ),
            (
                "another app's audience",
                forge(&key(&api, "streetlight"), &claims("ozone", "access", 600)),
            ),
            (
                "another app's key",
                forge(&key(&api, "ozone"), &claims("streetlight", "access", 600)),
            ),
            (
                "wrong secret",
                forge(
                    b"an-entirely-different-secret-of-32-bytes",
                    &claims("streetlight", "access", 600),
                ),
            ),
        ];
        for (name, t) in attacks {
            let r = api.get("/lights/list", &t).await;
            assert_eq!(r.status, 401, "{name}: {}", r.body);
            r.assert_error(401);
        }
        // An access token cannot be used to refresh.
        api.post("/auth/refresh", None, json!({"refreshToken": good}))
            .await
            .assert_error(401);
    }

    #[tokio::test]
    async fn refresh_tokens_rotate_and_reuse_revokes_the_session() {
        let api = Api::start().await;
        let reg = api.register("admin", None, None).await;
        let r1 = reg.data()["refreshToken"].as_str().unwrap().to_owned();
        let next = api
            .post("/auth/refresh", None, json!({"refreshToken": r1}))
            .await;
        assert_eq!(next.status, 200, "{}", next.body);
        let (access2, r2) = (
            next.data()["token"].as_str().unwrap().to_owned(),
            next.data()["refreshToken"].as_str().unwrap().to_owned(),
        );
        assert_ne!(r1, r2);
        assert_eq!(api.get("/lights/list", &access2).await.status, 200);

        // Replaying r1 is refused, and it revokes r2's session too.
        api.post("/auth/refresh", None, json!({"refreshToken": r1}))
            .await
            .assert_error(401);
        api.post("/auth/refresh", None, json!({"refreshToken": r2}))
            .await
            .assert_error(401);
        api.post("/auth/refresh", None, json!({}))
            .await
            .assert_error(400);

        // Logout revokes a refresh token.
        let login = api
            .post(
                "/auth/login",
                None,
                json!({"email": "admin@example.com", "password": "password123"}),
            )
            .await;
        let r3 = login.data()["refreshToken"].as_str().unwrap().to_owned();
        assert_eq!(
            api.post("/auth/logout", None, json!({"refreshToken": r3}))
                .await
                .status,
            200
        );
        api.post("/auth/refresh", None, json!({"refreshToken": r3}))
            .await
            .assert_error(401);
    }
}

#[tokio::test]
async fn docs_and_openapi_are_served() {
    let api = Api::start().await;
    api.assert_documented(&[
        "/api/auth/register",
        "/api/auth/login",
        "/api/lights/list",
        "/api/lights/detail",
        "/api/lights/summary",
        "/api/lights/map",
        "/api/lights/control",
        "/api/lights/update-status",
        "/api/lights/create",
        "/api/lights/logs",
        "/api/users/role",
    ])
    .await;
}

#[tokio::test]
async fn the_aws_backend_serves_the_same_api_on_moto() {
    let api = Api::on(LocalServer::start_on_moto(BIN, &[]).await);
    // moto keeps tables between tests: use a unique email so this run is the table's first user or not.
    let reg = api
        .register(&civic_testkit::moto::unique("u"), None, None)
        .await;
    assert_eq!(reg.status, 201, "{}", reg.body);
    let t = token(&reg);
    let list = api.get("/lights/list?city=nowhere-city", &t).await;
    assert_eq!(list.status, 200);
    // The caller's record (role, city, token version), then the city's lights.
    assert_eq!(list.round_trips(), 2);
}

/// Issue 15, items 5–8: roles that apply at once, strict ranks, password changes that revoke,
/// per-account backoff.
mod accounts {
    use super::*;

    async fn login(api: &Api, name: &str, password: &str) -> Resp {
        let body = json!({"email": format!("{name}@example.com"), "password": password});
        api.post("/auth/login", None, body).await
    }

    fn refresh_of(r: &Resp) -> String {
        r.data()["refreshToken"].as_str().unwrap().to_owned()
    }

    async fn set_role(api: &Api, token: &str, name: &str, role: &str) -> Resp {
        let body = json!({"email": format!("{name}@example.com"), "role": role});
        api.post("/users/role", token, body).await
    }

    #[tokio::test]
    async fn a_demoted_admins_token_is_refused_for_admin_actions_on_the_next_request() {
        let api = Api::start().await;
        let (first, _, _) = api.users().await;
        let second = token(&api.register("second", Some("admin"), Some(&first)).await);
        api.get("/users", &second).await.ok();
        set_role(&api, &first, "second", "viewer").await.ok();
        // The same, still unexpired token: no longer an admin's.
        api.get("/users", &second).await.assert_error(403);
        let mint = api.register("minted", Some("admin"), Some(&second)).await;
        mint.assert_error(403);
        set_role(&api, &second, "oper", "admin")
            .await
            .assert_error(403);
        // Still a viewer's token: reads work.
        api.get("/lights/list", &second).await.ok();
    }

    #[tokio::test]
    async fn only_a_strictly_higher_rank_changes_an_account() {
        let api = Api::start().await;
        let (first, _, _) = api.users().await;
        let second = token(&api.register("second", Some("admin"), Some(&first)).await);
        api.register("third", Some("admin"), Some(&first))
            .await
            .ok();
        // A peer admin, and the first admin above all, are out of a second admin's reach.
        let peer = set_role(&api, &second, "third", "viewer").await;
        assert!(peer.assert_error(403).contains("first admin"));
        set_role(&api, &second, "admin", "viewer")
            .await
            .assert_error(403);
        // Below their rank they may: operators and viewers.
        set_role(&api, &second, "viewer", "operator").await.ok();
        // The first admin may change another admin.
        let demoted = set_role(&api, &first, "third", "operator").await;
        assert_eq!(demoted.data()["role"], "operator");
    }

    #[tokio::test]
    async fn a_password_change_needs_the_current_one_and_revokes_every_older_token() {
        let api = Api::start().await;
        let (_, _, viewer) = api.users().await;
        let session = login(&api, "viewer", "password123").await;
        let (access, refresh) = (token(&session), refresh_of(&session));
        let change = |current: Option<&str>| {
            let mut body = json!({"newPassword": "a-new-secret-9"});
            if let Some(c) = current {
                body["currentPassword"] = c.into();
            }
            body
        };
        let missing = api.post("/auth/password", &access, change(None)).await;
        assert!(missing.assert_error(400).contains("currentPassword"));
        let wrong = api
            .post("/auth/password", &access, change(Some("not-my-password")))
            .await;
        wrong.assert_error(403);
        let done = api
            .post("/auth/password", &access, change(Some("password123")))
            .await;
        let (new_access, new_refresh) = (token(&done), refresh_of(&done));
        // Every token from before the change, from this login or another, is refused.
        for old in [&access, &viewer] {
            api.get("/lights/list", old.as_str())
                .await
                .assert_error(401);
        }
        let body = json!({"refreshToken": refresh});
        api.post("/auth/refresh", None, body)
            .await
            .assert_error(401);
        login(&api, "viewer", "password123").await.assert_error(401);
        // The new pair works, and so does the new password.
        api.get("/lights/list", &new_access).await.ok();
        let body = json!({"refreshToken": new_refresh});
        token(&api.post("/auth/refresh", None, body).await);
        token(&login(&api, "viewer", "a-new-secret-9").await);
    }

    /// Backoff after 2 free failures, 2 s at first (so the test can wait it out).
    const BACKOFF: [(&str, &str); 2] =
        [("AUTH_BACKOFF_FREE", "2"), ("AUTH_BACKOFF_BASE_SECS", "2")];

    /// Retry-After of a 429 in the app's error format.
    fn retry_after(r: &Resp) -> u64 {
        r.assert_error(429);
        r.headers["retry-after"].to_str().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn failed_logins_back_off_and_then_even_the_right_password_waits() {
        let api = Api::on(LocalServer::start_env(BIN, &[], &BACKOFF).await);
        api.users().await;
        for _ in 0..3 {
            login(&api, "viewer", "wrong-guess").await.assert_error(401);
        }
        let locked = login(&api, "viewer", "password123").await;
        assert!((1..=2).contains(&retry_after(&locked)));
        // Another account is not affected.
        token(&login(&api, "oper", "password123").await);
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        token(&login(&api, "viewer", "password123").await);
        // The success reset the count: one failure is free again.
        login(&api, "viewer", "wrong-guess").await.assert_error(401);
        token(&login(&api, "viewer", "password123").await);
    }

    /// civic-local on moto's DynamoDB, with `env`; two of them are two Lambda instances.
    async fn on_moto(env: &[(&str, &str)]) -> Api {
        let moto = civic_testkit::moto::moto_url();
        let bucket = civic_testkit::moto::unique("civic");
        let args = ["--backend", "aws", "--bucket", &bucket];
        let aws = [
            ("AWS_ENDPOINT_URL", moto.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ];
        Api::on(LocalServer::start_env(BIN, &args, &[&aws[..], env].concat()).await)
    }

    #[tokio::test]
    async fn the_backoff_holds_across_instances() {
        let (a, b) = (on_moto(&BACKOFF).await, on_moto(&BACKOFF).await);
        let name = civic_testkit::moto::unique("bf");
        token(&a.register(&name, None, None).await);
        for api in [&a, &b, &a] {
            login(api, &name, "wrong-guess").await.assert_error(401);
        }
        // Instance b counts the failures seen by a, and refuses the right password too.
        assert!(retry_after(&login(&b, &name, "password123").await) >= 1);
        assert!(retry_after(&login(&a, &name, "password123").await) >= 1);
    }
}
