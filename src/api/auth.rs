//! Authentication and authorisation. A tower layer in front of every service checks the
//! bearer token and admits the call by its method path against `RULES` — deny by
//! default, so an rpc without a rule cannot be called by anyone — then hands the handler
//! a `Caller`. Handlers apply the subject-dependent part (is this person in the
//! caller's scope?) and name the call's subjects (`Caller::answer`); the layer records
//! every call's audit event once the handler has answered — one path for every rpc, so
//! none can forget it — and refuses a read whose event cannot be recorded.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::{Request, Status};

use super::denials::Denials;
use crate::domain::{
    AccessRole, AuditEvent, Directory, Grant, Person, PersonId, Scope, Timestamp, TokenId,
};
use crate::engine::{AuthFailure, Engine};
use crate::error::Error;

use AccessRole::{Admin, Analyst, Ingest, Manager, Person as PersonRole, Planner};

const WRITERS: &[AccessRole] = &[Admin, Ingest];
const MODEL_READERS: &[AccessRole] = &[Admin, Manager, Planner, Analyst, PersonRole];
const PERSON_READERS: &[AccessRole] = &[Admin, Manager, Planner, PersonRole];
const SCOPED_READERS: &[AccessRole] = &[Admin, Manager, Planner];
const ADMIN_ONLY: &[AccessRole] = &[Admin];
const SUBJECT_OR_ADMIN: &[AccessRole] = &[Admin, PersonRole];
const AGGREGATE_READERS: &[AccessRole] = &[Admin, Manager, Planner, Analyst];
const ANY_TOKEN: &[AccessRole] = &[Admin, Ingest, Manager, Planner, Analyst, PersonRole];

/// Which roles may call each rpc. Subject scope is checked by the handler.
pub const RULES: &[(&str, &[AccessRole])] = &[
    ("/capsight.v1.DirectoryService/UpsertSkills", WRITERS),
    ("/capsight.v1.DirectoryService/UpsertRoles", WRITERS),
    ("/capsight.v1.DirectoryService/UpsertTeams", WRITERS),
    ("/capsight.v1.DirectoryService/UpsertPeople", WRITERS),
    ("/capsight.v1.DirectoryService/GetPerson", PERSON_READERS),
    ("/capsight.v1.DirectoryService/ListSkills", MODEL_READERS),
    ("/capsight.v1.DirectoryService/ListRoles", MODEL_READERS),
    ("/capsight.v1.DirectoryService/ListTeams", MODEL_READERS),
    ("/capsight.v1.DirectoryService/ListPeople", SCOPED_READERS),
    ("/capsight.v1.DirectoryService/DeletePerson", ADMIN_ONLY),
    (
        "/capsight.v1.DirectoryService/ExportPerson",
        SUBJECT_OR_ADMIN,
    ),
    ("/capsight.v1.IngestService/RecordAssessments", WRITERS),
    ("/capsight.v1.IngestService/StreamAssessments", WRITERS),
    (
        "/capsight.v1.CapabilityService/GetTeamCapability",
        SCOPED_READERS,
    ),
    (
        "/capsight.v1.CapabilityService/WatchTeamCapability",
        SCOPED_READERS,
    ),
    (
        "/capsight.v1.CapabilityService/GetPersonProfile",
        PERSON_READERS,
    ),
    (
        "/capsight.v1.CapabilityService/GetPersonGaps",
        PERSON_READERS,
    ),
    ("/capsight.v1.CapabilityService/FindExperts", SCOPED_READERS),
    (
        "/capsight.v1.CapabilityService/GetSkillRisks",
        SCOPED_READERS,
    ),
    (
        "/capsight.v1.CapabilityService/GetCapabilityTrend",
        AGGREGATE_READERS,
    ),
    (
        "/capsight.v1.OrgInsightsService/GetSkillArchetypes",
        AGGREGATE_READERS,
    ),
    (
        "/capsight.v1.OrgInsightsService/GetOrgSkillPatterns",
        AGGREGATE_READERS,
    ),
    ("/capsight.v1.TalentService/FindMentors", PERSON_READERS),
    ("/capsight.v1.TalentService/PlanMentoring", SCOPED_READERS),
    ("/capsight.v1.TalentService/StartMentoring", SCOPED_READERS),
    ("/capsight.v1.TalentService/EndMentoring", SCOPED_READERS),
    ("/capsight.v1.TalentService/ListMentorships", PERSON_READERS),
    ("/capsight.v1.TalentService/ComposeTeam", SCOPED_READERS),
    ("/capsight.v1.AccessService/WhoAmI", ANY_TOKEN),
    ("/capsight.v1.AccessService/CreateToken", ADMIN_ONLY),
    ("/capsight.v1.AccessService/RevokeToken", ADMIN_ONLY),
    ("/capsight.v1.AccessService/ListTokens", ADMIN_ONLY),
    ("/capsight.v1.AccessService/ListAuditEvents", ADMIN_ONLY),
    ("/capsight.v1.AccessService/CreateBackup", ADMIN_ONLY),
];

/// The rpcs (`capsight.v1.Service/Method`) `role` may call, in `RULES` order.
pub fn allowed_rpcs(role: AccessRole) -> Vec<&'static str> {
    RULES
        .iter()
        .filter(|(_, roles)| roles.contains(&role))
        .map(|(path, _)| path.trim_start_matches('/'))
        .collect()
}

/// What a call costs the server, by rpc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Answered from the snapshot or caches in well under a millisecond of CPU.
    CheapRead,
    /// May compute over a department or the whole organisation (jobs of the runner).
    HeavyRead,
    /// Goes through the writer and waits for a flush.
    Write,
    /// Long-lived streams, health, reflection, the dashboard: not limited here.
    Unlimited,
}

