//! GetTeamCapability's transport-level speed-up: answers are cached per data version
//! as response messages, encoded once, and sent as bytes (a cache hit copies no message
//! and encodes nothing). Who may see which team is `service::capability`'s rule, checked
//! before every lookup.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::BoxFuture;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::capability::CapabilityApi;
use super::convert::{required_id, timestamp_from_pb_any, timestamp_to_pb};
use super::pb;
use super::pb::capability_service_server::CapabilityServiceServer;
use crate::domain::{FieldViolation, Grant, SkillId, TeamId};
use crate::engine::queries::TeamCapabilityView;
use crate::error::{Error, Result};
use crate::service::capability::{Capability, TeamQuestion};
use crate::service::page::{self, PageFields, PageRequest};

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

/// The question and whether it wants the DENSE layout.
type TeamKey = (TeamQuestion, bool, PageRequest);

/// Team views of the current snapshot version, by question. A view is the same for every
/// caller allowed to see the team, so views are shared; access is checked before lookup.
#[derive(Default)]
pub(super) struct TeamCache {
    entries: std::sync::RwLock<(u64, HashMap<TeamKey, Arc<TeamAnswer>>)>,
}

/// A team view ready to send, shared by every caller who asks the same question.
pub(super) struct TeamAnswer {
    pub(super) view: pb::TeamCapability,
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
    pub(super) fn subjects(&self) -> Vec<String> {
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
    pub(super) fn clear(&self) {
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

/// A validated team question, the layout it wants and the page of members.
#[derive(Clone)]
pub(super) struct TeamQuery {
    question: TeamQuestion,
    /// The DENSE matrix layout rather than CELLS.
    dense: bool,
    /// Which members.
    page: PageRequest,
}

/// Page fields and sizes of a team's members: a member row is about 1.6 KB in the CELLS
/// layout over 500 skills, so a default page stays near 1.6 MB.
const MEMBER_PAGES: PageFields = PageFields {
    size: "member_page_size",
    token: "member_page_token",
    default: 1_000,
    most: 10_000,
};

/// The members of `view` on `page`: the view cut to them (skill summaries and readiness
/// still cover the whole team), the next page's token and the whole team's size.
fn page_of(mut view: TeamCapabilityView, page: &PageRequest) -> (TeamCapabilityView, String, u32) {
    let count = u32::try_from(view.members.len()).unwrap_or(u32::MAX);
    let (range, next) = page.apply_sorted(&view.members, |p| p.id.to_string());
    view.members = view.members.drain(range.clone()).collect();
    view.cells = view.cells.drain(range.clone()).collect();
    view.summary.member_readiness = view.summary.member_readiness.drain(range).collect();
    (view, next, count)
}

impl TeamQuery {
    pub(super) fn parse(
        team_id: &str,
        include_subteams: bool,
        skill_ids: &[String],
        layout: i32,
        (page_size, page_token): (u32, &str),
    ) -> Result<Self> {
        let mut context = vec![
            "TeamCapability",
            team_id,
            if include_subteams { "subteams" } else { "" },
        ];
        context.extend(skill_ids.iter().map(String::as_str));
        let page =
            PageRequest::parse_sized(page_size, page_token, page::context(&context), MEMBER_PAGES)?;
        let team = required_id(team_id, "team_id", TeamId::parse)?;
        let skills = skill_ids
            .iter()
            .enumerate()
            .map(|(i, s)| required_id(s, &format!("skill_ids[{i}]"), SkillId::parse))
            .collect::<Result<_>>()?;
        let dense = match pb::MatrixLayout::try_from(layout) {
            Ok(pb::MatrixLayout::Unspecified | pb::MatrixLayout::Cells) => false,
            Ok(pb::MatrixLayout::Dense) => true,
            Err(_) => {
                return Err(Error::InvalidArgument(vec![FieldViolation::new(
                    "layout",
                    "must be a known matrix layout",
                )]));
            }
        };
        Ok(Self {
            question: TeamQuestion {
                team,
                include_subteams,
                skills,
            },
            dense,
            page,
        })
    }

    /// The same question in the CELLS layout.
    pub(super) fn cells(&self) -> Self {
        Self {
            dense: false,
            ..self.clone()
        }
    }

    /// `view` (in the CELLS layout) in the layout asked for.
    pub(super) fn lay_out(&self, view: pb::TeamCapability) -> Arc<TeamAnswer> {
        TeamAnswer::new(if self.dense { to_dense(&view) } else { view })
    }

    /// The view at a past date (not cached).
    pub(super) async fn answer_as_of(
        &self,
        service: &Capability,
        grant: &Grant,
        raw: prost_types::Timestamp,
    ) -> Result<Arc<TeamAnswer>> {
        let as_of = timestamp_from_pb_any(raw)
            .map_err(|v| Error::InvalidArgument(vec![v.under("as_of")]))?;
        let view = service.team_as_of(grant, &self.question, as_of).await?;
        Ok(self.lay_out(to_pb(&self.question.team, page_of(view, &self.page))))
    }

    /// The view now, from the cache when this version already answered the question;
    /// the service admits the caller first either way.
    pub(super) fn answer(
        &self,
        service: &Capability,
        grant: &Grant,
        cache: &TeamCache,
    ) -> Result<Arc<TeamAnswer>> {
        let version = service.admit_team(grant, &self.question.team)?;
        let key = (self.question.clone(), self.dense, self.page.clone());
        if let Some(view) = cache.get(version, &key) {
            return Ok(view);
        }
        let view = service.team(grant, &self.question)?;
        let version = view.version;
        let answer = self.lay_out(to_pb(&self.question.team, page_of(view, &self.page)));
        cache.put(version, key, Arc::clone(&answer));
        Ok(answer)
    }
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
        next_member_page_token: view.next_member_page_token.clone(),
        member_count: view.member_count,
    }
}

fn to_pb(
    team: &TeamId,
    (view, next_member_page_token, member_count): (TeamCapabilityView, String, u32),
) -> pb::TeamCapability {
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
        next_member_page_token,
        member_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pre_encoded_answer_decodes_to_the_generated_response() {
        let view = pb::TeamCapability {
            team_id: "backend".into(),
            skill_ids: vec!["rust".into()],
            members: vec![pb::MemberCapability {
                person_id: "alice".into(),
                display_name: "Alice".into(),
                role_id: "dev".into(),
                cells: vec![pb::CapabilityCell {
                    level: Some(3.5),
                    confidence: 0.75,
                    evidence_count: 2,
                    last_assessed: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 0,
                    }),
                }],
                readiness: Some(0.5),
            }],
            data_version: 7,
            ..Default::default()
        };
        let answer = TeamAnswer::new(view.clone());
        let decoded: pb::GetTeamCapabilityResponse =
            prost::Message::decode(answer.encoded()).unwrap();
        assert_eq!(decoded.capability, Some(view.clone()));
        // DENSE carries the same known cells.
        let dense = to_dense(&view);
        let matrix = dense.dense.unwrap();
        assert_eq!(matrix.known_bitmap.as_ref(), &[1u8]);
        assert_eq!(matrix.levels_f32le.as_ref(), &3.5f32.to_le_bytes());
    }
}
