//! The role table: the status of every endpoint for each kind of caller.

use civic_testkit::api::Auth;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, FORM, MAC, OzoneResp};

/// A request and the statuses it gets from nobody, a device, a user and staff.
type Case = (Method, String, Option<Value>, [u16; 4]);

const ANY: [u16; 4] = [200, 200, 200, 200];
const USER: [u16; 4] = [401, 401, 200, 200];
const STAFF: [u16; 4] = [401, 401, 403, 200];
const DEVICE: [u16; 4] = [401, 200, 401, 401];

/// The session, the handshake, the device ingest and the staff's device management.
fn device_cases() -> Vec<Case> {
    vec![
        (Method::GET, "/auth/user/".into(), None, USER),
        (Method::GET, "/auth/check/".into(), None, ANY),
        (
            Method::POST,
            "/handshake/".into(),
            Some(json!({"mac": "AA:BB:CC:DD:EE:99"})),
            ANY,
        ),
        (
            Method::POST,
            "/device/events/".into(),
            Some(
                json!({"device_id": "dev-a", "event_id": "role-1", "treatment": "BASIC", "counter": 1}),
            ),
            DEVICE,
        ),
        (Method::POST, "/iot/".into(), None, DEVICE),
        (
            Method::POST,
            "/devices/assign/".into(),
            Some(json!({"mac": "AA:BB:CC:DD:EE:99", "device_id": "dev-z"})),
            STAFF,
        ),
        (
            Method::PUT,
            "/devices/dev-a/notes/".into(),
            Some(json!({"notes": "n"})),
            STAFF,
        ),
        (Method::GET, "/devices/pending/".into(), None, STAFF),
        (Method::POST, "/devices/dev-b/token/".into(), None, STAFF),
        (Method::DELETE, "/devices/dev-b/token/".into(), None, STAFF),
        (
            Method::PUT,
            "/devices/dev-b/legacy-ingest/".into(),
            Some(json!({"allowed": false})),
            STAFF,
        ),
        // No IoT certificates locally: staff get 409.
        (
            Method::POST,
            "/devices/dev-b/certificate/".into(),
            None,
            [401, 401, 403, 409],
        ),
    ]
}

/// What users read about events, devices and telemetry.
fn reading_cases() -> Vec<Case> {
    vec![
        (Method::GET, "/events/".into(), None, USER),
        (Method::GET, "/devices/online/".into(), None, USER),
        (Method::GET, "/devices/all/".into(), None, USER),
        (Method::GET, "/devices-data/".into(), None, USER),
        (
            Method::GET,
            "/telemetry/summary/?device_id=dev-a".into(),
            None,
            USER,
        ),
        (
            Method::GET,
            "/telemetry/latest/?device_id=dev-a".into(),
            None,
            USER,
        ),
    ]
}

/// The catalog: outlets `o1` and `o2` (deleted), machines `m1` and `m2` (deleted).
fn catalog_cases(o1: &Value, o2: &Value, m1: &Value, m2: &Value) -> Vec<Case> {
    vec![
        (Method::GET, "/outlets/".into(), None, USER),
        (
            Method::POST,
            "/outlets/".into(),
            Some(json!({"name": "New"})),
            [401, 401, 403, 201],
        ),
        (Method::GET, format!("/outlets/{o1}/"), None, USER),
        (
            Method::PUT,
            format!("/outlets/{o1}/"),
            Some(json!({"name": "Renamed"})),
            STAFF,
        ),
        (
            Method::DELETE,
            format!("/outlets/{o2}/"),
            None,
            [401, 401, 403, 204],
        ),
        (Method::GET, "/machines/".into(), None, USER),
        (
            Method::POST,
            "/machines/".into(),
            Some(json!({"outlet": o1, "name": "New"})),
            [401, 401, 403, 201],
        ),
        (Method::GET, format!("/machines/{m1}/"), None, USER),
        (
            Method::PUT,
            format!("/machines/{m1}/"),
            Some(json!({"name": "Renamed"})),
            STAFF,
        ),
        (
            Method::DELETE,
            format!("/machines/{m2}/"),
            None,
            [401, 401, 403, 204],
        ),
        (
            Method::POST,
            "/machines/register/".into(),
            Some(json!({"device_id": "dev-c", "outlet_id": o1, "name": "R"})),
            [401, 401, 403, 201],
        ),
    ]
}

/// Stats, the export, then the flush and a logout (last: they end what the others read).
fn stats_and_admin_cases() -> Vec<Case> {
    vec![
        (Method::GET, "/machines/unregistered/".into(), None, USER),
        (Method::GET, "/test/stats/".into(), None, USER),
        (Method::GET, "/test/stats-options/".into(), None, USER),
        (Method::GET, "/test/stats-export.csv".into(), None, USER),
        (Method::GET, "/events/analytics/".into(), None, USER),
        (Method::GET, "/export/".into(), None, STAFF),
        (Method::POST, "/flush/".into(), None, STAFF),
        (Method::POST, "/auth/logout/".into(), None, ANY),
    ]
}

/// Every endpoint for every kind of caller: nobody, a device token, a signed-in user, staff.
#[tokio::test]
async fn every_endpoint_by_role() {
    let api = Api::start().await;
    let (admin, viewer) = api.users().await;
    let token = api.device(&admin, MAC, "dev-a").await;
    api.device(&admin, "AA:BB:CC:DD:EE:01", "dev-b").await;
    api.device(&admin, "AA:BB:CC:DD:EE:02", "dev-c").await;
    api.event(&token, "dev-a", "seed-1", "BASIC", None)
        .await
        .ok();
    let outlet = |name: &str| api.post("/outlets/", &admin, json!({"name": name}));
    let (o1, o2) = (
        outlet("O1").await.body["id"].clone(),
        outlet("O2").await.body["id"].clone(),
    );
    let machine = |name: &str| api.post("/machines/", &admin, json!({"outlet": o1, "name": name}));
    let (m1, m2) = (
        machine("M1").await.body["id"].clone(),
        machine("M2").await.body["id"].clone(),
    );
    let form = "mode=BASIC&macaddr=EC:E3:34:46:2B:C0&count1=1";
    let cases = [
        device_cases(),
        reading_cases(),
        catalog_cases(&o1, &o2, &m1, &m2),
        stats_and_admin_cases(),
    ]
    .concat();
    for (method, path, body, expect) in cases {
        let callers = [
            Auth::None,
            Auth::Bearer(&token),
            Auth::from(&viewer),
            Auth::from(&admin),
        ];
        let names = ["nobody", "a device", "a user", "staff"];
        for ((caller, want), who) in callers.into_iter().zip(expect).zip(names) {
            let res = match path.as_str() {
                "/iot/" => api.raw(method.clone(), &path, caller, FORM, form).await,
                _ => api.call(method.clone(), &path, caller, body.clone()).await,
            };
            assert_eq!(
                res.status.as_u16(),
                want,
                "{method} {path} as {who}: {}",
                res.text
            );
            if want >= 400 {
                res.assert_error(want);
            }
        }
    }
}
