//! Reading lights: the list, the map, a city's summary and a light's detail, as the seed shows
//! them; paths with or without a trailing slash; reads that cost the same whatever the data.

use std::collections::HashMap;

use serde_json::json;

use crate::{Api, Envelope, token};

/// The seed's lights, SL001 (checked as created) and SL002 in Delhi and MB001 in Mumbai: the
/// token of the viewer, a Delhi user, who reads them.
async fn seed_lights(api: &Api) -> String {
    let (admin, _op, viewer) = api.users().await;
    let created = api.create(&admin, "SL001", "Delhi").await;
    assert_eq!(created.status, 201, "{}", created.body);
    let light = created.data();
    assert_eq!(light["id"], 1);
    assert_eq!(light["status"], "off");
    assert_eq!(light["is_automatic"], true);
    assert_eq!(light["brightness"], 100);
    assert!(light["error_details"].is_null());
    api.create(&admin, "SL002", "Delhi").await;
    api.create(&admin, "MB001", "Mumbai").await;
    api.create(&admin, "SL001", "Delhi").await.assert_error(409);
    viewer
}

#[tokio::test]
async fn the_list_follows_the_seed() {
    let api = Api::start().await;
    let viewer = seed_lights(&api).await;
    // The viewer's city (Delhi) is the default.
    let list = api.get("/lights/list", &viewer).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["message"], "Lights retrieved successfully");
    let ids: Vec<&str> = list
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["light_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["SL001", "SL002"]);
    let keys: Vec<&String> = list.data()[0].as_object().unwrap().keys().collect();
    for k in [
        "id",
        "light_id",
        "name",
        "city",
        "latitude",
        "longitude",
        "address",
        "status",
        "is_automatic",
        "brightness",
        "last_status_change",
        "error_details",
    ] {
        assert!(keys.iter().any(|x| *x == k), "missing {k}");
    }
    assert!(list.data()[0].get("PK").is_none() && list.data()[0].get("version").is_none());
    let mumbai = api.get("/lights/list?city=mumbai", &viewer).await;
    assert_eq!(mumbai.data().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn map_summary_and_detail_follow_the_seed() {
    let api = Api::start().await;
    let viewer = seed_lights(&api).await;
    let map = api.get("/lights/map?city=Delhi", &viewer).await;
    assert_eq!(map.body["message"], "Map data retrieved");
    assert_eq!(
        map.data()[0],
        json!({"light_id": "SL001", "name": "Light SL001", "location": {"latitude": 28.6139, "longitude": 77.209}, "status": "off"})
    );

    let summary = api.get("/lights/summary?city=Delhi", &viewer).await;
    assert_eq!(summary.body["message"], "City summary retrieved");
    let s = summary.data();
    assert_eq!(
        (
            s["total_lights"].as_i64(),
            s["lights_on"].as_i64(),
            s["lights_off"].as_i64(),
            s["lights_in_error"].as_i64()
        ),
        (Some(2), Some(0), Some(2), Some(0))
    );
    assert_eq!(s["city"], "Delhi");
    assert!(s["id"].as_i64().is_some() && s["last_updated"].is_string());
    let nowhere = api.get("/lights/summary?city=Atlantis", &viewer).await;
    assert_eq!(nowhere.assert_error(404), "No data for city");

    let detail = api.get("/lights/detail?lightId=SL001", &viewer).await;
    assert_eq!(detail.body["message"], "Light details retrieved");
    assert_eq!(detail.data()["light"]["light_id"], "SL001");
    assert_eq!(detail.data()["recentLogs"], json!([]));
    api.get("/lights/detail", &viewer).await.assert_error(400);
    api.get("/lights/detail?lightId=NOPE", &viewer)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn paths_work_with_and_without_a_trailing_slash_and_unknown_ones_get_the_envelope() {
    let api = Api::start().await;
    let r = api.post("/auth/register/", None, json!({"name": "a", "email": "a@example.com", "password": "password123", "city": "Delhi"})).await;
    assert_eq!(r.status, 201);
    let t = token(&r);
    assert_eq!(api.get("/lights/list/", &t).await.status, 200);
    assert_eq!(api.get("/lights/list", &t).await.status, 200);
    api.get("/lights/nothing", &t).await.assert_error(404);
    api.delete("/lights/list", &t).await.assert_error(405);
}

#[tokio::test]
async fn reads_cost_one_store_round_trip_whatever_the_data_size() {
    let api = Api::start().await;
    let (admin, _, viewer) = api.users().await;
    let mut cost = HashMap::new();
    for n in [1usize, 40] {
        for i in cost.len()..n {
            api.create(&admin, &format!("SL{i:03}"), "Delhi").await;
        }
        api.post(
            "/lights/control",
            &admin,
            json!({"lightId": "SL000", "action": "on"}),
        )
        .await;
        let costs = [
            api.get("/lights/summary", &viewer).await.round_trips(),
            api.get("/lights/list", &viewer).await.round_trips(),
            api.get("/lights/map", &viewer).await.round_trips(),
            api.get("/lights/detail?lightId=SL000", &viewer)
                .await
                .round_trips(),
        ];
        cost.insert(n, costs);
        assert_eq!(
            api.get("/lights/list", &viewer)
                .await
                .data()
                .as_array()
                .unwrap()
                .len(),
            n
        );
    }
    // One for the caller's record (role, city, token version: issue 15), then one for the
    // read; the list and map read each of the city's 16 listing shards (issue 18) at once.
    assert_eq!(cost[&1], [2, 17, 17, 2]);
    assert_eq!(cost[&1], cost[&40]);
}

/// A city's lights, over the 16 shards of its listing, come back once each, by light id,
/// page after page via `X-Next-Cursor`; the list and the map page alike.
#[tokio::test]
async fn lists_page_over_the_citys_shards_in_light_id_order() {
    let api = Api::start().await;
    let (admin, _, viewer) = api.users().await;
    let mut want: Vec<String> = (0..30).rev().map(|i| format!("SL{i:03}")).collect();
    for id in &want {
        assert_eq!(api.create(&admin, id, "Delhi").await.status, 201);
    }
    api.create(&admin, "MB001", "Mumbai").await;
    want.sort();
    for path in ["/lights/list", "/lights/map"] {
        let (mut got, mut cursor) = (Vec::<String>::new(), None::<String>);
        loop {
            let q = match &cursor {
                Some(c) => format!("{path}?limit=7&cursor={c}"),
                None => format!("{path}?limit=7"),
            };
            let page = api.get(&q, &viewer).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let items = page.data().as_array().unwrap();
            assert!(items.len() <= 7);
            got.extend(
                items
                    .iter()
                    .map(|l| l["light_id"].as_str().unwrap().to_owned()),
            );
            cursor = page
                .headers
                .get("x-next-cursor")
                .map(|c| c.to_str().unwrap().to_owned());
            if cursor.is_none() {
                break;
            }
            assert!(
                got.len() <= want.len(),
                "{path}: the cursor keeps coming back"
            );
        }
        assert_eq!(got, want, "{path}");
    }
    // A cursor that is not the listing's own is the client's error, in the envelope.
    api.get("/lights/list?cursor=nonsense", &viewer)
        .await
        .assert_error(400);
}
