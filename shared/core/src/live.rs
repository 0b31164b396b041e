//! Live updates: after a change is stored, the platform publishes the entity's new state on an
//! MQTT topic under `{app}/live/...`, and browsers subscribe over MQTT-over-WebSocket
//! (civic-local's `/mqtt`, IoT Core's WSS endpoint on AWS). One mechanism in both places: the
//! apps publish through the platform's [`Publisher`], and who may subscribe to what is decided
//! by the app's [`LiveScope`], which civic-local's WebSocket gate and the AWS IoT custom
//! authorizer both call.
//!
//! Every message is an [`Envelope`] whose `seq` grows with each change of its entity, so a
//! client that reconnects re-reads through the REST API and drops whatever is not newer.
//!
//! Publishing is best effort, after the commit: a change is never refused or undone because a
//! browser could not be told; the REST API stays the truth.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use civic_iot::Publisher;
use serde::Serialize;

use crate::{Platform, Result};

/// How long a change waits for its live message to be handed over, at most. Locally it is
/// queued in memory; on AWS it is one IoT data-plane call.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);

/// The second topic level that marks a live topic: `{app}/live/...`.
pub const LEVEL: &str = "live";

/// The filter every live topic of every app matches. Devices may neither publish nor
/// subscribe to anything it overlaps: live topics are the platform's.
pub const ALL: &str = "+/live/#";

/// One live message.
#[derive(Serialize)]
pub struct Envelope<'a, T: Serialize> {
    /// The envelope's format version.
    pub v: u8,
    pub app: &'a str,
    /// What `data` is (`light`, `summary`, ...), as documented per app.
    pub kind: &'a str,
    /// Grows with every change of the entity the topic names.
    pub seq: i64,
    /// When it was published (RFC 3339).
    pub at: String,
    /// The entity as the app's REST API returns it.
    pub data: &'a T,
}

/// An app's live publisher ([`Platform::live`]).
#[derive(Clone)]
pub struct Live {
    app: &'static str,
    publisher: Arc<dyn Publisher>,
}

impl Live {
    pub fn new(app: &'static str, publisher: Arc<dyn Publisher>) -> Self {
        Self { app, publisher }
    }

    /// The topic of `path` (levels already made safe with [`segment`]).
    pub fn topic(&self, path: &str) -> String {
        format!("{}/{LEVEL}/{path}", self.app)
    }

    /// Publishes `data` on `{app}/live/{path}`; failures are logged, never returned.
    pub async fn send<T: Serialize>(&self, path: &str, kind: &str, seq: i64, data: &T) {
        let topic = self.topic(path);
        let envelope = Envelope {
            v: 1,
            app: self.app,
            kind,
            seq,
            at: crate::time::now_rfc3339(),
            data,
        };
        let payload = match serde_json::to_value(&envelope) {
            Ok(p) => p,
            Err(e) => return tracing::error!(%topic, error = %e, "encoding a live message"),
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.publisher.publish(&topic, &payload)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(%topic, error = %e, "live message not published"),
            Err(_) => tracing::warn!(%topic, "live message not published within 250 ms"),
        }
    }
}

/// A topic level from a value: MQTT gives `/`, `+` and `#` meaning, so they (and `%`, and
/// spaces, which IoT policies dislike) are percent-encoded.
pub fn segment(value: &str) -> Cow<'_, str> {
    if !value.contains(['/', '+', '#', '%', ' ']) && !value.is_empty() {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '/' | '+' | '#' | '%' | ' ' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    Cow::Owned(out)
}

/// What a live subscriber may do, as its app decided from the credential it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveAccess {
    /// Who it is, for logs and IoT Core's `principalId` (`[A-Za-z0-9]{1,128}`).
    pub principal: String,
    /// The topic filters it may subscribe within ([`civic_iot::topic::covers`]).
    pub filters: Vec<String>,
    /// When the grant ends (Unix seconds): the credential's own expiry.
    pub expires_at: i64,
}

impl LiveAccess {
    /// `who` (its parts, see [`principal`]) of `app` may read within `filters` until
    /// `expires_at`.
    pub fn new(app: &str, who: &str, filters: Vec<String>, expires_at: i64) -> Self {
        Self {
            principal: principal(&[app, who]),
            filters,
            expires_at,
        }
    }

    /// `who` may read every live topic of `app` (`{app}/live/#`) until `expires_at`.
    pub fn everything(app: &str, who: &str, expires_at: i64) -> Self {
        Self::new(app, who, vec![format!("{app}/{LEVEL}/#")], expires_at)
    }
}

pub type AccessFuture = Pin<Box<dyn Future<Output = Result<Option<LiveAccess>>> + Send>>;

/// Checks a subscriber's credential (the MQTT password): `Ok(None)` refuses it, an error
/// means the store could not say.
pub type LiveAuthorizer = Arc<dyn Fn(String) -> AccessFuture + Send + Sync>;

/// An app's live topics: who may read which. The MQTT user name is the app's name.
pub struct LiveScope {
    /// The app, whose name is the MQTT user name; its settings are checked at start-up.
    pub app: crate::App,
    /// Built once per process.
    pub authorizer: fn(&Platform) -> LiveAuthorizer,
}

/// The one authorizer skeleton: `f` gets a clone of the app's state and the credential.
pub fn authorizer<S, F, Fut>(state: S, f: F) -> LiveAuthorizer
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<LiveAccess>>> + Send + 'static,
{
    Arc::new(move |secret| Box::pin(f(state.clone(), secret)))
}

/// A principal id IoT Core accepts: the letters and digits of `parts`, at most 128.
pub fn principal(parts: &[&str]) -> String {
    let id: String = parts
        .iter()
        .flat_map(|p| p.chars())
        .filter(char::is_ascii_alphanumeric)
        .take(128)
        .collect();
    if id.is_empty() {
        "anonymous".into()
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_add_levels_or_wildcards() {
        assert_eq!(segment("delhi"), "delhi");
        assert_eq!(segment("new york"), "new%20york");
        assert_eq!(segment("a/b+#%"), "a%2Fb%2B%23%25");
        assert_eq!(segment(""), "%00");
    }

    #[test]
    fn principals_are_what_iot_core_accepts() {
        assert_eq!(principal(&["streetlight", "u-1_2"]), "streetlightu12");
        assert_eq!(principal(&["--"]), "anonymous");
        assert_eq!(principal(&[&"x".repeat(300)]).len(), 128);
    }

    #[test]
    fn envelopes_carry_app_kind_seq_and_data() {
        let data = serde_json::json!({"status": "on"});
        let e = Envelope {
            v: 1,
            app: "streetlight",
            kind: "light",
            seq: 7,
            at: "2026-12-04T00:00:00Z".into(),
            data: &data,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["data"]["status"], "on");
        assert_eq!(v["kind"], "light");
    }
}
