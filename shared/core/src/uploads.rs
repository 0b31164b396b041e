//! Direct uploads: a short-lived URL that a device `PUT`s one object of a stated size to,
//! without credentials. In Lambda it is an S3 presigned `PUT` whose signature covers
//! `Content-Type` and `Content-Length` (S3 refuses any other size), and S3 fires the template's
//! `ObjectCreated` events. In civic-local it points at civic-local itself
//! (`PUT /_uploads/{key}?expires=&length=&signature=`), signed with the platform secret:
//! civic-local checks the signature and the size, writes the blob store and fires the same
//! events ([`crate::S3Function`]). Consumers still check an object's size before reading it
//! ([`civic_store::Blob::get_capped`]): anyone with bucket write access bypasses the URL.

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
    /// Headers the upload must carry: the signed `Content-Type` and `Content-Length` (the
    /// size asked for; a body of another size is refused).
    pub headers: std::collections::BTreeMap<String, String>,
    /// The object's key in the bucket.
    pub key: String,
    /// RFC 3339; the URL is refused after this.
    pub expires_at: String,
}

impl Platform {
    /// A URL to `PUT` exactly `content_length` bytes at `key` within `ttl`. The caller has
    /// bounded `content_length` already (its own field error). `local_base` is how callers
    /// reach civic-local (`http://host:port`, from the request); Lambda ignores it.
    pub async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
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
            (Backend::Aws { s3, .. }, false) => {
                s3.get()
                    .presign_put(key, content_type, content_length, ttl)
                    .await?
            }
            _ => {
                let at = expires.unix_timestamp();
                let signature = sign(self, key, at, content_length)?;
                format!(
                    "{local_base}{LOCAL_PATH}{key}?expires={at}&length={content_length}&signature={signature}"
                )
            }
        };
        Ok(PresignedPut {
            url,
            method: "PUT",
            headers: [
                ("Content-Type".to_owned(), content_type.to_owned()),
                ("Content-Length".to_owned(), content_length.to_string()),
            ]
            .into(),
            key: key.to_owned(),
            expires_at: crate::time::rfc3339(expires),
        })
    }
}

/// Under the platform's current key (local URLs live minutes; civic-local has one key).
fn mac(p: &Platform, key: &str, expires: i64, length: u64) -> Result<Hmac<Sha256>> {
    let (_, secret) = p
        .keys()
        .current("uploads")
        .ok_or_else(|| Error::Internal("no key to sign upload URLs with".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes keys of any length");
    mac.update(format!("PUT\n{key}\n{expires}\n{length}").as_bytes());
    Ok(mac)
}

fn sign(p: &Platform, key: &str, expires: i64, length: u64) -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(mac(p, key, expires, length)?.finalize().into_bytes()))
}

/// Checks a local upload URL's signature (in constant time), covering the key, the expiry and
/// the size, and its expiry. The caller then takes exactly `length` bytes, as S3 would.
pub fn verify_local(
    p: &Platform,
    key: &str,
    expires: i64,
    length: u64,
    signature: &str,
) -> Result<()> {
    let forbidden = |why: &str| Error::Forbidden(why.to_owned());
    let given = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| forbidden("The upload signature is not valid."))?;
    mac(p, key, expires, length)?
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

    /// `(expires, length, signature)` of a local upload URL.
    fn query(url: &str) -> (i64, u64, String) {
        let q = url.split_once('?').unwrap().1;
        let field = |name: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let (e, l) = (field("expires"), field("length"));
        (e.parse().unwrap(), l.parse().unwrap(), field("signature"))
    }

    #[tokio::test]
    async fn local_urls_verify_for_their_key_and_size_only_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let key = "app/zones/1/x.jpg";
        let put = p
            .presign_put(
                key,
                "image/jpeg",
                1234,
                Duration::from_secs(60),
                "http://h:1",
            )
            .await
            .unwrap();
        assert!(
            put.url
                .starts_with("http://h:1/_uploads/app/zones/1/x.jpg?")
        );
        assert_eq!(put.headers["Content-Length"], "1234");
        assert_eq!(put.headers["Content-Type"], "image/jpeg");
        let (expires, length, sig) = query(&put.url);
        assert_eq!(length, 1234);
        verify_local(&p, key, expires, length, &sig).unwrap();
        assert!(verify_local(&p, "app/zones/2/x.jpg", expires, length, &sig).is_err());
        assert!(verify_local(&p, key, expires + 1, length, &sig).is_err());
        // The size is signed: a URL for 1234 bytes does not take a larger body.
        assert!(verify_local(&p, key, expires, 64 << 20, &sig).is_err());
        assert!(verify_local(&p, key, expires, length, "not base64!").is_err());

        // Signed correctly, but in the past.
        let past = OffsetDateTime::now_utc().unix_timestamp() - 1;
        let err = verify_local(&p, key, past, 1, &sign(&p, key, past, 1).unwrap()).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");

        // Another platform secret does not verify it.
        let other = tempfile::tempdir().unwrap();
        assert!(verify_local(&platform(other.path()), key, expires, length, &sig).is_err());
        assert!(
            p.presign_put("../etc", "image/jpeg", 1, Duration::from_secs(1), "")
                .await
                .is_err()
        );
    }
}
