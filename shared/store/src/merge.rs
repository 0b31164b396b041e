//! One listing spread over several index partitions ("shards"), read back as one.
//!
//! Why: a hot listing (every event of a fleet under one `GSI1PK`) concentrates its writes on one
//! DynamoDB partition. Writers spread it over shards (`EVENTS`, `EVENTS#01`, …); readers merge
//! the shards' pages here, in (GSI1SK, PK, SK) order, behind one opaque cursor, at one round
//! trip per unfinished shard per page (plus a bounded few when a shard's page is all expired).
//!
//! The merge takes each shard's items as a prefix of what that shard returned, so resuming a
//! shard after the last item taken from it visits everything exactly once even where a
//! backend orders GSI1SK ties differently.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::try_join_all;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::common::{decode_cursor, encode_cursor};
use crate::{GSI1PK, GSI1SK, Item, PK, Page, Query, Result, Row, SK, StoreError, Table};

/// How many more pages of one shard to read, within one merged page, while that shard keeps
/// answering "nothing live here, but more to come" (DynamoDB counts expired items against the
/// limit). Past it the merged page ends early, its cursor resuming that shard further on.
const MAX_EMPTY_FOLLOWS: usize = 4;

/// Where one shard stands, as the merged cursor records it.
#[derive(Clone, Debug, PartialEq)]
enum Pos {
    /// Not read yet.
    Start,
    /// Resume after this store cursor.
    After(String),
    /// Nothing more.
    Done,
}

/// One page of the union of `shards` (index queries that differ only in `pk`; same `sk`
/// range, direction and limit), merged in (GSI1SK, PK, SK) order (reversed when the queries
/// are reverse), resuming at `cursor` (a previous page's cursor from this function).
///
/// A `None` limit reads each shard's default page (everything on the embedded store, 1 MB on
/// DynamoDB) and returns all that can be merged from it. A cursor that is not one of this
/// function's, or was made for another number of shards, is [`StoreError::BadCursor`].
pub async fn query_merged_as<T: DeserializeOwned + Send>(
    table: &dyn Table,
    shards: Vec<Query>,
    cursor: Option<String>,
) -> Result<Page<T>> {
    validate(&shards)?;
    let positions = decode_positions(cursor.as_deref(), &shards)?;
    let fetches = shards
        .iter()
        .zip(&positions)
        .map(|(q, pos)| fetch(table, q, pos));
    let mut fetched = try_join_all(fetches).await?;
    let (forward, limit) = (shards[0].forward, shards[0].limit.unwrap_or(usize::MAX));
    let taken = merge(&mut fetched, forward, limit);
    let positions: Vec<Pos> = fetched.into_iter().map(Fetched::position).collect();
    Ok(Page {
        items: taken.iter().map(Row::decode).collect::<Result<_>>()?,
        cursor: encode_positions(&positions),
    })
}

fn invalid(msg: &str) -> StoreError {
    StoreError::Invalid(format!("merged query: {msg}"))
}

/// The shards must be one listing: index queries alike but for distinct partition keys.
fn validate(shards: &[Query]) -> Result<()> {
    let Some(first) = shards.first() else {
        return Err(invalid("no shards"));
    };
    for (i, q) in shards.iter().enumerate() {
        if q.index.is_none() {
            return Err(invalid("every shard must be an index query"));
        }
        if q.cursor.is_some() {
            return Err(invalid("shards carry no cursor; pass the merged cursor"));
        }
        if q.index != first.index
            || q.sk != first.sk
            || q.forward != first.forward
            || q.limit != first.limit
        {
            return Err(invalid(
                "shards differ in sort-key range, direction or limit",
            ));
        }
        if shards[..i].iter().any(|p| p.pk == q.pk) {
            return Err(invalid("a shard is listed twice"));
        }
    }
    if first.limit == Some(0) {
        return Err(invalid("limit must be at least 1"));
    }
    Ok(())
}

/// The merged cursor: a JSON array, per shard `null` (not started), a store cursor, or `true`
/// (done); URL-safe base64 like the store's own cursors.
fn decode_positions(cursor: Option<&str>, shards: &[Query]) -> Result<Vec<Pos>> {
    let Some(cursor) = cursor else {
        return Ok(vec![Pos::Start; shards.len()]);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let Ok(Value::Array(entries)) = serde_json::from_slice(&bytes) else {
        return Err(StoreError::BadCursor);
    };
    if entries.len() != shards.len() {
        return Err(StoreError::BadCursor);
    }
    entries
        .into_iter()
        .zip(shards)
        .map(|(entry, q)| match entry {
            Value::Null => Ok(Pos::Start),
            Value::Bool(true) => Ok(Pos::Done),
            // Checked now so a cursor for other shards fails before any round trip.
            Value::String(c) => decode_cursor(&c, q).map(|_| Pos::After(c)),
            _ => Err(StoreError::BadCursor),
        })
        .collect()
}

/// `None` once every shard is done.
fn encode_positions(positions: &[Pos]) -> Option<String> {
    if positions.iter().all(|p| *p == Pos::Done) {
        return None;
    }
    let entries: Vec<Value> = positions
        .iter()
        .map(|p| match p {
            Pos::Start => Value::Null,
            Pos::After(c) => Value::String(c.clone()),
            Pos::Done => Value::Bool(true),
        })
        .collect();
    Some(URL_SAFE_NO_PAD.encode(Value::Array(entries).to_string()))
}

/// The key attributes of an index item: what the merge orders by and a shard cursor records.
#[derive(Deserialize)]
struct Keys {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    #[serde(rename = "GSI1PK")]
    gsi_pk: String,
    #[serde(rename = "GSI1SK")]
    gsi_sk: String,
}

impl Keys {
    fn order(&self) -> (&str, &str, &str) {
        (&self.gsi_sk, &self.pk, &self.sk)
    }

    /// The store cursor that resumes a shard after this item (the format both backends use).
    fn cursor(&self) -> String {
        let keys: Item = [
            (PK, &self.pk),
            (SK, &self.sk),
            (GSI1PK, &self.gsi_pk),
            (GSI1SK, &self.gsi_sk),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), Value::String(v.clone())))
        .collect();
        encode_cursor(&keys)
    }
}

