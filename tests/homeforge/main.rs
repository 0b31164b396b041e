//! Black-box tests of HomeForge: the real `civic-local` binary over HTTP on 127.0.0.1, base URL
//! `/homeforge/api`, with the seed's own payloads. Roles: owner (the first user), admin, user,
//! viewer, and anonymous callers.

use civic_testkit::api::{self, App};
use civic_testkit::http::{Resp, send};
use civic_testkit::local::LocalServer;
use image::{ImageEncoder, RgbImage};
use reqwest::Method;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// HomeForge's mount point; its errors are DRF's.
const APP: App = App {
    root: "/homeforge",
    api: "/homeforge/api",
    is_error: api::drf_error,
};

// The shared client with HomeForge's fixtures.
civic_testkit::client!();

/// The checks these tests make on a response.
trait Expect {
    fn field(&self, status: u16, field: &str) -> Vec<String>;
}

impl Expect for Resp {
    /// A DRF field error: `{"field": ["msg", ...]}` among the body's keys.
    #[track_caller]
    fn field(&self, status: u16, field: &str) -> Vec<String> {
        self.is(status);
        let msgs = self.body[field]
            .as_array()
            .unwrap_or_else(|| panic!("no {field} errors: {}", self.text));
        assert!(!msgs.is_empty());
        msgs.iter()
            .map(|m| m.as_str().expect("message").to_owned())
            .collect()
    }
}

/// The four roles' tokens and user ids.
struct Users {
    owner: String,
    admin: String,
    user: String,
    viewer: String,
    user_id: i64,
    admin_id: i64,
    owner_id: i64,
}

impl Api {
    async fn start() -> Self {
        Self::with(&[]).await
    }
    async fn with(args: &[&str]) -> Self {
        Self(api::Api::new(LocalServer::start(BIN, args).await, APP))
    }
    /// `PUT /me/` (or another path) as `multipart/form-data`.
    async fn multipart(&self, path: &str, token: &str, form: &Multipart) -> Resp {
        let (kind, body) = form.encode();
        self.raw(Method::PUT, path, token, &kind, body).await
    }

