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

mod convert;

use super::capability::CapabilityApi;
use super::convert::{required_id, timestamp_from_pb_any};
use super::pb;
use super::pb::capability_service_server::CapabilityServiceServer;
use crate::domain::{FieldViolation, Grant, SkillId, TeamId};
use crate::error::{Error, Result};
use crate::service::capability::{Capability, TEAM_MEMBER_PAGES, TeamQuestion};
use crate::service::page::{self, PageRequest};
use convert::{page_of, to_dense, to_pb};

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
        let page = PageRequest::parse_sized(
            page_size,
            page_token,
            page::context(&context),
            TEAM_MEMBER_PAGES,
        )?;
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
