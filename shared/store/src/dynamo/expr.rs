//! DynamoDB expressions: conditions, updates and key conditions, with their placeholders.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::AvMap;
use crate::{Cond, EXPIRES_AT, PK, Result, SkRange, StoreError, Update, VERSION, now_epoch};

pub(super) fn to_av(v: &Value) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// Expression attribute names and values, with placeholders handed out as they are used
/// (DynamoDB rejects unused ones).
#[derive(Default)]
pub(super) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub(super) fn name(&mut self, attr: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    pub(super) fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    pub(super) fn now(&mut self) -> String {
        self.value(AttributeValue::N(now_epoch().to_string()))
    }

    pub(super) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(super) fn values(&self) -> Option<AvMap> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// `item is stored and not expired`.
    pub(super) fn live(&mut self) -> String {
        let (pk, exp, now) = (self.name(PK), self.name(EXPIRES_AT), self.now());
        format!("attribute_exists({pk}) AND (attribute_not_exists({exp}) OR {exp} > {now})")
    }

    /// The condition expression of `cond`. With `guard`, it also fails when an expired item
    /// is stored (so an update cannot build on it).
    pub(super) fn cond(&mut self, cond: &Cond, guard: bool) -> Option<String> {
        Some(match cond {
            Cond::Always if guard => {
                let (exp, now) = (self.name(EXPIRES_AT), self.now());
                format!("attribute_not_exists({exp}) OR {exp} > {now}")
            }
            Cond::Always => return None,
            Cond::NotExists if guard => format!("attribute_not_exists({})", self.name(PK)),
            Cond::NotExists => {
                let (pk, exp, now) = (self.name(PK), self.name(EXPIRES_AT), self.now());
                format!("attribute_not_exists({pk}) OR {exp} <= {now}")
            }
            Cond::Exists => self.live(),
            Cond::Version(n) => {
                let (ver, v) = (
                    self.name(VERSION),
                    self.value(AttributeValue::N(n.to_string())),
                );
                format!("{ver} = {v} AND {}", self.live())
            }
        })
    }

    pub(super) fn update(&mut self, u: &Update) -> Result<String> {
        let mut set = Vec::new();
        for (name, v) in &u.set {
            let (n, v) = (self.name(name), self.value(to_av(v)?));
            set.push(format!("{n} = {v}"));
        }
        for (name, v) in &u.set_if_absent {
            let (n, v) = (self.name(name), self.value(to_av(v)?));
            set.push(format!("{n} = if_not_exists({n}, {v})"));
        }
        let add: Vec<String> = u
            .add
            .iter()
            .map(|(name, delta)| {
                let (n, v) = (
                    self.name(name),
                    self.value(AttributeValue::N(delta.to_string())),
                );
                format!("{n} {v}")
            })
            .collect();
        let remove: Vec<String> = u.remove.iter().map(|name| self.name(name)).collect();
        let clauses = [("SET", set), ("ADD", add), ("REMOVE", remove)];
        let parts: Vec<String> = clauses
            .into_iter()
            .filter(|(_, actions)| !actions.is_empty())
            .map(|(verb, actions)| format!("{verb} {}", actions.join(", ")))
            .collect();
        Ok(parts.join(" "))
    }

    /// The key condition of a query: the partition key equals `pk`, and the sort key is in
    /// `sk`.
    pub(super) fn key_cond(
        &mut self,
        pk_attr: &str,
        sk_attr: &str,
        pk: &str,
        sk: &SkRange,
    ) -> String {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let key_cond = format!("{} = {}", self.name(pk_attr), self.value(s(pk)));
        // DynamoDB rejects empty key values; an empty lower bound is no bound at all.
        let sk_cond = match sk {
            SkRange::All => None,
            SkRange::Prefix(p) | SkRange::Gte(p) if p.is_empty() => None,
            SkRange::Prefix(p) => Some(format!(
                "begins_with({}, {})",
                self.name(sk_attr),
                self.value(s(p))
            )),
            SkRange::Between(a, b) if a.is_empty() => {
                Some(format!("{} <= {}", self.name(sk_attr), self.value(s(b))))
            }
            SkRange::Between(a, b) => {
                let (n, a, b) = (self.name(sk_attr), self.value(s(a)), self.value(s(b)));
                Some(format!("{n} BETWEEN {a} AND {b}"))
            }
            SkRange::Gte(a) => Some(format!("{} >= {}", self.name(sk_attr), self.value(s(a)))),
            SkRange::Lte(b) => Some(format!("{} <= {}", self.name(sk_attr), self.value(s(b)))),
        };
        match sk_cond {
            Some(c) => format!("{key_cond} AND {c}"),
            None => key_cond,
        }
    }
}
