//! Black-box tests of Occupancy: the real `civic-local` binary over HTTP on 127.0.0.1, base URL
//! `/occupancy/api/occupancy`, with the seed's own request examples.

use chrono::{DateTime, SecondsFormat, Utc};
use civic_testkit::api::{self, App};
use civic_testkit::local::LocalServer;
use serde_json::{Value, json};

mod alerts;
mod aws;
mod bad_input;
mod cameras;
mod frames;
mod live;
mod push;
mod rollups;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// Occupancy's mount point and its error shape: `{"detail": "..."}` and nothing else.
const APP: App = App {
    root: "/occupancy",
    api: "/occupancy/api/occupancy",
    is_error: |b| b.as_object().is_some_and(|o| o.len() == 1) && b["detail"].is_string(),
    lagging: &["/facility"],
};

// The shared client with Occupancy's fixtures.
civic_testkit::client!();

impl Api {
    /// How many items the list at `path` holds.
    pub(crate) async fn count(&self, path: &str) -> usize {
        self.get(path, None).await.is(200).as_array().unwrap().len()
    }

    pub(crate) async fn start(env: &[(&str, &str)]) -> Self {
        Self::on(LocalServer::start_env(BIN, &[], env).await)
    }
    /// The client for Occupancy on `server`.
    pub(crate) fn on(server: LocalServer) -> Self {
        Self(api::Api::new(server, APP))
    }

    /// A camera and one line per direction: (camera id, entry line, exit line, bidirectional).
    pub(crate) async fn camera(&self, camera_id: &str, max: Option<i64>) -> (i64, i64, i64, i64) {
        let mut body = json!({"camera_id": camera_id, "camera_name": format!("{camera_id} camera"), "location": "Main Gate"});
        if let Some(m) = max {
            body["max_occupancy"] = m.into();
        }
        let cam = self.post("/cameras", None, body).await.is(201)["id"]
            .as_i64()
            .unwrap();
        let mut lines = Vec::new();
        for dir in ["entry", "exit", "bidirectional"] {
            let line = self
                .post("/lines", None, json!({"camera_id": cam, "line_name": dir, "x1": 0, "y1": 300, "x2": 1920, "y2": 300, "direction": dir, "confidence_threshold": 0.5}))
                .await;
            lines.push(line.is(201)["id"].as_i64().unwrap());
        }
        (cam, lines[0], lines[1], lines[2])
    }

    pub(crate) async fn events(&self, cam: i64, events: Vec<Value>) -> i64 {
        let res = self
            .post(
                &format!("/cameras/{cam}/events"),
                None,
                json!({"events": events}),
            )
            .await;
        res.is(202)["accepted"].as_i64().unwrap()
    }
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

pub(crate) fn cross(line: i64, dir: &str, t: DateTime<Utc>, track: Option<i64>) -> Value {
    json!({"line_id": line, "direction": dir, "timestamp": ts(t), "confidence": 0.9, "track_id": track})
}

/// Days from `t` to now, plus a margin: the `days` that reaches back to `t`.
pub(crate) fn days_since(t: DateTime<Utc>) -> i64 {
    (Utc::now() - t).num_days() + 2
}
