//! Authentication and authorisation. A tower layer in front of every service checks the
//! bearer token and admits the call by its method path against `RULES` — deny by
//! default, so an rpc without a rule cannot be called by anyone — then hands the handler
//! a `Caller`. Handlers apply the subject-dependent part (is this person in the
//! caller's scope?) and name the call's subjects (`Caller::answer`); the layer records
//! every call's audit event once the handler has answered — one path for every rpc, so
//! none can forget it — and refuses a read whose event cannot be recorded.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::{Request, Status};

mod rules;

pub use rules::{Class, RULES, UNKNOWN_RPC, allowed_rpcs, class_of, rpc_label};
use rules::{OWN_PREFIX, PUBLIC_PREFIXES, RULE_INDEX};

use super::denials::Denials;
use crate::domain::{
    AccessRole, AuditEvent, Directory, Grant, Person, PersonId, Scope, Timestamp, TokenId,
};
use crate::error::Error;
use crate::service::access::{Access, AuthFailure};

/// The caller's token id on a response, for the request log (never a person's data).
#[derive(Clone, Debug)]
pub struct LoggedCaller(pub TokenId);

/// Who is calling: the token and what it grants.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Token id.
    pub token: TokenId,
    /// Role and scope.
    pub grant: Grant,
    /// Full rpc path.
    pub rpc: &'static str,
    /// Who the call concerns, named by the handler for the call's audit event (shared by
    /// the clones the layer and the handler hold).
    subjects: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Caller {
    /// The caller of a request admitted by the layer.
    pub fn of<T>(request: &Request<T>) -> Result<Self, Error> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or(Error::Unauthenticated("no authenticated caller"))
    }

    /// The person-level data the caller may read in `directory`.
    pub fn scope(&self, directory: &Directory) -> Scope {
        self.grant.person_scope(directory)
    }

    /// The person `id`, if the caller may read it. Outside the scope the answer is
    /// PERMISSION_DENIED whether or not the person exists; only callers who could see
    /// everyone learn NOT_FOUND.
    pub fn readable_person<'a>(
        &self,
        directory: &'a Directory,
        id: &PersonId,
    ) -> Result<&'a Person, Error> {
        crate::service::scope::admit_person(&self.scope(directory), directory, id)
    }

    /// `id` as an audit subject if the person exists. Ids that resolve to no one are
    /// not recorded, so that asking for an erased person does not write their id back.
    pub fn subject_if_exists(directory: &Directory, id: &PersonId) -> Vec<String> {
        directory
            .person(id.as_str())
            .map(|p| p.id.to_string())
            .into_iter()
            .collect()
    }

    /// Records an audit event of this call with `subjects` and the outcome `code`:
    /// the one way capsight writes the audit trail (`AuthLayer` for every call, and
    /// streams for each batch they take). Subjects are capped at `MAX_SUBJECTS`.
    pub async fn audit(
        &self,
        access: &Access,
        mut subjects: Vec<String>,
        code: tonic::Code,
    ) -> Result<(), Error> {
        subjects.truncate(MAX_SUBJECTS);
        access
            .record(AuditEvent {
                sequence: 0,
                at: Timestamp::now(),
                token: Some(self.token.clone()),
                role: Some(self.grant.role),
                rpc: self.rpc.to_owned(),
                subjects,
                outcome: code_name(code),
                source: None,
                count: 1,
            })
            .await
    }
}

/// Most subjects one audit event records (a page of 1,000 people is the largest answer).
pub const MAX_SUBJECTS: usize = 1_000;

impl Caller {
    /// Names the people, teams or tokens this call concerns (validated ids only; the
    /// handler decides which, e.g. an existing person a denied read aimed at), for the
    /// call's audit event; returns `result` unchanged.
    pub fn answer<T>(&self, result: Result<T, Status>, subjects: Vec<String>) -> Result<T, Status> {
        *self.subjects.lock().unwrap_or_else(|e| e.into_inner()) = subjects;
        result
    }

