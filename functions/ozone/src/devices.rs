//! Device admin for staff (extensions the seed implies): assign a MAC its device id, rotate or
//! revoke a device's token, rotate its IoT certificate on AWS, allow its token-less legacy
//! form reports, notes, and the MACs waiting for an id.

use axum::extract::{Path, State as S};
use axum::response::Response;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, page, retry};
use civic_store::{
    Cond, GSI1PK, GSI1SK, Item, PK, SK, Shards, StoreError, Typed, Update, VERSION, Write,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::gateway::{
    CERTIFICATE, Certificate, Device, DeviceRecord, LEGACY_INGEST, LegacyIngest, TOKEN_DIGEST,
    attribute, normalize_mac,
};
use crate::keys::{DEVICES, MACS, device_count_key, device_index_sk, device_key, indexed, mac_key};
use crate::{Staff, State, iso_ms, now, valid_device_id};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(assign))
        .routes(routes!(rotate_token, revoke_token))
        .routes(routes!(set_notes))
        .routes(routes!(set_legacy_ingest))
        .routes(routes!(rotate_certificate))
        .routes(routes!(pending))
}

#[derive(ToSchema)]
pub struct AssignRequest {
    mac: String,
    device_id: String,
}

impl FromBody for AssignRequest {
    fn from_body(b: &mut Body) -> Self {
        let mac = b.required_text("mac");
        let mac = mac.and_then(|mac| b.check(normalize_mac("mac", &mac)));
        let device_id = b.required_text("device_id");
        if let Some(id) = &device_id {
            b.check(valid_device_id("device_id", id));
        }
        Self {
            mac: mac.unwrap_or_default(),
            device_id: device_id.unwrap_or_default(),
        }
    }
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
    Valid(req): Valid<AssignRequest>,
) -> Result<Json<AssignReply>> {
    let (mac, device_id) = (req.mac.as_str(), req.device_id.as_str());
    let (table, at) = (s.table.as_ref(), iso_ms(now()));
    let (at, shards) = (at.as_str(), s.config.index_shards);
    retry::optimistic(move || async move {
        let current = table.get(&mac_key(mac)).await?;
        let version = current
            .as_ref()
            .map(|i| i.get(VERSION).and_then(Value::as_i64).unwrap_or(0));
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
        let next = version.unwrap_or(0) + 1;
        let registration = assigned_registration(current, mac, device_id, at, next);
        let writes = vec![
            Write::Put {
                item: registration,
                cond: version.map_or(Cond::NotExists, Cond::Version),
            },
            Write::Put {
                item: new_device(shards, mac, device_id, at)?,
                cond: Cond::NotExists,
            },
            Write::Update(Update::new(device_count_key()).add("total", 1)),
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

/// `mac`'s registration naming `device_id` at `version` (a MAC that never hand-shook gets
/// one now, as its handshake would have made it).
fn assigned_registration(
    current: Option<Item>,
    mac: &str,
    device_id: &str,
    at: &str,
    version: i64,
) -> Item {
    let mut registration = current.unwrap_or_else(|| {
        Item::from_iter([
            ("mac".to_owned(), Value::from(mac)),
            ("first_seen".to_owned(), at.into()),
            (GSI1PK.to_owned(), MACS.into()),
            (GSI1SK.to_owned(), mac.into()),
        ])
    });
    let key = mac_key(mac);
    registration.insert(PK.into(), key.pk.into());
    registration.insert(SK.into(), key.sk.into());
    registration.insert("device_id".into(), device_id.into());
    registration.insert("assigned".into(), true.into());
    registration.insert(VERSION.into(), version.into());
    registration
}

/// The record of a device just assigned: no token until its next handshake.
fn new_device(shards: Shards, mac: &str, device_id: &str, at: &str) -> Result<Item> {
    let device = Device {
        device_id: device_id.to_owned(),
        mac: mac.to_owned(),
        assigned_at: at.to_owned(),
        ..Device::default()
    };
    let keys = indexed(
        device_key(device_id),
        shards.pk(DEVICES, device_id),
        device_index_sk(at, device_id),
    );
    let mut device = to_item(&device, &keys)?;
    device.insert(VERSION.into(), 1.into());
    Ok(device)
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
        .add(VERSION, 1)
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
        .add(VERSION, 1)
        .cond(Cond::Exists);
    match s.table.update(u).await {
        Err(StoreError::ConditionFailed) => Err(Error::NotFound("Device not found.".into())),
        other => other.map_err(Error::from),
    }?;
    Ok(Json(json!({"success": true, "device_id": device_id})))
}

/// Issues `device_id` a new IoT Core certificate and records it on the device. The
/// provisioner detaches and deactivates the thing's previous certificates, so only a device's
/// first claim and staff call this, never a repeat handshake.
pub(crate) async fn issue_certificate(
    s: &State,
    p: &dyn civic_iot::Provision,
    device_id: &str,
    by: &str,
) -> Result<civic_iot::DeviceCredentials> {
    let thing = format!("ozone-{device_id}");
    let attributes = [("app", "ozone"), ("device_id", device_id)];
    let creds = p.provision(&thing, &attributes).await;
    let creds = creds.map_err(|e| Error::Unavailable(e.to_string()))?;
    let cert = Certificate {
        arn: Some(creds.certificate_arn.clone()),
        issued_at: iso_ms(now()),
        issued_by: by.to_owned(),
    };
    let cert = attribute(&cert)?;
    let u = Update::new(device_key(device_id))
        .set(CERTIFICATE, cert)
        .cond(Cond::Exists);
    s.table.update(u).await?;
    tracing::info!(device_id, by, arn = %creds.certificate_arn, "issued an IoT certificate");
    Ok(creds)
}

#[derive(Serialize, ToSchema)]
pub struct CertificateReply {
    success: bool,
    device_id: String,
    /// The thing, certificate, private key and endpoint; the key is shown only here.
    #[schema(value_type = Object)]
    iot: civic_iot::DeviceCredentials,
}

/// Extension (staff, AWS): rotate a device's IoT Core certificate. The new certificate and key
/// are shown only here; the device's previous certificate is deactivated at once. 409 where
/// this deployment issues no certificates (no `DEVICE_POLICY`, e.g. civic-local).
#[utoipa::path(post, path = "/api/devices/{device_id}/certificate", tag = "devices", security(("session" = [])),
    params(("device_id" = String, Path)),
    responses((status = 200, body = CertificateReply), (status = 401), (status = 403), (status = 404), (status = 409), (status = 503)))]
async fn rotate_certificate(
    S(s): S<State>,
    Staff(staff): Staff,
    Path(DevicePath { device_id }): Path<DevicePath>,
) -> Result<Json<CertificateReply>> {
    if DeviceRecord::load(s.table.as_ref(), &device_id)
        .await?
        .is_none()
    {
        return Err(Error::NotFound("Device not found.".into()));
    }
    let Some(p) = s.provisioner() else {
        return Err(Error::Conflict(
            "This deployment issues no IoT certificates; devices use their token".into(),
        ));
    };
    let iot = issue_certificate(&s, p.as_ref(), &device_id, &staff.username).await?;
    Ok(Json(CertificateReply {
        success: true,
        device_id,
        iot,
    }))
}

#[derive(ToSchema)]
pub struct LegacyIngestRequest {
    /// `true`: `POST /api/iot/` takes this device's form reports without its bearer token
    /// (for old firmware that cannot send one); `false`: the token is required again.
    allowed: bool,
}

impl FromBody for LegacyIngestRequest {
    fn from_body(b: &mut Body) -> Self {
        Self {
            allowed: b.typed("allowed", true).unwrap_or_default(),
        }
    }
}

/// Extension (staff): allow (or stop allowing) a device's legacy form reports without its
/// token. Per device and explicit; the decision is stored on the device with who made it and
/// when, shown to staff as `legacy_ingest` in the device listings. Returns the device.
#[utoipa::path(put, path = "/api/devices/{device_id}/legacy-ingest", tag = "devices", request_body = LegacyIngestRequest, security(("session" = [])),
    params(("device_id" = String, Path)),
    responses((status = 200, body = Device), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn set_legacy_ingest(
    S(s): S<State>,
    Staff(staff): Staff,
    Path(DevicePath { device_id }): Path<DevicePath>,
    Valid(LegacyIngestRequest { allowed }): Valid<LegacyIngestRequest>,
) -> Result<Json<Device>> {
    let decision = LegacyIngest {
        allowed,
        by: staff.username.clone(),
        at: iso_ms(now()),
    };
    let decision = attribute(&decision)?;
    let u = Update::new(device_key(&device_id))
        .set(LEGACY_INGEST, decision)
        .cond(Cond::Exists);
    let item = match s.table.update(u).await {
        Err(StoreError::ConditionFailed) => {
            return Err(Error::NotFound("Device not found.".into()));
        }
        other => other?,
    };
    tracing::info!(device_id, allowed, by = %staff.username, "legacy ingest without a token");
    Ok(Json(from_item(item)?))
}

#[derive(ToSchema)]
pub struct NotesRequest {
    notes: String,
}

impl FromBody for NotesRequest {
    /// Notes are kept as written (not trimmed) and may be blank.
    fn from_body(b: &mut Body) -> Self {
        let notes = b.typed::<String>("notes", true).unwrap_or_default();
        if notes.chars().count() > 2000 {
            b.error(
                "notes",
                "Ensure this field has no more than 2000 characters.",
            );
        }
        Self { notes }
    }
}

/// Extension (staff): set a device's admin notes.
#[utoipa::path(put, path = "/api/devices/{device_id}/notes", tag = "devices", request_body = NotesRequest, security(("session" = [])),
    params(("device_id" = String, Path)),
    responses((status = 200, body = Device), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn set_notes(
    S(s): S<State>,
    _staff: Staff,
    Path(DevicePath { device_id }): Path<DevicePath>,
    Valid(NotesRequest { notes }): Valid<NotesRequest>,
) -> Result<Json<Device>> {
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
    let mut res = s
        .table
        .query_as::<Registration>(
            civic_store::Query::index(MACS)
                .limit(limit)
                .cursor(q.cursor),
        )
        .await?;
    res.items.retain(|r| !r.assigned);
    Ok(page::with_cursor(Json(res.items), res.cursor))
}
