//! Black-box tests of HomeForge: the real `civic-local` binary over HTTP on 127.0.0.1, base URL
//! `/homeforge/api`, with the seed's own payloads. Roles: owner (the first user), admin, user,
//! viewer, and anonymous callers.

use civic_testkit::api::{self, App};
use civic_testkit::http::Resp;
use civic_testkit::local::LocalServer;
use image::{ImageEncoder, RgbImage};
use reqwest::Method;
use serde_json::{Value, json};

mod accounts;
mod auth;
mod device_types;
mod devices;
mod live;
mod platform;
mod profile;
mod rooms;
mod state;
mod topology;
mod users;

const BIN: &str = env!("CARGO_BIN_EXE_civic-local");

/// HomeForge's mount point; its errors are DRF's.
const APP: App = App {
    root: "/homeforge",
    api: "/homeforge/api",
    is_error: api::drf_error,
    lagging: &[],
};

// The shared client with HomeForge's fixtures.
civic_testkit::client!();

/// The checks these tests make on a response.
pub(crate) trait Expect {
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
pub(crate) struct Users {
    pub(crate) owner: String,
    pub(crate) admin: String,
    pub(crate) user: String,
    pub(crate) viewer: String,
    pub(crate) user_id: i64,
    pub(crate) admin_id: i64,
    pub(crate) owner_id: i64,
}

impl Api {
    pub(crate) async fn start() -> Self {
        Self::with(&[]).await
    }
    pub(crate) async fn with(args: &[&str]) -> Self {
        Self(api::Api::new(LocalServer::start(BIN, args).await, APP))
    }
    /// `PUT /me/` (or another path) as `multipart/form-data`.
    pub(crate) async fn multipart(&self, path: &str, token: &str, form: &Multipart) -> Resp {
        let (kind, body) = form.encode();
        self.raw(Method::PUT, path, token, &kind, body).await
    }

    pub(crate) async fn register(
        &self,
        username: &str,
        role: Option<&str>,
        token: Option<&str>,
    ) -> Resp {
        let mut body = json!({"username": username, "email": format!("{username}@example.com"), "password": "Attic-Lamp42", "first_name": "First", "last_name": "Last"});
        if let Some(r) = role {
            body["role"] = r.into();
        }
        self.post("/register/", token, body).await
    }
    pub(crate) async fn login(&self, username: &str, password: &str) -> Resp {
        self.post(
            "/login/",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }
    pub(crate) async fn token(&self, username: &str) -> String {
        let res = self.login(username, "Attic-Lamp42").await;
        res.is(200)["access"].as_str().unwrap().to_owned()
    }

    /// The owner (first user), an admin, a user and a viewer.
    pub(crate) async fn users(&self) -> Users {
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
    pub(crate) async fn approved_type(&self, proposer: &str, staff: &str, name: &str) -> i64 {
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
    pub(crate) async fn propose(&self, token: &str, name: &str) -> Resp {
        let mut body = fan();
        body["name"] = name.into();
        self.post("/device-types/propose/", token, body).await
    }
    pub(crate) async fn device(&self, token: &str, type_id: i64, name: &str) -> Value {
        let body = json!({"name": name, "ip_address": "192.168.1.50", "device_type": type_id});
        self.post("/devices/", token, body).await.is(201).clone()
    }
}

/// The seed's proposal payload.
pub(crate) fn fan() -> Value {
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
pub(crate) struct Multipart {
    parts: Vec<Part>,
}

/// A field's name, its file name and content type when it is a file, and its bytes.
type Part = (String, Option<(String, String)>, Vec<u8>);

impl Multipart {
    pub(crate) fn text(mut self, name: &str, value: &str) -> Self {
        self.parts
            .push((name.into(), None, value.as_bytes().to_vec()));
        self
    }
    pub(crate) fn file(mut self, name: &str, filename: &str, kind: &str, bytes: Vec<u8>) -> Self {
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

pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&picture(w, h), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

pub(crate) fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .write_image(&picture(w, h), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

pub(crate) fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v["id"].as_i64().unwrap())
        .collect()
}