/// One shard's page as read for this merged page, and what the merge took from it.
struct Fetched {
    /// The store cursor the rows were read from (`None`: the shard's start).
    from: Option<String>,
    /// Rows not taken yet, in the shard's order.
    rows: VecDeque<(Keys, Row)>,
    /// The shard's store cursor after `rows`: `Some` while it has more.
    more: Option<String>,
    /// The last row taken.
    last: Option<Keys>,
    /// Nothing to read (the merged cursor said so).
    done: bool,
}

impl Fetched {
    fn new(from: Option<String>) -> Self {
        Self {
            from,
            rows: VecDeque::new(),
            more: None,
            last: None,
            done: false,
        }
    }

    /// Whether items not yet read may sort before those buffered: the merge must stop here.
    fn blocks(&self) -> bool {
        self.rows.is_empty() && self.more.is_some()
    }

    /// Where the shard stands once the merge has taken what it took.
    fn position(self) -> Pos {
        if self.done {
            return Pos::Done;
        }
        if self.rows.is_empty() {
            return self.more.map_or(Pos::Done, Pos::After);
        }
        match (self.last, self.from) {
            (Some(last), _) => Pos::After(last.cursor()),
            (None, Some(from)) => Pos::After(from),
            (None, None) => Pos::Start,
        }
    }
}

/// Reads one page of a shard from `pos`, following its cursor past pages that hold nothing
/// live (a bounded number of times).
async fn fetch(table: &dyn Table, q: &Query, pos: &Pos) -> Result<Fetched> {
    let mut from = match pos {
        Pos::Start => None,
        Pos::After(c) => Some(c.clone()),
        Pos::Done => {
            let mut done = Fetched::new(None);
            done.done = true;
            return Ok(done);
        }
    };
    for _ in 0..=MAX_EMPTY_FOLLOWS {
        let page = table.query_rows(q.clone().cursor(from.clone())).await?;
        if page.items.is_empty() && page.cursor.is_some() {
            from = page.cursor;
            continue;
        }
        let mut fetched = Fetched::new(from);
        for row in page.items {
            fetched.rows.push_back((row.decode::<Keys>()?, row));
        }
        fetched.more = page.cursor;
        return Ok(fetched);
    }
    // Still nothing live: resume this shard where the reads got to.
    let mut fetched = Fetched::new(from.clone());
    fetched.more = from;
    Ok(fetched)
}

/// Takes up to `limit` rows, smallest head first, until a shard that may hold smaller unread
/// items has none buffered.
fn merge(fetched: &mut [Fetched], forward: bool, limit: usize) -> Vec<Row> {
    let mut out = Vec::new();
    while out.len() < limit && !fetched.iter().any(Fetched::blocks) {
        let head = fetched
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.rows.front().map(|(k, _)| (i, k.order())))
            .min_by(|a, b| {
                let by_key = a.1.cmp(&b.1);
                let by_key = if forward { by_key } else { by_key.reverse() };
                by_key.then(a.0.cmp(&b.0))
            });
        let Some((i, _)) = head else { break };
        let Some((keys, row)) = fetched[i].rows.pop_front() else {
            break;
        };
        fetched[i].last = Some(keys);
        out.push(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: usize) -> Vec<Query> {
        (0..n).map(|i| Query::index(format!("S#{i}"))).collect()
    }

    #[test]
    fn positions_round_trip() {
        let qs = shards(3);
        let store = Keys {
            pk: "P".into(),
            sk: "x".into(),
            gsi_pk: "S#1".into(),
            gsi_sk: "1".into(),
        }
        .cursor();
        let pos = vec![Pos::Start, Pos::After(store), Pos::Done];
        let c = encode_positions(&pos).unwrap();
        assert_eq!(decode_positions(Some(&c), &qs).unwrap(), pos);
        assert_eq!(encode_positions(&[Pos::Done, Pos::Done]), None);
    }

    #[test]
    fn cursors_of_other_shards_are_bad() {
        let enc = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let qs = shards(2);
        for bad in [
            "%%%".to_owned(),
            enc(serde_json::json!({"a": 1})),
            enc(serde_json::json!([null])),
            enc(serde_json::json!([null, false])),
            enc(serde_json::json!([null, "nonsense"])),
        ] {
            let err = decode_positions(Some(&bad), &qs).unwrap_err();
            assert!(matches!(err, StoreError::BadCursor), "{bad}: {err:?}");
        }
    }

    #[test]
    fn shards_must_be_alike() {
        let ok = shards(2);
        validate(&ok).unwrap();
        let cases = [
            vec![],
            vec![Query::index("A"), Query::partition("B")],
            vec![Query::index("A"), Query::index("B").reverse()],
            vec![Query::index("A").limit(2), Query::index("B")],
            vec![Query::index("A"), Query::index("B").prefix("x")],
            vec![Query::index("A"), Query::index("A")],
            vec![Query::index("A").cursor(Some("c".into()))],
            vec![Query::index("A").limit(0)],
        ];
        for qs in cases {
            let err = validate(&qs).unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{qs:?}: {err:?}");
        }
    }
}
