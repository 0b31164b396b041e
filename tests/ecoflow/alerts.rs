//! Alerts: raised by hand for a zone or a camera, listed and filtered, acknowledged, closed,
//! reopened and deleted.

use civic_testkit::api::Auth;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, Expect, id, ids};

/// Two organizations with a zone each, a camera in the first, and four alerts by hand: a
/// drill (no site), an overcrowding of the camera, a spill in the other zone, and one born
/// closed, created in that order.
struct Scene {
    admin: String,
    user: String,
    org: i64,
    other: i64,
    zone: i64,
    other_zone: i64,
    cam: i64,
    drill: Value,
    crowd: Value,
    elsewhere: i64,
    closed_at_birth: Value,
}

async fn scene(api: &Api) -> Scene {
    let (admin, user) = api.admin_and_user().await;
    let a = Auth::Bearer(&admin);
    let org = api.org(&admin, "HQ").await;
    let other = api.org(&admin, "Other").await;
    let zone = api.zone(&admin, org, "Main Hall").await;
    let other_zone = api.zone(&admin, other, "Hall").await;
    let cam = api.camera(&admin, zone, "Cam").await;
    // The seed's example, and alerts tied to a zone or a camera.
    let drill = api.post("/alerts/", a, json!({"heading": "Fire Drill", "sub_heading": "Scheduled drill at 2 PM.", "status": "OPEN"})).await;
    let drill = drill.is(201).clone();
    let crowd = api.post("/alerts/", a, json!({"heading": "Overcrowding in Main Hall", "sub_heading": "Detected 120/100 people. (Cam: 101)", "camera_id": cam})).await;
    let crowd = crowd.is(201).clone();
    let elsewhere = id(api
        .post(
            "/alerts/",
            a,
            json!({"heading": "Spill", "zone_id": other_zone}),
        )
        .await
        .is(201));
    let closed_at_birth = api
        .post("/alerts/", a, json!({"heading": "Old", "status": "CLOSED"}))
        .await;
    let closed_at_birth = closed_at_birth.is(201).clone();
    Scene {
        admin,
        user,
        org,
        other,
        zone,
        other_zone,
        cam,
        drill,
        crowd,
        elsewhere,
        closed_at_birth,
    }
}