    async fn register(&self, username: &str, role: Option<&str>, token: Option<&str>) -> Resp {
        let mut body = json!({"username": username, "email": format!("{username}@example.com"), "password": "Attic-Lamp42", "first_name": "First", "last_name": "Last"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        self.post("/register/", token, body).await
    }
    async fn login(&self, username: &str, password: &str) -> Resp {
        self.post(
            "/login/",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }
    async fn token(&self, username: &str) -> String {
        let res = self.login(username, "Attic-Lamp42").await;
        res.is(200)["access"].as_str().unwrap().to_owned()
    }

    /// The owner (first user), an admin, a user and a viewer.
    async fn users(&self) -> Users {
        let owner_id = self.register("olivia", None, None).await.is(201)["id"]
            .as_i64()
            .unwrap();
        let owner = self.token("olivia").await;
        let admin_id = self
            .register("adam", Some("admin"), Some(&owner))
            .await
            .is(201)["id"]
            .as_i64()
            .unwrap();
        let user_id = self.register("ursula", None, None).await.is(201)["id"]
            .as_i64()
            .unwrap();
        self.register("victor", Some("viewer"), None).await.is(201);
        Users {
            admin: self.token("adam").await,
            user: self.token("ursula").await,
            viewer: self.token("victor").await,
            owner,
            user_id,
            admin_id,
            owner_id,
        }
    }

    /// Proposes the seed's Smart Fan (under `name`) and approves it; returns its id.
    async fn approved_type(&self, proposer: &str, staff: &str, name: &str) -> i64 {
        let id = self.propose(proposer, name).await.is(201)["id"]
            .as_i64()
            .unwrap();
        self.post(
            &format!("/admin/device-types/{id}/approve/"),
            Some(staff),
            json!({}),
        )
        .await
        .is(200);
        id
    }
    async fn propose(&self, token: &str, name: &str) -> Resp {
        let mut body = fan();
        body["name"] = name.into();
        self.post("/device-types/propose/", token, body).await
    }
    async fn device(&self, token: &str, type_id: i64, name: &str) -> Value {
        let body = json!({"name": name, "ip_address": "192.168.1.50", "device_type": type_id});
        self.post("/devices/", token, body).await.is(201).clone()
    }
}

/// The seed's proposal payload.
fn fan() -> Value {
    json!({
        "name": "Smart Fan",
        "definition": {
            "name": "Fan v1",
            "structure": [
                { "id": "mcu-1", "type": "mcu", "label": "ESP32", "position": { "x": 50, "y": 50 } },
                { "id": "relay_1", "type": "relay", "label": "Power", "position": { "x": 150, "y": 50 } },
                { "id": "pwm_1", "type": "pwm", "label": "Speed", "position": { "x": 150, "y": 150 } }
            ]
        },
        "card_template": {
            "layout_config": { "w": 2, "h": 2 },
            "controls": [
                { "widget_type": "TOGGLE", "label": "Master Power", "variable_mapping": "relay_1" },
                { "widget_type": "SLIDER", "label": "Fan Speed", "variable_mapping": "pwm_1",
                  "min_value": 0, "max_value": 100, "step": 10 }
            ]
        }
    })
}

/// A `multipart/form-data` body, written by hand so tests can also send what browsers never do.
#[derive(Default)]
struct Multipart {
    parts: Vec<Part>,
}

/// A field's name, its file name and content type when it is a file, and its bytes.
type Part = (String, Option<(String, String)>, Vec<u8>);

impl Multipart {
    fn text(mut self, name: &str, value: &str) -> Self {
        self.parts
            .push((name.into(), None, value.as_bytes().to_vec()));
        self
    }
    fn file(mut self, name: &str, filename: &str, kind: &str, bytes: Vec<u8>) -> Self {
        self.parts
            .push((name.into(), Some((filename.into(), kind.into())), bytes));
        self
    }
    fn encode(&self) -> (String, Vec<u8>) {
        const B: &str = "----civic-homeforge-boundary";
        let mut body = Vec::new();
        for (name, file, bytes) in &self.parts {
            body.extend_from_slice(
                format!("--{B}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
            );
            if let Some((filename, kind)) = file {
                body.extend_from_slice(
                    format!("; filename=\"{filename}\"\r\nContent-Type: {kind}").as_bytes(),
                );
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={B}"), body)
    }
}

fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 99]))
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&picture(w, h), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .write_image(&picture(w, h), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn first_user_is_owner_and_superuser_and_higher_roles_need_staff() {
    let api = Api::start().await;
    let first = api.register("johndoe", Some("viewer"), None).await;
    let me = first.is(201);
    assert_eq!(me["id"], 1);
    assert_eq!(me["username"], "johndoe");
    assert_eq!(me["email"], "johndoe@example.com");
    assert_eq!(me["first_name"], "First");
    assert_eq!(me["profile"]["role"], "owner");
    assert_eq!(me["is_superuser"], true);
    assert_eq!(me["profile"]["accent_color"], "#3B82F6");
    assert!(me["profile"]["avatar"].is_null());
    assert!(me.get("password").is_none() && me.get("password_hash").is_none());

    let second = api.register("jane", None, None).await;
    assert_eq!(second.is(201)["profile"]["role"], "user");
    assert_eq!(second.body["is_superuser"], false);
    let viewer = api.register("vic", Some("viewer"), None).await;
    assert_eq!(viewer.is(201)["profile"]["role"], "viewer");

    // Asking for more than `user` needs an owner's or admin's token, up to their own role.
    let owner = api.token("johndoe").await;
    let user = api.token("jane").await;
    api.register("a1", Some("admin"), None).await.detail(403);
    api.register("a1", Some("admin"), Some(&user))
        .await
        .detail(403);
    let admin = api.register("a1", Some("admin"), Some(&owner)).await;
    assert_eq!(admin.is(201)["profile"]["role"], "admin");
    let admin = api.token("a1").await;
    api.register("o2", Some("owner"), Some(&admin))
        .await
        .detail(403);
    let a2 = api.register("a2", Some("admin"), Some(&admin)).await;
    assert_eq!(a2.is(201)["profile"]["role"], "admin");
    let o2 = api.register("o2", Some("owner"), Some(&owner)).await;
    assert_eq!(o2.is(201)["profile"]["role"], "owner");
    assert_eq!(
        o2.body["is_superuser"], false,
        "only the first user is superuser"
    );
    // A token that comes along must be valid.
    api.register("x", None, Some("garbage")).await.detail(401);

    // Unknown roles, duplicate usernames (any case), weak passwords, missing fields.
    let bad = api.register("x", Some("superhero"), None).await;
    assert_eq!(
        bad.field(400, "role"),
        ["\"superhero\" is not a valid choice."]
    );
    let dup = api.register("JohnDoe", None, None).await;
    assert_eq!(
        dup.field(400, "username"),
        ["A user with that username already exists."]
    );
    let weak = api
        .post(
            "/register/",
            None,
            json!({"username": "weak", "password": "abc"}),
        )
        .await;
    assert_eq!(weak.field(400, "password").len(), 2);
    let lower = api
        .post(
            "/register/",
            None,
            json!({"username": "weak", "password": "abcdef"}),
        )
        .await;
    assert_eq!(
        lower.field(400, "password"),
        ["Password must contain at least one uppercase letter."]
    );
    let missing = api.post("/register/", None, json!({})).await;
    assert_eq!(missing.field(400, "username"), ["This field is required."]);
    assert_eq!(missing.field(400, "password"), ["This field is required."]);
    let bad_name = api
        .post(
            "/register/",
            None,
            json!({"username": "no spaces", "password": "Abcd", "email": "nope"}),
        )
        .await;
    bad_name.field(400, "username");
    bad_name.field(400, "email");
    // The minimum passes: 4 characters, one uppercase.
    api.post(
        "/register/",
        None,
        json!({"username": "min", "password": "Abcd"}),
    )
    .await
    .is(201);
}

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_owner() {
    let api = Api::start().await;
    let names: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let regs = futures::future::join_all(names.iter().map(|n| api.register(n, None, None))).await;
    let owners = regs
        .iter()
        .filter(|r| r.is(201)["profile"]["role"] == "owner")
        .count();
    assert_eq!(owners, 1);
    // The same username at once: exactly one wins.
    let same = futures::future::join_all((0..4).map(|_| api.register("same", None, None))).await;
    assert_eq!(same.iter().filter(|r| r.status == 201).count(), 1);
    assert_eq!(same.iter().filter(|r| r.status == 400).count(), 3);
}

#[tokio::test]
async fn login_refresh_and_token_scope() {
    let api = Api::start().await;
    api.register("johndoe", None, None).await.is(201);
    let pair = api.login("JohnDoe", "Attic-Lamp42").await;
    let pair = pair.is(200).clone();
    assert_eq!(pair.as_object().unwrap().len(), 2);
    let (access, refresh) = (
        pair["access"].as_str().unwrap(),
        pair["refresh"].as_str().unwrap(),
    );
    assert_eq!(api.get("/me/", access).await.is(200)["username"], "johndoe");

    let wrong = api.login("johndoe", "Password124").await;
    assert_eq!(
        wrong.detail(401),
        "No active account found with the given credentials"
    );
    api.login("nobody", "Attic-Lamp42").await.detail(401);
    let missing = api
        .post("/login/", None, json!({"username": "johndoe"}))
        .await;
    assert_eq!(missing.field(400, "password"), ["This field is required."]);

    // Refresh tokens rotate; each works once, and reuse is refused.
    let next = api
        .post("/token/refresh/", None, json!({"refresh": refresh}))
        .await;
    let next = next.is(200).clone();
    assert!(next["access"].is_string() && next["refresh"].is_string());
    api.get("/me/", next["access"].as_str().unwrap())
        .await
        .is(200);
    api.post("/token/refresh/", None, json!({"refresh": refresh}))
        .await
        .detail(401);
    api.post("/token/refresh/", None, json!({"refresh": access}))
        .await
        .detail(401);
    api.post("/token/refresh/", None, json!({}))
        .await
        .field(400, "refresh");

    // Without, with a bad, or with another app's token: 401 in DRF's words.
    let anon = api.get("/me/", None).await;
    assert_eq!(
        anon.detail(401),
        "Authentication credentials were not provided."
    );
    assert_eq!(
        api.get("/me/", "garbage").await.detail(401),
        "Given token not valid for any token type"
    );
    let street = send(api.http.post(api.server.url("/streetlight/api/auth/register")).json(
        &json!({"name": "s", "email": "s@example.com", "password": "password123", "city": "Delhi"}),
    ))
    .await;
    let foreign = street.is(201)["data"]["token"].as_str().unwrap().to_owned();
    api.get("/me/", &foreign).await.detail(401);
}

#[tokio::test]
async fn profile_updates_with_multipart_json_and_forms() {
    let api = Api::start().await;
    let mut u = api.users().await;
    // The seed's FormData example, with the current password (an extension).
    let form = Multipart::default()
        .text("first_name", "Johnny")
        .text("accent_color", "#FF5733")
        .text("password", "NewPass1")
        .text("current_password", "Attic-Lamp42");
    let me = api.multipart("/me/", &u.user, &form).await;
    assert_eq!(me.is(200)["first_name"], "Johnny");
    assert_eq!(me.body["last_name"], "Last", "absent fields stay");
    assert_eq!(me.body["profile"]["accent_color"], "#FF5733");
    api.login("ursula", "Attic-Lamp42").await.detail(401);
    // The change revoked the old token: the next requests use a new one.
    u.user = api.login("ursula", "NewPass1").await.is(200)["access"]
        .as_str()
        .unwrap()
        .to_owned();

    let bad = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default()
                .text("accent_color", "red")
                .text("password", "lower"),
        )
        .await;
    bad.field(400, "accent_color");
    bad.field(400, "password");
    // Nobody raises their own role; lowering it is allowed.
    let up = api
        .multipart("/me/", &u.user, &Multipart::default().text("role", "admin"))
        .await;
    assert_eq!(up.detail(403), "You cannot raise your own role.");
    api.multipart(
        "/me/",
        &u.admin,
        &Multipart::default().text("role", "owner"),
    )
    .await
    .detail(403);
    let unknown = api
        .multipart("/me/", &u.user, &Multipart::default().text("role", "root"))
        .await;
    unknown.field(400, "role");

    // JSON and urlencoded bodies work too; other types are 415.
    let json_put = api
        .put(
            "/me/",
            &u.user,
            json!({"last_name": "Smith", "email": "u@example.org"}),
        )
        .await;
    assert_eq!(json_put.is(200)["last_name"], "Smith");
    assert_eq!(json_put.body["email"], "u@example.org");
    api.put("/me/", &u.user, json!({"first_name": 5}))
        .await
        .field(400, "first_name");
    api.put("/me/", &u.user, json!({"avatar": 5}))
        .await
        .field(400, "avatar");
    let form = api
        .raw(
            Method::PUT,
            "/me/",
            &u.user,
            "application/x-www-form-urlencoded",
            "first_name=Ursa",
        )
        .await;
    assert_eq!(form.is(200)["first_name"], "Ursa");
    api.raw(Method::PUT, "/me/", &u.user, "text/plain", "hi")
        .await
        .detail(415);
    api.raw(
        Method::PUT,
        "/me/",
        &u.user,
        "application/json",
        "{not json",
    )
    .await
    .detail(400);
    api.raw(
        Method::PUT,
        "/me/",
        &u.user,
        "multipart/form-data; boundary=x",
        "garbage",
    )
    .await
    .detail(400);

    // Renaming frees the old username and takes the new one; a taken one is refused.
    let renamed = api.put("/me/", &u.user, json!({"username": "ursa"})).await;
    assert_eq!(renamed.is(200)["username"], "ursa");
    api.login("ursula", "NewPass1").await.detail(401);
    api.login("ursa", "NewPass1").await.is(200);
    let taken = api.put("/me/", &u.user, json!({"username": "ADAM"})).await;
    assert_eq!(
        taken.field(400, "username"),
        ["A user with that username already exists."]
    );
    api.register("ursula", None, None).await.is(201);

    // A viewer edits their own profile too; anonymous callers cannot.
    api.put("/me/", &u.viewer, json!({"first_name": "Vic"}))
        .await
        .is(200);
    api.put("/me/", None, json!({})).await.detail(401);
}

#[tokio::test]
async fn avatars_are_validated_images_served_back() {
    let api = Api::start().await;
    let u = api.users().await;
    let png_bytes = png(64, 48);
    let me = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default().file("avatar", "me.png", "image/png", png_bytes.clone()),
        )
        .await;
    let url = me.is(200)["profile"]["avatar"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!(
            "{}/homeforge/media/avatars/{}-",
            api.server.base, u.user_id
        )),
        "{url}"
    );
    assert!(url.ends_with(".png"), "{url}");
    assert_eq!(
        api.get("/me/", &u.user).await.is(200)["profile"]["avatar"],
        url.as_str()
    );
    let file = api.http.get(&url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.headers()["x-content-type-options"], "nosniff");
    assert_eq!(file.bytes().await.unwrap().as_ref(), png_bytes.as_slice());

    // A JPEG replaces it (the client's content type is not trusted); the old file is gone.
    let jpg = jpeg(120, 80);
    let me = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default().file("avatar", "x.bin", "application/octet-stream", jpg.clone()),
        )
        .await;
    let url2 = me.is(200)["profile"]["avatar"].as_str().unwrap().to_owned();
    assert!(url2.ends_with(".jpg"), "{url2}");
    let file = api.http.get(&url2).send().await.unwrap();
    assert_eq!(file.headers()["content-type"], "image/jpeg");
    assert_eq!(file.bytes().await.unwrap().as_ref(), jpg.as_slice());
    let old = api.send(api.http.get(&url)).await;
    assert_eq!(old.detail(404), "Not found.");
    let escape = api
        .server
        .url("/homeforge/media/avatars/..%2f..%2fjwt-secret");
    api.send(api.http.get(escape)).await.detail(404);

