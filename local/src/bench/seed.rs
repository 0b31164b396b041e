//! The read benchmark's data: [`ITEMS`] things in every list it measures, made through each
//! app's own API as its frontend or its devices would (never written to the store directly),
//! so what is read back has the stored shape real use gives it.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, ensure};
use chrono::{Duration, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

/// Items in every measured list: the default page size of the paged lists (Ozone events,
/// HomeForge, EcoFlow) and Occupancy's most lines per camera, so one call returns them all.
pub const ITEMS: usize = 100;

/// Seeding requests in flight at once, as several users would send them.
pub const SEED_CONCURRENCY: usize = 8;

/// How a request proves who sends it.
#[derive(Clone)]
pub enum Caller {
    Bearer(String),
    Cookie(String),
    /// No credentials: Ozone's handshake, Occupancy in civic-local's default open mode.
    Anonymous,
}

impl Caller {
    pub fn apply(&self, req: RequestBuilder) -> RequestBuilder {
        match self {
            Self::Bearer(t) => req.bearer_auth(t),
            Self::Cookie(c) => req.header(reqwest::header::COOKIE, c),
            Self::Anonymous => req,
        }
    }
}

/// One row of the table: what is measured and how to check that it lists [`ITEMS`] things.
#[derive(Clone)]
pub struct Target {
    /// `App   GET <path> (100 <things>)`.
    pub name: String,
    pub url: String,
    pub caller: Caller,
    /// JSON pointer to the listed array in the response (`""`: the body itself); `None` when
    /// the response is not a list.
    pub items: Option<&'static str>,
}

/// One app's API as the caller who reads its lists.
struct App {
    name: &'static str,
    api: String,
    caller: Caller,
}

impl App {
    /// `GET {api}{path}`, which lists [`ITEMS`] `things` at `items` (a JSON pointer).
    fn list(&self, path: &str, things: &str, items: &'static str) -> Target {
        Target {
            items: Some(items),
            name: format!("{:<12}GET {path} ({ITEMS} {things})", self.name),
            ..self.get(path)
        }
    }
    /// `GET {api}{path}`, which is not a list.
    fn get(&self, path: &str) -> Target {
        Target {
            name: format!("{:<12}GET {path}", self.name),
            url: format!("{}{path}", self.api),
            caller: self.caller.clone(),
            items: None,
        }
    }
}

/// POSTs sent by the seeding so far.
static WRITES: AtomicUsize = AtomicUsize::new(0);

/// POSTs `body` as `caller`; the reply must be a success. Returns its JSON body.
async fn post(http: &Client, url: &str, caller: &Caller, body: Value) -> Result<Value> {
    WRITES.fetch_add(1, Ordering::Relaxed);
    let res = caller.apply(http.post(url)).json(&body).send().await?;
    let status = res.status();
    let text = res.text().await?;
    ensure!(status.is_success(), "POST {url}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// POSTs `body` with no credentials.
async fn post_open(http: &Client, url: &str, body: Value) -> Result<Value> {
    post(http, url, &Caller::Anonymous, body).await
}

/// The string at `pointer` in a reply.
fn text(v: &Value, pointer: &str) -> Result<String> {
    let s = v.pointer(pointer).and_then(Value::as_str);
    Ok(s.with_context(|| format!("no {pointer} in {v}"))?
        .to_owned())
}

fn id(v: &Value) -> Result<i64> {
    v["id"].as_i64().with_context(|| format!("no id in {v}"))
}

/// Runs `make(i)` for every `i` in `0..n`, [`SEED_CONCURRENCY`] at a time; all must succeed.
async fn each<F, Fut>(n: usize, make: F) -> Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    futures::stream::iter(0..n)
        .map(make)
        .buffer_unordered(SEED_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// Every app's lists, seeded one app after the other. Returns the rows to measure and the
/// number of POSTs the seeding sent.
pub async fn all(http: &Client, base: &str) -> Result<(Vec<Target>, usize)> {
    let mut targets = streetlight(http, base).await?;
    targets.extend(ozone(http, base).await?);
    targets.extend(occupancy(http, base).await?);
    targets.extend(homeforge(http, base).await?);
    targets.extend(ecoflow(http, base).await?);
    Ok((targets, WRITES.load(Ordering::Relaxed)))
}

/// An admin of Delhi and [`ITEMS`] lights there.
async fn streetlight(http: &Client, base: &str) -> Result<Vec<Target>> {
    let api = format!("{base}/streetlight/api");
    let admin = json!({"name": "Bench", "email": "bench@example.com", "password": "password123", "city": "Delhi"});
    let reg = post_open(http, &format!("{api}/auth/register"), admin).await?;
    let admin = Caller::Bearer(text(&reg, "/data/token")?);
    let url = format!("{api}/lights/create");
    each(ITEMS, |i| {
        let light = json!({"lightId": format!("SL{i:04}"), "name": format!("Light {i}"), "city": "Delhi", "latitude": 28.6, "longitude": 77.2});
        post(http, &url, &admin, light)
    })
    .await?;
    let app = App {
        name: "Streetlight",
        api,
        caller: admin,
    };
    Ok(vec![
        app.get("/lights/summary"),
        app.list("/lights/list", "lights", "/data"),
        app.list("/lights/map", "lights", "/data"),
    ])
}

/// The MAC of Ozone device `bench-{i}`, which [`all`] assigns (a handshake with it gets the
/// device's token).
pub fn ozone_mac(i: usize) -> String {
    format!("02:00:00:00:{:02X}:{:02X}", i / 256, i % 256)
}

/// A staff user; [`ITEMS`] assigned devices, the first of which sends [`ITEMS`] events over
/// the last hours; [`ITEMS`] outlets.
async fn ozone(http: &Client, base: &str) -> Result<Vec<Target>> {
    let api = format!("{base}/ozone/api");
    let staff = Caller::Cookie(super::ozone_staff(http, &api).await?);
    let assign = format!("{api}/devices/assign/");
    each(ITEMS, |i| {
        let body = json!({"mac": ozone_mac(i), "device_id": format!("bench-{i}")});
        post(http, &assign, &staff, body)
    })
    .await?;
    // The device's next handshake after its assignment gives it its token.
    let hs = post_open(
        http,
        &format!("{api}/handshake/"),
        json!({"mac": ozone_mac(0)}),
    )
    .await?;
    let device = Caller::Bearer(text(&hs, "/token")?);
    let events = format!("{api}/device/events/");
    each(ITEMS, |i| {
        let ts = Utc::now() - Duration::minutes(i as i64);
        let treatment = ["BASIC", "STANDARD", "PREMIUM"][i % 3];
        let event = json!({"device_id": "bench-0", "firmware": "1.0.0", "event_id": format!("bench-0-{i:010}"),
            "event": "treatment", "treatment": treatment, "counter": i, "ts": ts.to_rfc3339_opts(SecondsFormat::Secs, true)});
        post(http, &events, &device, event)
    })
    .await?;
    let outlets = format!("{api}/outlets/");
    each(ITEMS, |i| {
        let outlet = json!({"name": format!("Outlet {i}"), "address": "1 Main Road", "contact_person": "Asha", "is_active": true});
        post(http, &outlets, &staff, outlet)
    })
    .await?;
    let app = App {
        name: "Ozone",
        api,
        caller: staff,
    };
    Ok(vec![
        app.list("/devices/all/", "devices", ""),
        app.list("/devices-data/", "devices", "/devices"),
        app.list("/events/?device_id=bench-0", "events", ""),
        app.list("/outlets/", "outlets", ""),
    ])
}

/// [`ITEMS`] cameras (open mode, civic-local's default); the first gets [`ITEMS`] lines and
/// one batch of [`ITEMS`] crossings five minutes apart, one per log period.
async fn occupancy(http: &Client, base: &str) -> Result<Vec<Target>> {
    let api = format!("{base}/occupancy/api/occupancy");
    let cameras = format!("{api}/cameras");
    let camera = |i: usize| json!({"camera_id": format!("BENCH_{i:03}"), "camera_name": format!("Gate {i}"), "location": "Main Gate"});
    let cam = id(&post_open(http, &cameras, camera(0)).await?)?;
    each(ITEMS - 1, |i| post_open(http, &cameras, camera(i + 1))).await?;
    let lines = format!("{api}/lines");
    let line = |i: usize| json!({"camera_id": cam, "line_name": format!("line {i}"), "x1": 0, "y1": 300, "x2": 1920, "y2": 300, "direction": "entry"});
    let first = id(&post_open(http, &lines, line(0)).await?)?;
    each(ITEMS - 1, |i| post_open(http, &lines, line(i + 1))).await?;
    let crossings: Vec<Value> = (0..ITEMS)
        .map(|i| {
            let t = Utc::now() - Duration::minutes(1 + 5 * i as i64);
            json!({"line_id": first, "direction": "entry", "timestamp": t.to_rfc3339_opts(SecondsFormat::Secs, true), "confidence": 0.9, "track_id": i})
        })
        .collect();
    let batch = json!({"events": crossings});
    post_open(http, &format!("{cameras}/{cam}/events"), batch).await?;
    let hours = ITEMS * 5 / 60 + 2;
    let app = App {
        name: "Occupancy",
        api,
        caller: Caller::Anonymous,
    };
    Ok(vec![
        app.list("/cameras", "cameras", ""),
        app.list(&format!("/cameras/{cam}/lines"), "lines", ""),
        app.list(&format!("/cameras/{cam}/logs?hours={hours}"), "periods", ""),
    ])
}

/// The seed's Smart Fan proposal, under `name`.
fn fan(name: &str) -> Value {
    json!({"name": name, "definition": {"name": "Fan v1", "structure": [
            {"id": "mcu-1", "type": "mcu", "label": "ESP32", "position": {"x": 50, "y": 50}},
            {"id": "relay_1", "type": "relay", "label": "Power", "position": {"x": 150, "y": 50}},
            {"id": "pwm_1", "type": "pwm", "label": "Speed", "position": {"x": 150, "y": 150}}]},
        "card_template": {"layout_config": {"w": 2, "h": 2}, "controls": [
            {"widget_type": "TOGGLE", "label": "Master Power", "variable_mapping": "relay_1"},
            {"widget_type": "SLIDER", "label": "Fan Speed", "variable_mapping": "pwm_1", "min_value": 0, "max_value": 100, "step": 10}]}})
}

/// A device type `Fan {i}`, proposed and approved by `owner`.
async fn approved_type(http: &Client, api: &str, owner: &Caller, i: usize) -> Result<Value> {
    let proposal = fan(&format!("Fan {i}"));
    let t = id(&post(
        http,
        &format!("{api}/device-types/propose/"),
        owner,
        proposal,
    )
    .await?)?;
    post(
        http,
        &format!("{api}/admin/device-types/{t}/approve/"),
        owner,
        json!({}),
    )
    .await?;
    Ok(json!({"id": t}))
}

/// The owner (first user); [`ITEMS`] proposed and approved device types; [`ITEMS`] devices of
/// the first type; [`ITEMS`] rooms.
async fn homeforge(http: &Client, base: &str) -> Result<Vec<Target>> {
    let api = format!("{base}/homeforge/api");
    let creds = json!({"username": "bench", "email": "bench@example.com", "password": "Attic-Lamp42", "first_name": "Bench", "last_name": "Owner"});
    post_open(http, &format!("{api}/register/"), creds).await?;
    let creds = json!({"username": "bench", "password": "Attic-Lamp42"});
    let login = post_open(http, &format!("{api}/login/"), creds).await?;
    let owner = Caller::Bearer(text(&login, "/access")?);
    let first = id(&approved_type(http, &api, &owner, 0).await?)?;
    each(ITEMS - 1, |i| approved_type(http, &api, &owner, i + 1)).await?;
    let devices = format!("{api}/devices/");
    each(ITEMS, |i| {
        let ip = format!("192.168.{}.{}", 1 + i / 250, 1 + i % 250);
        let device = json!({"name": format!("Device {i}"), "ip_address": ip, "device_type": first});
        post(http, &devices, &owner, device)
    })
    .await?;
    let rooms = format!("{api}/rooms/");
    each(ITEMS, |i| {
        post(http, &rooms, &owner, json!({"name": format!("Room {i}")}))
    })
    .await?;
    let app = App {
        name: "HomeForge",
        api,
        caller: owner,
    };
    Ok(vec![
        app.list("/devices/", "devices", ""),
        app.list("/device-types/", "types", ""),
        app.list("/rooms/", "rooms", ""),
    ])
}

/// One organization with [`ITEMS`] cameras, over as many zones as the cameras per zone limit
/// needs (round robin: concurrent creates in one zone race for its camera count).
async fn ecoflow_cameras(http: &Client, api: &str, admin: &Caller) -> Result<()> {
    let org = json!({"name": "Bench HQ", "org_type": "Corporate", "total_capacity": 500, "latitude": 34.0522, "longitude": -118.2437});
    let org = id(&post(http, &format!("{api}/organizations/"), admin, org).await?)?;
    let mut zones = Vec::new();
    for z in 0..ITEMS.div_ceil(25) {
        let zone = json!({"name": format!("Zone {z}"), "zone_type": "Entrance", "capacity": 50, "latitude": "34.0522", "longitude": "-118.2437", "organization_id": org});
        zones.push(id(
            &post(http, &format!("{api}/zones/"), admin, zone).await?
        )?);
    }
    let cameras = format!("{api}/cameras/");
    each(ITEMS, |i| {
        let camera = json!({"name": format!("Cam {i}"), "is_active": true, "zone_id": zones[i % zones.len()]});
        post(http, &cameras, admin, camera)
    })
    .await
}

/// The first user (an admin); [`ITEMS`] cameras; [`ITEMS`] alerts; [`ITEMS`] notifications.
async fn ecoflow(http: &Client, base: &str) -> Result<Vec<Target>> {
    let api = format!("{base}/ecoflow/api");
    let creds = json!({"email": "bench@example.com", "password": "securepassword123", "first_name": "Bench", "last_name": "Admin"});
    post_open(http, &format!("{api}/auth/register/"), creds.clone()).await?;
    let login = post_open(http, &format!("{api}/auth/login/"), creds).await?;
    let admin = Caller::Bearer(text(&login, "/access")?);
    ecoflow_cameras(http, &api, &admin).await?;
    let alerts = format!("{api}/alerts/");
    each(ITEMS, |i| {
        let alert = json!({"heading": format!("Overcrowding {i}"), "sub_heading": "Detected 120/100 people.", "status": "OPEN"});
        post(http, &alerts, &admin, alert)
    })
    .await?;
    let notifications = format!("{api}/notifications/");
    each(ITEMS, |i| {
        let notice =
            json!({"title": format!("Notice {i}"), "message": "Servers restart in 10 minutes."});
        post(http, &notifications, &admin, notice)
    })
    .await?;
    let app = App {
        name: "EcoFlow",
        api,
        caller: admin,
    };
    Ok(vec![
        app.list("/cameras/", "cameras", ""),
        app.list("/alerts/", "alerts", ""),
        app.list("/notifications/", "notifications", ""),
    ])
}
