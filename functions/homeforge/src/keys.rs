//! Every key of the `civic-homeforge` table this crate spells, one helper per kind (the layout
//! is the table in the crate's docs). Stored keys outlive the code: a string changed here
//! orphans every item written before.

use civic_store::Key;

use crate::device_types::Status;

/// Zero-padded ids sort as numbers.
pub fn sk(id: i64) -> String {
    format!("{id:010}")
}

/// The partition of every user, by id.
pub const USERS: &str = "USERS";

pub fn user_key(id: i64) -> Key {
    Key::new(USERS, sk(id))
}

/// The item that reserves a username; usernames are unique without regard to case.
pub fn username_key(username: &str) -> Key {
    Key::new(format!("USERNAME#{}", username.to_lowercase()), "USERNAME")
}

/// A user's GSI1 partition: the rooms and devices they own.
pub fn owner_pk(owner: i64) -> String {
    format!("OWNER#{owner}")
}

/// The partition of every room, by id.
pub const ROOMS: &str = "ROOMS";

pub fn room_key(id: i64) -> Key {
    Key::new(ROOMS, sk(id))
}

/// The sort-key prefix of rooms in their owner's GSI1 partition.
pub const ROOM: &str = "ROOM#";

pub fn room_index_sk(id: i64) -> String {
    format!("{ROOM}{}", sk(id))
}

/// The partition of every device, by id.
pub const DEVICES: &str = "DEVICES";

pub fn device_key(id: i64) -> Key {
    Key::new(DEVICES, sk(id))
}

/// The sort-key prefix of devices in their owner's GSI1 partition.
pub const DEVICE: &str = "DEVICE#";

pub fn device_index_sk(id: i64) -> String {
    format!("{DEVICE}{}", sk(id))
}

/// The partition of every device type, by id.
pub const TYPES: &str = "TYPES";

pub fn type_key(id: i64) -> Key {
    Key::new(TYPES, sk(id))
}

/// The GSI1 partition of the types in one review status (sorted by id).
pub fn types_with_status(status: Status) -> String {
    format!("{TYPES}#{}", status.as_str())
}

/// A proposer's partition: their copies of the types they proposed.
pub fn proposals_pk(proposer: i64) -> String {
    format!("USER#{proposer}")
}

/// The sort-key prefix of the proposer's copies.
pub const PROPOSAL: &str = "PROPOSAL#";

/// The proposer's copy, so "my proposals" is one query of their partition.
pub fn proposal_key(proposer: i64, id: i64) -> Key {
    Key::new(proposals_pk(proposer), format!("{PROPOSAL}{}", sk(id)))
}

/// The item that reserves a type's name; names are unique without regard to case.
pub fn type_name_key(name: &str) -> Key {
    Key::new(format!("TYPENAME#{}", name.to_lowercase()), "TYPENAME")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout in the crate's docs, which items already stored follow.
    #[test]
    fn keys_keep_their_stored_layout() {
        let k = |k: Key| (k.pk, k.sk);
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(k(user_key(7)), s("USERS", "0000000007"));
        assert_eq!(
            k(username_key("JohnDoe")),
            s("USERNAME#johndoe", "USERNAME")
        );
        assert_eq!(owner_pk(3), "OWNER#3");
        assert_eq!(k(room_key(2)), s("ROOMS", "0000000002"));
        assert_eq!(room_index_sk(2), "ROOM#0000000002");
        assert_eq!(k(device_key(5)), s("DEVICES", "0000000005"));
        assert_eq!(device_index_sk(5), "DEVICE#0000000005");
        assert_eq!(k(type_key(4)), s("TYPES", "0000000004"));
        assert_eq!(types_with_status(Status::Pending), "TYPES#pending");
        assert_eq!(k(proposal_key(3, 4)), s("USER#3", "PROPOSAL#0000000004"));
        assert_eq!(
            k(type_name_key("Smart Fan")),
            s("TYPENAME#smart fan", "TYPENAME")
        );
    }
}
