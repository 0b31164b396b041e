//! Device state: patches merge, mark the device online and validate their keys, within
//! bounds, also when they race.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, Expect, Users};

#[tokio::test]
async fn state_patches_merge_mark_online_and_validate_keys() {
    let api = Api::start().await;
    let u = api.users().await;
    let t = api.approved_type(&u.user, &u.owner, "Smart Fan").await;
    let id = api.device(&u.user, t, "Fan").await["id"].as_i64().unwrap();
    let path = format!("/devices/{id}/state/");

    let first = api
        .patch(&path, &u.user, json!({"relay_1": true, "pwm_1": 75}))
        .await;
    assert_eq!(
        first.is(200),
        &json!({"status": "State updated", "device_status": "online", "current_state": {"relay_1": true, "pwm_1": 75}})
    );
    let second = api
        .patch(&path, &u.user, json!({"pwm_1": 30, "mcu-1": "v2"}))
        .await;
    assert_eq!(
        second.is(200)["current_state"],
        json!({"relay_1": true, "pwm_1": 30, "mcu-1": "v2"})
    );
    let d = api.get(&format!("/devices/{id}/"), &u.user).await;
    assert_eq!(d.is(200)["status"], "online");
    assert_eq!(d.body["current_state"]["relay_1"], true);
    assert!(d.body["last_seen"].is_string());

    // Nested values of declared keys, non-objects: 400, and nothing is written.
    api.patch(&path, &u.user, json!({"relay_1": {"on": true}, "pwm_9": 1}))
        .await
        .field(400, "relay_1");
    api.patch(&path, &u.user, json!([1, 2]))
        .await
        .field(400, "non_field_errors");
    api.patch(&path, &u.user, json!({}))
        .await
        .field(400, "non_field_errors");
    api.raw(
        Method::PATCH,
        &path,
        &u.user,
        "application/json",
        "{\"relay_1\": tru",
    )
    .await
    .detail(400);
    assert_eq!(
        api.get(&format!("/devices/{id}/"), &u.user).await.is(200)["current_state"],
        json!({"relay_1": true, "pwm_1": 30, "mcu-1": "v2"})
    );

    // Who may: the device's owner and staff; not a viewer, another user or anonymous.
    api.patch(&path, &u.admin, json!({"relay_1": false}))
        .await
        .is(200);
    api.patch(&path, &u.viewer, json!({"relay_1": true}))
        .await
        .detail(403);
    api.register("other", None, None).await.is(201);
    let other = api.token("other").await;
    api.patch(&path, &other, json!({"relay_1": true}))
        .await
        .detail(404);
    api.patch(&path, None, json!({"relay_1": true}))
        .await
        .detail(401);
    api.patch("/devices/999/state/", &u.user, json!({"relay_1": true}))
        .await
        .detail(404);
}

/// The state of device `id`.
async fn state_of(api: &Api, token: &str, id: i64) -> Value {
    api.get(&format!("/devices/{id}/"), token).await.is(200)["current_state"].clone()
}

/// Steps of [`undeclared_state_keys_merge_as_the_seed_shows_within_bounds`], in order, on one
/// device of the user's.
struct Undeclared<'a> {
    api: &'a Api,
    u: &'a Users,
    id: i64,
    path: String,
}

impl Undeclared<'_> {
    /// Undeclared keys merge and take any JSON up to the bounds; returns the state then.
    async fn merge_within_bounds(&self) -> Value {
        let (api, u, id, path) = (self.api, self.u, self.id, &self.path);
        // The seed's example: a key the type does not declare stays when others are patched.
        api.patch(path, &u.user, json!({"other_key": "stays_same"}))
            .await
            .is(200);
        let res = api
            .patch(path, &u.user, json!({"relay_1": true, "pwm_1": 75}))
            .await;
        assert_eq!(
            res.is(200),
            &json!({"status": "State updated", "device_status": "online", "current_state": {"relay_1": true, "pwm_1": 75, "other_key": "stays_same"}})
        );
        // Undeclared keys take any JSON value, as given; adding one costs no extra round trip.
        let schedule = json!({"on": "07:00", "days": [1, 2, 5], "dim": null});
        let res = api
            .patch(path, &u.user, json!({"schedule": schedule, "rssi": -61}))
            .await;
        assert_eq!(res.is(200)["current_state"]["schedule"], schedule);
        assert_eq!(res.round_trips(), 3);
        // At the bounds: 1024 bytes of JSON, 16 levels deep.
        let edge = "x".repeat(1022);
        let deep = Self::deepest();
        api.patch(path, &u.user, json!({"edge": edge, "deep": deep}))
            .await
            .is(200);
        let before = state_of(api, &u.user, id).await;
        assert_eq!(before["edge"], edge.as_str());
        assert_eq!(before["deep"], deep);
        before
    }

    /// The 16-level value [`Self::merge_within_bounds`] stored under `deep`.
    fn deepest() -> Value {
        (0..16).fold(json!(1), |v, _| json!([v]))
    }

    /// Over the bounds, or badly named: 400 in DRF's format, and nothing of the patch is
    /// written.
    async fn refuse_what_is_over_the_bounds(&self, before: &Value) {
        let (api, u, id, path) = (self.api, self.u, self.id, &self.path);
        let deep = Self::deepest();
        let over = "x".repeat(1023);
        let res = api
            .patch(path, &u.user, json!({"relay_1": false, "big": over}))
            .await;
        assert_eq!(
            res.field(400, "big"),
            ["Ensure this value has no more than 1024 bytes as JSON."]
        );
        api.patch(path, &u.user, json!({"deep": [deep]}))
            .await
            .field(400, "deep");
        api.patch(path, &u.user, json!({"device_id": 7}))
            .await
            .field(400, "device_id");
        let long = "k".repeat(65);
        for bad in ["bad key", "", "ключ", "a.b", long.as_str()] {
            api.patch(path, &u.user, json!({ bad: 1, "relay_1": false }))
                .await
                .field(400, "non_field_errors");
        }
        api.patch(path, &u.user, json!({"relay_1": [true]}))
            .await
            .field(400, "relay_1");
        for body in [json!([1]), json!("on"), json!(null), json!(3)] {
            api.patch(path, &u.user, body)
                .await
                .field(400, "non_field_errors");
        }
        assert_eq!(&state_of(api, &u.user, id).await, before);
    }

    /// The 64-key limit for undeclared keys; declared keys are not counted.
    async fn cap_undeclared_keys_at_64(&self) {
        let (api, u, path) = (self.api, self.u, &self.path);
        // At most 64 undeclared keys per device (5 so far); declared keys do not count.
        let fill: serde_json::Map<String, Value> =
            (0..59).map(|i| (format!("x{i}"), json!(i))).collect();
        api.patch(path, &u.user, Value::Object(fill)).await.is(200);
        let res = api.patch(path, &u.user, json!({"one_more": 1})).await;
        assert_eq!(
            res.field(400, "non_field_errors"),
            ["A device holds at most 64 state keys that its type does not declare."]
        );
        // Existing undeclared keys and declared keys still change.
        let res = api
            .patch(
                path,
                &u.user,
                json!({"x0": "again", "mcu-1": "v3", "relay_1": false}),
            )
            .await;
        let state = res.is(200)["current_state"].as_object().unwrap();
        assert_eq!(state.len(), 64 + 3);
        assert_eq!(state["x0"], "again");
        assert!(!state.contains_key("one_more"));
    }
}