    // Not an image, a truncated one, a decompression bomb: 400 on the avatar field.
    let refused = [
        b"<html><script>alert(1)</script></html>".to_vec(),
        png_bytes[..png_bytes.len() / 2].to_vec(),
        civic_vision::decode::png_bomb(50_000, 50_000),
    ];
    for bytes in refused {
        let res = api
            .multipart(
                "/me/",
                &u.user,
                &Multipart::default().file("avatar", "a.png", "image/png", bytes),
            )
            .await;
        res.field(400, "avatar");
    }
    // An oversize upload is 413 (the request body limit, 1 MiB by default), refused from its
    // Content-Length before it is read.
    let head = format!(
        "PUT /homeforge/api/me/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1500000\r\n\r\n--b\r\n",
        u.user
    );
    let raw = civic_testkit::http::raw(&api.server.base, &head).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.ends_with(r#"{"detail":"Request body is too large"}"#),
        "{raw}"
    );
    // Nothing refused replaced the avatar.
    assert_eq!(
        api.get("/me/", &u.user).await.is(200)["profile"]["avatar"],
        url2.as_str()
    );

    // Staff can set another user's avatar through the admin override.
    let res = api
        .multipart(
            &format!("/users/{}/", u.user_id),
            &u.admin,
            &Multipart::default().file("avatar", "p.png", "image/png", png(8, 8)),
        )
        .await;
    assert!(
        res.is(200)["profile"]["avatar"]
            .as_str()
            .unwrap()
            .ends_with(".png")
    );
}

