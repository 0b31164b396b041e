//! Device types: users propose them (a component structure and a card template whose controls
//! map onto the components); owners and admins approve or deny them. Only approved types are
//! visible to everyone and usable for devices. Types do not change after review, so devices
//! may copy what they need from them.

use std::collections::HashSet;

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::Response;
use civic_core::item::{from_item, to_item};
use civic_core::{Error, Json, Query, Result, ids, retry};
use civic_store::{Cond, Item, Key, StoreError, Table, Update, Write};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    AtLeast, Caller, Id, Invalid, PageParams, Staff, State, Writer, not_found, required_text, sk,
};

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_types))
        .routes(routes!(my_proposals))
        .routes(routes!(type_detail))
        .routes(routes!(propose))
        .routes(routes!(pending))
        .routes(routes!(approve))
        .routes(routes!(deny))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Denied,
}

impl Status {
    fn as_str(self) -> &'static str {
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

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
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

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
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
struct Record {
    #[serde(flatten)]
    t: DeviceType,
    version: i64,
}

pub fn type_key(id: i64) -> Key {
    Key::new("TYPES", sk(id))
}

/// The proposer's copy, so "my proposals" is one query of their partition.
fn proposal_key(proposer: i64, id: i64) -> Key {
    Key::new(format!("USER#{proposer}"), format!("PROPOSAL#{}", sk(id)))
}

fn name_key(name: &str) -> Key {
    Key::new(format!("TYPENAME#{}", name.to_lowercase()), "TYPENAME")
}

impl Record {
    fn items(&self) -> Result<[Item; 2]> {
        let (main, copy) = (
            type_key(self.t.id),
            proposal_key(self.t.proposed_by, self.t.id),
        );
        Ok([
            to_item(
                self,
                &[
                    ("PK", main.pk),
                    ("SK", main.sk),
                    ("GSI1PK", format!("TYPES#{}", self.t.status.as_str())),
                    ("GSI1SK", sk(self.t.id)),
                ],
            )?,
            to_item(self, &[("PK", copy.pk), ("SK", copy.sk)])?,
        ])
    }

    async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        table.get(&type_key(id)).await?.map(from_item).transpose()
    }
}

pub async fn load_type(table: &dyn Table, id: i64) -> Result<Option<DeviceType>> {
    Ok(Record::load(table, id).await?.map(|r| r.t))
}

/// `GET /device-types/`: owners and admins see every type, others the approved ones.
#[utoipa::path(get, path = "/api/device-types", tag = "device-types", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceType>, headers(("x-next-cursor" = String))), (status = 401)))]
async fn list_types(
    S(s): S<State>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = match caller.is_staff() {
        true => civic_store::Query::partition("TYPES"),
        false => civic_store::Query::index("TYPES#approved"),
    };
    crate::list(s.table.as_ref(), q, params, |r: Record| r.t).await
}

/// Extension: the caller's own proposals in every state, with the reason of a denial.
#[utoipa::path(get, path = "/api/device-types/mine", tag = "device-types", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceType>, headers(("x-next-cursor" = String))), (status = 401)))]
async fn my_proposals(
    S(s): S<State>,
    caller: Caller,
    Query(params): Query<PageParams>,
) -> Result<Response> {
    let q = civic_store::Query::partition(format!("USER#{}", caller.id())).prefix("PROPOSAL#");
    crate::list(s.table.as_ref(), q, params, |r: Record| r.t).await
}

/// Extension: one type. Approved types are visible to everyone; a pending or denied one to its
/// proposer and to owners and admins.
#[utoipa::path(get, path = "/api/device-types/{id}", tag = "device-types", params(("id" = i64, Path)),
    security(("bearer" = [])), responses((status = 200, body = DeviceType), (status = 401), (status = 404)))]
async fn type_detail(S(s): S<State>, caller: Caller, Id(id): Id) -> Result<Json<DeviceType>> {
    load_type(s.table.as_ref(), id)
        .await?
        .filter(|t| t.approved || caller.can_see(t.proposed_by))
        .map(Json)
        .ok_or_else(not_found)
}

