//! Ozone's event ingest in the scale model: every device sends one treatment event per
//! period over MQTT (the topic rule's path), before and after issue 18.

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use civic_store::{Cond, Item, Key, Page, Query, Row as StoreRow, Shards, Table, Update, Write};
use ozone::aggregate::{self, Mode};
use ozone::keys::{DEVICES, device_index_sk, device_key};
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
    // The design before issue 18 kept a rollup item per minute, hour, day and month.
    let table: Arc<dyn Table> = match mode {
        Mode::Inline => Arc::new(PerBucket(meter.clone())),
        Mode::Stream => meter.clone(),
    };
    let s = State {
        table,
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

/// The rollup layout before issue 18, for the "before" rows: each write of an hour item (with
/// its minute) or a month item (with its day) becomes the two per-bucket items it replaced, in
/// the same transaction, so the model charges what that design wrote.
struct PerBucket(Arc<dyn Table>);

impl PerBucket {
    fn split(w: Write) -> Vec<Write> {
        let Write::Update(u) = w else {
            return vec![w];
        };
        let part = u.add.iter().position(|(n, _)| n.starts_with(['m', 'd']));
        let (Some(i), Some(home)) = (
            part,
            u.key
                .pk
                .strip_suffix("#hour")
                .or(u.key.pk.strip_suffix("#month")),
        ) else {
            return vec![Write::Update(u)];
        };
        let name = u.add[i].0.clone();
        let sub = match name.starts_with('m') {
            // Minute keys are UTC like the hour's: the hour's start plus the minute.
            true => {
                let hour = chrono::NaiveDateTime::parse_from_str(&u.key.sk, "%Y-%m-%dT%H:%MZ");
                let minute: i64 = name[1..3].parse().unwrap_or(0);
                let at = hour
                    .map(|h| h + chrono::Duration::minutes(minute))
                    .unwrap_or_default();
                Key::new(
                    format!("{home}#minute"),
                    at.format("%Y-%m-%dT%H:%MZ").to_string(),
                )
            }
            false => Key::new(
                format!("{home}#day"),
                format!("{}-{}", u.key.sk, &name[1..3]),
            ),
        };
        let totals: Vec<(String, serde_json::Number)> =
            u.add.iter().filter(|(n, _)| *n != name).cloned().collect();
        let bucket = |key: Key| {
            let u = totals
                .iter()
                .fold(Update::new(key), |u, (n, v)| u.add(n, v.clone()));
            Write::Update(u)
        };
        vec![bucket(sub), bucket(u.key.clone())]
    }
}

#[async_trait]
impl Table for PerBucket {
    async fn get_row(&self, key: &Key) -> civic_store::Result<Option<StoreRow>> {
        self.0.get_row(key).await
    }
    async fn query_rows(&self, q: Query) -> civic_store::Result<Page<StoreRow>> {
        self.0.query_rows(q).await
    }
    async fn put(&self, item: Item, cond: Cond) -> civic_store::Result<()> {
        self.0.put(item, cond).await
    }
    async fn update(&self, u: Update) -> civic_store::Result<Item> {
        self.0.update(u).await
    }
    async fn delete(&self, key: &Key, cond: Cond) -> civic_store::Result<Option<Item>> {
        self.0.delete(key, cond).await
    }
    async fn transact(&self, writes: Vec<Write>) -> civic_store::Result<()> {
        let writes = writes.into_iter().flat_map(Self::split).collect();
        self.0.transact(writes).await
    }
    async fn ping(&self) -> civic_store::Result<()> {
        self.0.ping().await
    }
}
