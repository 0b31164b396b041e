//! A device type as stored: its definition (the components), its card template (the controls),
//! its review status; the keys of the type, the proposer's copy and the name reservation.

use civic_core::Result;
use civic_core::item::to_item;
use civic_store::{GSI1PK, GSI1SK, Item, PK, SK, Table, Typed};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::keys::type_key;
use crate::keys::{proposal_key, sk, types_with_status};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Denied,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Position {
    pub x: f64,
    pub y: f64,
}

/// A hardware component of the device; its `id` is a state key of devices of this type.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Component {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub label: String,
    pub position: Position,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Definition {
    pub name: String,
    pub structure: Vec<Component>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LayoutConfig {
    pub w: i64,
    pub h: i64,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        Self { w: 1, h: 1 }
    }
}

/// A UI control on the device's card.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Control {
    /// `TOGGLE`, `SLIDER`, `BUTTON`, `GAUGE` or `TEXT`.
    pub widget_type: String,
    pub label: String,
    /// The component `id` (state key) the control reads and writes.
    pub variable_mapping: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
}

pub const WIDGETS: [&str; 5] = ["TOGGLE", "SLIDER", "BUTTON", "GAUGE", "TEXT"];

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CardTemplate {
    #[serde(default)]
    pub layout_config: LayoutConfig,
    #[serde(default)]
    pub controls: Vec<Control>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceType {
    pub id: i64,
    pub name: String,
    pub definition: Definition,
    pub card_template: CardTemplate,
    pub approved: bool,
    pub status: Status,
    /// Why it was denied (shown to the proposer).
    pub denial_reason: Option<String>,
    /// The proposing user's id.
    pub proposed_by: i64,
    pub created_at: String,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<String>,
}

impl DeviceType {
    /// The state keys devices of this type accept.
    pub fn variables(&self) -> Vec<String> {
        self.definition
            .structure
            .iter()
            .map(|c| c.id.clone())
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct Record {
    #[serde(flatten)]
    pub(super) t: DeviceType,
    pub(super) version: i64,
}

impl Record {
    pub(super) fn items(&self) -> Result<[Item; 2]> {
        let (main, copy) = (
            type_key(self.t.id),
            proposal_key(self.t.proposed_by, self.t.id),
        );
        Ok([
            to_item(
                self,
                &[
                    (PK, main.pk),
                    (SK, main.sk),
                    (GSI1PK, types_with_status(self.t.status)),
                    (GSI1SK, sk(self.t.id)),
                ],
            )?,
            to_item(self, &[(PK, copy.pk), (SK, copy.sk)])?,
        ])
    }

    pub(super) async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        Ok(table.get_as(&type_key(id)).await?)
    }
}

pub async fn load_type(table: &dyn Table, id: i64) -> Result<Option<DeviceType>> {
    Ok(Record::load(table, id).await?.map(|r| r.t))
}
