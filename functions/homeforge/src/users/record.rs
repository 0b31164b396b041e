//! The stored user, its keys, and the user as the API shows it.

use civic_core::Result;
use civic_core::item::to_item;
use civic_store::{Item, PK, SK, Table, Typed};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::Role;
pub use crate::keys::{user_key, username_key};

pub const DEFAULT_ACCENT: &str = "#3B82F6";
pub(super) const AVATARS: &str = "homeforge/avatars/";

#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    /// The first user's Django-admin rights.
    pub is_superuser: bool,
    /// Blob key of the avatar, if any.
    pub avatar: Option<String>,
    pub accent_color: String,
    pub password_hash: String,
    pub date_joined: String,
    #[serde(default)]
    pub version: i64,
    /// Bumped by a password change: every token issued before it stops working.
    #[serde(default)]
    pub token_version: i64,
}

/// A user as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_superuser: bool,
    pub profile: Profile,
}

#[derive(Serialize, ToSchema)]
pub struct Profile {
    /// Absolute URL of the avatar (`{base}/media/avatars/{file}`), or null.
    pub avatar: Option<String>,
    pub role: Role,
    pub accent_color: String,
}

impl UserRecord {
    pub fn to_item(&self) -> Result<Item> {
        let key = user_key(self.id);
        to_item(self, &[(PK, key.pk), (SK, key.sk)])
    }

    /// The item that reserves this user's username.
    pub fn username_item(&self) -> Item {
        let key = username_key(&self.username);
        let mut item = Item::new();
        item.insert(PK.into(), key.pk.into());
        item.insert(SK.into(), key.sk.into());
        item.insert("id".into(), self.id.into());
        item
    }

    pub async fn load(table: &dyn Table, id: i64) -> Result<Option<Self>> {
        Ok(table.get_as(&user_key(id)).await?)
    }

    pub async fn by_username(table: &dyn Table, username: &str) -> Result<Option<Self>> {
        let id = table
            .get(&username_key(username.trim()))
            .await?
            .and_then(|m| m.get("id").and_then(Value::as_i64));
        match id {
            Some(id) => Self::load(table, id).await,
            None => Ok(None),
        }
    }

    pub fn out(&self, base: &str) -> UserOut {
        UserOut {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            is_superuser: self.is_superuser,
            profile: Profile {
                avatar: self
                    .avatar
                    .as_deref()
                    .map(|key| format!("{base}/media/avatars/{}", key.trim_start_matches(AVATARS))),
                role: self.role,
                accent_color: self.accent_color.clone(),
            },
        }
    }
}
