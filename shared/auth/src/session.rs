//! Cookie sessions: a random id in an `HttpOnly`, `SameSite=Lax` cookie named after the app;
//! the app's table stores only the id's digest, with a TTL. Another app's cookie has another
//! name and, presented under this name, digests to nothing this table holds.

use axum::http::{HeaderMap, HeaderValue, Method, header};
use civic_core::{Error, Result};
use civic_store::{Cond, Item, Key, Table, now_epoch};
use serde_json::Value;

use crate::secret::{digest, random_secret};

/// A live session: whose it is, and the account's token version when it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub subject: String,
    pub ver: i64,
}

impl Session {
    /// Whether the session still belongs to the account whose current token version is `ver`
    /// (read from its record): a password change ends every older session.
    pub fn is_current(&self, ver: i64) -> bool {
        self.ver == ver
    }
}

#[derive(Clone, Debug)]
pub struct Sessions {
    app: &'static str,
    /// `{app}_sessionid`.
    pub cookie: String,
    /// Lifetime in seconds (`SESSION_TTL_SECS`, default two weeks).
    pub ttl: i64,
    /// `Secure` attribute (`SESSION_COOKIE_SECURE`; default on in Lambda, off elsewhere, so
    /// the local program works over plain http).
    pub secure: bool,
    /// Origins besides the request's own that may send state-changing requests with the
    /// cookie (`CSRF_TRUSTED_ORIGINS`, comma-separated, e.g. `https://app.example.com`).
    pub trusted_origins: Vec<String>,
}

impl Sessions {
    pub fn new(app: &'static str) -> Self {
        let config = crate::Config::checked();
        Self {
            app,
            cookie: format!("{app}_sessionid"),
            ttl: config.session_ttl,
            secure: config.session_secure,
            trusted_origins: config.trusted_origins.clone(),
        }
    }

    fn key(&self, id: &str) -> Key {
        Key::new(
            format!("SESSION#{}", digest(self.app, "session", id)),
            "SESSION",
        )
    }

    /// Starts a session for `subject` (e.g. a user key) at the account's token version `ver`;
    /// returns the `Set-Cookie` value. When the account's version moves on (a password
    /// change), the session is no longer the account's: see [`Session::is_current`].
    pub async fn start(&self, table: &dyn Table, subject: &str, ver: i64) -> Result<HeaderValue> {
        let id = random_secret();
        let key = self.key(&id);
        let item = Item::from_iter([
            (civic_store::PK.to_owned(), Value::from(key.pk)),
            (civic_store::SK.to_owned(), key.sk.into()),
            ("subject".to_owned(), subject.into()),
            ("ver".to_owned(), ver.into()),
            ("expires_at".to_owned(), (now_epoch() + self.ttl).into()),
        ]);
        table.put(item, Cond::NotExists).await?;
        self.set_cookie(&id, self.ttl)
    }

    /// The request's live session, if any.
    pub async fn session(&self, table: &dyn Table, headers: &HeaderMap) -> Result<Option<Session>> {
        let Some(id) = self.cookie_value(headers) else {
            return Ok(None);
        };
        let item = table.get(&self.key(id)).await?;
        Ok(item.and_then(|i| {
            Some(Session {
                subject: i.get("subject").and_then(Value::as_str)?.to_owned(),
                ver: i.get("ver").and_then(Value::as_i64).unwrap_or_default(),
            })
        }))
    }

    /// The subject of the request's live session, if any.
    pub async fn subject(&self, table: &dyn Table, headers: &HeaderMap) -> Result<Option<String>> {
        Ok(self.session(table, headers).await?.map(|s| s.subject))
    }

    /// Ends the request's session, if any; returns the `Set-Cookie` value that clears it.
    pub async fn end(&self, table: &dyn Table, headers: &HeaderMap) -> Result<HeaderValue> {
        if let Some(id) = self.cookie_value(headers) {
            table.delete(&self.key(id), Cond::Always).await?;
        }
        self.set_cookie("", 0)
    }

    fn set_cookie(&self, value: &str, max_age: i64) -> Result<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            self.cookie
        ))
        .map_err(|e| Error::Internal(e.to_string()))
    }

    /// This app's cookie among the request's `Cookie` headers.
    pub fn cookie_value<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value.trim())
            .filter(|v| !v.is_empty())
    }

    /// CSRF defence for cookie-authenticated requests, beside `SameSite=Lax`: a state-changing
    /// request that names an `Origin` must come from the request's own host or a trusted origin.
    pub fn check_origin(&self, method: &Method, headers: &HeaderMap) -> Result<()> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return Ok(());
        };
        let origin = origin.trim_end_matches('/');
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let same_host = host.is_some_and(|h| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h))
        });
        if same_host || self.trusted_origins.iter().any(|t| t == origin) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "CSRF check failed: untrusted Origin for a cookie-authenticated request".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions {
            app: "ozone",
            cookie: "ozone_sessionid".into(),
            ttl: 60,
            secure: false,
            trusted_origins: vec!["https://app.example.com".into()],
        }
    }

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.parse().unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn a_session_lives_until_it_is_ended_and_only_under_its_own_cookie() {
        let dir = tempfile::tempdir().unwrap();
        let store = civic_store::Embedded::open(dir.path()).unwrap();
        let table = store.table("t");
        let s = sessions();
        let set = s.start(&table, "USER#alice", 3).await.unwrap();
        let set = set.to_str().unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure")
        );
        let id = set.split(';').next().unwrap().split_once('=').unwrap().1;
        let with = headers(&[(header::COOKIE, &format!("a=b; ozone_sessionid={id}"))]);
        assert_eq!(
            s.subject(&table, &with).await.unwrap().as_deref(),
            Some("USER#alice")
        );
        let live = s.session(&table, &with).await.unwrap().unwrap();
        assert!(live.is_current(3) && !live.is_current(4));
        // The same id under another app's cookie name is not this app's session.
        let other = headers(&[(header::COOKIE, &format!("homeforge_sessionid={id}"))]);
        assert_eq!(s.subject(&table, &other).await.unwrap(), None);
        let cleared = s.end(&table, &with).await.unwrap();
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert_eq!(s.subject(&table, &with).await.unwrap(), None);
    }

    #[test]
    fn unsafe_requests_from_foreign_origins_are_refused() {
        let s = sessions();
        let post = Method::POST;
        let host = (header::HOST, "127.0.0.1:8000");
        assert!(
            s.check_origin(&post, &headers(std::slice::from_ref(&host)))
                .is_ok()
        );
        assert!(
            s.check_origin(
                &post,
                &headers(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:8000")])
            )
            .is_ok()
        );
        assert!(
            s.check_origin(
                &post,
                &headers(&[host.clone(), (header::ORIGIN, "https://app.example.com")])
            )
            .is_ok()
        );
        assert!(
            s.check_origin(
                &post,
                &headers(&[host.clone(), (header::ORIGIN, "https://evil.example")])
            )
            .is_err()
        );
        assert!(
            s.check_origin(
                &Method::GET,
                &headers(&[host, (header::ORIGIN, "https://evil.example")])
            )
            .is_ok()
        );
    }
}
