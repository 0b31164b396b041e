//! The DynamoDB backend.
//!
//! DynamoDB deletes expired items lazily (up to days later), so the TTL semantics of the
//! crate are enforced here: reads drop expired items, and conditions treat them as absent.
//! An update must not build on an expired item's attributes: updates carry a "not expired"
//! guard, and when only that guard fails the expired item is deleted and the update retried
//! (the one case where a call makes more than one round trip).

mod expr;
mod setup;

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update as DynUpdate,
};

use crate::common::{
    backend, decode_cursor, encode_cursor, query_is_empty, validate_item, validate_key,
    validate_transact, validate_update,
};
use crate::{
    Cond, EXPIRES_AT, GSI1PK, GSI1SK, Item, Key, PK, Page, Query, Result, Row, SK, StoreError,
    Table, Update, Write, is_expired, metrics, now_epoch,
};
use expr::{Expr, to_av};

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
    async fn get_row(&self, key: &Key) -> Result<Option<Row>> {
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
        let Some(row) = out.item.map(Row::dynamo) else {
            return Ok(None);
        };
        Ok((!row.is_expired(now_epoch())?).then_some(row))
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

    async fn query_rows(&self, q: Query) -> Result<Page<Row>> {
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
        let key_cond = e.key_cond(pk_attr, sk_attr, &q.pk, &q.sk);
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
            let row = Row::dynamo(raw);
            if !row.is_expired(now)? {
                items.push(row);
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
