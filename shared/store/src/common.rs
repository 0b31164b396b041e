//! Helpers shared by the backends: validation, cursors, sort-key spans, number arithmetic.

use std::collections::HashSet;
use std::fmt::Display;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Number, Value};

use crate::{
    GSI1, GSI1PK, GSI1SK, Item, Key, PK, Query, Result, SK, SkRange, StoreError, Update, Write,
};

/// DynamoDB's limit on the writes of one transaction.
pub(crate) const MAX_TRANSACT: usize = 100;

pub(crate) fn backend(e: impl Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// Checks what DynamoDB would reject: keys must be non-empty strings, and so must the GSI keys
/// when present (the index declares them as strings).
pub(crate) fn validate_item(item: &Item) -> Result<Key> {
    let key = Key::of(item)?;
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(invalid("PK and SK must not be empty"));
    }
    for name in [GSI1PK, GSI1SK] {
        match item.get(name) {
            None => {}
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => return Err(invalid(format!("{name} must be a non-empty string"))),
        }
    }
    Ok(key)
}

pub(crate) fn validate_key(key: &Key) -> Result<()> {
    if key.pk.is_empty() || key.sk.is_empty() {
        return Err(invalid("PK and SK must not be empty"));
    }
    Ok(())
}

/// Rejects updates DynamoDB would reject: touching a key attribute, or naming an attribute in
/// two actions ("two document paths overlap").
pub(crate) fn validate_update(u: &Update) -> Result<()> {
    validate_key(&u.key)?;
    if u.set.is_empty() && u.set_if_absent.is_empty() && u.add.is_empty() && u.remove.is_empty() {
        return Err(invalid("update has no actions"));
    }
    let mut seen = HashSet::new();
    let names = u
        .set
        .keys()
        .chain(u.set_if_absent.keys())
        .chain(u.add.iter().map(|(n, _)| n))
        .chain(u.remove.iter());
    for name in names {
        if name == PK || name == SK {
            return Err(invalid(format!("cannot update key attribute {name}")));
        }
        if !seen.insert(name.as_str()) {
            return Err(invalid(format!(
                "attribute {name} appears in two update actions"
            )));
        }
    }
    for name in [GSI1PK, GSI1SK] {
        for v in [u.set.get(name), u.set_if_absent.get(name)]
            .into_iter()
            .flatten()
        {
            if !matches!(v, Value::String(s) if !s.is_empty()) {
                return Err(invalid(format!("{name} must be a non-empty string")));
            }
        }
        if u.add.iter().any(|(n, _)| n == name) {
            return Err(invalid(format!("{name} must be a string")));
        }
    }
    Ok(())
}

/// The key of a write, validating the write's item or update.
pub(crate) fn write_key(w: &Write) -> Result<Key> {
    match w {
        Write::Put { item, .. } => validate_item(item),
        Write::Update(u) => validate_update(u).map(|()| u.key.clone()),
        Write::Delete { key, .. } | Write::Check { key, .. } => {
            validate_key(key).map(|()| key.clone())
        }
    }
}

/// Validates a transaction as DynamoDB does: at most 100 writes, each on a distinct item.
pub(crate) fn validate_transact(writes: &[Write]) -> Result<Vec<Key>> {
    if writes.is_empty() || writes.len() > MAX_TRANSACT {
        return Err(invalid(format!(
            "a transaction holds 1 to {MAX_TRANSACT} writes"
        )));
    }
    let keys = writes.iter().map(write_key).collect::<Result<Vec<_>>>()?;
    let distinct: HashSet<&Key> = keys.iter().collect();
    if distinct.len() != keys.len() {
        return Err(invalid("a transaction writes each item at most once"));
    }
    Ok(keys)
}

/// `a + b`, kept integral when both are integers (and when a float sum is integral, as
/// DynamoDB's decimal numbers would read back).
pub(crate) fn add_numbers(a: &Number, b: &Number) -> Result<Number> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64())
        && let Some(sum) = x.checked_add(y)
    {
        return Ok(sum.into());
    }
    let sum = a.as_f64().unwrap_or_default() + b.as_f64().unwrap_or_default();
    if sum.fract() == 0.0 && sum.abs() < 9.0e15 {
        return Ok((sum as i64).into());
    }
    Number::from_f64(sum).ok_or_else(|| invalid("number out of range"))
}

