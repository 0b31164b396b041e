//! Black-box tests of EcoFlow: the real `civic-local` binary over HTTP on 127.0.0.1, base URL
//! `/ecoflow/api`, with the seed's own request examples. Every role is tried on every group.

use civic_testkit::api::{self, App, Auth};
use civic_testkit::http::{Resp, send};
use civic_testkit::local::LocalServer;
use reqwest::{Client, Method};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// EcoFlow's mount point; its errors are DRF's.
const APP: App = App {
    root: "/ecoflow",
    api: "/ecoflow/api",
    is_error: api::drf_error,
};

// The shared client with EcoFlow's fixtures.
civic_testkit::client!();

trait Expect {
    fn field(&self, field: &str) -> &str;
}

impl Expect for Resp {
    /// A 400 whose body lists messages for `field` (DRF's `{"field": ["msg"]}`).
    #[track_caller]
    fn field(&self, field: &str) -> &str {
        let body = self.is(400);
        assert!(body.get("detail").is_none(), "{}", self.text);
        body[field][0]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} error: {}", self.text))
    }
}

impl Api {
    async fn start() -> Self {
        Self(api::Api::new(LocalServer::start(BIN, &[]).await, APP))
    }

    async fn register(&self, email: &str, role: Option<&str>, by: impl Into<Auth<'_>>) -> Resp {
        let mut body = json!({"email": email, "password": "securepassword123", "first_name": "Jane", "last_name": "Doe"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        self.post("/auth/register/", by, body).await
    }

    async fn login(&self, email: &str) -> Value {
        self.post(
            "/auth/login/",
            None,
            json!({"email": email, "password": "securepassword123"}),
        )
        .await
        .is(200)
        .clone()
    }

    /// (admin access token, user access token)
    async fn admin_and_user(&self) -> (String, String) {
        self.register("admin@example.com", None, None).await.is(201);
        self.register("user@example.com", None, None).await.is(201);
        let admin = self.login("admin@example.com").await["access"]
            .as_str()
            .unwrap()
            .to_owned();
        let user = self.login("user@example.com").await["access"]
            .as_str()
            .unwrap()
            .to_owned();
        (admin, user)
    }

    async fn org(&self, admin: &str, name: &str) -> i64 {
        let body = json!({"name": name, "org_type": "Corporate", "total_capacity": 500, "latitude": 34.0522, "longitude": -118.2437});
        id(self.post("/organizations/", admin, body).await.is(201))
    }
    async fn zone(&self, admin: &str, org: i64, name: &str) -> i64 {
        let body = json!({"name": name, "zone_type": "Entrance", "capacity": 50, "latitude": "34.0522", "longitude": "-118.2437", "organization_id": org});
        id(self.post("/zones/", admin, body).await.is(201))
    }
    async fn camera(&self, admin: &str, zone: i64, name: &str) -> i64 {
        let body = json!({"name": name, "is_active": true, "zone_id": zone});
        id(self.post("/cameras/", admin, body).await.is(201))
    }
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(id).collect()
}

#[tokio::test]
async fn registration_login_refresh_and_profile() {
    let api = Api::start().await;
    // The first user becomes ADMIN whatever they ask for; later ones get USER.
    let first = api.register("Jane@Example.com", None, None).await;
    assert_eq!(
        first.is(201),
        &json!({"message": "User registered successfully", "user": {"email": "jane@example.com", "role": "ADMIN"}})
    );
    let second = api.register("bob@example.com", Some("USER"), None).await;
    assert_eq!(second.is(201)["user"]["role"], "USER");
    // Asking for ADMIN without an admin's token: 403; a user's token is no better.
    api.register("eve@example.com", Some("ADMIN"), None)
        .await
        .detail(403);
    let bob = api.login("bob@example.com").await;
    let bob_access = bob["access"].as_str().unwrap();
    api.register("eve@example.com", Some("ADMIN"), bob_access)
        .await
        .detail(403);
    let jane = api.login("jane@example.com").await;
    let jane_access = jane["access"].as_str().unwrap();
    let made = api
        .register("root@example.com", Some("ADMIN"), jane_access)
        .await;
    assert_eq!(made.is(201)["user"]["role"], "ADMIN");
    // A bad token is an error, not anonymity.
    api.register("mallory@example.com", None, "garbage")
        .await
        .detail(401);

    // Login: the seed's customized response.
    assert_eq!(jane["user_id"], 1);
    assert_eq!(jane["email"], "jane@example.com");
    assert_eq!(jane["role"], "ADMIN");
    assert_eq!(jane["name"], "Jane");
    assert!(jane["refresh"].as_str().is_some_and(|r| r.len() > 20));
    let wrong = api
        .post(
            "/auth/login/",
            None,
            json!({"email": "jane@example.com", "password": "nope-nope"}),
        )
        .await;
    wrong.detail(401);
    let unknown = api
        .post(
            "/auth/login/",
            None,
            json!({"email": "who@example.com", "password": "securepassword123"}),
        )
        .await;
    unknown.detail(401);
    let missing = api.post("/auth/login/", None, json!({})).await;
    assert_eq!(missing.field("email"), "This field is required.");
    assert_eq!(missing.field("password"), "This field is required.");

    // Registration errors are per field.
    let dup = api.register("JANE@example.com", None, None).await;
    assert_eq!(dup.field("email"), "user with this email already exists.");
    let bad = api
        .post("/auth/register/", None, json!({"email": "not-an-email", "password": "short", "role": "SUPERUSER", "first_name": 5}))
        .await;
    assert_eq!(bad.field("email"), "Enter a valid email address.");
    assert!(bad.field("password").contains("at least 8"));
    assert_eq!(bad.field("role"), "\"SUPERUSER\" is not a valid choice.");
    assert!(
        bad.body.get("first_name").is_none(),
        "numbers are valid strings"
    );
    let no_password = api
        .post("/auth/register/", None, json!({"email": "x@example.com"}))
        .await;
    assert_eq!(no_password.field("password"), "This field is required.");

    // Refresh rotates: the answer has a new pair; the old refresh token is dead, and using it
    // again revokes the whole session (the newer token too).
    let r1 = jane["refresh"].as_str().unwrap();
    let next = api
        .post("/auth/refresh/", None, json!({"refresh": r1}))
        .await;
    let next = next.is(200).clone();
    let (access2, r2) = (
        next["access"].as_str().unwrap(),
        next["refresh"].as_str().unwrap(),
    );
    api.get("/auth/me/", access2).await.is(200);
    api.post("/auth/refresh/", None, json!({"refresh": r1}))
        .await
        .detail(401);
    api.post("/auth/refresh/", None, json!({"refresh": r2}))
        .await
        .detail(401);
    // An access token is not a refresh token.
    api.post("/auth/refresh/", None, json!({"refresh": access2}))
        .await
        .detail(401);
    assert_eq!(
        api.post("/auth/refresh/", None, json!({}))
            .await
            .field("refresh"),
        "This field is required."
    );

    // Profile: GET, then PATCH and PUT change names only; email, role and eco_points are
    // read-only and silently ignored.
    let me = api.get("/auth/me/", bob_access).await;
    assert_eq!(
        me.is(200),
        &json!({"id": 2, "email": "bob@example.com", "first_name": "Jane", "last_name": "Doe", "full_name": "Jane Doe", "role": "USER", "eco_points": 0})
    );
    let patched = api.patch("/auth/me/", bob_access, json!({"first_name": "Janet", "role": "ADMIN", "eco_points": 999, "email": "x@example.com"}))
        .await;
    let patched = patched.is(200);
    assert_eq!(
        (
            &patched["first_name"],
            &patched["full_name"],
            &patched["role"],
            &patched["eco_points"],
            &patched["email"]
        ),
        (
            &json!("Janet"),
            &json!("Janet Doe"),
            &json!("USER"),
            &json!(0),
            &json!("bob@example.com")
        )
    );
    let put = api
        .put("/auth/me", bob_access, json!({"last_name": "Smith"}))
        .await;
    assert_eq!(put.is(200)["full_name"], "Janet Smith");
    assert_eq!(
        api.get("/auth/me", bob_access).await.is(200)["last_name"],
        "Smith"
    );
    let bad = api
        .put("/auth/me/", bob_access, json!({"first_name": ["x"]}))
        .await;
    assert_eq!(bad.field("first_name"), "Not a valid string.");
    assert_eq!(
        api.get("/auth/me/", None).await.detail(401),
        "Authentication credentials were not provided."
    );
    api.get("/auth/me/", "not.a.token").await.detail(401);

    // Another app's token is refused.
    let sl = send(
        api.http
            .post(api.server.url("/streetlight/api/auth/register"))
            .json(&json!({"name": "S", "email": "s@example.com", "password": "password123", "city": "Oslo"})),
    )
    .await;
    let sl_token = sl.is(201)["data"]["token"].as_str().unwrap().to_owned();
    api.get("/auth/me/", &sl_token).await.detail(401);
}

#[tokio::test]
async fn sites_nest_and_only_admins_write() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));

    // The seed's POST example; coordinates come back as strings with 6 decimals.
    let created = api
        .post("/organizations/", a, json!({"name": "New Warehouse", "org_type": "Logistics", "total_capacity": 1000, "latitude": 40.7128, "longitude": -74.0060}))
        .await;
    let org = created.is(201).clone();
    assert_eq!(
        org,
        json!({"id": 1, "name": "New Warehouse", "org_type": "Logistics", "total_capacity": 1000, "latitude": "40.712800", "longitude": "-74.006000", "zones": []})
    );
    let zone = api
        .post("/zones/", a, json!({"name": "Server Room", "zone_type": "Restricted", "capacity": 5, "latitude": 34.0522, "longitude": -118.2437, "organization_id": 1}))
        .await;
    assert_eq!(
        zone.is(201),
        &json!({"id": 1, "name": "Server Room", "zone_type": "Restricted", "capacity": 5, "latitude": "34.052200", "longitude": "-118.243700",
            "organization": {"id": 1, "name": "New Warehouse", "org_type": "Logistics"}, "cameras": []})
    );
    let cam = api
        .post(
            "/cameras/",
            a,
            json!({"name": "Back Door Cam", "is_active": true, "zone_id": 1}),
        )
        .await;
    let cam = cam.is(201).clone();
    assert_eq!(
        cam["zone"],
        json!({"id": 1, "name": "Server Room", "zone_type": "Restricted", "organization": {"id": 1, "name": "New Warehouse", "org_type": "Logistics"}})
    );
    assert!(cam["created_at"].as_str().unwrap().ends_with('Z'));
    // is_active defaults to true.
    let cam2 = api
        .post("/cameras/", a, json!({"name": "Lobby Cam", "zone_id": 1}))
        .await;
    assert_eq!(cam2.is(201)["is_active"], true);
    let lobby = api.zone(&admin, 1, "Lobby").await;

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

    // Filters.
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

    // PUT is a partial update; null clears a coordinate.
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

    // Missing objects and ids that are not ids: 404.
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

