//! `capsight.v1.CapabilityService`: team capability, once or as a live stream.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::BoxFuture;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{required_id, source_to_pb, timestamp_from_pb_any, timestamp_to_pb};
use super::pb;
use super::pb::capability_service_server::CapabilityServiceServer;
use crate::analytics::proficiency::Evidence;
use crate::analytics::trends;
use crate::domain::{FieldViolation, Level, PersonId, RoleId, SkillId, TeamId, Timestamp};
use crate::engine::Engine;
use crate::engine::queries::{
    RiskKind, TeamCapabilityView, find_experts, person_gaps, person_profile, skill_risks,
    team_capability, team_capability_as_of, team_members,
};
use crate::error::{Error, Result};
use crate::service::page;
use crate::service::scope::admit_team;

/// Most points one skill's trend may have.
const MAX_TREND_POINTS: i64 = 200;

/// The dates of a trend from `from` to `to` every `interval_days` (0: 30), refused when
/// they would be more than `MAX_TREND_POINTS`. Both times are within protobuf's range
/// (`Timestamp::parse_seconds`), so the span cannot overflow, and the count is checked
/// before anything is allocated.
fn trend_dates(from: Timestamp, to: Timestamp, interval_days: u32) -> Result<Vec<Timestamp>> {
    if to <= from {
        return Err(invalid("to", "must be after from"));
    }
    let days = if interval_days == 0 {
        30
    } else {
        interval_days
    };
    let step_ms = i64::from(days) * 86_400_000;
    if (to.unix_millis() - from.unix_millis()) / step_ms >= MAX_TREND_POINTS {
        return Err(invalid(
            "interval_days",
            "gives more than 200 points; choose a longer interval",
        ));
    }
    Ok(trends::dates(from, to, step_ms))
}

/// How long a watcher waits for more changes before sending, so a burst of writes
/// yields one update.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// The capability service, backed by the engine.
pub struct CapabilityApi {
    engine: Arc<Engine>,
    shutdown: watch::Receiver<bool>,
    cache: Arc<TeamCache>,
}

impl CapabilityApi {
    /// A service reading `engine`'s snapshots; watches end when `shutdown` turns true.
    pub fn new(engine: Arc<Engine>, shutdown: watch::Receiver<bool>) -> Self {
        let cache = Arc::new(TeamCache::default());
        // Drop cached views as soon as anything changes, so that no result outlives the
        // data it came from (an erased person must not linger in a cached view).
        let mut changes = engine.changes();
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                match weak.upgrade() {
                    Some(cache) => cache.clear(),
                    None => break,
                }
            }
        });
        Self {
            engine,
            shutdown,
            cache,
        }
    }

    /// GetTeamCapability's answer and the people it shows. Not instrumented: the server's per-request
    /// `rpc` span already names it, and a second span costs the dashboard read ~1.5%.
    async fn team_capability(
        &self,
        request: &Request<pb::GetTeamCapabilityRequest>,
    ) -> Result<Arc<TeamAnswer>, Status> {
        let caller = Caller::of(request)?;
        let r = request.get_ref();
        let query = TeamQuery::parse(&r.team_id, r.include_subteams, &r.skill_ids, r.layout)?;
        let answer = match r.as_of {
            None => query.answer(&self.engine, &caller, &self.cache),
            Some(raw) => query.answer_as_of(&self.engine, &caller, raw).await,
        };
        let subjects = answer.as_ref().map(|a| a.subjects()).unwrap_or_default();
        caller.answer(answer.map_err(Status::from), subjects)
    }
}

/// `capsight.v1.CapabilityService` as mounted on the server: `GetTeamCapability`, the
/// dashboard read under load, is answered with the cached encoded response (a cache hit
/// copies no message and encodes nothing); every other method goes to the generated
/// server.
#[derive(Clone)]
pub struct CapabilityRoutes {
    generated: CapabilityServiceServer<CapabilityApi>,
    api: Arc<CapabilityApi>,
    max_encoding: usize,
}

const GET_TEAM_CAPABILITY: &str = "/capsight.v1.CapabilityService/GetTeamCapability";

