//! `capsight.v1.CapabilityService`: team capability, once or as a live stream.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::convert::{required_id, timestamp_to_pb};
use super::pb;
use crate::domain::{Scope, SkillId, TeamId, Timestamp};
use crate::engine::Engine;
use crate::engine::queries::{TeamCapabilityView, team_capability};
use crate::error::{Error, Result};

/// How long a watcher waits for more changes before sending, so a burst of writes
/// yields one update.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// The capability service, backed by the engine.
pub struct CapabilityApi {
    engine: Arc<Engine>,
    shutdown: watch::Receiver<bool>,
}

impl CapabilityApi {
    /// A service reading `engine`'s snapshots; watches end when `shutdown` turns true.
    pub fn new(engine: Arc<Engine>, shutdown: watch::Receiver<bool>) -> Self {
        Self { engine, shutdown }
    }
}

/// A validated team question.
#[derive(Clone)]
struct TeamQuery {
    team: TeamId,
    include_subteams: bool,
    skills: Vec<SkillId>,
}

impl TeamQuery {
    fn parse(team_id: &str, include_subteams: bool, skill_ids: &[String]) -> Result<Self> {
        let team = required_id(team_id, "team_id", TeamId::parse)?;
        let skills = skill_ids
            .iter()
            .enumerate()
            .map(|(i, s)| required_id(s, &format!("skill_ids[{i}]"), SkillId::parse))
            .collect::<Result<_>>()?;
        Ok(Self {
            team,
            include_subteams,
            skills,
        })
    }

    /// The view, if the caller may see the team: a scoped caller asking for a team outside
    /// its scope is denied whether or not the team exists.
    fn answer(
        &self,
        engine: &Engine,
        caller: &Caller,
    ) -> Result<(pb::TeamCapability, Vec<String>)> {
        let snapshot = engine.snapshot();
        let scope = caller.scope(&snapshot.directory);
        if scope != Scope::Everything && !scope.covers_team(&self.team) {
            return Err(Error::PermissionDenied);
        }
        let view = team_capability(
            &snapshot,
            &self.team,
            self.include_subteams,
            &self.skills,
            Timestamp::now(),
        )?;
        let subjects = view.members.iter().map(|p| p.id.to_string()).collect();
        Ok((to_pb(&self.team, view), subjects))
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
    }
}

#[tonic::async_trait]
impl pb::capability_service_server::CapabilityService for CapabilityApi {
    #[tracing::instrument(skip_all)]
    async fn get_team_capability(
        &self,
        request: Request<pb::GetTeamCapabilityRequest>,
    ) -> Result<Response<pb::GetTeamCapabilityResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.get_ref();
        let query = TeamQuery::parse(&r.team_id, r.include_subteams, &r.skill_ids)?;
        let answer = query.answer(&self.engine, &caller);
        let subjects = answer.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
        let result = answer
            .map(|(capability, _)| {
                Response::new(pb::GetTeamCapabilityResponse {
                    capability: Some(capability),
                })
            })
            .map_err(Status::from);
        caller.audit(&self.engine, subjects, &result).await;
        result
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
        let query = TeamQuery::parse(&r.team_id, r.include_subteams, &r.skill_ids)?;
        let (first, subjects) = query.answer(&self.engine, &caller)?;
        caller
            .audit(&self.engine, subjects, &Ok::<(), Status>(()))
            .await;

        let (updates, stream) = mpsc::channel(4);
        let engine = Arc::clone(&self.engine);
        let mut changes = engine.changes();
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut last = first.clone();
            if updates
                .send(Ok(pb::WatchTeamCapabilityResponse {
                    capability: Some(first),
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
                let current = match query.answer(&engine, &caller) {
                    Ok((current, _)) => current,
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
                    capability: Some(current),
                };
                if updates.send(Ok(update)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }
}
