//! `POST /api/handshake`: a MAC claims its device's token once staff have assigned it an id.

use axum::extract::State as S;
use axum::http::HeaderMap;
use civic_auth::secret::bearer_token;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::{Error, Json, Result, retry};
use civic_store::{Cond, GSI1PK, GSI1SK, Item, StoreError, Table, Update, VERSION};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    CERTIFICATE, Certificate, DeviceRecord, TOKEN_DIGEST, attribute, firmware, missing_device,
    normalize_mac, touch,
};
use crate::keys::{MACS, device_key, mac_key};
use crate::{State, iso_ms, now};

/// Records that `mac` made contact (created on its first) and returns its registration, which
/// names its device id once staff have assigned one. Unassigned MACs are listed as pending.
pub(super) async fn contact(
    table: &dyn Table,
    mac: &str,
    firmware: Option<&str>,
    at: &str,
) -> Result<Item> {
    let mut seen = Update::new(mac_key(mac))
        .set("last_seen", at)
        .set_if_absent("mac", mac)
        .set_if_absent("first_seen", at)
        .set_if_absent(GSI1PK, MACS)
        .set_if_absent(GSI1SK, mac)
        // Assignment is guarded by this version; contacts only refresh the details.
        .set_if_absent(VERSION, 0);
    if let Some(f) = firmware {
        seen = seen.set("firmware", f);
    }
    Ok(table.update(seen).await?)
}

#[derive(ToSchema)]
pub struct HandshakeRequest {
    mac: String,
    firmware: Option<String>,
}

