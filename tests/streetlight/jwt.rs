//! Attacks on tokens: each must get a 401 envelope.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::{Api, Envelope, token};

fn key(api: &Api, app: &str) -> Vec<u8> {
    let mut k = std::fs::read(api.server.data_dir.join("jwt-secret")).unwrap();
    k.extend_from_slice(format!(":civic:{app}").as_bytes());
    k
}

fn claims(aud: &str, typ: &str, exp_offset: i64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({"sub": "1", "role": "admin", "typ": typ, "aud": aud, "iss": "civic", "iat": now, "exp": now + exp_offset, "jti": "x", "email": "admin@example.com", "city": "Delhi"})
}

fn forge(key: &[u8], claims: &Value) -> String {
    encode(&Header::default(), claims, &EncodingKey::from_secret(key)).unwrap()
}

#[tokio::test]
async fn forged_expired_and_misused_tokens_are_refused() {
    let api = Api::start().await;
    let reg = api.register("admin", None, None).await;
    let good = token(&reg);
    let refresh = reg.data()["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/lights/list", &good).await.status, 200);
    // A token we sign ourselves with the real key is accepted: the attacks below fail for
    // the reason they name, not because forging is broken.
    assert_eq!(
        api.get(
            "/lights/list",
            &forge(
                &key(&api, "streetlight"),
                &claims("streetlight", "access", 600)
            )
        )
        .await
        .status,
        200
    );
    for (name, t) in attacks(&api, &good, &refresh) {
        let r = api.get("/lights/list", &t).await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        r.assert_error(401);
    }
    // An access token cannot be used to refresh.
    api.post("/auth/refresh", None, json!({"refreshToken": good}))
        .await
        .assert_error(401);
}

/// Tokens made from a real access token `good` and refresh token `refresh`, or forged, each
/// wrong for the one reason it is named by.
fn attacks(api: &Api, good: &str, refresh: &str) -> [(&'static str, String); 9] {
    let (header, payload, _) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let none_header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
    [
        ("alg none", format!("{none_header}.{payload}.")),
        (
            "tampered payload",
            format!(
                "{header}.{}.{}",
                B64.encode(claims("streetlight", "access", 600).to_string()),
                good.rsplit('.').next().unwrap()
            ),
        ),
        (
            "tampered signature",
            format!("{header}.{payload}.{}", B64.encode([7u8; 32])),
        ),
        (
            "expired",
            forge(
                &key(api, "streetlight"),
                &claims("streetlight", "access", -10),
            ),
        ),
        ("refresh as access", refresh.to_owned()),
        (
            "another app's token",
            forge(&key(api, "ozone"), &claims("ozone", "access", 600)),
        ),
        (
            "another app's audience",
            forge(&key(api, "streetlight"), &claims("ozone", "access", 600)),
        ),
        (
            "another app's key",
            forge(&key(api, "ozone"), &claims("streetlight", "access", 600)),
        ),
        (
            "wrong secret",
            forge(
                b"an-entirely-different-secret-of-32-bytes",
                &claims("streetlight", "access", 600),
            ),
        ),
    ]
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_session() {
    let api = Api::start().await;
    let reg = api.register("admin", None, None).await;
    let r1 = reg.data()["refreshToken"].as_str().unwrap().to_owned();
    let next = api
        .post("/auth/refresh", None, json!({"refreshToken": r1}))
        .await;
    assert_eq!(next.status, 200, "{}", next.body);
    let (access2, r2) = (
        next.data()["token"].as_str().unwrap().to_owned(),
        next.data()["refreshToken"].as_str().unwrap().to_owned(),
    );
    assert_ne!(r1, r2);
    assert_eq!(api.get("/lights/list", &access2).await.status, 200);

    // Replaying r1 is refused, and it revokes r2's session too.
    api.post("/auth/refresh", None, json!({"refreshToken": r1}))
        .await
        .assert_error(401);
    api.post("/auth/refresh", None, json!({"refreshToken": r2}))
        .await
        .assert_error(401);
    api.post("/auth/refresh", None, json!({}))
        .await
        .assert_error(400);

    // Logout revokes a refresh token.
    let login = api
        .post(
            "/auth/login",
            None,
            json!({"email": "admin@example.com", "password": "password123"}),
        )
        .await;
    let r3 = login.data()["refreshToken"].as_str().unwrap().to_owned();
    assert_eq!(
        api.post("/auth/logout", None, json!({"refreshToken": r3}))
            .await
            .status,
        200
    );
    api.post("/auth/refresh", None, json!({"refreshToken": r3}))
        .await
        .assert_error(401);
}
