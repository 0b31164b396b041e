//! Bad input of every kind gets a 4xx in DRF's format, never a 5xx.

use civic_testkit::api::Auth;
use reqwest::Method;
use serde_json::json;

use crate::{Api, Expect};

#[tokio::test]
async fn malformed_bodies_and_bad_values_are_400_with_every_field_reported() {
    let api = Api::start().await;
    let (admin, _) = api.admin_and_user().await;
    let a = Auth::Bearer(&admin);

    // Malformed JSON, a non-object, a missing content type.
    for body in ["{", "[1, 2]", "\"text\"", "null", "{\"name\": }"] {
        let res = api
            .raw(Method::POST, "/organizations/", a, "application/json", body)
            .await;
        assert!(!res.detail(400).is_empty(), "{body}");
    }
    let no_type = api.request(Method::POST, "/zones/", &admin).body("{}");
    api.send(no_type).await.detail(415);

    // Wrong types and ranges, every field reported at once.
    let res = api
        .post("/organizations/", a, json!({"name": {"x": 1}, "total_capacity": "many", "latitude": 91, "longitude": -180.5}))
        .await;
    assert_eq!(res.field("name"), "Not a valid string.");
    assert_eq!(res.field("total_capacity"), "A valid integer is required.");
    assert_eq!(
        res.field("latitude"),
        "Ensure this value is less than or equal to 90."
    );
    assert_eq!(
        res.field("longitude"),
        "Ensure this value is greater than or equal to -180."
    );
    let res = api
        .post("/organizations/", a, json!({"name": "", "total_capacity": -1, "latitude": "12.1234567", "longitude": "east"}))
        .await;
    assert_eq!(res.field("name"), "This field may not be blank.");
    assert_eq!(
        res.field("total_capacity"),
        "Ensure this value is greater than or equal to 0."
    );
    assert_eq!(
        res.field("latitude"),
        "Ensure that there are no more than 6 decimal places."
    );
    assert_eq!(res.field("longitude"), "A valid number is required.");
    let res = api
        .post(
            "/organizations/",
            a,
            json!({"latitude": true, "total_capacity": 1.5}),
        )
        .await;
    assert_eq!(res.field("name"), "This field is required.");
    assert_eq!(res.field("latitude"), "A valid number is required.");
    assert_eq!(res.field("total_capacity"), "A valid integer is required.");
    let res = api
        .post("/organizations/", a, json!({"name": "x".repeat(256)}))
        .await;
    assert!(res.field("name").contains("no more than 255"));
}

#[tokio::test]
async fn parents_that_do_not_exist_or_have_the_wrong_type_are_400() {
    let api = Api::start().await;
    let (admin, _) = api.admin_and_user().await;
    let a = Auth::Bearer(&admin);
    let org = api.org(&admin, "HQ").await;

    // Parents that do not exist, or of the wrong type.
    let res = api
        .post("/zones/", a, json!({"name": "Z", "organization_id": 999}))
        .await;
    assert_eq!(
        res.field("organization_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    let res = api
        .post("/zones/", a, json!({"name": "Z", "organization_id": "one"}))
        .await;
    assert_eq!(res.field("organization_id"), "A valid integer is required.");
    let res = api.post("/zones/", a, json!({"name": "Z"})).await;
    assert_eq!(res.field("organization_id"), "This field is required.");
    let res = api
        .post("/cameras/", a, json!({"name": "C", "zone_id": 999}))
        .await;
    assert_eq!(
        res.field("zone_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    // The body's shape is checked before its parent is looked up.
    let res = api
        .post(
            "/cameras/",
            a,
            json!({"name": "C", "zone_id": 999, "is_active": "maybe"}),
        )
        .await;
    assert_eq!(res.field("is_active"), "Must be a valid boolean.");
    let zone = api.zone(&admin, org, "Z").await;
    let res = api
        .put(
            &format!("/zones/{zone}/"),
            a,
            json!({"organization_id": 999, "capacity": null}),
        )
        .await;
    assert_eq!(res.field("capacity"), "This field may not be null.");
    let res = api
        .put(
            &format!("/zones/{zone}/"),
            a,
            json!({"organization_id": 999}),
        )
        .await;
    assert_eq!(
        res.field("organization_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    let res = api.put("/cameras/1/", a, json!({"zone_id": 0})).await;
    assert!(res.status.is_client_error());
}

#[tokio::test]
async fn bad_query_parameters_and_unknown_choices_are_400() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let a = Auth::Bearer(&admin);
    // Query parameters and unknown enum values.
    let u = Auth::Bearer(&user);
    assert_eq!(
        api.get("/zones/?org_id=abc", u).await.field("org_id"),
        "Enter a whole number."
    );
    assert_eq!(
        api.get("/cameras/?zone_id=1x", u).await.field("zone_id"),
        "Enter a whole number."
    );
    assert_eq!(
        api.get("/alerts/?status=BURNING", u).await.field("status"),
        "Select a valid choice. BURNING is not one of the available choices."
    );
    assert_eq!(
        api.get("/alerts/?org_id=x", u).await.field("org_id"),
        "Enter a whole number."
    );
    api.get("/alerts/?limit=0", u).await.detail(400);
    api.get("/alerts/?limit=abc", u).await.detail(400);
    api.get("/alerts/?cursor=garbage", u).await.detail(400);
    api.get("/organizations/?cursor=garbage", u)
        .await
        .detail(400);
    let res = api
        .post("/alerts/", a, json!({"heading": "H", "status": "BURNING"}))
        .await;
    assert_eq!(res.field("status"), "\"BURNING\" is not a valid choice.");
    let res = api
        .post(
            "/notifications/",
            a,
            json!({"title": 1.5, "message": ["m"]}),
        )
        .await;
    assert_eq!(res.field("message"), "Not a valid string.");
}

#[tokio::test]
async fn unknown_paths_and_methods_keep_the_format() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let u = Auth::Bearer(&user);
    let org = api.org(&admin, "HQ").await;
    // Unknown paths and methods keep the format; trailing slashes are optional.
    assert_eq!(api.get("/nothing/here/", u).await.detail(404), "Not found");
    api.patch("/organizations/1/", u, json!({}))
        .await
        .detail(405);
    api.get(&format!("/organizations/{org}"), u).await.is(200);
}
