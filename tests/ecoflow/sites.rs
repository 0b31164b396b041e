//! Organizations, zones and cameras: the seed's site, nested reads, filters, updates and roles.

use civic_testkit::api::Auth;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Api, ids};

/// What [`seed_site`] created, as the API answered.
struct Seed {
    org: Value,
    zone: Value,
    cam: Value,
    cam2: Value,
    /// A second zone of the organization, without cameras.
    lobby: i64,
}

/// The seed's examples: organization 1, its zone 1 with cameras 1 and 2, and a zone "Lobby".
async fn seed_site(api: &Api, admin: &str) -> Seed {
    let a = Auth::Bearer(admin);
    let org = api
        .post("/organizations/", a, json!({"name": "New Warehouse", "org_type": "Logistics", "total_capacity": 1000, "latitude": 40.7128, "longitude": -74.0060}))
        .await;
    let zone = api
        .post("/zones/", a, json!({"name": "Server Room", "zone_type": "Restricted", "capacity": 5, "latitude": 34.0522, "longitude": -118.2437, "organization_id": 1}))
        .await;
    let cam = api
        .post(
            "/cameras/",
            a,
            json!({"name": "Back Door Cam", "is_active": true, "zone_id": 1}),
        )
        .await;
    let cam2 = api
        .post("/cameras/", a, json!({"name": "Lobby Cam", "zone_id": 1}))
        .await;
    Seed {
        org: org.is(201).clone(),
        zone: zone.is(201).clone(),
        cam: cam.is(201).clone(),
        cam2: cam2.is(201).clone(),
        lobby: api.zone(admin, 1, "Lobby").await,
    }
}

#[tokio::test]
async fn the_seeds_site_is_created_and_read_nested() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let u = Auth::Bearer(&user);
    let Seed {
        org,
        zone,
        cam,
        cam2,
        lobby,
    } = seed_site(&api, &admin).await;

    // The seed's POST example; coordinates come back as strings with 6 decimals.
    assert_eq!(
        org,
        json!({"id": 1, "name": "New Warehouse", "org_type": "Logistics", "total_capacity": 1000, "latitude": "40.712800", "longitude": "-74.006000", "zones": []})
    );
    assert_eq!(
        zone,
        json!({"id": 1, "name": "Server Room", "zone_type": "Restricted", "capacity": 5, "latitude": "34.052200", "longitude": "-118.243700",
            "organization": {"id": 1, "name": "New Warehouse", "org_type": "Logistics"}, "cameras": []})
    );
    assert_eq!(
        cam["zone"],
        json!({"id": 1, "name": "Server Room", "zone_type": "Restricted", "organization": {"id": 1, "name": "New Warehouse", "org_type": "Logistics"}})
    );
    assert!(cam["created_at"].as_str().unwrap().ends_with('Z'));
    // is_active defaults to true.
    assert_eq!(cam2["is_active"], true);

    // Everyone signed in reads the nesting: org → zones → cameras.
    let tree = api.get("/organizations/1/", u).await;
    assert_eq!(
        tree.is(200)["zones"],
        json!([
            {"id": 1, "name": "Server Room", "zone_type": "Restricted", "cameras": [
                {"id": 1, "name": "Back Door Cam", "is_active": true},
                {"id": 2, "name": "Lobby Cam", "is_active": true}]},
            {"id": lobby, "name": "Lobby", "zone_type": "Entrance", "cameras": []}
        ])
    );
    let all = api.get("/organizations/", u).await;
    assert_eq!(all.is(200).as_array().unwrap().len(), 1);
    assert_eq!(all.body[0], tree.body);
    let z = api.get("/zones/1", u).await;
    assert_eq!(z.is(200)["organization"]["name"], "New Warehouse");
    assert_eq!(ids(&z.body["cameras"]), [1, 2]);
    let c = api.get("/cameras/2/", u).await;
    assert_eq!(c.is(200)["zone"]["organization"]["id"], 1);
}

