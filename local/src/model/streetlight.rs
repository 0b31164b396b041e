//! Streetlight's device status reports in the scale model: every light of one city reports its
//! status over MQTT (`streetlight/lights/{lightId}/status`, the topic rule's consumer
//! [`streetlight::lights::device_status`]), on today's design ("before" issue 18).
//!
//! Today each report allocates a log id (an `ADD` on the app-wide `COUNTER` item), writes the
//! light (which is in its city's GSI partition) and its log entry, and, when the status
//! changed, the city's summary, all but the id in one transaction.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use civic_store::model::Report;
use civic_store::{Cond, GSI1PK, GSI1SK, PK, SK, Table, VERSION};
use serde_json::json;
use streetlight::State;
use streetlight::keys::{city_pk, light_key, summary_key};
use streetlight::lights::{Light, Status};

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

/// The "before" row for `lights` lights in one city.
pub async fn rows(lights: usize, run: Run) -> Result<Vec<Row>> {
    let report = one(lights, run).await?;
    let summary = report.hot.iter().find(|h| h.key == city_pk(CITY));
    let scenario = format!(
        "Streetlight, {lights} lights in 1 city × 1 status/{PERIOD:.0} s, 1 in {CHANGE_EVERY} a change: summary {} writes/s",
        summary.map_or(0, |h| h.peak_writes)
    );
    Ok(vec![Row::new(scenario, "before", "status", &report, run)])
}

async fn one(lights: usize, run: Run) -> Result<Report> {
    let (store, meter) = metered(TABLE, false)?;
    let platform = super::platform(store)?;
    let s = State {
        table: meter.clone(),
        ..State::new(&platform)
    };
    let arrivals = arrivals(lights, PERIOD, run);
    // A light that does not report within the run never touches the table, so only those that
    // do are stored (the summary still counts them all): seeding 100,000 would cost more than
    // the run and change no figure.
    let reporting: Vec<usize> = arrivals.iter().filter(|a| a.2 == 0).map(|a| a.1).collect();
    seed(meter.inner().as_ref(), lights, &reporting).await?;
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
            meter
                .scoped("status", streetlight::lights::device_status(s, msg))
                .await?;
            Ok(())
        }
    };
    // Today's design has no aggregator: nothing runs between requests.
    let tick = || async { Ok(()) };
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
async fn seed(table: &dyn Table, lights: usize, reporting: &[usize]) -> Result<()> {
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
            (GSI1PK, city_pk(CITY)),
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
