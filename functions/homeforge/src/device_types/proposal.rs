//! Proposing a device type, and the checks a proposal must pass: the components' ids are
//! plain and unique, and every control maps onto one of them.

use std::collections::HashSet;

use axum::extract::State as S;
use axum::http::StatusCode;
use civic_core::fields::{Body, FromBody, Valid};
use civic_core::{Error, Json, Result, ids};
use civic_store::{Cond, Item, PK, SK, StoreError, Write};
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;

use super::model::Record;
use super::{CardTemplate, Definition, DeviceType, LayoutConfig, Status, WIDGETS};
use crate::keys::type_name_key;
use crate::{AtLeast, State, Writer};

#[derive(ToSchema)]
pub struct Proposal {
    name: String,
    definition: Definition,
    card_template: CardTemplate,
}

/// Every field's errors together: the name, each nested object's shape, then the checks of
/// the definition and of the card against it.
impl FromBody for Proposal {
    fn from_body(b: &mut Body) -> Self {
        let name = b.strict_string("name", true, false, 100);
        let definition = nested::<Definition>(b, "definition");
        let template = nested::<CardTemplate>(b, "card_template");
        let mut ids = HashSet::new();
        if let Some(d) = &definition {
            for msg in definition_errors(d, &mut ids) {
                b.error("definition", msg);
            }
        }
        if let Some(t) = &template {
            for msg in template_errors(t, definition.as_ref().map(|_| &ids)) {
                b.error("card_template", msg);
            }
        }
        Self {
            name: name.unwrap_or_default(),
            definition: definition.unwrap_or_default(),
            card_template: template.unwrap_or_default(),
        }
    }
}

/// `POST /device-types/propose/`: a new type, pending review. Names are unique (any case).
#[utoipa::path(post, path = "/api/device-types/propose", tag = "device-types", request_body = Proposal,
    security(("bearer" = [])),
    responses((status = 201, body = DeviceType), (status = 400), (status = 401), (status = 403)))]
pub(super) async fn propose(
    S(s): S<State>,
    AtLeast(caller): Writer,
    Valid(req): Valid<Proposal>,
) -> Result<(StatusCode, Json<DeviceType>)> {
    let Proposal {
        name,
        definition,
        card_template,
    } = req;
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
    let key = type_name_key(&record.t.name);
    let mut marker = Item::new();
    marker.insert(PK.into(), key.pk.into());
    marker.insert(SK.into(), key.sk.into());
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

/// A required nested object, with serde's complaint (which names the path) as its error.
fn nested<T: DeserializeOwned>(b: &mut Body, field: &str) -> Option<T> {
    let value = b.typed::<Value>(field, true)?;
    serde_json::from_value(value)
        .map_err(|e| b.error(field, format!("Invalid value: {e}.")))
        .ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn proposal(controls: Value) -> Value {
        json!({
            "name": "Smart Fan",
            "definition": {"name": "Fan v1", "structure": [
                {"id": "relay_1", "type": "relay", "label": "Power", "position": {"x": 150, "y": 50}},
                {"id": "pwm_1", "type": "pwm", "label": "Speed", "position": {"x": 150, "y": 150}}]},
            "card_template": {"layout_config": {"w": 2, "h": 2}, "controls": controls},
        })
    }

    fn validate(body: Value) -> Result<Proposal> {
        Body::of(body).read()
    }

    fn field_errors(r: Result<Proposal>) -> Vec<(String, String)> {
        match r {
            Err(Error::Fields(f)) => f,
            other => panic!(
                "expected field errors, got {:?}",
                other.map(|p| p.name).map_err(|e| e.to_string())
            ),
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
        dup["definition"] = json!({"name": "x", "structure": [
            {"id": "a", "type": "relay", "position": {"x": 0, "y": 0}},
            {"id": "a", "type": "relay", "position": {"x": 0, "y": 0}}]});
        assert!(field_errors(validate(dup))[0].1.contains("used twice"));
    }
}