impl CapabilityRoutes {
    /// Mounts `api`, refusing to send messages over `max_encoding` bytes.
    pub fn new(api: CapabilityApi, max_encoding: usize) -> Self {
        let api = Arc::new(api);
        Self {
            generated: CapabilityServiceServer::from_arc(Arc::clone(&api))
                .max_encoding_message_size(max_encoding),
            api,
            max_encoding,
        }
    }
}

impl NamedService for CapabilityRoutes {
    const NAME: &'static str = <CapabilityServiceServer<CapabilityApi> as NamedService>::NAME;
}

impl tower_service::Service<http::Request<tonic::body::Body>> for CapabilityRoutes {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() != GET_TEAM_CAPABILITY {
            return self.generated.call(request);
        }
        let method = EncodedTeamCapability(Arc::clone(&self.api));
        let max_encoding = self.max_encoding;
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(PreEncoded)
                .apply_max_message_size_config(None, Some(max_encoding));
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// GetTeamCapability answering with the encoded response.
struct EncodedTeamCapability(Arc<CapabilityApi>);

impl tonic::server::UnaryService<pb::GetTeamCapabilityRequest> for EncodedTeamCapability {
    type Response = Bytes;
    type Future = BoxFuture<Response<Bytes>, Status>;

    fn call(&mut self, request: Request<pb::GetTeamCapabilityRequest>) -> Self::Future {
        let api = Arc::clone(&self.0);
        Box::pin(async move {
            let answer = api.team_capability(&request).await?;
            Ok(Response::new(answer.encoded()))
        })
    }
}

/// GetTeamCapability's server codec: the request is decoded with prost, as the generated
/// code does; the response goes out as the bytes `TeamAnswer::encoded` holds.
#[derive(Clone, Copy, Default)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = pb::GetTeamCapabilityRequest;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = pb::GetTeamCapabilityRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        // Answered as every generated service answers it (`codec::ProtoCodec`).
        prost::Message::decode(src)
            .map(Some)
            .map_err(|_| super::codec::undecodable())
    }
}

/// Team, include subteams, skills, dense layout.
type TeamKey = (TeamId, bool, Vec<SkillId>, bool);

/// Team views of the current snapshot version, by question. A view is the same for every
/// caller allowed to see the team, so views are shared; access is checked before lookup.
#[derive(Default)]
struct TeamCache {
    entries: std::sync::RwLock<(u64, HashMap<TeamKey, Arc<TeamAnswer>>)>,
}

/// A team view ready to send, shared by every caller who asks the same question.
struct TeamAnswer {
    view: pb::TeamCapability,
    /// The encoded `GetTeamCapabilityResponse` carrying `view`, made on first use: a
    /// cached answer is then sent without being copied or encoded again.
    encoded: OnceLock<Bytes>,
}

impl TeamAnswer {
    fn new(view: pb::TeamCapability) -> Arc<Self> {
        Arc::new(Self {
            view,
            encoded: OnceLock::new(),
        })
    }

    /// The people the view reveals (the audit event's subjects).
    fn subjects(&self) -> Vec<String> {
        self.view
            .members
            .iter()
            .map(|m| m.person_id.clone())
            .collect()
    }

    /// `GetTeamCapabilityResponse { capability: view }`, encoded.
    fn encoded(&self) -> Bytes {
        self.encoded
            .get_or_init(|| {
                // The response's only field (1) is the view.
                let mut bytes =
                    Vec::with_capacity(prost::encoding::message::encoded_len(1, &self.view));
                prost::encoding::message::encode(1, &self.view, &mut bytes);
                bytes.into()
            })
            .clone()
    }
}

/// Distinct questions kept per version; a dashboard fleet asks far fewer.
const TEAM_CACHE_LIMIT: usize = 4_096;

// A poisoned lock only means a panic elsewhere mid-update; the cache is then bypassed.
impl TeamCache {
    fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.1.clear();
        }
    }

    fn get(&self, version: u64, key: &TeamKey) -> Option<Arc<TeamAnswer>> {
        let entries = self.entries.read().ok()?;
        if entries.0 != version {
            return None;
        }
        entries.1.get(key).cloned()
    }

    fn put(&self, version: u64, key: TeamKey, view: Arc<TeamAnswer>) {
        if let Ok(mut entries) = self.entries.write() {
            // A slow request computed on an older snapshot must not evict newer views.
            if version < entries.0 {
                return;
            }
            if version > entries.0 || entries.1.len() >= TEAM_CACHE_LIMIT {
                *entries = (version, HashMap::new());
            }
            entries.1.insert(key, view);
        }
    }
}

