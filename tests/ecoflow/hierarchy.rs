//! How sites hang together: moves between parents, cascading deletes, the per-zone camera cap,
//! and nested reads that cost the same however large the tree.

use civic_testkit::api::Auth;
use serde_json::json;

use crate::{Api, Expect, ids};

/// Two organizations: HQ with zones Lobby (two cameras) and Hall (one), Depot with zone Yard.
struct Tree {
    hq: i64,
    depot: i64,
    lobby: i64,
    hall: i64,
    yard: i64,
    lobby_cams: [i64; 2],
    hall_cam: i64,
}

async fn tree(api: &Api, admin: &str) -> Tree {
    let hq = api.org(admin, "HQ").await;
    let depot = api.org(admin, "Depot").await;
    let lobby = api.zone(admin, hq, "Lobby").await;
    let hall = api.zone(admin, hq, "Hall").await;
    let yard = api.zone(admin, depot, "Yard").await;
    let lobby_cams = [
        api.camera(admin, lobby, "L1").await,
        api.camera(admin, lobby, "L2").await,
    ];
    let hall_cam = api.camera(admin, hall, "H1").await;
    Tree {
        hq,
        depot,
        lobby,
        hall,
        yard,
        lobby_cams,
        hall_cam,
    }
}

/// A camera moves to a zone of another organization; a zone moves with its cameras.
async fn children_move_between_parents(api: &Api, a: Auth<'_>, u: Auth<'_>, t: &Tree) {
    let Tree {
        hq,
        depot,
        lobby,
        hall,
        yard,
        lobby_cams,
        hall_cam,
    } = *t;
    // A camera moves to a zone of another organization.
    let moved = api
        .put(
            &format!("/cameras/{hall_cam}/"),
            a,
            json!({"zone_id": yard}),
        )
        .await;
    assert_eq!(
        (
            &moved.is(200)["zone"]["id"],
            &moved.body["zone"]["organization"]["id"]
        ),
        (&json!(yard), &json!(depot))
    );
    assert_eq!(
        ids(&api.get(&format!("/zones/{hall}"), u).await.is(200)["cameras"]),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&api.get(&format!("/zones/{yard}"), u).await.is(200)["cameras"]),
        [hall_cam]
    );

    // A zone moves to another organization with its cameras.
    let moved = api
        .put(
            &format!("/zones/{lobby}/"),
            a,
            json!({"organization_id": depot, "name": "Gate"}),
        )
        .await;
    assert_eq!(
        (&moved.is(200)["organization"]["id"], &moved.body["name"]),
        (&json!(depot), &json!("Gate"))
    );
    assert_eq!(ids(&moved.body["cameras"]), lobby_cams);
    let cam = api.get(&format!("/cameras/{}", lobby_cams[0]), u).await;
    assert_eq!(cam.is(200)["zone"]["organization"]["name"], "Depot");
    assert_eq!(
        ids(&api.get(&format!("/organizations/{hq}"), u).await.is(200)["zones"]),
        [hall]
    );
    assert_eq!(
        ids(&api.get(&format!("/organizations/{depot}"), u).await.is(200)["zones"]),
        [lobby, yard]
    );
}

/// After the moves: a camera, a zone with its cameras, then an organization with everything.
async fn deletes_take_their_children(api: &Api, admin: &str, u: Auth<'_>, t: &Tree) {
    let a = Auth::Bearer(admin);
    let Tree {
        hq,
        depot,
        lobby,
        hall,
        yard,
        lobby_cams,
        hall_cam,
    } = *t;
    // Deleting a camera, then a zone with its cameras.
    api.delete(&format!("/cameras/{hall_cam}/"), a)
        .await
        .is(204);
    api.get(&format!("/cameras/{hall_cam}/"), u)
        .await
        .detail(404);
    api.delete(&format!("/zones/{lobby}/"), a).await.is(204);
    for c in lobby_cams {
        api.get(&format!("/cameras/{c}/"), u).await.detail(404);
    }
    api.get(&format!("/zones/{lobby}"), u).await.detail(404);
    assert_eq!(
        ids(&api.get(&format!("/organizations/{depot}"), u).await.is(200)["zones"]),
        [yard]
    );

    // Deleting an organization takes its zones and cameras with it.
    let yard_cams = [
        api.camera(admin, yard, "Y1").await,
        api.camera(admin, yard, "Y2").await,
    ];
    api.delete(&format!("/organizations/{depot}/"), a)
        .await
        .is(204);
    api.get(&format!("/organizations/{depot}/"), u)
        .await
        .detail(404);
    api.get(&format!("/zones/{yard}/"), u).await.detail(404);
    for c in yard_cams {
        api.get(&format!("/cameras/{c}/"), u).await.detail(404);
    }
    assert_eq!(ids(api.get("/organizations/", u).await.is(200)), [hq]);
    assert_eq!(ids(api.get("/zones/", u).await.is(200)), [hall]);
    assert_eq!(
        ids(api.get("/cameras/", u).await.is(200)),
        Vec::<i64>::new()
    );
    api.delete(&format!("/organizations/{depot}/"), a)
        .await
        .detail(404);
    // A deleted parent takes no children.
    let res = api
        .post("/zones/", a, json!({"name": "Z", "organization_id": depot}))
        .await;
    res.field("organization_id");
    let res = api
        .post("/cameras/", a, json!({"name": "C", "zone_id": yard}))
        .await;
    res.field("zone_id");
}

