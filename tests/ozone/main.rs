//! Black-box tests of Ozone: the real `civic-local` binary over HTTP on 127.0.0.1.

use civic_testkit::api::{self, App, Auth};
use civic_testkit::http::Resp;
use civic_testkit::local::LocalServer;
use reqwest::header;
use serde_json::{Value, json};

mod accounts;
mod auth;
mod device_identity;
mod export;
mod handshake;
mod ingest;
mod live;
mod machines;
mod outlets;
mod platform;
mod roles;
mod stats;
mod telemetry;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// Ozone's mount point and its error shape.
const APP: App = App {
    root: "/ozone",
    api: "/ozone/api",
    is_error: |b| b["success"] == false && b["error"].is_string(),
    lagging: &[
        "/test/stats",
        "/events/analytics",
        "/devices-data",
        "/flush",
    ],
};

/// The content type of the firmware's `/iot/` posts.
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

// The shared client with Ozone's fixtures.
civic_testkit::client!();

/// A signed-in user: the `Cookie` header of the session, e.g. `ozone_sessionid=...`.
pub(crate) struct Session(pub(crate) String);

impl<'a> From<&'a Session> for Auth<'a> {
    fn from(session: &'a Session) -> Self {
        Auth::Cookie(&session.0)
    }
}

/// Ozone's error shape and CSV bodies.
pub(crate) trait OzoneResp {
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

pub(crate) const MAC: &str = "EC:E3:34:46:2B:C0";

impl Api {
    pub(crate) async fn start() -> Self {
        Self::with(&[], &[]).await
    }
    pub(crate) async fn with(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::on(LocalServer::start_env(BIN, args, env).await)
    }
    /// The client for Ozone on `server`.
    pub(crate) fn on(server: LocalServer) -> Self {
        Self(api::Api::new(server, APP))
    }

    pub(crate) async fn register(
        &self,
        username: &str,
        extra: Value,
        auth: impl Into<Auth<'_>>,
    ) -> Resp {
        let mut body = json!({"username": username, "password": "password123", "email": format!("{username}@example.com"), "first_name": "F", "last_name": "L"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.post("/auth/register/", auth, body).await
    }

    /// Logs in and returns the session.
    pub(crate) async fn login(&self, username: &str) -> Session {
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
    pub(crate) async fn users(&self) -> (Session, Session) {
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
    pub(crate) async fn device(&self, admin: &Session, mac: &str, device_id: &str) -> String {
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

    pub(crate) async fn event(
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

pub(crate) fn series(stats: &Value, name: &str) -> Vec<f64> {
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