#[tokio::test]
async fn avatars_above_the_image_limit_are_413_even_when_the_body_limit_allows_them() {
    let api = Api::with(&["--body-limit", "8388608"]).await;
    let u = api.users().await;
    let big = vec![7u8; 3 << 20];
    let res = api
        .multipart(
            "/me/",
            &u.user,
            &Multipart::default().file("avatar", "big.png", "image/png", big),
        )
        .await;
    assert!(res.detail(413).contains("larger than"), "{}", res.text);
}

#[tokio::test]
async fn staff_manage_users() {
    let api = Api::start().await;
    let u = api.users().await;
    for token in [&u.owner, &u.admin] {
        let list = api.get("/users/", token).await;
        assert_eq!(ids(list.is(200)).len(), 4);
        assert_eq!(list.body[0]["profile"]["role"], "owner");
        let one = api.get(&format!("/users/{}/", u.user_id), token).await;
        assert_eq!(one.is(200)["username"], "ursula");
    }
    for token in [&u.user, &u.viewer] {
        let res = api.get("/users/", token).await;
        assert_eq!(
            res.detail(403),
            "Only Admins/Owners can perform this action."
        );
        api.get(&format!("/users/{}/", u.user_id), token)
            .await
            .detail(403);
        api.put(
            &format!("/users/{}/", u.user_id),
            token,
            json!({"first_name": "x"}),
        )
        .await
        .detail(403);
    }
    api.get("/users/", None).await.detail(401);
    api.get("/users/999/", &u.admin).await.detail(404);
    api.get("/users/abc/", &u.admin).await.detail(404);
    // Pages continue through X-Next-Cursor.
    let first = api.get("/users/?limit=3", &u.owner).await;
    assert_eq!(ids(first.is(200)).len(), 3);
    let cursor = first.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = api
        .http
        .get(api.url("/users/"))
        .query(&[("limit", "3"), ("cursor", cursor.as_str())])
        .bearer_auth(&u.owner);
    assert_eq!(ids(api.send(rest).await.is(200)).len(), 1);
    api.get("/users/?limit=0", &u.owner).await.detail(400);

    // Admin override: promote a user, reset a password; never above one's own role or an owner.
    let path = format!("/users/{}/", u.user_id);
    let promoted = api
        .put(
            &path,
            &u.admin,
            json!({"role": "admin", "password": "Reset1"}),
        )
        .await;
    assert_eq!(promoted.is(200)["profile"]["role"], "admin");
    // The reset revoked the user's tokens; a new login gets the new role at once.
    api.get("/users/", &u.user).await.detail(401);
    let reset = api.login("ursula", "Reset1").await;
    api.get("/users/", reset.is(200)["access"].as_str().unwrap())
        .await
        .is(200);
    api.put(&path, &u.admin, json!({"role": "owner"}))
        .await
        .detail(403);
    api.put(
        &format!("/users/{}/", u.owner_id),
        &u.admin,
        json!({"first_name": "x"}),
    )
    .await
    .detail(403);
    let by_owner = api.put(&path, &u.owner, json!({"role": "viewer"})).await;
    assert_eq!(by_owner.is(200)["profile"]["role"], "viewer");
    api.put(
        &format!("/users/{}/", u.admin_id),
        &u.owner,
        json!({"accent_color": "#12345"}),
    )
    .await
    .field(400, "accent_color");
    api.put("/users/999/", &u.owner, json!({"first_name": "x"}))
        .await
        .detail(404);
}

