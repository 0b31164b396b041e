//! Occupancy's crossing ingest in the scale model: every camera posts its line crossings in
//! batches over MQTT (`occupancy/cameras/{id}/crossings`, the topic rule's consumer
//! [`occupancy::ingest::camera_message`]), before and after issue 18.
//!
//! A deployment is one facility: all the cameras of a run count into the single `FACILITY`
//! item. Before, every camera's batch `ADD`ed to it in its own transaction; after, the batch
//! leaves its delta on the camera item and the aggregator, ticked once per simulated second,
//! folds the feed into one `ADD`. A batch is applied in sequential transactions of at most
//! 100 writes (a tracked crossing costs one `CROSSED` and up to four `SEEN` markers), so the
//! scenario's label gives the transactions per batch it measured.

use std::sync::Arc;

use anyhow::Result;
use civic_core::item::{indexed, to_item};
use civic_store::model::{Metered, Params, Report};
use civic_store::{Cond, Embedded, Table, VERSION};
use occupancy::aggregate::{self, Mode};
use occupancy::cameras::{Camera, CameraType, Direction, Line, Record};
use occupancy::keys::{FACILITY, by_id, facility_key, line_key, lines_index};
use occupancy::{Config, State};
use serde_json::json;

use super::{Follower, Row, Run, arrivals, drive};

const TABLE: &str = "civic-occupancy";
const BASE: &str = "2026-01-05T00:00:00Z";
/// A camera sends one batch every 10 s: what an edge tracker buffers before publishing, so a
/// busy entrance costs one message per 10 s rather than one per person.
pub const PERIOD: f64 = 10.0;
/// Crossings in an ordinary batch: a busy entrance, about one person every 2.5 s.
const USUAL: usize = 4;
/// Every tenth batch of a camera is a rush (a bus unloads, a shift changes): 30 crossings,
/// more than one 100-write transaction holds.
const RUSH: usize = 30;
/// Each camera's capacity, so the capacity alerts are live as in a real deployment.
const CAPACITY: i64 = 500;

/// The two designs compared.
const DESIGNS: [(&str, Mode); 2] = [("before", Mode::Inline), ("after", Mode::Stream)];

/// The "before" and "after" rows for `cameras` cameras.
pub async fn rows(cameras: usize, run: Run) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (design, mode) in DESIGNS {
        let report = one(cameras, run, mode).await?;
        let batch = report.kind("batch");
        let per_batch = batch.transactions as f64 / batch.requests.max(1) as f64;
        // Past the tracked keys' number, a key colder than all of them is no longer ranked: its
        // peak is at most the coldest ranked one's.
        let facility = match report.hot.iter().find(|h| h.key == FACILITY) {
            Some(h) => h.peak_writes.to_string(),
            None => format!("≤ {}", report.hot.last().map_or(0, |h| h.peak_writes)),
        };
        let scenario = format!(
            "Occupancy, {cameras} cameras × 1 batch/{PERIOD:.0} s, 1 facility: {per_batch:.2} txn/batch, `{FACILITY}` {facility} writes/s"
        );
        rows.push(Row::new(scenario, design, "batch", &report, run));
    }
    Ok(rows)
}

async fn one(cameras: usize, run: Run, mode: Mode) -> Result<Report> {
    let store = Embedded::in_memory()?;
    let inner = if mode == Mode::Stream {
        store.enable_stream(TABLE)?
    } else {
        store.table(TABLE)
    };
    // Every tracked partition ranked, not just the top 10: at a few cameras the per-camera
    // marker partitions are hotter than the facility, whose peak the label still gives.
    let params = Params {
        top: Params::default().tracked_keys,
        ..Params::default()
    };
    let meter = Arc::new(Metered::with_params(Arc::new(inner), params));
    let follower = Follower::new(&store, TABLE, meter.clone());
    let platform = super::platform(store)?;
    let base = State::new(&platform);
    let config = Config {
        facility_counters: mode,
        ..(*base.config).clone()
    };
    let s = State {
        table: meter.clone(),
        config: Arc::new(config),
        ..base
    };
    seed(meter.inner().as_ref(), cameras).await?;
    let start = chrono::DateTime::parse_from_rfc3339(BASE)?.to_utc();
    let send = |i: usize, k: u64, t: f64| {
        let (s, meter) = (s.clone(), meter.clone());
        async move {
            let msg = batch(i, k, start + millis(t));
            meter
                .scoped("batch", occupancy::ingest::camera_message(s, msg))
                .await?;
            Ok(())
        }
    };
    let tick = || {
        let (s, follower) = (s.clone(), follower.clone());
        async move {
            if mode == Mode::Inline {
                return Ok(());
            }
            follower
                .tick(|batch| async move { aggregate::apply(&s, batch).await })
                .await
        }
    };
    drive(&meter, &arrivals(cameras, PERIOD, run), run, send, tick).await?;
    Ok(meter.report())
}

fn millis(secs: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

/// Camera `i`'s `k`-th batch, sent at `sent`: entries and exits alternating (so occupancy
/// never goes below 0), 200 ms apart, ending at `sent`. Each crossing has its own track id, as
/// a tracker gives a person who enters and, minutes later, leaves two different tracks.
fn batch(i: usize, k: u64, sent: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let n = if (i as u64 + k) % 10 == 9 {
        RUSH
    } else {
        USUAL
    };
    let events: Vec<_> = (0..n)
        .map(|j| {
            let at = sent - millis(0.2 * (n - j) as f64);
            json!({
                "line_id": i + 1,
                "direction": if j % 2 == 0 { "entry" } else { "exit" },
                "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "confidence": 0.9,
                "track_id": format!("t{i}-{k}-{j}"),
            })
        })
        .collect();
    json!({ "camera_id": i + 1, "events": events })
}

/// Active cameras with one bidirectional line each, and the facility's counters, as
/// registration and line creation leave them (camera `i` has id and line id `i + 1`).
async fn seed(table: &dyn Table, cameras: usize) -> Result<()> {
    for i in 0..cameras {
        let id = i as i64 + 1;
        let camera = Camera {
            id,
            camera_id: format!("cam-{id:05}"),
            camera_name: format!("Entrance {id}"),
            location: Some(format!("Door {id}")),
            camera_type: CameraType::Bidirectional,
            is_active: true,
            max_occupancy: Some(CAPACITY),
            resolution_width: 1920,
            resolution_height: 1080,
            created_at: BASE.into(),
        };
        let record = Record {
            camera,
            live: Default::default(),
            version: 1,
        };
        table.put(record.to_item()?, Cond::Always).await?;
        table.put(line(id)?, Cond::Always).await?;
    }
    let n = cameras as i64;
    let facility = civic_store::Update::new(facility_key())
        .add("total_cameras", n)
        .add("active_cameras", n)
        .add("capacity", n * CAPACITY)
        .set("last_updated", BASE);
    table.update(facility).await?;
    Ok(())
}

/// Camera `id`'s line (same id), across the frame's middle.
fn line(id: i64) -> Result<civic_store::Item> {
    let line = Line {
        id,
        camera_id: id,
        line_name: "door".into(),
        x1: 0,
        y1: 540,
        x2: 1920,
        y2: 540,
        direction: Direction::Bidirectional,
        confidence_threshold: 0.5,
        is_active: true,
        created_at: BASE.into(),
    };
    let keys = indexed(line_key(id), lines_index(id), by_id(id));
    let mut item = to_item(&line, &keys)?;
    item.insert(VERSION.into(), 1.into());
    Ok(item)
}
