//! `AccessService` (admin only, by the access rules): tokens and the audit trail. The
//! rules live here: how long a token may live, and what each call records about whom.

use std::sync::Arc;

use crate::domain::{AuditEvent, FieldViolation, Grant, Text, Timestamp, TokenId, TokenInfo};
use crate::engine::Engine;
/// A backup as it is streamed, its manifest, and an audit query: as the store has them;
/// why a token was refused.
pub use crate::engine::{AuthFailure, BackupFile};
use crate::error::{Error, Result};
pub use crate::store::{AuditFilter, Manifest};

use super::Answer;
use super::page::{self, PageRequest};

/// Longest a token may live: 100 years, so that an expiry is always a valid timestamp.
pub const MAX_TOKEN_TTL_SECONDS: u64 = 100 * 365 * 86_400;

/// A token to create.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// What it grants.
    pub grant: Grant,
    /// What it is for.
    pub description: Text,
    /// Lifetime in seconds; 0: no expiry.
    pub ttl_seconds: u64,
}

/// A question for audit events.
#[derive(Clone, Debug)]
pub struct AuditQuery {
    /// Which events.
    pub filter: AuditFilter,
    /// Page size (0: 100).
    pub page_size: u32,
    /// Token of the page to continue.
    pub page_token: String,
    /// What the page token is bound to (the filter as asked).
    pub bound_to: String,
}

/// One page of audit events, newest first.
#[derive(Clone, Debug)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditEvent>,
    /// Where the next page starts (the sequence to continue before).
    pub next: Option<u64>,
}

/// The access service.
pub struct Access {
    engine: Arc<Engine>,
}

impl Access {
    /// The service over `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// The token `bearer` names, if it is valid now: its id and what it grants.
    pub fn authenticate(&self, bearer: &str) -> Result<(TokenId, Grant), AuthFailure> {
        let snapshot = self.engine.snapshot();
        let info = snapshot.tokens.authenticate(bearer, Timestamp::now())?;
        Ok((info.id.clone(), info.grant.clone()))
    }