#[tokio::test]
async fn bad_input_gets_drf_errors_never_5xx() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let a = Auth::Bearer(&admin);
    let org = api.org(&admin, "HQ").await;

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

    // Unknown paths and methods keep the format; trailing slashes are optional.
    assert_eq!(api.get("/nothing/here/", u).await.detail(404), "Not found");
    api.patch("/organizations/1/", u, json!({}))
        .await
        .detail(405);
    api.get(&format!("/organizations/{org}"), u).await.is(200);
}

#[tokio::test]
async fn deletes_cascade_and_parents_can_change() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));
    let hq = api.org(&admin, "HQ").await;
    let depot = api.org(&admin, "Depot").await;
    let lobby = api.zone(&admin, hq, "Lobby").await;
    let hall = api.zone(&admin, hq, "Hall").await;
    let yard = api.zone(&admin, depot, "Yard").await;
    let lobby_cams = [
        api.camera(&admin, lobby, "L1").await,
        api.camera(&admin, lobby, "L2").await,
    ];
    let hall_cam = api.camera(&admin, hall, "H1").await;

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
        api.camera(&admin, yard, "Y1").await,
        api.camera(&admin, yard, "Y2").await,
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

#[tokio::test]
async fn alerts_have_a_lifecycle_and_filters() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));
    let org = api.org(&admin, "HQ").await;
    let other = api.org(&admin, "Other").await;
    let zone = api.zone(&admin, org, "Main Hall").await;
    let other_zone = api.zone(&admin, other, "Hall").await;
    let cam = api.camera(&admin, zone, "Cam").await;

    // The seed's example, and alerts tied to a zone or a camera (their organization is stored).
    let drill = api.post("/alerts/", a, json!({"heading": "Fire Drill", "sub_heading": "Scheduled drill at 2 PM.", "status": "OPEN"})).await;
    let drill = drill.is(201).clone();
    assert_eq!(
        (
            &drill["heading"],
            &drill["status"],
            &drill["alert_type"],
            &drill["organization_id"]
        ),
        (
            &json!("Fire Drill"),
            &json!("OPEN"),
            &json!("MANUAL"),
            &Value::Null
        )
    );
    assert_eq!(drill["created_at"], drill["updated_at"]);
    let crowd = api.post("/alerts/", a, json!({"heading": "Overcrowding in Main Hall", "sub_heading": "Detected 120/100 people. (Cam: 101)", "camera_id": cam})).await;
    let crowd = crowd.is(201).clone();
    assert_eq!(
        (
            &crowd["organization_id"],
            &crowd["zone_id"],
            &crowd["camera_id"]
        ),
        (&json!(org), &json!(zone), &json!(cam))
    );
    let elsewhere = id(api
        .post(
            "/alerts/",
            a,
            json!({"heading": "Spill", "zone_id": other_zone}),
        )
        .await
        .is(201));
    let res = api
        .post(
            "/alerts/",
            a,
            json!({"heading": "H", "zone_id": other_zone, "camera_id": cam}),
        )
        .await;
    assert_eq!(res.field("zone_id"), "The camera is not in this zone.");
    assert_eq!(
        api.post("/alerts/", a, json!({"heading": "H", "zone_id": 999}))
            .await
            .field("zone_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    assert_eq!(
        api.post("/alerts/", a, json!({"sub_heading": "H"}))
            .await
            .field("heading"),
        "This field is required."
    );
    let closed_at_birth = api
        .post("/alerts/", a, json!({"heading": "Old", "status": "CLOSED"}))
        .await;
    let closed_at_birth = closed_at_birth.is(201).clone();
    assert_eq!(closed_at_birth["closed_by"], 1);

    // Listing: newest first; status and organization filters combine.
    let (d, c, cl) = (id(&drill), id(&crowd), id(&closed_at_birth));
    assert_eq!(
        ids(api.get("/alerts/", u).await.is(200)),
        [cl, elsewhere, c, d]
    );
    assert_eq!(
        ids(api.get("/alerts/?status=OPEN", u).await.is(200)),
        [elsewhere, c, d]
    );
    assert_eq!(
        ids(api.get("/alerts/?status=CLOSED", u).await.is(200)),
        [cl]
    );
    assert_eq!(
        ids(api.get(&format!("/alerts/?org_id={org}"), u).await.is(200)),
        [c]
    );
    assert_eq!(
        ids(api
            .get(&format!("/alerts/?org_id={other}&status=OPEN"), u)
            .await
            .is(200)),
        [elsewhere]
    );
    let first = api.get("/alerts/?limit=2", u).await;
    assert_eq!(ids(first.is(200)), [cl, elsewhere]);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/alerts/?limit=2&cursor={cursor}"), u)
        .await;
    assert_eq!(ids(rest.is(200)), [c, d]);

    // Acknowledge, then close: who and when are recorded; both are idempotent.
    let acked = api
        .post(&format!("/alerts/{c}/acknowledge/"), a, json!({}))
        .await;
    let acked = acked.is(200).clone();
    assert_eq!(
        (&acked["status"], &acked["acknowledged_by"]),
        (&json!("ACKNOWLEDGED"), &json!(1))
    );
    assert!(acked["acknowledged_at"].is_string());
    let again = api
        .post(&format!("/alerts/{c}/acknowledge"), a, json!({}))
        .await;
    assert_eq!(again.is(200), &acked);
    assert_eq!(
        ids(api.get("/alerts/?status=ACKNOWLEDGED", u).await.is(200)),
        [c]
    );
    assert_eq!(
        ids(api
            .get(&format!("/alerts/?org_id={org}&status=OPEN"), u)
            .await
            .is(200)),
        Vec::<i64>::new()
    );
    let closed = api.post(&format!("/alerts/{c}/close/"), a, json!({})).await;
    let closed = closed.is(200).clone();
    assert_eq!(
        (
            &closed["status"],
            &closed["closed_by"],
            &closed["acknowledged_by"]
        ),
        (&json!("CLOSED"), &json!(1), &json!(1))
    );
    assert_eq!(
        api.post(&format!("/alerts/{c}/close/"), a, json!({}))
            .await
            .is(200),
        &closed
    );
    api.post(&format!("/alerts/{c}/acknowledge/"), a, json!({}))
        .await
        .detail(409);
    assert_eq!(
        ids(api
            .get(&format!("/alerts/?org_id={org}&status=CLOSED"), u)
            .await
            .is(200)),
        [c]
    );

    // PUT: the seed's close, edits, and reopening.
    let put = api
        .put(&format!("/alerts/{d}/"), a, json!({"status": "CLOSED"}))
        .await;
    assert_eq!(
        (&put.is(200)["status"], &put.body["closed_by"]),
        (&json!("CLOSED"), &json!(1))
    );
    let put = api
        .put(
            &format!("/alerts/{d}/"),
            a,
            json!({"status": "OPEN", "heading": "Fire Drill (again)"}),
        )
        .await;
    assert_eq!(
        (
            &put.is(200)["status"],
            &put.body["closed_by"],
            &put.body["heading"]
        ),
        (&json!("OPEN"), &Value::Null, &json!("Fire Drill (again)"))
    );
    assert_eq!(put.body["sub_heading"], "Scheduled drill at 2 PM.");
    assert_eq!(
        api.get(&format!("/alerts/{d}/"), u).await.is(200),
        &put.body
    );

    // Roles: users read; only admins write. Anonymous: 401.
    for (method, path) in [
        (Method::POST, "/alerts/".to_string()),
        (Method::PUT, format!("/alerts/{d}/")),
        (Method::DELETE, format!("/alerts/{d}/")),
        (Method::POST, format!("/alerts/{d}/acknowledge/")),
        (Method::POST, format!("/alerts/{d}/close/")),
    ] {
        api.call(method.clone(), &path, u, Some(json!({"heading": "x"})))
            .await
            .detail(403);
        api.call(method, &path, None, Some(json!({})))
            .await
            .detail(401);
    }
    api.get("/alerts/", None).await.detail(401);
    api.get(&format!("/alerts/{d}/"), None).await.detail(401);

    // Delete removes it from every list.
    api.delete(&format!("/alerts/{c}/"), a).await.is(204);
    api.get(&format!("/alerts/{c}/"), u).await.detail(404);
    assert_eq!(
        ids(api.get(&format!("/alerts/?org_id={org}"), u).await.is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(api.get("/alerts/?status=CLOSED", u).await.is(200)),
        [cl]
    );
    for path in ["/alerts/999/", "/alerts/x/"] {
        api.get(path, u).await.detail(404);
        api.post(&format!("{path}close/"), a, json!({}))
            .await
            .detail(404);
    }
}

#[tokio::test]
async fn notifications_are_broadcast_to_every_user() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (Auth::Bearer(&admin), Auth::Bearer(&user));
    let welcome = api
        .post(
            "/notifications/",
            a,
            json!({"title": "Welcome", "message": "Welcome to the EcoFlow system."}),
        )
        .await;
    let welcome = welcome.is(201).clone();
    assert_eq!(
        (&welcome["title"], &welcome["message"]),
        (&json!("Welcome"), &json!("Welcome to the EcoFlow system."))
    );
    let maint = id(api
        .post(
            "/notifications/",
            a,
            json!({"title": "System Maintenance", "message": "Servers will restart in 10 mins."}),
        )
        .await
        .is(201));

    // Every user sees every broadcast, newest first.
    api.register("late@example.com", None, None).await.is(201);
    let late = api.login("late@example.com").await["access"]
        .as_str()
        .unwrap()
        .to_owned();
    for who in [u, Auth::Bearer(&late), a] {
        assert_eq!(
            ids(api.get("/notifications/", who).await.is(200)),
            [maint, id(&welcome)]
        );
    }
    assert_eq!(
        api.get(&format!("/notifications/{}/", id(&welcome)), u)
            .await
            .is(200),
        &welcome
    );
    let page = api.get("/notifications/?limit=1", u).await;
    assert_eq!(ids(page.is(200)), [maint]);
    assert!(page.headers.contains_key("x-next-cursor"));

    // Only admins broadcast or delete.
    api.post("/notifications/", u, json!({"title": "t", "message": "m"}))
        .await
        .detail(403);
    api.delete(&format!("/notifications/{maint}/"), u)
        .await
        .detail(403);
    api.get("/notifications/", None).await.detail(401);
    api.post("/notifications/", None, json!({}))
        .await
        .detail(401);
    assert_eq!(
        api.post("/notifications/", a, json!({"title": "t"}))
            .await
            .field("message"),
        "This field is required."
    );
    api.delete(&format!("/notifications/{maint}/"), a)
        .await
        .is(204);
    api.delete(&format!("/notifications/{maint}/"), a)
        .await
        .detail(404);
    api.get(&format!("/notifications/{maint}/"), u)
        .await
        .detail(404);
    assert_eq!(
        ids(api.get("/notifications/", u).await.is(200)),
        [id(&welcome)]
    );
}