#[derive(Deserialize, ToSchema)]
pub struct Proposal {
    #[schema(required, nullable = false)]
    name: Option<String>,
    #[schema(value_type = Definition)]
    definition: Option<Value>,
    #[schema(value_type = CardTemplate)]
    card_template: Option<Value>,
}

/// `POST /device-types/propose/`: a new type, pending review. Names are unique (any case).
#[utoipa::path(post, path = "/api/device-types/propose", tag = "device-types", request_body = Proposal,
    security(("bearer" = [])),
    responses((status = 201, body = DeviceType), (status = 400), (status = 401), (status = 403)))]
async fn propose(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Json(req): Json<Proposal>,
) -> Result<(StatusCode, Json<DeviceType>)> {
    let (name, definition, card_template) = validate(req)?;
    let table = s.table.as_ref();
    let t = DeviceType {
        id: ids::next_id(table, "device_type").await?,
        name,
        definition,
        card_template,
        approved: false,
        status: Status::Pending,
        denial_reason: None,
        proposed_by: caller.id(),
        created_at: civic_core::time::now_rfc3339(),
        reviewed_by: None,
        reviewed_at: None,
    };
    let record = Record { t, version: 1 };
    let key = name_key(&record.t.name);
    let mut marker = Item::new();
    marker.insert("PK".into(), key.pk.into());
    marker.insert("SK".into(), key.sk.into());
    marker.insert("id".into(), record.t.id.into());
    let [main, copy] = record.items()?;
    let writes = [marker, main, copy]
        .into_iter()
        .map(|item| Write::Put {
            item,
            cond: Cond::NotExists,
        })
        .collect();
    match table.transact(writes).await {
        Err(StoreError::TransactionCanceled(failed)) if failed.contains(&0) => Err(Error::field(
            "name",
            "A device type with this name already exists.",
        )),
        other => other.map_err(Error::from),
    }?;
    Ok((StatusCode::CREATED, Json(record.t)))
}

fn validate(req: Proposal) -> Result<(String, Definition, CardTemplate)> {
    let mut invalid = Invalid::default();
    let name = invalid.take("name", required_text(req.name.as_deref(), 100));
    let definition = invalid.take("definition", nested::<Definition>(req.definition));
    let template = invalid.take("card_template", nested::<CardTemplate>(req.card_template));
    let mut ids = HashSet::new();
    if let Some(d) = &definition {
        for msg in definition_errors(d, &mut ids) {
            invalid.add("definition", msg);
        }
    }
    if let Some(t) = &template {
        for msg in template_errors(t, definition.as_ref().map(|_| &ids)) {
            invalid.add("card_template", msg);
        }
    }
    invalid.check()?;
    match (name, definition, template) {
        (Some(n), Some(d), Some(t)) => Ok((n, d, t)),
        _ => Err(Error::Internal("validated fields missing".into())),
    }
}

/// A required nested object, with serde's complaint (which names the path) as its error.
fn nested<T: serde::de::DeserializeOwned>(v: Option<Value>) -> std::result::Result<T, String> {
    match v {
        None | Some(Value::Null) => Err(crate::REQUIRED.into()),
        Some(v) => serde_json::from_value(v).map_err(|e| format!("Invalid value: {e}.")),
    }
}

/// Component ids become state keys (and storage attribute names): short, plain and unique.
/// A component id, and so a state key: it becomes a stored attribute name.
pub fn is_plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

