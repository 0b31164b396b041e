//! Typed reads: a stored item as its backend holds it, decoded once, straight into the
//! caller's type.
//!
//! Why: a list endpoint used to take each item from stored bytes to a `serde_json::Value`
//! map, then to the domain struct, then to JSON again; building the map was most of its cost.
//! A [`Row`] keeps the embedded store's JSON bytes (or DynamoDB's attribute map) until the
//! caller says what it wants.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::{EXPIRES_AT, Item, Key, Page, Query, Result, StoreError, Table};

/// One stored item, not yet decoded.
#[derive(Clone, Debug)]
pub struct Row(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// The embedded store's JSON bytes.
    Json(Vec<u8>),
    /// A DynamoDB item.
    Dynamo(HashMap<String, AttributeValue>),
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The one attribute an expiry check needs; serde skips the rest without building it.
#[derive(Deserialize)]
struct Ttl {
    expires_at: Option<i64>,
}

impl Row {
    pub(crate) fn json(bytes: Vec<u8>) -> Self {
        Self(Repr::Json(bytes))
    }

    pub(crate) fn dynamo(map: HashMap<String, AttributeValue>) -> Self {
        Self(Repr::Dynamo(map))
    }

    /// The item as `T` (key attributes and unknown fields are ignored unless `T` names them).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        match &self.0 {
            Repr::Json(bytes) => serde_json::from_slice(bytes).map_err(corrupt),
            Repr::Dynamo(map) => serde_dynamo::from_item(map.clone()).map_err(corrupt),
        }
    }

    /// The whole item.
    pub fn into_item(self) -> Result<Item> {
        match self.0 {
            Repr::Json(bytes) => serde_json::from_slice(&bytes).map_err(corrupt),
            Repr::Dynamo(map) => serde_dynamo::from_item(map).map_err(corrupt),
        }
    }

    /// Whether its TTL has passed at `now` (see [`crate::is_expired`]).
    pub(crate) fn is_expired(&self, now: i64) -> Result<bool> {
        let at = match &self.0 {
            // Most items have no TTL: look for the name before parsing anything.
            Repr::Json(bytes) if !contains(bytes, EXPIRES_AT.as_bytes()) => None,
            Repr::Json(bytes) => {
                serde_json::from_slice::<Ttl>(bytes)
                    .map_err(corrupt)?
                    .expires_at
            }
            Repr::Dynamo(map) => match map.get(EXPIRES_AT) {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            },
        };
        Ok(at.is_some_and(|at| at <= now))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // memchr's SIMD search: a byte-window loop here was 3.6% of a list endpoint's CPU.
    memchr::memmem::find(haystack, needle).is_some()
}

impl<T> Page<T> {
    /// The same page with each item mapped by `f`.
    pub fn try_map<U>(self, f: impl FnMut(T) -> Result<U>) -> Result<Page<U>> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_>>()?,
            cursor: self.cursor,
        })
    }
}

/// Typed reads on any [`Table`].
#[async_trait]
pub trait Typed {
    /// The live item at `key` as `T`.
    async fn get_as<T: DeserializeOwned + Send>(&self, key: &Key) -> Result<Option<T>>;
    /// One page of `query`, each item as `T`.
    async fn query_as<T: DeserializeOwned + Send>(&self, query: Query) -> Result<Page<T>>;
    /// Every page of `query`, in order, each item as `T`. Only for collections with a known
    /// bound (one home's rooms, one organization's tree): nothing here stops a large partition.
    async fn query_all_as<T: DeserializeOwned + Send>(&self, query: Query) -> Result<Vec<T>>;
}

#[async_trait]
impl<X: Table + ?Sized> Typed for X {
    async fn get_as<T: DeserializeOwned + Send>(&self, key: &Key) -> Result<Option<T>> {
        self.get_row(key).await?.map(|r| r.decode()).transpose()
    }

    async fn query_as<T: DeserializeOwned + Send>(&self, query: Query) -> Result<Page<T>> {
        self.query_rows(query).await?.try_map(|r| r.decode())
    }

    async fn query_all_as<T: DeserializeOwned + Send>(&self, query: Query) -> Result<Vec<T>> {
        let (mut items, mut cursor) = (Vec::new(), None);
        loop {
            let page = self.query_as::<T>(query.clone().cursor(cursor)).await?;
            items.extend(page.items);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(items),
            }
        }
    }
}
