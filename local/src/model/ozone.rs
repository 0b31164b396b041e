//! Ozone's event ingest in the scale model: every device sends one treatment event per
//! period over MQTT (the topic rule's path), before and after issue 18.

use std::sync::Arc;

use anyhow::Result;
use civic_store::{Cond, Table};
use ozone::aggregate::{self, Mode};
use ozone::keys::{DEVICES, Shards, device_index_sk, device_key};
use ozone::{Config, State};
use serde_json::json;

use super::{Follower, Row, Run, arrivals, drive, metered};

const TABLE: &str = "civic-ozone";
/// Devices per outlet (one machine each).
const PER_OUTLET: usize = 20;
const BASE: &str = "2026-01-05T00:00:00Z";

/// The two designs compared.
const DESIGNS: [(&str, Mode, u32); 2] = [("before", Mode::Inline, 1), ("after", Mode::Stream, 16)];

/// Rows for `devices` devices, each sending an event every `period` seconds.
pub async fn rows(devices: usize, period: f64, run: Run) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (design, mode, shards) in DESIGNS {
        let report = one(devices, period, run, mode, Shards::new(shards).unwrap()).await?;
        let scenario = format!("Ozone, {devices} devices × 1 event/{period:.0} s");
        rows.push(Row::new(scenario, design, "event", &report, run));
    }
    Ok(rows)
}

async fn one(
    devices: usize,
    period: f64,
    run: Run,
    mode: Mode,
    shards: Shards,
) -> Result<civic_store::model::Report> {
    let (store, meter) = metered(TABLE, mode == Mode::Stream)?;
    let platform = super::platform(store.clone())?;
    let base = State::new(&platform);
    let config = Config {
        fleet_rollups: mode,
        index_shards: shards,
        ..(*base.config).clone()
    };
    let s = State {
        table: meter.clone(),
        config: Arc::new(config),
        ..base
    };
    seed(meter.inner().as_ref(), devices, shards).await?;
    let start = chrono::DateTime::parse_from_rfc3339(BASE)?.to_utc();
    let send = |i: usize, k: u64, t: f64| {
        let (s, meter) = (s.clone(), meter.clone());
        async move {
            let ts = start + chrono::Duration::milliseconds((t * 1000.0) as i64);
            let treatment = ["BASIC", "STANDARD", "PREMIUM"][(i + k as usize) % 3];
            let msg = json!({
                "device_id": format!("esp32-{i:06}"),
                "event_id": format!("e-{k}"),
                "treatment": treatment,
                "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            });
            meter
                .scoped("event", ozone::gateway::device_message(s, msg))
                .await?;
            Ok(())
        }
    };
    let follower = Follower::new(&store, TABLE, meter.clone());
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
    drive(&meter, &arrivals(devices, period, run), run, send, tick).await?;
    Ok(meter.report())
}

/// Assigned devices, each on its own machine, `PER_OUTLET` machines per outlet.
async fn seed(table: &dyn Table, devices: usize, shards: Shards) -> Result<()> {
    for i in 0..devices {
        let id = format!("esp32-{i:06}");
        let key = device_key(&id);
        let item = json!({
            "PK": key.pk, "SK": key.sk, "device_id": id, "assigned_at": BASE,
            "machine_id": i + 1, "outlet_id": i / PER_OUTLET + 1, "version": 1,
            "GSI1PK": shards.pk(DEVICES, &id), "GSI1SK": device_index_sk(BASE, &id),
        });
        let serde_json::Value::Object(item) = item else {
            unreachable!()
        };
        table.put(item, Cond::Always).await?;
    }
    Ok(())
}
