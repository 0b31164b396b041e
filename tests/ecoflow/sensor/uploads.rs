//! The S3 upload path: a presigned PUT, and S3's event counting the frame once, in the
//! background.

use reqwest::Client;
use serde_json::{Value, json};

use super::photo;
use crate::{Api, Expect};

/// A running EcoFlow with zones Lobby and Dock (100 each), a camera in each, and a photo.
struct Scene {
    api: Api,
    user: String,
    zone: i64,
    other: i64,
    cam: i64,
    other_cam: i64,
    frame: Vec<u8>,
}

impl Scene {
    async fn new() -> Self {
        let api = Api::start().await;
        let (admin, user) = api.admin_and_user().await;
        let org = api.org(&admin, "HQ").await;
        let (zone, other) = (
            api.zone(&admin, org, "Lobby").await,
            api.zone(&admin, org, "Dock").await,
        );
        api.capacity(&admin, zone, 100).await;
        api.capacity(&admin, other, 100).await;
        let (cam, other_cam) = (
            api.camera(&admin, zone, "A").await,
            api.camera(&admin, other, "B").await,
        );
        let (frame, _) = photo("vtest-0070.jpg");
        Self {
            api,
            user,
            zone,
            other,
            cam,
            other_cam,
            frame,
        }
    }

    /// A presigned upload of the frame from the Lobby's camera.
    async fn presign(&self) -> Value {
        let body = json!({"zone_id": self.zone, "camera_id": self.cam, "content_length": self.frame.len()});
        let res = self.api.post("/sensor/uploads/", &self.user, body).await;
        res.is(201).clone()
    }

    /// Presigns, PUTs the frame and waits for its count, which equals `sensor/detect`'s.
    /// Returns the upload URL.
    async fn an_uploaded_frame_is_counted_as_detect_counts_it(&self) -> String {
        let (api, user, zone, cam) = (&self.api, &self.user, self.zone, self.cam);
        let frame = &self.frame;
        let upload = self.presign().await;
        let key = upload["key"].as_str().unwrap();
        assert!(
            key.starts_with(&format!("ecoflow/zones/{zone}/cameras/{cam}/uploads/"))
                && key.ends_with(".jpg"),
            "{key}"
        );
        assert_eq!(
            (&upload["method"], &upload["headers"]),
            (
                &json!("PUT"),
                &json!({"Content-Type": "image/jpeg", "Content-Length": frame.len().to_string()})
            )
        );
        assert!(upload["expires_at"].is_string());
        let url = upload["url"].as_str().unwrap();
        assert!(url.starts_with(&api.server.url("/_uploads/")), "{url}");

        // The camera PUTs the frame; S3's event (civic-local's, here) counts it in the background.
        let res = put(url, frame.clone()).await;
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key("etag"));
        let counted = api.await_detections(user, zone, 1).await;
        assert_eq!(
            (
                &counted[0]["source"],
                &counted[0]["image_key"],
                &counted[0]["status"]
            ),
            (&json!("UPLOAD"), &json!(key), &json!("NORMAL"))
        );
        // The same frame through sensor/detect gets the same count: one domain function.
        let direct = api
            .detect_photo(user, self.other, self.other_cam, frame)
            .await
            .is(200)
            .clone();
        assert_eq!(counted[0]["detected_people"], direct["detected_people"]);
        assert_eq!(
            counted[0]["gemini_count"],
            direct["carbon_data"]["gemini_count"]
        );
        url.to_owned()
    }

    /// The same object again (same key and content): S3 would send the event again; it counts
    /// once. A fresh upload after it is counted, and then the zone has exactly two.
    async fn the_same_object_again_counts_once(&self, url: &str) {
        let (api, user, zone, frame) = (&self.api, &self.user, self.zone, &self.frame);
        assert_eq!(put(url, frame.clone()).await.status(), 200);
        let next = self.presign().await;
        put(next["url"].as_str().unwrap(), frame.clone()).await;
        let both = api.await_detections(user, zone, 2).await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert_eq!(
            api.await_detections(user, zone, 2).await.len(),
            2,
            "{both:?}"
        );
        let stats = api
            .get(&format!("/carbon/stats/?zone_id={zone}"), user)
            .await
            .is(200)
            .clone();
        assert_eq!(stats["recent_history"].as_array().unwrap().len(), 2);
    }

    /// A tampered URL or key is refused; nothing is written.
    async fn tampered_urls_are_refused(&self, url: &str) {
        let (cam, other_cam, frame) = (self.cam, self.other_cam, &self.frame);
        let forged = url.replace("signature=", "signature=AAAA");
        assert_eq!(put(&forged, frame.clone()).await.status(), 403);
        let moved = url.replace(
            &format!("/cameras/{cam}/"),
            &format!("/cameras/{other_cam}/"),
        );
        assert_eq!(put(&moved, frame.clone()).await.status(), 403);
        let other = self.api.await_detections(&self.user, self.other, 1).await;
        assert_eq!(other.len(), 1);
    }
}

/// The camera's PUT of `body` to a presigned `url`.
async fn put(url: &str, body: Vec<u8>) -> reqwest::Response {
    Client::new()
        .put(url)
        .header("content-type", "image/jpeg")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn uploaded_frames_are_counted_once_from_the_s3_event() {
    let scene = Scene::new().await;
    let url = scene
        .an_uploaded_frame_is_counted_as_detect_counts_it()
        .await;
    scene.the_same_object_again_counts_once(&url).await;
    scene.tampered_urls_are_refused(&url).await;
}

#[tokio::test]
async fn presigning_checks_the_camera_as_sensor_detect_does() {
    let Scene {
        api,
        user,
        zone,
        cam,
        other_cam,
        ..
    } = Scene::new().await;
    let wrong = api
        .post(
            "/sensor/uploads/",
            &user,
            json!({"zone_id": zone, "camera_id": other_cam, "content_length": 1}),
        )
        .await;
    assert_eq!(
        wrong.field("camera_id"),
        format!("Camera {other_cam} is not in zone {zone}.")
    );
    let kind = api
        .post(
            "/sensor/uploads/",
            &user,
            json!({"zone_id": zone, "camera_id": cam, "content_type": "text/html", "content_length": 1}),
        )
        .await;
    assert_eq!(
        kind.field("content_type"),
        "\"text/html\" is not a valid choice."
    );
    api.post("/sensor/uploads/", None, json!({}))
        .await
        .detail(401);
}
