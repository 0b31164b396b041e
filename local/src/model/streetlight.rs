//! Streetlight's device status reports in the scale model: every light of one city reports its
//! status over MQTT (`streetlight/lights/{lightId}/status`, the topic rule's consumer
//! [`streetlight::lights::device_status`]), before and after issue 18.
//!
//! Before, each report allocated a log id (an `ADD` on the app-wide `COUNTER` item), then
//! wrote the light (which is in its city's GSI partition) and its log entry, and, when the
//! status changed, the city's summary, in one transaction. After, the log id is a time stamp
//! (no write of its own), and a change leaves its delta on the light item; the aggregator,
//! ticked once per simulated second, folds the feed into one `ADD` per city. The code has no
//! switch back to the counter (nothing but this comparison would use one), so the "before"
//! run makes the counter's `ADD` itself, as part of each report, then runs the report with
//! the summary inline: the same writes, in the same order, as the design before. Before, a
//! city's light listing is one GSI1 partition; after, it is spread over 16
//! (`STREETLIGHT_INDEX_SHARDS`), by light id.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use civic_store::model::Report;
use civic_store::stream::Feed;
use civic_store::{Cond, GSI1PK, GSI1SK, PK, SK, Shards, Table, VERSION};
use serde_json::json;
use streetlight::aggregate::{self, Mode};
use streetlight::keys::{city_pk, light_key, summary_key};
use streetlight::lights::{Light, Status};
use streetlight::{Config, State};

use super::{Row, Run, arrivals, drive, metered};

const TABLE: &str = "civic-streetlight";
const BASE: &str = "2026-01-05T00:00:00Z";
const CITY: &str = "Metropolis";
/// A light reports its status every 5 minutes (a heartbeat that also says on/off/fault).
pub const PERIOD: f64 = 300.0;
/// One report in 6 is a change: dusk, when the whole city switches on within 30 minutes
/// (6 reports per light), is when the city summary is written most. The cost per month is
/// at that rate, so it is an upper bound: over a whole day far fewer reports change.
const CHANGE_EVERY: usize = 6;
/// One change in 50 is a fault (`error`); a faulty light's next change is a repair (`on`).
const FAULT_EVERY: usize = 50;

/// The two designs compared: where the summary is counted, and the city listing's shards.
const DESIGNS: [(&str, Mode, u32); 2] = [("before", Mode::Inline, 1), ("after", Mode::Stream, 16)];

/// The "before" and "after" rows for `lights` lights in one city.
pub async fn rows(lights: usize, run: Run) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (design, mode, shards) in DESIGNS {
        let report = one(lights, run, mode, Shards::new(shards).unwrap()).await?;
        // Past the tracked keys' number, a key colder than all of them is no longer ranked: its
        // peak is at most the coldest ranked one's. After, the summary takes 2 writes per
        // aggregator tick (the counts, then `last_updated`), as cold as a light's own partition.
        let summary = match report.hot.iter().find(|h| h.key == city_pk(CITY)) {
            Some(h) => h.peak_writes.to_string(),
            None => format!("≤ {}", report.hot.last().map_or(0, |h| h.peak_writes)),
        };
        let scenario = format!(
            "Streetlight, {lights} lights in 1 city × 1 status/{PERIOD:.0} s, 1 in {CHANGE_EVERY} a change: summary {summary} writes/s"
        );
        rows.push(Row::new(scenario, design, "status", &report, run));
    }
    Ok(rows)
}

