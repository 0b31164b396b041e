//! homeforge: work in progress (scaffold). Contract: `shared/seeds/homeforge-api.md`.

use civic_core::{App, Function, Problem};
use serde_json::{Value, json};

pub const APP: App = App {
    name: "homeforge",
    format: error_body,
};

/// DRF's error body: `{"detail": "..."}` or `{"field": ["msg"]}`.
fn error_body(p: &Problem) -> Value {
    if p.fields.is_empty() {
        return json!({ "detail": p.message });
    }
    let mut body = serde_json::Map::new();
    for (field, msg) in &p.fields {
        let list = body.entry(field.clone()).or_insert_with(|| json!([]));
        if let Value::Array(msgs) = list {
            msgs.push(json!(msg));
        }
    }
    Value::Object(body)
}

/// Every Lambda function of this app.
pub const FUNCTIONS: &[Function] = &[];
