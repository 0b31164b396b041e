//! Alerts: manual ones (the seed's CRUD) and automatic ones ([`raise_auto`], for the image
//! analysis), with a lifecycle OPEN → ACKNOWLEDGED → CLOSED that records who and when.
//!
//! An alert is stored once per list it belongs to (all, by status, by organization, by
//! organization and status; key `{id:010}`), so every filter is one reverse query, newest
//! first. The copy in `ALERTS` is the canonical one: it carries the version every change is
//! conditioned on, and the copies are rewritten in the same transaction.
//!
//! An automatic alert holds a marker item `OPENALERT#{source}#{type}` while it is not CLOSED;
//! creating the marker is conditional, so a source raises one open alert per type at a time.

mod endpoints;

use std::str::FromStr;

use civic_core::item::{from_item, to_item};
use civic_core::retry::won;
use civic_core::{Error, Result, ids, retry};
use civic_store::{Cond, Item, Key, PK, SK, Table, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub use endpoints::{AlertInput, AlertParams, AlertUpdate, routes};

use crate::sites::Zone;
use crate::{State, not_found, pad, version_of, with_version};

const ALL: &str = "ALERTS";
/// `alert_type` of alerts created through the API.
pub const MANUAL: &str = "MANUAL";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Closed,
}

impl AlertStatus {
    const ALL: [Self; 3] = [Self::Open, Self::Acknowledged, Self::Closed];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Acknowledged => "ACKNOWLEDGED",
            Self::Closed => "CLOSED",
        }
    }
}

impl FromStr for AlertStatus {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    pub heading: String,
    pub sub_heading: String,
    pub status: AlertStatus,
    pub created_at: String,
    pub updated_at: String,
    /// Extension: `MANUAL`, or the automatic alert's type (e.g. `OVERCROWDING`).
    pub alert_type: String,
    /// Extension: where it was raised, when known.
    pub organization_id: Option<i64>,
    pub zone_id: Option<i64>,
    pub camera_id: Option<i64>,
    /// Extension: the user id and time of the acknowledgement and of the closing.
    pub acknowledged_by: Option<i64>,
    pub acknowledged_at: Option<String>,
    pub closed_by: Option<i64>,
    pub closed_at: Option<String>,
}

/// The stored alert: the marker it holds while open, if automatic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    alert: Alert,
    #[serde(default)]
    marker: Option<String>,
}

fn main_key(id: i64) -> Key {
    Key::new(ALL, pad(id))
}

fn list_partition(org: Option<i64>, status: Option<AlertStatus>) -> String {
    match (org, status) {
        (None, None) => ALL.into(),
        (None, Some(s)) => format!("ALERTS#{}", s.as_str()),
        (Some(o), None) => format!("ORGALERTS#{o}"),
        (Some(o), Some(s)) => format!("ORGALERTS#{o}#{}", s.as_str()),
    }
}

/// Every list the alert belongs to; the first is the canonical copy.
fn views(a: &Alert) -> Vec<String> {
    let mut out = vec![
        list_partition(None, None),
        list_partition(None, Some(a.status)),
    ];
    if let Some(o) = a.organization_id {
        out.push(list_partition(Some(o), None));
        out.push(list_partition(Some(o), Some(a.status)));
    }
    out
}

fn marker_key(marker: &str) -> Key {
    Key::new(format!("OPENALERT#{marker}"), "OPENALERT")
}

async fn load(table: &dyn Table, id: i64) -> Result<(Record, i64)> {
    let item = table
        .get(&main_key(id))
        .await?
        .ok_or_else(|| not_found("Alert"))?;
    let version = version_of(&item);
    Ok((from_item(item)?, version))
}

/// Writes `new` (over `old` at its version, or as a new alert) with all its list copies, and
/// takes or frees its marker when it opens or closes; once written, it is published live at
/// its new version ([`crate::live`]). `Ok(false)`: lost a race (or, when it opens, the marker
/// is taken).
async fn save(s: &State, old: Option<(&Record, i64)>, new: &Record) -> Result<bool> {
    let (version, cond) = match old {
        Some((_, v)) => (v, Cond::Version(v)),
        None => (0, Cond::NotExists),
    };
    let item = |pk: &str| -> Result<Item> {
        to_item(new, &[(PK, pk.to_owned()), (SK, pad(new.alert.id))])
    };
    let new_views = views(&new.alert);
    let mut writes = vec![Write::Put {
        item: with_version(item(ALL)?, version + 1),
        cond,
    }];
    for pk in &new_views[1..] {
        writes.push(Write::Put {
            item: item(pk)?,
            cond: Cond::Always,
        });
    }
    if let Some((old, _)) = old {
        for pk in views(&old.alert).iter().filter(|v| !new_views.contains(v)) {
            writes.push(Write::Delete {
                key: Key::new(pk.clone(), pad(new.alert.id)),
                cond: Cond::Always,
            });
        }
    }
    if let Some(marker) = &new.marker {
        let was_open = old.is_some_and(|(o, _)| o.alert.status != AlertStatus::Closed);
        let is_open = new.alert.status != AlertStatus::Closed;
        let key = marker_key(marker);
        match (was_open, is_open) {
            (false, true) => {
                let mut m = Item::new();
                m.insert(PK.into(), key.pk.into());
                m.insert(SK.into(), key.sk.into());
                m.insert("alert_id".into(), new.alert.id.into());
                writes.push(Write::Put {
                    item: m,
                    cond: Cond::NotExists,
                });
            }
            (true, false) => writes.push(Write::Delete {
                key,
                cond: Cond::Always,
            }),
            _ => {}
        }
    }
    let written = won(s.table.transact(writes).await)?;
    if written {
        crate::live::alert(&s.platform, &new.alert, version + 1).await;
    }
    Ok(written)
}

