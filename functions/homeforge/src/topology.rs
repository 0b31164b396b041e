//! The network map for React Flow: the gateway, one node per device the caller sees, and one
//! animated edge from the gateway to each. Devices are laid out by id in columns to the
//! gateway's right, so the same devices always get the same positions.

use std::collections::HashMap;

use axum::extract::State as S;
use civic_core::{Json, Result};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::devices::{Device, visible_devices};
use crate::rooms::all_rooms;
use crate::{Caller, State};
use civic_store::Typed;

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(topology))
}

pub const GATEWAY: &str = "homeforge-gateway";
/// Devices per column, and the spacing of the grid.
const ROWS: usize = 6;
const DX: f64 = 250.0;
const DY: f64 = 100.0;

#[derive(Serialize, ToSchema)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

#[derive(Serialize, ToSchema)]
pub struct Node {
    pub id: String,
    /// `input` (the gateway) or `device`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[schema(value_type = Object)]
    pub data: Value,
    pub position: Position,
}

#[derive(Serialize, ToSchema)]
pub struct Edge {
    pub id: String,
    pub source: String,
    pub target: String,
    pub animated: bool,
    #[schema(value_type = Object)]
    pub style: Value,
}

#[derive(Serialize, ToSchema)]
pub struct Topology {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// The `i`-th device's place: columns of [`ROWS`], the first at (250, 100).
fn position(i: usize) -> Position {
    Position {
        x: DX * (i / ROWS + 1) as f64,
        y: DY * (i % ROWS + 1) as f64,
    }
}

/// `GET /topology/`: the gateway plus the caller's devices (every device for owners and admins).
/// Edges to online devices are green, to offline ones grey.
#[utoipa::path(get, path = "/api/topology", tag = "topology", security(("bearer" = [])),
    responses((status = 200, body = Topology), (status = 401)))]
async fn topology(S(s): S<State>, caller: Caller) -> Result<Json<Topology>> {
    let table = s.table.as_ref();
    let devices: Vec<Device> = table
        .query_all_as(visible_devices(&caller).limit(1000))
        .await?;
    let rooms: HashMap<i64, String> = match devices.iter().any(|d| d.record.room.is_some()) {
        true => all_rooms(table)
            .await?
            .into_iter()
            .map(|r| (r.id, r.name))
            .collect(),
        false => HashMap::new(),
    };
    let mut nodes = vec![Node {
        id: GATEWAY.into(),
        kind: "input",
        data: json!({"label": "HomeForge Gateway", "ip": s.config.gateway_ip, "status": "online", "type": "server"}),
        position: Position { x: 0.0, y: 0.0 },
    }];
    let mut edges = Vec::with_capacity(devices.len());
    for (i, d) in devices.into_iter().enumerate() {
        let r = d.record;
        let id = r.id.to_string();
        let stroke = if r.status == "online" {
            "#10B981"
        } else {
            "#9CA3AF"
        };
        edges.push(Edge {
            id: format!("edge-{GATEWAY}-{id}"),
            source: GATEWAY.into(),
            target: id.clone(),
            animated: true,
            style: json!({"stroke": stroke, "strokeWidth": 2}),
        });
        nodes.push(Node {
            id,
            kind: "device",
            data: json!({
                "label": r.name,
                "ip": r.ip_address,
                "status": r.status,
                "room": r.room.and_then(|id| rooms.get(&id)),
                "device_type": r.device_type_name,
                "icon": r.icon,
            }),
            position: position(i),
        });
    }
    Ok(Json(Topology { nodes, edges }))
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn devices_fill_columns_of_six() {
        let p = |i| {
            let p = position(i);
            (p.x, p.y)
        };
        assert_eq!(p(0), (250.0, 100.0));
        assert_eq!(p(5), (250.0, 600.0));
        assert_eq!(p(6), (500.0, 100.0));
    }
}
