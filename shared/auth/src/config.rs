//! The credential settings every app shares, read once per process (see the README's
//! configuration table).

use std::sync::OnceLock;

use civic_core::config::{self, ConfigError, Env, FromEnv};

use crate::backoff::Backoff;

#[derive(Clone, Debug)]
pub struct Config {
    /// Access-token lifetime in seconds (`ACCESS_TOKEN_TTL_SECS`, default an hour).
    pub access_ttl: i64,
    /// Refresh-token lifetime in seconds (`REFRESH_TOKEN_TTL_SECS`, default two weeks).
    pub refresh_ttl: i64,
    /// Cookie-session lifetime in seconds (`SESSION_TTL_SECS`, default two weeks).
    pub session_ttl: i64,
    /// The session cookie's `Secure` attribute (`SESSION_COOKIE_SECURE`; default on in Lambda,
    /// off elsewhere, so the local program works over plain http).
    pub session_secure: bool,
    /// Origins besides the request's own that may send state-changing requests with the
    /// cookie (`CSRF_TRUSTED_ORIGINS`, comma-separated, e.g. `https://app.example.com`).
    pub trusted_origins: Vec<String>,
    /// Login backoff (`AUTH_BACKOFF_FREE`, `AUTH_BACKOFF_BASE_SECS`, `AUTH_BACKOFF_MAX_SECS`).
    pub backoff: Backoff,
}

impl FromEnv for Config {
    fn from_env(env: &mut Env) -> Self {
        let d = Backoff::default();
        Self {
            access_ttl: env.get("ACCESS_TOKEN_TTL_SECS", 3600),
            refresh_ttl: env.get("REFRESH_TOKEN_TTL_SECS", 14 * 86400),
            session_ttl: env.get("SESSION_TTL_SECS", 14 * 86400),
            session_secure: env.get("SESSION_COOKIE_SECURE", config::in_lambda()),
            trusted_origins: env
                .list("CSRF_TRUSTED_ORIGINS")
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            backoff: Backoff {
                free: env.get("AUTH_BACKOFF_FREE", d.free).max(0),
                base: env.get("AUTH_BACKOFF_BASE_SECS", d.base).max(1),
                max: env.get("AUTH_BACKOFF_MAX_SECS", d.max).max(1),
            },
        }
    }
}

impl Config {
    /// The process's settings; the start-up check reads them first, so a bad value has
    /// already stopped the start before a request gets here.
    pub fn get() -> Result<&'static Self, ConfigError> {
        static CONFIG: OnceLock<Result<Config, ConfigError>> = OnceLock::new();
        config::once(&CONFIG)
    }

    /// [`Config::get`] past the start-up check.
    pub fn checked() -> &'static Self {
        Self::get().unwrap_or_else(|e| panic!("{e}"))
    }
}