/// A validated team question.
#[derive(Clone)]
struct TeamQuery {
    team: TeamId,
    include_subteams: bool,
    skills: Vec<SkillId>,
    /// The DENSE matrix layout rather than CELLS.
    dense: bool,
}

impl TeamQuery {
    fn parse(
        team_id: &str,
        include_subteams: bool,
        skill_ids: &[String],
        layout: i32,
    ) -> Result<Self> {
        let team = required_id(team_id, "team_id", TeamId::parse)?;
        let skills = skill_ids
            .iter()
            .enumerate()
            .map(|(i, s)| required_id(s, &format!("skill_ids[{i}]"), SkillId::parse))
            .collect::<Result<_>>()?;
        let dense = match pb::MatrixLayout::try_from(layout) {
            Ok(pb::MatrixLayout::Unspecified | pb::MatrixLayout::Cells) => false,
            Ok(pb::MatrixLayout::Dense) => true,
            Err(_) => return Err(invalid("layout", "must be a known matrix layout")),
        };
        Ok(Self {
            team,
            include_subteams,
            skills,
            dense,
        })
    }

    /// The same question in the CELLS layout.
    fn cells(&self) -> Self {
        Self {
            dense: false,
            ..self.clone()
        }
    }

    /// `view` (in the CELLS layout) in the layout asked for.
    fn lay_out(&self, view: pb::TeamCapability) -> Arc<TeamAnswer> {
        TeamAnswer::new(if self.dense { to_dense(&view) } else { view })
    }

    /// The view at a past date, from the members' raw evidence (not cached).
    async fn answer_as_of(
        &self,
        engine: &Engine,
        caller: &Caller,
        raw: prost_types::Timestamp,
    ) -> Result<Arc<TeamAnswer>> {
        let as_of = timestamp_from_pb_any(raw)
            .map_err(|v| Error::InvalidArgument(vec![v.under("as_of")]))?;
        let snapshot = engine.snapshot();
        admit_team(
            &caller.scope(&snapshot.directory),
            &snapshot.directory,
            &self.team,
        )?;
        let members = team_members(&snapshot, &self.team, self.include_subteams)?;
        let ids = members.iter().map(|p| p.id.clone()).collect();
        let evidence = engine.assessments_about_many(ids).await?;
        let view = team_capability_as_of(
            &snapshot,
            &self.team,
            self.include_subteams,
            &self.skills,
            as_of,
            &evidence,
        )?;
        Ok(self.lay_out(to_pb(&self.team, view)))
    }

    /// The view, if the caller may see the team: a scoped caller asking for a team outside
    /// its scope is denied whether or not the team exists.
    fn answer(
        &self,
        engine: &Engine,
        caller: &Caller,
        cache: &TeamCache,
    ) -> Result<Arc<TeamAnswer>> {
        let snapshot = engine.snapshot();
        admit_team(
            &caller.scope(&snapshot.directory),
            &snapshot.directory,
            &self.team,
        )?;
        let key = (
            self.team.clone(),
            self.include_subteams,
            self.skills.clone(),
            self.dense,
        );
        let view = match cache.get(snapshot.data_version, &key) {
            Some(view) => view,
            None => {
                let now = Timestamp::now();
                let view = team_capability(
                    &snapshot,
                    &self.team,
                    self.include_subteams,
                    &self.skills,
                    now,
                )?;
                let answer = self.lay_out(to_pb(&self.team, view));
                cache.put(snapshot.data_version, key, Arc::clone(&answer));
                answer
            }
        };
        Ok(view)
    }
}

