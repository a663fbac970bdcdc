//! Access tokens: minting, and authenticating a bearer string against the stored
//! hashes. A token is `cs_<id>_<secret>`: a 64-bit public id (for listing, revoking and
//! auditing) and a 256-bit random secret, of which only the SHA-256 is kept. Comparison is
//! constant-time. With 256-bit random secrets an unsalted hash is safe: there is nothing
//! to guess.

use std::collections::BTreeMap;

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{Grant, Text, Timestamp, TokenId, TokenInfo};
use crate::store::StoredToken;

const PREFIX: &str = "cs_";

/// Why a bearer string was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// Not of the `cs_<id>_<secret>` form.
    Malformed,
    /// No such token, or the secret does not match.
    Unknown,
    /// The token was revoked.
    Revoked,
    /// The token has expired.
    Expired,
}

/// Every token, by id.
#[derive(Clone, Debug, Default)]
pub struct TokenTable {
    tokens: BTreeMap<TokenId, StoredToken>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A new token for `grant`; returns the bearer string (shown once) and what is stored.
pub fn mint(
    grant: Grant,
    description: Text,
    now: Timestamp,
    ttl_ms: Option<i64>,
) -> (String, StoredToken) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    let mut rng = rand::rng();
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let (id, secret) = (hex(&id), hex(&secret));
    let bearer = format!("{PREFIX}{id}_{secret}");
    let stored = StoredToken {
        info: TokenInfo {
            // Sixteen hex digits are a valid id by construction.
            id: TokenId::parse(&id).unwrap_or_else(|_| unreachable!("hex token id")),
            grant,
            description,
            created_at: now,
            expires_at: ttl_ms
                .map(|ttl| Timestamp::from_unix_millis(now.unix_millis().saturating_add(ttl))),
            revoked_at: None,
        },
        secret_hash: hash(&secret),
    };
    (bearer, stored)
}

impl TokenTable {
    /// The table of `tokens`.
    pub fn new(tokens: impl IntoIterator<Item = StoredToken>) -> Self {
        Self {
            tokens: tokens.into_iter().map(|t| (t.info.id.clone(), t)).collect(),
        }
    }

    /// The token a bearer string proves, if it is active at `now`.
    pub fn authenticate(&self, bearer: &str, now: Timestamp) -> Result<&TokenInfo, AuthFailure> {
        let rest = bearer.strip_prefix(PREFIX).ok_or(AuthFailure::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(AuthFailure::Malformed)?;
        if id.len() != 16 || secret.len() != 64 {
            return Err(AuthFailure::Malformed);
        }
        let stored = self.tokens.get(id).ok_or(AuthFailure::Unknown)?;
        if !bool::from(stored.secret_hash.ct_eq(&hash(secret))) {
            return Err(AuthFailure::Unknown);
        }
        if stored.info.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        if !stored.info.is_active(now) {
            return Err(AuthFailure::Expired);
        }
        Ok(&stored.info)
    }

    /// True when token `id` exists and is active at `now`.
    pub fn is_active(&self, id: &TokenId, now: Timestamp) -> bool {
        self.tokens.get(id).is_some_and(|t| t.info.is_active(now))
    }

    /// Active admin tokens other than `except`.
    pub fn other_active_admins(&self, except: &TokenId, now: Timestamp) -> usize {
        self.tokens
            .iter()
            .filter(|(id, t)| {
                *id != except
                    && t.info.grant.role == crate::domain::AccessRole::Admin
                    && t.info.is_active(now)
            })
            .count()
    }

    /// Tokens by id (listings only).
    pub fn infos(&self) -> BTreeMap<TokenId, TokenInfo> {
        self.tokens
            .iter()
            .map(|(id, t)| (id.clone(), t.info.clone()))
            .collect()
    }

    /// One token's listing.
    pub fn get(&self, id: &str) -> Option<&TokenInfo> {
        self.tokens.get(id).map(|t| &t.info)
    }

    /// True when no token exists at all.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub(super) fn insert(&mut self, token: StoredToken) {
        self.tokens.insert(token.info.id.clone(), token);
    }

    pub(super) fn stored(&self, id: &str) -> Option<&StoredToken> {
        self.tokens.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccessRole;

    fn admin() -> Grant {
        Grant::parse(AccessRole::Admin, vec![], None).unwrap()
    }

    #[test]
    fn a_minted_token_authenticates_and_a_tampered_one_does_not() {
        let now = Timestamp::from_unix_millis(1_000);
        let (bearer, stored) = mint(admin(), Text::default(), now, None);
        let table = TokenTable::new([stored]);
        assert!(table.authenticate(&bearer, now).is_ok());
        let mut tampered = bearer.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            table.authenticate(&tampered, now),
            Err(AuthFailure::Unknown)
        );
        assert_eq!(
            table.authenticate("Bearer nonsense", now),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            table.authenticate("cs_short_x", now),
            Err(AuthFailure::Malformed)
        );
    }

    #[test]
    fn expired_and_revoked_tokens_fail_with_their_reason() {
        let now = Timestamp::from_unix_millis(1_000);
        let (bearer, stored) = mint(admin(), Text::default(), now, Some(500));
        let mut table = TokenTable::new([stored.clone()]);
        assert!(
            table
                .authenticate(&bearer, Timestamp::from_unix_millis(1_499))
                .is_ok()
        );
        assert_eq!(
            table.authenticate(&bearer, Timestamp::from_unix_millis(1_500)),
            Err(AuthFailure::Expired)
        );
        let mut revoked = stored;
        revoked.info.revoked_at = Some(now);
        table.insert(revoked);
        assert_eq!(table.authenticate(&bearer, now), Err(AuthFailure::Revoked));
    }

    #[test]
    fn only_the_hash_of_the_secret_is_kept() {
        let (bearer, stored) = mint(
            admin(),
            Text::default(),
            Timestamp::from_unix_millis(0),
            None,
        );
        let secret = bearer.rsplit('_').next().unwrap();
        assert_ne!(hex(&stored.secret_hash), secret);
        assert_eq!(stored.secret_hash, hash(secret));
    }
}
