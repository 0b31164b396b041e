//! Random bearer secrets (device tokens, session ids) and the digests that are stored instead
//! of them: a leaked table then holds nothing a client could present.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, URL-safe base64 (43 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256 of `secret`, scoped to `app` (and a purpose such as `device` or `session`),
/// so one app's secret digests to nothing another app stores. The secrets carry 256 random
/// bits, so a fast hash is enough: there is nothing to brute-force.
pub fn digest(app: &str, purpose: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    for part in ["civic", app, purpose, secret] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The secret of an `Authorization: Bearer` header, if there is one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Device tokens: a random secret handed to the device; the store keeps [`DeviceTokens::digest`].
#[derive(Clone, Copy, Debug)]
pub struct DeviceTokens {
    pub app: &'static str,
}

impl DeviceTokens {
    pub fn new(app: &'static str) -> Self {
        Self { app }
    }
    /// A new token and the digest to store for it.
    pub fn issue(&self) -> (String, String) {
        let token = random_secret();
        let stored = self.digest(&token);
        (token, stored)
    }
    pub fn digest(&self, token: &str) -> String {
        digest(self.app, "device", token)
    }
    /// Whether `token` is the one whose digest is `stored`.
    pub fn matches(&self, token: &str, stored: &str) -> bool {
        constant_time_eq(&self.digest(token), stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_their_digests_are_app_scoped() {
        let a = DeviceTokens::new("ozone");
        let (token, stored) = a.issue();
        assert_eq!(token.len(), 43);
        assert_ne!(a.issue().0, token);
        assert!(a.matches(&token, &stored));
        assert!(!a.matches(&format!("{token}x"), &stored));
        assert!(!DeviceTokens::new("homeforge").matches(&token, &stored));
        assert_ne!(digest("ozone", "session", &token), stored);
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc ".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }
}
