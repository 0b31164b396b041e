//! Black-box tests of Ozone: the real `civic-local` binary over HTTP on 127.0.0.1.

use civic_testkit::api::{self, App, Auth};
use civic_testkit::http::{self, Resp};
use civic_testkit::local::LocalServer;
use reqwest::{Client, Method, StatusCode, header};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// Ozone's mount point and its error shape.
const APP: App = App {
    root: "/ozone",
    api: "/ozone/api",
    is_error: |b| b["success"] == false && b["error"].is_string(),
};

/// The content type of the firmware's `/iot/` posts.
const FORM: &str = "application/x-www-form-urlencoded";

// The shared client with Ozone's fixtures.
civic_testkit::client!();

/// A signed-in user: the `Cookie` header of the session, e.g. `ozone_sessionid=...`.
struct Session(String);

impl<'a> From<&'a Session> for Auth<'a> {
    fn from(session: &'a Session) -> Self {
        Auth::Cookie(&session.0)
    }
}

/// Ozone's error shape and CSV bodies.
trait OzoneResp {
    fn assert_error(&self, status: u16) -> &Value;
    fn csv(&self) -> Vec<Vec<String>>;
}

impl OzoneResp for Resp {
    /// Every error is `{"success": false, "error": ...}` with DRF's `detail` or field lists.
    #[track_caller]
    fn assert_error(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.body["success"], false, "body: {}", self.text);
        assert!(self.body["error"].is_string(), "body: {}", self.text);
        &self.body
    }
    /// The rows of a CSV body, header first.
    fn csv(&self) -> Vec<Vec<String>> {
        assert!(
            self.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(self.text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }
}

const MAC: &str = "EC:E3:34:46:2B:C0";

impl Api {
    async fn start() -> Self {
        Self::with(&[], &[]).await
    }
    async fn with(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::on(LocalServer::start_env(BIN, args, env).await)
    }
    /// The client for Ozone on `server`.
    fn on(server: LocalServer) -> Self {
        Self(api::Api::new(server, APP))
    }

    async fn register(&self, username: &str, extra: Value, auth: impl Into<Auth<'_>>) -> Resp {
        let mut body = json!({"username": username, "password": "password123", "email": format!("{username}@example.com"), "first_name": "F", "last_name": "L"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.post("/auth/register/", auth, body).await
    }

    /// Logs in and returns the session.
    async fn login(&self, username: &str) -> Session {
        let res = self
            .post(
                "/auth/login/",
                Auth::None,
                json!({"username": username, "password": "password123"}),
            )
            .await;
        res.ok();
        let set = res.headers[header::SET_COOKIE].to_str().unwrap();
        Session(set.split(';').next().unwrap().to_owned())
    }

    /// The first user (staff + superuser) and an ordinary user, signed in.
    async fn users(&self) -> (Session, Session) {
        assert_eq!(
            self.register("admin", json!({}), Auth::None).await.status,
            201
        );
        assert_eq!(
            self.register("viewer", json!({}), Auth::None).await.status,
            201
        );
        (self.login("admin").await, self.login("viewer").await)
    }

    /// Hand-shakes `mac`, has staff assign it `device_id`, hand-shakes again; returns the token.
    async fn device(&self, admin: &Session, mac: &str, device_id: &str) -> String {
        self.post(
            "/handshake/",
            Auth::None,
            json!({"mac": mac, "firmware": "1.0.0"}),
        )
        .await
        .ok();
        self.post(
            "/devices/assign/",
            admin,
            json!({"mac": mac, "device_id": device_id}),
        )
        .await
        .ok();
        let hs = self
            .post(
                "/handshake/",
                Auth::None,
                json!({"mac": mac, "firmware": "1.0.1"}),
            )
            .await;
        assert_eq!(hs.ok()["device_id"], device_id);
        hs.body["token"].as_str().unwrap().to_owned()
    }

    async fn event(
        &self,
        token: &str,
        device_id: &str,
        event_id: &str,
        treatment: &str,
        ts: Option<&str>,
    ) -> Resp {
        let mut body = json!({"device_id": device_id, "firmware": "1.0.0", "event_id": event_id, "event": "treatment", "treatment": treatment, "counter": 124});
        if let Some(ts) = ts {
            body["ts"] = ts.into();
        }
        self.post("/device/events/", Auth::Bearer(token), body)
            .await
    }
}

fn series(stats: &Value, name: &str) -> Vec<f64> {
    let s = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap();
    s["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn first_user_is_staff_and_sessions_are_cookies() {
    let api = Api::start().await;
    let first = api.register("admin", json!({}), Auth::None).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.body["success"], true);
    assert_eq!(first.body["message"], "User created successfully");
    let user = &first.body["user"];
    assert_eq!(
        (user["id"].as_i64(), &user["username"], &user["email"]),
        (Some(1), &json!("admin"), &json!("admin@example.com"))
    );
    assert_eq!(
        (&user["first_name"], &user["last_name"]),
        (&json!("F"), &json!("L"))
    );
    assert_eq!(
        (&user["is_staff"], &user["is_superuser"]),
        (&json!(true), &json!(true))
    );
    assert!(user.get("password_hash").is_none());

    let second = api.register("bob", json!({}), Auth::None).await;
    assert_eq!(second.status, 201);
    assert_eq!(
        (
            &second.body["user"]["is_staff"],
            second.body["user"]["id"].as_i64()
        ),
        (&json!(false), Some(2))
    );
    // Privileges need a superuser's session.
    api.register("carol", json!({"is_staff": true}), Auth::None)
        .await
        .assert_error(403);
    let bob = api.login("bob").await;
    api.register("carol", json!({"is_superuser": true}), &bob)
        .await
        .assert_error(403);
    let admin = api.login("admin").await;
    let carol = api
        .register("carol", json!({"is_staff": true}), &admin)
        .await;
    assert_eq!(carol.body["user"]["is_staff"], true);
    // Usernames are unique regardless of case.
    let dup = api.register("ADMIN", json!({}), Auth::None).await;
    assert!(
        dup.assert_error(400)["username"][0]
            .as_str()
            .unwrap()
            .contains("already exists")
    );

    // Login sets an HttpOnly, SameSite=Lax cookie (not Secure over local http).
    let res = api
        .post(
            "/auth/login/",
            Auth::None,
            json!({"username": "admin", "password": "password123"}),
        )
        .await;
    assert_eq!(res.body["success"], true);
    assert_eq!(res.body["user"]["username"], "admin");
    let set = res.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("ozone_sessionid=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    let session = Session(set.split(';').next().unwrap().to_owned());

    let check = api.get("/auth/check/", &session).await;
    assert_eq!(check.body["authenticated"], true);
    assert_eq!(check.body["user"]["is_superuser"], true);
    let me = api.get("/auth/user/", &session).await;
    assert_eq!(
        (&me.body["success"], &me.body["user"]["username"]),
        (&json!(true), &json!("admin"))
    );

    let out = api
        .call(Method::POST, "/auth/logout/", &session, None)
        .await;
    assert_eq!(
        out.ok(),
        &json!({"success": true, "message": "Successfully logged out"})
    );
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie is dead.
    assert_eq!(
        api.get("/auth/check/", &session).await.body,
        json!({"authenticated": false, "user": null})
    );
    api.get("/auth/user/", &session).await.assert_error(401);
    api.get("/auth/user", Auth::None).await.assert_error(401);
    api.get("/auth/check", Auth::None).await.ok();
}

#[tokio::test]
async fn auth_rejects_bad_input_and_bad_credentials() {
    let api = Api::start().await;
    api.register("admin", json!({}), Auth::None).await.ok();
    let wrong = api
        .post(
            "/auth/login/",
            Auth::None,
            json!({"username": "admin", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(wrong.assert_error(401)["error"], "Invalid credentials");
    api.post(
        "/auth/login/",
        Auth::None,
        json!({"username": "ghost", "password": "password123"}),
    )
    .await
    .assert_error(401);
    let missing = api
        .post("/auth/login/", Auth::None, json!({"username": "admin"}))
        .await;
    assert_eq!(
        missing.assert_error(400)["password"],
        json!(["This field is required."])
    );
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": "x y", "password": "password123"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": "xy", "password": "short"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": "xy", "password": "password123", "email": "nope"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/auth/register/",
        Auth::None,
        json!({"username": 5, "password": "password123"}),
    )
    .await
    .assert_error(400);
    let malformed = api
        .raw(
            Method::POST,
            "/auth/login/",
            Auth::None,
            "application/json",
            "{\"username\":",
        )
        .await;
    malformed.assert_error(400);
    api.raw(Method::POST, "/auth/login/", Auth::None, "text/plain", "hi")
        .await
        .assert_error(415);
    // Unknown paths and methods come out in the same format.
    assert_eq!(
        api.get("/auth/nothing", Auth::None).await.assert_error(404)["detail"],
        "Not found"
    );
    api.delete("/auth/login/", Auth::None)
        .await
        .assert_error(405);
}

#[tokio::test]
async fn state_changing_requests_from_foreign_origins_are_refused() {
    let api = Api::start().await;
    let (admin, _) = api.users().await;
    let req = api
        .request(Method::POST, "/outlets/", &admin)
        .json(&json!({"name": "O"}))
        .header(header::ORIGIN, "https://evil.example");
    assert!(
        api.send(req).await.assert_error(403)["error"]
            .as_str()
            .unwrap()
            .contains("CSRF")
    );
    let own = api.server.base.clone();
    let req = api
        .request(Method::POST, "/outlets/", &admin)
        .json(&json!({"name": "O"}))
        .header(header::ORIGIN, own);
    assert_eq!(api.send(req).await.status, 201);
    // Granting privilege with the session is state-changing too.
    let req = api
        .request(Method::POST, "/auth/register/", &admin)
        .json(&json!({"username": "mallory", "password": "password123", "is_staff": true}))
        .header(header::ORIGIN, "https://evil.example");
    api.send(req).await.assert_error(403);
    // Reads are not state-changing.
    let req = api
        .request(Method::GET, "/outlets/", &admin)
        .header(header::ORIGIN, "https://evil.example");
    api.send(req).await.ok();
}

#[tokio::test]
async fn trusted_frontend_origins_get_cors_with_credentials() {
    let app = "https://app.example.com";
    let api = Api::with(&[], &[("CSRF_TRUSTED_ORIGINS", app)]).await;
    let (admin, _) = api.users().await;
    let preflight = api
        .http
        .request(Method::OPTIONS, api.url("/outlets/"))
        .header(header::ORIGIN, app)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], app);
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    let req = api
        .request(Method::POST, "/outlets/", &admin)
        .json(&json!({"name": "O"}))
        .header(header::ORIGIN, app);
    let created = api.send(req).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.headers["access-control-allow-origin"], app);
    let req = api
        .request(Method::GET, "/outlets/", &admin)
        .header(header::ORIGIN, "https://evil.example");
    assert!(
        api.send(req)
            .await
            .headers
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn handshake_assign_and_token_lifecycle() {
    // The seed's behaviour: every handshake of an assigned MAC reissues the token.
    let api = Api::with(&[], &[("OZONE_HANDSHAKE_REISSUE", "true")]).await;
    let (admin, viewer) = api.users().await;

    for bad in [
        json!({"mac": "EC:E3:34:46:2B"}),
        json!({"mac": "zz:e3:34:46:2b:c0"}),
        json!({}),
        json!({"mac": 42}),
    ] {
        api.post("/handshake/", Auth::None, bad)
            .await
            .assert_error(400);
    }
    let first = api
        .post(
            "/handshake/",
            Auth::None,
            json!({"mac": "ec-e3-34-46-2b-c0", "firmware": "1.0.0"}),
        )
        .await;
    assert_eq!(
        first.ok(),
        &json!({"device_id": null, "token": null, "assigned": false})
    );
    let pending = api.get("/devices/pending/", &admin).await;
    assert_eq!(pending.ok()[0]["mac"], MAC);
    assert_eq!(pending.body[0]["firmware"], "1.0.0");

    // Only staff assign.
    let assign = json!({"mac": MAC, "device_id": "esp32-001"});
    api.post("/devices/assign/", Auth::None, assign.clone())
        .await
        .assert_error(401);
    api.post("/devices/assign/", &viewer, assign.clone())
        .await
        .assert_error(403);
    api.post(
        "/devices/assign/",
        &admin,
        json!({"mac": MAC, "device_id": "bad id!"}),
    )
    .await
    .assert_error(400);
    let ok = api.post("/devices/assign/", &admin, assign.clone()).await;
    assert_eq!(
        ok.ok(),
        &json!({"success": true, "mac": MAC, "device_id": "esp32-001", "assigned": true})
    );
    api.post("/devices/assign/", &admin, assign).await.ok();
    api.post(
        "/devices/assign/",
        &admin,
        json!({"mac": MAC, "device_id": "esp32-002"}),
    )
    .await
    .assert_error(409);
    api.post(
        "/devices/assign/",
        &admin,
        json!({"mac": "AA:BB:CC:DD:EE:FF", "device_id": "esp32-001"}),
    )
    .await
    .assert_error(409);
    assert_eq!(api.get("/devices/pending/", &admin).await.body, json!([]));

    let hs = api
        .post(
            "/handshake/",
            Auth::None,
            json!({"mac": MAC, "firmware": "1.0.1"}),
        )
        .await;
    assert_eq!(
        (&hs.body["device_id"], &hs.body["assigned"]),
        (&json!("esp32-001"), &json!(true))
    );
    let token = hs.body["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 40);
    api.event(&token, "esp32-001", "e-1", "BASIC", None)
        .await
        .ok();

    // A new handshake replaces the token.
    let again = api
        .post("/handshake/", Auth::None, json!({"mac": MAC}))
        .await;
    let token2 = again.body["token"].as_str().unwrap().to_owned();
    assert_ne!(token, token2);
    api.event(&token, "esp32-001", "e-2", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&token2, "esp32-001", "e-2", "BASIC", None)
        .await
        .ok();

    // Staff rotation: the old token stops working at once.
    api.call(Method::POST, "/devices/esp32-001/token/", &viewer, None)
        .await
        .assert_error(403);
    api.call(Method::POST, "/devices/nope/token/", &admin, None)
        .await
        .assert_error(404);
    let rotated = api
        .call(Method::POST, "/devices/esp32-001/token/", &admin, None)
        .await;
    let token3 = rotated.ok()["token"].as_str().unwrap().to_owned();
    api.event(&token2, "esp32-001", "e-3", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&token3, "esp32-001", "e-3", "BASIC", None)
        .await
        .ok();

    // Notes.
    let notes = api
        .put(
            "/devices/esp32-001/notes/",
            &admin,
            json!({"notes": "by the door"}),
        )
        .await;
    assert_eq!(notes.ok()["notes"], "by the door");
    assert!(notes.body.get("token_digest").is_none());
    api.put("/devices/esp32-001/notes/", &viewer, json!({"notes": "x"}))
        .await
        .assert_error(403);
    api.put("/devices/ghost/notes/", &admin, json!({"notes": "x"}))
        .await
        .assert_error(404);
    let all = api.get("/devices/all/", &viewer).await;
    assert_eq!(all.ok()[0]["notes"], "by the door");
    assert_eq!(
        all.body[0]["firmware"], "1.0.0",
        "as the latest event reported it"
    );
    assert!(all.body[0].get("token_digest").is_none());
}

#[tokio::test]
async fn device_tokens_speak_only_for_their_device_and_never_as_users() {
    let api = Api::start().await;
    let (admin, _) = api.users().await;
    let a = api.device(&admin, MAC, "dev-a").await;
    let b = api.device(&admin, "AA:BB:CC:DD:EE:01", "dev-b").await;
    api.event(&a, "dev-a", "x-1", "BASIC", None).await.ok();
    api.event(&a, "dev-b", "x-2", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&b, "dev-a", "x-3", "BASIC", None)
        .await
        .assert_error(401);
    api.event("made-up", "dev-a", "x-4", "BASIC", None)
        .await
        .assert_error(401);
    let none = api
        .post(
            "/device/events/",
            Auth::None,
            json!({"device_id": "dev-a", "event_id": "x-5", "treatment": "BASIC"}),
        )
        .await;
    none.assert_error(401);
    // As a user credential a device token is nothing: not as a bearer, not as a cookie.
    api.get("/auth/user/", Auth::Bearer(&a))
        .await
        .assert_error(401);
    api.get("/events/", Auth::Bearer(&a))
        .await
        .assert_error(401);
    let cookie = Session(format!("ozone_sessionid={a}"));
    api.get("/auth/user/", &cookie).await.assert_error(401);
    api.get("/devices/all/", &cookie).await.assert_error(401);
    // Another app's credentials are refused: a Streetlight token here, an Ozone session there.
    let sl = http::send(api.http.post(api.server.url("/streetlight/api/auth/register")).json(
            &json!({"name": "n", "email": "n@example.com", "password": "password123", "city": "Delhi"}),
        ))
    .await;
    let sl_token = sl.body["data"]["token"].as_str().unwrap().to_owned();
    api.get("/auth/user/", Auth::Bearer(&sl_token))
        .await
        .assert_error(401);
    api.event(&sl_token, "dev-a", "x-6", "BASIC", None)
        .await
        .assert_error(401);
    let summary = api.server.url("/streetlight/api/lights/summary");
    let res = http::send(api.http.get(summary).header(header::COOKIE, &admin.0)).await;
    assert_eq!(res.status, 401);
    // Only one event was stored.
    assert_eq!(
        api.get("/events/?device_id=dev-a", &admin)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn events_are_acknowledged_once_and_bad_input_is_a_4xx() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let body = json!({"device_id": "esp32-001", "firmware": "1.0.0", "event_id": "esp32-001-0000000123", "event": "treatment", "treatment": "BASIC", "counter": 124, "ts": "2025-09-16T12:34:56Z"});
    let first = api
        .post("/device/events/", Auth::Bearer(&token), body.clone())
        .await;
    assert_eq!(
        first.ok(),
        &json!({"ack": true, "event_id": "esp32-001-0000000123"})
    );
    // A duplicate (even with other content) gets the same ack and stores nothing.
    let mut changed = body.clone();
    changed["treatment"] = "PREMIUM".into();
    let dup = api
        .post("/device/events/", Auth::Bearer(&token), changed)
        .await;
    assert_eq!(dup.body, first.body);
    let stats = api
        .get("/test/stats/?start=2025-09-16&end=2025-09-16", &viewer)
        .await;
    assert_eq!(series(&stats.body, "total"), vec![1.0]);
    assert_eq!(series(&stats.body, "BASIC"), vec![1.0]);
    assert_eq!(series(&stats.body, "PREMIUM"), vec![0.0]);

    let bad = |patch: Value| {
        let mut b = body.clone();
        b["event_id"] = "bad-1".into();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (patch, field) in [
        (json!({"treatment": "DELUXE"}), "treatment"),
        (json!({"treatment": "basic"}), "treatment"),
        (json!({"treatment": null}), "treatment"),
        (json!({"counter": -1}), "counter"),
        (json!({"ts": "16/09/2025"}), "ts"),
        (json!({"device_id": "esp 32"}), "device_id"),
        (json!({"event_id": ""}), "event_id"),
        (json!({"event": "Bad Event"}), "event"),
    ] {
        let res = api
            .post("/device/events/", Auth::Bearer(&token), bad(patch.clone()))
            .await;
        assert!(
            res.assert_error(400)[field].is_array(),
            "{patch}: {}",
            res.text
        );
    }
    for patch in [
        json!({"counter": "abc"}),
        json!({"counter": 1.5}),
        json!({"device_id": 7}),
        json!({"payload": 1, "counter": [1]}),
    ] {
        api.post("/device/events/", Auth::Bearer(&token), bad(patch))
            .await
            .assert_error(400);
    }
    api.raw(
        Method::POST,
        "/device/events/",
        Auth::Bearer(&token),
        "application/json",
        "{\"device_id\": ",
    )
    .await
    .assert_error(400);
    api.raw(
        Method::POST,
        "/device/events/",
        Auth::Bearer(&token),
        "application/json",
        "[1,2]",
    )
    .await
    .assert_error(400);
    api.raw(
        Method::POST,
        "/device/events/",
        Auth::Bearer(&token),
        FORM,
        "device_id=esp32-001",
    )
    .await
    .assert_error(415);
    api.get("/device/events/", Auth::Bearer(&token))
        .await
        .assert_error(405);
    // Nothing bad was stored.
    let stats = api
        .get("/test/stats/?start=2025-09-16&end=2025-09-16", &viewer)
        .await;
    assert_eq!(series(&stats.body, "total"), vec![1.0]);
    // A status event is stored but bills nothing.
    let hb = json!({"device_id": "esp32-001", "event_id": "hb-1", "event": "heartbeat", "wifi_status": "connected"});
    api.post("/device/events/", Auth::Bearer(&token), hb)
        .await
        .ok();
    let events = api.get("/events/?device_id=esp32-001", &viewer).await;
    assert_eq!(
        events.body.as_array().unwrap().len(),
        1,
        "the 2025 event is older than 7 days"
    );
    assert_eq!(events.body[0]["event_type"], "status");
    let events = api
        .get("/events/?device_id=esp32-001&days=3660", &viewer)
        .await;
    assert_eq!(events.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_thousand_concurrent_copies_of_an_event_store_one() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let body = json!({"device_id": "esp32-001", "event_id": "esp32-001-0000000777", "event": "treatment", "treatment": "PREMIUM", "counter": 9, "ts": "2025-09-16T12:00:00Z"});
    let sends = (0..1000).map(|_| api.post("/device/events/", Auth::Bearer(&token), body.clone()));
    let replies = futures::future::join_all(sends).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body,
            json!({"ack": true, "event_id": "esp32-001-0000000777"})
        );
    }
    let events = api
        .get("/events/?device_id=esp32-001&days=3660", &viewer)
        .await;
    assert_eq!(events.body.as_array().unwrap().len(), 1);
    let stats = api
        .get(
            "/test/stats/?device_id=esp32-001&start=2025-09-16&end=2025-09-16&granularity=hour",
            &viewer,
        )
        .await;
    assert_eq!(stats.body["totals"]["PREMIUM"], 1);
    assert_eq!(stats.body["totals"]["total"], 1);
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &viewer)
        .await;
    assert_eq!(summary.body["event_count"], 1);
}

#[tokio::test]
async fn legacy_form_ingest() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let form = |mode: &str, mac: &str| {
        format!(
            "mode={mode}&macaddr={mac}&type1=1.5&type2=0&type3=0&count1=10&count2=20&count3=30&timestamp=2025-09-16+14%3A30%3A25&rtc_available=true&sd_available=false"
        )
    };
    // Unknown (unassigned) MAC: refused until an admin assigns it.
    let res = api
        .raw(Method::POST, "/iot/", Auth::None, FORM, form("BASIC", MAC))
        .await;
    res.assert_error(403);
    // ...and listed for staff to assign.
    assert_eq!(
        api.get("/devices/pending/", &admin).await.body[0]["mac"],
        MAC
    );
    let token = api.device(&admin, MAC, "esp32-001").await;
    let ok = api
        .raw(
            Method::POST,
            "/iot/",
            Auth::Bearer(&token),
            FORM,
            form("BASIC", MAC),
        )
        .await;
    assert_eq!(ok.ok(), &json!({"status": "ok"}));
    // A retry of the same report is stored once.
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer(&token),
        FORM,
        form("BASIC", MAC),
    )
    .await
    .ok();
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer(&token),
        FORM,
        form("status", MAC),
    )
    .await
    .ok();
    // The bearer must be the device's.
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer("wrong"),
        FORM,
        form("PREMIUM", MAC),
    )
    .await
    .assert_error(401);
    api.raw(
        Method::POST,
        "/iot/",
        Auth::Bearer(&token),
        FORM,
        form("PREMIUM", MAC),
    )
    .await
    .ok();

    let events = api
        .get("/events/?device_id=esp32-001&days=3660", &viewer)
        .await;
    let list = events.body.as_array().unwrap();
    assert_eq!(list.len(), 3, "{}", events.text);
    let basic = list.iter().find(|e| e["event_type"] == "BASIC").unwrap();
    assert_eq!(
        (
            &basic["treatment"],
            &basic["counter"],
            &basic["count_premium"]
        ),
        (&json!("BASIC"), &json!(10), &json!(30))
    );
    assert_eq!(basic["occurred_at"], "2025-09-16T14:30:25Z");
    assert_eq!(basic["payload"]["type1"], 1.5);
    let only = api
        .get(
            "/events/?device_id=esp32-001&days=3660&exclude_status=true",
            &viewer,
        )
        .await;
    assert_eq!(only.body.as_array().unwrap().len(), 2);
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &viewer)
        .await;
    assert_eq!(
        summary.body["counts"],
        json!({"basic": 10, "standard": 20, "premium": 30})
    );
    assert_eq!(
        (
            &summary.body["rtc_available"],
            &summary.body["sd_card_available"]
        ),
        (&json!(true), &json!(false))
    );

    for bad in [
        "mode=DELUXE&macaddr=EC:E3:34:46:2B:C0",
        "mode=BASIC&macaddr=not-a-mac",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count1=ten",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count2=-4",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&type1=fast",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&timestamp=yesterday",
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&rtc_available=perhaps",
        "macaddr=EC:E3:34:46:2B:C0",
        "mode=BASIC&macaddr=%zz%",
        "mode=BASIC&mode=STANDARD&macaddr=EC:E3:34:46:2B:C0",
    ] {
        let res = api
            .raw(Method::POST, "/iot/", Auth::None, FORM, bad.to_owned())
            .await;
        assert_eq!(res.status, 400, "{bad}: {}", res.text);
        res.assert_error(400);
    }
    api.post("/iot/", Auth::None, json!({"mode": "BASIC"}))
        .await
        .assert_error(415);
}

#[tokio::test]
async fn data_queries_devices_and_telemetry() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let a = api.device(&admin, MAC, "dev-a").await;
    api.device(&admin, "AA:BB:CC:DD:EE:01", "dev-b").await;
    for (i, t) in ["BASIC", "STANDARD", "STANDARD"].iter().enumerate() {
        api.event(&a, "dev-a", &format!("a-{i}"), t, None)
            .await
            .ok();
    }
    for path in [
        "/events/",
        "/devices/online/",
        "/devices/all/",
        "/devices-data/",
        "/telemetry/summary/?device_id=dev-a",
        "/telemetry/latest/",
    ] {
        api.get(path, Auth::None).await.assert_error(401);
    }
    let events = api.get("/events/", &viewer).await;
    let list = events.ok().as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["event_id"], "a-2", "newest first");
    assert_eq!(list[0]["device_id"], "dev-a");
    let page = api.get("/events/?limit=2", &viewer).await;
    assert_eq!(page.body.as_array().unwrap().len(), 2);
    let cursor = page.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/events/?limit=2&cursor={cursor}"), &viewer)
        .await;
    assert_eq!(rest.body.as_array().unwrap().len(), 1);
    api.get("/events/?days=abc", &viewer)
        .await
        .assert_error(400);
    api.get("/events/?exclude_status=maybe", &viewer)
        .await
        .assert_error(400);
    api.get("/events/?device_id=bad%20id", &viewer)
        .await
        .assert_error(400);

    // Both devices hand-shook just now: both online.
    let online = api.get("/devices/online/", &viewer).await;
    assert_eq!(online.body.as_array().unwrap().len(), 2);
    assert!(
        online
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["online"] == true)
    );
    let all = api.get("/devices/all/", &viewer).await;
    assert_eq!(
        all.body[0]["device_id"], "dev-a",
        "most recent contact first"
    );
    assert_eq!(all.body[0]["event_count"], 3);
    let data = api.get("/devices-data/", &viewer).await;
    assert_eq!(
        data.body["counts"],
        json!({"total": 2, "online": 2, "offline": 0})
    );
    assert_eq!(
        data.body["usage_today"],
        json!({"total": 3, "BASIC": 1, "STANDARD": 2, "PREMIUM": 0})
    );
    assert_eq!(data.body["devices"].as_array().unwrap().len(), 2);

    let summary = api
        .get("/telemetry/summary/?device_id=dev-a", &viewer)
        .await;
    assert_eq!(
        (&summary.body["mode"], &summary.body["online"]),
        (&json!("STANDARD"), &json!(true))
    );
    assert_eq!(
        summary.body["counts"],
        json!({"basic": 124, "standard": 124, "premium": null})
    );
    api.get("/telemetry/summary/", &viewer)
        .await
        .assert_error(400);
    api.get("/telemetry/summary/?device_id=ghost", &viewer)
        .await
        .assert_error(404);
    let latest = api.get("/telemetry/latest/?device_id=dev-a", &viewer).await;
    assert_eq!(latest.body["event_id"], "a-2");
    assert_eq!(
        api.get("/telemetry/latest/", &viewer).await.body["event_id"],
        "a-2"
    );
    api.get("/telemetry/latest/?device_id=dev-b", &viewer)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn outlets_and_machines() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    api.post("/outlets/", &viewer, json!({"name": "Nope"}))
        .await
        .assert_error(403);
    api.post("/outlets/", Auth::None, json!({"name": "Nope"}))
        .await
        .assert_error(401);
    let missing = api.post("/outlets/", &admin, json!({"address": "x"})).await;
    assert_eq!(
        missing.assert_error(400)["name"],
        json!(["This field is required."])
    );
    api.post(
        "/outlets/",
        &admin,
        json!({"name": "X", "is_active": "yes please"}),
    )
    .await
    .assert_error(400);
    let created = api.post("/outlets/", &admin, json!({"name": "Outlet Name", "address": "Address", "contact_person": "Contact Name", "is_active": true})).await;
    assert_eq!(created.status, 201);
    let outlet = created.body["id"].as_i64().unwrap();
    assert_eq!(
        (&created.body["name"], &created.body["contact_person"]),
        (&json!("Outlet Name"), &json!("Contact Name"))
    );
    let other = api
        .post(
            "/outlets/",
            &admin,
            json!({"name": "Closed", "is_active": false}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        api.get("/outlets/", &viewer)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let active = api.get("/outlets/?is_active=true", &viewer).await;
    assert_eq!(
        active
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![outlet]
    );
    assert_eq!(
        api.get(&format!("/outlets/{outlet}/"), &viewer).await.body["address"],
        "Address"
    );
    api.get("/outlets/999/", &viewer).await.assert_error(404);
    api.get("/outlets/abc/", &viewer).await.assert_error(404);
    let put = api
        .put(
            &format!("/outlets/{outlet}/"),
            &admin,
            json!({"name": "Renamed", "total_sva": 4}),
        )
        .await;
    assert_eq!(
        (
            &put.ok()["name"],
            &put.body["total_sva"],
            &put.body["address"]
        ),
        (&json!("Renamed"), &json!(4), &json!("Address"))
    );
    api.put(&format!("/outlets/{outlet}/"), &admin, json!({"name": ""}))
        .await
        .assert_error(400);
    api.put(
        &format!("/outlets/{outlet}/"),
        &viewer,
        json!({"name": "v"}),
    )
    .await
    .assert_error(403);

    // Machines.
    let bad_outlet = api
        .post("/machines/", &admin, json!({"outlet": 999, "name": "M"}))
        .await;
    assert!(
        bad_outlet.assert_error(400)["outlet"][0]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let m1 = api
        .post(
            "/machines/",
            &admin,
            json!({"outlet": outlet, "name": "Machine Name", "is_active": true}),
        )
        .await;
    assert_eq!(
        (m1.status, &m1.body["device_id"]),
        (StatusCode::CREATED, &Value::Null)
    );
    let m1 = m1.body["id"].as_i64().unwrap();
    let reg = api
        .post(
            "/machines/register/",
            &admin,
            json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "Machine A"}),
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    assert_eq!(
        (
            &reg.body["device_id"],
            &reg.body["outlet"],
            &reg.body["binding"]["is_active"]
        ),
        (&json!("esp32-001"), &json!(outlet), &json!(true))
    );
    let m2 = reg.body["id"].as_i64().unwrap();
    api.post(
        "/machines/register/",
        &admin,
        json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "Again"}),
    )
    .await
    .assert_error(409);
    api.post(
        "/machines/register/",
        &admin,
        json!({"device_id": "ghost", "outlet_id": outlet, "name": "G"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/machines/register/",
        &viewer,
        json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "G"}),
    )
    .await
    .assert_error(403);
    api.post(
        "/machines/",
        &admin,
        json!({"outlet": other, "name": "Elsewhere"}),
    )
    .await
    .ok();

    let ids = |r: &Resp| {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&api
            .get(&format!("/machines/?outlet_id={outlet}"), &viewer)
            .await),
        vec![m1, m2]
    );
    assert_eq!(
        ids(&api.get("/machines/?device_id=esp32-001", &viewer).await),
        vec![m2]
    );
    assert_eq!(
        api.get("/machines/", &viewer)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        3
    );
    api.get("/machines/?outlet_id=x", &viewer)
        .await
        .assert_error(400);
    let detail = api.get(&format!("/machines/{m2}/"), &viewer).await;
    assert_eq!(detail.body["devices"][0]["device_id"], "esp32-001");

    // An event now counts for the device, the machine and the outlet.
    api.event(
        &token,
        "esp32-001",
        "m-1",
        "STANDARD",
        Some("2025-09-16T10:00:00Z"),
    )
    .await
    .ok();
    for scope in [
        format!("machine_id={m2}"),
        format!("outlet_id={outlet}"),
        "device_id=esp32-001".into(),
        String::new(),
    ] {
        let st = api
            .get(
                &format!("/test/stats/?{scope}&start=2025-09-16&end=2025-09-16"),
                &viewer,
            )
            .await;
        assert_eq!(series(&st.body, "STANDARD"), vec![1.0], "{scope}");
    }
    let st = api
        .get(
            &format!("/test/stats/?machine_id={m1}&start=2025-09-16&end=2025-09-16"),
            &viewer,
        )
        .await;
    assert_eq!(series(&st.body, "total"), vec![0.0]);

    // Unregistered: a device with telemetry and no machine.
    let t2 = api.device(&admin, "AA:BB:CC:DD:EE:02", "esp32-002").await;
    assert_eq!(
        api.get("/machines/unregistered/", &viewer).await.body,
        json!([])
    );
    api.event(&t2, "esp32-002", "u-1", "BASIC", None).await.ok();
    let un = api.get("/machines/unregistered/", &viewer).await;
    assert_eq!(
        un.body
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].clone())
            .collect::<Vec<_>>(),
        vec![json!("esp32-002")]
    );

    // Moving a machine moves its device's future usage; deleting it unbinds the device.
    let moved = api
        .put(
            &format!("/machines/{m2}/"),
            &admin,
            json!({"outlet": other}),
        )
        .await;
    assert_eq!(moved.ok()["outlet"], other);
    api.event(
        &token,
        "esp32-001",
        "m-2",
        "BASIC",
        Some("2025-09-17T10:00:00Z"),
    )
    .await
    .ok();
    let st = api
        .get(
            &format!("/test/stats/?outlet_id={other}&start=2025-09-17&end=2025-09-17"),
            &viewer,
        )
        .await;
    assert_eq!(series(&st.body, "BASIC"), vec![1.0]);
    api.delete(&format!("/outlets/{other}/"), &admin)
        .await
        .assert_error(409);
    let del = api.delete(&format!("/machines/{m2}/"), &admin).await;
    assert_eq!(del.status, 204);
    api.get(&format!("/machines/{m2}/"), &viewer)
        .await
        .assert_error(404);
    assert_eq!(
        api.get("/telemetry/summary/?device_id=esp32-001", &viewer)
            .await
            .body["machine_id"],
        Value::Null
    );
    let un = api.get("/machines/unregistered/", &viewer).await;
    assert_eq!(un.body.as_array().unwrap().len(), 2);
    api.delete(&format!("/outlets/{outlet}/"), &admin)
        .await
        .assert_error(409);
    api.delete(&format!("/machines/{m1}/"), &admin).await;
    let del = api.delete(&format!("/outlets/{outlet}/"), &admin).await;
    assert_eq!(del.status, 204);
    api.delete(&format!("/outlets/{outlet}/"), &admin)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn stats_from_rollups_with_every_parameter() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let events = [
        ("2025-09-14T23:59:59Z", "BASIC"),
        ("2025-09-15T08:00:00Z", "BASIC"),
        ("2025-09-15T08:30:00Z", "PREMIUM"),
        ("2025-09-16T12:34:56Z", "STANDARD"),
        ("2025-09-16T12:34:10Z", "BASIC"),
        ("2025-09-16T13:00:00Z", "BASIC"),
        ("2025-08-20T10:00:00Z", "BASIC"),
    ];
    for (i, (ts, t)) in events.iter().enumerate() {
        api.event(&token, "esp32-001", &format!("s-{i}"), t, Some(ts))
            .await
            .ok();
    }
    let get = |q: &str| {
        let path = format!("/test/stats/?{q}");
        let (api, viewer) = (&api, &viewer);
        async move { api.get(&path, viewer).await }
    };

    let day = get("start=2025-09-14&end=2025-09-16").await;
    assert_eq!(
        day.ok()["labels"],
        json!(["2025-09-14", "2025-09-15", "2025-09-16"])
    );
    assert_eq!(
        (&day.body["granularity"], &day.body["time_zone"]),
        (&json!("day"), &json!("UTC"))
    );
    assert_eq!(series(&day.body, "total"), vec![1.0, 2.0, 3.0]);
    assert_eq!(series(&day.body, "BASIC"), vec![1.0, 1.0, 2.0]);
    assert_eq!(
        day.body["totals"],
        json!({"total": 6, "BASIC": 4, "STANDARD": 1, "PREMIUM": 1})
    );

    let cumulative = get("start=2025-09-14&end=2025-09-16&cumulative=true").await;
    assert_eq!(series(&cumulative.body, "total"), vec![1.0, 3.0, 6.0]);
    let ma = get("start=2025-09-14&end=2025-09-16&ma=2").await;
    let avg = ma.body["moving_average"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "total")
        .unwrap();
    assert_eq!(avg["data"], json!([1.0, 1.5, 2.5]));

    let hour = get("granularity=hour&start=2025-09-16T12:00:00Z&end=2025-09-16T13:59:59Z").await;
    assert_eq!(
        hour.body["labels"],
        json!(["2025-09-16T12:00:00Z", "2025-09-16T13:00:00Z"])
    );
    assert_eq!(series(&hour.body, "total"), vec![2.0, 1.0]);
    let minute =
        get("granularity=minute&start=2025-09-16T12:33:00Z&end=2025-09-16T12:35:00Z").await;
    assert_eq!(series(&minute.body, "total"), vec![0.0, 2.0, 0.0]);
    let month = get("granularity=month&start=2025-08-01&end=2025-09-30").await;
    assert_eq!(month.body["labels"], json!(["2025-08", "2025-09"]));
    assert_eq!(series(&month.body, "total"), vec![1.0, 6.0]);

    let compare = get("start=2025-09-16&end=2025-09-16&compare=true").await;
    assert_eq!(compare.body["previous"]["labels"], json!(["2025-09-15"]));
    assert_eq!(compare.body["previous"]["totals"]["total"], 2);
    assert_eq!(compare.body["change_pct"]["total"], 50.0);
    assert_eq!(compare.body["change_pct"]["STANDARD"], Value::Null);

    // The default window: the last 7 calendar days, today included.
    let default = get("").await;
    assert_eq!(default.body["labels"].as_array().unwrap().len(), 7);
    assert_eq!(
        get("days=30").await.body["labels"]
            .as_array()
            .unwrap()
            .len(),
        30
    );

    for bad in [
        "granularity=week",
        "start=soon",
        "end=2025-13-01",
        "days=0",
        "days=x",
        "ma=-1",
        "cumulative=perhaps",
        "compare=2",
        "outlet_id=x",
        "machine_id=0",
        "start=2025-09-16&end=2025-09-15",
        "granularity=minute&start=2025-01-01&end=2025-03-01",
    ] {
        let res = get(bad).await;
        res.assert_error(400);
    }
    api.get("/test/stats/", Auth::None).await.assert_error(401);

    // CSV export of the same stats, parsed back.
    let csv = api
        .get(
            "/test/stats-export.csv?start=2025-09-14&end=2025-09-16&ma=2&compare=true",
            &viewer,
        )
        .await;
    assert!(
        csv.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("stats_export.csv")
    );
    let rows = csv.csv();
    assert_eq!(
        rows[0][..5],
        ["label", "total", "BASIC", "STANDARD", "PREMIUM"]
    );
    assert!(
        rows[0].contains(&"total_ma2".to_owned()) && rows[0].contains(&"previous_total".to_owned())
    );
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3][..5], ["2025-09-16", "3", "2", "1", "0"]);
    let prev = rows[0].iter().position(|c| c == "previous_label").unwrap();
    assert_eq!(rows[1][prev], "2025-09-11");
    api.get("/test/stats-export.csv?granularity=year", &viewer)
        .await
        .assert_error(400);

    // Events analytics come from the day rollups.
    let an = api.get("/events/analytics/?days=3660", &viewer).await;
    assert_eq!(an.ok()["total_treatments"], 7);
    assert_eq!(
        an.body["by_treatment"],
        json!({"BASIC": 5, "STANDARD": 1, "PREMIUM": 1})
    );
    assert_eq!(an.body["busiest_day"], "2025-09-16");
    assert_eq!(an.body["daily"].as_array().unwrap().len(), 3660);
    let recent = api
        .get("/events/analytics/?device_id=esp32-001", &viewer)
        .await;
    assert_eq!(
        (
            &recent.body["total_treatments"],
            &recent.body["busiest_day"]
        ),
        (&json!(0), &Value::Null)
    );
    api.get("/events/analytics/?days=-3", &viewer)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn stats_cost_the_same_round_trips_however_many_events() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    let q = "/test/stats/?granularity=hour&start=2025-09-16&end=2025-09-16&compare=true";
    let before = api.get(q, &viewer).await.round_trips();
    for i in 0..60 {
        api.event(
            &token,
            "esp32-001",
            &format!("r-{i}"),
            "BASIC",
            Some(&format!("2025-09-16T{:02}:{:02}:00Z", i % 24, i)),
        )
        .await
        .ok();
    }
    let after = api.get(q, &viewer).await;
    assert_eq!(after.body["totals"]["total"], 60);
    assert_eq!(after.round_trips(), before);
    assert!(before <= 4, "session, user, two rollup queries: {before}");
    // Ingest is two round trips: the device read and one transaction.
    let ingest = api.event(&token, "esp32-001", "r-x", "BASIC", None).await;
    assert_eq!(ingest.round_trips(), 2);
}

