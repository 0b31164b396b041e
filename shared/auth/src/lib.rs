//! Credentials shared by the apps: argon2id passwords and app-scoped JWTs (HS256), with
//! rotating refresh tokens whose reuse revokes the whole session family.

mod jwt;
mod password;

pub use jwt::{Auth, Claims, TokenKind, Tokens};
pub use password::{hash_password, verify_password};