    /// As `answer`, naming `subjects` only if the call succeeded (a write's ids are
    /// validated only when it is taken).
    pub fn answer_ok<T>(
        &self,
        result: Result<T, Status>,
        subjects: Vec<String>,
    ) -> Result<T, Status> {
        match result {
            Ok(_) => self.answer(result, subjects),
            Err(_) => result,
        }
    }

    /// A handler's answer — the response and the ids it reveals — as the rpc's result.
    pub fn respond<T>(
        &self,
        answer: Result<(T, Vec<String>), Error>,
    ) -> Result<tonic::Response<T>, Status> {
        match answer {
            Ok((response, subjects)) => self.answer(Ok(tonic::Response::new(response)), subjects),
            Err(e) => Err(Status::from(e)),
        }
    }

    /// A service's answer as the rpc's result: converted to its response message, with
    /// the subjects it names recorded for the audit event.
    pub fn respond_with<T, R: From<T>>(
        &self,
        answer: Result<crate::service::Answer<T>, Error>,
    ) -> Result<tonic::Response<R>, Status> {
        self.respond(answer.map(|a| (R::from(a.value), a.subjects)))
    }

    /// The subjects the handler named, taken once.
    fn take_subjects(&self) -> Vec<String> {
        std::mem::take(&mut *self.subjects.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The grpc-status of a response: in its headers when it failed before any message
/// (trailers-only), otherwise OK (an error while streaming the body is not seen here).
fn response_code(response: &http::Response<Body>) -> tonic::Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32)
}

/// Records `caller`'s audit event for `response`. If the event cannot be recorded, a
/// read that revealed anyone is refused instead (fail closed); a write, already
/// durable, is answered as it was.
async fn audited(
    access: &Access,
    caller: &Caller,
    response: http::Response<Body>,
) -> http::Response<Body> {
    let code = response_code(&response);
    let subjects = caller.take_subjects();
    let reveals = !subjects.is_empty() && class_of(caller.rpc) != Class::Write;
    match caller.audit(access, subjects, code).await {
        Ok(()) => response,
        Err(e) if reveals => {
            tracing::warn!(error = %e, "audit event not recorded; read refused");
            Status::unavailable("the audit trail cannot be written; retry later").into_http()
        }
        Err(e) => {
            tracing::warn!(error = %e, "audit event not recorded");
            response
        }
    }
}

/// The canonical upper-case name of a status code ("PERMISSION_DENIED").
pub fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The layer that authenticates and admits every call.
#[derive(Clone)]
pub struct AuthLayer {
    access: Arc<Access>,
    denials: Arc<Denials>,
}

impl AuthLayer {
    /// A layer checking tokens and writing the audit trail through `access`, counting
    /// unauthenticated denials in `denials` (recorded by `record_denials`).
    pub fn new(access: Arc<Access>, denials: Arc<Denials>) -> Self {
        Self { access, denials }
    }
}

/// Records `events` (aggregated denials) in the audit trail.
pub async fn record_denials(access: &Access, events: Vec<AuditEvent>) {
    for event in events {
        if let Err(e) = access.record(event).await {
            tracing::warn!(error = %e, "aggregated denials not recorded");
            return;
        }
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            inner,
            access: Arc::clone(&self.access),
            denials: Arc::clone(&self.denials),
        }
    }
}

/// A service behind `AuthLayer`.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    access: Arc<Access>,
    denials: Arc<Denials>,
}

