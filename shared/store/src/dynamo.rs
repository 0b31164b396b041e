//! The DynamoDB backend.
//!
//! DynamoDB deletes expired items lazily (up to days later), so the TTL semantics of the
//! crate are enforced here: reads drop expired items, and conditions treat them as absent.
//! An update must not build on an expired item's attributes: updates carry a "not expired"
//! guard, and when only that guard fails the expired item is deleted and the update retried
//! (the one case where a call makes more than one round trip).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex,
    IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus, TransactWriteItem, Update as DynUpdate,
};
use serde_json::Value;

use crate::common::{
    backend, decode_cursor, encode_cursor, query_is_empty, validate_item, validate_key,
    validate_transact, validate_update,
};
use crate::{
    Cond, EXPIRES_AT, GSI1, GSI1PK, GSI1SK, Item, Key, PK, Page, Query, Result, SK, SkRange,
    StoreError, Table, Update, VERSION, Write, is_expired, metrics, now_epoch,
};

type AvMap = HashMap<String, AttributeValue>;

/// How many times a write is retried after purging the expired items that blocked it.
const EXPIRED_RETRIES: usize = 3;

/// One DynamoDB table with the single-table layout (`PK`/`SK`, index `GSI1`).
#[derive(Clone, Debug)]
pub struct DynamoTable {
    client: Client,
    name: String,
}

