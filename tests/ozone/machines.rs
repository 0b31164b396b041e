//! Machines: created in an outlet or registered for a device, and how usage follows the
//! device's machine.

use civic_testkit::http::Resp;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::outlets::two_outlets;
use crate::{Api, MAC, OzoneResp, Session, series};

/// [`two_outlets`] with machines: in the first, `m1` (no device) and `m2` (registered for
/// esp32-001, whose token this holds); in the other, "Elsewhere".
struct Catalog {
    admin: Session,
    viewer: Session,
    token: String,
    outlet: i64,
    other: i64,
    m1: i64,
    m2: i64,
}

impl Catalog {
    async fn new(api: &Api) -> Self {
        let (admin, viewer) = api.users().await;
        let token = api.device(&admin, MAC, "esp32-001").await;
        let (outlet, other) = two_outlets(api, &admin).await;
        let machine = |body: Value| api.post("/machines/", &admin, body);
        let m1 = machine(json!({"outlet": outlet, "name": "Machine Name", "is_active": true}));
        let m1 = m1.await.body["id"].as_i64().unwrap();
        let m2 = api
            .post(
                "/machines/register/",
                &admin,
                json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "Machine A"}),
            )
            .await;
        assert_eq!(m2.status, 201, "{}", m2.text);
        machine(json!({"outlet": other, "name": "Elsewhere"}))
            .await
            .ok();
        Self {
            m2: m2.body["id"].as_i64().unwrap(),
            admin,
            viewer,
            token,
            outlet,
            other,
            m1,
        }
    }
}

#[tokio::test]
async fn machines_are_created_in_an_outlet_or_registered_for_a_device() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    api.device(&admin, MAC, "esp32-001").await;
    let (outlet, other) = two_outlets(&api, &admin).await;

    // Machines.
    let bad_outlet = api
        .post("/machines/", &admin, json!({"outlet": 999, "name": "M"}))
        .await;
    assert!(
        bad_outlet.assert_error(400)["outlet"][0]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let m1 = api
        .post(
            "/machines/",
            &admin,
            json!({"outlet": outlet, "name": "Machine Name", "is_active": true}),
        )
        .await;
    assert_eq!(
        (m1.status, &m1.body["device_id"]),
        (StatusCode::CREATED, &Value::Null)
    );
    assert!(m1.body["id"].is_i64(), "{}", m1.text);
    let reg = api
        .post(
            "/machines/register/",
            &admin,
            json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "Machine A"}),
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    assert_eq!(
        (
            &reg.body["device_id"],
            &reg.body["outlet"],
            &reg.body["binding"]["is_active"]
        ),
        (&json!("esp32-001"), &json!(outlet), &json!(true))
    );
    assert!(reg.body["id"].is_i64(), "{}", reg.text);
    api.post(
        "/machines/register/",
        &admin,
        json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "Again"}),
    )
    .await
    .assert_error(409);
    api.post(
        "/machines/register/",
        &admin,
        json!({"device_id": "ghost", "outlet_id": outlet, "name": "G"}),
    )
    .await
    .assert_error(400);
    api.post(
        "/machines/register/",
        &viewer,
        json!({"device_id": "esp32-001", "outlet_id": outlet, "name": "G"}),
    )
    .await
    .assert_error(403);
    api.post(
        "/machines/",
        &admin,
        json!({"outlet": other, "name": "Elsewhere"}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn machines_are_listed_by_outlet_and_by_device() {
    let api = Api::start().await;
    let Catalog {
        viewer,
        outlet,
        m1,
        m2,
        ..
    } = Catalog::new(&api).await;
    let ids = |r: &Resp| {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&api
            .get(&format!("/machines/?outlet_id={outlet}"), &viewer)
            .await),
        vec![m1, m2]
    );
    assert_eq!(
        ids(&api.get("/machines/?device_id=esp32-001", &viewer).await),
        vec![m2]
    );
    assert_eq!(
        api.get("/machines/", &viewer)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        3
    );
    api.get("/machines/?outlet_id=x", &viewer)
        .await
        .assert_error(400);
    let detail = api.get(&format!("/machines/{m2}/"), &viewer).await;
    assert_eq!(detail.body["devices"][0]["device_id"], "esp32-001");
}

#[tokio::test]
async fn an_event_counts_for_its_device_machine_and_outlet() {
    let api = Api::start().await;
    let Catalog {
        viewer,
        token,
        outlet,
        m1,
        m2,
        ..
    } = Catalog::new(&api).await;
    // An event now counts for the device, the machine and the outlet.
    api.event(
        &token,
        "esp32-001",
        "m-1",
        "STANDARD",
        Some("2025-09-16T10:00:00Z"),
    )
    .await
    .ok();
    for scope in [
        format!("machine_id={m2}"),
        format!("outlet_id={outlet}"),
        "device_id=esp32-001".into(),
        String::new(),
    ] {
        let st = api
            .get(
                &format!("/test/stats/?{scope}&start=2025-09-16&end=2025-09-16"),
                &viewer,
            )
            .await;
        assert_eq!(series(&st.body, "STANDARD"), vec![1.0], "{scope}");
    }
    let st = api
        .get(
            &format!("/test/stats/?machine_id={m1}&start=2025-09-16&end=2025-09-16"),
            &viewer,
        )
        .await;
    assert_eq!(series(&st.body, "total"), vec![0.0]);
}

#[tokio::test]
async fn unregistered_devices_have_telemetry_and_no_machine() {
    let api = Api::start().await;
    let Catalog { admin, viewer, .. } = Catalog::new(&api).await;
    // Unregistered: a device with telemetry and no machine.
    let t2 = api.device(&admin, "AA:BB:CC:DD:EE:02", "esp32-002").await;
    assert_eq!(
        api.get("/machines/unregistered/", &viewer).await.body,
        json!([])
    );
    api.event(&t2, "esp32-002", "u-1", "BASIC", None).await.ok();
    let un = api.get("/machines/unregistered/", &viewer).await;
    assert_eq!(
        un.body
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].clone())
            .collect::<Vec<_>>(),
        vec![json!("esp32-002")]
    );
}