#[tokio::test]
async fn rooms_by_role() {
    let api = Api::start().await;
    let u = api.users().await;
    let kitchen = api
        .post(
            "/rooms/",
            &u.owner,
            json!({"name": "Kitchen", "description": "Ground floor", "owner": u.user_id}),
        )
        .await;
    let kitchen = kitchen.is(201).clone();
    assert_eq!(kitchen["owner"], u.user_id);
    assert_eq!(kitchen["description"], "Ground floor");
    let office = api
        .post("/rooms/", &u.admin, json!({"name": "Office"}))
        .await;
    assert_eq!(office.is(201)["owner"], u.admin_id);
    let (k, o) = (
        kitchen["id"].as_i64().unwrap(),
        office.body["id"].as_i64().unwrap(),
    );

    // Owners and admins see all rooms; a user and a viewer see their own.
    assert_eq!(ids(api.get("/rooms/", &u.owner).await.is(200)), [k, o]);
    assert_eq!(ids(api.get("/rooms", &u.admin).await.is(200)), [k, o]);
    assert_eq!(ids(api.get("/rooms/", &u.user).await.is(200)), [k]);
    assert_eq!(
        ids(api.get("/rooms/", &u.viewer).await.is(200)),
        Vec::<i64>::new()
    );
    assert_eq!(
        api.get(&format!("/rooms/{k}/"), &u.user).await.is(200)["name"],
        "Kitchen"
    );
    api.get(&format!("/rooms/{o}/"), &u.user).await.detail(404);
    api.get(&format!("/rooms/{o}/"), &u.owner).await.is(200);

    // Only owners and admins create, change and delete rooms.
    for token in [&u.user, &u.viewer] {
        let res = api.post("/rooms/", token, json!({"name": "Mine"})).await;
        assert_eq!(
            res.detail(403),
            "Only Admins/Owners can perform this action."
        );
        api.put(&format!("/rooms/{k}/"), token, json!({"name": "x"}))
            .await
            .detail(403);
        api.delete(&format!("/rooms/{k}/"), token).await.detail(403);
    }
    api.get("/rooms/", None).await.detail(401);
    api.post("/rooms/", None, json!({"name": "x"}))
        .await
        .detail(401);

    // Validation.
    api.post("/rooms/", &u.owner, json!({"name": "  "}))
        .await
        .field(400, "name");
    api.post("/rooms/", &u.owner, json!({}))
        .await
        .field(400, "name");
    let nobody = api
        .post("/rooms/", &u.owner, json!({"name": "x", "owner": 999}))
        .await;
    assert_eq!(
        nobody.field(400, "owner"),
        ["Invalid pk \"999\" - object does not exist."]
    );
    api.post("/rooms/", &u.owner, json!({"name": "x", "owner": true}))
        .await
        .field(400, "owner");
    api.post("/rooms/", &u.owner, json!({"name": 5}))
        .await
        .detail(400);

    // Update (also moving it to another owner), delete.
    let moved = api
        .put(
            &format!("/rooms/{o}/"),
            &u.admin,
            json!({"name": "Study", "owner": u.user_id}),
        )
        .await;
    assert_eq!(moved.is(200)["name"], "Study");
    assert_eq!(moved.body["owner"], u.user_id);
    assert_eq!(moved.body["description"], "", "absent fields stay");
    assert_eq!(ids(api.get("/rooms/", &u.user).await.is(200)), [k, o]);
    api.put("/rooms/999/", &u.admin, json!({"name": "x"}))
        .await
        .detail(404);
    api.delete(&format!("/rooms/{o}/"), &u.owner).await.is(204);
    api.delete(&format!("/rooms/{o}/"), &u.owner)
        .await
        .detail(404);
    api.get(&format!("/rooms/{o}/"), &u.owner).await.detail(404);
    api.get("/rooms/abc/", &u.owner).await.detail(404);
}

