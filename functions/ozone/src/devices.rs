//! Device admin for staff (extensions the seed implies): assign a MAC its device id, rotate or
//! revoke a device's token, rotate its IoT certificate on AWS, allow its token-less legacy
//! form reports, notes, and the MACs waiting for an id.

use axum::extract::{Path, State as S};
use axum::response::Response;
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, page, retry};
use civic_store::{Cond, Item, Key, StoreError, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::gateway::{Device, TOKEN_DIGEST, device_key, mac_key, normalize_mac};
use crate::{Staff, State, iso_ms, now, required, valid_device_id};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(assign))
        .routes(routes!(rotate_token, revoke_token))
        .routes(routes!(set_notes))
        .routes(routes!(pending))
}

#[derive(Deserialize, ToSchema)]
pub struct AssignRequest {
    #[schema(required, nullable = false)]
    mac: Option<String>,
    #[schema(required, nullable = false)]
    device_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AssignReply {
    success: bool,
    mac: String,
    device_id: String,
    assigned: bool,
}

/// Extension (staff): give a MAC its device id. The device gets its token at its next
/// handshake. Repeating an assignment is harmless; a MAC or device id already bound
/// elsewhere is a 409.
#[utoipa::path(post, path = "/api/devices/assign", tag = "devices", request_body = AssignRequest, security(("session" = [])),
    responses((status = 200, body = AssignReply), (status = 400), (status = 401), (status = 403), (status = 409)))]