#[tokio::test]
async fn undeclared_state_keys_merge_as_the_seed_shows_within_bounds() {
    let api = Api::start().await;
    let u = api.users().await;
    let t = api.approved_type(&u.user, &u.owner, "Smart Fan").await;
    let id = api.device(&u.user, t, "Fan").await["id"].as_i64().unwrap();
    let path = format!("/devices/{id}/state/");
    let steps = Undeclared {
        api: &api,
        u: &u,
        id,
        path,
    };
    let before = steps.merge_within_bounds().await;
    assert_eq!(before["deep"], Undeclared::deepest());
    steps.refuse_what_is_over_the_bounds(&before).await;
    steps.cap_undeclared_keys_at_64().await;

    // A fresh device cannot take 65 undeclared keys in one patch either.
    let other = api.device(&u.user, t, "Fan 2").await["id"]
        .as_i64()
        .unwrap();
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    api.patch(
        &format!("/devices/{other}/state/"),
        &u.user,
        Value::Object(many),
    )
    .await
    .field(400, "non_field_errors");
    assert_eq!(state_of(&api, &u.user, other).await, json!({}));
}

#[tokio::test]
async fn racing_patches_never_exceed_the_undeclared_key_bound() {
    let api = Api::start().await;
    let u = api.users().await;
    let t = api.approved_type(&u.user, &u.owner, "Smart Fan").await;
    let id = api.device(&u.user, t, "Fan").await["id"].as_i64().unwrap();
    let path = format!("/devices/{id}/state/");
    let fill: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("f{i}"), json!(i))).collect();
    api.patch(&path, &u.user, Value::Object(fill)).await.is(200);
    // 16 patches of two new keys each race for the 14 free slots: exactly 7 win.
    let patches = (0..16).map(|i| {
        api.patch(
            &path,
            &u.user,
            json!({ format!("a{i}"): i, format!("b{i}"): i, "relay_1": i % 2 == 0 }),
        )
    });
    let mut won = 0;
    for res in futures::future::join_all(patches).await {
        match res.status.as_u16() {
            200 => won += 1,
            _ => {
                res.field(400, "non_field_errors");
            }
        }
    }
    assert_eq!(won, 7);
    let state = state_of(&api, &u.user, id).await;
    let undeclared = state
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !["mcu-1", "relay_1", "pwm_1"].contains(&k.as_str()))
        .count();
    assert_eq!(undeclared, 64);
}

#[tokio::test]
async fn concurrent_patches_of_different_keys_all_survive() {
    let api = Api::start().await;
    let u = api.users().await;
    let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
    let structure: Vec<Value> = keys
        .iter()
        .map(|k| json!({"id": k, "type": "relay", "label": k, "position": {"x": 0, "y": 0}}))
        .collect();
    let body = json!({"name": "Panel", "definition": {"name": "p", "structure": structure}, "card_template": {"controls": []}});
    let t = api
        .post("/device-types/propose/", &u.user, body)
        .await
        .is(201)["id"]
        .as_i64()
        .unwrap();
    api.post(
        &format!("/admin/device-types/{t}/approve/"),
        &u.owner,
        json!({}),
    )
    .await
    .is(200);
    let id = api.device(&u.user, t, "Panel").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/devices/{id}/state/");
    for round in 0..3 {
        let patches = keys
            .iter()
            .map(|k| api.patch(&path, &u.user, json!({ k.as_str(): round })));
        for res in futures::future::join_all(patches).await {
            res.is(200);
        }
        let state =
            api.get(&format!("/devices/{id}/"), &u.user).await.is(200)["current_state"].clone();
        let expected: serde_json::Map<String, Value> =
            keys.iter().map(|k| (k.clone(), json!(round))).collect();
        assert_eq!(state, Value::Object(expected), "round {round}");
    }
}
