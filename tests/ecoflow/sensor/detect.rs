//! `sensor/detect` counts the people on a real photo, records carbon for a NORMAL zone and
//! raises one overcrowding alert for a zone at capacity.

use reqwest::Method;
use serde_json::{Value, json};

use super::{multipart, photo, round2};
use crate::{Api, ids};

/// A running EcoFlow with an organization, a Lobby for 100 and a Main Hall, a camera in each,
/// and a hand-counted photo of a crowd.
struct Scene {
    api: Api,
    admin: String,
    user: String,
    org: i64,
    lobby: i64,
    hall: i64,
    lobby_cam: i64,
    hall_cam: i64,
    frame: Vec<u8>,
    people: usize,
}

impl Scene {
    async fn new() -> Self {
        let api = Api::start().await;
        let (admin, user) = api.admin_and_user().await;
        let org = api.org(&admin, "Tech Corp HQ").await;
        let (lobby, hall) = (
            api.zone(&admin, org, "Lobby").await,
            api.zone(&admin, org, "Main Hall").await,
        );
        api.capacity(&admin, lobby, 100).await;
        let (lobby_cam, hall_cam) = (
            api.camera(&admin, lobby, "Front Desk Cam").await,
            api.camera(&admin, hall, "Hall Cam").await,
        );
        let (frame, people) = photo("vtest-0140.jpg");
        Self {
            api,
            admin,
            user,
            org,
            lobby,
            hall,
            lobby_cam,
            hall_cam,
            frame,
            people,
        }
    }

    /// The crowd, as the user's camera in `zone` sends it.
    async fn detect(&self, zone: i64, camera: i64) -> Value {
        let res = self.api.detect_photo(&self.user, zone, camera, &self.frame);
        res.await.is(200).clone()
    }

    /// Scenario A: 9 people in a zone for 100, twice. Returns the count and the carbon stats.
    async fn a_normal_crowd_records_carbon(&self) -> (i64, Value) {
        let (api, user, people) = (&self.api, &self.user, self.people);
        let a = self.detect(self.lobby, self.lobby_cam).await;
        let sahi = a["detected_people"].as_i64().unwrap();
        assert!(
            (sahi - people as i64).abs() <= 2,
            "counted {sahi}, the photo shows {people}"
        );
        let second = a["carbon_data"]["gemini_count"].as_i64().unwrap();
        assert!(
            (second - people as i64).abs() <= 4,
            "CenterNet counted {second} of {people}"
        );
        let saved = round2(sahi as f64 / second as f64);
        assert_eq!(
            a,
            json!({
                "zone": "Lobby", "capacity": 100, "detected_people": sahi,
                "occupancy_percentage": format!("{:.1}%", sahi as f64), "status": "NORMAL",
                "carbon_data": {
                    "filename": "capture.jpg", "sahi_count": sahi, "gemini_count": second,
                    "calculation_result": saved, "formula": format!("{sahi} / {second} rounded"),
                    "message": "Prediction successful via CenterNet",
                },
                "alert_created": false, "detection_id": a["detection_id"],
            })
        );
        self.detect(self.lobby, self.lobby_cam).await;
        let stats = api.get("/carbon/stats/", user).await.is(200).clone();
        assert_eq!(
            stats["summary"],
            json!({"total_saved_all_time": round2(2.0 * saved), "average_per_detection": saved})
        );
        let history = stats["recent_history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(
            (&history[0]["zone"], &history[0]["saved"]),
            (&json!("Lobby"), &json!(saved))
        );
        let date = history[0]["date"].as_str().unwrap();
        assert_eq!(
            (date.len(), &date[4..5], &date[10..11], &date[13..14]),
            (16, "-", " ", ":"),
            "{date}"
        );
        (sahi, stats)
    }

