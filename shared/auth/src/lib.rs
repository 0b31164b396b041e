//! Credentials shared by the apps: argon2id passwords and app-scoped JWTs (HS256), with
//! rotating refresh tokens whose reuse revokes the whole session family; cookie sessions and
//! device tokens, both stored only as digests.

pub mod backoff;
mod config;
pub mod device;
pub mod first_user;
mod jwt;
mod password;
pub mod secret;
pub mod session;

pub use config::Config;
pub use jwt::{Auth, Claims, Grant, TokenKind, Tokens};
pub use password::{hash_password, is_common_password, verify_password};
pub use secret::DeviceTokens;
pub use session::{Session, Sessions};
