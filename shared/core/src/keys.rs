//! The platform's token signing keys, each with a key id (`kid`): the current key signs, every
//! listed key verifies. A rotation adds a key and makes it current while the previous one
//! stays listed, so tokens signed before it keep working until they expire.
//!
//! In Lambda the set is an SSM SecureString parameter (`JWT_KEYS_PARAMETER`), read once at
//! init, and only functions that sign or verify tokens are given its name:
//! `{"current": "2026-12", "keys": {"2026-06": "<secret>", "2026-12": "<secret>"}}`.
//! Locally it is the one secret generated into the data dir, under the id `local`.

use std::collections::BTreeMap;

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A secret shorter than this is refused: HS256 keys should carry at least 256 bits.
pub const MIN_SECRET: usize = 32;

/// Key ids travel in token headers: short, and plain enough to log.
const MAX_KID: usize = 64;

/// Random bytes in a [`KeySet::generate`]d key, written as twice as many hex digits.
const GENERATED_BYTES: usize = 32;

#[derive(Clone, Default)]
pub struct KeySet {
    current: Option<String>,
    keys: BTreeMap<String, Vec<u8>>,
}

/// The ids only: secrets never reach a log line.
impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("current", &self.current)
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Document {
    current: String,
    keys: BTreeMap<String, String>,
}

impl KeySet {
    /// No keys: a function that neither signs nor verifies tokens.
    pub fn empty() -> Self {
        Self::default()
    }

    /// One key, current.
    pub fn single(kid: &str, secret: Vec<u8>) -> Result<Self, String> {
        check(kid, &secret)?;
        Ok(Self {
            current: Some(kid.to_owned()),
            keys: [(kid.to_owned(), secret)].into(),
        })
    }

    /// One fresh random key, current under `kid`: what `civic-local provision` and the test
    /// kit store. The secret is the text of 32 random bytes in hex, as a stored secret is the
    /// text of its document.
    pub fn generate(kid: &str) -> Result<Self, String> {
        let mut bytes = [0u8; GENERATED_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::single(kid, hex.into_bytes())
    }

    /// The parameter's JSON document, as [`Self::from_json`] reads it. Refused for a set that
    /// cannot sign, or one whose secrets are not text (as [`Self::single`] may hold).
    pub fn to_json(&self) -> Result<String, String> {
        let current = self
            .current
            .clone()
            .ok_or("the key set has no current key")?;
        let mut keys = BTreeMap::new();
        for (kid, secret) in &self.keys {
            let text = String::from_utf8(secret.clone())
                .map_err(|_| format!("key {kid:?}: the secret is not text"))?;
            keys.insert(kid.clone(), text);
        }
        serde_json::to_string(&Document { current, keys }).map_err(|e| e.to_string())
    }

    /// The parameter's JSON document; `current` must be one of `keys`.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let doc: Document = serde_json::from_str(text).map_err(|e| {
            format!("the key set is not {{\"current\": kid, \"keys\": {{kid: secret}}}}: {e}")
        })?;
        let mut keys = BTreeMap::new();
        for (kid, secret) in doc.keys {
            check(&kid, secret.as_bytes())?;
            keys.insert(kid, secret.into_bytes());
        }
        if !keys.contains_key(&doc.current) {
            return Err(format!(
                "the key set's current key {:?} is not among its keys",
                doc.current
            ));
        }
        Ok(Self {
            current: Some(doc.current),
            keys,
        })
    }

    /// Reads the set from an SSM parameter (a SecureString, decrypted by SSM).
    pub async fn from_ssm(client: &aws_sdk_ssm::Client, name: &str) -> Result<Self, String> {
        let out = client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| {
                let e = aws_sdk_ssm::error::DisplayErrorContext(&e);
                format!("reading the key set {name} from SSM: {e}")
            })?;
        let value = out
            .parameter()
            .and_then(|p| p.value())
            .ok_or_else(|| format!("the SSM parameter {name} has no value"))?;
        Self::from_json(value).map_err(|e| format!("{name}: {e}"))
    }

    /// The id of the key that signs, if this set can sign.
    pub fn current_kid(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Every key id, current or not.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Key `kid`'s material scoped to one app, so a token signed for one app never verifies
    /// in another even before its audience is checked.
    pub fn key(&self, kid: &str, app: &str) -> Option<Vec<u8>> {
        let mut k = self.keys.get(kid)?.clone();
        k.extend_from_slice(b":civic:");
        k.extend_from_slice(app.as_bytes());
        Some(k)
    }

    /// The current key's id and material for `app`.
    pub fn current(&self, app: &str) -> Option<(&str, Vec<u8>)> {
        let kid = self.current.as_deref()?;
        Some((kid, self.key(kid, app)?))
    }
}

fn check(kid: &str, secret: &[u8]) -> Result<(), String> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    if kid.is_empty() || kid.len() > MAX_KID || !kid.bytes().all(plain) {
        return Err(format!(
            "key id {kid:?}: 1 to {MAX_KID} letters, digits, '.', '_' or '-'"
        ));
    }
    if secret.len() < MIN_SECRET {
        return Err(format!(
            "key {kid:?}: the secret must be at least {MIN_SECRET} bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef-a";
    const B: &str = "0123456789abcdef0123456789abcdef-b";

    #[test]
    fn documents_parse_and_bad_ones_are_refused() {
        let set = KeySet::from_json(&format!(
            r#"{{"current": "k2", "keys": {{"k1": "{A}", "k2": "{B}"}}}}"#
        ))
        .unwrap();
        assert_eq!(set.current_kid(), Some("k2"));
        assert_eq!(set.kids().collect::<Vec<_>>(), ["k1", "k2"]);
        assert_eq!(
            set.current("ozone").unwrap().1,
            format!("{B}:civic:ozone").into_bytes()
        );
        assert_ne!(set.key("k1", "ozone"), set.key("k1", "occupancy"));
        assert_eq!(set.key("k3", "ozone"), None);
        assert!(!format!("{set:?}").contains(A), "secrets stay out of Debug");

        for bad in [
            format!(r#"{{"current": "k3", "keys": {{"k1": "{A}"}}}}"#),
            r#"{"current": "k1", "keys": {"k1": "short"}}"#.to_owned(),
            format!(r#"{{"current": "k 1", "keys": {{"k 1": "{A}"}}}}"#),
            format!(r#"{{"keys": {{"k1": "{A}"}}}}"#),
            A.to_owned(),
        ] {
            assert!(KeySet::from_json(&bad).is_err(), "{bad}");
        }
        assert!(KeySet::empty().current("ozone").is_none());
    }

    #[test]
    fn a_generated_set_is_stored_as_one_hex_key_and_reads_back() {
        let set = KeySet::generate("local").unwrap();
        let json = set.to_json().unwrap();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let secret = doc["keys"]["local"].as_str().unwrap();
        assert_eq!(
            json,
            format!(r#"{{"current":"local","keys":{{"local":"{secret}"}}}}"#)
        );
        assert_eq!(secret.len(), 64);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );

        let back = KeySet::from_json(&json).unwrap();
        assert_eq!(back.current("ozone"), set.current("ozone"));
        let other = KeySet::generate("local").unwrap();
        assert_ne!(other.current("ozone"), set.current("ozone"));

        assert!(KeySet::generate("not a kid").is_err());
        assert!(KeySet::empty().to_json().is_err());
        let binary = KeySet::single("k", vec![0xff; MIN_SECRET]).unwrap();
        assert!(binary.to_json().is_err());
    }
}
