//! Automatic alerts (what the image analysis will raise): one open alert per source and type,
//! through acknowledgement, until it is closed.

use axum::body::Body;
use civic_core::{Limits, Platform};
use civic_store::Backend;
use ecoflow::alerts::{Raised, raise_auto};
use ecoflow::sites::{Zone, load_tree};
use http::StatusCode;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

struct Env {
    p: Platform,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let p = Platform::local(
            dir.path(),
            Backend::embedded(dir.path()).unwrap(),
            Limits::default().unlimited_rate(),
        )
        .unwrap();
        let mut extra = Map::new();
        extra.insert("email".into(), "admin@example.com".into());
        let auth = civic_auth::Auth::for_app(&p, "ecoflow");
        let admin = auth.access_token("1", "ADMIN", extra).unwrap();
        Self {
            p,
            admin,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        f: &civic_core::Function,
        method: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.admin))
            .body(Body::from(body.to_string()))
            .unwrap();
        let (router, _) = f.build(&self.p);
        let res = civic_core::layers::into_service(router)
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn zone(&self) -> Zone {
        let (s, org) = self
            .call(
                &ecoflow::SITES,
                "POST",
                "/api/organizations",
                json!({"name": "HQ"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        let body = json!({"name": "Main Hall", "capacity": 100, "organization_id": org["id"]});
        let (s, zone) = self.call(&ecoflow::SITES, "POST", "/api/zones", body).await;
        assert_eq!(s, StatusCode::CREATED);
        let table = self.p.table("ecoflow");
        let tree = load_tree(table.as_ref(), org["id"].as_i64().unwrap())
            .await
            .unwrap()
            .unwrap();
        let id = zone["id"].as_i64().unwrap();
        tree.zone(id).unwrap().zone.clone()
    }
}

impl Env {
    /// Raises the automatic `kind` alert of `zone` (of one of its cameras when `camera` is set).
    async fn raise(&self, zone: &Zone, camera: Option<i64>, kind: &str) -> Raised {
        raise_auto(
            &ecoflow::State::new(&self.p),
            zone,
            camera,
            kind,
            "Overcrowding in Main Hall",
            "Detected 95/100 people.",
        )
        .await
        .unwrap()
    }

    /// A call to the alerts function as the admin.
    async fn alerts(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(&ecoflow::ALERTS, method, path, body).await
    }

    /// Sets alert `id`'s status with a PUT.
    async fn set_status(&self, id: i64, status: &str) -> (StatusCode, Value) {
        let path = format!("/api/alerts/{id}");
        self.alerts("PUT", &path, json!({ "status": status })).await
    }
}

fn created(r: Raised) -> i64 {
    match r {
        Raised::Created(a) => a.id,
        Raised::AlreadyOpen(a) => panic!("alert {} was already open", a.id),
    }
}

fn already_open(r: Raised) -> i64 {
    match r {
        Raised::AlreadyOpen(a) => a.id,
        Raised::Created(a) => panic!("alert {} was created", a.id),
    }
}

#[tokio::test]
async fn automatic_alerts_are_deduplicated_per_source_and_type_while_open() {
    let env = Env::new();
    let zone = env.zone().await;

    let first = created(env.raise(&zone, None, "OVERCROWDING").await);
    assert_eq!(
        already_open(env.raise(&zone, None, "OVERCROWDING").await),
        first
    );
    // Another type, or another source (a camera), is another alert.
    let other_type = created(env.raise(&zone, None, "CAMERA_OFFLINE").await);
    let per_camera = created(env.raise(&zone, Some(7), "OVERCROWDING").await);
    assert_eq!(
        already_open(env.raise(&zone, Some(7), "OVERCROWDING").await),
        per_camera
    );
    assert!(first != other_type && first != per_camera);

    // Listed under its organization, as automatic.
    let path = format!("/api/alerts?org_id={}", zone.organization_id);
    let (s, list) = env.alerts("GET", &path, Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 3);
    assert_eq!(list[2]["alert_type"], "OVERCROWDING");
    assert_eq!(list[2]["zone_id"], zone.id);
}

#[tokio::test]
async fn an_automatic_alert_stays_open_until_closed_and_reopens_only_when_its_type_is_free() {
    let env = Env::new();
    let zone = env.zone().await;
    let first = created(env.raise(&zone, None, "OVERCROWDING").await);

    // Acknowledged is still open; closed frees the type for a new alert.
    let ack = format!("/api/alerts/{first}/acknowledge");
    let (s, _) = env.alerts("POST", &ack, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        already_open(env.raise(&zone, None, "OVERCROWDING").await),
        first
    );
    let (s, _) = env.set_status(first, "CLOSED").await;
    assert_eq!(s, StatusCode::OK);
    let second = created(env.raise(&zone, None, "OVERCROWDING").await);
    assert_ne!(second, first);

    // The old alert cannot be reopened while the new one is open (409); once that one is
    // deleted, it can, and it takes the type back.
    let (s, body) = env.set_status(first, "OPEN").await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let path = format!("/api/alerts/{second}");
    let (s, _) = env.alerts("DELETE", &path, Value::Null).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = env.set_status(first, "OPEN").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        already_open(env.raise(&zone, None, "OVERCROWDING").await),
        first
    );
}
