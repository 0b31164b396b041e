//! Queries of the embedded backend: a range scan of a partition, or of the index (each entry
//! then read from the items table), in either direction and resuming past a cursor.

use std::ops::Bound;

use redb::{ReadOnlyTable, TableError};

use super::{EmbeddedTable, IndexKey, ItemKey, OwnedKey, index_def, items_def};
use crate::common::{backend, decode_cursor, encode_cursor, sk_span};
use crate::{GSI1PK, GSI1SK, Item, PK, Page, Query, Result, Row, SK, now_epoch};

/// A query's decoded cursor: `(name, value)` in the order PK, SK, GSI1PK, GSI1SK.
type Cursor = Vec<(String, String)>;

/// Bounds of a scan from `lo` (inclusive) to `hi` (exclusive), narrowed past the cursor.
fn bounds<K: Ord>(lo: K, hi: K, cursor: Option<K>, forward: bool) -> (Bound<K>, Bound<K>) {
    match cursor {
        Some(c) if forward && c >= lo => (Bound::Excluded(c), Bound::Excluded(hi)),
        Some(c) if !forward && c < hi => (Bound::Included(lo), Bound::Excluded(c)),
        _ => (Bound::Included(lo), Bound::Excluded(hi)),
    }
}

fn borrow2(b: &Bound<OwnedKey>) -> Bound<(&str, &str)> {
    b.as_ref().map(|(a, b)| (a.as_str(), b.as_str()))
}

fn borrow4(b: &Bound<(String, String, String, String)>) -> Bound<(&str, &str, &str, &str)> {
    b.as_ref()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
}

/// The end of the partition: the next partition key is `pk` followed by NUL.
fn end(q: &Query) -> String {
    format!("{}\0", q.pk)
}

/// What a scan keeps: the live items, up to the limit, and the key of the last one kept.
struct Found {
    out: Vec<Row>,
    limit: usize,
    now: i64,
    /// A live item past the limit was seen: the page gets a cursor.
    more: bool,
    /// PK, SK (and GSI1PK, GSI1SK for index queries) of the last item kept.
    last: Vec<(&'static str, String)>,
}

impl Found {
    /// Keeps the item unless it has expired; `Ok(false)` once the page is full (stop
    /// scanning). `keys` names it for the cursor.
    fn accept(&mut self, bytes: &[u8], keys: &[(&'static str, &str)]) -> Result<bool> {
        let row = Row::json(bytes.to_vec());
        if row.is_expired(self.now)? {
            return Ok(true);
        }
        if self.out.len() == self.limit {
            self.more = true;
            return Ok(false);
        }
        self.out.push(row);
        self.last.clear();
        self.last
            .extend(keys.iter().map(|&(n, v)| (n, v.to_owned())));
        Ok(true)
    }

    fn cursor(&self) -> Option<String> {
        let keys: Item = self
            .last
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone().into()))
            .collect();
        self.more.then(|| encode_cursor(&keys))
    }
}

/// Scans a partition of the items table.
fn scan_items(
    items: &ReadOnlyTable<ItemKey, &'static [u8]>,
    q: &Query,
    cursor: Option<&Cursor>,
    found: &mut Found,
) -> Result<()> {
    let (lo, hi) = sk_span(&q.sk);
    let lo = (q.pk.clone(), lo);
    let hi = hi.map_or_else(|| (end(q), String::new()), |h| (q.pk.clone(), h));
    let cursor_value = |i: usize| cursor.map(|c| c[i].1.clone());
    let cur = cursor_value(0).zip(cursor_value(1));
    let (lo, hi) = bounds(lo, hi, cur, q.forward);
    let range = items
        .range::<(&str, &str)>((borrow2(&lo), borrow2(&hi)))
        .map_err(backend)?;
    let iter: Box<dyn Iterator<Item = _>> = if q.forward {
        Box::new(range)
    } else {
        Box::new(range.rev())
    };
    for entry in iter {
        let (k, v) = entry.map_err(backend)?;
        let (pk, sk) = k.value();
        if !found.accept(v.value(), &[(PK, pk), (SK, sk)])? {
            break;
        }
    }
    Ok(())
}

/// Scans a partition of the index, reading each entry's item.
fn scan_index(
    items: &ReadOnlyTable<ItemKey, &'static [u8]>,
    index: &ReadOnlyTable<IndexKey, ()>,
    q: &Query,
    cursor: Option<&Cursor>,
    found: &mut Found,
) -> Result<()> {
    let (lo, hi) = sk_span(&q.sk);
    let s = String::new;
    let lo = (q.pk.clone(), lo, s(), s());
    let hi = hi.map_or_else(|| (end(q), s(), s(), s()), |h| (q.pk.clone(), h, s(), s()));
    // Cursor order is PK, SK, GSI1PK, GSI1SK; index keys lead with the GSI keys.
    let cur = cursor.map(|c| {
        (
            c[2].1.clone(),
            c[3].1.clone(),
            c[0].1.clone(),
            c[1].1.clone(),
        )
    });
    let (lo, hi) = bounds(lo, hi, cur, q.forward);
    let range = index
        .range::<(&str, &str, &str, &str)>((borrow4(&lo), borrow4(&hi)))
        .map_err(backend)?;
    let iter: Box<dyn Iterator<Item = _>> = if q.forward {
        Box::new(range)
    } else {
        Box::new(range.rev())
    };
    for entry in iter {
        let (k, _) = entry.map_err(backend)?;
        let (gpk, gsk, pk, sk) = k.value();
        let Some(v) = items.get((pk, sk)).map_err(backend)? else {
            continue;
        };
        let keys = [(PK, pk), (SK, sk), (GSI1PK, gpk), (GSI1SK, gsk)];
        if !found.accept(v.value(), &keys)? {
            break;
        }
    }
    Ok(())
}

impl EmbeddedTable {
    pub(super) fn query_sync(&self, q: &Query) -> Result<Page<Row>> {
        let cursor = q
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, q))
            .transpose()?;
        let txn = self.db.begin_read().map_err(backend)?;
        let items = match txn.open_table(items_def(&self.names.items)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Page::default()),
            Err(e) => return Err(backend(e)),
        };
        let mut found = Found {
            out: Vec::new(),
            limit: q.limit.unwrap_or(usize::MAX),
            now: now_epoch(),
            more: false,
            last: Vec::new(),
        };
        if q.index.is_none() {
            scan_items(&items, q, cursor.as_ref(), &mut found)?;
        } else {
            let index = match txn.open_table(index_def(&self.names.index)) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(Page::default()),
                Err(e) => return Err(backend(e)),
            };
            scan_index(&items, &index, q, cursor.as_ref(), &mut found)?;
        }
        Ok(Page {
            cursor: found.cursor(),
            items: found.out,
        })
    }
}
