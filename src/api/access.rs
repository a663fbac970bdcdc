//! `capsight.v1.AccessService`: tokens and the audit trail (admin only).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{required_id, role_from_pb, timestamp_from_pb_any};
use super::pb;
use crate::domain::{Grant, PersonId, TeamId, Text, TokenId, Violations};
use crate::error::Error;
use crate::service::access::{Access, AuditQuery, NewToken};
use crate::service::access::{AuditFilter, BackupFile, Manifest};
use crate::service::page::{self, PageRequest};

/// Largest ListAuditEvents page, in encoded bytes (a quarter of the common 4 MiB limit).
const MAX_AUDIT_PAGE_BYTES: usize = 1024 * 1024;

/// The access service, backed by the engine.
pub struct AccessApi {
    service: Arc<Access>,
}

impl AccessApi {
    /// The gRPC face of `service` (tokens, audit trail, backups).
    pub fn new(service: Arc<Access>) -> Self {
        Self { service }
    }
}

impl TryFrom<pb::CreateTokenRequest> for NewToken {
    type Error = Error;

    fn try_from(request: pb::CreateTokenRequest) -> Result<Self, Error> {
        new_token(request)
    }
}

fn new_token(request: pb::CreateTokenRequest) -> Result<NewToken, Error> {
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
    let (Some(role), Some(description), true) = (role, description, v.is_empty()) else {
        return Err(Error::InvalidArgument(v.into_vec()));
    };
    let grant = Grant::parse(role, teams, person).map_err(|e| Error::InvalidArgument(vec![e]))?;
    Ok(NewToken {
        grant,
        description,
        ttl_seconds,
    })
}

/// Bytes of the backup's data file per message.
const BACKUP_CHUNK: usize = 1024 * 1024;

impl From<&Manifest> for pb::BackupManifest {
    fn from(m: &Manifest) -> Self {
        Self {
            created_at: Some(prost_types::Timestamp {
                seconds: m.created_at_ms.div_euclid(1000),
                nanos: i32::try_from(m.created_at_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
            }),
            commits: m.commits,
            size_bytes: m.bytes,
            sha256: m.sha256.clone(),
            tree_records: m.trees.clone().into_iter().collect(),
            text: m.to_text(),
        }
    }
}

/// Sends the backup's data file in chunks, then its manifest; the file goes once read
/// (or when the caller leaves).
fn send_backup(
    backup: BackupFile,
    out: tokio::sync::mpsc::Sender<Result<pb::CreateBackupResponse, Status>>,
) {
    use std::io::Read;
    let part = |p| Ok(pb::CreateBackupResponse { part: Some(p) });
    let mut file = match std::fs::File::open(&backup.path) {
        Ok(file) => file,
        Err(e) => {
            let _ = out.blocking_send(Err(Status::internal(format!("backup unreadable: {e}"))));
            return;
        }
    };
    let mut buf = vec![0u8; BACKUP_CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let chunk = pb::create_backup_response::Part::Chunk(buf[..n].to_vec());
                if out.blocking_send(part(chunk)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = out.blocking_send(Err(Status::internal(format!("backup unreadable: {e}"))));
                return;
            }
        }
    }
    let manifest = pb::create_backup_response::Part::Manifest((&backup.manifest).into());
    // The file is sent: removed, and the next backup allowed, before the caller hears
    // the end (a caller asking again at once was refused as busy while this finished).
    drop(file);
    drop(backup);
    let _ = out.blocking_send(part(manifest));
}

#[tonic::async_trait]
impl pb::access_service_server::AccessService for AccessApi {
    type CreateBackupStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::CreateBackupResponse, Status>>;

    #[tracing::instrument(skip_all)]
    async fn create_backup(
        &self,
        request: Request<pb::CreateBackupRequest>,
    ) -> Result<Response<Self::CreateBackupStream>, Status> {
        let caller = Caller::of(&request)?;
        let answer = self.service.backup().await.map(|backup| {
            let (out, stream) = tokio::sync::mpsc::channel(4);
            tokio::task::spawn_blocking(move || send_backup(backup, out));
            (
                tokio_stream::wrappers::ReceiverStream::new(stream),
                Vec::new(),
            )
        });
        caller.respond(answer)
    }

    #[tracing::instrument(skip_all)]
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match NewToken::try_from(request.into_inner()) {
            Ok(token) => self.service.create_token(token).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer.map(|a| {
            a.map(|(token, info)| pb::CreateTokenResponse {
                token,
                info: Some((&info).into()),
            })
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = match required_id(&request.get_ref().token_id, "token_id", TokenId::parse) {
            Ok(id) => self.service.revoke_token(id).await,
            Err(e) => Err(e),
        };
        caller.respond_with(answer.map(|a| {
            a.map(|info| pb::RevokeTokenResponse {
                info: Some((&info).into()),
            })
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = Caller::of(&request)?;
        let (info, name) = self.service.whoami(&caller.token)?;
        Ok(Response::new(pb::WhoAmIResponse {
            token: Some((&info).into()),
            allowed_rpcs: super::auth::allowed_rpcs(caller.grant.role)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            display_name: name.unwrap_or_default(),
        }))
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
        let (tokens, next_page_token) = self.service.tokens(&page);
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.iter().map(Into::into).collect(),
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
        let since_key = format!("{since:?}");
        let bound_to =
            page::context(&["ListAuditEvents", &token_id, &rpc, &subject_id, &since_key]);
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
        let listed = self
            .service
            .audit(AuditQuery {
                filter,
                page_size,
                page_token,
                bound_to: bound_to.clone(),
            })
            .await?;
        let (events, mut next) = (listed.events, listed.next);
        // A page stops at MAX_AUDIT_PAGE_BYTES of encoded events (a wire concern, so
        // here), whatever its size says, so that any client's default message limit
        // (4 MiB) can take it.
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