    /// Appends `event` to the audit trail; durable when this returns.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.engine.record_audit(event).await
    }

    /// A consistent backup of the store, in a file of the data directory removed when the
    /// returned value is dropped. Subjects: none (it holds everyone).
    pub async fn backup(&self) -> Result<BackupFile> {
        self.engine.backup().await
    }

    /// Creates a token; returns its secret (shown once) and its record. Subjects: the
    /// teams and person it is bound to.
    pub async fn create_token(&self, token: NewToken) -> Result<Answer<(String, TokenInfo)>> {
        // Capped so that an expiry is always a representable protobuf timestamp.
        let ttl_ms = match token.ttl_seconds {
            0 => None,
            s if s <= MAX_TOKEN_TTL_SECONDS => Some(i64::try_from(s).unwrap_or(i64::MAX) * 1000),
            _ => {
                return Err(Error::InvalidArgument(vec![FieldViolation::new(
                    "ttl_seconds",
                    "must be at most 3,153,600,000 (100 years)",
                )]));
            }
        };
        let mut subjects: Vec<String> = token.grant.teams.iter().map(ToString::to_string).collect();
        subjects.extend(token.grant.person.iter().map(ToString::to_string));
        let created = self
            .engine
            .create_token(token.grant, token.description, ttl_ms)
            .await?;
        Ok(Answer::new(created, subjects))
    }

    /// Revokes a token. Subject: the token.
    pub async fn revoke_token(&self, id: TokenId) -> Result<Answer<TokenInfo>> {
        let subjects = vec![id.to_string()];
        Ok(Answer::new(self.engine.revoke_token(id).await?, subjects))
    }

    /// The calling token `id`, and the display name of the person it is bound to.
    /// Subjects: none (the caller asks about itself).
    pub fn whoami(&self, id: &TokenId) -> Result<(TokenInfo, Option<String>)> {
        let snapshot = self.engine.snapshot();
        let info = snapshot
            .tokens
            .get(id.as_str())
            .cloned()
            .ok_or(Error::Unauthenticated("the token no longer exists"))?;
        let name = info
            .grant
            .person
            .as_ref()
            .and_then(|p| snapshot.directory.person(p.as_str()))
            .map(|p| p.display_name.as_str().to_owned());
        Ok((info, name))
    }

    /// One page of the tokens (never their secrets).
    pub fn tokens(&self, page: &PageRequest) -> (Vec<TokenInfo>, String) {
        let infos = self.engine.snapshot().tokens.infos();
        let (tokens, next) = page.apply(&infos, |_| true);
        (tokens.into_iter().cloned().collect(), next)
    }

    /// One page of audit events, newest first.
    pub async fn audit(&self, q: AuditQuery) -> Result<AuditPage> {
        let limit = page::page_size_or_default(q.page_size)?;
        let before = page::decode_token(&q.page_token, &q.bound_to)?
            .map(|cursor| <[u8; 8]>::try_from(cursor.as_slice()).map(u64::from_be_bytes))
            .transpose()
            .map_err(|_| {
                Error::InvalidArgument(vec![FieldViolation::new(
                    "page_token",
                    "is not a token this server issued",
                )])
            })?;
        let (events, next) = self.engine.audit_page(q.filter, before, limit).await?;
        Ok(AuditPage { events, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccessRole;
    use crate::service::{demo_engine, fields_of, grant};

    #[tokio::test]
    async fn the_first_admin_token_is_stored_only_once_its_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::engine::Engine::open(dir.path(), &Default::default()).unwrap();
        let failed = engine
            .ensure_admin_token(|_| Err(crate::error::Error::DataDir("disk full".into())))
            .await;
        assert!(failed.is_err());
        assert!(
            engine.snapshot().tokens.is_empty(),
            "nothing unreadable stored"
        );
        let written = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let file = std::sync::Arc::clone(&written);
        let minted = engine
            .ensure_admin_token(move |token| {
                *file.lock().unwrap() = token.to_owned();
                Ok(())
            })
            .await
            .unwrap();
        assert!(minted);
        let token = written.lock().unwrap().clone();
        let now = crate::domain::Timestamp::now();
        assert!(engine.snapshot().tokens.authenticate(&token, now).is_ok());
        // Once there is a token, none is minted again.
        assert!(!engine.ensure_admin_token(|_| unreachable!()).await.unwrap());
    }

    #[tokio::test]
    async fn a_token_lives_at_most_a_hundred_years_and_names_whom_it_is_bound_to() {
        let (_dir, engine) = demo_engine(20).await;
        let access = Access::new(engine);
        let new = |ttl_seconds| NewToken {
            grant: grant(AccessRole::Manager, &["dept-01"]),
            description: Text::default(),
            ttl_seconds,
        };
        for ttl in [MAX_TOKEN_TTL_SECONDS + 1, u64::MAX] {
            let e = access.create_token(new(ttl)).await.unwrap_err();
            assert_eq!(fields_of(&e), ["ttl_seconds"]);
        }
        let created = access
            .create_token(new(MAX_TOKEN_TTL_SECONDS))
            .await
            .unwrap();
        assert_eq!(created.subjects, ["dept-01"]);
        let (_, info) = created.value;
        assert!(info.expires_at.is_some());
        let revoked = access.revoke_token(info.id.clone()).await.unwrap();
        assert_eq!(revoked.subjects, [info.id.to_string()]);
        assert!(revoked.value.revoked_at.is_some());
    }

    #[tokio::test]
    async fn the_last_active_admin_token_cannot_be_revoked() {
        let (_dir, engine) = demo_engine(5).await;
        let access = Access::new(Arc::clone(&engine));
        let admin = |n: &str| NewToken {
            grant: grant(AccessRole::Admin, &[]),
            description: Text::name(n).unwrap(),
            ttl_seconds: 0,
        };
        // Whatever admin tokens the store already holds, revoke all but one new one.
        let (_, first) = access.create_token(admin("first")).await.unwrap().value;
        let now = crate::domain::Timestamp::now();
        for (id, info) in engine.snapshot().tokens.infos() {
            if id != first.id && info.grant.role == AccessRole::Admin && info.is_active(now) {
                access.revoke_token(id).await.unwrap();
            }
        }
        assert!(matches!(
            access.revoke_token(first.id.clone()).await,
            Err(Error::FailedPrecondition(_))
        ));
        let (_, second) = access.create_token(admin("second")).await.unwrap().value;
        access.revoke_token(first.id.clone()).await.unwrap();
        assert!(matches!(
            access.revoke_token(second.id.clone()).await,
            Err(Error::FailedPrecondition(_))
        ));
        // Revoking an already revoked token stays allowed (and changes nothing).
        access.revoke_token(first.id).await.unwrap();
    }
}
