use axum::extract::{FromRef, FromRequestParts};
use axum::http::{HeaderMap, request::Parts};
use civic_core::{Error, KeySet, Platform, Result};
use civic_store::{Cond, Item, Key, StoreError, Table, now_epoch};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

const ISSUER: &str = "civic";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub typ: TokenKind,
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Refresh tokens only: the session family that rotation carries forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// The account's token version when this token was issued ([`Grant::ver`]). A password
    /// change bumps the stored version, and every older token of the account stops working.
    /// Tokens from before versions existed carry none and read as 0, the version an account
    /// starts with.
    #[serde(default)]
    pub ver: i64,
    /// App-specific claims (e.g. email, city).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    pub fn extra_str(&self, name: &str) -> Option<&str> {
        self.extra.get(name).and_then(Value::as_str)
    }

    /// Refuses a token issued before the account's current token version `current` (read
    /// from the account's record, which the apps load on every request anyway).
    pub fn check_version(&self, current: i64) -> Result<()> {
        match self.ver == current {
            true => Ok(()),
            false => Err(Error::Unauthorized("Token has been revoked".into())),
        }
    }
}

/// Whom a token pair is for: the account's id, role, token version and app-specific claims.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    pub sub: String,
    pub role: String,
    /// The account record's token version (see [`Claims::ver`]).
    pub ver: i64,
    pub extra: Map<String, Value>,
}

impl Grant {
    pub fn new(sub: impl Into<String>, role: impl Into<String>, ver: i64) -> Self {
        Self {
            sub: sub.into(),
            role: role.into(),
            ver,
            extra: Map::new(),
        }
    }

    /// Adds an app-specific claim (the caller's email, city, ...).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub expires_in: i64,
}

/// One app's keys from the platform's [`KeySet`]: the current one signs and names itself in
/// the token's `kid` header; each listed one verifies the tokens that name it. A token with
/// no `kid` (minted by an operator's script, or issued before key ids) is checked against
/// the current key alone; a `kid` not in the set is refused.
#[derive(Clone)]
struct Keys {
    current: Option<(String, EncodingKey)>,
    by_kid: std::collections::HashMap<String, DecodingKey>,
    unnamed: Option<DecodingKey>,
}

impl Keys {
    fn new(set: &KeySet, app: &str) -> Self {
        let dec = |kid: &str| set.key(kid, app).map(|k| DecodingKey::from_secret(&k));
        Self {
            current: set
                .current(app)
                .map(|(kid, k)| (kid.to_owned(), EncodingKey::from_secret(&k))),
            by_kid: set
                .kids()
                .filter_map(|kid| Some((kid.to_owned(), dec(kid)?)))
                .collect(),
            unnamed: set.current_kid().and_then(dec),
        }
    }

    /// The key a token's header asks for, if the set has it.
    fn for_token(&self, token: &str) -> Option<&DecodingKey> {
        match decode_header(token).ok()?.kid {
            Some(kid) => self.by_kid.get(&kid),
            None => self.unnamed.as_ref(),
        }
    }
}

/// Issues and checks one app's tokens. The keys are scoped to the app and the audience is the
/// app's name, so another app's token fails twice over.
#[derive(Clone)]
pub struct Auth {
    app: &'static str,
    keys: std::sync::Arc<Keys>,
    validation: Validation,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
}

impl Auth {
    pub fn new(app: &'static str, keys: &KeySet) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[app]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 0;
        Self {
            app,
            keys: std::sync::Arc::new(Keys::new(keys, app)),
            validation,
            access_ttl: crate::Config::checked().access_ttl,
            refresh_ttl: crate::Config::checked().refresh_ttl,
        }
    }

    pub fn for_app(platform: &Platform, app: &'static str) -> Self {
        Self::new(app, platform.keys())
    }

    fn sign(
        &self,
        typ: TokenKind,
        grant: &Grant,
        ttl: i64,
        fam: Option<String>,
    ) -> Result<(String, Claims)> {
        let now = now_epoch();
        let claims = Claims {
            sub: grant.sub.clone(),
            role: grant.role.clone(),
            typ,
            aud: self.app.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            fam,
            ver: grant.ver,
            extra: grant.extra.clone(),
        };
        let (kid, key) = self.keys.current.as_ref().ok_or_else(|| {
            Error::Internal("this function holds no token signing key (JWT_KEYS_PARAMETER)".into())
        })?;
        let header = Header {
            kid: Some(kid.clone()),
            ..Header::new(Algorithm::HS256)
        };
        let token = encode(&header, &claims, key).map_err(|e| Error::Internal(e.to_string()))?;
        Ok((token, claims))
    }

