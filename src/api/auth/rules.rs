//! The rule table: which roles may call each rpc (deny by default), what each rpc costs
//! the server, and the bounded labels rpcs are logged and counted under.

use std::collections::HashMap;

use crate::domain::AccessRole;

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
pub(super) static RULE_INDEX: std::sync::LazyLock<HashMap<&'static str, usize>> =
    std::sync::LazyLock::new(|| {
        RULES
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (*p, i))
            .collect()
    });

/// Services any client may call without a token (health checks, reflection).
pub(super) const PUBLIC_PREFIXES: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];
/// What the audit trail records as the rpc of a call to a path that names none.
pub const UNKNOWN_RPC: &str = "(unknown rpc)";

/// Paths of capsight's own services: unknown ones here are denied, not passed on.
pub(super) const OWN_PREFIX: &str = "/capsight.";

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
