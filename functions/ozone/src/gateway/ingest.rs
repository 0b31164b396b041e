//! Storing an event exactly once, with its device's status and the rollups it counts in: what
//! the HTTP, MQTT and legacy ingests share.

use chrono::DateTime;
use civic_core::item::to_item;
use civic_core::{Error, Result, retry};
use civic_store::{Cond, EXPIRES_AT, Item, PK, SK, StoreError, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{DeviceRecord, LAST_RECEIPT, touch};
use crate::keys::{EVENTS, device_key, event_id_key, event_index_sk, event_key, indexed};
use crate::rollup;
use crate::{State, Treatment, aggregate, now};

/// An event, as stored and listed.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub device_id: String,
    /// Legacy type: BASIC|STANDARD|PREMIUM|status (or the event name).
    pub event_type: String,
    pub event_id: String,
    pub event: String,
    pub treatment: Option<Treatment>,
    pub counter: Option<i64>,
    pub occurred_at: String,
    pub device_timestamp: Option<String>,
    pub wifi_status: Option<Value>,
    pub payload: Option<Value>,
    pub count_basic: Option<i64>,
    pub count_standard: Option<i64>,
    pub count_premium: Option<i64>,
    pub firmware: Option<String>,
    pub received_at: String,
}

impl Event {
    pub fn is_status(&self) -> bool {
        self.event_type == "status"
    }
}

/// Receipt order, for events that occurred in the same second: a [`civic_core::ids::stamp`]
/// above `floor`, the device's last stored stamp. Kept in the events' sort keys, so no extra
/// write and no shared counter: a device's next event sorts after its previous one whatever
/// the clocks of the processes that took them.
pub fn receipt_stamp(floor: i64) -> i64 {
    civic_core::ids::stamp(floor)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

/// Stores an event exactly once. One transaction writes the event-id marker (only if absent:
/// that is the idempotency), the event, the device's status and the device's and machine's
/// rollups (the shared ones come from the [`aggregate`] on the inserted event); a repeated
/// event id fails the marker's condition and changes nothing. Raw events and
/// markers expire after the retention period; rollups stay. Events of the same second sort by
/// their [`receipt_stamp`], which the device's status keeps for the next one.
pub async fn ingest(s: &State, record: &DeviceRecord, e: &Event, status: Update) -> Result<Stored> {
    let device = &record.device;
    let receipt = receipt_stamp(record.last_receipt);
    let status = status.set(LAST_RECEIPT, receipt);
    let expires_at = now().timestamp() + s.config.retention_secs;
    let marker_key = event_id_key(&e.device_id, &e.event_id);
    let marker = Item::from_iter([
        (PK.to_owned(), Value::from(marker_key.pk)),
        (SK.to_owned(), marker_key.sk.into()),
        ("occurred_at".to_owned(), e.occurred_at.clone().into()),
        (EXPIRES_AT.to_owned(), expires_at.into()),
    ]);
    let key = event_key(&e.device_id, &e.occurred_at, receipt, &e.event_id);
    let index_sk = event_index_sk(&e.occurred_at, receipt, &e.device_id, &e.event_id);
    let index = s.config.index_shards.pk(EVENTS, &e.device_id);
    let mut event = to_item(e, &indexed(key, index, index_sk))?;
    event.insert(EXPIRES_AT.into(), expires_at.into());
    if let Some(outlet) = device.outlet_id {
        event.insert(aggregate::OUTLET.into(), outlet.into());
    }
    let mut writes = vec![
        Write::Put {
            item: marker,
            cond: Cond::NotExists,
        },
        Write::Put {
            item: event,
            cond: Cond::Always,
        },
        Write::Update(status.cond(Cond::Exists)),
    ];
    if let Some(t) = e.treatment {
        let at = DateTime::parse_from_rfc3339(&e.occurred_at)
            .map_err(|err| Error::Internal(err.to_string()))?
            .to_utc();
        let scopes = aggregate::ingest_scopes(s, &e.device_id, device);
        let counts = rollup::increments(s.config.tz, at, &scopes, t);
        writes.extend(counts.into_iter().map(Write::Update));
    }
    let (table, writes) = (s.table.as_ref(), &writes);
    let stored = retry::optimistic(move || async move {
        match table.transact(writes.clone()).await {
            Ok(()) => Ok(Some(Stored::New)),
            Err(StoreError::TransactionCanceled(failed)) if failed.contains(&0) => {
                Ok(Some(Stored::Duplicate))
            }
            Err(StoreError::TransactionCanceled(_)) => {
                Err(Error::Unauthorized("Unknown device".into()))
            }
            // Concurrent transactions on the same items: try again.
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    if stored == Stored::New {
        crate::live::event(&s.platform, e, receipt).await;
    }
    Ok(stored)
}

/// What an event changes in its device's status.
pub(super) fn status_update(s: &State, device_id: &str, e: &Event, received: &str) -> Update {
    let shards = s.config.index_shards;
    let mut u = touch(
        Update::new(device_key(device_id)),
        shards,
        device_id,
        received,
    )
    .set("mode", e.event_type.clone())
    .set("last_event_at", e.occurred_at.clone())
    .add("event_count", 1);
    if let Some(ts) = &e.device_timestamp {
        u = u.set("device_timestamp", ts.clone());
    }
    if let Some(f) = &e.firmware {
        u = u.set("firmware", f.clone());
    }
    if let (Some(t), Some(c)) = (e.treatment, e.counter) {
        u = u.set(t.count_field(), c);
    }
    match &e.wifi_status {
        Some(Value::Bool(b)) => u.set("wifi_connected", *b),
        Some(Value::String(w)) => u.set(
            "wifi_connected",
            matches!(
                w.to_ascii_lowercase().as_str(),
                "connected" | "ok" | "on" | "true"
            ),
        ),
        _ => u,
    }
}
