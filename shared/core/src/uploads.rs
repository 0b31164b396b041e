//! Direct uploads: a short-lived URL that a device `PUT`s one object to, without credentials.
//! In Lambda it is an S3 presigned `PUT`, and S3 fires the template's `ObjectCreated` events.
//! In civic-local it points at civic-local itself (`PUT /_uploads/{key}?expires=&signature=`),
//! signed with the platform secret: civic-local checks the signature, writes the blob store and
//! fires the same events ([`crate::S3Function`]).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use civic_store::Backend;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::{Error, Platform, Result};

/// civic-local's upload route (the rest of the path is the key).
pub const LOCAL_PATH: &str = "/_uploads/";

/// How the caller reached this service (`scheme://host`), for civic-local's own upload URLs.
pub fn request_base(headers: &http::HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("host").unwrap_or("127.0.0.1");
    format!("{scheme}://{host}")
}

/// Where and how to upload.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PresignedPut {
    pub url: String,
    /// Always `PUT`.
    pub method: &'static str,
    /// Headers the upload must carry (the signed `Content-Type`).
    pub headers: std::collections::BTreeMap<String, String>,
    /// The object's key in the bucket.
    pub key: String,
    /// RFC 3339; the URL is refused after this.
    pub expires_at: String,
}

impl Platform {
    /// A URL to `PUT` `key` at within `ttl`. `local_base` is how callers reach civic-local
    /// (`http://host:port`, from the request); Lambda ignores it.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        ttl: Duration,
        local_base: &str,
    ) -> Result<PresignedPut> {
        let safe = key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
            && key.split('/').all(|seg| !matches!(seg, "" | "." | ".."));
        if !safe {
            return Err(Error::Internal(format!("unsafe upload key {key:?}")));
        }
        let expires = OffsetDateTime::now_utc() + ttl;
        let url = match (&self.backend, self.is_local()) {
            (Backend::Aws { blobs, .. }, false) => {
                blobs.presign_put(key, content_type, ttl).await?
            }
            _ => {
                let at = expires.unix_timestamp();
                let signature = sign(self, key, at);
                format!("{local_base}{LOCAL_PATH}{key}?expires={at}&signature={signature}")
            }
        };
        Ok(PresignedPut {
            url,
            method: "PUT",
            headers: [("Content-Type".to_owned(), content_type.to_owned())].into(),
            key: key.to_owned(),
            expires_at: crate::time::rfc3339(expires),
        })
    }
}

fn mac(p: &Platform, key: &str, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&p.signing_key("uploads"))
        .expect("HMAC takes keys of any length");
    mac.update(format!("PUT\n{key}\n{expires}").as_bytes());
    mac
}

fn sign(p: &Platform, key: &str, expires: i64) -> String {
    URL_SAFE_NO_PAD.encode(mac(p, key, expires).finalize().into_bytes())
}

/// Checks a local upload URL's signature (in constant time) and expiry.
pub fn verify_local(p: &Platform, key: &str, expires: i64, signature: &str) -> Result<()> {
    let forbidden = |why: &str| Error::Forbidden(why.to_owned());
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| forbidden("The upload signature is not valid."))?;
    mac(p, key, expires)
        .verify_slice(&given)
        .map_err(|_| forbidden("The upload signature is not valid."))?;
    if OffsetDateTime::now_utc().unix_timestamp() > expires {
        return Err(forbidden("The upload URL has expired."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(dir: &std::path::Path) -> Platform {
        let backend = Backend::embedded(dir).unwrap();
        Platform::local(dir, backend, crate::Limits::default()).unwrap()
    }

    fn query(url: &str) -> (i64, String) {
        let q = url.split_once('?').unwrap().1;
        let (e, s) = q.split_once('&').unwrap();
        (
            e.strip_prefix("expires=").unwrap().parse().unwrap(),
            s.strip_prefix("signature=").unwrap().to_owned(),
        )
    }

    #[tokio::test]
    async fn local_urls_verify_for_their_key_only_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let key = "app/zones/1/x.jpg";
        let put = p
            .presign_put(key, "image/jpeg", Duration::from_secs(60), "http://h:1")
            .await
            .unwrap();
        assert!(
            put.url
                .starts_with("http://h:1/_uploads/app/zones/1/x.jpg?")
        );
        let (expires, sig) = query(&put.url);
        verify_local(&p, key, expires, &sig).unwrap();
        assert!(verify_local(&p, "app/zones/2/x.jpg", expires, &sig).is_err());
        assert!(verify_local(&p, key, expires + 1, &sig).is_err());
        assert!(verify_local(&p, key, expires, "not base64!").is_err());

        // Signed correctly, but in the past.
        let past = OffsetDateTime::now_utc().unix_timestamp() - 1;
        let err = verify_local(&p, key, past, &sign(&p, key, past)).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");

        // Another platform secret does not verify it.
        let other = tempfile::tempdir().unwrap();
        assert!(verify_local(&platform(other.path()), key, expires, &sig).is_err());
        assert!(
            p.presign_put("../etc", "image/jpeg", Duration::from_secs(1), "")
                .await
                .is_err()
        );
    }
}