    /// Scenario B: the same crowd in a zone for as many people is DANGER; one open alert.
    /// Returns the first DANGER answer.
    async fn a_crowd_at_capacity_raises_one_open_alert(&self, sahi: i64) -> Value {
        let (api, admin, user) = (&self.api, &self.admin, &self.user);
        let (org, hall, hall_cam) = (self.org, self.hall, self.hall_cam);
        api.capacity(admin, hall, sahi).await;
        let b = self.detect(hall, hall_cam).await;
        let alert = b["alert_id"].as_i64().unwrap();
        assert_eq!(
            b,
            json!({
                "zone": "Main Hall", "capacity": sahi, "detected_people": sahi,
                "occupancy_percentage": "100.0%", "status": "DANGER", "alert_created": true,
                "carbon_message": "Skipped Gemini calculation due to overcrowding.",
                "alert_id": alert, "detection_id": b["detection_id"],
            })
        );
        let again = self.detect(hall, hall_cam).await;
        assert_eq!(
            (&again["alert_created"], &again["alert_id"]),
            (&json!(false), &json!(alert))
        );
        let open = api
            .get(&format!("/alerts/?status=OPEN&org_id={org}"), user)
            .await
            .is(200)
            .clone();
        assert_eq!(ids(&open), [alert]);
        assert_eq!(open[0]["heading"], "Overcrowding in Main Hall");
        assert_eq!(
            open[0]["sub_heading"],
            format!("Detected {sahi}/{sahi} people. (Cam: {hall_cam})")
        );
        assert_eq!(open[0]["alert_type"], "OVERCROWDING");
        // Closing it lets the next crowd raise a new one.
        api.post(&format!("/alerts/{alert}/close/"), admin, json!({}))
            .await
            .is(200);
        let third = self.detect(hall, hall_cam).await;
        assert_eq!(third["alert_created"], true);
        assert_ne!(third["alert_id"], alert);
        b
    }

    /// DANGER recorded no carbon; the zone filter reads that zone's totals.
    async fn carbon_stats_hold_the_normal_frames_by_zone(&self, stats: &Value) {
        let (api, user, lobby, hall) = (&self.api, &self.user, self.lobby, self.hall);
        let all = api.get("/carbon/stats/", user).await.is(200).clone();
        assert_eq!(all["summary"], stats["summary"]);
        let hall_stats = api
            .get(&format!("/carbon/stats/?zone_id={hall}"), user)
            .await
            .is(200)
            .clone();
        assert_eq!(
            hall_stats,
            json!({"summary": {"total_saved_all_time": 0.0, "average_per_detection": 0.0}, "recent_history": []})
        );
        let lobby_stats = api
            .get(&format!("/carbon/stats/?zone_id={lobby}"), user)
            .await
            .is(200)
            .clone();
        assert_eq!(lobby_stats, all);
    }

    /// Every frame is a detection, newest first, its image kept under the camera's prefix.
    async fn every_frame_is_a_kept_detection(&self, b: &Value) {
        let (api, user) = (&self.api, &self.user);
        let (hall, hall_cam) = (self.hall, self.hall_cam);
        let hall_list = api.await_detections(user, hall, 3).await;
        assert_eq!(hall_list.len(), 3);
        assert_eq!(hall_list[2]["detection_id"], Value::Null);
        assert_eq!(hall_list[2]["id"], b["detection_id"]);
        assert!(hall_list.iter().all(|d| d["status"] == "DANGER"
            && d["gemini_count"].is_null()
            && d["source"] == "DETECT"));
        let key = hall_list[0]["image_key"].as_str().unwrap();
        assert!(
            key.starts_with(&format!("ecoflow/zones/{hall}/cameras/{hall_cam}/frames/")),
            "{key}"
        );
        let kept = std::fs::read(api.server.data_dir.join("blobs/objects").join(key)).unwrap();
        assert!(
            kept.ends_with(&self.frame),
            "the kept frame is not the upload"
        );
        let everything = api.get("/sensor/detections/?limit=4", user).await;
        assert_eq!(everything.is(200).as_array().unwrap().len(), 4);
        assert!(everything.headers.contains_key("x-next-cursor"));
    }
}

#[tokio::test]
async fn sensor_detect_counts_real_photos_records_carbon_and_raises_overcrowding() {
    let scene = Scene::new().await;
    let (sahi, stats) = scene.a_normal_crowd_records_carbon().await;
    let b = scene.a_crowd_at_capacity_raises_one_open_alert(sahi).await;
    scene
        .carbon_stats_hold_the_normal_frames_by_zone(&stats)
        .await;
    scene.every_frame_is_a_kept_detection(&b).await;

    // Reads and writes need a token.
    let api = &scene.api;
    api.get("/carbon/stats/", None).await.detail(401);
    let (kind, body) = multipart(&[("zone_id", None, b"1")]);
    api.raw(Method::POST, "/sensor/detect/", None, &kind, body)
        .await
        .detail(401);
}