#[tokio::test]
async fn status_and_health_report_the_stores() {
    let api = Api::start().await;
    let status = api.get("/status/", None).await;
    assert_eq!(
        status.is(200),
        &json!({"status": "OK", "message": "Ecoflow system is operational."})
    );
    let health = api.get("/health/", None).await;
    assert_eq!(
        health.is(200),
        &json!({"overall_status": "OK", "database": "OK", "external_service": "OK"})
    );

    // Take the blob store away for real: its directory disappears under the running server.
    let objects = api.server.data_dir.join("blobs/objects");
    std::fs::remove_dir_all(&objects).unwrap();
    // Not through `send`, which fails any 5xx.
    let res = api.http.get(api.url("/health/")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"overall_status": "DEGRADED", "database": "OK", "external_service": "DOWN"})
    );
    // Status only says the process answers.
    api.get("/status", None).await.is(200);

    std::fs::create_dir_all(&objects).unwrap();
    assert_eq!(
        api.get("/health", None).await.is(200)["overall_status"],
        "OK"
    );
}

#[tokio::test]
async fn openapi_documents_every_route_and_the_extensions() {
    let api = Api::start().await;
    let spec = api
        .assert_documented(&[
            "/api/auth/register",
            "/api/auth/login",
            "/api/auth/refresh",
            "/api/auth/me",
            "/api/organizations",
            "/api/organizations/{id}",
            "/api/zones",
            "/api/zones/{id}",
            "/api/cameras",
            "/api/cameras/{id}",
            "/api/alerts",
            "/api/alerts/{id}",
            "/api/alerts/{id}/acknowledge",
            "/api/alerts/{id}/close",
            "/api/notifications",
            "/api/notifications/{id}",
            "/api/status",
            "/api/health",
            "/api/sensor/detect",
            "/api/sensor/uploads",
            "/api/sensor/detections",
            "/api/carbon/stats",
        ])
        .await;
    assert!(spec["paths"]["/api/auth/me"].get("patch").is_some());
}

