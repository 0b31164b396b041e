//! Every key of the `civic-streetlight` table this crate spells, one helper per kind (the
//! layout is the table in the crate's docs). Stored keys outlive the code: a string changed
//! here orphans every item written before.

use civic_store::Key;

/// An account, by its normalized email (emails are unique without regard to case).
pub fn user_key(email: &str) -> Key {
    Key::new(format!("USER#{email}"), "USER")
}

/// The GSI1 partition of every user.
pub const USERS: &str = "USERS";

/// Users sort by id in [`USERS`].
pub fn user_index_sk(id: u64) -> String {
    format!("{id:010}")
}

/// A light's partition: the light itself and its control logs.
pub fn light_pk(light_id: &str) -> String {
    format!("LIGHT#{light_id}")
}

/// The light's own item in its partition; it sorts after the logs, so a reverse query
/// returns the light first.
pub const LIGHT_SK: &str = "META";

pub fn light_key(light_id: &str) -> Key {
    Key::new(light_pk(light_id), LIGHT_SK)
}

/// The sort-key prefix of a light's control logs.
pub const LOGS: &str = "LOG#";

/// Logs sort by id within their light's partition, newest last. Ids written before issue 18
/// came from a counter and are 12 digits with leading zeros (`LOG#000000000042`); later ones
/// are time stamps in µs ([`crate::lights::log_id`]), 16 digits from 2001 to 2286
/// (`LOG#1767571200000000`). Within each kind the width is fixed, so the text order is the
/// numeric order; across kinds an old id starts with `0` (the counter stayed below 10^11)
/// and a new one with `1`, so every old log sorts before every new one, as it is older and
/// numerically smaller. The format stays `{:012}`, which pads old ids and leaves new ones be.
pub fn log_key(light_id: &str, log_id: i64) -> Key {
    Key::new(light_pk(light_id), format!("{LOGS}{log_id:012}"))
}

/// A city's partition (its summary) and its lights' GSI1 partition. Cities are matched
/// without regard to case or surrounding blanks.
pub fn city_pk(city: &str) -> String {
    format!("CITY#{}", city.trim().to_lowercase())
}

pub fn summary_key(city: &str) -> Key {
    Key::new(city_pk(city), "SUMMARY")
}

/// The aggregator's checkpoint in a shard of the table's change feed.
pub fn checkpoint_key(shard: &str) -> Key {
    Key::new(format!("AGG#{shard}"), "CHECKPOINT")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout in the crate's docs, which items already stored follow.
    #[test]
    fn keys_keep_their_stored_layout() {
        let k = |k: Key| (k.pk, k.sk);
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            k(user_key("ann@example.com")),
            s("USER#ann@example.com", "USER")
        );
        assert_eq!(user_index_sk(42), "0000000042");
        assert_eq!(k(light_key("SL001")), s("LIGHT#SL001", "META"));
        assert_eq!(k(log_key("SL001", 7)), s("LIGHT#SL001", "LOG#000000000007"));
        assert_eq!(city_pk(" New Delhi "), "CITY#new delhi");
        assert_eq!(k(summary_key("Delhi")), s("CITY#delhi", "SUMMARY"));
        assert_eq!(k(checkpoint_key("s1")), s("AGG#s1", "CHECKPOINT"));
    }

    /// Counter ids (before issue 18) and µs stamps (after) in one partition: the text order
    /// of their keys is their numeric order, so a reverse query still lists newest first.
    #[test]
    fn old_and_new_log_ids_sort_by_value() {
        let stamp_2026 = 1_767_571_200_000_000;
        let ids = [
            1,
            42,
            99_999_999_999,
            1_000_000_000_000_000,
            stamp_2026,
            stamp_2026 + 1,
            9_999_999_999_999_999,
        ];
        let sks: Vec<String> = ids.iter().map(|&id| log_key("SL1", id).sk).collect();
        let mut sorted = sks.clone();
        sorted.sort();
        assert_eq!(sks, sorted);
        assert_eq!(sks[4], "LOG#1767571200000000");
    }
}
