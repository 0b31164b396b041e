//! Devices: an approved type, an owner, validation in DRF's words, updates and deletes.

use serde_json::{Value, json};

use crate::{Api, Expect, Users, ids};

/// An approved fan type and a pending type, the user's Living Room and the owner's Office,
/// and three devices: the user's Kitchen Light (the seed's payload, in the Living Room), the
/// admin's plug and the user's IPv6 device; as created.
struct Home {
    fan_type: i64,
    pending: i64,
    room: i64,
    office: i64,
    light: Value,
    plug: Value,
    v6: Value,
}

impl Home {
    async fn new(api: &Api, u: &Users) -> Self {
        let fan_type = api.approved_type(&u.user, &u.admin, "Smart Fan").await;
        let pending = api.propose(&u.user, "Pending Thing").await.is(201)["id"]
            .as_i64()
            .unwrap();
        let room = api
            .post(
                "/rooms/",
                &u.owner,
                json!({"name": "Living Room", "owner": u.user_id}),
            )
            .await;
        let room = room.is(201)["id"].as_i64().unwrap();
        let office = api
            .post("/rooms/", &u.owner, json!({"name": "Office"}))
            .await;
        let office = office.is(201)["id"].as_i64().unwrap();
        // The seed's payload.
        let body = json!({"name": "Kitchen Light", "ip_address": "192.168.1.50", "device_type": fan_type, "room": room, "icon": "fa-lightbulb"});
        let light = api.post("/devices/", &u.user, body).await.is(201).clone();
        let plug = api.device(&u.admin, fan_type, "Admin Plug").await;
        let v6 = api
            .post(
                "/devices/",
                &u.user,
                json!({"name": "v6", "ip_address": "fe80::1", "device_type": fan_type.to_string()}),
            )
            .await;
        Self {
            fan_type,
            pending,
            room,
            office,
            light,
            plug,
            v6: v6.is(201).clone(),
        }
    }

    /// The Kitchen Light's, the plug's and the IPv6 device's ids.
    fn all(&self) -> [i64; 3] {
        [&self.light, &self.plug, &self.v6].map(|d| d["id"].as_i64().unwrap())
    }
}

#[tokio::test]
async fn devices_are_created_with_an_approved_type() {
    let api = Api::start().await;
    let u = api.users().await;
    let Home {
        fan_type,
        room,
        light: d,
        plug: plain,
        v6,
        ..
    } = Home::new(&api, &u).await;
    assert_eq!(d["name"], "Kitchen Light");
    assert_eq!(d["room"], room);
    assert_eq!(d["icon"], "fa-lightbulb");
    assert_eq!(d["status"], "offline");
    assert_eq!(d["owner"], u.user_id);
    assert_eq!(d["device_type"], fan_type);
    assert_eq!(d["current_state"], json!({}));
    assert_eq!(plain["icon"], "fa-cube");
    assert!(plain["room"].is_null());
    assert_eq!(v6["ip_address"], "fe80::1");
}

#[tokio::test]
async fn bad_devices_are_400_in_drfs_words() {
    let api = Api::start().await;
    let u = api.users().await;
    let Home {
        fan_type,
        pending,
        office,
        ..
    } = Home::new(&api, &u).await;
    // Validation, in DRF's words.
    let res = api
        .post(
            "/devices/",
            &u.user,
            json!({"name": "x", "ip_address": "192.168.1.5", "device_type": pending}),
        )
        .await;
    assert_eq!(
        res.field(400, "device_type"),
        ["Device type must be approved."]
    );
    let res = api
        .post(
            "/devices/",
            &u.user,
            json!({"name": "x", "ip_address": "192.168.1.5", "device_type": 999}),
        )
        .await;
    assert_eq!(
        res.field(400, "device_type"),
        ["Invalid pk \"999\" - object does not exist."]
    );
    let res = api
        .post(
            "/devices/",
            &u.user,
            json!({"name": "x", "ip_address": "192.168.1.300", "device_type": fan_type}),
        )
        .await;
    assert_eq!(
        res.field(400, "ip_address"),
        ["Enter a valid IPv4 or IPv6 address."]
    );
    let res = api.post("/devices/", &u.user, json!({})).await;
    for f in ["name", "ip_address", "device_type"] {
        res.field(400, f);
    }
    let res = api
        .post(
            "/devices/",
            &u.user,
            json!({"name": "x", "ip_address": "10.0.0.1", "device_type": fan_type, "room": office}),
        )
        .await;
    res.field(400, "room");
    api.post(
        "/devices/",
        &u.user,
        json!({"name": "x", "ip_address": "10.0.0.1", "device_type": [1]}),
    )
    .await
    .field(400, "device_type");
    api.post(
        "/devices/",
        &u.user,
        json!({"name": ["x"], "ip_address": "10.0.0.1", "device_type": 1}),
    )
    .await
    .detail(400);
    api.post("/devices/", &u.viewer, json!({"name": "x"}))
        .await
        .detail(403);
    api.post("/devices/", None, json!({"name": "x"}))
        .await
        .detail(401);
}

