//! Black-box tests of Streetlight: the real `civic-local` binary over HTTP on 127.0.0.1.

use civic_testkit::api::{self, App};
use civic_testkit::http::Resp;
use civic_testkit::local::LocalServer;
use serde_json::{Value, json};

mod accounts;
mod admin;
mod auth;
mod control;
mod jwt;
mod lights;
mod live;
mod platform;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// Streetlight's mount point and its error envelope.
const APP: App = App {
    root: "/streetlight",
    api: "/streetlight/api",
    is_error: |b| b["status"].is_u64() && b["message"].is_string() && b["data"].is_null(),
    lagging: &["/lights/summary"],
};

// The shared client with Streetlight's fixtures.
civic_testkit::client!();

/// Streetlight's envelope: `{status, message, data}`.
pub(crate) trait Envelope {
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
    pub(crate) async fn start() -> Self {
        Self::with(&[]).await
    }
    pub(crate) async fn with(args: &[&str]) -> Self {
        Self::on(LocalServer::start(BIN, args).await)
    }
    /// The client for Streetlight on `server`.
    pub(crate) fn on(server: LocalServer) -> Self {
        Self(api::Api::new(server, APP))
    }

    pub(crate) async fn register(
        &self,
        name: &str,
        role: Option<&str>,
        token: Option<&str>,
    ) -> Resp {
        let mut body = json!({"name": name, "email": format!("{name}@example.com"), "password": "password123", "city": "Delhi"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        self.post("/auth/register", token, body).await
    }

    /// An admin (the first user), an operator and a viewer.
    pub(crate) async fn users(&self) -> (String, String, String) {
        let admin = self.register("admin", None, None).await;
        assert_eq!(admin.status, 201, "{}", admin.body);
        let admin = admin.data()["token"].as_str().unwrap().to_owned();
        let op = self.register("oper", Some("operator"), Some(&admin)).await;
        let viewer = self.register("viewer", None, None).await;
        (admin, token(&op), token(&viewer))
    }

    pub(crate) async fn create(&self, admin: &str, id: &str, city: &str) -> Resp {
        self.post("/lights/create", Some(admin), json!({"lightId": id, "name": format!("Light {id}"), "city": city, "latitude": 28.6139, "longitude": 77.2090, "address": "Main Road"})).await
    }
}

pub(crate) fn token(r: &Resp) -> String {
    assert!(r.status.is_success(), "{}", r.body);
    r.data()["token"].as_str().unwrap().to_owned()
}
