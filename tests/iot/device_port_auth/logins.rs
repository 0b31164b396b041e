//! Who may connect: only a device with its own current credential, under its own client id
//! and with a will on its own topics; and no open device port on a public address.

use std::time::Duration;

use rumqttc::{ConnectReturnCode, LastWill, MqttOptions, QoS};
use serde_json::json;

use super::{Raw, options};
use crate::device::{Login, mqtt_options};
use crate::{BIN, Platform};

#[tokio::test]
async fn logins_without_the_devices_own_credential_are_refused() {
    use ConnectReturnCode::*;
    let api = Platform::start().await;
    let (admin, sl001) = api.streetlight().await;
    let sl002 = api.light(&admin, "SL002").await;
    let (_, _, fan) = api.homeforge().await;
    let (_, dev_a) = api.ozone().await;
    let url = api.broker().await;
    for (what, opts, code) in wrong_logins(&url, &sl001, &sl002, &fan) {
        assert_eq!(Raw::connect(opts).await.err(), Some(code), "{what}");
    }
    // A will is a publish the broker makes in the device's name later: the same rules.
    let mut opts = mqtt_options(&url, &sl001);
    opts.set_last_will(LastWill::new(
        "streetlight/lights/SL002/status",
        "{}",
        QoS::AtLeastOnce,
        false,
    ));
    assert_eq!(
        Raw::connect(opts).await.err(),
        Some(NotAuthorized),
        "a will on SL002"
    );
    // The devices' own credentials, Ozone's device token among them, are admitted.
    for login in [&sl001, &sl002, &fan, &dev_a] {
        Raw::as_device(&url, login).await;
    }
}

/// Each way to log in as light `sl001` (or as another device with its password) short of the
/// device's own credential, and the CONNACK code it gets.
fn wrong_logins(
    url: &str,
    sl001: &Login,
    sl002: &Login,
    fan: &Login,
) -> [(&'static str, MqttOptions, ConnectReturnCode); 11] {
    use ConnectReturnCode::*;
    let (light, wrong) = (sl001.user.as_str(), "not-the-password");
    [
        ("no login", options(url, light, None), BadUserNamePassword),
        (
            "an empty password",
            options(url, light, Some((light, ""))),
            BadUserNamePassword,
        ),
        (
            "a wrong password",
            options(url, light, Some((light, wrong))),
            NotAuthorized,
        ),
        (
            "another light's password",
            options(url, light, Some((light, &sl002.password))),
            NotAuthorized,
        ),
        (
            "HomeForge's credential on a light",
            options(url, light, Some((light, &fan.password))),
            NotAuthorized,
        ),
        (
            "a light's credential on HomeForge",
            options(url, &fan.user, Some((&fan.user, &sl001.password))),
            NotAuthorized,
        ),
        (
            "a light's credential on Ozone",
            options(url, "ozone-dev-a", Some(("ozone-dev-a", &sl001.password))),
            NotAuthorized,
        ),
        (
            "an unknown light",
            options(
                url,
                "streetlight-NOPE",
                Some(("streetlight-NOPE", &sl001.password)),
            ),
            NotAuthorized,
        ),
        (
            "an unknown app",
            options(url, "ecoflow-1", Some(("ecoflow-1", &sl001.password))),
            NotAuthorized,
        ),
        (
            "not a thing name",
            options(url, "admin", Some(("admin", &sl001.password))),
            BadUserNamePassword,
        ),
        // Another device's client id would take over its session and its commands.
        (
            "another device's client id",
            options(url, &sl002.user, Some((light, &sl001.password))),
            BadClientId,
        ),
    ]
}

#[tokio::test]
async fn rotating_a_credential_retires_the_old_one() {
    let api = Platform::start().await;
    let (admin, light) = api.streetlight().await;
    let (owner, fan_id, fan) = api.homeforge().await;
    let (cam, _, camera) = api.occupancy().await;
    let url = api.broker().await;
    let rotate = [
        (
            "/streetlight/api/lights/credential?lightId=SL001".to_owned(),
            Some(admin.as_str()),
            light,
        ),
        (
            format!("/homeforge/api/devices/{fan_id}/credential/"),
            Some(owner.as_str()),
            fan,
        ),
        (
            format!("/occupancy/api/occupancy/cameras/{cam}/credential"),
            None,
            camera,
        ),
    ];
    for (path, staff, old) in rotate {
        if staff.is_some() {
            let anonymous = api.post(&path, None, json!({})).await;
            assert_eq!(anonymous.status, 401, "{path}: {}", anonymous.text);
        }
        let reply = api.post(&path, staff, json!({})).await;
        let body = reply.ok();
        let new = Login::of(body.get("data").unwrap_or(body));
        assert_eq!(new.user, old.user);
        assert_ne!(new.password, old.password);
        let refused = Raw::connect(mqtt_options(&url, &old)).await.err();
        assert_eq!(
            refused,
            Some(ConnectReturnCode::NotAuthorized),
            "{}'s old password",
            old.user
        );
        Raw::as_device(&url, &new).await;
    }
}

#[tokio::test]
async fn a_public_device_port_without_logins_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("civic-iot-open-{}", std::process::id()));
    let out = tokio::process::Command::new(BIN)
        .args([
            "serve",
            "--port",
            "0",
            "--mqtt-port",
            "0",
            "--mqtt-host",
            "0.0.0.0",
        ])
        .args(["--mqtt-auth", "off", "--data-dir"])
        .arg(&dir)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it started: {stderr}");
    assert!(stderr.contains("--mqtt-auth off"), "{stderr}");
}

/// `--mqtt-auth off` (the seeds' open demo, loopback only): anyone connects and publishes
/// telemetry, but command topics stay the platform's.
#[tokio::test]
async fn without_logins_command_topics_are_still_the_platforms() {
    let api = Platform::start_with(&["--mqtt-port", "0", "--mqtt-auth", "off"]).await;
    let (admin, _) = api.streetlight().await;
    let url = api.broker().await;
    let mut anyone = Raw::connect(options(&url, "anyone", None)).await.unwrap();
    assert!(
        anyone
            .publish("streetlight/lights/SL001/status", &json!({"status": "on"}))
            .await
    );
    api.light_reports(&admin, "on").await;
    let mut anyone = Raw::connect(options(&url, "anyone", None)).await.unwrap();
    assert!(
        !anyone
            .publish(
                "streetlight/lights/SL001/command",
                &json!({"action": "off"})
            )
            .await
    );
    let mut opts = options(&url, "anyone", None);
    opts.set_last_will(LastWill::new(
        "streetlight/lights/SL001/command",
        "{}",
        QoS::AtLeastOnce,
        false,
    ));
    assert_eq!(
        Raw::connect(opts).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
}
