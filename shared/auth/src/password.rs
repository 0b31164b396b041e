use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use civic_core::{Error, Result};
use rand::RngCore;

/// argon2id with the crate's defaults (OWASP's 19 MiB, 2 passes), off the async threads.
pub async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(e.to_string()))
    })
    .await
}

/// Checks a password against a stored hash. With `None` (no such user) it still spends the
/// time of a real check, so response times do not reveal which accounts exist.
pub async fn verify_password(password: &str, hash: Option<&str>) -> Result<bool> {
    const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$mCJrZfmOYXZ3MqXBGpnBvw9p/eSkBXOsKkq4wW6b5Hg";
    let (password, hash, real) = (
        password.to_owned(),
        hash.unwrap_or(DECOY).to_owned(),
        hash.is_some(),
    );
    blocking(move || {
        let ok = PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        Ok(ok && real)
    })
    .await
}

/// Whether `password` is on the short list of the most common passwords (case-insensitive),
/// the ones a guesser tries first.
pub fn is_common_password(password: &str) -> bool {
    static LIST: &str = include_str!("common-passwords.txt");
    let candidate = password.trim().to_lowercase();
    LIST.lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l == candidate)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::is_common_password;

    #[test]
    fn common_passwords_are_known_whatever_their_case() {
        for p in ["password", "Password123", "QWERTY", "letmein", "P@ssw0rd"] {
            assert!(is_common_password(p), "{p}");
        }
        for p in ["Tr0ub4dor&3x", "correct horse battery staple", "", "# The"] {
            assert!(!is_common_password(p), "{p}");
        }
    }
}