// ---- sensor/detect, carbon/stats and the S3 upload path ---------------------------------

/// A hand-counted photo from `./scripts/fixtures`: its bytes and how many people it shows.
fn photo(name: &str) -> (Vec<u8>, usize) {
    let (path, people) = civic_vision::fixtures::labelled()
        .into_iter()
        .find(|(p, _)| p.ends_with(name))
        .unwrap_or_else(|| panic!("{name} is not in the labelled set"));
    (std::fs::read(&path).unwrap(), people)
}

/// A `multipart/form-data` body: `(name, filename, bytes)` parts.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "civic-test-boundary-7d2f";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").bytes(),
        );
        if let Some(f) = filename {
            body.extend(format!("; filename=\"{f}\"\r\nContent-Type: image/jpeg").bytes());
        }
        body.extend(b"\r\n\r\n");
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Api {
    async fn detect(&self, token: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Resp {
        let (kind, body) = multipart(parts);
        self.raw(Method::POST, "/sensor/detect/", token, &kind, body)
            .await
    }

    async fn detect_photo(&self, token: &str, zone: i64, camera: i64, photo: &[u8]) -> Resp {
        let (z, c) = (zone.to_string(), camera.to_string());
        self.detect(
            token,
            &[
                ("zone_id", None, z.as_bytes()),
                ("camera_id", None, c.as_bytes()),
                ("file", Some("capture.jpg"), photo),
            ],
        )
        .await
    }

    async fn capacity(&self, admin: &str, zone: i64, capacity: i64) {
        self.put(
            &format!("/zones/{zone}/"),
            admin,
            json!({"capacity": capacity}),
        )
        .await
        .is(200);
    }

    /// Polls the zone's detections until there are `n` (uploads are counted in the background).
    async fn await_detections(&self, token: &str, zone: i64, n: usize) -> Vec<Value> {
        for _ in 0..600 {
            let list = self
                .get(&format!("/sensor/detections/?zone_id={zone}"), token)
                .await;
            let items = list.is(200).as_array().unwrap().clone();
            if items.len() >= n {
                return items;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("zone {zone} never had {n} detections");
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[tokio::test]
async fn sensor_detect_counts_real_photos_records_carbon_and_raises_overcrowding() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let org = api.org(&admin, "Tech Corp HQ").await;
    let (lobby, hall) = (
        api.zone(&admin, org, "Lobby").await,
        api.zone(&admin, org, "Main Hall").await,
    );
    api.capacity(&admin, lobby, 100).await;
    let (lobby_cam, hall_cam) = (
        api.camera(&admin, lobby, "Front Desk Cam").await,
        api.camera(&admin, hall, "Hall Cam").await,
    );
    let (frame, people) = photo("vtest-0140.jpg");

    // Scenario A: 9 people in a zone for 100.
    let a = api
        .detect_photo(&user, lobby, lobby_cam, &frame)
        .await
        .is(200)
        .clone();
    let sahi = a["detected_people"].as_i64().unwrap();
    assert!(
        (sahi - people as i64).abs() <= 2,
        "counted {sahi}, the photo shows {people}"
    );
    let second = a["carbon_data"]["gemini_count"].as_i64().unwrap();
    assert!(
        (second - people as i64).abs() <= 4,
        "CenterNet counted {second} of {people}"
    );
    let saved = round2(sahi as f64 / second as f64);
    assert_eq!(
        a,
        json!({
            "zone": "Lobby", "capacity": 100, "detected_people": sahi,
            "occupancy_percentage": format!("{:.1}%", sahi as f64), "status": "NORMAL",
            "carbon_data": {
                "filename": "capture.jpg", "sahi_count": sahi, "gemini_count": second,
                "calculation_result": saved, "formula": format!("{sahi} / {second} rounded"),
                "message": "Prediction successful via CenterNet",
            },
            "alert_created": false, "detection_id": a["detection_id"],
        })
    );
    api.detect_photo(&user, lobby, lobby_cam, &frame)
        .await
        .is(200);
    let stats = api.get("/carbon/stats/", &user).await.is(200).clone();
    assert_eq!(
        stats["summary"],
        json!({"total_saved_all_time": round2(2.0 * saved), "average_per_detection": saved})
    );
    let history = stats["recent_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (&history[0]["zone"], &history[0]["saved"]),
        (&json!("Lobby"), &json!(saved))
    );
    let date = history[0]["date"].as_str().unwrap();
    assert_eq!(
        (date.len(), &date[4..5], &date[10..11], &date[13..14]),
        (16, "-", " ", ":"),
        "{date}"
    );

    // Scenario B: the same crowd in a zone for as many people is DANGER; one open alert.
    api.capacity(&admin, hall, sahi).await;
    let b = api
        .detect_photo(&user, hall, hall_cam, &frame)
        .await
        .is(200)
        .clone();
    let alert = b["alert_id"].as_i64().unwrap();
    assert_eq!(
        b,
        json!({
            "zone": "Main Hall", "capacity": sahi, "detected_people": sahi,
            "occupancy_percentage": "100.0%", "status": "DANGER", "alert_created": true,
            "carbon_message": "Skipped Gemini calculation due to overcrowding.",
            "alert_id": alert, "detection_id": b["detection_id"],
        })
    );
    let again = api
        .detect_photo(&user, hall, hall_cam, &frame)
        .await
        .is(200)
        .clone();
    assert_eq!(
        (&again["alert_created"], &again["alert_id"]),
        (&json!(false), &json!(alert))
    );
    let open = api
        .get(&format!("/alerts/?status=OPEN&org_id={org}"), &user)
        .await
        .is(200)
        .clone();
    assert_eq!(ids(&open), [alert]);
    assert_eq!(open[0]["heading"], "Overcrowding in Main Hall");
    assert_eq!(
        open[0]["sub_heading"],
        format!("Detected {sahi}/{sahi} people. (Cam: {hall_cam})")
    );
    assert_eq!(open[0]["alert_type"], "OVERCROWDING");
    // Closing it lets the next crowd raise a new one.
    api.post(&format!("/alerts/{alert}/close/"), &admin, json!({}))
        .await
        .is(200);
    let third = api
        .detect_photo(&user, hall, hall_cam, &frame)
        .await
        .is(200)
        .clone();
    assert_eq!(third["alert_created"], true);
    assert_ne!(third["alert_id"], alert);

    // DANGER recorded no carbon; the zone filter reads that zone's totals.
    let all = api.get("/carbon/stats/", &user).await.is(200).clone();
    assert_eq!(all["summary"], stats["summary"]);
    let hall_stats = api
        .get(&format!("/carbon/stats/?zone_id={hall}"), &user)
        .await
        .is(200)
        .clone();
    assert_eq!(
        hall_stats,
        json!({"summary": {"total_saved_all_time": 0.0, "average_per_detection": 0.0}, "recent_history": []})
    );
    let lobby_stats = api
        .get(&format!("/carbon/stats/?zone_id={lobby}"), &user)
        .await
        .is(200)
        .clone();
    assert_eq!(lobby_stats, all);

    // Every frame is a detection, newest first, its image kept under the camera's prefix.
    let hall_list = api.await_detections(&user, hall, 3).await;
    assert_eq!(hall_list.len(), 3);
    assert_eq!(hall_list[2]["detection_id"], Value::Null);
    assert_eq!(hall_list[2]["id"], b["detection_id"]);
    assert!(hall_list.iter().all(|d| d["status"] == "DANGER"
        && d["gemini_count"].is_null()
        && d["source"] == "DETECT"));
    let key = hall_list[0]["image_key"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("ecoflow/zones/{hall}/cameras/{hall_cam}/frames/")),
        "{key}"
    );
    let kept = std::fs::read(api.server.data_dir.join("blobs/objects").join(key)).unwrap();
    assert!(kept.ends_with(&frame), "the kept frame is not the upload");
    let everything = api.get("/sensor/detections/?limit=4", &user).await;
    assert_eq!(everything.is(200).as_array().unwrap().len(), 4);
    assert!(everything.headers.contains_key("x-next-cursor"));

    // Reads and writes need a token.
    api.get("/carbon/stats/", None).await.detail(401);
    let (kind, body) = multipart(&[("zone_id", None, b"1")]);
    api.raw(Method::POST, "/sensor/detect/", None, &kind, body)
        .await
        .detail(401);
}

#[tokio::test]
async fn bad_sensor_uploads_get_drf_errors_never_5xx() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let org = api.org(&admin, "HQ").await;
    let (zone, other) = (
        api.zone(&admin, org, "Lobby").await,
        api.zone(&admin, org, "Dock").await,
    );
    let (cam, elsewhere) = (
        api.camera(&admin, zone, "A").await,
        api.camera(&admin, other, "B").await,
    );
    let (frame, _) = photo("vtest-0001.jpg");

    let empty = api.detect(&user, &[]).await;
    assert_eq!(
        empty.is(400),
        &json!({"zone_id": ["This field is required."], "camera_id": ["This field is required."], "file": ["No file was submitted."]})
    );
    let typed = api
        .detect(
            &user,
            &[
                ("zone_id", None, b"abc"),
                ("camera_id", None, b"1"),
                ("file", None, b"not a file"),
            ],
        )
        .await;
    assert_eq!(typed.field("zone_id"), "A valid integer is required.");
    assert_eq!(
        typed.field("file"),
        "The submitted data was not a file. Check the encoding type on the form."
    );
    let blank = api
        .detect(
            &user,
            &[
                ("zone_id", None, b"1"),
                ("camera_id", None, b"1"),
                ("file", Some("a.jpg"), b""),
            ],
        )
        .await;
    assert_eq!(blank.field("file"), "The submitted file is empty.");

    assert_eq!(
        api.detect_photo(&user, 999, cam, &frame)
            .await
            .field("zone_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    assert_eq!(
        api.detect_photo(&user, zone, 999, &frame)
            .await
            .field("camera_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    assert_eq!(
        api.detect_photo(&user, zone, elsewhere, &frame)
            .await
            .field("camera_id"),
        format!("Camera {elsewhere} is not in zone {zone}.")
    );

    let not_an_image =
        "Upload a valid image. The file you uploaded was either not an image or a corrupted image.";
    assert_eq!(
        api.detect_photo(&user, zone, cam, b"just some text, no pixels")
            .await
            .field("file"),
        not_an_image
    );
    // Truncated: a PNG cut in half (the JPEG decoder pads a cut-off JPEG with grey instead).
    let (png, _) = photo("astronaut.png");
    assert_eq!(
        api.detect_photo(&user, zone, cam, &png[..png.len() / 2])
            .await
            .field("file"),
        not_an_image
    );
    // A decompression bomb: a small PNG whose header claims 4000×4000 pixels.
    let mut bomb = Vec::new();
    image::GrayImage::new(4000, 4000)
        .write_to(
            &mut std::io::Cursor::new(&mut bomb),
            image::ImageFormat::Png,
        )
        .unwrap();
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    let msg = api
        .detect_photo(&user, zone, cam, &bomb)
        .await
        .field("file")
        .to_owned();
    assert!(msg.contains("4000x4000"), "{msg}");
    // Larger than the body limit (1 MiB): 413 before anything is read, on a connection of its own.
    let big = vec![0u8; 2 << 20];
    let (kind, body) = multipart(&[
        ("zone_id", None, b"1"),
        ("camera_id", None, b"1"),
        ("file", Some("big.jpg"), &big),
    ]);
    let req = Client::new()
        .post(api.url("/sensor/detect/"))
        .bearer_auth(&user)
        .header("content-type", kind)
        .body(body);
    api.send(req).await.detail(413);
    let json_body = api
        .post("/sensor/detect/", &user, json!({"zone_id": zone}))
        .await;
    assert!(json_body.detail(415).starts_with("Unsupported media type"));
    let garbled = "multipart/form-data; boundary=x";
    api.raw(
        Method::POST,
        "/sensor/detect/",
        &user,
        garbled,
        "--x\r\nnonsense",
    )
    .await
    .detail(400);

    // Nothing was recorded.
    assert_eq!(
        api.get("/sensor/detections/", &user).await.is(200),
        &json!([])
    );
    assert_eq!(
        api.get("/carbon/stats/?zone_id=x", &user)
            .await
            .field("zone_id"),
        "Enter a whole number."
    );
    assert_eq!(
        api.get("/carbon/stats/", &user).await.is(200)["summary"]["total_saved_all_time"],
        0.0
    );
}

#[tokio::test]
async fn uploaded_frames_are_counted_once_from_the_s3_event() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let org = api.org(&admin, "HQ").await;
    let (zone, other) = (
        api.zone(&admin, org, "Lobby").await,
        api.zone(&admin, org, "Dock").await,
    );
    api.capacity(&admin, zone, 100).await;
    api.capacity(&admin, other, 100).await;
    let (cam, other_cam) = (
        api.camera(&admin, zone, "A").await,
        api.camera(&admin, other, "B").await,
    );
    let (frame, _) = photo("vtest-0070.jpg");

    let upload = api
        .post(
            "/sensor/uploads/",
            &user,
            json!({"zone_id": zone, "camera_id": cam, "content_length": frame.len()}),
        )
        .await
        .is(201)
        .clone();
    let key = upload["key"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("ecoflow/zones/{zone}/cameras/{cam}/uploads/"))
            && key.ends_with(".jpg"),
        "{key}"
    );
    assert_eq!(
        (&upload["method"], &upload["headers"]),
        (
            &json!("PUT"),
            &json!({"Content-Type": "image/jpeg", "Content-Length": frame.len().to_string()})
        )
    );
    assert!(upload["expires_at"].is_string());
    let url = upload["url"].as_str().unwrap();
    assert!(url.starts_with(&api.server.url("/_uploads/")), "{url}");

    // The camera PUTs the frame; S3's event (civic-local's, here) counts it in the background.
    let put = |url: String, body: Vec<u8>| {
        Client::new()
            .put(url)
            .header("content-type", "image/jpeg")
            .body(body)
            .send()
    };
    let res = put(url.to_owned(), frame.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("etag"));
    let counted = api.await_detections(&user, zone, 1).await;
    assert_eq!(
        (
            &counted[0]["source"],
            &counted[0]["image_key"],
            &counted[0]["status"]
        ),
        (&json!("UPLOAD"), &json!(key), &json!("NORMAL"))
    );
    // The same frame through sensor/detect gets the same count: one domain function.
    let direct = api
        .detect_photo(&user, other, other_cam, &frame)
        .await
        .is(200)
        .clone();
    assert_eq!(counted[0]["detected_people"], direct["detected_people"]);
    assert_eq!(
        counted[0]["gemini_count"],
        direct["carbon_data"]["gemini_count"]
    );

    // The same object again (same key and content): S3 would send the event again; it counts
    // once. A fresh upload after it is counted, and then the zone has exactly two.
    assert_eq!(
        put(url.to_owned(), frame.clone()).await.unwrap().status(),
        200
    );
    let next = api
        .post(
            "/sensor/uploads/",
            &user,
            json!({"zone_id": zone, "camera_id": cam, "content_length": frame.len()}),
        )
        .await
        .is(201)
        .clone();
    put(next["url"].as_str().unwrap().to_owned(), frame.clone())
        .await
        .unwrap();
    let both = api.await_detections(&user, zone, 2).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        api.await_detections(&user, zone, 2).await.len(),
        2,
        "{both:?}"
    );
    let stats = api
        .get(&format!("/carbon/stats/?zone_id={zone}"), &user)
        .await
        .is(200)
        .clone();
    assert_eq!(stats["recent_history"].as_array().unwrap().len(), 2);

    // A tampered URL or key is refused; nothing is written.
    let forged = url.replace("signature=", "signature=AAAA");
    assert_eq!(put(forged, frame.clone()).await.unwrap().status(), 403);
    let moved = url.replace(
        &format!("/cameras/{cam}/"),
        &format!("/cameras/{other_cam}/"),
    );
    assert_eq!(put(moved, frame.clone()).await.unwrap().status(), 403);
    assert_eq!(api.await_detections(&user, other, 1).await.len(), 1);

    // Presigning checks the camera as sensor/detect does.
    let wrong = api
        .post(
            "/sensor/uploads/",
            &user,
            json!({"zone_id": zone, "camera_id": other_cam, "content_length": 1}),
        )
        .await;
    assert_eq!(
        wrong.field("camera_id"),
        format!("Camera {other_cam} is not in zone {zone}.")
    );
    let kind = api
        .post(
            "/sensor/uploads/",
            &user,
            json!({"zone_id": zone, "camera_id": cam, "content_type": "text/html", "content_length": 1}),
        )
        .await;
    assert_eq!(
        kind.field("content_type"),
        "\"text/html\" is not a valid choice."
    );
    api.post("/sensor/uploads/", None, json!({}))
        .await
        .detail(401);
}
