//! The admin's bulk import: CSV or JSON rows, each created on its own.

use axum::extract::State as S;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use civic_core::{Error, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::admin::{NewLight, create_light};
use crate::{Admin, Reply, State, reply};

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

#[derive(Deserialize, ToSchema)]
pub struct ImportBody {
    lights: Vec<NewLight>,
}

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
    let rows: Vec<std::result::Result<NewLight, String>> = if content_type.starts_with("text/csv") {
        csv::Reader::from_reader(body.as_ref())
            .deserialize::<NewLight>()
            .map(|r| r.map_err(|e| format!("invalid row: {e}")))
            .collect()
    } else if content_type.starts_with("application/json") {
        let parsed: ImportBody = serde_json::from_slice(&body)
            .map_err(|e| Error::bad_request(format!("Invalid request body: {e}")))?;
        parsed.lights.into_iter().map(Ok).collect()
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
    for (i, row) in rows.into_iter().enumerate() {
        let light_id = row.as_ref().ok().and_then(|r| r.light_id.clone());
        match row
            .map_err(Error::BadRequest)
            .map(|r| create_light(s.table.as_ref(), r))
        {
            Ok(fut) => match fut.await {
                Ok(_) => result.created += 1,
                Err(e) if e.status().is_client_error() => result.failed.push(ImportFailure {
                    row: i + 1,
                    light_id,
                    error: e.to_string(),
                }),
                Err(e) => return Err(e),
            },
            Err(e) => result.failed.push(ImportFailure {
                row: i + 1,
                light_id,
                error: e.to_string(),
            }),
        }
    }
    Ok(reply(
        StatusCode::OK,
        format!("Imported {} lights", result.created),
        result,
    ))
}
