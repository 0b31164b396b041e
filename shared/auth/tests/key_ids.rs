//! Issue 15, item 10: tokens name their signing key (`kid`), a rotation keeps tokens signed
//! with the previous key valid while it is listed, and no other key is accepted: not an
//! unknown id, not another app's key, not a retired key.

use civic_auth::{Auth, TokenKind};
use civic_core::KeySet;
use jsonwebtoken::{Algorithm, EncodingKey, Header, decode_header, encode};
use serde_json::{Map, Value, json};

const OLD: &str = "old-secret-0123456789abcdef0123456789";
const NEW: &str = "new-secret-0123456789abcdef0123456789";

fn set(current: &str, keys: &[(&str, &str)]) -> KeySet {
    let keys: Map<String, Value> = keys
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    KeySet::from_json(&json!({"current": current, "keys": keys}).to_string()).unwrap()
}

fn token(auth: &Auth) -> String {
    auth.access_token("1", "admin", Map::new()).unwrap()
}

/// A token signed by hand: `kid` in the header, `key` the raw HMAC key.
fn forge(kid: Option<&str>, key: &[u8], aud: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": "1", "role": "admin", "typ": "access", "aud": aud, "iss": "civic",
        "iat": now, "exp": now + 600, "jti": "forged"});
    let header = Header {
        kid: kid.map(str::to_owned),
        ..Header::new(Algorithm::HS256)
    };
    encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap()
}

fn accepted(auth: &Auth, token: &str) -> bool {
    auth.verify(token, TokenKind::Access).is_ok()
}

#[test]
fn a_rotation_keeps_the_previous_keys_tokens_until_it_is_retired() {
    let before = Auth::new("streetlight", &set("2026-06", &[("2026-06", OLD)]));
    let old = token(&before);
    assert_eq!(decode_header(&old).unwrap().kid.as_deref(), Some("2026-06"));

    // Rotated: the new key signs, the previous one still verifies.
    let keys = set("2026-12", &[("2026-06", OLD), ("2026-12", NEW)]);
    let after = Auth::new("streetlight", &keys);
    let new = token(&after);
    assert_eq!(decode_header(&new).unwrap().kid.as_deref(), Some("2026-12"));
    assert!(accepted(&after, &old), "a token of the previous key");
    assert!(accepted(&after, &new));

    // Retired once its tokens have expired: a leftover one is refused.
    let retired = Auth::new("streetlight", &set("2026-12", &[("2026-12", NEW)]));
    assert!(!accepted(&retired, &old));
    assert!(accepted(&retired, &new));
}

#[test]
fn unknown_key_ids_and_other_apps_keys_are_refused() {
    let keys = set("2026-12", &[("2026-06", OLD), ("2026-12", NEW)]);
    let auth = Auth::new("streetlight", &keys);
    let real = keys.key("2026-12", "streetlight").unwrap();
    // The attacks below fail for the reason they name: the real key and id are accepted.
    assert!(accepted(
        &auth,
        &forge(Some("2026-12"), &real, "streetlight")
    ));

    // An id the set does not hold, even over the right key material.
    assert!(!accepted(
        &auth,
        &forge(Some("2027-01"), &real, "streetlight")
    ));
    assert!(!accepted(&auth, &forge(Some(""), &real, "streetlight")));
    // A listed id over another secret.
    assert!(!accepted(
        &auth,
        &forge(Some("2026-12"), NEW.as_bytes(), "streetlight")
    ));
    // Another app's key (same set, same id), with this app's audience written in.
    let homeforge = keys.key("2026-12", "homeforge").unwrap();
    assert!(!accepted(
        &auth,
        &forge(Some("2026-12"), &homeforge, "streetlight")
    ));
    // Another app's own token.
    let other = Auth::new("homeforge", &keys);
    assert!(!accepted(&auth, &token(&other)));

    // No id: the current key alone (operator-minted tokens); the previous key is not tried.
    assert!(accepted(&auth, &forge(None, &real, "streetlight")));
    let previous = keys.key("2026-06", "streetlight").unwrap();
    assert!(!accepted(&auth, &forge(None, &previous, "streetlight")));
}

#[test]
fn a_function_without_keys_neither_signs_nor_verifies() {
    let keyless = Auth::new("streetlight", &KeySet::empty());
    assert!(keyless.access_token("1", "admin", Map::new()).is_err());
    let keys = set("2026-12", &[("2026-12", NEW)]);
    let real = Auth::new("streetlight", &keys);
    assert!(!accepted(&keyless, &token(&real)));
}

/// The Lambda loader against moto's SSM: a SecureString key set, decrypted by SSM, read once;
/// a document that is not a key set, or a missing parameter, is a start-up error.
#[tokio::test]
async fn the_key_set_loads_from_an_ssm_secure_string() {
    use aws_sdk_ssm::types::ParameterType;
    use civic_testkit::moto;
    let ssm = aws_sdk_ssm::Client::new(&moto::aws_config().await);
    let name = format!("/civic/{}/jwt-keys", moto::unique("test"));
    let doc = json!({"current": "2026-12", "keys": {"2026-06": OLD, "2026-12": NEW}});
    ssm.put_parameter()
        .name(&name)
        .r#type(ParameterType::SecureString)
        .value(doc.to_string())
        .send()
        .await
        .unwrap();
    let keys = KeySet::from_ssm(&ssm, &name).await.unwrap();
    assert_eq!(keys.current_kid(), Some("2026-12"));
    assert_eq!(keys.kids().collect::<Vec<_>>(), ["2026-06", "2026-12"]);
    // Tokens of the previous key verify with the loaded set.
    let old = token(&Auth::new("ecoflow", &set("2026-06", &[("2026-06", OLD)])));
    assert!(accepted(&Auth::new("ecoflow", &keys), &old));

    let bad = format!("{name}-bad");
    ssm.put_parameter()
        .name(&bad)
        .r#type(ParameterType::SecureString)
        .value(OLD)
        .send()
        .await
        .unwrap();
    let err = KeySet::from_ssm(&ssm, &bad).await.unwrap_err();
    assert!(err.contains("current") && err.contains(&bad), "{err}");
    let missing = KeySet::from_ssm(&ssm, &format!("{name}-missing")).await;
    assert!(missing.unwrap_err().contains("reading the key set"));
}
