//! Black-box tests of EcoFlow: the real `civic-local` binary over HTTP on 127.0.0.1, base URL
//! `/ecoflow/api`, with the seed's own request examples. Every role is tried on every group.

use civic_testkit::http::{Resp, send};
use civic_testkit::local::LocalServer;
use reqwest::{Client, Method};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

struct Api {
    server: LocalServer,
    http: Client,
}

/// A caller: a bearer token or none.
#[derive(Clone, Copy)]
enum As<'a> {
    Anon,
    Token(&'a str),
}

trait Expect {
    fn is(&self, status: u16) -> &Value;
    fn detail(&self, status: u16) -> &str;
    fn field(&self, field: &str) -> &str;
}

impl Expect for Resp {
    #[track_caller]
    fn is(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        &self.body
    }
    /// DRF's `{"detail": "..."}` and nothing else.
    #[track_caller]
    fn detail(&self, status: u16) -> &str {
        let body = self.is(status);
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{}", self.text);
        body["detail"].as_str().expect("detail")
    }
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
        Self {
            server: LocalServer::start(BIN, &[]).await,
            http: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(&format!("/ecoflow/api{path}"))
    }

    async fn call(&self, who: As<'_>, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let As::Token(t) = who {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        send(req).await
    }
    async fn get(&self, who: As<'_>, path: &str) -> Resp {
        self.call(who, Method::GET, path, None).await
    }
    async fn post(&self, who: As<'_>, path: &str, body: Value) -> Resp {
        self.call(who, Method::POST, path, Some(body)).await
    }
    async fn put(&self, who: As<'_>, path: &str, body: Value) -> Resp {
        self.call(who, Method::PUT, path, Some(body)).await
    }
    async fn delete(&self, who: As<'_>, path: &str) -> Resp {
        self.call(who, Method::DELETE, path, None).await
    }
    /// A raw body with a JSON content type.
    async fn post_raw(&self, who: As<'_>, path: &str, body: &str) -> Resp {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let As::Token(t) = who {
            req = req.bearer_auth(t);
        }
        send(req).await
    }

    async fn register(&self, email: &str, role: Option<&str>, by: As<'_>) -> Resp {
        let mut body = json!({"email": email, "password": "securepassword123", "first_name": "Jane", "last_name": "Doe"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        self.post(by, "/auth/register/", body).await
    }

    async fn login(&self, email: &str) -> Value {
        self.post(
            As::Anon,
            "/auth/login/",
            json!({"email": email, "password": "securepassword123"}),
        )
        .await
        .is(200)
        .clone()
    }

    /// (admin access token, user access token)
    async fn admin_and_user(&self) -> (String, String) {
        self.register("admin@example.com", None, As::Anon)
            .await
            .is(201);
        self.register("user@example.com", None, As::Anon)
            .await
            .is(201);
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
        id(self
            .post(As::Token(admin), "/organizations/", body)
            .await
            .is(201))
    }
    async fn zone(&self, admin: &str, org: i64, name: &str) -> i64 {
        let body = json!({"name": name, "zone_type": "Entrance", "capacity": 50, "latitude": "34.0522", "longitude": "-118.2437", "organization_id": org});
        id(self.post(As::Token(admin), "/zones/", body).await.is(201))
    }
    async fn camera(&self, admin: &str, zone: i64, name: &str) -> i64 {
        let body = json!({"name": name, "is_active": true, "zone_id": zone});
        id(self.post(As::Token(admin), "/cameras/", body).await.is(201))
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
    let first = api.register("Jane@Example.com", None, As::Anon).await;
    assert_eq!(
        first.is(201),
        &json!({"message": "User registered successfully", "user": {"email": "jane@example.com", "role": "ADMIN"}})
    );
    let second = api
        .register("bob@example.com", Some("USER"), As::Anon)
        .await;
    assert_eq!(second.is(201)["user"]["role"], "USER");
    // Asking for ADMIN without an admin's token: 403; a user's token is no better.
    api.register("eve@example.com", Some("ADMIN"), As::Anon)
        .await
        .detail(403);
    let bob = api.login("bob@example.com").await;
    let bob_access = bob["access"].as_str().unwrap();
    api.register("eve@example.com", Some("ADMIN"), As::Token(bob_access))
        .await
        .detail(403);
    let jane = api.login("jane@example.com").await;
    let jane_access = jane["access"].as_str().unwrap();
    let made = api
        .register("root@example.com", Some("ADMIN"), As::Token(jane_access))
        .await;
    assert_eq!(made.is(201)["user"]["role"], "ADMIN");
    // A bad token is an error, not anonymity.
    api.register("mallory@example.com", None, As::Token("garbage"))
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
            As::Anon,
            "/auth/login/",
            json!({"email": "jane@example.com", "password": "nope-nope"}),
        )
        .await;
    wrong.detail(401);
    let unknown = api
        .post(
            As::Anon,
            "/auth/login/",
            json!({"email": "who@example.com", "password": "securepassword123"}),
        )
        .await;
    unknown.detail(401);
    let missing = api.post(As::Anon, "/auth/login/", json!({})).await;
    assert_eq!(missing.field("email"), "This field is required.");
    assert_eq!(missing.field("password"), "This field is required.");

    // Registration errors are per field.
    let dup = api.register("JANE@example.com", None, As::Anon).await;
    assert_eq!(dup.field("email"), "user with this email already exists.");
    let bad = api
        .post(As::Anon, "/auth/register/", json!({"email": "not-an-email", "password": "short", "role": "SUPERUSER", "first_name": 5}))
        .await;
    assert_eq!(bad.field("email"), "Enter a valid email address.");
    assert!(bad.field("password").contains("at least 8"));
    assert_eq!(bad.field("role"), "\"SUPERUSER\" is not a valid choice.");
    assert!(
        bad.body.get("first_name").is_none(),
        "numbers are valid strings"
    );
    let no_password = api
        .post(
            As::Anon,
            "/auth/register/",
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(no_password.field("password"), "This field is required.");

    // Refresh rotates: the answer has a new pair; the old refresh token is dead, and using it
    // again revokes the whole session (the newer token too).
    let r1 = jane["refresh"].as_str().unwrap();
    let next = api
        .post(As::Anon, "/auth/refresh/", json!({"refresh": r1}))
        .await;
    let next = next.is(200).clone();
    let (access2, r2) = (
        next["access"].as_str().unwrap(),
        next["refresh"].as_str().unwrap(),
    );
    api.get(As::Token(access2), "/auth/me/").await.is(200);
    api.post(As::Anon, "/auth/refresh/", json!({"refresh": r1}))
        .await
        .detail(401);
    api.post(As::Anon, "/auth/refresh/", json!({"refresh": r2}))
        .await
        .detail(401);
    // An access token is not a refresh token.
    api.post(As::Anon, "/auth/refresh/", json!({"refresh": access2}))
        .await
        .detail(401);
    assert_eq!(
        api.post(As::Anon, "/auth/refresh/", json!({}))
            .await
            .field("refresh"),
        "This field is required."
    );

    // Profile: GET, then PATCH and PUT change names only; email, role and eco_points are
    // read-only and silently ignored.
    let me = api.get(As::Token(bob_access), "/auth/me/").await;
    assert_eq!(
        me.is(200),
        &json!({"id": 2, "email": "bob@example.com", "first_name": "Jane", "last_name": "Doe", "full_name": "Jane Doe", "role": "USER", "eco_points": 0})
    );
    let patched = api
        .call(As::Token(bob_access), Method::PATCH, "/auth/me/", Some(json!({"first_name": "Janet", "role": "ADMIN", "eco_points": 999, "email": "x@example.com"})))
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
        .put(
            As::Token(bob_access),
            "/auth/me",
            json!({"last_name": "Smith"}),
        )
        .await;
    assert_eq!(put.is(200)["full_name"], "Janet Smith");
    assert_eq!(
        api.get(As::Token(bob_access), "/auth/me").await.is(200)["last_name"],
        "Smith"
    );
    let bad = api
        .put(
            As::Token(bob_access),
            "/auth/me/",
            json!({"first_name": ["x"]}),
        )
        .await;
    assert_eq!(bad.field("first_name"), "Not a valid string.");
    assert_eq!(
        api.get(As::Anon, "/auth/me/").await.detail(401),
        "Authentication credentials were not provided."
    );
    api.get(As::Token("not.a.token"), "/auth/me/")
        .await
        .detail(401);

    // Another app's token is refused.
    let sl = send(
        api.http
            .post(api.server.url("/streetlight/api/auth/register"))
            .json(&json!({"name": "S", "email": "s@example.com", "password": "password123", "city": "Oslo"})),
    )
    .await;
    let sl_token = sl.is(201)["data"]["token"].as_str().unwrap().to_owned();
    api.get(As::Token(&sl_token), "/auth/me/").await.detail(401);
}

#[tokio::test]
async fn sites_nest_and_only_admins_write() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (As::Token(&admin), As::Token(&user));

    // The seed's POST example; coordinates come back as strings with 6 decimals.
    let created = api
        .post(a, "/organizations/", json!({"name": "New Warehouse", "org_type": "Logistics", "total_capacity": 1000, "latitude": 40.7128, "longitude": -74.0060}))
        .await;
    let org = created.is(201).clone();
    assert_eq!(
        org,
        json!({"id": 1, "name": "New Warehouse", "org_type": "Logistics", "total_capacity": 1000, "latitude": "40.712800", "longitude": "-74.006000", "zones": []})
    );
    let zone = api
        .post(a, "/zones/", json!({"name": "Server Room", "zone_type": "Restricted", "capacity": 5, "latitude": 34.0522, "longitude": -118.2437, "organization_id": 1}))
        .await;
    assert_eq!(
        zone.is(201),
        &json!({"id": 1, "name": "Server Room", "zone_type": "Restricted", "capacity": 5, "latitude": "34.052200", "longitude": "-118.243700",
            "organization": {"id": 1, "name": "New Warehouse", "org_type": "Logistics"}, "cameras": []})
    );
    let cam = api
        .post(
            a,
            "/cameras/",
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
        .post(a, "/cameras/", json!({"name": "Lobby Cam", "zone_id": 1}))
        .await;
    assert_eq!(cam2.is(201)["is_active"], true);
    let lobby = api.zone(&admin, 1, "Lobby").await;

    // Everyone signed in reads the nesting: org → zones → cameras.
    let tree = api.get(u, "/organizations/1/").await;
    assert_eq!(
        tree.is(200)["zones"],
        json!([
            {"id": 1, "name": "Server Room", "zone_type": "Restricted", "cameras": [
                {"id": 1, "name": "Back Door Cam", "is_active": true},
                {"id": 2, "name": "Lobby Cam", "is_active": true}]},
            {"id": lobby, "name": "Lobby", "zone_type": "Entrance", "cameras": []}
        ])
    );
    let all = api.get(u, "/organizations/").await;
    assert_eq!(all.is(200).as_array().unwrap().len(), 1);
    assert_eq!(all.body[0], tree.body);
    let z = api.get(u, "/zones/1").await;
    assert_eq!(z.is(200)["organization"]["name"], "New Warehouse");
    assert_eq!(ids(&z.body["cameras"]), [1, 2]);
    let c = api.get(u, "/cameras/2/").await;
    assert_eq!(c.is(200)["zone"]["organization"]["id"], 1);

    // Filters.
    let other = api.org(&admin, "Other").await;
    let other_zone = api.zone(&admin, other, "Hall").await;
    let other_cam = api.camera(&admin, other_zone, "Hall Cam").await;
    assert_eq!(
        ids(api.get(u, "/zones/").await.is(200)),
        [1, lobby, other_zone]
    );
    assert_eq!(
        ids(api.get(u, &format!("/zones/?org_id={other}")).await.is(200)),
        [other_zone]
    );
    assert_eq!(
        ids(api.get(u, "/zones/?org_id=999").await.is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(api.get(u, "/cameras/").await.is(200)),
        [1, 2, other_cam]
    );
    assert_eq!(ids(api.get(u, "/cameras/?zone_id=1").await.is(200)), [1, 2]);
    assert_eq!(
        ids(api
            .get(u, &format!("/cameras/?zone_id={lobby}"))
            .await
            .is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(api.get(u, "/cameras/?zone_id=999").await.is(200)),
        Vec::<i64>::new()
    );
    // The page cursor is where the next page starts.
    assert_eq!(
        ids(api
            .get(u, &format!("/organizations/?cursor={other}"))
            .await
            .is(200)),
        [other]
    );

    // PUT is a partial update; null clears a coordinate.
    let put = api
        .put(
            a,
            "/organizations/1/",
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
            a,
            "/zones/1",
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
    let put = api.put(a, "/cameras/1/", json!({"is_active": false})).await;
    assert_eq!(
        (&put.is(200)["is_active"], &put.body["name"]),
        (&json!(false), &json!("Back Door Cam"))
    );
    assert_eq!(
        api.get(u, "/organizations/1").await.is(200)["zones"][0]["cameras"][0]["is_active"],
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
            .call(u, method.clone(), path, Some(json!({"name": "x"})))
            .await;
        assert_eq!(
            res.detail(403),
            "You do not have permission to perform this action.",
            "{method} {path}"
        );
        api.call(As::Anon, method, path, Some(json!({})))
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
        api.get(As::Anon, path).await.detail(401);
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
        api.get(u, path).await.detail(404);
        api.delete(a, path).await.detail(404);
    }
    assert_eq!(
        api.get(u, "/zones/99").await.detail(404),
        "No Zone matches the given query."
    );
    api.put(a, "/cameras/99/", json!({"name": "x"}))
        .await
        .detail(404);
}

#[tokio::test]
async fn bad_input_gets_drf_errors_never_5xx() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let a = As::Token(&admin);
    let org = api.org(&admin, "HQ").await;

    // Malformed JSON, a non-object, a missing content type.
    for body in ["{", "[1, 2]", "\"text\"", "null", "{\"name\": }"] {
        let res = api.post_raw(a, "/organizations/", body).await;
        assert!(!res.detail(400).is_empty(), "{body}");
    }
    let no_type = send(
        api.http
            .post(api.url("/zones/"))
            .bearer_auth(&admin)
            .body("{}"),
    )
    .await;
    no_type.detail(415);

    // Wrong types and ranges, every field reported at once.
    let res = api
        .post(a, "/organizations/", json!({"name": {"x": 1}, "total_capacity": "many", "latitude": 91, "longitude": -180.5}))
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
        .post(a, "/organizations/", json!({"name": "", "total_capacity": -1, "latitude": "12.1234567", "longitude": "east"}))
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
            a,
            "/organizations/",
            json!({"latitude": true, "total_capacity": 1.5}),
        )
        .await;
    assert_eq!(res.field("name"), "This field is required.");
    assert_eq!(res.field("latitude"), "A valid number is required.");
    assert_eq!(res.field("total_capacity"), "A valid integer is required.");
    let res = api
        .post(a, "/organizations/", json!({"name": "x".repeat(256)}))
        .await;
    assert!(res.field("name").contains("no more than 255"));

    // Parents that do not exist, or of the wrong type.
    let res = api
        .post(a, "/zones/", json!({"name": "Z", "organization_id": 999}))
        .await;
    assert_eq!(
        res.field("organization_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    let res = api
        .post(a, "/zones/", json!({"name": "Z", "organization_id": "one"}))
        .await;
    assert_eq!(res.field("organization_id"), "A valid integer is required.");
    let res = api.post(a, "/zones/", json!({"name": "Z"})).await;
    assert_eq!(res.field("organization_id"), "This field is required.");
    let res = api
        .post(a, "/cameras/", json!({"name": "C", "zone_id": 999}))
        .await;
    assert_eq!(
        res.field("zone_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    // The body's shape is checked before its parent is looked up.
    let res = api
        .post(
            a,
            "/cameras/",
            json!({"name": "C", "zone_id": 999, "is_active": "maybe"}),
        )
        .await;
    assert_eq!(res.field("is_active"), "Must be a valid boolean.");
    let zone = api.zone(&admin, org, "Z").await;
    let res = api
        .put(
            a,
            &format!("/zones/{zone}/"),
            json!({"organization_id": 999, "capacity": null}),
        )
        .await;
    assert_eq!(res.field("capacity"), "This field may not be null.");
    let res = api
        .put(
            a,
            &format!("/zones/{zone}/"),
            json!({"organization_id": 999}),
        )
        .await;
    assert_eq!(
        res.field("organization_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    let res = api.put(a, "/cameras/1/", json!({"zone_id": 0})).await;
    assert!(res.status.is_client_error());

    // Query parameters and unknown enum values.
    let u = As::Token(&user);
    assert_eq!(
        api.get(u, "/zones/?org_id=abc").await.field("org_id"),
        "Enter a whole number."
    );
    assert_eq!(
        api.get(u, "/cameras/?zone_id=1x").await.field("zone_id"),
        "Enter a whole number."
    );
    assert_eq!(
        api.get(u, "/alerts/?status=BURNING").await.field("status"),
        "Select a valid choice. BURNING is not one of the available choices."
    );
    assert_eq!(
        api.get(u, "/alerts/?org_id=x").await.field("org_id"),
        "Enter a whole number."
    );
    api.get(u, "/alerts/?limit=0").await.detail(400);
    api.get(u, "/alerts/?limit=abc").await.detail(400);
    api.get(u, "/alerts/?cursor=garbage").await.detail(400);
    api.get(u, "/organizations/?cursor=garbage")
        .await
        .detail(400);
    let res = api
        .post(a, "/alerts/", json!({"heading": "H", "status": "BURNING"}))
        .await;
    assert_eq!(res.field("status"), "\"BURNING\" is not a valid choice.");
    let res = api
        .post(
            a,
            "/notifications/",
            json!({"title": 1.5, "message": ["m"]}),
        )
        .await;
    assert_eq!(res.field("message"), "Not a valid string.");

    // Unknown paths and methods keep the format; trailing slashes are optional.
    assert_eq!(api.get(u, "/nothing/here/").await.detail(404), "Not found");
    api.call(u, Method::PATCH, "/organizations/1/", Some(json!({})))
        .await
        .detail(405);
    api.get(u, &format!("/organizations/{org}")).await.is(200);
}

#[tokio::test]
async fn deletes_cascade_and_parents_can_change() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (As::Token(&admin), As::Token(&user));
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
            a,
            &format!("/cameras/{hall_cam}/"),
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
        ids(&api.get(u, &format!("/zones/{hall}")).await.is(200)["cameras"]),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(&api.get(u, &format!("/zones/{yard}")).await.is(200)["cameras"]),
        [hall_cam]
    );

    // A zone moves to another organization with its cameras.
    let moved = api
        .put(
            a,
            &format!("/zones/{lobby}/"),
            json!({"organization_id": depot, "name": "Gate"}),
        )
        .await;
    assert_eq!(
        (&moved.is(200)["organization"]["id"], &moved.body["name"]),
        (&json!(depot), &json!("Gate"))
    );
    assert_eq!(ids(&moved.body["cameras"]), lobby_cams);
    let cam = api.get(u, &format!("/cameras/{}", lobby_cams[0])).await;
    assert_eq!(cam.is(200)["zone"]["organization"]["name"], "Depot");
    assert_eq!(
        ids(&api.get(u, &format!("/organizations/{hq}")).await.is(200)["zones"]),
        [hall]
    );
    assert_eq!(
        ids(&api.get(u, &format!("/organizations/{depot}")).await.is(200)["zones"]),
        [lobby, yard]
    );

    // Deleting a camera, then a zone with its cameras.
    api.delete(a, &format!("/cameras/{hall_cam}/"))
        .await
        .is(204);
    api.get(u, &format!("/cameras/{hall_cam}/"))
        .await
        .detail(404);
    api.delete(a, &format!("/zones/{lobby}/")).await.is(204);
    for c in lobby_cams {
        api.get(u, &format!("/cameras/{c}/")).await.detail(404);
    }
    api.get(u, &format!("/zones/{lobby}")).await.detail(404);
    assert_eq!(
        ids(&api.get(u, &format!("/organizations/{depot}")).await.is(200)["zones"]),
        [yard]
    );

    // Deleting an organization takes its zones and cameras with it.
    let yard_cams = [
        api.camera(&admin, yard, "Y1").await,
        api.camera(&admin, yard, "Y2").await,
    ];
    api.delete(a, &format!("/organizations/{depot}/"))
        .await
        .is(204);
    api.get(u, &format!("/organizations/{depot}/"))
        .await
        .detail(404);
    api.get(u, &format!("/zones/{yard}/")).await.detail(404);
    for c in yard_cams {
        api.get(u, &format!("/cameras/{c}/")).await.detail(404);
    }
    assert_eq!(ids(api.get(u, "/organizations/").await.is(200)), [hq]);
    assert_eq!(ids(api.get(u, "/zones/").await.is(200)), [hall]);
    assert_eq!(
        ids(api.get(u, "/cameras/").await.is(200)),
        Vec::<i64>::new()
    );
    api.delete(a, &format!("/organizations/{depot}/"))
        .await
        .detail(404);
    // A deleted parent takes no children.
    let res = api
        .post(a, "/zones/", json!({"name": "Z", "organization_id": depot}))
        .await;
    res.field("organization_id");
    let res = api
        .post(a, "/cameras/", json!({"name": "C", "zone_id": yard}))
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
            As::Token(&admin),
            "/cameras/",
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
            As::Token(&admin),
            &format!("/zones/{zone}/"),
            json!({"organization_id": other}),
        )
        .await;
    assert_eq!(moved.is(200)["cameras"].as_array().unwrap().len(), 30);
    api.delete(As::Token(&admin), &format!("/organizations/{other}/"))
        .await
        .is(204);
    assert_eq!(
        ids(api.get(As::Token(&admin), "/cameras/").await.is(200)),
        Vec::<i64>::new()
    );
}

/// Nested reads cost the same number of store round trips whatever the data size.
#[tokio::test]
async fn nested_reads_cost_constant_round_trips() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let u = As::Token(&user);
    let org = api.org(&admin, "HQ").await;
    let zone = api.zone(&admin, org, "Lobby").await;
    let cam = api.camera(&admin, zone, "Cam").await;
    api.post(
        As::Token(&admin),
        "/alerts/",
        json!({"heading": "H", "zone_id": zone}),
    )
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
        small.push(api.get(u, path).await.round_trips());
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
        api.post(
            As::Token(&admin),
            "/alerts/",
            json!({"heading": "H", "zone_id": z}),
        )
        .await
        .is(201);
        api.post(
            As::Token(&admin),
            "/notifications/",
            json!({"title": "T", "message": "M"}),
        )
        .await
        .is(201);
    }
    let mut large = Vec::new();
    for path in &reads {
        large.push(api.get(u, path).await.round_trips());
    }
    assert_eq!(small, large);
    let tree = api.get(u, &format!("/organizations/{org}/")).await;
    assert_eq!(tree.is(200)["zones"].as_array().unwrap().len(), 5);
    assert_eq!(
        api.get(u, "/cameras/")
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
    let (a, u) = (As::Token(&admin), As::Token(&user));
    let org = api.org(&admin, "HQ").await;
    let other = api.org(&admin, "Other").await;
    let zone = api.zone(&admin, org, "Main Hall").await;
    let other_zone = api.zone(&admin, other, "Hall").await;
    let cam = api.camera(&admin, zone, "Cam").await;

    // The seed's example, and alerts tied to a zone or a camera (their organization is stored).
    let drill = api.post(a, "/alerts/", json!({"heading": "Fire Drill", "sub_heading": "Scheduled drill at 2 PM.", "status": "OPEN"})).await;
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
    let crowd = api.post(a, "/alerts/", json!({"heading": "Overcrowding in Main Hall", "sub_heading": "Detected 120/100 people. (Cam: 101)", "camera_id": cam})).await;
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
            a,
            "/alerts/",
            json!({"heading": "Spill", "zone_id": other_zone}),
        )
        .await
        .is(201));
    let res = api
        .post(
            a,
            "/alerts/",
            json!({"heading": "H", "zone_id": other_zone, "camera_id": cam}),
        )
        .await;
    assert_eq!(res.field("zone_id"), "The camera is not in this zone.");
    assert_eq!(
        api.post(a, "/alerts/", json!({"heading": "H", "zone_id": 999}))
            .await
            .field("zone_id"),
        "Invalid pk \"999\" - object does not exist."
    );
    assert_eq!(
        api.post(a, "/alerts/", json!({"sub_heading": "H"}))
            .await
            .field("heading"),
        "This field is required."
    );
    let closed_at_birth = api
        .post(a, "/alerts/", json!({"heading": "Old", "status": "CLOSED"}))
        .await;
    let closed_at_birth = closed_at_birth.is(201).clone();
    assert_eq!(closed_at_birth["closed_by"], 1);

    // Listing: newest first; status and organization filters combine.
    let (d, c, cl) = (id(&drill), id(&crowd), id(&closed_at_birth));
    assert_eq!(
        ids(api.get(u, "/alerts/").await.is(200)),
        [cl, elsewhere, c, d]
    );
    assert_eq!(
        ids(api.get(u, "/alerts/?status=OPEN").await.is(200)),
        [elsewhere, c, d]
    );
    assert_eq!(
        ids(api.get(u, "/alerts/?status=CLOSED").await.is(200)),
        [cl]
    );
    assert_eq!(
        ids(api.get(u, &format!("/alerts/?org_id={org}")).await.is(200)),
        [c]
    );
    assert_eq!(
        ids(api
            .get(u, &format!("/alerts/?org_id={other}&status=OPEN"))
            .await
            .is(200)),
        [elsewhere]
    );
    let first = api.get(u, "/alerts/?limit=2").await;
    assert_eq!(ids(first.is(200)), [cl, elsewhere]);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = api
        .get(u, &format!("/alerts/?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(rest.is(200)), [c, d]);

    // Acknowledge, then close: who and when are recorded; both are idempotent.
    let acked = api
        .post(a, &format!("/alerts/{c}/acknowledge/"), json!({}))
        .await;
    let acked = acked.is(200).clone();
    assert_eq!(
        (&acked["status"], &acked["acknowledged_by"]),
        (&json!("ACKNOWLEDGED"), &json!(1))
    );
    assert!(acked["acknowledged_at"].is_string());
    let again = api
        .post(a, &format!("/alerts/{c}/acknowledge"), json!({}))
        .await;
    assert_eq!(again.is(200), &acked);
    assert_eq!(
        ids(api.get(u, "/alerts/?status=ACKNOWLEDGED").await.is(200)),
        [c]
    );
    assert_eq!(
        ids(api
            .get(u, &format!("/alerts/?org_id={org}&status=OPEN"))
            .await
            .is(200)),
        Vec::<i64>::new()
    );
    let closed = api.post(a, &format!("/alerts/{c}/close/"), json!({})).await;
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
        api.post(a, &format!("/alerts/{c}/close/"), json!({}))
            .await
            .is(200),
        &closed
    );
    api.post(a, &format!("/alerts/{c}/acknowledge/"), json!({}))
        .await
        .detail(409);
    assert_eq!(
        ids(api
            .get(u, &format!("/alerts/?org_id={org}&status=CLOSED"))
            .await
            .is(200)),
        [c]
    );

    // PUT: the seed's close, edits, and reopening.
    let put = api
        .put(a, &format!("/alerts/{d}/"), json!({"status": "CLOSED"}))
        .await;
    assert_eq!(
        (&put.is(200)["status"], &put.body["closed_by"]),
        (&json!("CLOSED"), &json!(1))
    );
    let put = api
        .put(
            a,
            &format!("/alerts/{d}/"),
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
        api.get(u, &format!("/alerts/{d}/")).await.is(200),
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
        api.call(u, method.clone(), &path, Some(json!({"heading": "x"})))
            .await
            .detail(403);
        api.call(As::Anon, method, &path, Some(json!({})))
            .await
            .detail(401);
    }
    api.get(As::Anon, "/alerts/").await.detail(401);
    api.get(As::Anon, &format!("/alerts/{d}/"))
        .await
        .detail(401);

    // Delete removes it from every list.
    api.delete(a, &format!("/alerts/{c}/")).await.is(204);
    api.get(u, &format!("/alerts/{c}/")).await.detail(404);
    assert_eq!(
        ids(api.get(u, &format!("/alerts/?org_id={org}")).await.is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        ids(api.get(u, "/alerts/?status=CLOSED").await.is(200)),
        [cl]
    );
    for path in ["/alerts/999/", "/alerts/x/"] {
        api.get(u, path).await.detail(404);
        api.post(a, &format!("{path}close/"), json!({}))
            .await
            .detail(404);
    }
}

#[tokio::test]
async fn notifications_are_broadcast_to_every_user() {
    let api = Api::start().await;
    let (admin, user) = api.admin_and_user().await;
    let (a, u) = (As::Token(&admin), As::Token(&user));
    let welcome = api
        .post(
            a,
            "/notifications/",
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
            a,
            "/notifications/",
            json!({"title": "System Maintenance", "message": "Servers will restart in 10 mins."}),
        )
        .await
        .is(201));

    // Every user sees every broadcast, newest first.
    api.register("late@example.com", None, As::Anon)
        .await
        .is(201);
    let late = api.login("late@example.com").await["access"]
        .as_str()
        .unwrap()
        .to_owned();
    for who in [u, As::Token(&late), a] {
        assert_eq!(
            ids(api.get(who, "/notifications/").await.is(200)),
            [maint, id(&welcome)]
        );
    }
    assert_eq!(
        api.get(u, &format!("/notifications/{}/", id(&welcome)))
            .await
            .is(200),
        &welcome
    );
    let page = api.get(u, "/notifications/?limit=1").await;
    assert_eq!(ids(page.is(200)), [maint]);
    assert!(page.headers.contains_key("x-next-cursor"));

    // Only admins broadcast or delete.
    api.post(u, "/notifications/", json!({"title": "t", "message": "m"}))
        .await
        .detail(403);
    api.delete(u, &format!("/notifications/{maint}/"))
        .await
        .detail(403);
    api.get(As::Anon, "/notifications/").await.detail(401);
    api.post(As::Anon, "/notifications/", json!({}))
        .await
        .detail(401);
    assert_eq!(
        api.post(a, "/notifications/", json!({"title": "t"}))
            .await
            .field("message"),
        "This field is required."
    );
    api.delete(a, &format!("/notifications/{maint}/"))
        .await
        .is(204);
    api.delete(a, &format!("/notifications/{maint}/"))
        .await
        .detail(404);
    api.get(u, &format!("/notifications/{maint}/"))
        .await
        .detail(404);
    assert_eq!(
        ids(api.get(u, "/notifications/").await.is(200)),
        [id(&welcome)]
    );
}

#[tokio::test]
async fn status_and_health_report_the_stores() {
    let api = Api::start().await;
    let status = api.get(As::Anon, "/status/").await;
    assert_eq!(
        status.is(200),
        &json!({"status": "OK", "message": "Ecoflow system is operational."})
    );
    let health = api.get(As::Anon, "/health/").await;
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
    api.get(As::Anon, "/status").await.is(200);

    std::fs::create_dir_all(&objects).unwrap();
    assert_eq!(
        api.get(As::Anon, "/health").await.is(200)["overall_status"],
        "OK"
    );
}

#[tokio::test]
async fn openapi_documents_every_route_and_the_extensions() {
    let api = Api::start().await;
    let spec = send(api.http.get(api.server.url("/ecoflow/openapi.json"))).await;
    let paths = spec.ok()["paths"].as_object().unwrap();
    for path in [
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
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    assert!(paths["/api/auth/me"].get("patch").is_some());
    let docs = api
        .http
        .get(api.server.url("/ecoflow/docs/"))
        .send()
        .await
        .unwrap();
    assert!(docs.status().is_success());
}
