//! Control log ids without a shared counter (issue 18).
//!
//! Before, every status report took its log id from the app-wide `COUNTER` item (an `ADD`
//! per report): at 100,000 lights reporting every 5 minutes that one item took 334 writes/s,
//! the hottest key of the fleet, against DynamoDB's ~1,000 writes/s per partition. Now an id
//! is the time of the change in microseconds since the epoch, made strictly greater than every
//! id this process handed out before and than the light's last stored id (kept on the light
//! item, [`LAST_LOG`]). Nothing is written for it but the light, which the report writes anyway.
//!
//! What the API sees: ids stay integers (below 2^53 until the year 2255, so exact in
//! JavaScript too), a light's logs are still listed newest first, and its ids still increase
//! with each change: the light's write is conditioned on the version it read, so of two
//! concurrent reports the later committed one read the earlier one's id as its floor,
//! whatever the clocks of the processes that took them. Ids are unique per light (the log's
//! key); across lights they no longer are in general (two processes may stamp the same
//! microsecond), which no endpoint relies on: logs are only ever read per light. How old,
//! counter-allocated ids sort with these: [`crate::keys::log_key`].

/// The light item's attribute holding its newest log id (absent before issue 18: then 0).
pub const LAST_LOG: &str = "last_log_id";

/// A new log id for a light whose newest stored log id is `floor`.
pub fn next(floor: i64) -> i64 {
    civic_core::ids::stamp(floor)
}
