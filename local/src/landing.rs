//! The root URL: what is running here. A person who opens `http://127.0.0.1:8000/` sees each
//! app's base URL, Swagger UI and OpenAPI document, whether the store and the person detector
//! work, the version and the MQTT device port. `/_local/health` is the same as JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use civic_core::Platform;
use civic_store::Key;
use serde::Serialize;

use crate::preflight::Detector;

/// Each app's seed base path under its `/{app}` prefix, and its product name.
pub const APPS: &[(&str, &str, &str)] = &[
    ("streetlight", "Streetlight", "/api"),
    ("ozone", "Ozone", "/api"),
    ("occupancy", "Occupancy", "/api/occupancy"),
    ("homeforge", "HomeForge", "/api"),
    ("ecoflow", "EcoFlow", "/api"),
];

#[derive(Clone)]
pub struct Landing {
    pub platform: Platform,
    pub detector: Arc<Detector>,
    /// The device port, e.g. `mqtt://127.0.0.1:1883`.
    pub mqtt: String,
    /// The per-IP rate limits, as text: the seeds' open mode is stated, not hidden.
    pub rate_limit: String,
    /// Whether Occupancy's routes want a token ([`occupancy_access`]).
    pub occupancy_access: String,
    /// The change-feed followers ([`crate::streams`]), by function.
    pub streams: BTreeMap<&'static str, crate::streams::Progress>,
}

/// Occupancy's access mode as the landing page and the start-up log state it: open locally
/// unless `OCCUPANCY_REQUIRE_AUTH=true`; the deployed default is the template's.
pub fn occupancy_access(template: &str) -> String {
    let deployed =
        match crate::template::parameter_default(template, "OccupancyRequireAuth").as_deref() {
            Some("true") => "closed (template OccupancyRequireAuth defaults to true)",
            _ => "OPEN (template OccupancyRequireAuth defaults to false)",
        };
    // Read after the start-up check (preflight::config), so a bad value never gets here.
    if occupancy::Config::get().is_ok_and(|c| c.require_auth) {
        format!("closed: every route needs an occupancy bearer token; deployed: {deployed}")
    } else {
        format!(
            "open: every route, writes included, answers without a token, as in the seed \
             (OCCUPANCY_REQUIRE_AUTH=true closes it); deployed: {deployed}"
        )
    }
}

#[derive(Serialize)]
struct Health {
    version: &'static str,
    /// `ok`, or what failed.
    store: String,
    detector: String,
    mqtt: String,
    rate_limit: String,
    occupancy_access: String,
    apps: Vec<AppLinks>,
    /// Per stream function: when (epoch ms) it last found its feed drained; every change
    /// committed before then has been applied.
    streams: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct AppLinks {
    name: &'static str,
    title: &'static str,
    base: String,
    docs: String,
    openapi: String,
}

pub fn router(landing: Landing) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/_local/health", get(health_json))
        .with_state(landing)
}

impl Landing {
    async fn health(&self) -> Health {
        // A read of a key no app writes: it proves the store answers without touching data.
        let probe = Key::new("CIVIC#HEALTH", "CIVIC#HEALTH");
        let store = match self.platform.table(APPS[0].0).get(&probe).await {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("failing: {e}"),
        };
        let d = &self.detector;
        Health {
            version: env!("CARGO_PKG_VERSION"),
            store,
            detector: format!(
                "ok: ONNX Runtime {} with the models in {}",
                d.runtime.display(),
                d.models.display()
            ),
            mqtt: self.mqtt.clone(),
            streams: self
                .streams
                .iter()
                .map(|(f, p)| (*f, p.caught_up_at()))
                .collect(),
            rate_limit: self.rate_limit.clone(),
            occupancy_access: self.occupancy_access.clone(),
            apps: APPS
                .iter()
                .map(|&(name, title, base)| AppLinks {
                    name,
                    title,
                    base: format!("/{name}{base}"),
                    docs: format!("/{name}/docs/"),
                    openapi: format!("/{name}/openapi.json"),
                })
                .collect(),
        }
    }
}

async fn health_json(State(l): State<Landing>) -> axum::Json<Health> {
    axum::Json(l.health().await)
}

async fn page(State(l): State<Landing>) -> Html<String> {
    let h = l.health().await;
    let rows: String = h
        .apps
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td><code>{base}</code></td>\
                 <td><a href=\"{docs}\">Swagger UI</a></td>\
                 <td><a href=\"{spec}\">openapi.json</a></td></tr>",
                a.title,
                base = a.base,
                docs = a.docs,
                spec = a.openapi
            )
        })
        .collect();
    Html(format!(
        include_str!("landing.html"),
        version = h.version,
        store = escape(&h.store),
        detector = escape(&h.detector),
        mqtt = escape(&h.mqtt),
        rate_limit = escape(&h.rate_limit),
        occupancy_access = escape(&h.occupancy_access),
        rows = rows,
    ))
}

/// Store errors and paths are shown as text, never as markup.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
