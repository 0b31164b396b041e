//! `POST /api/iot`: the legacy firmware's form report, by MAC.

use axum::extract::State as S;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use civic_auth::secret::bearer_token;
use civic_core::{Error, Form, Json, Result};
use civic_store::Update;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{DeviceRecord, Event, contact, ingest, normalize_mac, status_update};
use crate::keys::mac_key;
use crate::{State, Treatment, iso, iso_ms, now, parse_bool, parse_time, required_param};

/// The legacy firmware's form fields (all text, parsed here so bad values get field errors).
#[derive(Deserialize, ToSchema)]
pub struct LegacyForm {
    /// BASIC|STANDARD|PREMIUM|status
    #[schema(required, nullable = false)]
    mode: Option<String>,
    #[schema(required, nullable = false)]
    macaddr: Option<String>,
    type1: Option<String>,
    type2: Option<String>,
    type3: Option<String>,
    count1: Option<String>,
    count2: Option<String>,
    count3: Option<String>,
    /// `2024-01-15 14:30:25`, in the configured time zone.
    timestamp: Option<String>,
    rtc_available: Option<String>,
    sd_available: Option<String>,
}

fn number(field: &str, v: &Option<String>) -> Result<Option<f64>> {
    match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(Some)
            .ok_or_else(|| Error::field(field, "A valid non-negative number is required.")),
    }
}

fn count(field: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| Error::field(field, "A valid non-negative integer is required.")),
    }
}

/// The device a legacy report speaks for, checked before anything is stored: its MAC must be
/// assigned (an unknown one is listed for staff, as a handshake's is, then refused with 403),
/// and the report needs the device's bearer token unless staff allowed the device's token-less
/// reports (`PUT /api/devices/{device_id}/legacy-ingest/`). A MAC alone is no credential.
async fn legacy_sender(
    s: &State,
    headers: &HeaderMap,
    mac: &str,
    at: &str,
) -> Result<DeviceRecord> {
    let table = s.table.as_ref();
    let registration = table.get(&mac_key(mac)).await?;
    let device_id = registration
        .as_ref()
        .and_then(|r| r.get("device_id"))
        .and_then(Value::as_str);
    let Some(device_id) = device_id else {
        contact(table, mac, None, at).await?;
        return Err(Error::Forbidden(format!(
            "Device {mac} is not assigned; an admin must assign a device_id first"
        )));
    };
    let record = DeviceRecord::load(table, device_id)
        .await?
        .ok_or_else(|| Error::Forbidden(format!("Device {mac} is not assigned")))?;
    let allowed = record
        .device
        .legacy_ingest
        .as_ref()
        .is_some_and(|l| l.allowed);
    match bearer_token(headers) {
        Some(t)
            if record
                .token_digest
                .as_deref()
                .is_some_and(|d| s.tokens.matches(t, d)) =>
        {
            Ok(record)
        }
        Some(_) => Err(Error::Unauthorized("Invalid token for this device".into())),
        None if allowed => Ok(record),
        None => Err(Error::Unauthorized(
            "A device token is required (Authorization: Bearer <token>)".into(),
        )),
    }
}

/// Legacy IoT ingest (`application/x-www-form-urlencoded`), by MAC, with the device's bearer
/// token (see [`legacy_sender`]). Retries of the same report are stored once: the event id is
/// derived from the report's content.
#[utoipa::path(post, path = "/api/iot", tag = "devices",
    request_body(content = LegacyForm, content_type = "application/x-www-form-urlencoded"),
    security(("device" = []), ()),
    responses((status = 200, body = Value, example = json!({"status": "ok"})), (status = 400),
        (status = 401, description = "No bearer (and staff have not allowed this device's token-less reports), or not this device's token"),
        (status = 403, description = "The MAC is not assigned")))]
pub(super) async fn legacy_ingest(
    S(s): S<State>,
    headers: HeaderMap,
    Form(f): Form<LegacyForm>,
) -> Result<Json<Value>> {
    let received = now();
    let report = f.check(s.config.tz, received)?;
    let record = legacy_sender(&s, &headers, &report.mac, &iso_ms(received)).await?;
    let e = report.event(&record.device.device_id, received);
    let status = report.status(&s, &e, &iso_ms(received));
    ingest(&s, &record, &e, status).await?;
    Ok(Json(json!({"status": "ok"})))
}