#[tokio::test]
async fn alerts_by_hand_store_the_organization_of_their_zone_or_camera() {
    let api = Api::start().await;
    let s = scene(&api).await;
    let a = Auth::Bearer(&s.admin);
    let (drill, crowd) = (&s.drill, &s.crowd);
    let (org, zone, cam, other_zone) = (s.org, s.zone, s.cam, s.other_zone);
    // The seed's example, and alerts tied to a zone or a camera (their organization is stored).
    assert_eq!(
        (
            &drill["heading"],
            &drill["status"],
            &drill["alert_type"],
            &drill["organization_id"]
        ),
        (
            &json!("Fire Drill"),
            &json!("OPEN"),
            &json!("MANUAL"),
            &Value::Null
        )
    );
    assert_eq!(drill["created_at"], drill["updated_at"]);
    assert_eq!(
        (
            &crowd["organization_id"],
            &crowd["zone_id"],
            &crowd["camera_id"]
        ),
        (&json!(org), &json!(zone), &json!(cam))
    );
    let res = api
        .post(
            "/alerts/",
            a,
            json!({"heading": "H", "zone_id": other_zone, "camera_id": cam}),
        )
        .await;
    assert_eq!(res.field("zone_id"), "The camera is not in this zone.");
    assert_eq!(
        api.post("/alerts/", a, json!({"heading": "H", "zone_id": 999}))
            .await
            .field("zone_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    assert_eq!(
        api.post("/alerts/", a, json!({"sub_heading": "H"}))
            .await
            .field("heading"),
        "This field is required."
    );
    assert_eq!(s.closed_at_birth["closed_by"], 1);
}

#[tokio::test]
async fn alert_lists_are_newest_first_and_filter_by_status_and_organization() {
    let api = Api::start().await;
    let s = scene(&api).await;
    let u = Auth::Bearer(&s.user);
    let (org, other, elsewhere) = (s.org, s.other, s.elsewhere);
    // Listing: newest first; status and organization filters combine.
    let (d, c, cl) = (id(&s.drill), id(&s.crowd), id(&s.closed_at_birth));
    assert_eq!(
        ids(api.get("/alerts/", u).await.is(200)),
        [cl, elsewhere, c, d]
    );
    assert_eq!(
        ids(api.get("/alerts/?status=OPEN", u).await.is(200)),
        [elsewhere, c, d]
    );
    assert_eq!(
        ids(api.get("/alerts/?status=CLOSED", u).await.is(200)),
        [cl]
    );
    assert_eq!(
        ids(api.get(&format!("/alerts/?org_id={org}"), u).await.is(200)),
        [c]
    );
    assert_eq!(
        ids(api
            .get(&format!("/alerts/?org_id={other}&status=OPEN"), u)
            .await
            .is(200)),
        [elsewhere]
    );
    let first = api.get("/alerts/?limit=2", u).await;
    assert_eq!(ids(first.is(200)), [cl, elsewhere]);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/alerts/?limit=2&cursor={cursor}"), u)
        .await;
    assert_eq!(ids(rest.is(200)), [c, d]);
}

#[tokio::test]
async fn acknowledging_then_closing_records_who_and_both_are_idempotent() {
    let api = Api::start().await;
    let s = scene(&api).await;
    let (a, u) = (Auth::Bearer(&s.admin), Auth::Bearer(&s.user));
    let (org, c) = (s.org, id(&s.crowd));
    // Acknowledge, then close: who and when are recorded; both are idempotent.
    let acked = api
        .post(&format!("/alerts/{c}/acknowledge/"), a, json!({}))
        .await;
    let acked = acked.is(200).clone();
    assert_eq!(
        (&acked["status"], &acked["acknowledged_by"]),
        (&json!("ACKNOWLEDGED"), &json!(1))
    );
    assert!(acked["acknowledged_at"].is_string());
    let again = api
        .post(&format!("/alerts/{c}/acknowledge"), a, json!({}))
        .await;
    assert_eq!(again.is(200), &acked);
    assert_eq!(
        ids(api.get("/alerts/?status=ACKNOWLEDGED", u).await.is(200)),
        [c]
    );
    assert_eq!(
        ids(api
            .get(&format!("/alerts/?org_id={org}&status=OPEN"), u)
            .await
            .is(200)),
        Vec::<i64>::new()
    );
    let closed = api.post(&format!("/alerts/{c}/close/"), a, json!({})).await;
    let closed = closed.is(200).clone();
    assert_eq!(
        (
            &closed["status"],
            &closed["closed_by"],
            &closed["acknowledged_by"]
        ),
        (&json!("CLOSED"), &json!(1), &json!(1))
    );
    assert_eq!(
        api.post(&format!("/alerts/{c}/close/"), a, json!({}))
            .await
            .is(200),
        &closed
    );
    api.post(&format!("/alerts/{c}/acknowledge/"), a, json!({}))
        .await
        .detail(409);
    assert_eq!(
        ids(api
            .get(&format!("/alerts/?org_id={org}&status=CLOSED"), u)
            .await
            .is(200)),
        [c]
    );
}

#[tokio::test]
async fn put_closes_edits_and_reopens_an_alert() {
    let api = Api::start().await;
    let s = scene(&api).await;
    let (a, u) = (Auth::Bearer(&s.admin), Auth::Bearer(&s.user));
    let d = id(&s.drill);
    // PUT: the seed's close, edits, and reopening.
    let put = api
        .put(&format!("/alerts/{d}/"), a, json!({"status": "CLOSED"}))
        .await;
    assert_eq!(
        (&put.is(200)["status"], &put.body["closed_by"]),
        (&json!("CLOSED"), &json!(1))
    );
    let put = api
        .put(
            &format!("/alerts/{d}/"),
            a,
            json!({"status": "OPEN", "heading": "Fire Drill (again)"}),
        )
        .await;
    assert_eq!(
        (
            &put.is(200)["status"],
            &put.body["closed_by"],
            &put.body["heading"]
        ),
        (&json!("OPEN"), &Value::Null, &json!("Fire Drill (again)"))
    );
    assert_eq!(put.body["sub_heading"], "Scheduled drill at 2 PM.");
    assert_eq!(
        api.get(&format!("/alerts/{d}/"), u).await.is(200),
        &put.body
    );
}

#[tokio::test]
async fn users_read_alerts_and_only_admins_write() {
    let api = Api::start().await;
    let s = scene(&api).await;
    let u = Auth::Bearer(&s.user);
    let d = id(&s.drill);
    // Roles: users read; only admins write. Anonymous: 401.
    for (method, path) in [
        (Method::POST, "/alerts/".to_string()),
        (Method::PUT, format!("/alerts/{d}/")),
        (Method::DELETE, format!("/alerts/{d}/")),
        (Method::POST, format!("/alerts/{d}/acknowledge/")),
        (Method::POST, format!("/alerts/{d}/close/")),
    ] {
        api.call(method.clone(), &path, u, Some(json!({"heading": "x"})))
            .await
            .detail(403);
        api.call(method, &path, None, Some(json!({})))
            .await
            .detail(401);
    }
    api.get("/alerts/", None).await.detail(401);
    api.get(&format!("/alerts/{d}/"), None).await.detail(401);
}

#[tokio::test]
async fn a_deleted_alert_leaves_every_list() {
    let api = Api::start().await;
    let s = scene(&api).await;
    let (a, u) = (Auth::Bearer(&s.admin), Auth::Bearer(&s.user));
    let (org, c, cl) = (s.org, id(&s.crowd), id(&s.closed_at_birth));
    // Delete removes it from every list.
    api.delete(&format!("/alerts/{c}/"), a).await.is(204);
    api.get(&format!("/alerts/{c}/"), u).await.detail(404);
    assert_eq!(
        ids(api.get(&format!("/alerts/?org_id={org}"), u).await.is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(api.get("/alerts/?status=CLOSED", u).await.is(200)),
        [cl]
    );
    for path in ["/alerts/999/", "/alerts/x/"] {
        api.get(path, u).await.detail(404);
        api.post(&format!("{path}close/"), a, json!({}))
            .await
            .detail(404);
    }
}
