//! Evaluation over a JSON payload, with IoT Core's *undefined* (`None`) for missing values.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::{Cmp, Expr, Item, Rule};

/// What a message brings besides its payload.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub topic: &'a str,
    /// The publisher's MQTT client id, when the transport tells it.
    pub client_id: Option<&'a str>,
    /// Milliseconds since the epoch at which the message was received.
    pub timestamp_ms: i64,
}

pub fn apply(rule: &Rule, payload: &Value, ctx: &Context) -> Option<Value> {
    if let Some(filter) = &rule.filter
        && truth(&eval(filter, payload, ctx)) != Some(true)
    {
        return None;
    }
    // `SELECT *` alone hands on the payload as it came, whatever its JSON type.
    if let [Item::All] = rule.select.as_slice() {
        return Some(payload.clone());
    }
    let mut out = Map::new();
    for item in &rule.select {
        match item {
            Item::All => {
                if let Value::Object(fields) = payload {
                    out.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            Item::Expr { expr, alias } => {
                if let Some(v) = eval(expr, payload, ctx) {
                    out.insert(alias.clone().unwrap_or_else(|| name(expr)), v);
                }
            }
        }
    }
    Some(Value::Object(out))
}

/// The output key of an unaliased item: a field's last name, a function's name, a literal's
/// text.
fn name(expr: &Expr) -> String {
    match expr {
        Expr::Field(path) => path.last().cloned().unwrap_or_default(),
        Expr::Topic(_) => "topic".into(),
        Expr::Timestamp => "timestamp".into(),
        Expr::ClientId => "clientid".into(),
        Expr::Lit(v) => v.to_string(),
        _ => "expr".into(),
    }
}

fn eval(expr: &Expr, payload: &Value, ctx: &Context) -> Option<Value> {
    match expr {
        Expr::Lit(v) => Some(v.clone()),
        Expr::Field(path) => path
            .iter()
            .try_fold(payload, |v, key| v.as_object()?.get(key))
            .cloned(),
        Expr::Topic(None) => Some(ctx.topic.into()),
        Expr::Topic(Some(n)) => crate::topic::level(ctx.topic, *n).map(Value::from),
        Expr::Timestamp => Some(ctx.timestamp_ms.into()),
        Expr::ClientId => ctx.client_id.map(Value::from),
        Expr::Cmp(op, l, r) => {
            let (l, r) = (eval(l, payload, ctx)?, eval(r, payload, ctx)?);
            if structured(&l) || structured(&r) {
                // Objects and arrays are equal or not; they have no order.
                return match op {
                    Cmp::Eq => Some((l == r).into()),
                    Cmp::Ne => Some((l != r).into()),
                    _ => None,
                };
            }
            let ord = order(&l, &r)?;
            let hit = match op {
                Cmp::Eq => ord == Ordering::Equal,
                Cmp::Ne => ord != Ordering::Equal,
                Cmp::Lt => ord == Ordering::Less,
                Cmp::Le => ord != Ordering::Greater,
                Cmp::Gt => ord == Ordering::Greater,
                Cmp::Ge => ord != Ordering::Less,
            };
            Some(hit.into())
        }
        Expr::And(l, r) => {
            let (l, r) = (truth(&eval(l, payload, ctx)), truth(&eval(r, payload, ctx)));
            match (l, r) {
                (Some(false), _) | (_, Some(false)) => Some(false.into()),
                (Some(true), Some(true)) => Some(true.into()),
                _ => None,
            }
        }
        Expr::Or(l, r) => {
            let (l, r) = (truth(&eval(l, payload, ctx)), truth(&eval(r, payload, ctx)));
            match (l, r) {
                (Some(true), _) | (_, Some(true)) => Some(true.into()),
                (Some(false), Some(false)) => Some(false.into()),
                _ => None,
            }
        }
        Expr::Not(e) => truth(&eval(e, payload, ctx)).map(|b| Value::Bool(!b)),
    }
}

/// A boolean operand; anything else is undefined.
fn truth(v: &Option<Value>) -> Option<bool> {
    v.as_ref().and_then(Value::as_bool)
}

fn structured(v: &Value) -> bool {
    v.is_array() || v.is_object()
}

/// Scalars of one type compare; different types are undefined.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}