#[tokio::test]
async fn moving_a_machine_moves_future_usage_and_deleting_it_unbinds_the_device() {
    let api = Api::start().await;
    let Catalog {
        admin,
        viewer,
        token,
        outlet,
        other,
        m1,
        m2,
    } = Catalog::new(&api).await;
    // Another device with telemetry and no machine.
    let t2 = api.device(&admin, "AA:BB:CC:DD:EE:02", "esp32-002").await;
    api.event(&t2, "esp32-002", "u-1", "BASIC", None).await.ok();

    // Moving a machine moves its device's future usage; deleting it unbinds the device.
    let moved = api
        .put(
            &format!("/machines/{m2}/"),
            &admin,
            json!({"outlet": other}),
        )
        .await;
    assert_eq!(moved.ok()["outlet"], other);
    api.event(
        &token,
        "esp32-001",
        "m-2",
        "BASIC",
        Some("2025-09-17T10:00:00Z"),
    )
    .await
    .ok();
    let st = api
        .get(
            &format!("/test/stats/?outlet_id={other}&start=2025-09-17&end=2025-09-17"),
            &viewer,
        )
        .await;
    assert_eq!(series(&st.body, "BASIC"), vec![1.0]);
    api.delete(&format!("/outlets/{other}/"), &admin)
        .await
        .assert_error(409);
    let del = api.delete(&format!("/machines/{m2}/"), &admin).await;
    assert_eq!(del.status, 204);
    api.get(&format!("/machines/{m2}/"), &viewer)
        .await
        .assert_error(404);
    assert_eq!(
        api.get("/telemetry/summary/?device_id=esp32-001", &viewer)
            .await
            .body["machine_id"],
        Value::Null
    );
    let un = api.get("/machines/unregistered/", &viewer).await;
    assert_eq!(un.body.as_array().unwrap().len(), 2);
    api.delete(&format!("/outlets/{outlet}/"), &admin)
        .await
        .assert_error(409);
    api.delete(&format!("/machines/{m1}/"), &admin).await;
    let del = api.delete(&format!("/outlets/{outlet}/"), &admin).await;
    assert_eq!(del.status, 204);
    api.delete(&format!("/outlets/{outlet}/"), &admin)
        .await
        .assert_error(404);
}