#[tokio::test]
async fn zone_and_camera_lists_filter_by_parent_and_page_by_cursor() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let u = Auth::Bearer(&user);
    let lobby = seed_site(&api, &admin).await.lobby;

    let other = api.org(&admin, "Other").await;
    let other_zone = api.zone(&admin, other, "Hall").await;
    let other_cam = api.camera(&admin, other_zone, "Hall Cam").await;
    assert_eq!(
        ids(api.get("/zones/", u).await.is(200)),
        [1, lobby, other_zone]
    );
    assert_eq!(
        ids(api.get(&format!("/zones/?org_id={other}"), u).await.is(200)),
        [other_zone]
    );
    assert_eq!(
        ids(api.get("/zones/?org_id=999", u).await.is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(api.get("/cameras/", u).await.is(200)),
        [1, 2, other_cam]
    );
    assert_eq!(ids(api.get("/cameras/?zone_id=1", u).await.is(200)), [1, 2]);
    assert_eq!(
        ids(api
            .get(&format!("/cameras/?zone_id={lobby}"), u)
            .await
            .is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(api.get("/cameras/?zone_id=999", u).await.is(200)),
        Vec::<i64>::new()
    );
    // The page cursor is where the next page starts.
    assert_eq!(
        ids(api
            .get(&format!("/organizations/?cursor={other}"), u)
            .await
            .is(200)),
        [other]
    );
}

#[tokio::test]
async fn put_is_a_partial_update_and_null_clears_a_coordinate() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));
    seed_site(&api, &admin).await;

    let put = api
        .put(
            "/organizations/1/",
            a,
            json!({"total_capacity": 1200, "latitude": null}),
        )
        .await;
    let put = put.is(200);
    assert_eq!(
        (
            &put["name"],
            &put["total_capacity"],
            &put["latitude"],
            &put["longitude"]
        ),
        (
            &json!("New Warehouse"),
            &json!(1200),
            &Value::Null,
            &json!("-74.006000")
        )
    );
    assert_eq!(put["zones"].as_array().unwrap().len(), 2, "nesting kept");
    let put = api
        .put(
            "/zones/1",
            a,
            json!({"name": "Server Room B", "capacity": 6}),
        )
        .await;
    assert_eq!(
        (
            &put.is(200)["name"],
            &put.body["capacity"],
            &put.body["zone_type"]
        ),
        (&json!("Server Room B"), &json!(6), &json!("Restricted"))
    );
    let put = api.put("/cameras/1/", a, json!({"is_active": false})).await;
    assert_eq!(
        (&put.is(200)["is_active"], &put.body["name"]),
        (&json!(false), &json!("Back Door Cam"))
    );
    assert_eq!(
        api.get("/organizations/1", u).await.is(200)["zones"][0]["cameras"][0]["is_active"],
        false
    );
}

#[tokio::test]
async fn users_read_sites_but_only_admins_write() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let u = Auth::Bearer(&user);
    seed_site(&api, &admin).await;

    // Roles: USER reads but never writes (403 before the body is looked at); anonymous: 401.
    for (method, path) in [
        (Method::POST, "/organizations/"),
        (Method::PUT, "/organizations/1/"),
        (Method::DELETE, "/organizations/1/"),
        (Method::POST, "/zones/"),
        (Method::PUT, "/zones/1/"),
        (Method::DELETE, "/zones/1/"),
        (Method::POST, "/cameras/"),
        (Method::PUT, "/cameras/1/"),
        (Method::DELETE, "/cameras/1/"),
    ] {
        let res = api
            .call(method.clone(), path, u, Some(json!({"name": "x"})))
            .await;
        assert_eq!(
            res.detail(403),
            "You do not have permission to perform this action.",
            "{method} {path}"
        );
        api.call(method, path, None, Some(json!({})))
            .await
            .detail(401);
    }
    for path in [
        "/organizations/",
        "/organizations/1/",
        "/zones/",
        "/zones/1/",
        "/cameras/",
        "/cameras/1/",
    ] {
        api.get(path, None).await.detail(401);
    }
}

#[tokio::test]
async fn missing_sites_and_ids_that_are_not_ids_are_404() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));
    seed_site(&api, &admin).await;

    for path in [
        "/organizations/99/",
        "/zones/99/",
        "/cameras/99/",
        "/organizations/abc/",
        "/zones/-1/",
        "/cameras/1.5/",
    ] {
        api.get(path, u).await.detail(404);
        api.delete(path, a).await.detail(404);
    }
    assert_eq!(
        api.get("/zones/99", u).await.detail(404),
        "No Zone matches the given query."
    );
    api.put("/cameras/99/", a, json!({"name": "x"}))
        .await
        .detail(404);
}