    /// A short-lived access token only (no refresh record), at token version 0.
    pub fn access_token(&self, sub: &str, role: &str, extra: Map<String, Value>) -> Result<String> {
        let grant = Grant {
            extra,
            ..Grant::new(sub, role, 0)
        };
        Ok(self
            .sign(TokenKind::Access, &grant, self.access_ttl, None)?
            .0)
    }

    /// An access token and a refresh token; the refresh token is recorded so it can be used once.
    /// `family` continues a rotated session; `None` starts a new one.
    pub async fn issue(
        &self,
        table: &dyn Table,
        grant: &Grant,
        family: Option<String>,
    ) -> Result<Tokens> {
        let access = self
            .sign(TokenKind::Access, grant, self.access_ttl, None)?
            .0;
        let fam = family.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let sub = grant.sub.as_str();
        let (refresh, c) = self.sign(
            TokenKind::Refresh,
            grant,
            self.refresh_ttl,
            Some(fam.clone()),
        )?;
        table
            .put(
                record(
                    format!("REFRESH#{}", c.jti),
                    "REFRESH",
                    c.exp,
                    json!({"sub": sub, "fam": fam}),
                ),
                Cond::Always,
            )
            .await?;
        Ok(Tokens {
            access,
            refresh,
            expires_in: self.access_ttl,
        })
    }

    /// Verifies signature, algorithm, expiry, issuer, audience and token kind.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        let invalid = || Error::Unauthorized("Invalid or expired token".into());
        let key = self.keys.for_token(token).ok_or_else(invalid)?;
        let claims = decode::<Claims>(token, key, &self.validation)
            .map_err(|_| invalid())?
            .claims;
        if claims.typ != kind {
            return Err(Error::Unauthorized("Invalid or expired token".into()));
        }
        Ok(claims)
    }

    /// Consumes a refresh token and returns its claims, so the caller can issue the next pair
    /// in the same family. Using a token twice revokes its family: whoever holds the newer
    /// tokens (the thief or the victim) must log in again.
    pub async fn rotate(&self, table: &dyn Table, refresh: &str) -> Result<Claims> {
        let claims = self.verify(refresh, TokenKind::Refresh)?;
        let fam = claims.fam.clone().unwrap_or_default();
        let family = Key::new(format!("REFRESH_FAMILY#{fam}"), "REVOKED");
        match table
            .delete(
                &Key::new(format!("REFRESH#{}", claims.jti), "REFRESH"),
                Cond::Exists,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::ConditionFailed) => {
                let marker = record(
                    family.pk,
                    &family.sk,
                    now_epoch() + self.refresh_ttl,
                    json!({}),
                );
                table.put(marker, Cond::Always).await?;
                return Err(Error::Unauthorized(
                    "Refresh token has already been used".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        if table.get(&family).await?.is_some() {
            return Err(Error::Unauthorized("Session has been revoked".into()));
        }
        Ok(claims)
    }

    /// Logout: the refresh token can no longer be used.
    pub async fn revoke(&self, table: &dyn Table, refresh: &str) -> Result<()> {
        let claims = self.verify(refresh, TokenKind::Refresh)?;
        table
            .delete(
                &Key::new(format!("REFRESH#{}", claims.jti), "REFRESH"),
                Cond::Always,
            )
            .await?;
        Ok(())
    }

    /// The access claims of a request's `Authorization: Bearer` header.
    pub fn bearer(&self, parts: &Parts) -> Result<Claims> {
        self.bearer_headers(&parts.headers)
    }

    pub fn bearer_headers(&self, headers: &HeaderMap) -> Result<Claims> {
        let token = crate::secret::bearer_token(headers)
            .ok_or_else(|| Error::Unauthorized("Authentication token is required".into()))?;
        self.verify(token, TokenKind::Access)
    }
}

fn record(pk: String, sk: &str, expires_at: i64, fields: Value) -> Item {
    let mut item = match fields {
        Value::Object(m) => m,
        _ => Item::new(),
    };
    item.insert(civic_store::PK.into(), pk.into());
    item.insert(civic_store::SK.into(), sk.into());
    item.insert("expires_at".into(), expires_at.into());
    item
}

/// Extracting `Claims` requires a valid access token.
impl<S> FromRequestParts<S> for Claims
where
    S: Send + Sync,
    Auth: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        Auth::from_ref(state).bearer(parts)
    }
}
