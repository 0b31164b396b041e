//! Every key of the `civic-ozone` table this crate spells, one helper per kind (the layout is
//! the table in the crate's docs; rollup keys are `rollup::Scope::pk` and the bucket key).
//! Stored keys outlive the code: a string changed here orphans every item written before.

use civic_store::Key;

/// The index partitions (`GSI1PK`) listing each kind of item.
pub const USERS: &str = "USERS";
pub const MACS: &str = "MACS";
pub const DEVICES: &str = "DEVICES";
pub const EVENTS: &str = "EVENTS";
pub const OUTLETS: &str = "OUTLETS";
pub const MACHINES: &str = "MACHINES";

pub use civic_core::item::{attributes, indexed};

/// Usernames are unique without regard to case.
pub fn user_key(username: &str) -> Key {
    Key::new(format!("USER#{}", username.to_lowercase()), "USER")
}

/// Users sort by id in `USERS`.
pub fn user_index_sk(id: i64) -> String {
    format!("{id:010}")
}

/// A MAC's registration (handshakes, and the device id staff assigned it).
pub fn mac_key(mac: &str) -> Key {
    Key::new(format!("MAC#{mac}"), "MAC")
}

pub fn device_key(device_id: &str) -> Key {
    Key::new(format!("DEVICE#{device_id}"), "DEVICE")
}

/// Devices sort by last contact in `DEVICES`, so "online" is one range query.
pub fn device_index_sk(last_seen: &str, device_id: &str) -> String {
    format!("{last_seen}#{device_id}")
}

/// The number of devices ever assigned.
pub fn device_count_key() -> Key {
    Key::new("COUNT", "DEVICES")
}

/// The idempotency marker of a device's event id: its presence makes a repeat a duplicate.
pub fn event_id_key(device_id: &str, event_id: &str) -> Key {
    Key::new(format!("EVENTID#{device_id}#{event_id}"), "EVENTID")
}

/// What every event partition key starts with.
pub const EVENTS_PREFIX: &str = "EVENTS#";

/// The partition holding one device's events.
pub fn events_pk(device_id: &str) -> String {
    format!("{EVENTS_PREFIX}{device_id}")
}

/// When telemetry was last flushed: the aggregator leaves out events received before.
pub fn flushed_key() -> Key {
    Key::new("FLUSH", "FLUSH")
}

/// The receipt stamp (µs) in an event's sort key ([`event_key`]).
pub fn event_receipt(sk: &str) -> Option<i64> {
    sk.split('#').nth(1)?.parse().ok()
}

/// How far the rollup aggregator got in one shard of the change feed.
pub fn checkpoint_key(shard: &str) -> Key {
    Key::new(format!("AGG#{shard}"), "CHECKPOINT")
}

/// Sorts by the second the event occurred, then by receipt (16 digits: µs until year 2286).
pub fn event_key(device_id: &str, occurred_at: &str, receipt: i64, event_id: &str) -> Key {
    Key::new(
        events_pk(device_id),
        format!("{occurred_at}#{receipt:016}#{event_id}"),
    )
}

/// Every device's events in `EVENTS`, in the same order as [`event_key`].
pub fn event_index_sk(occurred_at: &str, receipt: i64, device_id: &str, event_id: &str) -> String {
    format!("{occurred_at}#{receipt:016}#{device_id}#{event_id}")
}

pub fn outlet_key(id: i64) -> Key {
    Key::new(format!("OUTLET#{id:010}"), "OUTLET")
}

/// Outlets sort by id in `OUTLETS`.
pub fn outlet_index_sk(id: i64) -> String {
    format!("{id:010}")
}

/// A machine; its device bindings share its partition.
pub fn machine_key(id: i64) -> Key {
    Key::new(format!("MACHINE#{id:010}"), "MACHINE")
}

/// Machines sort by outlet, then id, in `MACHINES`.
pub fn machine_index_sk(outlet: i64, id: i64) -> String {
    format!("{}{id:010}", machines_of_outlet(outlet))
}