fn to_av_map(item: &Item) -> Result<AvMap> {
    serde_dynamo::to_item(item).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn from_av_map(map: AvMap) -> Result<Item> {
    serde_dynamo::from_item(map).map_err(backend)
}

fn to_av(v: &Value) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn key_av(key: &Key) -> AvMap {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn map_err<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.code() {
        Some("ConditionalCheckFailedException") => StoreError::ConditionFailed,
        Some("TransactionConflictException") => StoreError::Conflict,
        Some("ValidationException") => {
            StoreError::Invalid(err.message().unwrap_or_default().to_owned())
        }
        _ => StoreError::Backend(DisplayErrorContext(&err).to_string()),
    }
}

/// Expression attribute names and values, with placeholders handed out as they are used
/// (DynamoDB rejects unused ones).
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attr: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attr) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    fn now(&mut self) -> String {
        self.value(AttributeValue::N(now_epoch().to_string()))
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<AvMap> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// `item is stored and not expired`.
    fn live(&mut self) -> String {
        let (pk, exp, now) = (self.name(PK), self.name(EXPIRES_AT), self.now());
        format!("attribute_exists({pk}) AND (attribute_not_exists({exp}) OR {exp} > {now})")
    }

    /// The condition expression of `cond`. With `guard`, it also fails when an expired item
    /// is stored (so an update cannot build on it).
    fn cond(&mut self, cond: &Cond, guard: bool) -> Option<String> {
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

    fn update(&mut self, u: &Update) -> Result<String> {
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
}

/// The stored item a failed condition reported (`ALL_OLD`), when it has expired.
fn expired_old(item: Option<&AvMap>) -> Option<Item> {
    let item = from_av_map(item?.clone()).ok()?;
    is_expired(&item, now_epoch()).then_some(item)
}

impl DynamoTable {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// Creates the table (on-demand, `PK`/`SK`, index `GSI1` projecting all attributes) unless
    /// it exists, waits until it is active, and enables TTL on `expires_at`.
    pub async fn create_if_missing(&self) -> Result<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(backend)
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(backend)
        };
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(GSI1)
            .key_schema(key(GSI1PK, KeyType::Hash)?)
            .key_schema(key(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(backend)?;
        metrics::hit();
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .attribute_definitions(attr(GSI1PK)?)
            .attribute_definitions(attr(GSI1SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .global_secondary_indexes(gsi)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {}
            Err(e) => return Err(map_err(e)),
        }
        self.wait_active().await?;
        self.enable_ttl().await;
        Ok(())
    }

    /// Polls until the table and its index are active (a new table takes seconds on AWS).
    async fn wait_active(&self) -> Result<()> {
        for _ in 0..120 {
            metrics::hit();
            let out = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(map_err)?;
            let Some(table) = out.table() else {
                return Err(backend("DescribeTable returned no table"));
            };
            let indexes_active = table
                .global_secondary_indexes()
                .iter()
                .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
            if table.table_status() == Some(&TableStatus::Active) && indexes_active {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(backend(format!(
            "table {} did not become active",
            self.name
        )))
    }

    /// Best effort: emulators may not support TTL, and expired items are hidden anyway.
    async fn enable_ttl(&self) {
        metrics::hit();
        let status = self
            .client
            .describe_time_to_live()
            .table_name(&self.name)
            .send()
            .await;
        let enabled = status
            .as_ref()
            .ok()
            .and_then(|o| o.time_to_live_description())
            .is_some_and(|d| {
                matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                ) && d.attribute_name() == Some(EXPIRES_AT)
            });
        if enabled {
            return;
        }
        let spec = match TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
        {
            Ok(spec) => spec,
            Err(e) => return tracing::warn!(error = %e, "cannot build the TTL specification"),
        };
        metrics::hit();
        let res = self
            .client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(spec)
            .send()
            .await;
        if let Err(e) = res {
            tracing::warn!(table = %self.name, error = %DisplayErrorContext(&e), "could not enable TTL");
        }
    }

    /// Deletes an expired item unless it has been rewritten meanwhile.
    async fn purge(&self, key: &Key, expired: &Item) -> Result<()> {
        let mut e = Expr::default();
        let cond = match expired.get(EXPIRES_AT) {
            Some(at) => format!("{} = {}", e.name(EXPIRES_AT), e.value(to_av(at)?)),
            None => return Ok(()),
        };
        metrics::hit();
        let res = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_av(key)))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await;
        match res.map_err(map_err) {
            Ok(_) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(err) => Err(err),
        }
    }

    fn transact_item(&self, w: &Write) -> Result<TransactWriteItem> {
        let mut e = Expr::default();
        let item = TransactWriteItem::builder();
        Ok(match w {
            Write::Put { item: it, cond } => {
                let cond = e.cond(cond, false);
                item.put(
                    Put::builder()
                        .table_name(&self.name)
                        .set_item(Some(to_av_map(it)?))
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(backend)?,
                )
            }
            Write::Update(u) => {
                let update = e.update(u)?;
                let cond = e.cond(&u.cond, true);
                item.update(
                    DynUpdate::builder()
                        .table_name(&self.name)
                        .set_key(Some(key_av(&u.key)))
                        .update_expression(update)
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        )
                        .build()
                        .map_err(backend)?,
                )
            }
            Write::Delete { key, cond } => {
                let cond = e.cond(cond, false);
                item.delete(
                    Delete::builder()
                        .table_name(&self.name)
                        .set_key(Some(key_av(key)))
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(backend)?,
                )
            }
            Write::Check { key, cond } => {
                // ConditionCheck requires an expression; `Always` becomes a tautology.
                let cond = e.cond(cond, false).unwrap_or_else(|| {
                    let pk = e.name(PK);
                    format!("attribute_exists({pk}) OR attribute_not_exists({pk})")
                });
                item.condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.name)
                        .set_key(Some(key_av(key)))
                        .condition_expression(cond)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(backend)?,
                )
            }
        }
        .build())
    }
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>> {
        validate_key(key)?;
        metrics::hit();
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_av(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(map_err)?;
        let item = out.item.map(from_av_map).transpose()?;
        Ok(item.filter(|i| !is_expired(i, now_epoch())))
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<()> {
        validate_item(&item)?;
        let mut e = Expr::default();
        let cond = e.cond(&cond, false);
        metrics::hit();
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_av_map(&item)?))
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn update(&self, update: Update) -> Result<Item> {
        validate_update(&update)?;
        for _ in 0..EXPIRED_RETRIES {
            let mut e = Expr::default();
            let expression = e.update(&update)?;
            let cond = e.cond(&update.cond, true);
            metrics::hit();
            let res = self
                .client
                .update_item()
                .table_name(&self.name)
                .set_key(Some(key_av(&update.key)))
                .update_expression(expression)
                .set_condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match res {
                Ok(out) => return from_av_map(out.attributes.unwrap_or_default()),
                Err(err) => {
                    let stale = match err.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
                            expired_old(c.item.as_ref())
                        }
                        _ => None,
                    };
                    match stale {
                        Some(old) => self.purge(&update.key, &old).await?,
                        None => return Err(map_err(err)),
                    }
                }
            }
        }
        Err(StoreError::Conflict)
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<Option<Item>> {
        validate_key(key)?;
        let mut e = Expr::default();
        let cond = e.cond(&cond, false);
        metrics::hit();
        let out = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key_av(key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(map_err)?;
        let old = out
            .attributes
            .filter(|a| !a.is_empty())
            .map(from_av_map)
            .transpose()?;
        Ok(old.filter(|i| !is_expired(i, now_epoch())))
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<()> {
        let keys = validate_transact(&writes)?;
        let items = writes
            .iter()
            .map(|w| self.transact_item(w))
            .collect::<Result<Vec<_>>>()?;
        for _ in 0..EXPIRED_RETRIES {
            metrics::hit();
            let res = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match res {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(canceled)) =
                err.as_service_error()
            else {
                return Err(map_err(err));
            };
            let reasons = canceled.cancellation_reasons();
            let failed: Vec<usize> = reasons
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
                .collect();
            // Updates blocked only by an expired stored item: purge those and retry.
            let stale: Vec<(usize, Item)> = failed
                .iter()
                .filter(|&&i| matches!(writes.get(i), Some(Write::Update(_))))
                .filter_map(|&i| expired_old(reasons[i].item()).map(|old| (i, old)))
                .collect();
            if !stale.is_empty() {
                for (i, old) in &stale {
                    self.purge(&keys[*i], old).await?;
                }
                continue;
            }
            if !failed.is_empty() {
                return Err(StoreError::TransactionCanceled(failed));
            }
            if reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"))
            {
                return Err(StoreError::Conflict);
            }
            if let Some(r) = reasons.iter().find(|r| r.code() == Some("ValidationError")) {
                return Err(StoreError::Invalid(
                    r.message().unwrap_or_default().to_owned(),
                ));
            }
            return Err(map_err(err));
        }
        Err(StoreError::Conflict)
    }

    async fn query(&self, q: Query) -> Result<Page> {
        if query_is_empty(&q)? {
            return Ok(Page::default());
        }
        let start = q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, &q))
            .transpose()?;
        let index = q.index.is_some();
        let (pk_attr, sk_attr) = if index { (GSI1PK, GSI1SK) } else { (PK, SK) };
        let mut e = Expr::default();
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let mut key_cond = format!("{} = {}", e.name(pk_attr), e.value(s(&q.pk)));
        // DynamoDB rejects empty key values; an empty lower bound is no bound at all.
        let sk_cond = match &q.sk {
            SkRange::All => None,
            SkRange::Prefix(p) | SkRange::Gte(p) if p.is_empty() => None,
            SkRange::Prefix(p) => Some(format!(
                "begins_with({}, {})",
                e.name(sk_attr),
                e.value(s(p))
            )),
            SkRange::Between(a, b) if a.is_empty() => {
                Some(format!("{} <= {}", e.name(sk_attr), e.value(s(b))))
            }
            SkRange::Between(a, b) => {
                let (n, a, b) = (e.name(sk_attr), e.value(s(a)), e.value(s(b)));
                Some(format!("{n} BETWEEN {a} AND {b}"))
            }
            SkRange::Gte(a) => Some(format!("{} >= {}", e.name(sk_attr), e.value(s(a)))),
            SkRange::Lte(b) => Some(format!("{} <= {}", e.name(sk_attr), e.value(s(b)))),
        };
        if let Some(c) = sk_cond {
            key_cond = format!("{key_cond} AND {c}");
        }
        metrics::hit();
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(q.index.map(str::to_owned))
            .key_condition_expression(key_cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(q.forward)
            .set_limit(q.limit.map(|l| l.min(i32::MAX as usize) as i32))
            .set_exclusive_start_key(start.map(|keys| {
                keys.into_iter()
                    .map(|(k, v)| (k, AttributeValue::S(v)))
                    .collect()
            }))
            // Index reads cannot be strongly consistent.
            .set_consistent_read((!index).then_some(true))
            .send()
            .await
            .map_err(map_err)?;
        let now = now_epoch();
        let mut items = Vec::new();
        for raw in out.items.unwrap_or_default() {
            let item = from_av_map(raw)?;
            if !is_expired(&item, now) {
                items.push(item);
            }
        }
        let cursor = match out.last_evaluated_key {
            Some(k) if !k.is_empty() => Some(encode_cursor(&from_av_map(k)?)),
            _ => None,
        };
        Ok(Page { items, cursor })
    }

    async fn ping(&self) -> Result<()> {
        metrics::hit();
        self.client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