#[tokio::test]
async fn stats_options_export_and_flush() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    api.device(&admin, "AA:BB:CC:DD:EE:01", "esp32-002").await;
    let outlet = api
        .post("/outlets/", &admin, json!({"name": "O1"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let o2 = api
        .post("/outlets/", &admin, json!({"name": "O2"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let machine = api
        .post(
            "/machines/register/",
            &admin,
            json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "M1"}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    api.post("/machines/", &admin, json!({"outlet": o2, "name": "M2"}))
        .await
        .ok();

    let opts = api.get("/test/stats-options/", &viewer).await;
    assert_eq!(opts.ok()["outlets"].as_array().unwrap().len(), 2);
    assert_eq!(opts.body["machines"].as_array().unwrap().len(), 2);
    assert_eq!(opts.body["devices"].as_array().unwrap().len(), 2);
    assert_eq!(
        opts.body["granularities"],
        json!(["minute", "hour", "day", "month"])
    );
    let of_outlet = api
        .get(&format!("/test/stats-options/?outlet_id={outlet}"), &viewer)
        .await;
    assert_eq!(
        of_outlet.body["machines"],
        json!([{"id": machine, "name": "M1", "outlet_id": outlet}])
    );
    let of_machine = api
        .get(
            &format!("/test/stats-options/?machine_id={machine}"),
            &viewer,
        )
        .await;
    assert_eq!(
        of_machine.body["devices"],
        json!([{"id": "esp32-001", "name": "esp32-001", "machine_id": machine}])
    );

    for i in 0..5 {
        api.event(&token, "esp32-001", &format!("x-{i}"), "BASIC", None)
            .await
            .ok();
    }
    let hb = json!({"device_id": "esp32-001", "event_id": "hb", "event": "status", "payload": {"uptime": 5}});
    api.post("/device/events/", Auth::Bearer(&token), hb)
        .await
        .ok();

    // Export: staff only, CSV parsed back, paginated.
    api.get("/export/", &viewer).await.assert_error(403);
    let csv = api.get("/export/?device_id=esp32-001", &admin).await;
    let rows = csv.csv();
    assert_eq!(rows[0][0..3], ["event_id", "device_id", "event_type"]);
    assert_eq!(rows.len(), 7);
    let hb_row = rows.iter().find(|r| r[0] == "hb").unwrap();
    assert_eq!(hb_row[2], "status");
    assert_eq!(
        serde_json::from_str::<Value>(&hb_row[14]).unwrap(),
        json!({"uptime": 5})
    );
    assert!(
        rows[1..]
            .iter()
            .filter(|r| r[0] != "hb")
            .all(|r| r[4] == "BASIC" && r[5] == "124")
    );
    let first = api.get("/export/?limit=4", &admin).await;
    assert_eq!(first.csv().len(), 5);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let second = api
        .get(&format!("/export/?limit=4&cursor={cursor}"), &admin)
        .await;
    assert_eq!(second.csv().len(), 3);
    assert!(second.headers.get("x-next-cursor").is_none());
    api.get("/export/?days=zero", &admin)
        .await
        .assert_error(400);

    // Flush: staff only; events and rollups go, devices and catalog stay.
    api.call(Method::POST, "/flush/", &viewer, None)
        .await
        .assert_error(403);
    api.call(Method::POST, "/flush/", Auth::None, None)
        .await
        .assert_error(401);
    let flushed = api.call(Method::POST, "/flush/", &admin, None).await;
    assert_eq!(
        (&flushed.ok()["success"], &flushed.body["complete"]),
        (&json!(true), &json!(true))
    );
    assert!(flushed.body["deleted"].as_u64().unwrap() >= 12);
    assert_eq!(api.get("/events/", &viewer).await.body, json!([]));
    let st = api.get("/test/stats/", &viewer).await;
    assert_eq!(st.body["totals"]["total"], 0);
    let summary = api
        .get("/telemetry/summary/?device_id=esp32-001", &viewer)
        .await;
    assert_eq!(
        (&summary.body["event_count"], &summary.body["machine_id"]),
        (&json!(0), &json!(machine))
    );
    // The same event id is accepted again after a flush, and counted.
    api.event(&token, "esp32-001", "x-0", "BASIC", None)
        .await
        .ok();
    assert_eq!(
        api.get("/test/stats/", &viewer).await.body["totals"]["total"],
        1
    );
}

#[tokio::test]
async fn calendar_buckets_follow_the_configured_time_zone() {
    let api = Api::with(&[], &[("OZONE_TIME_ZONE", "America/New_York")]).await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    // 03:30Z on 10 March is still 9 March in New York; the 9th is a 23-hour day (DST starts).
    for (i, ts) in [
        "2025-03-10T03:30:00Z",
        "2025-03-09T05:30:00Z",
        "2025-03-09T06:30:00Z",
        "2025-11-02T05:30:00Z",
        "2025-11-02T06:30:00Z",
    ]
    .iter()
    .enumerate()
    {
        api.event(&token, "esp32-001", &format!("tz-{i}"), "BASIC", Some(ts))
            .await
            .ok();
    }
    let day = api
        .get("/test/stats/?start=2025-03-09&end=2025-03-10", &viewer)
        .await;
    assert_eq!(day.body["time_zone"], "America/New_York");
    assert_eq!(series(&day.body, "total"), vec![3.0, 0.0]);
    // 00:30 and 01:30 EST; the skipped 02:00 hour is no bucket.
    let hours = api
        .get(
            "/test/stats/?granularity=hour&start=2025-03-09T00:00:00&end=2025-03-09T03:59:59",
            &viewer,
        )
        .await;
    assert_eq!(
        hours.body["labels"],
        json!([
            "2025-03-09T00:00:00-05:00",
            "2025-03-09T01:00:00-05:00",
            "2025-03-09T03:00:00-04:00"
        ])
    );
    assert_eq!(series(&hours.body, "total"), vec![1.0, 1.0, 0.0]);
    // The repeated 01:00 on 2 November is two buckets.
    let fall = api.get("/test/stats/?granularity=hour&start=2025-11-02T01:00:00-04:00&end=2025-11-02T01:59:59-05:00", &viewer).await;
    assert_eq!(
        fall.body["labels"],
        json!(["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00"])
    );
    assert_eq!(series(&fall.body, "total"), vec![1.0, 1.0]);
    let month = api
        .get(
            "/test/stats/?granularity=month&start=2025-03-01&end=2025-03-31",
            &viewer,
        )
        .await;
    assert_eq!(series(&month.body, "total"), vec![3.0]);
}

#[tokio::test]
async fn platform_errors_use_the_ozone_format() {
    let api = Api::with(&["--body-limit", "65536"], &[]).await;
    let (admin, _) = api.users().await;
    let nf = api.get("/outlets/1/nope/", &admin).await;
    nf.assert_error(404);
    api.patch("/outlets/", &admin, json!({}))
        .await
        .assert_error(405);
    // An oversize body is refused from its Content-Length, before it is read (a raw request,
    // so the client is not still writing when the answer comes).
    let head = "POST /ozone/api/handshake/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nConnection: close\r\n\r\n{";
    let raw = http::raw(&api.server.base, head).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains(r#""success":false"#), "{raw}");
    // Paths work with and without the trailing slash.
    api.get("/outlets", &admin).await.ok();
    api.get("/outlets/", &admin).await.ok();
    api.assert_documented(&[
        "/api/handshake",
        "/api/device/events",
        "/api/iot",
        "/api/devices/assign",
        "/api/test/stats-export.csv",
        "/api/flush",
        "/api/outlets/{id}",
    ])
    .await;
}

/// Drops the Ozone table on moto so this run starts from an empty table (moto keeps tables
/// between runs; only this test uses `civic-ozone` there).
async fn drop_moto_table() {
    let res = Client::new()
        .post(civic_testkit::moto::moto_url())
        .header("x-amz-target", "DynamoDB_20120810.DeleteTable")
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .header(header::AUTHORIZATION, "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
        .body(r#"{"TableName": "civic-ozone"}"#)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success() || res.status() == 400,
        "{}",
        res.status()
    );
}

#[tokio::test]
async fn the_aws_backend_serves_ozone_on_moto() {
    drop_moto_table().await;
    let api = Api::on(LocalServer::start_on_moto(BIN, &[]).await);
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "esp32-001").await;
    // Idempotency rests on DynamoDB's conditional transaction, and so do the rollups.
    let first = api
        .event(
            &token,
            "esp32-001",
            "d-1",
            "BASIC",
            Some("2025-09-16T12:00:00Z"),
        )
        .await;
    let again = api
        .event(
            &token,
            "esp32-001",
            "d-1",
            "BASIC",
            Some("2025-09-16T12:00:00Z"),
        )
        .await;
    assert_eq!(first.ok(), &again.body);
    api.event(
        &token,
        "esp32-001",
        "d-2",
        "PREMIUM",
        Some("2025-09-16T13:00:00Z"),
    )
    .await
    .ok();
    api.event(&token, "dev-x", "d-3", "PREMIUM", None)
        .await
        .assert_error(401);
    let st = api
        .get(
            "/test/stats/?start=2025-09-16&end=2025-09-16&granularity=hour",
            &viewer,
        )
        .await;
    assert_eq!(
        st.body["totals"],
        json!({"total": 2, "BASIC": 1, "STANDARD": 0, "PREMIUM": 1})
    );
    assert_eq!(
        api.get("/events/?days=3660", &viewer)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let outlet = api
        .post("/outlets/", &admin, json!({"name": "O"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let reg = api
        .post(
            "/machines/register/",
            &admin,
            json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "M"}),
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    api.event(
        &token,
        "esp32-001",
        "d-4",
        "STANDARD",
        Some("2025-09-16T14:00:00Z"),
    )
    .await
    .ok();
    let st = api
        .get(
            &format!("/test/stats/?outlet_id={outlet}&start=2025-09-16&end=2025-09-16"),
            &viewer,
        )
        .await;
    assert_eq!(series(&st.body, "STANDARD"), vec![1.0]);
    let flushed = api.call(Method::POST, "/flush/", &admin, None).await;
    assert_eq!(flushed.ok()["complete"], true);
    assert_eq!(
        api.get("/test/stats/?start=2025-09-16&end=2025-09-16", &viewer)
            .await
            .body["totals"]["total"],
        0
    );
    // The same-second tie-break on DynamoDB's sort keys.
    latest_is_the_event_received_last(&api, &admin, &viewer).await;
}

#[tokio::test]
async fn latest_is_the_event_received_last_in_the_same_second() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    latest_is_the_event_received_last(&api, &admin, &viewer).await;
}

/// Two events in the same second whose event ids sort opposite to their receipt order: the
/// one received last is the latest (of its device and of all), and heads the event list.
async fn latest_is_the_event_received_last(api: &Api, admin: &Session, viewer: &Session) {
    let a = api.device(admin, "AA:BB:CC:00:00:01", "tie-a").await;
    let b = api.device(admin, "AA:BB:CC:00:00:02", "tie-b").await;
    api.get("/telemetry/latest/?device_id=tie-a", viewer)
        .await
        .assert_error(404);
    // The device's own time: both in one second (the latest second of all events here).
    let ts = Some("2099-01-01T00:00:00Z");
    for (id, t) in [("zz-first", "BASIC"), ("aa-second", "PREMIUM")] {
        api.event(&a, "tie-a", id, t, ts).await.ok();
    }
    let latest = api.get("/telemetry/latest/?device_id=tie-a", viewer).await;
    assert_eq!(latest.ok()["event_id"], "aa-second", "{}", latest.text);
    let fleet = api.get("/telemetry/latest/", viewer).await;
    assert_eq!(fleet.ok()["event_id"], "aa-second", "{}", fleet.text);
    let listed = api.get("/events/?device_id=tie-a&days=1", viewer).await;
    let ids: Vec<&Value> = listed
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event_id"])
        .collect();
    assert_eq!(ids, ["aa-second", "zz-first"], "newest first");
    // A repeat of the first is acknowledged, stores nothing and does not become the latest.
    api.event(&a, "tie-a", "zz-first", "BASIC", ts).await.ok();
    assert_eq!(
        api.get("/telemetry/latest/?device_id=tie-a", viewer)
            .await
            .ok()["event_id"],
        "aa-second"
    );
    // Without `ts` (stamped at receipt): back to back, most likely in one second.
    for id in ["zz-now", "mm-now", "aa-now"] {
        api.event(&b, "tie-b", id, "STANDARD", None).await.ok();
    }
    let latest = api.get("/telemetry/latest/?device_id=tie-b", viewer).await;
    assert_eq!(latest.ok()["event_id"], "aa-now", "{}", latest.text);
    // Bad input is a 4xx in Ozone's format.
    api.get("/telemetry/latest/?device_id=bad%20id", viewer)
        .await
        .assert_error(400);
    api.get("/telemetry/latest/?device_id=tie-c", viewer)
        .await
        .assert_error(404);
    api.get("/telemetry/latest/?device_id=tie-a", Auth::None)
        .await
        .assert_error(401);
}

/// Every endpoint for every kind of caller: nobody, a device token, a signed-in user, staff.
#[tokio::test]
async fn every_endpoint_by_role() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "dev-a").await;
    api.device(&admin, "AA:BB:CC:DD:EE:01", "dev-b").await;
    api.device(&admin, "AA:BB:CC:DD:EE:02", "dev-c").await;
    api.event(&token, "dev-a", "seed-1", "BASIC", None)
        .await
        .ok();
    let outlet = |name: &str| api.post("/outlets/", &admin, json!({"name": name}));
    let (o1, o2) = (
        outlet("O1").await.body["id"].clone(),
        outlet("O2").await.body["id"].clone(),
    );
    let machine = |name: &str| api.post("/machines/", &admin, json!({"outlet": o1, "name": name}));
    let (m1, m2) = (
        machine("M1").await.body["id"].clone(),
        machine("M2").await.body["id"].clone(),
    );

    const ANY: [u16; 4] = [200, 200, 200, 200];
    const USER: [u16; 4] = [401, 401, 200, 200];
    const STAFF: [u16; 4] = [401, 401, 403, 200];
    const DEVICE: [u16; 4] = [401, 200, 401, 401];
    let event =
        json!({"device_id": "dev-a", "event_id": "role-1", "treatment": "BASIC", "counter": 1});
    let form = "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count1=1";
    let cases: Vec<(Method, String, Option<Value>, [u16; 4])> = vec![
        (Method::GET, "/auth/user/".into(), None, USER),
        (Method::GET, "/auth/check/".into(), None, ANY),
        (
            Method::POST,
            "/handshake/".into(),
            Some(json!({"mac": "AA:BB:CC:DD:EE:99"})),
            ANY,
        ),
        (Method::POST, "/device/events/".into(), Some(event), DEVICE),
        (Method::POST, "/iot/".into(), None, DEVICE),
        (
            Method::POST,
            "/devices/assign/".into(),
            Some(json!({"mac": "AA:BB:CC:DD:EE:99", "device_id": "dev-z"})),
            STAFF,
        ),
        (
            Method::PUT,
            "/devices/dev-a/notes/".into(),
            Some(json!({"notes": "n"})),
            STAFF,
        ),
        (Method::GET, "/devices/pending/".into(), None, STAFF),
        (Method::POST, "/devices/dev-b/token/".into(), None, STAFF),
        (Method::DELETE, "/devices/dev-b/token/".into(), None, STAFF),
        (
            Method::PUT,
            "/devices/dev-b/legacy-ingest/".into(),
            Some(json!({"allowed": false})),
            STAFF,
        ),
        // No IoT certificates locally: staff get 409.
        (
            Method::POST,
            "/devices/dev-b/certificate/".into(),
            None,
            [401, 401, 403, 409],
        ),
        (Method::GET, "/events/".into(), None, USER),
        (Method::GET, "/devices/online/".into(), None, USER),
        (Method::GET, "/devices/all/".into(), None, USER),
        (Method::GET, "/devices-data/".into(), None, USER),
        (
            Method::GET,
            "/telemetry/summary/?device_id=dev-a".into(),
            None,
            USER,
        ),
        (
            Method::GET,
            "/telemetry/latest/?device_id=dev-a".into(),
            None,
            USER,
        ),
        (Method::GET, "/outlets/".into(), None, USER),
        (
            Method::POST,
            "/outlets/".into(),
            Some(json!({"name": "New"})),
            [401, 401, 403, 201],
        ),
        (Method::GET, format!("/outlets/{o1}/"), None, USER),
        (
            Method::PUT,
            format!("/outlets/{o1}/"),
            Some(json!({"name": "Renamed"})),
            STAFF,
        ),
        (
            Method::DELETE,
            format!("/outlets/{o2}/"),
            None,
            [401, 401, 403, 204],
        ),
        (Method::GET, "/machines/".into(), None, USER),
        (
            Method::POST,
            "/machines/".into(),
            Some(json!({"outlet": o1, "name": "New"})),
            [401, 401, 403, 201],
        ),
        (Method::GET, format!("/machines/{m1}/"), None, USER),
        (
            Method::PUT,
            format!("/machines/{m1}/"),
            Some(json!({"name": "Renamed"})),
            STAFF,
        ),
        (
            Method::DELETE,
            format!("/machines/{m2}/"),
            None,
            [401, 401, 403, 204],
        ),
        (
            Method::POST,
            "/machines/register/".into(),
            Some(json!({"device_id": "dev-c", "outlet_id": o1, "name": "R"})),
            [401, 401, 403, 201],
        ),
        (Method::GET, "/machines/unregistered/".into(), None, USER),
        (Method::GET, "/test/stats/".into(), None, USER),
        (Method::GET, "/test/stats-options/".into(), None, USER),
        (Method::GET, "/test/stats-export.csv".into(), None, USER),
        (Method::GET, "/events/analytics/".into(), None, USER),
        (Method::GET, "/export/".into(), None, STAFF),
        (Method::POST, "/flush/".into(), None, STAFF),
        (Method::POST, "/auth/logout/".into(), None, ANY),
    ];
    for (method, path, body, expect) in cases {
        let callers = [
            Auth::None,
            Auth::Bearer(&token),
            Auth::from(&viewer),
            Auth::from(&admin),
        ];
        let names = ["nobody", "a device", "a user", "staff"];
        for ((caller, want), who) in callers.into_iter().zip(expect).zip(names) {
            let res = match path.as_str() {
                "/iot/" => api.raw(method.clone(), &path, caller, FORM, form).await,
                _ => api.call(method.clone(), &path, caller, body.clone()).await,
            };
            assert_eq!(
                res.status.as_u16(),
                want,
                "{method} {path} as {who}: {}",
                res.text
            );
            if want >= 400 {
                res.assert_error(want);
            }
        }
    }
}

#[tokio::test]
async fn handshakes_can_hand_out_only_unclaimed_tokens() {
    let api = Api::with(&[], &[("OZONE_HANDSHAKE_REISSUE", "false")]).await;
    let (admin, _) = api.users().await;
    let hs = |auth| api.post("/handshake/", auth, json!({"mac": MAC}));
    let token = api.device(&admin, MAC, "esp32-001").await;
    // Knowing the MAC is no longer enough for a token...
    hs(Auth::None).await.assert_error(409);
    api.event(&token, "esp32-001", "c-1", "BASIC", None)
        .await
        .ok();
    // ...but the device itself may renew its own.
    let renewed = hs(Auth::Bearer(&token)).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.event(&token, "esp32-001", "c-2", "BASIC", None)
        .await
        .assert_error(401);
    api.event(&renewed, "esp32-001", "c-2", "BASIC", None)
        .await
        .ok();
    // Staff revoke a lost token; the next handshake claims a new one.
    let revoked = api.delete("/devices/esp32-001/token/", &admin).await;
    assert_eq!(
        revoked.ok(),
        &json!({"success": true, "device_id": "esp32-001"})
    );
    api.event(&renewed, "esp32-001", "c-3", "BASIC", None)
        .await
        .assert_error(401);
    let claimed = hs(Auth::None).await.body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.event(&claimed, "esp32-001", "c-3", "BASIC", None)
        .await
        .ok();
    hs(Auth::None).await.assert_error(409);
    api.delete("/devices/ghost/token/", &admin)
        .await
        .assert_error(404);
}

/// Issue 15, item 1 (a MAC is no password) and item 12 (CSV injection): each attack refused.
mod device_identity {
    use super::*;

    const LEGACY: &str =
        "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count1=7&timestamp=2025-09-16+14%3A30%3A25";

    /// Events stored for `device_id`, as staff see them.
    async fn stored(api: &Api, staff: &Session, device_id: &str) -> usize {
        let path = format!("/events/?device_id={device_id}&days=3660");
        api.get(&path, staff).await.ok().as_array().unwrap().len()
    }

    #[tokio::test]
    async fn only_staff_see_a_devices_mac() {
        let api = Api::start().await;
        let (admin, viewer) = api.users().await;
        let token = api.device(&admin, MAC, "dev-a").await;
        api.event(&token, "dev-a", "m-1", "BASIC", None).await.ok();
        let outputs = [
            ("/devices/all/", "/0"),
            ("/devices/online/", "/0"),
            ("/devices-data/", "/devices/0"),
            ("/telemetry/summary/?device_id=dev-a", ""),
            ("/machines/unregistered/", "/0"),
        ];
        for (path, pointer) in outputs {
            let seen = api.get(path, &viewer).await;
            let device = seen.ok().pointer(pointer).unwrap();
            assert_eq!(device["device_id"], "dev-a", "{path}");
            assert!(device.get("mac").is_none(), "{path} shows a user the MAC");
            assert!(!seen.text.contains(MAC), "{path}: {}", seen.text);
            let staff = api.get(path, &admin).await;
            assert_eq!(staff.ok().pointer(pointer).unwrap()["mac"], MAC, "{path}");
        }
    }

    #[tokio::test]
    async fn a_legacy_report_by_mac_alone_is_refused_and_stores_nothing() {
        let api = Api::start().await;
        let (admin, viewer) = api.users().await;
        let token = api.device(&admin, MAC, "esp32-001").await;
        let post = |auth| api.raw(Method::POST, "/iot/", auth, FORM, LEGACY.to_owned());
        let refused = post(Auth::None).await;
        refused.assert_error(401);
        post(Auth::Bearer("guessed")).await.assert_error(401);
        post(Auth::from(&viewer)).await.assert_error(401);
        assert_eq!(stored(&api, &admin, "esp32-001").await, 0);
        let summary = api
            .get("/telemetry/summary/?device_id=esp32-001", &admin)
            .await;
        assert_eq!(summary.ok()["event_count"], 0);
        assert_eq!(summary.body["counts"]["basic"], Value::Null);
        // With the device's token it is taken.
        post(Auth::Bearer(&token)).await.ok();
        assert_eq!(stored(&api, &admin, "esp32-001").await, 1);
    }

    #[tokio::test]
    async fn staff_may_allow_one_devices_token_less_legacy_reports_on_record() {
        let api = Api::start().await;
        let (admin, viewer) = api.users().await;
        api.device(&admin, MAC, "esp32-001").await;
        let other = "AA:BB:CC:DD:EE:01";
        api.device(&admin, other, "esp32-002").await;
        let allow = |who, allowed: bool| {
            let body = json!({"allowed": allowed});
            api.put("/devices/esp32-001/legacy-ingest/", who, body)
        };
        allow(Auth::None, true).await.assert_error(401);
        allow(Auth::from(&viewer), true).await.assert_error(403);
        api.put(
            "/devices/ghost/legacy-ingest/",
            &admin,
            json!({"allowed": true}),
        )
        .await
        .assert_error(404);
        api.put("/devices/esp32-001/legacy-ingest/", &admin, json!({}))
            .await
            .assert_error(400);
        let decided = allow(Auth::from(&admin), true).await;
        let record = &decided.ok()["legacy_ingest"];
        assert_eq!(
            (&record["allowed"], &record["by"]),
            (&json!(true), &json!("admin"))
        );
        assert!(record["at"].as_str().unwrap().ends_with('Z'));
        // Staff see the decision in the listings; other users do not.
        let all = api.get("/devices/all/", &admin).await;
        let listed = all
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == "esp32-001");
        assert_eq!(listed.unwrap()["legacy_ingest"]["by"], "admin");
        let all = api.get("/devices/all/", &viewer).await;
        assert!(
            all.body
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d.get("legacy_ingest").is_none())
        );

        let post = |body: String| api.raw(Method::POST, "/iot/", Auth::None, FORM, body);
        assert_eq!(post(LEGACY.to_owned()).await.ok(), &json!({"status": "ok"}));
        assert_eq!(stored(&api, &admin, "esp32-001").await, 1);
        // Per device: the other one still needs its token.
        let theirs = LEGACY.replace("EC:E3:34:46:2B:C0", other);
        post(theirs).await.assert_error(401);
        assert_eq!(stored(&api, &admin, "esp32-002").await, 0);
        // A wrong bearer is still refused, and withdrawing the permission takes effect at once.
        api.raw(
            Method::POST,
            "/iot/",
            Auth::Bearer("guessed"),
            FORM,
            LEGACY.to_owned(),
        )
        .await
        .assert_error(401);
        let withdrawn = allow(Auth::from(&admin), false).await;
        assert_eq!(withdrawn.ok()["legacy_ingest"]["allowed"], false);
        post(LEGACY.replace("count1=7", "count1=8"))
            .await
            .assert_error(401);
        assert_eq!(stored(&api, &admin, "esp32-001").await, 1);
    }

    #[tokio::test]
    async fn a_repeat_handshake_with_a_known_mac_takes_over_nothing() {
        let api = Api::start().await; // OZONE_HANDSHAKE_REISSUE defaults to false
        let (admin, _) = api.users().await;
        let token = api.device(&admin, MAC, "esp32-001").await;
        let hs = |auth| {
            api.post(
                "/handshake/",
                auth,
                json!({"mac": MAC, "firmware": "6.6.6"}),
            )
        };
        let taken = hs(Auth::None).await;
        taken.assert_error(409);
        assert!(taken.body.get("token").is_none(), "{}", taken.text);
        hs(Auth::Bearer("guessed")).await.assert_error(401);
        // The real device's token still works; nothing was handed out.
        api.event(&token, "esp32-001", "h-1", "BASIC", None)
            .await
            .ok();
        let summary = api
            .get("/telemetry/summary/?device_id=esp32-001", &admin)
            .await;
        assert_eq!(
            summary.ok()["firmware"],
            "1.0.0",
            "the refused handshake changed nothing"
        );
        // The device itself renews its own token.
        let renewed = hs(Auth::Bearer(&token)).await;
        let renewed = renewed.ok()["token"].as_str().unwrap().to_owned();
        api.event(&token, "esp32-001", "h-2", "BASIC", None)
            .await
            .assert_error(401);
        api.event(&renewed, "esp32-001", "h-2", "BASIC", None)
            .await
            .ok();
    }

    #[tokio::test]
    async fn with_the_reissue_flag_a_handshake_reissues_as_the_seed_does() {
        let api = Api::with(&[], &[("OZONE_HANDSHAKE_REISSUE", "true")]).await;
        let (admin, _) = api.users().await;
        let token = api.device(&admin, MAC, "esp32-001").await;
        let again = api
            .post("/handshake/", Auth::None, json!({"mac": MAC}))
            .await;
        assert_eq!(again.ok()["assigned"], true);
        let new = again.body["token"].as_str().unwrap();
        assert_ne!(new, token);
        api.event(&token, "esp32-001", "r-1", "BASIC", None)
            .await
            .assert_error(401);
        api.event(new, "esp32-001", "r-1", "BASIC", None).await.ok();
        assert!(
            again.body.get("iot").is_none(),
            "never a certificate on a repeat handshake"
        );
    }

    #[tokio::test]
    async fn csv_exports_neutralise_formulas_from_devices() {
        let api = Api::start().await;
        let (admin, viewer) = api.users().await;
        let token = api.device(&admin, MAC, "esp32-001").await;
        let attack = "=cmd|' /C calc'!A0";
        for (id, firmware) in [
            ("x-1", attack),
            ("x-2", "@SUM(1+1)*cmd|'/C calc'!A0"),
            ("x-3", "-2+3"),
        ] {
            let body = json!({"device_id": "esp32-001", "firmware": firmware, "event_id": id, "treatment": "BASIC", "counter": 3, "ts": "2025-09-16T12:00:00Z"});
            api.post("/device/events/", Auth::Bearer(&token), body)
                .await
                .ok();
        }
        let rows = api
            .get("/export/?device_id=esp32-001&days=3660", &admin)
            .await
            .csv();
        let firmware = rows[0].iter().position(|c| c == "firmware").unwrap();
        let counter = rows[0].iter().position(|c| c == "counter").unwrap();
        let cells: Vec<&str> = rows[1..].iter().map(|r| r[firmware].as_str()).collect();
        assert_eq!(
            cells,
            [
                format!("'{attack}"),
                "'@SUM(1+1)*cmd|'/C calc'!A0".into(),
                "'-2+3".into()
            ]
        );
        assert!(
            rows[1..].iter().all(|r| r[counter] == "3"),
            "numbers stay numbers"
        );
        // The stats export: labels and numbers, nothing a spreadsheet would evaluate.
        let stats = api
            .get(
                "/test/stats-export.csv?start=2025-09-16&end=2025-09-16&compare=true",
                &viewer,
            )
            .await
            .csv();
        assert_eq!(stats[1][0..2], ["2025-09-16", "3"]);
        assert!(
            stats
                .iter()
                .flatten()
                .all(|c| !c.starts_with(['=', '+', '@', '\t', '\r']))
        );
    }
}

/// Issue 15, items 7–8: a password change ends every older session; failed logins and
/// handshakes back off.
mod accounts {
    use super::*;

    fn cookie_of(r: &Resp) -> Session {
        let set = r.headers[header::SET_COOKIE].to_str().unwrap();
        Session(set.split(';').next().unwrap().to_owned())
    }

    async fn login(api: &Api, username: &str, password: &str) -> Resp {
        let body = json!({"username": username, "password": password});
        api.post("/auth/login/", Auth::None, body).await
    }

    #[tokio::test]
    async fn a_password_change_needs_the_current_one_and_ends_every_older_session() {
        let api = Api::start().await;
        let (_, viewer) = api.users().await;
        let laptop = api.login("viewer").await;
        let change =
            |current: Value| json!({"new_password": "a-new-secret-9", "current_password": current});
        let missing = api
            .post("/auth/password/", &viewer, change(Value::Null))
            .await;
        assert!(missing.assert_error(400)["current_password"].is_array());
        api.post("/auth/password/", &viewer, change("not-mine".into()))
            .await
            .assert_error(403);
        let done = api
            .post("/auth/password/", &viewer, change("password123".into()))
            .await;
        assert_eq!(done.ok()["user"]["username"], "viewer");
        let fresh = cookie_of(&done);
        // Both older sessions, this device's and the other's, are over.
        for old in [&viewer, &laptop] {
            api.get("/auth/user/", old).await.assert_error(401);
            let check = api.get("/auth/check/", old).await;
            assert_eq!(check.ok()["authenticated"], false);
        }
        assert_eq!(
            api.get("/auth/user/", &fresh).await.ok()["user"]["username"],
            "viewer"
        );
        login(&api, "viewer", "password123").await.assert_error(401);
        login(&api, "viewer", "a-new-secret-9").await.ok();
    }

    #[tokio::test]
    async fn failed_logins_back_off_with_retry_after() {
        let env = [("AUTH_BACKOFF_FREE", "2"), ("AUTH_BACKOFF_BASE_SECS", "60")];
        let api = Api::with(&[], &env).await;
        api.users().await;
        for _ in 0..3 {
            login(&api, "viewer", "wrong-guess").await.assert_error(401);
        }
        let locked = login(&api, "viewer", "password123").await;
        locked.assert_error(429);
        let wait: u64 = locked.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((55..=60).contains(&wait), "{wait}");
        login(&api, "admin", "password123").await.ok();
    }

    #[tokio::test]
    async fn guessed_device_tokens_back_off_per_mac() {
        let env = [("AUTH_BACKOFF_FREE", "2"), ("AUTH_BACKOFF_BASE_SECS", "60")];
        let api = Api::with(&[], &env).await;
        let (admin, _) = api.users().await;
        let token = api.device(&admin, MAC, "esp32-001").await;
        let hs = |auth| api.post("/handshake/", auth, json!({"mac": MAC}));
        for _ in 0..3 {
            hs(Auth::Bearer("guessed")).await.assert_error(401);
        }
        // Locked: the MAC's handshakes wait, even with the real token.
        let locked = hs(Auth::Bearer(&token)).await;
        locked.assert_error(429);
        assert!(locked.headers.contains_key("retry-after"));
        // Another device is not affected.
        api.device(&admin, "EC:E3:34:46:2B:C1", "esp32-002").await;
    }
}
