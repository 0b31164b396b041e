//! The admin's bulk import: CSV or JSON rows, each created on its own.

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use civic_core::fields::{Body, FromBody};
use civic_core::{Error, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::admin::{NewLight, create_light};
use crate::{Admin, Reply, State, fields_message, reply};

#[derive(Serialize, ToSchema)]
pub struct ImportFailure {
    /// 1-based position in the input (CSV: data row).
    row: usize,
    light_id: Option<String>,
    error: String,
}

#[derive(Serialize, ToSchema)]
pub struct ImportResult {
    created: usize,
    failed: Vec<ImportFailure>,
}

#[derive(ToSchema)]
pub struct ImportBody {
    // Each row is read as a `NewLight` on its own (`read_row`).
    #[schema(value_type = Vec<NewLight>)]
    lights: Vec<Map<String, Value>>,
}

impl FromBody for ImportBody {
    fn from_body(b: &mut Body) -> Self {
        Self {
            lights: b.typed("lights", true).unwrap_or_default(),
        }
    }
}

/// One row: its `lightId` as sent (for the failure list), and the light or why it is refused.
type Row = (Option<String>, Result<NewLight>);

const MAX_IMPORT: usize = 1000;

/// Extension (admin): bulk import. Either `text/csv` with a header row naming `NewLight` fields
/// (`lightId,name,city,latitude,longitude,address,status,is_automatic,brightness`) or JSON
/// `{"lights": [NewLight, ...]}`. Each row is created on its own; failures are listed.
#[utoipa::path(post, path = "/api/lights/import", tag = "lights", security(("bearer" = [])),
    request_body(content((String = "text/csv"), (ImportBody = "application/json"))),
    responses((status = 200, body = inline(crate::Envelope<ImportResult>)), (status = 400), (status = 401), (status = 403), (status = 415)))]
pub(super) async fn import(
    S(s): S<State>,
    _: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply<ImportResult>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let rows = if content_type.starts_with("text/csv") {
        csv_rows(&body)
    } else if content_type.starts_with("application/json") {
        json_rows(&body)?
    } else {
        return Err(Error::UnsupportedMediaType(
            "Send text/csv or application/json".into(),
        ));
    };
    if rows.is_empty() || rows.len() > MAX_IMPORT {
        return Err(Error::bad_request(format!(
            "Import between 1 and {MAX_IMPORT} lights at a time"
        )));
    }
    let mut result = ImportResult {
        created: 0,
        failed: Vec::new(),
    };
    for (i, (light_id, row)) in rows.into_iter().enumerate() {
        let created = match row {
            Ok(new) => create_light(s.table.as_ref(), s.config.index_shards, new)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        match created {
            Ok(()) => result.created += 1,
            Err(e) if e.status().is_client_error() => result.failed.push(ImportFailure {
                row: i + 1,
                light_id,
                error: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(reply(
        StatusCode::OK,
        format!("Imported {} lights", result.created),
        result,
    ))
}

/// JSON rows: a row with a field of the wrong type refuses the whole import.
fn json_rows(body: &[u8]) -> Result<Vec<Row>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("Invalid request body: {e}")))?;
    let import: ImportBody = Body::of(value).read()?;
    import.lights.into_iter().map(read_row).collect()
}

/// CSV rows, each refused on its own (a malformed row, or a field of the wrong type).
fn csv_rows(body: &[u8]) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(body);
    let invalid = |e: csv::Error| (None, Err(Error::bad_request(format!("invalid row: {e}"))));
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(e) => return vec![invalid(e)],
    };
    reader
        .records()
        .map(|record| match record {
            Err(e) => invalid(e),
            Ok(record) => {
                let fields = headers
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, cell)| !cell.is_empty())
                    .map(|(column, cell)| (column.to_owned(), cell_value(column, cell)))
                    .collect();
                read_row(fields).unwrap_or_else(|e| (None, Err(e)))
            }
        })
        .collect()
}

/// CSV cells are text: the numeric and yes/no columns become JSON numbers and booleans, so a
/// row reads as the same light sent as JSON would (a cell that is neither stays text and is
/// refused as the wrong type).
fn cell_value(column: &str, cell: &str) -> Value {
    let typed = match column {
        "latitude" | "longitude" | "brightness" => {
            cell.parse::<serde_json::Number>().ok().map(Value::Number)
        }
        "is_automatic" => cell.parse::<bool>().ok().map(Value::Bool),
        _ => None,
    };
    typed.unwrap_or_else(|| Value::String(cell.to_owned()))
}

/// A row as a light; `Err` when a field has the wrong type (the row cannot be read at all).
/// Missing fields are the row's own failure, in the envelope's words.
fn read_row(fields: Map<String, Value>) -> Result<Row> {
    let light_id = fields
        .get("lightId")
        .or_else(|| fields.get("light_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match Body::of(Value::Object(fields)).read::<NewLight>() {
        Ok(new) => Ok((light_id, Ok(new))),
        Err(Error::Fields(fields)) => {
            Ok((light_id, Err(Error::bad_request(fields_message(&fields)))))
        }
        Err(refused) => Err(refused),
    }
}
