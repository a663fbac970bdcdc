//! `capsight.v1.AccessService`: tokens and the audit trail (admin only).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{required_id, role_from_pb, timestamp_from_pb_any};
use super::pb;
use crate::domain::{FieldViolation, Grant, PersonId, TeamId, Text, TokenId, Violations};
use crate::engine::Engine;
use crate::error::Error;
use crate::service::page::{self, PageRequest};
use crate::store::AuditFilter;

/// Longest a token may live: 100 years, so that an expiry is always a valid timestamp.
const MAX_TOKEN_TTL_SECONDS: u64 = 100 * 365 * 86_400;

/// Largest ListAuditEvents page, in encoded bytes (a quarter of the common 4 MiB limit).
const MAX_AUDIT_PAGE_BYTES: usize = 1024 * 1024;

/// The access service, backed by the engine.
pub struct AccessApi {
    engine: Arc<Engine>,
}

impl AccessApi {
    /// A service managing `engine`'s tokens and reading its audit trail.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

fn grant_from_pb(request: pb::CreateTokenRequest) -> Result<(Grant, Text, Option<i64>), Error> {
    let pb::CreateTokenRequest {
        role,
        team_ids,
        person_id,
        description,
        ttl_seconds,
    } = request;
    let mut v = Violations::default();
    let role = v.take("role", role_from_pb(role));
    let teams: Vec<TeamId> = team_ids
        .iter()
        .enumerate()
        .filter_map(|(i, t)| v.take(&format!("team_ids[{i}]"), TeamId::parse(t)))
        .collect();
    let person = if person_id.is_empty() {
        None
    } else {
        v.take("person_id", PersonId::parse(&person_id))
    };
    let description = v.take(
        "description",
        Text::name(&description).or_else(|e| {
            if description.is_empty() {
                Ok(Text::default())
            } else {
                Err(e)
            }
        }),
    );
    // Capped so that an expiry is always a representable protobuf timestamp.
    let ttl_ms = match ttl_seconds {
        0 => None,
        s if s <= MAX_TOKEN_TTL_SECONDS => Some(s as i64 * 1000),
        _ => {
            v.push(FieldViolation::new(
                "ttl_seconds",
                "must be at most 3,153,600,000 (100 years)",
            ));
            None
        }
    };
    let (Some(role), Some(description), true) = (role, description, v.is_empty()) else {
        return Err(Error::InvalidArgument(v.into_vec()));
    };
    let grant = Grant::parse(role, teams, person).map_err(|e| Error::InvalidArgument(vec![e]))?;
    Ok((grant, description, ttl_ms))
}

#[tonic::async_trait]
impl pb::access_service_server::AccessService for AccessApi {
    #[tracing::instrument(skip_all)]
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let caller = Caller::of(&request)?;
        let subjects = request
            .get_ref()
            .team_ids
            .iter()
            .chain([&request.get_ref().person_id])
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        let result = async {
            let (grant, description, ttl_ms) = grant_from_pb(request.into_inner())?;
            let (token, info) = self.engine.create_token(grant, description, ttl_ms).await?;
            Ok(Response::new(pb::CreateTokenResponse {
                token,
                info: Some((&info).into()),
            }))
        }
        .await;
        caller.answer_ok(result, subjects)
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let caller = Caller::of(&request)?;
        let raw = request.get_ref().token_id.clone();
        let result = async {
            let id = required_id(&raw, "token_id", TokenId::parse)?;
            let info = self.engine.revoke_token(id).await?;
            Ok(Response::new(pb::RevokeTokenResponse {
                info: Some((&info).into()),
            }))
        }
        .await;
        caller.answer_ok(result, vec![raw])
    }

    #[tracing::instrument(skip_all)]
    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let request = request.into_inner();
        let page = PageRequest::parse(
            request.page_size,
            &request.page_token,
            page::context(&["ListTokens"]),
        )?;
        let infos = self.engine.snapshot().tokens.infos();
        let (tokens, next_page_token) = page.apply(&infos, |_| true);
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.into_iter().map(Into::into).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let pb::ListAuditEventsRequest {
            page_size,
            page_token,
            token_id,
            rpc,
            subject_id,
            since,
        } = request.into_inner();
        let limit = page::page_size_or_default(page_size)?;
        let since_key = format!("{since:?}");
        let bound_to =
            page::context(&["ListAuditEvents", &token_id, &rpc, &subject_id, &since_key]);
        let before = page::decode_token(&page_token, &bound_to)?
            .map(|cursor| <[u8; 8]>::try_from(cursor.as_slice()).map(u64::from_be_bytes))
            .transpose()
            .map_err(|_| invalid("page_token", "is not a token this server issued"))?;
        let token = (!token_id.is_empty())
            .then(|| required_id(&token_id, "token_id", TokenId::parse))
            .transpose()?;
        let since = since
            .map(timestamp_from_pb_any)
            .transpose()
            .map_err(|v| Error::InvalidArgument(vec![v.under("since")]))?;
        let filter = AuditFilter {
            token,
            rpc: (!rpc.is_empty()).then_some(rpc),
            subject: (!subject_id.is_empty()).then_some(subject_id),
            since,
        };
        let (events, mut next) = self.engine.audit_page(filter, before, limit).await?;
        // A page stops at MAX_AUDIT_PAGE_BYTES, whatever its size says, so that any
        // client's default message limit (4 MiB) can take it.
        let mut bytes = 0;
        let mut page: Vec<pb::AuditEvent> = Vec::with_capacity(events.len());
        for event in &events {
            let listed = pb::AuditEvent::from(event);
            bytes += prost::Message::encoded_len(&listed) + 4;
            if bytes > MAX_AUDIT_PAGE_BYTES && !page.is_empty() {
                next = Some(page.last().map_or(event.sequence, |e| e.sequence));
                break;
            }
            page.push(listed);
        }
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page,
            next_page_token: next
                .map(|n| page::encode_token(&bound_to, &n.to_be_bytes()))
                .unwrap_or_default(),
        }))
    }
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}
