//! Typed records to and from store items: the domain struct's fields plus the keys.

use civic_store::Item;
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
