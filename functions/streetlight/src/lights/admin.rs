//! The admin extensions: creating a light (with its MQTT credential), rotating that credential,
//! changing a light's descriptive fields, and deleting it.

use axum::extract::State as S;
use axum::http::StatusCode;
use civic_auth::device as credential;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::iot::{DeviceClass, DeviceTopics, MqttLogin};
use civic_core::retry::won;
use civic_core::{Error, Query, Result, ids, retry};
use civic_store::{Cond, Shards, StoreError, Table, Update, Write};
use serde::Serialize;
use utoipa::ToSchema;

use super::model::{Light, LightParams, Status, Versioned, given};
use crate::keys::{city_pk, light_key, summary_key};
use crate::{Admin, Reply, State, reply, required_string};

#[derive(Clone, ToSchema)]
pub struct NewLight {
    #[serde(rename = "lightId")]
    pub(super) light_id: String,
    name: String,
    city: String,
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

impl FromBody for NewLight {
    fn from_body(b: &mut Body) -> Self {
        Self {
            light_id: light_id(b),
            name: required_string(b, "name"),
            city: required_string(b, "city"),
            // Required too, but checked once the others are there, as the seed's handler does.
            latitude: b.typed("latitude", false),
            longitude: b.typed("longitude", false),
            address: b.typed("address", false),
            status: b.typed("status", false),
            is_automatic: b.typed("is_automatic", false),
            brightness: b.typed("brightness", false),
        }
    }
}

/// `lightId`, or `light_id` as older clients and CSV headers spell it.
fn light_id(b: &mut Body) -> String {
    match !b.has("lightId") && b.has("light_id") {
        true => required_string(b, "light_id"),
        false => required_string(b, "lightId"),
    }
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
pub async fn create_light(table: &dyn Table, shards: Shards, new: NewLight) -> Result<Light> {
    register_light(table, shards, new)
        .await
        .map(|(light, _)| light)
}

/// Creates a light, counts it in its city's summary and issues its MQTT credential, atomically.
pub async fn register_light(
    table: &dyn Table,
    shards: Shards,
    new: NewLight,
) -> Result<(Light, MqttLogin)> {
    let (Some(latitude), Some(longitude)) = (new.latitude, new.longitude) else {
        return Err(Error::bad_request(
            "Missing required fields: latitude, longitude",
        ));
    };
    let (light_id, city) = (new.light_id.as_str(), new.city.as_str());
    valid_light_id(light_id)?;
    valid_position(latitude, longitude)?;
    let brightness = new.brightness.unwrap_or(100);
    valid_brightness(brightness)?;

    let now = civic_core::time::now_rfc3339();
    let light = Light {
        id: ids::next_id(table, "light").await?,
        light_id: light_id.to_owned(),
        name: new.name,
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
            item: light.to_item(1, shards)?,
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
pub(super) async fn create(
    S(s): S<State>,
    _: Admin,
    Valid(new): Valid<NewLight>,
) -> Result<Reply<Created>> {
    let (light, mqtt) = register_light(s.table.as_ref(), s.config.index_shards, new).await?;
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
pub(super) async fn rotate_credential(
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

#[derive(ToSchema)]
pub struct LightPatch {
    #[serde(rename = "lightId")]
    light_id: String,
    name: Option<String>,
    address: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    brightness: Option<i64>,
    is_automatic: Option<bool>,
    /// Not changeable: a light's city is where it is counted. Delete and re-create instead.
    city: Option<String>,
}

impl FromBody for LightPatch {
    fn from_body(b: &mut Body) -> Self {
        Self {
            light_id: light_id(b),
            name: b.typed("name", false),
            address: b.typed("address", false),
            latitude: b.typed("latitude", false),
            longitude: b.typed("longitude", false),
            brightness: b.typed("brightness", false),
            is_automatic: b.typed("is_automatic", false),
            city: b.typed("city", false),
        }
    }
}

/// Extension (admin): change a light's descriptive fields. Status changes go through control.
#[utoipa::path(put, path = "/api/lights/update", tag = "lights", request_body = LightPatch, security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Light>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn update(
    S(s): S<State>,
    _: Admin,
    Valid(patch): Valid<LightPatch>,
) -> Result<Reply<Light>> {
    let (patch, table, shards) = (&patch, s.table.as_ref(), s.config.index_shards);
    let light_id = patch.light_id.as_str();
    let light = retry::optimistic(move || async move {
        let stored = Versioned::load(table, light_id).await?;
        let mut light = stored.light.clone();
        if let Some(city) = given(&patch.city)
            && city_pk(city) != city_pk(&light.city)
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
        let item = stored.next_item(&light, shards)?;
        let written = table.put(item, Cond::Version(stored.version)).await;
        won(written).map(|won| won.then_some(light))
    })
    .await?;
    Ok(reply(StatusCode::OK, "Light updated", light))
}

/// Extension (admin): remove a light and uncount it from its city. Its logs are kept.
#[utoipa::path(delete, path = "/api/lights/delete", tag = "lights", params(LightParams), security(("bearer" = [])),
    responses((status = 200, body = inline(crate::Envelope<Light>)), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub(super) async fn delete(
    S(s): S<State>,
    _: Admin,
    Query(q): Query<LightParams>,
) -> Result<Reply<Light>> {
    let light_id = q.light_id()?;
    let table = s.table.as_ref();
    let light = retry::optimistic(move || async move {
        let Versioned { light, version, .. } = Versioned::load(table, light_id).await?;
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