/// The prefix of one outlet's machines in `MACHINES`.
pub fn machines_of_outlet(outlet: i64) -> String {
    format!("{outlet:010}#")
}

/// The sort-key prefix of a machine's device bindings, current and past.
pub const BINDINGS: &str = "BIND#";

/// A device's binding to a machine, in the machine's partition.
pub fn binding_key(machine: i64, device_id: &str) -> Key {
    Key::new(machine_key(machine).pk, format!("{BINDINGS}{device_id}"))
}

/// A live ticket ([`crate::live`]), by its digest: the table never holds the ticket itself.
pub fn ticket_key(ticket: &str) -> Key {
    let digest = civic_auth::secret::digest(crate::APP.name, "live", ticket);
    Key::new(format!("LIVE#{digest}"), "TICKET")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout in the crate's docs, which items already stored follow.
    #[test]
    fn keys_keep_their_stored_layout() {
        let k = |k: Key| (k.pk, k.sk);
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(k(user_key("Admin")), s("USER#admin", "USER"));
        assert_eq!(k(mac_key("EC:E3")), s("MAC#EC:E3", "MAC"));
        assert_eq!(k(device_key("d-1")), s("DEVICE#d-1", "DEVICE"));
        assert_eq!(k(device_count_key()), s("COUNT", "DEVICES"));
        assert_eq!(k(event_id_key("d-1", "e1")), s("EVENTID#d-1#e1", "EVENTID"));
        assert_eq!(
            k(event_key("d-1", "2025-09-16T12:00:00Z", 42, "e1")),
            s("EVENTS#d-1", "2025-09-16T12:00:00Z#0000000000000042#e1")
        );
        assert_eq!(
            event_index_sk("2025-09-16T12:00:00Z", 42, "d-1", "e1"),
            "2025-09-16T12:00:00Z#0000000000000042#d-1#e1"
        );
        assert_eq!(
            event_receipt("2025-09-16T12:00:00Z#0000000000000042#e1"),
            Some(42)
        );
        assert_eq!(k(flushed_key()), s("FLUSH", "FLUSH"));
        assert_eq!(k(checkpoint_key("local")), s("AGG#local", "CHECKPOINT"));
        assert_eq!(k(outlet_key(7)), s("OUTLET#0000000007", "OUTLET"));
        assert_eq!(k(machine_key(3)), s("MACHINE#0000000003", "MACHINE"));
        assert_eq!(machine_index_sk(7, 3), "0000000007#0000000003");
        assert_eq!(
            k(binding_key(3, "d-1")),
            s("MACHINE#0000000003", "BIND#d-1")
        );
        assert_eq!(
            device_index_sk("2025-09-16T12:00:00.000Z", "d-1"),
            "2025-09-16T12:00:00.000Z#d-1"
        );
        assert_eq!(user_index_sk(5), "0000000005");
        assert_eq!(outlet_index_sk(5), "0000000005");
        assert_eq!(
            [USERS, MACS, DEVICES, EVENTS, OUTLETS, MACHINES],
            ["USERS", "MACS", "DEVICES", "EVENTS", "OUTLETS", "MACHINES"]
        );
        // The per-device listings' shards keep their stored names (`civic_store::Shards`).
        let sixteen = civic_store::Shards::new(16).unwrap();
        assert_eq!(sixteen.all(DEVICES)[1], "DEVICES#01");
        assert_eq!(sixteen.pk(EVENTS, "esp32-001"), "EVENTS#09");
        let attrs = indexed(outlet_key(5), OUTLETS, outlet_index_sk(5));
        assert_eq!(
            attrs.map(|(a, v)| format!("{a}={v}")),
            [
                "PK=OUTLET#0000000005",
                "SK=OUTLET",
                "GSI1PK=OUTLETS",
                "GSI1SK=0000000005"
            ]
        );
    }
}