fn definition_errors(d: &Definition, ids: &mut HashSet<String>) -> Vec<String> {
    let mut errors = Vec::new();
    if d.name.trim().is_empty() || d.name.chars().count() > 100 {
        errors.push("name: give a name of 1 to 100 characters.".to_owned());
    }
    if d.structure.is_empty() || d.structure.len() > 100 {
        errors.push("structure: give 1 to 100 components.".to_owned());
    }
    for (i, c) in d.structure.iter().enumerate() {
        if !is_plain_id(&c.id) {
            errors.push(format!(
                "structure[{i}].id: use 1 to 64 letters, digits, '_' or '-'."
            ));
        } else if !ids.insert(c.id.clone()) {
            errors.push(format!("structure[{i}].id: '{}' is used twice.", c.id));
        }
        if c.kind.trim().is_empty() || c.kind.len() > 50 || c.label.chars().count() > 100 {
            errors.push(format!(
                "structure[{i}]: type must be 1 to 50 characters and label at most 100."
            ));
        }
    }
    errors
}

/// `ids`: the structure's component ids (`None` when the definition itself was invalid).
fn template_errors(t: &CardTemplate, ids: Option<&HashSet<String>>) -> Vec<String> {
    let mut errors = Vec::new();
    let LayoutConfig { w, h } = t.layout_config;
    if !(1..=12).contains(&w) || !(1..=12).contains(&h) {
        errors.push("layout_config: w and h must be between 1 and 12.".to_owned());
    }
    if t.controls.len() > 100 {
        errors.push("controls: at most 100.".to_owned());
    }
    for (i, c) in t.controls.iter().enumerate() {
        if !WIDGETS.contains(&c.widget_type.as_str()) {
            errors.push(format!(
                "controls[{i}].widget_type: \"{}\" is not a valid choice.",
                c.widget_type
            ));
        }
        if c.label.trim().is_empty() || c.label.chars().count() > 100 {
            errors.push(format!("controls[{i}].label: give 1 to 100 characters."));
        }
        if let Some(ids) = ids
            && !ids.contains(&c.variable_mapping)
        {
            errors.push(format!(
                "controls[{i}].variable_mapping: '{}' is not an id in definition.structure.",
                c.variable_mapping
            ));
        }
        let (min, max) = (c.min_value.unwrap_or(0.0), c.max_value.unwrap_or(100.0));
        if c.widget_type == "SLIDER" && (min >= max || c.step.is_some_and(|s| s <= 0.0)) {
            errors.push(format!(
                "controls[{i}]: a slider needs min_value < max_value and a positive step."
            ));
        }
    }
    errors
}

/// `GET /admin/device-types/pending/` (owners and admins), with the full definition and card.
#[utoipa::path(get, path = "/api/admin/device-types/pending", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceType>, headers(("x-next-cursor" = String))), (status = 401), (status = 403)))]
async fn pending(S(s): S<State>, _: Staff, Query(params): Query<PageParams>) -> Result<Response> {
    let q = civic_store::Query::index("TYPES#pending");
    crate::list(s.table.as_ref(), q, params, |r: Record| r.t).await
}

/// `POST /admin/device-types/<id>/approve/` (owners and admins).
#[utoipa::path(post, path = "/api/admin/device-types/{id}/approve", tag = "admin", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DeviceType), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn approve(S(s): S<State>, AtLeast(caller): Staff, Id(id): Id) -> Result<Json<DeviceType>> {
    review(&s, &caller, id, Status::Approved, None)
        .await
        .map(Json)
}

#[derive(Deserialize, ToSchema)]
pub struct DenyRequest {
    #[schema(required, nullable = false)]
    reason: Option<String>,
}

/// `POST /admin/device-types/<id>/deny/` (owners and admins): `reason` is required and kept
/// for the proposer. The name becomes free for a corrected proposal.
#[utoipa::path(post, path = "/api/admin/device-types/{id}/deny", tag = "admin", params(("id" = i64, Path)),
    request_body = DenyRequest, security(("bearer" = [])),
    responses((status = 200, body = DeviceType), (status = 400), (status = 401), (status = 403), (status = 404)))]
async fn deny(
    S(s): S<State>,
    AtLeast(caller): Staff,
    Id(id): Id,
    Json(req): Json<DenyRequest>,
) -> Result<Json<DeviceType>> {
    let reason =
        required_text(req.reason.as_deref(), 1000).map_err(|m| Error::field("reason", m))?;
    review(&s, &caller, id, Status::Denied, Some(reason))
        .await
        .map(Json)
}

