//! Lights: listing and map per city, detail with recent logs, city summary counters, control,
//! device status updates, and the admin extensions (create, update, delete, import, logs).

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use civic_auth::device as credential;
use civic_core::iot::{DeviceClass, DeviceTopics, MqttLogin};
use civic_core::item::{from_item, to_item};
use civic_core::retry::won;
use civic_core::{Error, Json, Query, Result, ids, page, retry};
use civic_store::{Cond, Item, Key, StoreError, Table, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    Admin, AtLeast, Operator, Reply, State, User, city_key, reply, require_fields, required,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(summary))
        .routes(routes!(map))
        .routes(routes!(control))
        .routes(routes!(update_status))
        .routes(routes!(create))
        .routes(routes!(update))
        .routes(routes!(delete))
        .routes(routes!(import))
        .routes(routes!(rotate_credential))
        .routes(routes!(logs))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    On,
    Off,
    Error,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::On => "on",
            Status::Off => "off",
            Status::Error => "error",
        }
    }
    /// The summary counter this status is counted in.
    fn counter(self) -> &'static str {
        match self {
            Status::On => "lights_on",
            Status::Off => "lights_off",
            Status::Error => "lights_in_error",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Light {
    pub id: i64,
    pub light_id: String,
    pub name: String,
    pub city: String,
    pub latitude: f64,
    pub longitude: f64,
    pub address: Option<String>,
    pub status: Status,
    pub is_automatic: bool,
    pub brightness: i64,
    pub last_status_change: String,
    pub error_details: Option<String>,
}

/// A stored light and the version it was read at.
struct Versioned {
    light: Light,
    version: i64,
}

fn light_key(light_id: &str) -> Key {
    Key::new(format!("LIGHT#{light_id}"), "META")
}

impl Light {
    fn to_item(&self, version: i64) -> Result<Item> {
        let key = light_key(&self.light_id);
        let mut item = to_item(
            self,
            &[
                ("PK", key.pk),
                ("SK", key.sk),
                ("GSI1PK", city_key(&self.city)),
                ("GSI1SK", self.light_id.clone()),
            ],
        )?;
        item.insert("version".into(), version.into());
        Ok(item)
    }
}

impl Versioned {
    fn from_item(item: Item) -> Result<Self> {
        let version = item.get("version").and_then(Value::as_i64).unwrap_or(0);
        Ok(Self {
            light: from_item(item)?,
            version,
        })
    }

    async fn load(table: &dyn Table, light_id: &str) -> Result<Self> {
        let item = table
            .get(&light_key(light_id))
            .await?
            .ok_or_else(not_found)?;
        Self::from_item(item)
    }
}

fn not_found() -> Error {
    Error::NotFound("Light not found".into())
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ControlLog {
    pub id: i64,
    pub light_id: String,
    pub action: String,
    pub performed_by: String,
    /// `manual` (control) or `automatic` (device status update).
    pub control_type: String,
    pub previous_status: Status,
    pub new_status: Status,
    pub created_at: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Summary {
    pub id: i64,
    pub city: String,
    pub total_lights: i64,
    pub lights_on: i64,
    pub lights_off: i64,
    pub lights_in_error: i64,
    pub last_updated: String,
}

fn summary_key(city: &str) -> Key {
    Key::new(city_key(city), "SUMMARY")
}

#[derive(Deserialize, IntoParams)]
pub struct CityParams {
    /// City name (case-insensitive); defaults to the caller's city.
    city: Option<String>,
    /// Extension: page size, 1–1000 (default 1000).
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

impl CityParams {
    fn city<'a>(&'a self, user: &'a User) -> &'a str {
        required(&self.city).unwrap_or(&user.city)
    }
}

async fn city_page(s: &State, user: &User, q: CityParams) -> Result<(Vec<Light>, Option<String>)> {
    let limit = page::limit(q.limit, 1000, 1000)?;
    let query = civic_store::Query::index(city_key(q.city(user)))
        .limit(limit)
        .cursor(q.cursor.clone());
    let res = s.table.query(query).await?;
    let lights = res
        .items
        .into_iter()
        .map(from_item)
        .collect::<Result<Vec<Light>>>()?;
    Ok((lights, res.cursor))
}

/// All lights of a city (the caller's by default), ordered by light id.
#[utoipa::path(get, path = "/api/lights/list", tag = "lights", params(CityParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Vec<Light>>)), (status = 401)))]
async fn list(S(s): S<State>, user: User, Query(q): Query<CityParams>) -> Result<Response> {
    let (lights, cursor) = city_page(&s, &user, q).await?;
    Ok(page::with_cursor(
        reply(StatusCode::OK, "Lights retrieved successfully", lights),
        cursor,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Location {
    latitude: f64,
    longitude: f64,
}

#[derive(Serialize, ToSchema)]
pub struct MapLight {
    light_id: String,
    name: String,
    location: Location,
    status: Status,
}

/// Lights of a city with the minimal data a map needs.
#[utoipa::path(get, path = "/api/lights/map", tag = "lights", params(CityParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Vec<MapLight>>)), (status = 401)))]
async fn map(S(s): S<State>, user: User, Query(q): Query<CityParams>) -> Result<Response> {
    let (lights, cursor) = city_page(&s, &user, q).await?;
    let points: Vec<MapLight> = lights
        .into_iter()
        .map(|l| MapLight {
            light_id: l.light_id,
            name: l.name,
            location: Location {
                latitude: l.latitude,
                longitude: l.longitude,
            },
            status: l.status,
        })
        .collect();
    Ok(page::with_cursor(
        reply(StatusCode::OK, "Map data retrieved", points),
        cursor,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct SummaryParams {
    /// City name (case-insensitive); defaults to the caller's city.
    city: Option<String>,
}

/// A city's counters, kept current by every status change (one read, never a scan).
#[utoipa::path(get, path = "/api/lights/summary", tag = "lights", params(SummaryParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Summary>)), (status = 401), (status = 404)))]
async fn summary(
    S(s): S<State>,
    user: User,
    Query(q): Query<SummaryParams>,
) -> Result<Reply<Summary>> {
    let city = required(&q.city).unwrap_or(&user.city);
    let item = s
        .table
        .get(&summary_key(city))
        .await?
        .ok_or_else(|| Error::NotFound("No data for city".into()))?;
    Ok(reply(
        StatusCode::OK,
        "City summary retrieved",
        from_item(item)?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LightParams {
    #[serde(rename = "lightId")]
    #[param(rename = "lightId")]
    light_id: Option<String>,
}

impl LightParams {
    fn light_id(&self) -> Result<&str> {
        required(&self.light_id).ok_or_else(|| Error::bad_request("Light ID not provided"))
    }
}

#[derive(Serialize, ToSchema)]
pub struct Detail {
    light: Light,
    #[serde(rename = "recentLogs")]
    recent_logs: Vec<ControlLog>,
}

const RECENT_LOGS: usize = 10;

/// A light and its newest control logs, in one query.
#[utoipa::path(get, path = "/api/lights/detail", tag = "lights", params(LightParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Detail>)), (status = 400), (status = 401), (status = 404)))]
async fn detail(
    S(s): S<State>,
    _user: User,
    Query(q): Query<LightParams>,
) -> Result<Reply<Detail>> {
    let key = light_key(q.light_id()?);
    let res = s
        .table
        .query(
            civic_store::Query::partition(key.pk)
                .reverse()
                .limit(RECENT_LOGS + 1),
        )
        .await?;
    let mut items = res.items.into_iter();
    let light = items
        .next()
        .filter(|i| i.get("SK").and_then(Value::as_str) == Some("META"))
        .ok_or_else(not_found)?;
    let recent_logs = items.map(from_item).collect::<Result<Vec<ControlLog>>>()?;
    Ok(reply(
        StatusCode::OK,
        "Light details retrieved",
        Detail {
            light: from_item(light)?,
            recent_logs,
        },
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct ControlRequest {
    #[serde(rename = "lightId")]
    #[schema(required, nullable = false)]
    light_id: Option<String>,
    /// `on` or `off`.
    #[schema(required, nullable = false)]
    action: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ControlData {
    light_id: String,
    status: Status,
    is_automatic: bool,
    last_status_change: String,
}

/// Turn a light on or off (operator or admin). Switches the light to manual mode.
#[utoipa::path(post, path = "/api/lights/control", tag = "lights", request_body = ControlRequest, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<ControlData>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn control(
    S(s): S<State>,
    AtLeast(user): Operator,
    Json(req): Json<ControlRequest>,
) -> Result<Reply<ControlData>> {
    require_fields(&[("lightId", &req.light_id), ("action", &req.action)])?;
    let status = match required(&req.action) {
        Some("on") => Status::On,
        Some("off") => Status::Off,
        _ => return Err(Error::bad_request("action must be \"on\" or \"off\"")),
    };
    let change = Change {
        status,
        error_details: None,
        manual: true,
        performed_by: user.email.clone(),
    };
    let light = change_status(
        s.table.as_ref(),
        required(&req.light_id).unwrap_or_default(),
        change,
    )
    .await?;
    command(&s, &light.light_id, status).await;
    let data = ControlData {
        light_id: light.light_id,
        status: light.status,
        is_automatic: light.is_automatic,
        last_status_change: light.last_status_change,
    };
    Ok(reply(
        StatusCode::OK,
        format!("Light turned {}", status.as_str()),
        data,
    ))
}

/// Tells the light's device to switch. The change is stored already; a device that misses
/// the command reports its real status, so a failed publish is logged, not returned.
async fn command(s: &State, light_id: &str, status: Status) {
    let topic = format!("streetlight/lights/{light_id}/command");
    let msg = serde_json::json!({"action": status.as_str()});
    if let Err(e) = s.devices.publish(&topic, &msg).await {
        tracing::warn!(light = light_id, error = %e, "command not published");
    }
}

#[derive(Deserialize, ToSchema)]
pub struct StatusRequest {
    #[serde(rename = "lightId")]
    #[schema(required, nullable = false)]
    light_id: Option<String>,
    /// `on`, `off` or `error`.
    #[schema(required, nullable = false)]
    status: Option<Status>,
    #[serde(rename = "errorDetails")]
    error_details: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StatusData {
    light_id: String,
    status: Status,
    error_details: Option<String>,
    last_status_change: String,
}

/// A status report from a light's device (operator or admin credentials; devices over MQTT use
/// the same logic). Logged as an automatic change.
#[utoipa::path(post, path = "/api/lights/update-status", tag = "lights", request_body = StatusRequest, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<StatusData>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update_status(
    S(s): S<State>,
    AtLeast(user): Operator,
    Json(req): Json<StatusRequest>,
) -> Result<Reply<StatusData>> {
    let data = status_report(&s, req, &user.email).await?;
    Ok(reply(StatusCode::OK, "Light status updated", data))
}

/// The topic rule's message: `{status, errorDetails}` and `lightId` from the topic
/// (`streetlight/lights/{lightId}/status`). The device's certificate policy lets it publish
/// only on its own topic, so the change is logged as performed by `device`.
pub async fn device_status(s: State, msg: Value) -> Result<Value> {
    let data = status_report(&s, civic_core::iot::message(msg)?, "device").await?;
    civic_core::iot::report(data)
}

async fn status_report(s: &State, req: StatusRequest, by: &str) -> Result<StatusData> {
    require_fields(&[("lightId", &req.light_id)])?;
    let status = req
        .status
        .ok_or_else(|| Error::bad_request("Missing required fields: status"))?;
    let light = report_status(
        s.table.as_ref(),
        required(&req.light_id).unwrap_or_default(),
        status,
        req.error_details,
        by,
    )
    .await?;
    Ok(StatusData {
        light_id: light.light_id,
        status: light.status,
        error_details: light.error_details,
        last_status_change: light.last_status_change,
    })
}

/// A device's status report: the domain function behind `update-status` and the MQTT rule.
pub async fn report_status(
    table: &dyn Table,
    light_id: &str,
    status: Status,
    details: Option<String>,
    by: &str,
) -> Result<Light> {
    let error_details = if status == Status::Error {
        details.filter(|d| !d.trim().is_empty())
    } else {
        None
    };
    change_status(
        table,
        light_id,
        Change {
            status,
            error_details,
            manual: false,
            performed_by: by.to_owned(),
        },
    )
    .await
}

struct Change {
    status: Status,
    error_details: Option<String>,
    /// Manual control switches the light out of automatic mode.
    manual: bool,
    performed_by: String,
}

/// Writes the light, its log entry and the city counters in one transaction, guarded by the
/// light's version so concurrent changes cannot skew the counters.
async fn change_status(table: &dyn Table, light_id: &str, change: Change) -> Result<Light> {
    let log_id = ids::next_id(table, "log").await?;
    let change = &change;
    retry::optimistic(move || async move {
        let Versioned {
            light: before,
            version,
        } = Versioned::load(table, light_id).await?;
        let now = civic_core::time::now_rfc3339();
        let mut light = before.clone();
        light.status = change.status;
        light.error_details = change.error_details.clone();
        light.last_status_change = now.clone();
        if change.manual {
            light.is_automatic = false;
        }
        let log = ControlLog {
            id: log_id,
            light_id: light.light_id.clone(),
            action: change.status.as_str().into(),
            performed_by: change.performed_by.clone(),
            control_type: if change.manual { "manual" } else { "automatic" }.into(),
            previous_status: before.status,
            new_status: change.status,
            created_at: now.clone(),
        };
        let log_key = Key::new(format!("LIGHT#{light_id}"), format!("LOG#{log_id:012}"));
        let mut writes = vec![
            Write::Put {
                item: light.to_item(version + 1)?,
                cond: Cond::Version(version),
            },
            Write::Put {
                item: to_item(&log, &[("PK", log_key.pk), ("SK", log_key.sk)])?,
                cond: Cond::Always,
            },
        ];
        if before.status != change.status {
            let counters = Update::new(summary_key(&light.city))
                .add(before.status.counter(), -1)
                .add(change.status.counter(), 1)
                .set("last_updated", now);
            writes.push(Write::Update(counters));
        }
        won(table.transact(writes).await).map(|won| won.then_some(light))
    })
    .await
}

#[derive(Clone, Deserialize, ToSchema)]
pub struct NewLight {
    #[serde(rename = "lightId", alias = "light_id")]
    #[schema(required, nullable = false)]
    light_id: Option<String>,
    #[schema(required, nullable = false)]
    name: Option<String>,
    #[schema(required, nullable = false)]
    city: Option<String>,
    #[schema(required, nullable = false)]
    latitude: Option<f64>,
    #[schema(required, nullable = false)]
    longitude: Option<f64>,
    address: Option<String>,
    /// Default `off`.
    status: Option<Status>,
    /// Default `true`.
    is_automatic: Option<bool>,
    /// 0–100, default 100.
    brightness: Option<i64>,
}

fn valid_light_id(id: &str) -> Result<()> {
    let ok = id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "lightId may hold up to 64 letters, digits, '-' or '_'",
        ))
    }
}

fn valid_position(lat: f64, lon: f64) -> Result<()> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Error::bad_request(
            "latitude must be within ±90 and longitude within ±180",
        ));
    }
    Ok(())
}

fn valid_brightness(b: i64) -> Result<()> {
    if (0..=100).contains(&b) {
        Ok(())
    } else {
        Err(Error::bad_request("brightness must be between 0 and 100"))
    }
}

/// Creates a light (see [`register_light`]) without showing its MQTT login: imported lights
/// get theirs from the rotation endpoint.
pub async fn create_light(table: &dyn Table, new: NewLight) -> Result<Light> {
    register_light(table, new).await.map(|(light, _)| light)
}

/// Creates a light, counts it in its city's summary and issues its MQTT credential, atomically.
pub async fn register_light(table: &dyn Table, new: NewLight) -> Result<(Light, MqttLogin)> {
    require_fields(&[
        ("lightId", &new.light_id),
        ("name", &new.name),
        ("city", &new.city),
    ])?;
    let (Some(latitude), Some(longitude)) = (new.latitude, new.longitude) else {
        return Err(Error::bad_request(
            "Missing required fields: latitude, longitude",
        ));
    };
    let light_id = required(&new.light_id).unwrap_or_default();
    valid_light_id(light_id)?;
    valid_position(latitude, longitude)?;
    let brightness = new.brightness.unwrap_or(100);
    valid_brightness(brightness)?;
    let city = required(&new.city).unwrap_or_default();

    let now = civic_core::time::now_rfc3339();
    let light = Light {
        id: ids::next_id(table, "light").await?,
        light_id: light_id.to_owned(),
        name: required(&new.name).unwrap_or_default().to_owned(),
        city: city.to_owned(),
        latitude,
        longitude,
        address: new.address.filter(|a| !a.trim().is_empty()),
        status: new.status.unwrap_or(Status::Off),
        is_automatic: new.is_automatic.unwrap_or(true),
        brightness,
        last_status_change: now.clone(),
        error_details: None,
    };
    // The summary's integer id is allocated with the city's first light.
    let summary = if table.get(&summary_key(city)).await?.is_none() {
        Update::new(summary_key(city))
            .set_if_absent("id", ids::next_id(table, "city").await?)
            .set_if_absent("city", city)
    } else {
        Update::new(summary_key(city))
    };
    // ADD 0 makes every counter exist, so a summary always has all of them.
    let summary = [Status::On, Status::Off, Status::Error]
        .into_iter()
        .fold(summary.add("total_lights", 1), |u, st| {
            u.add(st.counter(), i64::from(st == light.status))
        })
        .set("last_updated", now.clone());
    let (login, credential) = credential::issue(&TOPICS, light_id, &light_key(light_id), &now);
    let writes = vec![
        Write::Put {
            item: light.to_item(1)?,
            cond: Cond::NotExists,
        },
        Write::Update(summary),
        Write::Put {
            item: credential,
            cond: Cond::Always,
        },
    ];
    match table.transact(writes).await {
        Ok(()) => Ok((light, login)),
        Err(StoreError::TransactionCanceled(failed)) if failed.contains(&0) => {
            Err(Error::Conflict(format!("Light {light_id} already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// A new light with its MQTT login, shown this once.
#[derive(Serialize, ToSchema)]
pub struct Created {
    #[serde(flatten)]
    light: Light,
    mqtt: MqttLogin,
}

/// Extension (admin): add a light. The reply holds the light's MQTT login for civic-local's
/// device port (user name `streetlight-{lightId}`); only its digest is kept.
#[utoipa::path(post, path = "/api/lights/create", tag = "lights", request_body = NewLight, security(("bearer" = [])),
    responses((status = 201, body = inline(crate::Envelope<Created>)), (status = 400), (status = 401), (status = 403), (status = 409)))]
async fn create(S(s): S<State>, _: Admin, Json(new): Json<NewLight>) -> Result<Reply<Created>> {
    let (light, mqtt) = register_light(s.table.as_ref(), new).await?;
    Ok(reply(
        StatusCode::CREATED,
        "Light created",
        Created { light, mqtt },
    ))
}

/// Extension (admin): a new MQTT login for a light; the previous password stops working at
/// once (a connection already open keeps going until it closes).
#[utoipa::path(post, path = "/api/lights/credential", tag = "lights", params(LightParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<MqttLogin>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn rotate_credential(
    S(s): S<State>,
    _: Admin,
    Query(q): Query<LightParams>,
) -> Result<Reply<MqttLogin>> {
    let light_id = q.light_id()?;
    Versioned::load(s.table.as_ref(), light_id).await?;
    let now = civic_core::time::now_rfc3339();
    let (login, item) = credential::issue(&TOPICS, light_id, &light_key(light_id), &now);
    s.table.put(item, Cond::Always).await?;
    Ok(reply(StatusCode::OK, "Credential rotated", login))
}

/// Apart from [`DEVICES`]: the verifier's future cannot name the const that holds it.
const TOPICS: DeviceTopics = DeviceTopics {
    app: crate::APP.name,
    prefix: "streetlight/lights",
    inbound: &["status"],
    commands: &["command"],
};

/// Lights on MQTT: each reports on its `status` topic and takes `command`s.
pub const DEVICES: DeviceClass = DeviceClass {
    topics: TOPICS,
    verifier: |p| civic_core::iot::verifier(State::new(p), verify_light),
};

/// Whether `secret` is light `light_id`'s MQTT credential.
async fn verify_light(s: State, light_id: String, secret: String) -> Result<bool> {
    let key = light_key(&light_id);
    Ok(credential::verify(s.table.as_ref(), &TOPICS, &key, &secret).await?)
}

#[derive(Deserialize, ToSchema)]
pub struct LightPatch {
    #[serde(rename = "lightId", alias = "light_id")]
    #[schema(required, nullable = false)]
    light_id: Option<String>,
    name: Option<String>,
    address: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    brightness: Option<i64>,
    is_automatic: Option<bool>,
    /// Not changeable: a light's city is where it is counted. Delete and re-create instead.
    city: Option<String>,
}

/// Extension (admin): change a light's descriptive fields. Status changes go through control.
#[utoipa::path(put, path = "/api/lights/update", tag = "lights", request_body = LightPatch, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Light>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn update(S(s): S<State>, _: Admin, Json(patch): Json<LightPatch>) -> Result<Reply<Light>> {
    require_fields(&[("lightId", &patch.light_id)])?;
    let light_id = required(&patch.light_id).unwrap_or_default();
    let (patch, table) = (&patch, s.table.as_ref());
    let light = retry::optimistic(move || async move {
        let Versioned { mut light, version } = Versioned::load(table, light_id).await?;
        if let Some(city) = required(&patch.city)
            && city_key(city) != city_key(&light.city)
        {
            return Err(Error::bad_request(
                "A light's city cannot be changed; delete and re-create it",
            ));
        }
        if let Some(name) = patch.name.as_deref() {
            light.name = Some(name.trim())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| Error::bad_request("name cannot be blank"))?
                .to_owned();
        }
        if let Some(address) = &patch.address {
            light.address = Some(address.clone()).filter(|a| !a.trim().is_empty());
        }
        light.latitude = patch.latitude.unwrap_or(light.latitude);
        light.longitude = patch.longitude.unwrap_or(light.longitude);
        valid_position(light.latitude, light.longitude)?;
        light.brightness = patch.brightness.unwrap_or(light.brightness);
        valid_brightness(light.brightness)?;
        light.is_automatic = patch.is_automatic.unwrap_or(light.is_automatic);
        let written = table
            .put(light.to_item(version + 1)?, Cond::Version(version))
            .await;
        won(written).map(|won| won.then_some(light))
    })
    .await?;
    Ok(reply(StatusCode::OK, "Light updated", light))
}

/// Extension (admin): remove a light and uncount it from its city. Its logs are kept.
#[utoipa::path(delete, path = "/api/lights/delete", tag = "lights", params(LightParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Light>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn delete(S(s): S<State>, _: Admin, Query(q): Query<LightParams>) -> Result<Reply<Light>> {
    let light_id = q.light_id()?;
    let table = s.table.as_ref();
    let light = retry::optimistic(move || async move {
        let Versioned { light, version } = Versioned::load(table, light_id).await?;
        let counters = Update::new(summary_key(&light.city))
            .add("total_lights", -1)
            .add(light.status.counter(), -1)
            .set("last_updated", civic_core::time::now_rfc3339());
        let writes = vec![
            Write::Delete {
                key: light_key(light_id),
                cond: Cond::Version(version),
            },
            Write::Update(counters),
            // A deleted light's device can no longer connect.
            Write::Delete {
                key: credential::credential_key(&light_key(light_id)),
                cond: Cond::Always,
            },
        ];
        won(table.transact(writes).await).map(|won| won.then_some(light))
    })
    .await?;
    Ok(reply(StatusCode::OK, "Light deleted", light))
}

#[derive(Serialize, ToSchema)]
pub struct ImportFailure {
    /// 1-based position in the input (CSV: data row).
    row: usize,
    light_id: Option<String>,
    error: String,
}

#[derive(Serialize, ToSchema)]
pub struct ImportResult {
    created: usize,
    failed: Vec<ImportFailure>,
}

#[derive(Deserialize, ToSchema)]
pub struct ImportBody {
    lights: Vec<NewLight>,
}

const MAX_IMPORT: usize = 1000;

/// Extension (admin): bulk import. Either `text/csv` with a header row naming `NewLight` fields
/// (`lightId,name,city,latitude,longitude,address,status,is_automatic,brightness`) or JSON
/// `{"lights": [NewLight, ...]}`. Each row is created on its own; failures are listed.
#[utoipa::path(post, path = "/api/lights/import", tag = "lights", security(("bearer" = [])),
    request_body(content((String = "text/csv"), (ImportBody = "application/json"))),
    responses((status = 200, body = inline(crate::Envelope<ImportResult>)), (status = 400), (status = 401), (status = 403), (status = 415)))]
async fn import(
    S(s): S<State>,
    _: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply<ImportResult>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let rows: Vec<std::result::Result<NewLight, String>> = if content_type.starts_with("text/csv") {
        csv::Reader::from_reader(body.as_ref())
            .deserialize::<NewLight>()
            .map(|r| r.map_err(|e| format!("invalid row: {e}")))
            .collect()
    } else if content_type.starts_with("application/json") {
        let parsed: ImportBody = serde_json::from_slice(&body)
            .map_err(|e| Error::bad_request(format!("Invalid request body: {e}")))?;
        parsed.lights.into_iter().map(Ok).collect()
    } else {
        return Err(Error::UnsupportedMediaType(
            "Send text/csv or application/json".into(),
        ));
    };
    if rows.is_empty() || rows.len() > MAX_IMPORT {
        return Err(Error::bad_request(format!(
            "Import between 1 and {MAX_IMPORT} lights at a time"
        )));
    }
    let mut result = ImportResult {
        created: 0,
        failed: Vec::new(),
    };
    for (i, row) in rows.into_iter().enumerate() {
        let light_id = row.as_ref().ok().and_then(|r| r.light_id.clone());
        match row
            .map_err(Error::BadRequest)
            .map(|r| create_light(s.table.as_ref(), r))
        {
            Ok(fut) => match fut.await {
                Ok(_) => result.created += 1,
                Err(e) if e.status().is_client_error() => result.failed.push(ImportFailure {
                    row: i + 1,
                    light_id,
                    error: e.to_string(),
                }),
                Err(e) => return Err(e),
            },
            Err(e) => result.failed.push(ImportFailure {
                row: i + 1,
                light_id,
                error: e.to_string(),
            }),
        }
    }
    Ok(reply(
        StatusCode::OK,
        format!("Imported {} lights", result.created),
        result,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct LogParams {
    #[serde(rename = "lightId")]
    #[param(rename = "lightId")]
    light_id: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<usize>,
    /// Opaque cursor from the previous page's `X-Next-Cursor` header.
    cursor: Option<String>,
}

/// Extension (operator or admin): a light's control history, newest first.
#[utoipa::path(get, path = "/api/lights/logs", tag = "lights", params(LogParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Vec<ControlLog>>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn logs(S(s): S<State>, _: Operator, Query(q): Query<LogParams>) -> Result<Response> {
    let light_id =
        required(&q.light_id).ok_or_else(|| Error::bad_request("Light ID not provided"))?;
    let limit = page::limit(q.limit, 50, 500)?;
    if q.cursor.is_none() {
        Versioned::load(s.table.as_ref(), light_id).await?;
    }
    let query = civic_store::Query::partition(format!("LIGHT#{light_id}"))
        .prefix("LOG#")
        .reverse()
        .limit(limit)
        .cursor(q.cursor);
    let res = s.table.query(query).await?;
    let logs = res
        .items
        .into_iter()
        .map(from_item)
        .collect::<Result<Vec<ControlLog>>>()?;
    Ok(page::with_cursor(
        reply(StatusCode::OK, "Control logs retrieved", logs),
        res.cursor,
    ))
}