/// The class of the rpc at `path` (`/capsight.v1.Service/Method`).
pub fn class_of(path: &str) -> Class {
    let Some(method) = path.strip_prefix("/capsight.v1.") else {
        return Class::Unlimited;
    };
    let method = method.split_once('/').map_or("", |(_, m)| m);
    match method {
        "WatchTeamCapability" | "StreamAssessments" => Class::Unlimited,
        "GetSkillArchetypes"
        | "GetOrgSkillPatterns"
        | "PlanMentoring"
        | "ComposeTeam"
        | "GetCapabilityTrend"
        | "GetSkillRisks"
        | "ListAuditEvents"
        | "ExportPerson" => Class::HeavyRead,
        "CreateToken" | "RevokeToken" | "UpsertSkills" | "UpsertRoles" | "UpsertTeams"
        | "UpsertPeople" | "DeletePerson" | "RecordAssessments" | "StartMentoring"
        | "EndMentoring" => Class::Write,
        _ => Class::CheapRead,
    }
}

/// `RULES` by method path, for the lookup on every call.
static RULE_INDEX: std::sync::LazyLock<HashMap<&'static str, usize>> =
    std::sync::LazyLock::new(|| {
        RULES
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (*p, i))
            .collect()
    });

/// Services any client may call without a token (health checks, reflection).
const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];
/// What the audit trail records as the rpc of a call to a path that names none.
pub const UNKNOWN_RPC: &str = "(unknown rpc)";

/// Paths of capsight's own services: unknown ones here are denied, not passed on.
const OWN_PREFIX: &str = "/capsight.";

/// The caller's token id on a response, for the request log (never a person's data).
#[derive(Clone, Debug)]
pub struct LoggedCaller(pub TokenId);

/// The label of the rpc at `path` in logs and metrics: a known rpc's full path, the
/// health or reflection service, or one constant for any other capsight path; `None`
/// for paths that are not rpcs (pages, probes). Bounded: a request cannot make up labels.
pub fn rpc_label(path: &str) -> Option<&'static str> {
    if let Some(&i) = RULE_INDEX.get(path) {
        return Some(RULES[i].0);
    }
    match path {
        "/grpc.health.v1.Health/Check" => Some("/grpc.health.v1.Health/Check"),
        "/grpc.health.v1.Health/Watch" => Some("/grpc.health.v1.Health/Watch"),
        p if p.starts_with("/grpc.reflection.") => Some("(reflection)"),
        p if p.starts_with(OWN_PREFIX) || p.starts_with("/grpc.") => Some(UNKNOWN_RPC),
        _ => None,
    }
}

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
        engine: &Engine,
        mut subjects: Vec<String>,
        code: tonic::Code,
    ) -> Result<(), Error> {
        subjects.truncate(MAX_SUBJECTS);
        engine
            .record_audit(AuditEvent {
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
    engine: &Engine,
    caller: &Caller,
    response: http::Response<Body>,
) -> http::Response<Body> {
    let code = response_code(&response);
    let subjects = caller.take_subjects();
    let reveals = !subjects.is_empty() && class_of(caller.rpc) != Class::Write;
    match caller.audit(engine, subjects, code).await {
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
    engine: Arc<Engine>,
    denials: Arc<Denials>,
}

impl AuthLayer {
    /// A layer checking tokens against `engine`'s token table, counting unauthenticated
    /// denials in `denials` (recorded by `record_denials`).
    pub fn new(engine: Arc<Engine>, denials: Arc<Denials>) -> Self {
        Self { engine, denials }
    }
}

/// Records `events` (aggregated denials) in the audit trail.
pub async fn record_denials(engine: &Engine, events: Vec<AuditEvent>) {
    for event in events {
        if let Err(e) = engine.record_audit(event).await {
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
            engine: Arc::clone(&self.engine),
            denials: Arc::clone(&self.denials),
        }
    }
}

/// A service behind `AuthLayer`.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    engine: Arc<Engine>,
    denials: Arc<Denials>,
}

enum Decision {
    Pass,
    Admit(Caller),
    Deny(Status, Option<(TokenId, AccessRole)>, &'static str),
}

fn decide(engine: &Engine, path: &str, headers: &http::HeaderMap) -> Decision {
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
    let snapshot = engine.snapshot();
    let info = match snapshot.tokens.authenticate(bearer, Timestamp::now()) {
        Ok(info) => info,
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
        Some((rpc, roles)) if roles.contains(&info.grant.role) => Decision::Admit(Caller {
            token: info.id.clone(),
            grant: info.grant.clone(),
            rpc,
            subjects: Arc::default(),
        }),
        Some(_) => Decision::Deny(
            Status::permission_denied("permission denied"),
            Some((info.id.clone(), info.grant.role)),
            rpc_name,
        ),
        None => {
            // Truncated: the path is the caller's to choose.
            let shown: String = path.chars().take(120).collect();
            tracing::warn!(rpc = %shown, "unknown capsight rpc; denied");
            Decision::Deny(
                Status::permission_denied("permission denied"),
                Some((info.id.clone(), info.grant.role)),
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
        match decide(&self.engine, request.uri().path(), request.headers()) {
            Decision::Pass => Box::pin(inner.call(request)),
            Decision::Admit(caller) => {
                request.extensions_mut().insert(caller.clone());
                let engine = Arc::clone(&self.engine);
                Box::pin(async move {
                    let response = inner.call(request).await?;
                    let mut response = audited(&engine, &caller, response).await;
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
                let engine = Arc::clone(&self.engine);
                let outcome = code_name(status.code());
                tokio::spawn(async move {
                    let _ = engine
                        .record_audit(AuditEvent {
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
