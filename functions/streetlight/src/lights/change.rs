//! The one write of a status change, manual or reported: the light and its log entry in one
//! transaction, guarded by the light's version, so two concurrent changes cannot both count.
//! The city summary is counted from the light's write by the aggregator ([`crate::aggregate`],
//! the default), or in the same transaction ([`Mode::Inline`], the design before issue 18,
//! whose summary item is a hot key at fleet scale).

use civic_core::item::to_item;
use civic_core::retry::{self, won};
use civic_core::{Error, Result};
use civic_store::{Cond, Item, PK, SK, Shards, Update, Write};

use super::log_id::{self, LAST_LOG};
use super::model::{ControlLog, Light, Status, Versioned};
use crate::State;
use crate::aggregate::{DELTA, Mode, SummaryDelta};
use crate::keys::{log_key, summary_key};

pub(super) struct Change {
    pub(super) status: Status,
    pub(super) error_details: Option<String>,
    /// Manual control switches the light out of automatic mode.
    pub(super) manual: bool,
    pub(super) performed_by: String,
}

/// Applies `change` to light `light_id`, retried while concurrent changes win the version.
pub(super) async fn change_status(s: &State, light_id: &str, change: Change) -> Result<Light> {
    let (table, mode, shards) = (
        s.table.as_ref(),
        s.config.city_summary,
        s.config.index_shards,
    );
    let change = &change;
    let changed = retry::optimistic(move || async move {
        let stored = Versioned::load(table, light_id).await?;
        // Above the stored one: this light's logs keep increasing whatever the clocks.
        let log_id = log_id::next(stored.last_log);
        let now = civic_core::time::now_rfc3339();
        let before = &stored.light;
        let mut light = before.clone();
        light.status = change.status;
        light.error_details = change.error_details.clone();
        light.last_status_change = now.clone();
        light.is_automatic &= !change.manual;
        let log = ControlLog {
            id: log_id,
            light_id: light.light_id.clone(),
            action: change.status.as_str().into(),
            performed_by: change.performed_by.clone(),
            control_type: if change.manual { "manual" } else { "automatic" }.into(),
            previous_status: before.status,
            new_status: change.status,
            created_at: now,
        };
        let writes = writes((mode, shards), &stored, &light, &log)?;
        let version = stored.version + 1;
        won(table.transact(writes).await).map(|won| won.then_some((light, version)))
    })
    .await?;
    let (light, version) = changed;
    crate::live::light(&s.platform, &light, version).await;
    if mode == Mode::Inline {
        crate::live::read_summary(&s.platform, table, &light.city).await;
    }
    Ok(light)
}

/// The light (next version, newest log id, and in stream mode the summary delta when its
/// status moved), its log entry, and in inline mode the summary's counters.
fn writes(
    (mode, shards): (Mode, Shards),
    stored: &Versioned,
    light: &Light,
    log: &ControlLog,
) -> Result<Vec<Write>> {
    let mut item = stored.next_item(light, shards)?;
    item.insert(LAST_LOG.into(), log.id.into());
    let key = log_key(&light.light_id, log.id);
    let log_item = to_item(log, &[(PK, key.pk), (SK, key.sk)])?;
    let (from, to) = (stored.light.status, light.status);
    let mut summary = None;
    if from != to {
        match mode {
            Mode::Stream => {
                let delta = SummaryDelta {
                    version: stored.version + 1,
                    from,
                    to,
                    at: log.created_at.clone(),
                };
                let delta =
                    serde_json::to_value(delta).map_err(|e| Error::Internal(e.to_string()))?;
                item.insert(DELTA.into(), delta);
            }
            Mode::Inline => summary = Some(counters(light, from, log)),
        }
    }
    let mut writes = vec![
        put(item, Cond::Version(stored.version)),
        put(log_item, Cond::Always),
    ];
    writes.extend(summary.map(Write::Update));
    Ok(writes)
}

fn put(item: Item, cond: Cond) -> Write {
    Write::Put { item, cond }
}

/// The city's counters moved in the change's own transaction ([`Mode::Inline`]).
fn counters(light: &Light, from: Status, log: &ControlLog) -> Update {
    Update::new(summary_key(&light.city))
        .add(from.counter(), -1)
        .add(light.status.counter(), 1)
        .add(crate::live::SEQ, 1)
        .set("last_updated", log.created_at.clone())
}
