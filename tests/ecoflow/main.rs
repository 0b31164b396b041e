//! Black-box tests of EcoFlow: the real `civic-local` binary over HTTP on 127.0.0.1, base URL
//! `/ecoflow/api`, with the seed's own request examples. Every role is tried on every group.

use civic_testkit::api::{self, App, Auth};
use civic_testkit::http::Resp;
use civic_testkit::local::LocalServer;
use serde_json::{Value, json};

mod alerts;
mod auth;
mod hierarchy;
mod live;
mod notifications;
mod sensor;
mod sites;
mod status;
mod validation;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// EcoFlow's mount point; its errors are DRF's.
const APP: App = App {
    root: "/ecoflow",
    api: "/ecoflow/api",
    is_error: api::drf_error,
    lagging: &[],
};

// The shared client with EcoFlow's fixtures.
civic_testkit::client!();

pub(crate) trait Expect {
    fn field(&self, field: &str) -> &str;
}

impl Expect for Resp {
    /// A 400 whose body lists messages for `field` (DRF's `{"field": ["msg"]}`).
    #[track_caller]
    fn field(&self, field: &str) -> &str {
        let body = self.is(400);
        assert!(body.get("detail").is_none(), "{}", self.text);
        body[field][0]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} error: {}", self.text))
    }
}

impl Api {
    pub(crate) async fn start() -> Self {
        Self(api::Api::new(LocalServer::start(BIN, &[]).await, APP))
    }

    pub(crate) async fn register(
        &self,
        email: &str,
        role: Option<&str>,
        by: impl Into<Auth<'_>>,
    ) -> Resp {
        let mut body = json!({"email": email, "password": "securepassword123", "first_name": "Jane", "last_name": "Doe"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        self.post("/auth/register/", by, body).await
    }

    pub(crate) async fn login(&self, email: &str) -> Value {
        self.post(
            "/auth/login/",
            None,
            json!({"email": email, "password": "securepassword123"}),
        )
        .await
        .is(200)
        .clone()
    }

    /// (admin access token, user access token)
    pub(crate) async fn admin_and_user(&self) -> (String, String) {
        self.register("admin@example.com", None, None).await.is(201);
        self.register("user@example.com", None, None).await.is(201);
        let admin = self.login("admin@example.com").await["access"]
            .as_str()
            .unwrap()
            .to_owned();
        let user = self.login("user@example.com").await["access"]
            .as_str()
            .unwrap()
            .to_owned();
        (admin, user)
    }

    pub(crate) async fn org(&self, admin: &str, name: &str) -> i64 {
        let body = json!({"name": name, "org_type": "Corporate", "total_capacity": 500, "latitude": 34.0522, "longitude": -118.2437});
        id(self.post("/organizations/", admin, body).await.is(201))
    }
    pub(crate) async fn zone(&self, admin: &str, org: i64, name: &str) -> i64 {
        let body = json!({"name": name, "zone_type": "Entrance", "capacity": 50, "latitude": "34.0522", "longitude": "-118.2437", "organization_id": org});
        id(self.post("/zones/", admin, body).await.is(201))
    }
    pub(crate) async fn camera(&self, admin: &str, zone: i64, name: &str) -> i64 {
        let body = json!({"name": name, "is_active": true, "zone_id": zone});
        id(self.post("/cameras/", admin, body).await.is(201))
    }
}

pub(crate) fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

pub(crate) fn ids(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(id).collect()
}