/// Whether a query can match nothing without asking the backend. Also validates it.
pub(crate) fn query_is_empty(q: &Query) -> Result<bool> {
    if q.pk.is_empty() {
        return Err(invalid("query partition key must not be empty"));
    }
    if q.limit == Some(0) {
        return Err(invalid("query limit must be at least 1"));
    }
    if q.index.is_some_and(|i| i != GSI1) {
        return Err(invalid(format!("unknown index {:?}", q.index)));
    }
    // Sort keys are never empty, and an inverted range is empty (DynamoDB rejects both).
    Ok(match &q.sk {
        SkRange::Lte(b) => b.is_empty(),
        SkRange::Between(a, b) => b.is_empty() || a > b,
        _ => false,
    })
}

/// The sort-key span of a range: inclusive lower bound and exclusive upper bound, `None`
/// meaning the end of the partition.
pub(crate) fn sk_span(range: &SkRange) -> (String, Option<String>) {
    // The smallest string greater than `s` in byte order is `s` followed by NUL.
    let after = |s: &str| format!("{s}\0");
    match range {
        SkRange::All => (String::new(), None),
        SkRange::Prefix(p) => (p.clone(), prefix_end(p)),
        SkRange::Between(a, b) => (a.clone(), Some(after(b))),
        SkRange::Gte(a) => (a.clone(), None),
        SkRange::Lte(b) => (String::new(), Some(after(b))),
    }
}

/// The smallest string greater than every string starting with `prefix`, if any (UTF-8 byte
/// order is code point order, so bumping the last bumpable char works).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The key attributes a cursor records: the table's, plus the index's for index queries.
pub(crate) fn cursor_names(index: bool) -> &'static [&'static str] {
    if index {
        &[PK, SK, GSI1PK, GSI1SK]
    } else {
        &[PK, SK]
    }
}

pub(crate) fn encode_cursor(keys: &Item) -> String {
    URL_SAFE_NO_PAD.encode(Value::Object(keys.clone()).to_string())
}

/// Decodes a cursor into its string key attributes, checking it belongs to the query.
pub(crate) fn decode_cursor(cursor: &str, q: &Query) -> Result<Vec<(String, String)>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let Ok(Value::Object(map)) = serde_json::from_slice(&bytes) else {
        return Err(StoreError::BadCursor);
    };
    let names = cursor_names(q.index.is_some());
    if map.len() != names.len() {
        return Err(StoreError::BadCursor);
    }
    let keys = names
        .iter()
        .map(|&n| match map.get(n) {
            Some(Value::String(s)) => Ok((n.to_owned(), s.clone())),
            _ => Err(StoreError::BadCursor),
        })
        .collect::<Result<Vec<_>>>()?;
    let partition = if q.index.is_some() { GSI1PK } else { PK };
    if !keys.iter().any(|(n, v)| n == partition && *v == q.pk) {
        return Err(StoreError::BadCursor);
    }
    Ok(keys)
}

/// A blob listing's opaque cursor back to the string it wraps.
pub(crate) fn blob_cursor(cursor: Option<String>) -> Result<Option<String>> {
    cursor
        .map(|c| {
            let bytes = URL_SAFE_NO_PAD
                .decode(c)
                .map_err(|_| StoreError::BadCursor)?;
            String::from_utf8(bytes).map_err(|_| StoreError::BadCursor)
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bumps_last_char() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn numbers_stay_integral() {
        let n = |v: Value| v.as_number().cloned().unwrap();
        assert_eq!(
            add_numbers(&n(1.into()), &n(2.into())).unwrap().as_i64(),
            Some(3)
        );
        assert_eq!(
            add_numbers(&n(1.5.into()), &n(0.5.into()))
                .unwrap()
                .as_i64(),
            Some(2)
        );
        assert_eq!(
            add_numbers(&n(1.5.into()), &n(1.into())).unwrap().as_f64(),
            Some(2.5)
        );
    }
}
