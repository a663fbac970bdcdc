//! WatchTeamCapability's stream: the team's view, then the view again after each change
//! that alters it, until the caller leaves, its token ends or the server stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::api::auth::Caller;
use crate::api::pb;
use crate::api::team_capability::{TeamCache, TeamQuery};
use crate::service::capability::Capability;

/// How long a watcher waits for more changes before sending, so a burst of writes
/// yields one update.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// Sends `first` (in the layout `query` asks for), then each changed view of the same
/// question, asked again with the caller's grant after every change (debounced).
pub(super) async fn follow(
    query: TeamQuery,
    first: pb::TeamCapability,
    service: Arc<Capability>,
    cache: Arc<TeamCache>,
    caller: Caller,
    mut shutdown: watch::Receiver<bool>,
    updates: mpsc::Sender<Result<pb::WatchTeamCapabilityResponse, Status>>,
) {
    let mut changes = service.changes();
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
        if !service.token_active(&caller.token) {
            let _ = updates
                .send(Err(Status::unauthenticated("token revoked or expired")))
                .await;
            break;
        }
        let current = match query.cells().answer(&service, &caller.grant, &cache) {
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
}
