//! One index listing spread over several partitions, picked per owner.
//!
//! Why: a listing whose every member is rewritten often (every event moves its device in
//! Ozone's `DEVICES`, every status report rewrites its light under its city in Streetlight)
//! takes the whole fleet's write rate on one `GSI1PK`, and DynamoDB caps a partition at about
//! 1,000 writes/s. An owner's entries all go to one shard, picked by a stable hash of its id;
//! readers merge the shards ([`crate::query_merged_as`]).

use crate::{Page, Query, Result, Table};

/// How many partitions an index listing is spread over (1 to 64). Shard 0 keeps the unsharded
/// name, so items written before sharding stay listed. Raising the count is safe (readers read
/// every shard up to it); lowering it hides the higher shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shards(u32);

impl Shards {
    pub const ONE: Shards = Shards(1);

    pub fn new(n: u32) -> Option<Self> {
        (1..=64).contains(&n).then_some(Self(n))
    }

    /// How many partitions.
    pub fn count(self) -> u32 {
        self.0
    }

    /// The index partition of `owner`'s entries in `index`.
    pub fn pk(self, index: &str, owner: &str) -> String {
        use sha2::Digest;
        // SHA-256, not std's hasher: the shard is part of stored keys, so it must never change.
        let h = sha2::Sha256::digest(owner.as_bytes());
        let n = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % self.0;
        shard_pk(index, n)
    }

    /// Every partition of `index`, shard 0 first.
    pub fn all(self, index: &str) -> Vec<String> {
        (0..self.0).map(|n| shard_pk(index, n)).collect()
    }

    /// One page of the whole `index`: the shards' queries, `shape`d alike, merged.
    pub async fn page<T: serde::de::DeserializeOwned + Send>(
        self,
        table: &dyn Table,
        index: &str,
        shape: impl Fn(Query) -> Query,
        cursor: Option<String>,
    ) -> Result<Page<T>> {
        let queries = self
            .all(index)
            .into_iter()
            .map(|pk| shape(Query::index(pk)));
        crate::query_merged_as(table, queries.collect(), cursor).await
    }
}

fn shard_pk(index: &str, n: u32) -> String {
    match n {
        0 => index.to_owned(),
        n => format!("{index}#{n:02}"),
    }
}

impl std::str::FromStr for Shards {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        s.parse()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| "a whole number from 1 to 64".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shard names and the hash are part of stored keys: pinned.
    #[test]
    fn shard_keys_keep_their_stored_layout() {
        let sixteen = Shards::new(16).unwrap();
        assert_eq!(Shards::ONE.pk("EVENTS", "d-1"), "EVENTS");
        assert_eq!(Shards::ONE.all("EVENTS"), ["EVENTS"]);
        assert_eq!(
            sixteen.all("DEVICES")[..3],
            ["DEVICES", "DEVICES#01", "DEVICES#02"]
        );
        assert_eq!(sixteen.all("DEVICES")[15], "DEVICES#15");
        let spread: std::collections::BTreeSet<String> = (0..200)
            .map(|i| sixteen.pk("EVENTS", &format!("esp32-{i:03}")))
            .collect();
        assert_eq!(spread.len(), 16, "200 owners use every shard");
        assert_eq!(sixteen.pk("EVENTS", "esp32-001"), "EVENTS#09");
    }

    #[test]
    fn counts_parse_from_1_to_64() {
        assert_eq!("16".parse::<Shards>().map(Shards::count), Ok(16));
        assert_eq!("64".parse::<Shards>().map(Shards::count), Ok(64));
        for bad in ["0", "65", "-1", "x", ""] {
            assert!(bad.parse::<Shards>().is_err(), "{bad}");
        }
    }
}
