//! Typed records to and from store items: the domain struct's fields plus the keys.

use civic_store::{GSI1PK, GSI1SK, Item, Key, PK, SK};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Result};

/// `value`'s fields plus `keys` (e.g. `PK`, `SK`, `GSI1PK`), as one item.
pub fn to_item<T: Serialize>(value: &T, keys: &[(&str, String)]) -> Result<Item> {
    let mut item = match serde_json::to_value(value).map_err(|e| Error::Internal(e.to_string()))? {
        Value::Object(m) => m,
        _ => return Err(Error::Internal("record is not an object".into())),
    };
    for (k, v) in keys {
        item.insert((*k).to_owned(), Value::String(v.clone()));
    }
    Ok(item)
}

/// The domain struct of an item; key attributes are ignored.
pub fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_json::from_value(Value::Object(item))
        .map_err(|e| Error::Internal(format!("corrupt record: {e}")))
}

/// The key attributes of an item stored at `key`, for [`to_item`].
pub fn attributes(key: Key) -> [(&'static str, String); 2] {
    [(PK, key.pk), (SK, key.sk)]
}

/// The key attributes of an item stored at `key` and listed in the `GSI1` index partition
/// `index` under `index_sk`, for [`to_item`].
pub fn indexed(
    key: Key,
    index: impl Into<String>,
    index_sk: String,
) -> [(&'static str, String); 4] {
    [
        (PK, key.pk),
        (SK, key.sk),
        (GSI1PK, index.into()),
        (GSI1SK, index_sk),
    ]
}