async fn one(lights: usize, run: Run, mode: Mode, shards: Shards) -> Result<Report> {
    let (store, meter) = metered(TABLE, mode == Mode::Stream)?;
    let feed = store.table(TABLE);
    let platform = super::platform(store)?;
    let s = State {
        table: meter.clone(),
        config: Arc::new(Config {
            city_summary: mode,
            index_shards: shards,
        }),
        ..State::new(&platform)
    };
    let arrivals = arrivals(lights, PERIOD, run);
    // A light that does not report within the run never touches the table, so only those that
    // do are stored (the summary still counts them all): seeding 100,000 would cost more than
    // the run and change no figure.
    let reporting: Vec<usize> = arrivals.iter().filter(|a| a.2 == 0).map(|a| a.1).collect();
    seed(meter.inner().as_ref(), lights, &reporting, shards).await?;
    // Each light's status as the model last sent it; one light's reports never overlap.
    let statuses = Arc::new(Mutex::new(vec![Status::Off; lights]));
    let send = |i: usize, k: u64, _t: f64| {
        let (s, meter, statuses) = (s.clone(), meter.clone(), statuses.clone());
        async move {
            let status = next_status(&mut statuses.lock().unwrap()[i], i, k);
            let msg = json!({
                "lightId": light_id(i),
                "status": status,
                "errorDetails": (status == Status::Error).then_some("lamp failure"),
            });
            let report = async {
                if mode == Mode::Inline {
                    // The design before: the log id from the app-wide counter.
                    civic_core::ids::next_id(s.table.as_ref(), "log").await?;
                }
                streetlight::lights::device_status(s, msg).await
            };
            meter.scoped("status", report).await?;
            Ok(())
        }
    };
    // The aggregator, once per simulated second: the event source mapping's batching window.
    let position = Arc::new(Mutex::new(None::<String>));
    let tick = || {
        let (meter, feed, position) = (meter.clone(), feed.clone(), position.clone());
        async move {
            if mode == Mode::Inline {
                return Ok(());
            }
            let from = position.lock().unwrap().clone();
            let batch = feed.changes(from.as_deref(), usize::MAX).await?;
            let Some(last) = batch.last().map(|c| c.seq.clone()) else {
                return Ok(());
            };
            let table: Arc<dyn Table> = meter.clone();
            meter
                .scoped("aggregator", aggregate::apply(table.as_ref(), batch))
                .await?;
            feed.trim(&last).await?;
            *position.lock().unwrap() = Some(last);
            Ok(())
        }
    };
    drive(&meter, &arrivals, run, send, tick).await?;
    Ok(meter.report())
}

fn light_id(i: usize) -> String {
    format!("SL{i:06}")
}

/// The status light `i` reports the `k`-th time: a change one time in [`CHANGE_EVERY`],
/// spread over lights and reports, else what it reported last.
fn next_status(current: &mut Status, i: usize, k: u64) -> Status {
    let n = i + 5 * k as usize;
    if n.is_multiple_of(CHANGE_EVERY) {
        *current = match *current {
            _ if (n / CHANGE_EVERY) % FAULT_EVERY == 1 => Status::Error,
            Status::Off | Status::Error => Status::On,
            Status::On => Status::Off,
        };
    }
    *current
}

/// Lights `reporting` of a city of `lights`, all off (before dusk), and its summary.
async fn seed(table: &dyn Table, lights: usize, reporting: &[usize], shards: Shards) -> Result<()> {
    for &i in reporting {
        let id = light_id(i);
        let light = Light {
            id: i as i64 + 1,
            light_id: id.clone(),
            name: format!("Light {i}"),
            city: CITY.into(),
            latitude: 40.0 + (i % 1000) as f64 * 1e-4,
            longitude: -74.0 + (i / 1000) as f64 * 1e-4,
            address: Some(format!("{} Main Street", i + 1)),
            status: Status::Off,
            is_automatic: true,
            brightness: 100,
            last_status_change: BASE.into(),
            error_details: None,
        };
        let key = light_key(&id);
        let keys = [
            (PK, key.pk),
            (SK, key.sk),
            (GSI1PK, shards.pk(&city_pk(CITY), &id)),
            (GSI1SK, id),
        ];
        let mut item = civic_core::item::to_item(&light, &keys)?;
        item.insert(VERSION.into(), 1.into());
        table.put(item, Cond::Always).await?;
    }
    let summary = civic_store::Update::new(summary_key(CITY))
        .set_if_absent("id", 1)
        .set_if_absent("city", CITY)
        .add("total_lights", lights as i64)
        .add("lights_on", 0)
        .add("lights_off", lights as i64)
        .add("lights_in_error", 0)
        .set("last_updated", BASE);
    table.update(summary).await?;
    Ok(())
}