/// Moves a pending type to `verdict`: the type and the proposer's copy in one transaction,
/// conditional on the version read, so two reviewers cannot both decide.
async fn review(
    s: &State,
    reviewer: &Caller,
    id: i64,
    verdict: Status,
    reason: Option<String>,
) -> Result<DeviceType> {
    let table = s.table.as_ref();
    retry::optimistic(|| {
        let reason = reason.clone();
        async move {
            let Record { mut t, version } = Record::load(table, id).await?.ok_or_else(not_found)?;
            if t.status != Status::Pending {
                return Err(Error::bad_request(format!(
                    "Only a pending device type can be reviewed; this one is {}.",
                    t.status.as_str()
                )));
            }
            t.status = verdict;
            t.approved = verdict == Status::Approved;
            t.denial_reason = reason;
            t.reviewed_by = Some(reviewer.id());
            t.reviewed_at = Some(civic_core::time::now_rfc3339());
            let fields = |key: Key| {
                Update::new(key)
                    .set("status", verdict.as_str())
                    .set("approved", t.approved)
                    .set("denial_reason", t.denial_reason.clone())
                    .set("reviewed_by", t.reviewed_by)
                    .set("reviewed_at", t.reviewed_at.clone())
            };
            let mut writes = vec![
                Write::Update(
                    fields(type_key(id))
                        .set("GSI1PK", format!("TYPES#{}", verdict.as_str()))
                        .add("version", 1)
                        .cond(Cond::Version(version)),
                ),
                Write::Update(fields(proposal_key(t.proposed_by, id)).cond(Cond::Exists)),
            ];
            if verdict == Status::Denied {
                writes.push(Write::Delete {
                    key: name_key(&t.name),
                    cond: Cond::Always,
                });
            }
            match table.transact(writes).await {
                Ok(()) => Ok(Some(t)),
                Err(StoreError::TransactionCanceled(_) | StoreError::Conflict) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn proposal(controls: Value) -> Proposal {
        Proposal {
            name: Some("Smart Fan".into()),
            definition: Some(json!({"name": "Fan v1", "structure": [
                {"id": "relay_1", "type": "relay", "label": "Power", "position": {"x": 150, "y": 50}},
                {"id": "pwm_1", "type": "pwm", "label": "Speed", "position": {"x": 150, "y": 150}}]})),
            card_template: Some(json!({"layout_config": {"w": 2, "h": 2}, "controls": controls})),
        }
    }

    fn field_errors(r: Result<(String, Definition, CardTemplate)>) -> Vec<(String, String)> {
        match r {
            Err(Error::Fields(f)) => f,
            other => panic!("expected field errors, got {:?}", other.map(|v| v.0)),
        }
    }

    #[test]
    fn every_variable_mapping_must_be_a_component_id() {
        let ok = proposal(
            json!([{"widget_type": "TOGGLE", "label": "P", "variable_mapping": "relay_1"}]),
        );
        assert!(validate(ok).is_ok());
        let bad =
            proposal(json!([{"widget_type": "SLIDER", "label": "S", "variable_mapping": "pwm_9"}]));
        let errors = field_errors(validate(bad));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "card_template");
        assert!(errors[0].1.contains("'pwm_9'"), "{errors:?}");
    }

    #[test]
    fn unknown_widgets_and_duplicate_ids_are_refused() {
        let bad = proposal(
            json!([{"widget_type": "LASER", "label": "L", "variable_mapping": "relay_1"}]),
        );
        assert!(
            field_errors(validate(bad))[0]
                .1
                .contains("\"LASER\" is not a valid choice")
        );
        let mut dup = proposal(json!([]));
        dup.definition = Some(json!({"name": "x", "structure": [
            {"id": "a", "type": "relay", "position": {"x": 0, "y": 0}},
            {"id": "a", "type": "relay", "position": {"x": 0, "y": 0}}]}));
        assert!(field_errors(validate(dup))[0].1.contains("used twice"));
    }
}