impl FromBody for HandshakeRequest {
    fn from_body(b: &mut Body) -> Self {
        let mac = b.required_text("mac");
        Self {
            mac: mac
                .and_then(|mac| b.check(normalize_mac("mac", &mac)))
                .unwrap_or_default(),
            firmware: firmware(b),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct HandshakeReply {
    device_id: Option<String>,
    /// A fresh bearer token (the previous one stops working); `null` until staff assign the
    /// MAC a device id.
    token: Option<String>,
    assigned: bool,
    /// On AWS, at the device's first claim only: the thing, certificate and private key for
    /// MQTT to IoT Core (staff rotate it with `POST /api/devices/{device_id}/certificate/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    iot: Option<civic_iot::DeviceCredentials>,
}

/// Device registration and token acquisition. Unknown MACs are recorded for an admin to assign.
/// An assigned device gets a token when it holds none (new, or revoked by staff) or presents
/// its current one as a bearer; a handshake for a device that holds a token changes nothing
/// (409, or 401 with a wrong bearer), unless `OZONE_HANDSHAKE_REISSUE=true` (the seed's
/// behaviour: every handshake of an assigned MAC gets a fresh token).
#[utoipa::path(post, path = "/api/handshake", tag = "devices", request_body = HandshakeRequest,
    responses((status = 200, body = HandshakeReply), (status = 400),
        (status = 401, description = "A bearer was sent and is not this device's token"),
        (status = 409, description = "The device already holds a token (send it as a bearer to renew it; staff can rotate or revoke it), or its record is missing"),
        (status = 429, description = "Too many refused tokens for this MAC: `Retry-After` gives the seconds to wait"),
        (status = 503, description = "On AWS: issuing the device's first certificate failed; nothing changed")))]
pub(super) async fn handshake(
    S(s): S<State>,
    headers: HeaderMap,
    Valid(req): Valid<HandshakeRequest>,
) -> Result<Json<HandshakeReply>> {
    let (mac, firmware) = (req.mac, req.firmware);
    let at = iso_ms(now());
    let record = contact(s.table.as_ref(), &mac, firmware.as_deref(), &at).await?;
    let Some(device_id) = record.get("device_id").and_then(Value::as_str) else {
        return Ok(Json(HandshakeReply {
            device_id: None,
            token: None,
            assigned: false,
            iot: None,
        }));
    };
    let bearer = bearer_token(&headers);
    // A refused device token counts per MAC, as failed logins do per account (issue 15).
    let attempt = claim(&s, device_id, bearer, firmware.as_deref(), &at);
    let scope = civic_auth::backoff::Scope::Handshake;
    let claim = civic_auth::backoff::guard(s.table.as_ref(), scope, &mac, attempt).await?;
    let iot = match (s.provisioner(), claim.certify) {
        (Some(p), true) => Some(first_certificate(&s, p.as_ref(), device_id, &claim).await?),
        _ => None,
    };
    Ok(Json(HandshakeReply {
        device_id: Some(device_id.to_owned()),
        token: Some(claim.token),
        assigned: true,
        iot,
    }))
}

/// A token a handshake won, and whether it must also issue the device's first certificate.
struct Claim {
    token: String,
    /// The device's version after the claim.
    version: i64,
    certify: bool,
}

/// Whether a handshake presenting `bearer` may replace `record`'s token.
fn may_claim(s: &State, record: &DeviceRecord, bearer: Option<&str>) -> Result<()> {
    let Some(digest) = record.token_digest.as_deref() else {
        return Ok(()); // unclaimed: new, or revoked by staff
    };
    match bearer {
        Some(t) if s.tokens.matches(t, digest) => Ok(()), // the device renews its own
        _ if s.config.handshake_reissue => Ok(()),
        Some(_) => Err(Error::Unauthorized("Invalid token for this device".into())),
        // 409, not 401/403: the request is well formed and no sign-in would change the
        // answer; the device's state (claimed) does, when staff rotate or revoke its token.
        None => Err(Error::Conflict(format!(
            "Device {} already holds a token: send it as a bearer to renew it, or ask staff to rotate or revoke it",
            record.device.device_id
        ))),
    }
}

/// Hands `device_id` a fresh token if [`may_claim`] allows, in one write guarded by the
/// device's version, so that of concurrent handshakes one wins and the others see its token.
/// On AWS a device's first claim also marks its certificate as being issued in that write:
/// only that claim issues one, never a repeat handshake (whose certificate would retire the
/// real device's).
async fn claim(
    s: &State,
    device_id: &str,
    bearer: Option<&str>,
    firmware: Option<&str>,
    at: &str,
) -> Result<Claim> {
    retry::optimistic(move || async move {
        let record = DeviceRecord::load(s.table.as_ref(), device_id)
            .await?
            .ok_or_else(missing_device)?;
        may_claim(s, &record, bearer)?;
        let certify = s.provisioner().is_some() && record.device.iot_certificate.is_none();
        let (token, digest) = s.tokens.issue();
        let mut u = touch(
            Update::new(device_key(device_id)),
            s.config.index_shards,
            device_id,
            at,
        )
        .set(TOKEN_DIGEST, digest)
        .add(VERSION, 1)
        .cond(Cond::Version(record.version));
        if let Some(f) = firmware {
            u = u.set("firmware", f);
        }
        if certify {
            let pending = Certificate {
                arn: None,
                issued_at: at.to_owned(),
                issued_by: "handshake".into(),
            };
            let pending = attribute(&pending)?;
            u = u.set(CERTIFICATE, pending);
        }
        match s.table.update(u).await {
            Ok(_) => Ok(Some(Claim {
                token,
                version: record.version + 1,
                certify,
            })),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// Issues the certificate of a device's first claim. If that fails, the claim is undone
/// (unless the device changed since), so the device's next handshake tries again.
async fn first_certificate(
    s: &State,
    p: &dyn civic_iot::Provision,
    device_id: &str,
    claim: &Claim,
) -> Result<civic_iot::DeviceCredentials> {
    let issued = crate::devices::issue_certificate(s, p, device_id, "handshake").await;
    if issued.is_err() {
        let undo = Update::new(device_key(device_id))
            .remove(TOKEN_DIGEST)
            .remove(CERTIFICATE)
            .add(VERSION, 1)
            .cond(Cond::Version(claim.version));
        if let Err(e) = s.table.update(undo).await {
            tracing::warn!(device_id, error = %e, "could not undo a claim whose certificate failed");
        }
    }
    issued
}