#[tokio::test]
async fn deletes_cascade_and_parents_can_change() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));
    let t = tree(&api, &admin).await;
    children_move_between_parents(&api, a, u, &t).await;
    deletes_take_their_children(&api, &admin, u, &t).await;
}

#[tokio::test]
async fn a_zone_is_capped_at_thirty_cameras_so_its_moves_stay_atomic() {
    let api = Api::start().await;
    let (admin, _) = api.admin_and_user().await;
    let org = api.org(&admin, "HQ").await;
    let zone = api.zone(&admin, org, "Big").await;
    for n in 0..30 {
        api.camera(&admin, zone, &format!("C{n}")).await;
    }
    let res = api
        .post(
            "/cameras/",
            &admin,
            json!({"name": "one too many", "zone_id": zone}),
        )
        .await;
    assert_eq!(
        res.field("zone_id"),
        format!("Zone {zone} already has 30 cameras.")
    );
    // The largest zone still moves in one transaction, and deletes in one.
    let other = api.org(&admin, "Other").await;
    let moved = api
        .put(
            &format!("/zones/{zone}/"),
            &admin,
            json!({"organization_id": other}),
        )
        .await;
    assert_eq!(moved.is(200)["cameras"].as_array().unwrap().len(), 30);
    api.delete(&format!("/organizations/{other}/"), &admin)
        .await
        .is(204);
    assert_eq!(
        ids(api.get("/cameras/", &admin).await.is(200)),
        Vec::<i64>::new()
    );
}

/// Nested reads cost the same number of store round trips whatever the data size.
#[tokio::test]
async fn nested_reads_cost_constant_round_trips() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let u = Auth::Bearer(&user);
    let org = api.org(&admin, "HQ").await;
    let zone = api.zone(&admin, org, "Lobby").await;
    let cam = api.camera(&admin, zone, "Cam").await;
    api.post("/alerts/", &admin, json!({"heading": "H", "zone_id": zone}))
        .await
        .is(201);
    let reads = [
        format!("/organizations/{org}/"),
        "/organizations/".into(),
        format!("/zones/{zone}/"),
        "/zones/".into(),
        format!("/zones/?org_id={org}"),
        format!("/cameras/{cam}/"),
        "/cameras/".into(),
        format!("/cameras/?zone_id={zone}"),
        "/alerts/".into(),
        format!("/alerts/?org_id={org}&status=OPEN"),
        "/notifications/".into(),
    ];
    let mut small = Vec::new();
    for path in &reads {
        small.push(api.get(path, u).await.round_trips());
    }
    assert_eq!(small, [1, 1, 2, 1, 1, 2, 1, 2, 1, 1, 1]);

    // Grow everything: more organizations, zones, cameras and alerts.
    for n in 0..4 {
        let z = api.zone(&admin, org, &format!("Z{n}")).await;
        for m in 0..3 {
            api.camera(&admin, z, &format!("C{n}.{m}")).await;
        }
        api.camera(&admin, zone, &format!("Lobby {n}")).await;
        let o = api.org(&admin, &format!("Org {n}")).await;
        let oz = api.zone(&admin, o, "Z").await;
        api.camera(&admin, oz, "C").await;
        api.post("/alerts/", &admin, json!({"heading": "H", "zone_id": z}))
            .await
            .is(201);
        api.post(
            "/notifications/",
            &admin,
            json!({"title": "T", "message": "M"}),
        )
        .await
        .is(201);
    }
    let mut large = Vec::new();
    for path in &reads {
        large.push(api.get(path, u).await.round_trips());
    }
    assert_eq!(small, large);
    let tree = api.get(&format!("/organizations/{org}/"), u).await;
    assert_eq!(tree.is(200)["zones"].as_array().unwrap().len(), 5);
    assert_eq!(
        api.get("/cameras/", u)
            .await
            .is(200)
            .as_array()
            .unwrap()
            .len(),
        1 + 4 * 3 + 4 + 4
    );
}