/// A legacy report with every field checked, before anything is read or stored.
struct LegacyReport {
    mode: String,
    treatment: Option<Treatment>,
    mac: String,
    /// `count1..3`: the counters of [`Treatment::ALL`], in order.
    counts: [Option<i64>; 3],
    /// `type1..3`.
    on_times: [Option<f64>; 3],
    rtc: Option<bool>,
    sd: Option<bool>,
    occurred: DateTime<Utc>,
    timestamp: Option<String>,
}

impl LegacyForm {
    fn check(self, tz: Tz, received: DateTime<Utc>) -> Result<LegacyReport> {
        let mode = required_param("mode", &self.mode)?.to_owned();
        let treatment = match mode.as_str() {
            "status" => None,
            m => Some(Treatment::parse(m).ok_or_else(|| {
                Error::field(
                    "mode",
                    format!("\"{m}\" is not a valid choice (BASIC, STANDARD, PREMIUM, status)."),
                )
            })?),
        };
        let mac = normalize_mac("macaddr", required_param("macaddr", &self.macaddr)?)?;
        let counts = [
            count("count1", &self.count1)?,
            count("count2", &self.count2)?,
            count("count3", &self.count3)?,
        ];
        let on_times = [
            number("type1", &self.type1)?,
            number("type2", &self.type2)?,
            number("type3", &self.type3)?,
        ];
        let rtc = parse_bool("rtc_available", self.rtc_available.as_deref())?;
        let sd = parse_bool("sd_available", self.sd_available.as_deref())?;
        let occurred = match self
            .timestamp
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            Some(t) => parse_time("timestamp", t, tz)?,
            None => received,
        };
        Ok(LegacyReport {
            mode,
            treatment,
            mac,
            counts,
            on_times,
            rtc,
            sd,
            occurred,
            timestamp: self.timestamp,
        })
    }
}

impl LegacyReport {
    /// The firmware sends no event id, so a retry of the same report must derive the same one.
    /// By device id, not MAC: every other field is shown to users with the event, so a digest
    /// of the MAC would let anyone signed in find it by trying the few million of a vendor.
    fn event_id(&self, device_id: &str) -> String {
        let fingerprint = format!(
            "{device_id}|{}|{}|{:?}|{:?}",
            self.mode,
            iso(self.occurred),
            self.counts,
            self.on_times
        );
        let digest: String = Sha256::digest(fingerprint.as_bytes())[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("legacy-{digest}")
    }

    fn event(&self, device_id: &str, received: DateTime<Utc>) -> Event {
        let (counts, on_times, treatment) = (self.counts, self.on_times, self.treatment);
        Event {
            device_id: device_id.to_owned(),
            event_type: self.mode.clone(),
            event_id: self.event_id(device_id),
            event: if treatment.is_some() {
                "treatment"
            } else {
                "status"
            }
            .into(),
            treatment,
            counter: treatment.and_then(|t| counts[t.index()]),
            occurred_at: iso(self.occurred),
            device_timestamp: self.timestamp.clone(),
            wifi_status: None,
            payload: Some(
                json!({"type1": on_times[0], "type2": on_times[1], "type3": on_times[2], "rtc_available": self.rtc, "sd_available": self.sd}),
            ),
            count_basic: counts[0],
            count_standard: counts[1],
            count_premium: counts[2],
            firmware: None,
            received_at: iso(received),
        }
    }

    /// What the report changes in its device's status: besides the event's, the other
    /// treatments' counters and the board's health.
    fn status(&self, s: &State, e: &Event, received: &str) -> Update {
        // The report reached us over the network, so its Wi-Fi works.
        let mut status = status_update(s, &e.device_id, e, received).set("wifi_connected", true);
        for (t, c) in Treatment::ALL.iter().zip(self.counts) {
            if let Some(c) = c.filter(|_| Some(*t) != e.treatment) {
                status = status.set(t.count_field(), c);
            }
        }
        if let Some(r) = self.rtc {
            status = status.set("rtc_available", r);
        }
        if let Some(sd) = self.sd {
            status = status.set("sd_card_available", sd);
        }
        status
    }
}