#[tokio::test]
async fn users_see_their_own_devices_and_staff_see_all() {
    let api = Api::start().await;
    let u = api.users().await;
    let home = Home::new(&api, &u).await;
    let all = home.all();
    let id = all[0];
    // Ownership: users see their own; owners and admins see all.
    assert_eq!(ids(api.get("/devices/", &u.owner).await.is(200)), all);
    assert_eq!(ids(api.get("/devices/", &u.admin).await.is(200)), all);
    assert_eq!(
        ids(api.get("/devices/", &u.user).await.is(200)),
        [all[0], all[2]]
    );
    assert!(ids(api.get("/devices/", &u.viewer).await.is(200)).is_empty());
    api.get(&format!("/devices/{}/", all[1]), &u.user)
        .await
        .detail(404);
    api.get(&format!("/devices/{id}/"), &u.viewer)
        .await
        .detail(404);
    assert_eq!(
        api.get(&format!("/devices/{id}/"), &u.admin).await.is(200)["name"],
        "Kitchen Light"
    );
}

#[tokio::test]
async fn updates_change_only_what_is_given() {
    let api = Api::start().await;
    let u = api.users().await;
    let home = Home::new(&api, &u).await;
    let (room, office, pending) = (home.room, home.office, home.pending);
    let all = home.all();
    let id = all[0];
    // Updates change only what is given.
    let path = format!("/devices/{id}/");
    let upd = api
        .put(
            &path,
            &u.user,
            json!({"name": "Ceiling Light", "ip_address": "10.0.0.7"}),
        )
        .await;
    assert_eq!(upd.is(200)["name"], "Ceiling Light");
    assert_eq!(upd.body["ip_address"], "10.0.0.7");
    assert_eq!(upd.body["room"], room);
    api.put(&path, &u.user, json!({"ip_address": "nope"}))
        .await
        .field(400, "ip_address");
    api.put(&path, &u.user, json!({"device_type": pending}))
        .await
        .field(400, "device_type");
    api.put(&path, &u.user, json!({"room": office}))
        .await
        .field(400, "room");
    let unroomed = api.put(&path, &u.user, json!({"room": null})).await;
    assert!(unroomed.is(200)["room"].is_null());
    api.put(&path, &u.admin, json!({"room": office}))
        .await
        .is(200);
    api.put(
        &format!("/devices/{}/", all[1]),
        &u.user,
        json!({"name": "mine now"}),
    )
    .await
    .detail(404);
    api.put(&path, &u.viewer, json!({"name": "x"}))
        .await
        .detail(403);
}

#[tokio::test]
async fn a_deleted_room_leaves_its_devices_and_deleted_devices_are_gone() {
    let api = Api::start().await;
    let u = api.users().await;
    let home = Home::new(&api, &u).await;
    let (office, all) = (home.office, home.all());
    let path = format!("/devices/{}/", all[0]);
    api.put(&path, &u.admin, json!({"room": office}))
        .await
        .is(200);
    // A deleted room leaves its devices without one.
    api.delete(&format!("/rooms/{office}/"), &u.owner)
        .await
        .is(204);
    assert!(api.get(&path, &u.user).await.is(200)["room"].is_null());
    let listed = api.get("/devices/", &u.user).await;
    assert!(listed.is(200)[0]["room"].is_null());

    // Delete.
    api.delete(&path, &u.viewer).await.detail(403);
    api.delete(&format!("/devices/{}/", all[1]), &u.user)
        .await
        .detail(404);
    api.delete(&path, &u.user).await.is(204);
    api.get(&path, &u.user).await.detail(404);
    api.delete(&path, &u.user).await.detail(404);
    api.get("/devices/xyz/", &u.user).await.detail(404);
}
