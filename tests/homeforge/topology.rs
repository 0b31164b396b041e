//! The topology map, and listings whose cost does not grow with the data.

use serde_json::json;

use crate::{Api, Users, ids};

#[tokio::test]
async fn topology_is_a_react_flow_graph() {
    let api = Api::start().await;
    let u = api.users().await;
    let t = api.approved_type(&u.user, &u.owner, "Camera").await;
    let room = api
        .post(
            "/rooms/",
            &u.owner,
            json!({"name": "Living Room", "owner": u.user_id}),
        )
        .await;
    let room = room.is(201)["id"].as_i64().unwrap();
    let cam = api
        .post("/devices/", &u.user, json!({"name": "Living Room Cam", "ip_address": "192.168.1.105", "device_type": t, "room": room, "icon": "fa-video"}))
        .await;
    let cam = cam.is(201)["id"].as_i64().unwrap();
    api.patch(
        &format!("/devices/{cam}/state/"),
        &u.user,
        json!({"relay_1": true}),
    )
    .await
    .is(200);
    let mut all = vec![cam];
    for i in 0..7 {
        all.push(
            api.device(&u.admin, t, &format!("d{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }

    let graph = api.get("/topology/", &u.owner).await.is(200).clone();
    let nodes = graph["nodes"].as_array().unwrap();
    let edges = graph["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), 9);
    assert_eq!(edges.len(), 8);
    assert_eq!(
        nodes[0],
        json!({"id": "homeforge-gateway", "type": "input", "data": {"label": "HomeForge Gateway", "ip": "192.168.1.1", "status": "online", "type": "server"}, "position": {"x": 0.0, "y": 0.0}})
    );
    assert_eq!(
        nodes[1],
        json!({"id": cam.to_string(), "type": "device", "data": {"label": "Living Room Cam", "ip": "192.168.1.105", "status": "online", "room": "Living Room", "device_type": "Camera", "icon": "fa-video"}, "position": {"x": 250.0, "y": 100.0}})
    );
    assert_eq!(
        edges[0],
        json!({"id": format!("edge-homeforge-gateway-{cam}"), "source": "homeforge-gateway", "target": cam.to_string(), "animated": true, "style": {"stroke": "#10B981", "strokeWidth": 2}})
    );
    assert_eq!(nodes[2]["data"]["status"], "offline");
    assert!(nodes[2]["data"]["room"].is_null());
    // Every device once, every edge animated from the gateway, no two nodes in one place.
    let targets: Vec<String> = edges
        .iter()
        .map(|e| e["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(targets, all.iter().map(i64::to_string).collect::<Vec<_>>());
    assert!(
        edges
            .iter()
            .all(|e| e["animated"] == true && e["source"] == "homeforge-gateway")
    );
    let mut places: Vec<String> = nodes.iter().map(|n| n["position"].to_string()).collect();
    places.sort();
    places.dedup();
    assert_eq!(places.len(), nodes.len());
    // The layout is deterministic.
    assert_eq!(api.get("/topology", &u.admin).await.is(200), &graph);

    // A user's map holds their own devices only; anonymous callers get none.
    let mine = api.get("/topology/", &u.user).await;
    assert_eq!(mine.is(200)["nodes"].as_array().unwrap().len(), 2);
    let viewer = api.get("/topology/", &u.viewer).await;
    assert_eq!(viewer.is(200)["nodes"].as_array().unwrap().len(), 1);
    assert!(viewer.body["edges"].as_array().unwrap().is_empty());
    api.get("/topology/", None).await.detail(401);
}

#[tokio::test]
async fn listings_cost_the_same_round_trips_however_much_data() {
    let api = Api::start().await;
    let u = api.users().await;
    let t = api.approved_type(&u.user, &u.owner, "Plug").await;
    let room = api
        .post(
            "/rooms/",
            &u.owner,
            json!({"name": "Hall", "owner": u.user_id}),
        )
        .await;
    let room = room.is(201)["id"].as_i64().unwrap();
    async fn add(api: &Api, u: &Users, t: i64, room: i64, n: usize) {
        for i in 0..n {
            let body = json!({"name": format!("p{i}"), "ip_address": "10.0.0.1", "device_type": t, "room": room});
            api.post("/devices/", &u.user, body).await.is(201);
            api.post("/rooms/", &u.owner, json!({"name": format!("r{i}")}))
                .await
                .is(201);
        }
    }
    add(&api, &u, t, room, 1).await;
    let paths = [
        "/devices/",
        "/rooms/",
        "/device-types/",
        "/users/",
        "/topology/",
    ];
    let mut before = Vec::new();
    for p in paths {
        before.push(api.get(p, &u.owner).await.round_trips());
    }
    let mine = api.get("/devices/", &u.user).await.round_trips();
    add(&api, &u, t, room, 25).await;
    for (p, b) in paths.iter().zip(&before) {
        let res = api.get(p, &u.owner).await;
        res.is(200);
        assert_eq!(res.round_trips(), *b, "{p}");
    }
    assert_eq!(api.get("/devices/", &u.user).await.round_trips(), mine);
    // Reads and writes of one item cost a fixed, small number.
    let dev = ids(api.get("/devices/", &u.user).await.is(200))[0];
    assert_eq!(
        api.get(&format!("/devices/{dev}/"), &u.user)
            .await
            .round_trips(),
        3
    );
    let patch = api
        .patch(
            &format!("/devices/{dev}/state/"),
            &u.user,
            json!({"relay_1": true}),
        )
        .await;
    assert_eq!(patch.round_trips(), 3);
    assert_eq!(api.get("/me/", &u.user).await.round_trips(), 1);
}
