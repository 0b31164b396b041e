//! The device gateway: handshake by MAC, idempotent device events and the legacy form ingest
//! (device admin is in `devices`).
//!
//! A device claims its token with a handshake once staff have assigned its MAC a device id: a
//! fresh random token whose digest is stored on the device (one live token per device). After
//! that, knowing the MAC is not enough: only the device's current token renews it, and staff
//! rotate or revoke it (`OZONE_HANDSHAKE_REISSUE=true` restores the seed's reissue to anyone).
//! A token speaks only for the device whose record holds its digest. The legacy form names a
//! device by MAC, so it needs that device's token too, unless staff allowed the device's
//! token-less reports (recorded on the device, with who and when).

mod device;
mod events;
mod handshake;
mod ingest;
mod legacy;

use civic_core::fields::Body;
use civic_core::{Error, Result};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::State;

pub(crate) use self::device::attribute;
pub use self::device::{
    CERTIFICATE, Certificate, Device, DeviceRecord, LAST_RECEIPT, LEGACY_INGEST, LegacyIngest,
    TOKEN_DIGEST, touch,
};
pub use self::events::{Ack, DeviceEvent, Sender, accept_event, device_message};
use self::handshake::contact;
pub use self::handshake::{HandshakeReply, HandshakeRequest};
use self::ingest::status_update;
pub use self::ingest::{Event, Stored, ingest, receipt_stamp};
pub use self::legacy::LegacyForm;
pub use crate::keys::device_key;

pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(handshake::handshake))
        .routes(routes!(events::device_events))
        .routes(routes!(legacy::legacy_ingest))
        .merge(crate::devices::routes())
}

/// `EC:E3:34:46:2B:C0`, `ec-e3-34-46-2b-c0` or `ece334462bc0` → `EC:E3:34:46:2B:C0`.
pub fn normalize_mac(field: &str, mac: &str) -> Result<String> {
    let hex: String = mac
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-'))
        .collect();
    let separators = mac.trim().len() - hex.len();
    if hex.len() != 12
        || !hex.chars().all(|c| c.is_ascii_hexdigit())
        || !matches!(separators, 0 | 5)
    {
        return Err(Error::field(
            field,
            "Enter a valid MAC address, e.g. EC:E3:34:46:2B:C0.",
        ));
    }
    let hex = hex.to_ascii_uppercase();
    Ok((0..6)
        .map(|i| &hex[i * 2..i * 2 + 2])
        .collect::<Vec<_>>()
        .join(":"))
}

/// A body's `firmware` version: optional, blank as absent, at most 64 bytes.
fn firmware(b: &mut Body) -> Option<String> {
    let f = b.typed::<String>("firmware", false)?.trim().to_owned();
    if f.len() > 64 {
        b.error(
            "firmware",
            "Ensure this field has no more than 64 characters.",
        );
        return None;
    }
    Some(f).filter(|f| !f.is_empty())
}

pub(crate) fn missing_device() -> Error {
    Error::Conflict("The device record is missing; ask an admin to re-assign it".into())
}

#[cfg(test)]
mod tests {
    use super::normalize_mac;

    #[test]
    fn macs_are_normalized_and_checked() {
        for ok in [
            "EC:E3:34:46:2B:C0",
            "ec-e3-34-46-2b-c0",
            "ece334462bc0",
            " EC:E3:34:46:2b:c0 ",
        ] {
            assert_eq!(
                normalize_mac("mac", ok).unwrap(),
                "EC:E3:34:46:2B:C0",
                "{ok}"
            );
        }
        for bad in [
            "",
            "EC:E3:34:46:2B",
            "EC:E3:34:46:2B:C0:11",
            "GG:E3:34:46:2B:C0",
            "EC:E3:34:462B:C0",
            "EC::E3:34:46:2B:C0",
        ] {
            assert!(normalize_mac("mac", bad).is_err(), "{bad}");
        }
    }
}