fn invalid(field: impl Into<String>, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

/// A CELLS-layout view in the DENSE layout: the known cells' figures as little-endian
/// arrays, and a bitmap of which cells are known.
fn to_dense(view: &pb::TeamCapability) -> pb::TeamCapability {
    let cells = view.members.iter().flat_map(|m| &m.cells);
    let known = cells.clone().filter(|c| c.level.is_some()).count();
    let mut bitmap = vec![0u8; (view.members.len() * view.skill_ids.len()).div_ceil(8)];
    let (mut levels, mut confidences, mut counts, mut times) = (
        Vec::with_capacity(known * 4),
        Vec::with_capacity(known * 4),
        Vec::with_capacity(known * 4),
        Vec::with_capacity(known * 8),
    );
    for (k, cell) in cells.enumerate() {
        let Some(level) = cell.level else { continue };
        bitmap[k / 8] |= 1 << (k % 8);
        // Levels and confidences are f32 in the index, so nothing is lost.
        levels.extend_from_slice(&(level as f32).to_le_bytes());
        confidences.extend_from_slice(&(cell.confidence as f32).to_le_bytes());
        counts.extend_from_slice(&cell.evidence_count.to_le_bytes());
        let seconds = cell.last_assessed.map_or(0, |t| t.seconds);
        times.extend_from_slice(&seconds.to_le_bytes());
    }
    pb::TeamCapability {
        members: view
            .members
            .iter()
            .map(|m| pb::MemberCapability {
                person_id: m.person_id.clone(),
                display_name: m.display_name.clone(),
                role_id: m.role_id.clone(),
                cells: Vec::new(),
                readiness: m.readiness,
            })
            .collect(),
        dense: Some(pb::DenseMatrix {
            levels_f32le: levels.into(),
            confidences_f32le: confidences.into(),
            evidence_counts_u32le: counts.into(),
            last_assessed_seconds_i64le: times.into(),
            known_bitmap: bitmap.into(),
        }),
        team_id: view.team_id.clone(),
        skill_ids: view.skill_ids.clone(),
        skills: view.skills.clone(),
        readiness: view.readiness,
        data_version: view.data_version,
    }
}

fn to_pb(team: &TeamId, view: TeamCapabilityView) -> pb::TeamCapability {
    let TeamCapabilityView {
        skills,
        members,
        cells,
        summary,
        version,
    } = view;
    let members = members
        .iter()
        .zip(cells)
        .zip(&summary.member_readiness)
        .map(|((person, row), readiness)| pb::MemberCapability {
            person_id: person.id.to_string(),
            display_name: person.display_name.as_str().to_owned(),
            role_id: person.role.to_string(),
            cells: row
                .into_iter()
                .map(|cell| match cell {
                    Some(p) => pb::CapabilityCell {
                        level: Some(f64::from(p.level)),
                        confidence: f64::from(p.confidence),
                        evidence_count: p.evidence,
                        last_assessed: Some(timestamp_to_pb(p.last_assessed)),
                    },
                    None => pb::CapabilityCell::default(),
                })
                .collect(),
            readiness: readiness.map(f64::from),
        })
        .collect();
    let skill_summaries = skills
        .iter()
        .zip(&summary.skills)
        .map(|(skill, s)| pb::SkillSummary {
            skill_id: skill.to_string(),
            mean_level: s.mean.map(f64::from),
            max_level: s.max.map(f64::from),
            known_count: s.known,
            proficient_count: s.proficient,
            required_level: s.required.map(f64::from),
            gap: s.gap.map(f64::from),
            members_below_requirement: s.members_below,
        })
        .collect();
    pb::TeamCapability {
        team_id: team.to_string(),
        skill_ids: skills.iter().map(ToString::to_string).collect(),
        members,
        skills: skill_summaries,
        readiness: summary.readiness.map(f64::from),
        data_version: version,
        dense: None,
    }
}

#[tonic::async_trait]
impl pb::capability_service_server::CapabilityService for CapabilityApi {
    /// Served by `CapabilityRoutes` from the encoded answer; this typed form is the
    /// same answer for in-process callers of the trait.
    async fn get_team_capability(
        &self,
        request: Request<pb::GetTeamCapabilityRequest>,
    ) -> Result<Response<pb::GetTeamCapabilityResponse>, Status> {
        let answer = self.team_capability(&request).await?;
        Ok(Response::new(pb::GetTeamCapabilityResponse {
            capability: Some(answer.view.clone()),
        }))
    }

    type WatchTeamCapabilityStream =
        ReceiverStream<Result<pb::WatchTeamCapabilityResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn watch_team_capability(
        &self,
        request: Request<pb::WatchTeamCapabilityRequest>,
    ) -> Result<Response<Self::WatchTeamCapabilityStream>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.get_ref();
        let query = TeamQuery::parse(&r.team_id, r.include_subteams, &r.skill_ids, r.layout)?;
        // Changes are judged on the CELLS layout (NaN, the DENSE layout's unknown level,
        // never equals itself); each update is sent in the layout asked for.
        let first = query.cells().answer(&self.engine, &caller, &self.cache)?;
        let answered = caller.clone();
        let subjects = first.subjects();
        let first = first.view.clone();
        let cache = Arc::clone(&self.cache);

        let (updates, stream) = mpsc::channel(4);
        let engine = Arc::clone(&self.engine);
        let mut changes = engine.changes();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut last = first.clone();
            if updates
                .send(Ok(pb::WatchTeamCapabilityResponse {
                    capability: Some(query.lay_out(first).view.clone()),
                }))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    _ = shutdown.wait_for(|stop| *stop) => break,
                    () = updates.closed() => break,
                }
                tokio::time::sleep(WATCH_DEBOUNCE).await;
                changes.mark_unchanged();
                if !engine
                    .snapshot()
                    .tokens
                    .is_active(&caller.token, Timestamp::now())
                {
                    let _ = updates
                        .send(Err(Status::unauthenticated("token revoked or expired")))
                        .await;
                    break;
                }
                let current = match query.cells().answer(&engine, &caller, &cache) {
                    Ok(current) => current.view.clone(),
                    Err(e) => {
                        let _ = updates.send(Err(e.into())).await;
                        break;
                    }
                };
                // Only a change in what the team looks like is news; other teams' writes
                // move the data version but not this view.
                let same = pb::TeamCapability {
                    data_version: last.data_version,
                    ..current.clone()
                } == last;
                if same {
                    continue;
                }
                last = current.clone();
                let update = pb::WatchTeamCapabilityResponse {
                    capability: Some(query.lay_out(current).view.clone()),
                };
                if updates.send(Ok(update)).await.is_err() {
                    break;
                }
            }
        });
        answered.answer(Ok(Response::new(ReceiverStream::new(stream))), subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn get_person_profile(
        &self,
        request: Request<pb::GetPersonProfileRequest>,
    ) -> Result<Response<pb::GetPersonProfileResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = required_id(&request.get_ref().person_id, "person_id", PersonId::parse)?;
        let snapshot = self.engine.snapshot();
        let result = async {
            let person = caller.readable_person(&snapshot.directory, &id)?.clone();
            let assessments = self.engine.assessments_about(&id)?;
            let view = person_profile(snapshot.capability.model(), assessments, Timestamp::now());
            let skills = view
                .skills
                .into_iter()
                .map(|skill| pb::SkillProficiency {
                    skill_id: skill.skill.to_string(),
                    level: skill.proficiency.map(|p| f64::from(p.level)),
                    confidence: skill.proficiency.map_or(0.0, |p| f64::from(p.confidence)),
                    last_assessed: skill.proficiency.map(|p| timestamp_to_pb(p.last_assessed)),
                    self_gap: skill.self_gap.map(f64::from),
                    evidence: skill
                        .evidence
                        .into_iter()
                        .map(|(a, weight)| pb::EvidenceItem {
                            assessment_id: a.id.to_string(),
                            source: source_to_pb(a.source).into(),
                            score: f64::from(a.score.value()),
                            assessed_at: Some(timestamp_to_pb(a.assessed_at)),
                            assessor_id: a.assessor.map(|p| p.to_string()).unwrap_or_default(),
                            weight,
                        })
                        .collect(),
                })
                .collect();
            Ok(Response::new(pb::GetPersonProfileResponse {
                person: Some((&person).into()),
                skills,
                calibration: view.calibration.map(f64::from),
            }))
        }
        .await
        .map_err(|e: Error| Status::from(e));
        let subjects = Caller::subject_if_exists(&snapshot.directory, &id);
        caller.answer(result, subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn get_person_gaps(
        &self,
        request: Request<pb::GetPersonGapsRequest>,
    ) -> Result<Response<pb::GetPersonGapsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pb::GetPersonGapsRequest {
            person_id,
            role_id,
            target_role,
        } = request.get_ref().clone();
        let id = required_id(&person_id, "person_id", PersonId::parse)?;
        let snapshot = self.engine.snapshot();
        let result = (|| {
            let person = caller.readable_person(&snapshot.directory, &id)?;
            let role_id = match (role_id.as_str(), target_role) {
                ("", false) => person.role.clone(),
                ("", true) => person
                    .target_role
                    .clone()
                    .ok_or_else(|| invalid("target_role", "the person has no target role"))?,
                (raw, _) => required_id(raw, "role_id", RoleId::parse)?,
            };
            let role = snapshot
                .directory
                .roles()
                .get(&role_id)
                .ok_or_else(|| invalid("role_id", "unknown role"))?;
            let (gaps, readiness) = person_gaps(&snapshot, person, role);
            Ok(Response::new(pb::GetPersonGapsResponse {
                role_id: role_id.to_string(),
                gaps: gaps
                    .into_iter()
                    .map(|(skill, g)| pb::SkillGap {
                        skill_id: skill.to_string(),
                        required_level: f64::from(g.required),
                        level: g.level.map(f64::from),
                        gap: f64::from(g.gap),
                        weight: f64::from(g.weight),
                        priority: f64::from(g.priority),
                        confidence: f64::from(g.confidence),
                    })
                    .collect(),
                readiness: f64::from(readiness),
            }))
        })()
        .map_err(|e: Error| Status::from(e));
        let subjects = Caller::subject_if_exists(&snapshot.directory, &id);
        caller.answer(result, subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn find_experts(
        &self,
        request: Request<pb::FindExpertsRequest>,
    ) -> Result<Response<pb::FindExpertsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let snapshot = self.engine.snapshot();
        let result = (|| {
            if request.requirements.is_empty() || request.requirements.len() > 20 {
                return Err(invalid("requirements", "must contain 1 to 20 items"));
            }
            let requirements = request
                .requirements
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let skill = required_id(
                        &r.skill_id,
                        &format!("requirements[{i}].skill_id"),
                        SkillId::parse,
                    )?;
                    if !snapshot.directory.skills().contains_key(&skill) {
                        return Err(invalid(
                            format!("requirements[{i}].skill_id"),
                            "unknown skill",
                        ));
                    }
                    let level = Level::parse(r.min_level).map_err(|v| {
                        Error::InvalidArgument(vec![
                            v.under(&format!("requirements[{i}].min_level")),
                        ])
                    })?;
                    Ok((skill, level.value()))
                })
                .collect::<Result<Vec<_>>>()?;
            if !(0.0..=1.0).contains(&request.min_confidence) {
                return Err(invalid("min_confidence", "must be a number from 0 to 1"));
            }
            let size = page::page_size_or_default(request.page_size)?;
            let question = format!(
                "{:?}",
                (
                    &request.requirements,
                    &request.scope_team_id,
                    request.min_confidence
                )
            );
            let bound_to = page::context(&["FindExperts", &question]);
            let offset = page::decode_token(&request.page_token, &bound_to)?
                .map(|cursor| <[u8; 8]>::try_from(cursor.as_slice()).map(u64::from_be_bytes))
                .transpose()
                .map_err(|_| invalid("page_token", "is not a token this server issued"))?
                .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
            let scope = caller.scope(&snapshot.directory);
            let within = match request.scope_team_id.as_str() {
                "" => None,
                raw => {
                    let team = required_id(raw, "scope_team_id", TeamId::parse)?;
                    admit_team(&scope, &snapshot.directory, &team)?;
                    Some(
                        snapshot
                            .directory
                            .subtree(team.as_str())
                            .ok_or(Error::NotFound { kind: "team" })?,
                    )
                }
            };
            let people = snapshot.directory.people().values().filter(|p| {
                scope.covers_person(p)
                    && within.as_ref().is_none_or(|teams| teams.contains(&p.team))
            });
            let ranked = find_experts(
                &snapshot,
                &requirements,
                people,
                request.min_confidence as f32,
            );
            let total = ranked.len();
            let experts = ranked
                .into_iter()
                .skip(offset)
                .take(size)
                .filter_map(|r| {
                    let person = snapshot.directory.person(r.key.as_str())?;
                    Some(pb::Expert {
                        person_id: person.id.to_string(),
                        display_name: person.display_name.as_str().to_owned(),
                        team_id: person.team.to_string(),
                        levels: r.levels.iter().map(|l| f64::from(*l)).collect(),
                        min_confidence: f64::from(r.min_confidence),
                        score: f64::from(r.score),
                    })
                })
                .collect::<Vec<_>>();
            let next = offset + experts.len();
            Ok(Response::new(pb::FindExpertsResponse {
                next_page_token: if next < total {
                    page::encode_token(&bound_to, &(next as u64).to_be_bytes())
                } else {
                    String::new()
                },
                experts,
                total: u32::try_from(total).unwrap_or(u32::MAX),
            }))
        })()
        .map_err(|e: Error| Status::from(e));
        let subjects = match &result {
            Ok(r) => r
                .get_ref()
                .experts
                .iter()
                .map(|e| e.person_id.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        caller.answer(result, subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn get_skill_risks(
        &self,
        request: Request<pb::GetSkillRisksRequest>,
    ) -> Result<Response<pb::GetSkillRisksResponse>, Status> {
        let caller = Caller::of(&request)?;
        let team = required_id(&request.get_ref().team_id, "team_id", TeamId::parse)?;
        let snapshot = self.engine.snapshot();
        let result = (|| {
            admit_team(
                &caller.scope(&snapshot.directory),
                &snapshot.directory,
                &team,
            )?;
            let risks = skill_risks(&snapshot, &team, Timestamp::now())?;
            Ok(Response::new(pb::GetSkillRisksResponse {
                risks: risks
                    .into_iter()
                    .map(|r| pb::SkillRisk {
                        skill_id: r.skill.to_string(),
                        kind: match r.kind {
                            RiskKind::SinglePoint => pb::RiskKind::SinglePoint,
                            RiskKind::Missing => pb::RiskKind::Missing,
                        }
                        .into(),
                        required_level: f64::from(r.required),
                        proficient_count: r.proficient,
                        holder_id: r.holder.map(|h| h.to_string()).unwrap_or_default(),
                        people_requiring: r.requiring,
                    })
                    .collect(),
            }))
        })()
        .map_err(|e: Error| Status::from(e));
        let subjects = match &result {
            Ok(r) => r
                .get_ref()
                .risks
                .iter()
                .filter(|r| !r.holder_id.is_empty())
                .map(|r| r.holder_id.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        caller.answer(result, subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn get_capability_trend(
        &self,
        request: Request<pb::GetCapabilityTrendRequest>,
    ) -> Result<Response<pb::GetCapabilityTrendResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let snapshot = self.engine.snapshot();
        let result = async {
            let team = required_id(&request.team_id, "team_id", TeamId::parse)?;
            if request.skill_ids.is_empty() || request.skill_ids.len() > 50 {
                return Err(invalid("skill_ids", "must contain 1 to 50 items"));
            }
            let skills = request
                .skill_ids
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let skill = required_id(s, &format!("skill_ids[{i}]"), SkillId::parse)?;
                    match snapshot.directory.skills().contains_key(&skill) {
                        true => Ok(skill),
                        false => Err(invalid(format!("skill_ids[{i}]"), "unknown skill")),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let at = |raw: Option<prost_types::Timestamp>, field: &str| {
                let raw = raw.ok_or_else(|| invalid(field, "is required"))?;
                timestamp_from_pb_any(raw).map_err(|v| Error::InvalidArgument(vec![v.under(field)]))
            };
            let (from, to) = (at(request.from, "from")?, at(request.to, "to")?);
            let dates = trend_dates(from, to, request.interval_days)?;
            admit_team(
                &caller.scope(&snapshot.directory),
                &snapshot.directory,
                &team,
            )?;
            let teams = snapshot
                .directory
                .subtree(team.as_str())
                .ok_or(Error::NotFound { kind: "team" })?;
            let members: Vec<PersonId> = teams
                .iter()
                .flat_map(|t| snapshot.directory.members(t.as_str()).cloned())
                .collect();
            let evidence = self.engine.assessments_about_many(members).await?;
            let model = snapshot.capability.model();

            let per_skill: Vec<Vec<Vec<Evidence>>> = skills
                .iter()
                .map(|skill| {
                    evidence
                        .iter()
                        .map(|(_, items)| {
                            items
                                .iter()
                                .filter(|a| a.skill == *skill)
                                .map(|a| Evidence {
                                    score: a.score.value(),
                                    source: a.source,
                                    at: a.assessed_at,
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect();
            let series: Vec<Vec<trends::TrendPoint>> = per_skill
                .iter()
                .map(|people| trends::skill_trend(model, people, &dates))
                .collect();
            let points = (0..dates.len())
                .flat_map(|d| {
                    skills
                        .iter()
                        .zip(&series)
                        .map(move |(skill, s)| pb::TrendPoint {
                            at: Some(timestamp_to_pb(s[d].at)),
                            skill_id: skill.to_string(),
                            mean_level: s[d].mean.map(f64::from),
                            known_count: s[d].known,
                            proficient_count: s[d].proficient,
                        })
                })
                .collect();
            let mut improvements: Vec<pb::Improvement> = skills
                .iter()
                .zip(&per_skill)
                .flat_map(|(skill, people)| {
                    people
                        .iter()
                        .zip(&evidence)
                        .filter_map(move |(items, (person, _))| {
                            let (start, end) = trends::improvement(model, items, from, to)?;
                            (end > start).then(|| pb::Improvement {
                                person_id: person.to_string(),
                                skill_id: skill.to_string(),
                                from_level: f64::from(start),
                                to_level: f64::from(end),
                                delta: f64::from(end - start),
                            })
                        })
                })
                .collect();
            improvements.sort_by(|a, b| {
                b.delta
                    .total_cmp(&a.delta)
                    .then_with(|| a.person_id.cmp(&b.person_id))
                    .then_with(|| a.skill_id.cmp(&b.skill_id))
            });
            improvements.truncate(10);
            Ok(Response::new(pb::GetCapabilityTrendResponse {
                points,
                improvements,
            }))
        }
        .await
        .map_err(|e: Error| Status::from(e));
        let subjects = match &result {
            Ok(r) => r
                .get_ref()
                .improvements
                .iter()
                .map(|i| i.person_id.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        caller.answer(result, subjects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever times and interval a request sends, a trend has at most 200 dates,
        /// or the request is refused; nothing panics or overflows.
        #[test]
        fn trend_dates_are_bounded_for_any_request(
            from_s in prop_oneof![any::<i64>(), Timestamp::MIN_SECONDS..=Timestamp::MAX_SECONDS],
            to_s in prop_oneof![any::<i64>(), Timestamp::MIN_SECONDS..=Timestamp::MAX_SECONDS],
            nanos in any::<i32>(),
            interval_days in any::<u32>(),
        ) {
            let (Ok(from), Ok(to)) = (
                Timestamp::parse_seconds(from_s, nanos.rem_euclid(1_000_000_000)),
                Timestamp::parse_seconds(to_s, 0),
            ) else {
                return Ok(());
            };
            if let Ok(dates) = trend_dates(from, to, interval_days) {
                prop_assert!(!dates.is_empty() && dates.len() as i64 <= MAX_TREND_POINTS);
            }
        }
    }

    #[test]
    fn the_widest_range_is_one_point_at_the_longest_interval_and_refused_at_the_shortest() {
        let (first, last) = (
            Timestamp::parse_seconds(Timestamp::MIN_SECONDS, 0).unwrap(),
            Timestamp::parse_seconds(Timestamp::MAX_SECONDS, 0).unwrap(),
        );
        assert_eq!(trend_dates(first, last, u32::MAX).unwrap().len(), 1);
        assert!(trend_dates(first, last, 1).is_err());
        assert!(trend_dates(last, first, 1).is_err());
    }
}
