//! Item sizes and capacity units as DynamoDB computes them.
//!
//! Rules from the DynamoDB developer guide, "Item sizes and formats" and "Read/write capacity
//! mode" (on-demand).

use serde_json::{Number, Value};

use crate::Item;

/// One write request unit covers a write of up to 1 KB ("a standard write request unit can
/// write an item up to 1 KB"); larger items take one unit per started KB.
pub const WRITE_UNIT_BYTES: usize = 1024;
/// One read request unit covers a strongly consistent read of up to 4 KB; a query rounds the
/// total size of the items it returns up to 4 KB, not each item.
pub const READ_UNIT_BYTES: usize = 4096;
/// "Transactional write requests require 2 write request units to perform one write per item
/// up to 1 KB": DynamoDB prepares and then commits every item.
pub const TRANSACT_FACTOR: u64 = 2;
/// GSIs serve only eventually consistent reads, which cost half a unit per 4 KB.
pub const EVENTUAL_READ_FACTOR: f64 = 0.5;
/// A List or Map costs 3 bytes of its own ("the size of a List or Map is (length of attribute
/// name) + sum (size of nested elements) + (3 bytes)")...
const CONTAINER_BYTES: usize = 3;
/// ... plus 1 byte per element ("each List or Map element also requires 1 byte").
const ELEMENT_BYTES: usize = 1;
/// A Boolean or Null is "(length of attribute name) + (1 byte)"; a number adds this byte to its
/// digits.
const SCALAR_BYTES: usize = 1;

/// Size of an item as DynamoDB bills it: for each attribute, the length of its name plus the
/// size of its value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Size of one attribute value (without its name).
pub fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => SCALAR_BYTES,
        Value::String(s) => s.len(),
        Value::Number(n) => number_size(n),
        Value::Array(list) => {
            CONTAINER_BYTES
                + list
                    .iter()
                    .map(|v| value_size(v) + ELEMENT_BYTES)
                    .sum::<usize>()
        }
        Value::Object(map) => {
            CONTAINER_BYTES
                + map
                    .iter()
                    .map(|(k, v)| k.len() + value_size(v) + ELEMENT_BYTES)
                    .sum::<usize>()
        }
    }
}

/// "Numbers are variable length, with up to 38 significant digits. Leading and trailing
/// zeroes are trimmed. The size of a number is approximately (1 byte per two significant
/// digits) + (1 byte)."
fn number_size(n: &Number) -> usize {
    let text = n.to_string();
    let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + SCALAR_BYTES
}

/// Write units for one write of an item of `size` bytes (at least 1, also for a missing item).
pub fn write_units(size: usize) -> u64 {
    size.div_ceil(WRITE_UNIT_BYTES).max(1) as u64
}

/// Strongly consistent read units for `size` bytes read in one request (at least 1).
pub fn read_units(size: usize) -> u64 {
    size.div_ceil(READ_UNIT_BYTES).max(1) as u64
}