/// The alert a marker belongs to, if it is held.
async fn holder(table: &dyn Table, marker: &str) -> Result<Option<i64>> {
    Ok(table
        .get(&marker_key(marker))
        .await?
        .and_then(|m| m.get("alert_id").and_then(Value::as_i64)))
}

/// Moves an alert to `to` as user `by`, recording who and when.
fn transition(a: &mut Alert, to: AlertStatus, by: i64, now: &str) {
    if a.status == to {
        return;
    }
    match to {
        AlertStatus::Open => {
            (a.acknowledged_by, a.acknowledged_at) = (None, None);
            (a.closed_by, a.closed_at) = (None, None);
        }
        AlertStatus::Acknowledged => {
            (a.acknowledged_by, a.acknowledged_at) = (Some(by), Some(now.to_owned()));
            (a.closed_by, a.closed_at) = (None, None);
        }
        AlertStatus::Closed => (a.closed_by, a.closed_at) = (Some(by), Some(now.to_owned())),
    }
    a.status = to;
}

/// Applies `edit` to alert `id` under optimistic concurrency. An edit that changes nothing
/// writes nothing; reopening an automatic alert whose type is open again elsewhere is a 409.
async fn change(
    s: &State,
    id: i64,
    edit: impl Fn(&mut Alert, &str) -> Result<()>,
) -> Result<Alert> {
    let table = s.table.as_ref();
    retry::optimistic(|| async {
        let (old, version) = load(table, id).await?;
        let mut new = old.clone();
        let now = civic_core::time::now_rfc3339();
        edit(&mut new.alert, &now)?;
        if new == old {
            return Ok(Some(new.alert));
        }
        new.alert.updated_at = now;
        let reopens =
            old.alert.status == AlertStatus::Closed && new.alert.status != AlertStatus::Closed;
        if let (true, Some(marker)) = (reopens, &new.marker)
            && holder(table, marker).await?.is_some_and(|h| h != id)
        {
            return Err(Error::Conflict(format!(
                "Another {} alert from the same source is open",
                new.alert.alert_type
            )));
        }
        let won = save(s, Some((&old, version)), &new).await?;
        Ok(won.then_some(new.alert))
    })
    .await
}

// ---- Automatic alerts -----------------------------------------------------------------

/// What [`raise_auto`] did.
#[derive(Debug)]
pub enum Raised {
    Created(Alert),
    /// An alert of this source and type is open (OPEN or ACKNOWLEDGED): it is returned as is.
    AlreadyOpen(Alert),
}

/// Raises an automatic alert of `alert_type` in `zone`, unless one from the same source is
/// not yet CLOSED. The source is the camera when given, else the zone: pass `camera: None` to
/// deduplicate per zone whichever camera saw it. The organization is stored on the alert, so
/// `?org_id` lists it.
pub async fn raise_auto(
    s: &State,
    zone: &Zone,
    camera: Option<i64>,
    alert_type: &str,
    heading: &str,
    sub_heading: &str,
) -> Result<Raised> {
    let source = match camera {
        Some(c) => format!("CAMERA#{c}"),
        None => format!("ZONE#{}", zone.id),
    };
    let marker = format!("{source}#{alert_type}");
    let table = s.table.as_ref();
    if let Some(open) = holder(table, &marker).await? {
        return Ok(Raised::AlreadyOpen(load(table, open).await?.0.alert));
    }
    let now = civic_core::time::now_rfc3339();
    let record = Record {
        alert: Alert {
            id: ids::next_id(table, "alert").await?,
            heading: heading.to_owned(),
            sub_heading: sub_heading.to_owned(),
            status: AlertStatus::Open,
            created_at: now.clone(),
            updated_at: now,
            alert_type: alert_type.to_owned(),
            organization_id: Some(zone.organization_id),
            zone_id: Some(zone.id),
            camera_id: camera,
            acknowledged_by: None,
            acknowledged_at: None,
            closed_by: None,
            closed_at: None,
        },
        marker: Some(marker.clone()),
    };
    // Losing means the marker was taken meanwhile (the alert is new, so nothing else fails).
    retry::optimistic(|| async {
        if save(s, None, &record).await? {
            return Ok(Some(Raised::Created(record.alert.clone())));
        }
        match holder(table, &marker).await? {
            Some(open) => Ok(Some(Raised::AlreadyOpen(load(table, open).await?.0.alert))),
            None => Ok(None),
        }
    })
    .await
}
