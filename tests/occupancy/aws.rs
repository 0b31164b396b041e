//! The same code on the DynamoDB backend (moto).

use chrono::{Duration, Utc};
use civic_testkit::local::LocalServer;
use reqwest::Method;
use serde_json::json;

use crate::{Api, BIN, cross};

/// The same code on the DynamoDB backend (moto): nested live state, conditional markers,
/// `ADD` with `if_not_exists`, and open alerts leaving the index on resolve.
#[tokio::test]
async fn the_aws_backend_serves_occupancy_on_moto() {
    let api = Api::on(LocalServer::start_on_moto(BIN, &[]).await);
    // moto keeps its tables between tests: a unique camera, and no facility-wide totals.
    let (cam, entry, exit, _) = api
        .camera(&civic_testkit::moto::unique("cam"), Some(2))
        .await;
    let now = Utc::now() - Duration::seconds(5);
    let batch = vec![
        cross(entry, "entry", now, Some(1)),
        cross(entry, "entry", now, Some(2)),
        cross(entry, "entry", now + Duration::seconds(1), Some(2)),
        cross(exit, "exit", now + Duration::seconds(2), Some(1)),
    ];
    assert_eq!(api.events(cam, batch.clone()).await, 4);
    // The same batch again (a retry, an MQTT redelivery): its crossings' markers exist, the
    // transaction is cancelled on them alone and nothing counts twice.
    assert_eq!(api.events(cam, batch).await, 0);
    let live = api.get(&format!("/cameras/{cam}/live"), None).await;
    assert_eq!(
        (
            live.body["current_occupancy"].clone(),
            live.body["unique_persons"].clone()
        ),
        (json!(2), json!(2))
    );
    assert_eq!(live.round_trips(), 1);
    let hourly = api
        .get(&format!("/cameras/{cam}/hourly?days=1"), None)
        .await;
    assert_eq!(hourly.is(200)[0]["entries"], 3);
    assert_eq!(hourly.body[0]["peak_occupancy"], 3);
    resolving_takes_the_alert_out_of_the_open_index(&api, cam).await;
    api.post(
        &format!("/cameras/{cam}/calibrate"),
        None,
        json!({"occupancy_value": 0}),
    )
    .await
    .is(200);
    assert_eq!(
        api.get(&format!("/cameras/{cam}/live"), None).await.body["current_occupancy"],
        0
    );
    api.post(
        "/aggregate",
        None,
        json!({"camera_id": cam, "aggregation_level": "monthly"}),
    )
    .await
    .is(202);
    let monthly = api.get(&format!("/cameras/{cam}/monthly"), None).await;
    assert_eq!(
        (
            monthly.is(200)[0]["entries"].clone(),
            monthly.body[0]["unique_persons"].clone()
        ),
        (json!(3), json!(2))
    );
}

/// The camera's capacity_exceeded alert, resolved, is no longer listed as open.
async fn resolving_takes_the_alert_out_of_the_open_index(api: &Api, cam: i64) {
    let alerts = api
        .get(&format!("/alerts?camera_id={cam}"), None)
        .await
        .body;
    let exceeded = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alert_type"] == "capacity_exceeded")
        .unwrap()
        .clone();
    let id = exceeded["id"].as_i64().unwrap();
    api.call(Method::PUT, &format!("/alerts/{id}/resolve"), None, None)
        .await
        .is(200);
    let open = api
        .get(&format!("/alerts?camera_id={cam}"), None)
        .await
        .body;
    assert!(
        open.as_array().unwrap().iter().all(|a| a["id"] != id),
        "{open}"
    );
}
