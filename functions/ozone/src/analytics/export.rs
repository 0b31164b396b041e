//! CSV downloads: the stats as shown, and the raw events.

use axum::extract::State as S;
use axum::response::Response;
use chrono::Duration;
use civic_core::csv_export::{self, Cell};
use civic_core::{Query, Result, page};
use civic_store::SkRange;

use crate::data::events_page;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::stats::{StatsParams, compute};
use crate::gateway::Event;
use crate::rollup::SERIES;
use crate::{Staff, State, Treatment, User, iso, now, parse_days};

/// The same stats as CSV: one row per bucket (`label,total,BASIC,STANDARD,PREMIUM`, then the
/// moving averages and the previous period's columns when asked for).
#[utoipa::path(get, path = "/api/test/stats-export.csv", tag = "analytics", params(StatsParams), security(("session" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400), (status = 401)))]
pub(super) async fn stats_export(
    S(s): S<State>,
    _user: User,
    Query(q): Query<StatsParams>,
) -> Result<Response> {
    let q = q.check(s.config.tz)?;
    let st = compute(&s, &q).await?;
    let mut header = vec![Cell::from("label")];
    header.extend(SERIES.iter().map(|n| Cell::from(*n)));
    header.extend(
        st.current
            .moving_average
            .iter()
            .map(|m| Cell::Text(format!("{}_ma{}", m.name, q.ma))),
    );
    if let Some(p) = &st.previous {
        header.push(Cell::from("previous_label"));
        header.extend(
            p.series
                .iter()
                .map(|m| Cell::Text(format!("previous_{}", m.name))),
        );
    }
    let mut rows = vec![header];
    for (i, label) in st.current.labels.iter().enumerate() {
        let mut row = vec![Cell::from(label.as_str())];
        let columns = st.current.series.iter().chain(&st.current.moving_average);
        row.extend(columns.map(|c| Cell::Float(c.data[i])));
        if let Some(p) = &st.previous {
            row.push(Cell::from(p.labels.get(i).cloned()));
            row.extend(p.series.iter().map(|c| Cell::from(c.data.get(i).copied())));
        }
        rows.push(row);
    }
    csv_export::response(rows, "stats_export.csv")
}

#[derive(Deserialize, IntoParams)]
pub struct ExportParams {
    device_id: Option<String>,
    /// Days to look back (default 30).
    days: Option<String>,
    /// Extension: rows per download, 1–50000 (default 10000); the rest via `cursor`.
    limit: Option<usize>,
    /// Extension: opaque cursor from the previous download's `X-Next-Cursor` header.
    cursor: Option<String>,
}

const EXPORT_COLUMNS: [&str; 15] = [
    "event_id",
    "device_id",
    "event_type",
    "event",
    "treatment",
    "counter",
    "occurred_at",
    "device_timestamp",
    "received_at",
    "firmware",
    "count_basic",
    "count_standard",
    "count_premium",
    "wifi_status",
    "payload",
];

/// Device-supplied text (`firmware`, `device_timestamp`, the JSON columns) goes out as text
/// cells, which the CSV helper neutralises; counters stay numbers.
fn export_row(e: Event) -> Vec<Cell> {
    let json = |v: Option<Value>| Cell::from(v.map(|v| v.to_string()));
    vec![
        e.event_id.into(),
        e.device_id.into(),
        e.event_type.into(),
        e.event.into(),
        e.treatment.map(Treatment::as_str).into(),
        e.counter.into(),
        e.occurred_at.into(),
        e.device_timestamp.into(),
        e.received_at.into(),
        e.firmware.into(),
        e.count_basic.into(),
        e.count_standard.into(),
        e.count_premium.into(),
        json(e.wifi_status),
        json(e.payload),
    ]
}

/// Raw events as CSV, oldest first (staff). Paginated: a download holds at most `limit` rows
/// and names the next one in `X-Next-Cursor`.
#[utoipa::path(get, path = "/api/export", tag = "analytics", params(ExportParams), security(("session" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400), (status = 401), (status = 403)))]
pub(super) async fn export(
    S(s): S<State>,
    _staff: Staff,
    Query(q): Query<ExportParams>,
) -> Result<Response> {
    let days = parse_days(q.days.as_deref(), 30)?;
    let limit = page::limit(q.limit, 10_000, 50_000)?;
    let since = iso(now() - Duration::days(days));
    let mut rows = vec![csv_export::header_row(&EXPORT_COLUMNS)];
    let mut cursor = q.cursor;
    while rows.len() <= limit {
        let want = (limit + 1 - rows.len()).min(1000);
        let shape = |q: civic_store::Query| q.sk(SkRange::Gte(since.clone())).limit(want);
        let res = events_page(&s, q.device_id.as_deref(), shape, cursor).await?;
        rows.extend(res.items.into_iter().map(export_row));
        cursor = res.cursor;
        if cursor.is_none() {
            break;
        }
    }
    let res = csv_export::response(rows, "telemetry_export.csv")?;
    Ok(page::with_cursor(res, cursor))
}
