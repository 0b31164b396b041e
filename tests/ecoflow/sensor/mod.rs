//! `sensor/detect`, `carbon/stats` and the S3 upload path, with real photos.

use civic_testkit::http::Resp;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Api;

mod detect;
mod errors;
mod uploads;

/// A hand-counted photo from `./scripts/fixtures`: its bytes and how many people it shows.
pub(crate) fn photo(name: &str) -> (Vec<u8>, usize) {
    let (path, people) = civic_vision::fixtures::labelled()
        .into_iter()
        .find(|(p, _)| p.ends_with(name))
        .unwrap_or_else(|| panic!("{name} is not in the labelled set"));
    (std::fs::read(&path).unwrap(), people)
}

/// A `multipart/form-data` body: `(name, filename, bytes)` parts.
pub(crate) fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "civic-test-boundary-7d2f";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some(f) = filename {
            body.extend(format!("; filename=\"{f}\"\r\nContent-Type: image/jpeg").bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Api {
    pub(crate) async fn detect(&self, token: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Resp {
        let (kind, body) = multipart(parts);
        self.raw(Method::POST, "/sensor/detect/", token, &kind, body)
            .await
    }

    pub(crate) async fn detect_photo(
        &self,
        token: &str,
        zone: i64,
        camera: i64,
        photo: &[u8],
    ) -> Resp {
        let (z, c) = (zone.to_string(), camera.to_string());
        self.detect(
            token,
            &[
                ("zone_id", None, z.as_bytes()),
                ("camera_id", None, c.as_bytes()),
                ("file", Some("capture.jpg"), photo),
            ],
        )
        .await
    }

    pub(crate) async fn capacity(&self, admin: &str, zone: i64, capacity: i64) {
        self.put(
            &format!("/zones/{zone}/"),
            admin,
            json!({"capacity": capacity}),
        )
        .await
        .is(200);
    }

    /// Polls the zone's detections until there are `n` (uploads are counted in the background).
    pub(crate) async fn await_detections(&self, token: &str, zone: i64, n: usize) -> Vec<Value> {
        for _ in 0..600 {
            let list = self
                .get(&format!("/sensor/detections/?zone_id={zone}"), token)
                .await;
            let items = list.is(200).as_array().unwrap().clone();
            if items.len() >= n {
                return items;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("zone {zone} never had {n} detections");
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
