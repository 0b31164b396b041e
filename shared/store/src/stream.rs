//! Change feeds: what DynamoDB Streams delivers (view type `NEW_IMAGE`) and what the embedded
//! store emulates, in one shape, so one aggregator consumes both.
//!
//! Records of one shard come in commit order; `seq` orders them. Consumers keep their own
//! checkpoint (the `seq` of the last record they applied) and skip records at or below it, so a
//! redelivered batch changes nothing.

use crate::Item;

/// What a change did to its item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// One committed change of a table.
#[derive(Clone, Debug)]
pub struct Change {
    /// The stream shard it came from.
    pub shard: String,
    /// Position within the shard, normalised by [`seq`] so string order is stream order.
    pub seq: String,
    pub kind: ChangeKind,
    /// The item after the change; `None` for a removal.
    pub new_image: Option<Item>,
}

/// Width of a normalised sequence number. DynamoDB's are decimal strings of up to 40 digits.
pub const SEQ_WIDTH: usize = 40;

/// A sequence number zero-padded to [`SEQ_WIDTH`], so comparing strings compares positions.
pub fn seq(raw: impl std::fmt::Display) -> String {
    format!("{raw:0>SEQ_WIDTH$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_sequence_numbers_sort_like_numbers() {
        let small = seq("900");
        let big = seq("49612345678901234567890123456789");
        assert_eq!(small.len(), SEQ_WIDTH);
        assert!(small < big);
        assert_eq!(seq(7u64), format!("{}7", "0".repeat(39)));
    }
}