async fn assign(
    S(s): S<State>,
    _staff: Staff,
    Json(req): Json<AssignRequest>,
) -> Result<Json<AssignReply>> {
    let mac = normalize_mac("mac", required("mac", &req.mac)?)?;
    let device_id = required("device_id", &req.device_id)?;
    valid_device_id("device_id", device_id)?;
    let (table, mac, at) = (s.table.as_ref(), mac.as_str(), iso_ms(now()));
    let at = at.as_str();
    retry::optimistic(move || async move {
        let current = table.get(&mac_key(mac)).await?;
        let version = current
            .as_ref()
            .map(|i| i.get("version").and_then(Value::as_i64).unwrap_or(0));
        match current
            .as_ref()
            .and_then(|i| i.get("device_id"))
            .and_then(Value::as_str)
        {
            Some(id) if id == device_id => return Ok(Some(())),
            Some(id) => {
                return Err(Error::Conflict(format!(
                    "MAC {mac} is already assigned to {id}"
                )));
            }
            None => {}
        }
        let mut registration = current.unwrap_or_else(|| {
            Item::from_iter([
                ("mac".to_owned(), Value::from(mac)),
                ("first_seen".to_owned(), at.into()),
                ("GSI1PK".to_owned(), "MACS".into()),
                ("GSI1SK".to_owned(), mac.into()),
            ])
        });
        let key = mac_key(mac);
        registration.insert("PK".into(), key.pk.into());
        registration.insert("SK".into(), key.sk.into());
        registration.insert("device_id".into(), device_id.into());
        registration.insert("assigned".into(), true.into());
        registration.insert("version".into(), (version.unwrap_or(0) + 1).into());
        let device = Device {
            device_id: device_id.to_owned(),
            mac: mac.to_owned(),
            assigned_at: at.to_owned(),
            ..Device::default()
        };
        let dkey = device_key(device_id);
        let mut device = to_item(
            &device,
            &[
                ("PK", dkey.pk),
                ("SK", dkey.sk),
                ("GSI1PK", "DEVICES".into()),
                ("GSI1SK", format!("{at}#{device_id}")),
            ],
        )?;
        device.insert("version".into(), 1.into());
        let writes = vec![
            Write::Put {
                item: registration,
                cond: version.map_or(Cond::NotExists, Cond::Version),
            },
            Write::Put {
                item: device,
                cond: Cond::NotExists,
            },
            Write::Update(Update::new(Key::new("COUNT", "DEVICES")).add("total", 1)),
        ];
        match table.transact(writes).await {
            Ok(()) => Ok(Some(())),
            Err(StoreError::TransactionCanceled(f)) if f.contains(&1) => Err(Error::Conflict(
                format!("device_id {device_id} is already in use"),
            )),
            Err(StoreError::TransactionCanceled(_) | StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(Json(AssignReply {
        success: true,
        mac: mac.to_owned(),
        device_id: device_id.to_owned(),
        assigned: true,
    }))
}

/// `{device_id}` by name (see `catalog::IdPath`).
#[derive(Deserialize)]
pub struct DevicePath {
    device_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenReply {
    success: bool,
    device_id: String,
    token: String,
}

/// Extension (staff): rotate a device's token. The old token stops working at once; the new
/// one is shown only here (the device may also hand-shake again for its own).
#[utoipa::path(post, path = "/api/devices/{device_id}/token", tag = "devices", security(("session" = [])),
    params(("device_id" = String, Path)),
    responses((status = 200, body = TokenReply), (status = 401), (status = 403), (status = 404)))]
async fn rotate_token(
    S(s): S<State>,
    _staff: Staff,
    Path(DevicePath { device_id }): Path<DevicePath>,
) -> Result<Json<TokenReply>> {
    let (token, digest) = s.tokens.issue();
    let u = Update::new(device_key(&device_id))
        .set(TOKEN_DIGEST, digest)
        .add("version", 1)
        .cond(Cond::Exists);
    match s.table.update(u).await {
        Err(StoreError::ConditionFailed) => {
            return Err(Error::NotFound("Device not found.".into()));
        }
        other => other?,
    };
    Ok(Json(TokenReply {
        success: true,
        device_id,
        token,
    }))
}

/// Extension (staff): revoke a device's token. It stops working at once; the device's next
/// handshake gets a new one (also when handshakes only hand out unclaimed tokens).
#[utoipa::path(delete, path = "/api/devices/{device_id}/token", tag = "devices", security(("session" = [])),
    params(("device_id" = String, Path)),
    responses((status = 200, body = Value), (status = 401), (status = 403), (status = 404)))]
async fn revoke_token(
    S(s): S<State>,
    _staff: Staff,
    Path(DevicePath { device_id }): Path<DevicePath>,
) -> Result<Json<Value>> {
    let u = Update::new(device_key(&device_id))
        .remove(TOKEN_DIGEST)
        .add("version", 1)
        .cond(Cond::Exists);
    match s.table.update(u).await {
        Err(StoreError::ConditionFailed) => Err(Error::NotFound("Device not found.".into())),
        other => other.map_err(Error::from),
    }?;
    Ok(Json(json!({"success": true, "device_id": device_id})))
}

#[derive(Deserialize, ToSchema)]
pub struct NotesRequest {
    #[schema(required, nullable = false)]
    notes: Option<String>,
}

/// Extension (staff): set a device's admin notes.
#[utoipa::path(put, path = "/api/devices/{device_id}/notes", tag = "devices", request_body = NotesRequest, security(("session" = [])),
    params(("device_id" = String, Path)),
    responses((status = 200, body = Device), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn set_notes(
    S(s): S<State>,
    _staff: Staff,
    Path(DevicePath { device_id }): Path<DevicePath>,
    Json(req): Json<NotesRequest>,
) -> Result<Json<Device>> {
    let notes = req
        .notes
        .ok_or_else(|| Error::field("notes", "This field is required."))?;
    if notes.chars().count() > 2000 {
        return Err(Error::field(
            "notes",
            "Ensure this field has no more than 2000 characters.",
        ));
    }
    let u = Update::new(device_key(&device_id))
        .set("notes", notes)
        .cond(Cond::Exists);
    let item = match s.table.update(u).await {
        Err(StoreError::ConditionFailed) => {
            return Err(Error::NotFound("Device not found.".into()));
        }
        other => other?,
    };
    Ok(Json(from_item(item)?))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Registration {
    mac: String,
    firmware: Option<String>,
    first_seen: String,
    last_seen: Option<String>,
    #[serde(default)]
    assigned: bool,
    device_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
pub struct PageParams {
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
    /// Opaque cursor from the previous page's `X-Next-Cursor` header.
    pub cursor: Option<String>,
}

/// Extension (staff): MACs that hand-shook but have no device id yet, by MAC.
#[utoipa::path(get, path = "/api/devices/pending", tag = "devices", params(PageParams), security(("session" = [])),
    responses((status = 200, body = Vec<Registration>), (status = 401), (status = 403)))]
async fn pending(S(s): S<State>, _staff: Staff, Query(q): Query<PageParams>) -> Result<Response> {
    let limit = page::limit(q.limit, 100, 1000)?;
    let res = s
        .table
        .query(
            civic_store::Query::index("MACS")
                .limit(limit)
                .cursor(q.cursor),
        )
        .await?;
    let list = res
        .items
        .into_iter()
        .map(from_item::<Registration>)
        .filter(|r| r.as_ref().map_or(true, |r| !r.assigned))
        .collect::<Result<Vec<_>>>()?;
    Ok(page::with_cursor(Json(list), res.cursor))
}