#[tokio::test]
async fn device_types_are_proposed_reviewed_and_then_visible() {
    let api = Api::start().await;
    let u = api.users().await;
    let proposed = api.post("/device-types/propose/", &u.user, fan()).await;
    let t = proposed.is(201).clone();
    assert_eq!(t["approved"], false);
    assert_eq!(t["status"], "pending");
    assert_eq!(t["proposed_by"], u.user_id);
    assert_eq!(t["definition"]["structure"][1]["id"], "relay_1");
    assert_eq!(t["card_template"]["controls"][1]["step"], 10.0);
    let id = t["id"].as_i64().unwrap();

    let dup = api.propose(&u.admin, "smart FAN").await;
    assert_eq!(
        dup.field(400, "name"),
        ["A device type with this name already exists."]
    );
    let mut bad = fan();
    bad["name"] = "Broken".into();
    bad["card_template"]["controls"][0]["variable_mapping"] = "relay_9".into();
    let res = api.post("/device-types/propose/", &u.user, bad).await;
    assert!(res.field(400, "card_template")[0].contains("relay_9"));
    let mut bad = fan();
    bad["name"] = "Broken".into();
    bad["card_template"]["controls"][0]["widget_type"] = "LASER".into();
    api.post("/device-types/propose/", &u.user, bad)
        .await
        .field(400, "card_template");
    let res = api
        .post("/device-types/propose/", &u.user, json!({"name": "Bare"}))
        .await;
    assert_eq!(res.field(400, "definition"), ["This field is required."]);
    assert_eq!(res.field(400, "card_template"), ["This field is required."]);
    let res = api
        .post("/device-types/propose/", &u.user, json!({"name": "Odd", "definition": {"name": "x", "structure": "no"}, "card_template": {}}))
        .await;
    res.field(400, "definition");
    api.post("/device-types/propose/", &u.viewer, fan())
        .await
        .detail(403);
    api.post("/device-types/propose/", None, fan())
        .await
        .detail(401);

    // Pending: visible to staff (everything, and the review queue), not to users.
    assert!(ids(api.get("/device-types/", &u.user).await.is(200)).is_empty());
    assert_eq!(ids(api.get("/device-types/", &u.admin).await.is(200)), [id]);
    let queue = api.get("/admin/device-types/pending/", &u.owner).await;
    assert_eq!(ids(queue.is(200)), [id]);
    assert_eq!(
        queue.body[0]["card_template"]["controls"][0]["label"],
        "Master Power"
    );
    for token in [&u.user, &u.viewer] {
        api.get("/admin/device-types/pending/", token)
            .await
            .detail(403);
        api.post(
            &format!("/admin/device-types/{id}/approve/"),
            token,
            json!({}),
        )
        .await
        .detail(403);
        api.post(
            &format!("/admin/device-types/{id}/deny/"),
            token,
            json!({"reason": "x"}),
        )
        .await
        .detail(403);
    }

    let approved = api
        .post(
            &format!("/admin/device-types/{id}/approve/"),
            &u.admin,
            json!({}),
        )
        .await;
    assert_eq!(approved.is(200)["approved"], true);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["reviewed_by"], u.admin_id);
    api.post(
        &format!("/admin/device-types/{id}/approve/"),
        &u.admin,
        json!({}),
    )
    .await
    .detail(400);
    api.post("/admin/device-types/999/approve/", &u.admin, json!({}))
        .await
        .detail(404);
    assert_eq!(
        ids(api.get("/device-types/", &u.viewer).await.is(200)),
        [id]
    );
    assert!(
        ids(api
            .get("/admin/device-types/pending/", &u.owner)
            .await
            .is(200))
        .is_empty()
    );

    // Denial needs a reason, which the proposer sees; the name is free again.
    let other = api.propose(&u.user, "Smart Lamp").await.is(201)["id"]
        .as_i64()
        .unwrap();
    let deny = format!("/admin/device-types/{other}/deny/");
    api.post(&deny, &u.owner, json!({}))
        .await
        .field(400, "reason");
    api.post(&deny, &u.owner, json!({"reason": "  "}))
        .await
        .field(400, "reason");
    let denied = api
        .post(
            &deny,
            &u.owner,
            json!({"reason": "Invalid specificaton text."}),
        )
        .await;
    assert_eq!(denied.is(200)["status"], "denied");
    assert_eq!(denied.body["denial_reason"], "Invalid specificaton text.");
    api.post(
        &format!("/admin/device-types/{other}/approve/"),
        &u.owner,
        json!({}),
    )
    .await
    .detail(400);
    let mine = api.get("/device-types/mine/", &u.user).await;
    assert_eq!(ids(mine.is(200)), [id, other]);
    assert_eq!(mine.body[1]["denial_reason"], "Invalid specificaton text.");
    assert_eq!(mine.body[0]["status"], "approved");
    let seen = api.get(&format!("/device-types/{other}/"), &u.user).await;
    assert_eq!(seen.is(200)["denial_reason"], "Invalid specificaton text.");
    api.get(&format!("/device-types/{other}/"), &u.viewer)
        .await
        .detail(404);
    api.get(&format!("/device-types/{id}/"), &u.viewer)
        .await
        .is(200);
    assert!(ids(api.get("/device-types/mine/", &u.viewer).await.is(200)).is_empty());
    assert_eq!(ids(api.get("/device-types/", &u.user).await.is(200)), [id]);
    api.propose(&u.user, "Smart Lamp").await.is(201);
}

