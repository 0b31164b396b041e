//! `POST /api/flush`: delete all telemetry in bounded batches, resumable.

use std::time::{Duration as StdDuration, Instant};

use axum::extract::State as S;
use civic_core::item::from_item;
use civic_core::{Json, Result};
use civic_store::{Cond, Item, Key, Table, Update, Write};
use serde::Serialize;
use utoipa::ToSchema;

use crate::gateway::Event;
use crate::keys::{DEVICES, EVENTS, MACHINES, OUTLETS, device_key, event_id_key, flushed_key};
use crate::rollup::{self, Scope};
use crate::{Staff, State};

#[derive(Serialize, ToSchema)]
pub struct FlushReply {
    success: bool,
    message: String,
    /// Items deleted by this call.
    deleted: usize,
    /// `false` when time ran out: call again to continue.
    complete: bool,
}

/// How long one flush call works before it reports progress.
const FLUSH_BUDGET: StdDuration = StdDuration::from_secs(5);
const FLUSH_BATCH: usize = 50;

/// Flush all telemetry (staff): raw events, their idempotency markers and every rollup, and
/// the devices' telemetry counters. Devices, tokens, outlets and machines stay. Works in
/// bounded batches; repeat while `complete` is false.
#[utoipa::path(post, path = "/api/flush", tag = "analytics", security(("session" = [])),
    responses((status = 200, body = FlushReply), (status = 401), (status = 403)))]
pub(super) async fn flush(S(s): S<State>, _staff: Staff) -> Result<Json<FlushReply>> {
    let table = s.table.as_ref();
    // Events received before now and not yet counted by the aggregator are flushed too.
    let mark = Update::new(flushed_key()).set("receipt", crate::now().timestamp_micros());
    table.update(mark).await?;
    let mut run = Run {
        table,
        started: Instant::now(),
        deleted: 0,
    };
    // Raw events and their markers, shard by shard.
    for shard in s.config.index_shards.all(EVENTS) {
        let events = civic_store::Query::index(shard).limit(FLUSH_BATCH / 2);
        if !run.drain(events, event_and_marker).await? {
            return Ok(Json(progress(run.deleted)));
        }
    }
    // Rollups of every scope that can have them.
    let devices = device_ids(&s).await?;
    for scope in rollup_scopes(table, &devices).await? {
        for g in rollup::GRANULARITIES {
            let rollups = civic_store::Query::partition(scope.pk(g)).limit(FLUSH_BATCH);
            if !run.drain(rollups, |i| Ok(vec![Key::of(i)?])).await? {
                return Ok(Json(progress(run.deleted)));
            }
        }
    }
    reset_counters(table, &devices).await?;
    Ok(Json(FlushReply {
        success: true,
        message: "All telemetry data flushed".into(),
        deleted: run.deleted,
        complete: true,
    }))
}

/// One flush call: what it deleted so far, within its time budget.
struct Run<'a> {
    table: &'a dyn Table,
    started: Instant,
    deleted: usize,
}

impl Run<'_> {
    /// Deletes what `query` finds (with `keys` of each item), a batch per transaction, until
    /// it finds nothing; `false` when the budget ran out first. Queries the first page again
    /// each time, since the previous batch is gone.
    async fn drain(
        &mut self,
        query: civic_store::Query,
        keys: impl Fn(&Item) -> Result<Vec<Key>>,
    ) -> Result<bool> {
        loop {
            let res = self.table.query(query.clone()).await?;
            if res.items.is_empty() {
                return Ok(true);
            }
            let mut writes = Vec::new();
            for item in &res.items {
                writes.extend(keys(item)?.into_iter().map(|key| Write::Delete {
                    key,
                    cond: Cond::Always,
                }));
            }
            self.deleted += delete_all(self.table, writes).await?;
            if self.started.elapsed() > FLUSH_BUDGET {
                return Ok(false);
            }
        }
    }
}

/// An event goes with its idempotency marker.
fn event_and_marker(item: &Item) -> Result<Vec<Key>> {
    let e: Event = from_item(item.clone())?;
    Ok(vec![
        Key::of(item)?,
        event_id_key(&e.device_id, &e.event_id),
    ])
}

async fn device_ids(s: &State) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for shard in s.config.index_shards.all(DEVICES) {
        let query = civic_store::Query::index(shard).limit(1000);
        let items = s.table.query_all(query).await?;
        ids.extend(
            items
                .iter()
                .filter_map(|i| Some(i.get("device_id")?.as_str()?.to_owned())),
        );
    }
    Ok(ids)
}

/// Every scope with rollups: all, each device, machine and outlet.
async fn rollup_scopes(table: &dyn Table, devices: &[String]) -> Result<Vec<Scope>> {
    let mut scopes = vec![Scope::All];
    scopes.extend(devices.iter().cloned().map(Scope::Device));
    scopes.extend(ids(table, MACHINES).await?.into_iter().map(Scope::Machine));
    scopes.extend(ids(table, OUTLETS).await?.into_iter().map(Scope::Outlet));
    Ok(scopes)
}

/// The `id` of every item in `index`.
async fn ids(table: &dyn Table, index: &str) -> Result<Vec<i64>> {
    let items = table
        .query_all(civic_store::Query::index(index).limit(1000))
        .await?;
    Ok(items.iter().filter_map(|i| i.get("id")?.as_i64()).collect())
}

/// The devices' telemetry counters; a device deleted meanwhile is skipped.
async fn reset_counters(table: &dyn Table, devices: &[String]) -> Result<()> {
    for d in devices {
        let reset = Update::new(device_key(d))
            .set("event_count", 0)
            .remove("current_count_basic")
            .remove("current_count_standard")
            .remove("current_count_premium")
            .remove("last_event_at")
            .remove("mode")
            .cond(Cond::Exists);
        match table.update(reset).await {
            Ok(_) | Err(civic_store::StoreError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn progress(deleted: usize) -> FlushReply {
    FlushReply {
        success: true,
        message: "Flush in progress; call again to continue".into(),
        deleted,
        complete: false,
    }
}

async fn delete_all(table: &dyn Table, writes: Vec<Write>) -> Result<usize> {
    let n = writes.len();
    if n > 0 {
        table.transact(writes).await?;
    }
    Ok(n)
}
