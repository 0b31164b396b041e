//! Carbon statistics. Every detection that records a carbon figure (a NORMAL reading, see
//! [`crate::sensor`]) `ADD`s it to two totals in its own transaction, one for all zones and one
//! for its zone, in hundredths so the sums stay exact; and it carries `GSI1PK = CARBONLOG[#ZONE#z]`,
//! so the recent history is one query of that sparse index. A read never scans.

use axum::extract::State as S;
use civic_core::{Json, Query, Result, page};
use civic_store::{Key, Typed, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::fields::int_param;
use crate::sensor::Detection;
use crate::{State, User};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(stats))
}

fn totals_key(zone: Option<i64>) -> Key {
    Key::new("CARBON", zone.map_or("ALL".into(), |z| format!("ZONE#{z}")))
}

/// The sparse index partition of the carbon history (all zones, or one).
pub fn history_partition(zone: Option<i64>) -> String {
    zone.map_or("CARBONLOG".into(), |z| format!("CARBONLOG#ZONE#{z}"))
}

fn hundredths(saved: f64) -> i64 {
    (saved * 100.0).round() as i64
}

/// The counter updates that record `saved` for `zone`: part of the detection's transaction.
pub fn tally(zone: i64, saved: f64) -> [Write; 2] {
    [None, Some(zone)].map(|z| {
        Write::Update(
            Update::new(totals_key(z))
                .add("detections", 1)
                .add("saved_hundredths", hundredths(saved)),
        )
    })
}

#[derive(Deserialize, IntoParams)]
pub struct StatsParams {
    /// Only this zone's figures.
    zone_id: Option<String>,
    /// Extension: how many recent records, 1–100 (default 10).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct Summary {
    total_saved_all_time: f64,
    /// `total_saved_all_time` / the number of detections that recorded a figure (0 if none).
    average_per_detection: f64,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryEntry {
    /// The zone's name when the figure was recorded.
    zone: String,
    saved: f64,
    /// UTC, `YYYY-MM-DD HH:MM`.
    date: String,
}

#[derive(Serialize, ToSchema)]
pub struct Stats {
    summary: Summary,
    /// Newest first.
    recent_history: Vec<HistoryEntry>,
}

/// Total and average carbon saved, and the most recent figures: two reads, concurrently.
#[utoipa::path(get, path = "/api/carbon/stats", tag = "carbon", params(StatsParams),
    security(("bearer" = [])), responses((status = 200, body = Stats), (status = 400), (status = 401)))]
async fn stats(S(s): S<State>, _: User, Query(q): Query<StatsParams>) -> Result<Json<Stats>> {
    let zone = int_param("zone_id", q.zone_id.as_deref())?;
    let limit = page::limit(q.limit, 10, 100)?;
    let history = civic_store::Query::index(history_partition(zone))
        .reverse()
        .limit(limit);
    let key = totals_key(zone);
    let (totals, recent) = tokio::join!(s.table.get(&key), s.table.query_as::<Detection>(history));
    let totals = totals?.unwrap_or_default();
    let field = |name: &str| totals.get(name).and_then(Value::as_i64).unwrap_or(0);
    let (count, total) = (field("detections"), field("saved_hundredths"));
    let recent_history = recent?
        .items
        .into_iter()
        .map(|d| HistoryEntry {
            zone: d.zone,
            saved: d.saved.unwrap_or_default(),
            date: d.created_at.get(..16).unwrap_or_default().replace('T', " "),
        })
        .collect();
    Ok(Json(Stats {
        summary: Summary {
            total_saved_all_time: total as f64 / 100.0,
            average_per_detection: match count {
                0 => 0.0,
                n => (total as f64 / n as f64).round() / 100.0,
            },
        },
        recent_history,
    }))
}
