//! `civic-local sim`: simulated devices of all four apps on the broker, answering commands.

use reqwest::Method;
use serde_json::json;

use crate::{Platform, eventually};

#[tokio::test]
async fn the_simulator_drives_all_four_streams_and_answers_commands() {
    let api = Platform::start().await;
    let (admin, sl001) = api.streetlight().await;
    let (cookie, dev_a) = api.ozone().await;
    let (cam, line, gate) = api.occupancy().await;
    let (owner, fan, fan_login) = api.homeforge().await;
    // Each simulated device logs in with the password its app issued.
    let opts = civic_local::sim::SimOpts {
        mqtt_url: api.broker().await,
        lights: vec![format!("SL001={}", sl001.password)],
        ozone_devices: vec![format!("dev-a={}", dev_a.password)],
        cameras: vec![format!("{cam}:{line}={}", gate.password)],
        homeforge_devices: vec![format!("{fan}={}", fan_login.password)],
        homeforge_key: "relay_1".into(),
        count: 3,
        interval_ms: 50,
        linger_ms: 3000,
        run_id: "test".into(),
    };
    let sim = tokio::spawn(async move { civic_local::sim::run(&opts).await.unwrap() });
    all_four_streams_stored(&api).await;

    // Commands while the devices linger: each answers by reporting the new state.
    command_each_lingering_device(&api, &admin, &owner, fan).await;
    let report = sim.await.unwrap();
    assert_eq!(report.sent, 3 * 4 + 2, "{report:?}");
    let mut commands = report.commands.clone();
    commands.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        commands,
        [
            (format!("homeforge/devices/{fan}/set"), json!({"pwm_1": 55})),
            (
                "streetlight/lights/SL001/command".to_owned(),
                json!({"action": "off"})
            ),
        ]
    );
    each_app_shows_what_the_devices_sent(&api, &admin, &cookie, cam, &owner, fan).await;
}

/// The simulator sends 3 messages per stream: each rule has stored them all.
async fn all_four_streams_stored(api: &Platform) {
    eventually("the simulated streams", || async {
        let stored = |rule| api.count(rule, "stored");
        let counts = [
            stored("StreetlightStatusRule").await,
            stored("OzoneEventsRule").await,
            stored("OccupancyCrossingsRule").await,
            stored("HomeforgeStateRule").await,
        ];
        (counts == [3, 3, 3, 3]).then_some(())
    })
    .await;
}

/// A light control and a HomeForge state change, which the simulated devices must answer.
async fn command_each_lingering_device(api: &Platform, admin: &str, owner: &str, fan: i64) {
    let control = json!({"lightId": "SL001", "action": "off"});
    api.post("/streetlight/api/lights/control", Some(admin), control)
        .await
        .ok();
    let patch = Some(json!({"pwm_1": 55}));
    let state = format!("/homeforge/api/devices/{fan}/state/");
    api.call(Method::PATCH, &state, Some(owner), patch)
        .await
        .ok();
}

/// The apps' APIs show the simulated telemetry and the devices' answers to the commands.
async fn each_app_shows_what_the_devices_sent(
    api: &Platform,
    admin: &str,
    cookie: &str,
    cam: i64,
    owner: &str,
    fan: i64,
) {
    let logs = api
        .get("/streetlight/api/lights/logs?lightId=SL001", Some(admin))
        .await;
    let logs = logs.ok()["data"].as_array().unwrap().clone();
    assert_eq!(
        logs[0]["control_type"], "automatic",
        "the light's answer came last"
    );
    assert_eq!(logs[0]["new_status"], "off");
    assert_eq!(
        logs.len(),
        3 + 2,
        "three reports, the control and the answer"
    );
    assert_eq!(api.ozone_events(cookie, "dev-a").await.len(), 3);
    let live = api
        .get(
            &format!("/occupancy/api/occupancy/cameras/{cam}/live"),
            None,
        )
        .await;
    assert_eq!(live.ok()["total_entries"], 2);
    let device = api
        .get(&format!("/homeforge/api/devices/{fan}/"), Some(owner))
        .await;
    assert_eq!(device.ok()["current_state"]["pwm_1"], 55);
}
