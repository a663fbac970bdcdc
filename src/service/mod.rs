//! Policy, free of transport: one module per proto service, one function per rpc, each
//! taking the caller's grant and a validated domain request and returning a domain
//! result with the ids it reveals (its audit subjects). Here live scope admission,
//! privacy suppression, limits and defaults; never tonic or prost. See
//! `docs/architecture-status.md` for what still lives in `api`.

pub mod access;
pub mod capability;
pub mod culture;
pub mod directory;
pub mod ingest;
pub mod insights;
pub mod page;
pub mod scope;
pub mod talent;

/// How fresh an answer must be (`ResultPolicy`): part of requests to several services.
pub use crate::engine::Want;

/// A service's result and the people, teams or tokens it concerns (for the audit trail).
#[derive(Clone, Debug)]
pub struct Answer<T> {
    /// The result.
    pub value: T,
    /// Ids of whom it reveals or concerns.
    pub subjects: Vec<String>,
}

impl<T> Answer<T> {
    /// `value`, concerning `subjects`.
    pub fn new(value: T, subjects: Vec<String>) -> Self {
        Self { value, subjects }
    }

    /// The answer with its value converted (e.g. to a response message).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            value: f(self.value),
            subjects: self.subjects,
        }
    }
}

/// An engine over a fresh directory holding a demo organisation of `people`, for the
/// service's unit tests.
#[cfg(test)]
pub(crate) async fn demo_engine(
    people: usize,
) -> (tempfile::TempDir, std::sync::Arc<crate::engine::Engine>) {
    use crate::demo::{DemoConfig, DemoOrg};
    let temp = tempfile::tempdir().expect("temp dir");
    let engine = crate::engine::Engine::open(temp.path(), &crate::engine::EngineOptions::default())
        .expect("engine");
    let engine = std::sync::Arc::new(engine);
    let org = DemoOrg::generate(&DemoConfig {
        people,
        ..DemoConfig::default()
    });
    crate::server::load_org(&engine, org).await.expect("demo");
    (temp, engine)
}

/// A grant of `role` over `teams`, for tests.
#[cfg(test)]
pub(crate) fn grant(role: crate::domain::AccessRole, teams: &[&str]) -> crate::domain::Grant {
    crate::domain::Grant {
        role,
        teams: teams
            .iter()
            .map(|t| crate::domain::TeamId::parse(t).expect("team id"))
            .collect(),
        person: None,
    }
}

/// The fields of an INVALID_ARGUMENT error, for tests.
#[cfg(test)]
pub(crate) fn fields_of(e: &crate::error::Error) -> Vec<String> {
    match e {
        crate::error::Error::InvalidArgument(v) => v.iter().map(|v| v.field.clone()).collect(),
        other => panic!("not INVALID_ARGUMENT: {other:?}"),
    }
}
