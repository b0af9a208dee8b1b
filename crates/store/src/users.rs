//! Users, roles and API tokens. Secrets never reach the database: a token is stored as its
//! SHA-256 (tokens are long random strings, so a fast hash is enough), a password only as the
//! PHC string the caller made with a slow hash (argon2).

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{Result, Role, Store, StoreError, check_text, conflict, from_row, now_ms, on_pool};

/// An account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The PHC string to verify a password against; `None` when the account has no password.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub created_ms: i64,
}

from_row!(User, row => {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: row
            .try_get::<String, _>("role")?
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        password_hash: row.try_get("password_hash")?,
        created_ms: row.try_get("created_ms")?,
    })
});

/// A token just issued. `token` is the only copy of the secret: show it once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: i64,
    pub token: String,
}

/// Prefix of every token, so a leaked one is recognisable (secret scanners, logs).
const TOKEN_PREFIX: &str = "rjt_";

/// The stored form of an API token: lowercase hex SHA-256 of its text.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    /// Adds an account. `password_hash` must be a PHC string (`$argon2id$…`), never a password.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password_hash: Option<&str>,
    ) -> Result<i64> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("a user needs a name".into()));
        }
        check_text("user name", name)?;
        if let Some(hash) = password_hash
            && (!hash.starts_with('$') || hash.contains('\0'))
        {
            return Err(StoreError::Invalid(
                "password_hash must be a PHC hash string, not a password".into(),
            ));
        }
        let sql = "INSERT INTO users (name, role, password_hash, created_ms) \
             VALUES ($1, $2, $3, $4) RETURNING id";
        let id = on_pool!(self, pool => {
            sqlx::query_scalar(sql)
                .bind(name)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(now_ms())
                .fetch_one(pool)
                .await
                .map_err(|e| conflict(e, || format!("user {name:?}")))?
        });
        Ok(id)
    }

    /// The account called `name`.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        check_text("user name", name)?;
        let sql = "SELECT id, name, role, password_hash, created_ms FROM users WHERE name = $1";
        let user =
            on_pool!(self, pool => sqlx::query_as(sql).bind(name).fetch_optional(pool).await?);
        Ok(user)
    }

    /// Creates a new API token for `user_id`, labelled `label` (what it is for). Only its hash
    /// is stored.
    pub async fn issue_token(&self, user_id: i64, label: &str) -> Result<IssuedToken> {
        check_text("token label", label)?;
        let mut secret = [0u8; 32];
        // ThreadRng is a CSPRNG seeded from the operating system.
        rand::rng().fill(&mut secret);
        let token: String = std::iter::once(TOKEN_PREFIX.to_string())
            .chain(secret.iter().map(|b| format!("{b:02x}")))
            .collect();
        let sql = "INSERT INTO api_tokens (user_id, label, token_hash, created_ms) \
             VALUES ($1, $2, $3, $4) RETURNING id";
        let id = on_pool!(self, pool => {
            sqlx::query_scalar(sql)
                .bind(user_id)
                .bind(label)
                .bind(hash_token(&token))
                .bind(now_ms())
                .fetch_one(pool)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        StoreError::NoSuchUser(user_id)
                    }
                    _ => StoreError::Db(e),
                })?
        });
        Ok(IssuedToken { id, token })
    }

    /// The account a presented API token belongs to, when the token is known and not revoked.
    /// Records the token's use.
    pub async fn user_for_token(&self, token: &str) -> Result<Option<User>> {
        let touch = "UPDATE api_tokens SET last_used_ms = $2 \
             WHERE token_hash = $1 AND revoked = $3 RETURNING user_id";
        let get = "SELECT id, name, role, password_hash, created_ms FROM users WHERE id = $1";
        let hash = hash_token(token);
        let user = on_pool!(self, pool => {
            let user_id: Option<i64> = sqlx::query_scalar(touch)
                .bind(&hash)
                .bind(now_ms())
                .bind(false)
                .fetch_optional(pool)
                .await?;
            match user_id {
                Some(uid) => sqlx::query_as(get).bind(uid).fetch_optional(pool).await?,
                None => None,
            }
        });
        Ok(user)
    }

    /// Revokes token `id`; returns whether it existed and was live.
    pub async fn revoke_token(&self, id: i64) -> Result<bool> {
        let sql = "UPDATE api_tokens SET revoked = $2 WHERE id = $1 AND revoked = $3";
        let n = on_pool!(self, pool => {
            sqlx::query(sql).bind(id).bind(true).bind(false).execute(pool).await?.rows_affected()
        });
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_hex_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