enum Decision {
    Pass,
    Admit(Caller),
    Deny(Status, Option<(TokenId, AccessRole)>, &'static str),
}

fn decide(access: &Access, path: &str, headers: &http::HeaderMap) -> Decision {
    if PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Decision::Pass;
    }
    let rule = RULE_INDEX.get(path).map(|&i| RULES[i]);
    if rule.is_none() && !path.starts_with(OWN_PREFIX) {
        // Not ours: let the router answer UNIMPLEMENTED.
        return Decision::Pass;
    }
    // The name the audit trail records: a known rpc's, or one constant for any other
    // path, so that a request cannot write a path of its choosing (of any length) there.
    let rpc_name: &'static str = rule.map_or(UNKNOWN_RPC, |(rpc, _)| rpc);
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(bearer) = bearer else {
        return Decision::Deny(
            Status::unauthenticated("missing `authorization: Bearer <token>` metadata"),
            None,
            rpc_name,
        );
    };
    let (token, grant) = match access.authenticate(bearer) {
        Ok(who) => who,
        Err(failure) => {
            let reason = match failure {
                AuthFailure::Malformed => "malformed token",
                AuthFailure::Unknown => "unknown token",
                AuthFailure::Revoked => "token revoked",
                AuthFailure::Expired => "token expired",
            };
            return Decision::Deny(Status::unauthenticated(reason), None, rpc_name);
        }
    };
    match rule {
        Some((rpc, roles)) if roles.contains(&grant.role) => Decision::Admit(Caller {
            token,
            grant,
            rpc,
            subjects: Arc::default(),
        }),
        Some(_) => Decision::Deny(
            Status::permission_denied("permission denied"),
            Some((token, grant.role)),
            rpc_name,
        ),
        None => {
            // Truncated: the path is the caller's to choose.
            let shown: String = path.chars().take(120).collect();
            tracing::warn!(rpc = %shown, "unknown capsight rpc; denied");
            Decision::Deny(
                Status::permission_denied("permission denied"),
                Some((token, grant.role)),
                rpc_name,
            )
        }
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for Authenticated<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone is ready only after poll_ready; call the instance that was polled.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match decide(&self.access, request.uri().path(), request.headers()) {
            Decision::Pass => Box::pin(inner.call(request)),
            Decision::Admit(caller) => {
                request.extensions_mut().insert(caller.clone());
                let access = Arc::clone(&self.access);
                Box::pin(async move {
                    let response = inner.call(request).await?;
                    let mut response = audited(&access, &caller, response).await;
                    response
                        .extensions_mut()
                        .insert(LoggedCaller(caller.token.clone()));
                    Ok(response)
                })
            }
            Decision::Deny(status, None, rpc) => {
                // Anyone can send these: counted, recorded once per source and minute.
                let source = request
                    .extensions()
                    .get::<tonic::transport::server::TcpConnectInfo>()
                    .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
                    .map(|addr| addr.ip());
                self.denials
                    .note(source, rpc, "UNAUTHENTICATED", Timestamp::now());
                metrics::counter!("capsight_unauthenticated_total").increment(1);
                Box::pin(async move { Ok(status.into_http()) })
            }
            Decision::Deny(status, Some((token, role)), rpc) => {
                let access = Arc::clone(&self.access);
                let outcome = code_name(status.code());
                tokio::spawn(async move {
                    let _ = access
                        .record(AuditEvent {
                            sequence: 0,
                            at: Timestamp::now(),
                            token: Some(token),
                            role: Some(role),
                            rpc: rpc.to_owned(),
                            subjects: Vec::new(),
                            outcome,
                            source: None,
                            count: 1,
                        })
                        .await;
                });
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_canonical_ones() {
        assert_eq!(code_name(tonic::Code::Ok), "OK");
        assert_eq!(
            code_name(tonic::Code::PermissionDenied),
            "PERMISSION_DENIED"
        );
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
    }

    #[test]
    fn every_rule_names_a_capsight_rpc_once() {
        let mut paths: Vec<&str> = RULES.iter().map(|(p, _)| *p).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), RULES.len());
        assert!(paths.iter().all(|p| p.starts_with(OWN_PREFIX)));
    }

    #[test]
    fn rpcs_fall_into_their_classes() {
        assert_eq!(
            class_of("/capsight.v1.OrgInsightsService/GetSkillArchetypes"),
            Class::HeavyRead
        );
        assert_eq!(
            class_of("/capsight.v1.CapabilityService/GetPersonGaps"),
            Class::CheapRead
        );
        assert_eq!(
            class_of("/capsight.v1.IngestService/RecordAssessments"),
            Class::Write
        );
        assert_eq!(class_of("/grpc.health.v1.Health/Check"), Class::Unlimited);
        assert_eq!(
            class_of("/capsight.v1.IngestService/StreamAssessments"),
            Class::Unlimited
        );
    }
}