#[tokio::test]
async fn devices_need_an_approved_type_and_belong_to_their_owner() {
    let api = Api::start().await;
    let u = api.users().await;
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
    let d = api.post("/devices/", &u.user, body).await.is(201).clone();
    assert_eq!(d["name"], "Kitchen Light");
    assert_eq!(d["room"], room);
    assert_eq!(d["icon"], "fa-lightbulb");
    assert_eq!(d["status"], "offline");
    assert_eq!(d["owner"], u.user_id);
    assert_eq!(d["device_type"], fan_type);
    assert_eq!(d["current_state"], json!({}));
    let id = d["id"].as_i64().unwrap();
    let plain = api.device(&u.admin, fan_type, "Admin Plug").await;
    assert_eq!(plain["icon"], "fa-cube");
    assert!(plain["room"].is_null());
    let v6 = api
        .post(
            "/devices/",
            &u.user,
            json!({"name": "v6", "ip_address": "fe80::1", "device_type": fan_type.to_string()}),
        )
        .await;
    assert_eq!(v6.is(201)["ip_address"], "fe80::1");

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

    // Ownership: users see their own; owners and admins see all.
    let all = [
        id,
        plain["id"].as_i64().unwrap(),
        v6.body["id"].as_i64().unwrap(),
    ];
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

#[tokio::test]
async fn undeclared_state_keys_merge_as_the_seed_shows_within_bounds() {
    let api = Api::start().await;
    let u = api.users().await;
    let t = api.approved_type(&u.user, &u.owner, "Smart Fan").await;
    let id = api.device(&u.user, t, "Fan").await["id"].as_i64().unwrap();
    let path = format!("/devices/{id}/state/");

    // The seed's example: a key the type does not declare stays when others are patched.
    api.patch(&path, &u.user, json!({"other_key": "stays_same"}))
        .await
        .is(200);
    let res = api
        .patch(&path, &u.user, json!({"relay_1": true, "pwm_1": 75}))
        .await;
    assert_eq!(
        res.is(200),
        &json!({"status": "State updated", "device_status": "online", "current_state": {"relay_1": true, "pwm_1": 75, "other_key": "stays_same"}})
    );
    // Undeclared keys take any JSON value, as given; adding one costs no extra round trip.
    let schedule = json!({"on": "07:00", "days": [1, 2, 5], "dim": null});
    let res = api
        .patch(&path, &u.user, json!({"schedule": schedule, "rssi": -61}))
        .await;
    assert_eq!(res.is(200)["current_state"]["schedule"], schedule);
    assert_eq!(res.round_trips(), 3);
    // At the bounds: 1024 bytes of JSON, 16 levels deep.
    let edge = "x".repeat(1022);
    let deep = (0..16).fold(json!(1), |v, _| json!([v]));
    api.patch(&path, &u.user, json!({"edge": edge, "deep": deep}))
        .await
        .is(200);
    let before = state_of(&api, &u.user, id).await;
    assert_eq!(before["edge"], edge.as_str());
    assert_eq!(before["deep"], deep);

    // Over them, or badly named: 400 in DRF's format, and nothing of the patch is written.
    let over = "x".repeat(1023);
    let res = api
        .patch(&path, &u.user, json!({"relay_1": false, "big": over}))
        .await;
    assert_eq!(
        res.field(400, "big"),
        ["Ensure this value has no more than 1024 bytes as JSON."]
    );
    api.patch(&path, &u.user, json!({"deep": [deep]}))
        .await
        .field(400, "deep");
    api.patch(&path, &u.user, json!({"device_id": 7}))
        .await
        .field(400, "device_id");
    let long = "k".repeat(65);
    for bad in ["bad key", "", "ключ", "a.b", long.as_str()] {
        api.patch(&path, &u.user, json!({ bad: 1, "relay_1": false }))
            .await
            .field(400, "non_field_errors");
    }
    api.patch(&path, &u.user, json!({"relay_1": [true]}))
        .await
        .field(400, "relay_1");
    for body in [json!([1]), json!("on"), json!(null), json!(3)] {
        api.patch(&path, &u.user, body)
            .await
            .field(400, "non_field_errors");
    }
    assert_eq!(state_of(&api, &u.user, id).await, before);

    // At most 64 undeclared keys per device (5 so far); declared keys do not count.
    let fill: serde_json::Map<String, Value> =
        (0..59).map(|i| (format!("x{i}"), json!(i))).collect();
    api.patch(&path, &u.user, Value::Object(fill)).await.is(200);
    let res = api.patch(&path, &u.user, json!({"one_more": 1})).await;
    assert_eq!(
        res.field(400, "non_field_errors"),
        ["A device holds at most 64 state keys that its type does not declare."]
    );
    // Existing undeclared keys and declared keys still change.
    let res = api
        .patch(
            &path,
            &u.user,
            json!({"x0": "again", "mcu-1": "v3", "relay_1": false}),
        )
        .await;
    let state = res.is(200)["current_state"].as_object().unwrap();
    assert_eq!(state.len(), 64 + 3);
    assert_eq!(state["x0"], "again");
    assert!(!state.contains_key("one_more"));

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

#[tokio::test]
async fn every_endpoint_wants_a_token_and_bad_input_is_4xx_in_drf_format() {
    let api = Api::start().await;
    let u = api.users().await;
    let protected = [
        (Method::GET, "/me/"),
        (Method::PUT, "/me/"),
        (Method::GET, "/users/"),
        (Method::GET, "/users/1/"),
        (Method::PUT, "/users/1/"),
        (Method::GET, "/rooms/"),
        (Method::POST, "/rooms/"),
        (Method::GET, "/rooms/1/"),
        (Method::PUT, "/rooms/1/"),
        (Method::DELETE, "/rooms/1/"),
        (Method::GET, "/device-types/"),
        (Method::GET, "/device-types/mine/"),
        (Method::GET, "/device-types/1/"),
        (Method::POST, "/device-types/propose/"),
        (Method::GET, "/admin/device-types/pending/"),
        (Method::POST, "/admin/device-types/1/approve/"),
        (Method::POST, "/admin/device-types/1/deny/"),
        (Method::GET, "/devices/"),
        (Method::POST, "/devices/"),
        (Method::GET, "/devices/1/"),
        (Method::PUT, "/devices/1/"),
        (Method::DELETE, "/devices/1/"),
        (Method::PATCH, "/devices/1/state/"),
        (Method::GET, "/topology/"),
    ];
    for (method, path) in &protected {
        let res = api.call(method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(
            res.detail(401),
            "Authentication credentials were not provided.",
            "{method} {path}"
        );
        // Without the trailing slash too.
        let res = api
            .call(
                method.clone(),
                path.trim_end_matches('/'),
                None,
                Some(json!({})),
            )
            .await;
        res.detail(401);
    }
    // Writes a viewer may not make: 403 before the body is even read.
    let viewer_writes = [
        (Method::POST, "/rooms/"),
        (Method::POST, "/device-types/propose/"),
        (Method::POST, "/devices/"),
        (Method::PUT, "/devices/1/"),
        (Method::DELETE, "/devices/1/"),
        (Method::PATCH, "/devices/1/state/"),
    ];
    for (method, path) in &viewer_writes {
        api.raw(method.clone(), path, &u.viewer, "application/json", "{oops")
            .await
            .detail(403);
    }

    // Malformed JSON, wrong types, wrong content types, unknown paths and methods.
    let bodies: [(&str, &str); 4] = [
        ("/rooms/", "{\"name\": "),
        ("/devices/", "[]"),
        ("/device-types/propose/", "{\"name\": 1}"),
        ("/register/", "null"),
    ];
    for (path, body) in bodies {
        let res = api
            .raw(Method::POST, path, &u.owner, "application/json", body)
            .await;
        res.detail(400);
    }
    api.raw(Method::POST, "/rooms/", &u.owner, "text/plain", "name=x")
        .await
        .detail(415);
    api.raw(
        Method::POST,
        "/login/",
        None,
        "application/json",
        "{\"username\": 1}",
    )
    .await
    .detail(400);
    api.get("/nowhere/", None).await.detail(404);
    let nothing = api.server.url("/homeforge/media/avatars/nothing.png");
    api.send(api.http.get(nothing)).await.detail(404);
    api.delete("/topology/", &u.owner).await.detail(405);
    api.get("/devices/?limit=abc", &u.owner).await.detail(400);
    let bad_cursor = api.get("/devices/?cursor=notacursor", &u.owner).await;
    bad_cursor.detail(400);
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let api = Api::start().await;
    api.assert_documented(&[
        "/api/register",
        "/api/login",
        "/api/token/refresh",
        "/api/me",
        "/api/users",
        "/api/users/{id}",
        "/api/rooms",
        "/api/rooms/{id}",
        "/api/device-types",
        "/api/device-types/mine",
        "/api/device-types/{id}",
        "/api/device-types/propose",
        "/api/admin/device-types/pending",
        "/api/admin/device-types/{id}/approve",
        "/api/admin/device-types/{id}/deny",
        "/api/devices",
        "/api/devices/{id}",
        "/api/devices/{id}/state",
        "/api/topology",
        "/media/avatars/{file}",
    ])
    .await;
}

/// Issue 15, items 6–8: strict ranks, password changes that revoke, per-account backoff,
/// common passwords.
mod accounts {
    use super::*;

    fn access(r: &Resp) -> String {
        r.is(200)["access"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn an_admin_cannot_take_over_a_peer_admin() {
        let api = Api::start().await;
        let u = api.users().await;
        let peer = api.register("ada", Some("admin"), Some(&u.owner)).await;
        let peer = format!("/users/{}/", peer.is(201)["id"]);
        let reset = api
            .put(&peer, &u.admin, json!({"password": "Taken-Over9"}))
            .await;
        assert_eq!(
            reset.detail(403),
            "Only a higher role can change this account."
        );
        api.put(&peer, &u.admin, json!({"role": "viewer"}))
            .await
            .detail(403);
        api.login("ada", "Taken-Over9").await.detail(401);
        // Below their rank they may.
        let user = format!("/users/{}/", u.user_id);
        api.put(&user, &u.admin, json!({"first_name": "U"}))
            .await
            .is(200);
    }

    #[tokio::test]
    async fn a_second_owner_cannot_change_the_first_who_outranks_them() {
        let api = Api::start().await;
        let u = api.users().await;
        api.register("otto", Some("owner"), Some(&u.owner))
            .await
            .is(201);
        let otto = api.token("otto").await;
        let first = format!("/users/{}/", u.owner_id);
        for change in [
            json!({"role": "viewer"}),
            json!({"password": "Taken-Over9"}),
        ] {
            let r = api.put(&first, &otto, change).await;
            assert_eq!(
                r.detail(403),
                "Only the first owner can change their own account."
            );
        }
        let me = api.get("/me/", &u.owner).await;
        assert_eq!(me.is(200)["profile"]["role"], "owner");
        // The first owner outranks the second and may demote them.
        let otto_id = api.get("/me/", &otto).await.is(200)["id"].clone();
        let demoted = api
            .put(
                &format!("/users/{otto_id}/"),
                &u.owner,
                json!({"role": "user"}),
            )
            .await;
        assert_eq!(demoted.is(200)["profile"]["role"], "user");
        api.get("/users/", &otto).await.detail(403);
    }

    #[tokio::test]
    async fn a_password_change_needs_the_current_one_and_revokes_every_older_token() {
        let api = Api::start().await;
        let u = api.users().await;
        let pair = api.login("ursula", "Attic-Lamp42").await;
        let (old_access, old_refresh) = (access(&pair), pair.body["refresh"].clone());
        let missing = api
            .put("/me/", &old_access, json!({"password": "Fresh-Start7"}))
            .await;
        assert_eq!(
            missing.field(400, "current_password"),
            ["This field is required."]
        );
        let body = json!({"password": "Fresh-Start7", "current_password": "Wrong-Guess1"});
        let wrong = api.put("/me/", &old_access, body).await;
        assert_eq!(wrong.detail(403), "Current password is incorrect.");
        api.login("ursula", "Fresh-Start7").await.detail(401);
        let body = json!({"password": "Fresh-Start7", "current_password": "Attic-Lamp42"});
        api.put("/me/", &old_access, body).await.is(200);
        // Both logins' access tokens and the refresh token are refused from now on.
        for old in [&old_access, &u.user] {
            api.get("/me/", old.as_str()).await.detail(401);
        }
        api.post("/token/refresh/", None, json!({"refresh": old_refresh}))
            .await
            .detail(401);
        let fresh = access(&api.login("ursula", "Fresh-Start7").await);
        api.get("/me/", &fresh).await.is(200);
    }

    #[tokio::test]
    async fn common_passwords_are_refused() {
        let api = Api::start().await;
        for common in ["Password1", "Qwerty123", "LETMEIN"] {
            let r = api
                .post(
                    "/register/",
                    None,
                    json!({"username": "c", "password": common}),
                )
                .await;
            assert!(
                r.field(400, "password")
                    .contains(&"This password is too common.".to_owned()),
                "{common}"
            );
        }
        api.post(
            "/register/",
            None,
            json!({"username": "c", "password": "Quiet-Fern31"}),
        )
        .await
        .is(201);
    }

    #[tokio::test]
    async fn failed_logins_back_off_with_retry_after() {
        let env = [("AUTH_BACKOFF_FREE", "3"), ("AUTH_BACKOFF_BASE_SECS", "60")];
        let api = Api(api::Api::new(
            LocalServer::start_env(BIN, &[], &env).await,
            APP,
        ));
        api.users().await;
        for _ in 0..4 {
            api.login("ursula", "Wrong-Guess1").await.detail(401);
        }
        let locked = api.login("ursula", "Attic-Lamp42").await;
        assert!(locked.detail(429).contains("Too many failed attempts"));
        let wait: u64 = locked.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((55..=60).contains(&wait), "{wait}");
        // Per account: the others sign in as usual.
        access(&api.login("olivia", "Attic-Lamp42").await);
    }
}
