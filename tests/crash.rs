//! Crash test: a child `capsight serve` receives streamed batches and is killed with
//! SIGKILL at random moments. After each restart the store must open cleanly and every
//! acknowledged assessment must still be there: re-sending it must come back as a
//! duplicate, never as newly accepted. The same loop with acknowledgement-before-flush
//! forced must detect loss, which shows the check bites.
//!
//! `CAPSIGHT_CRASH_CYCLES` (default 20) and `CAPSIGHT_CRASH_SEED` tune it.

use std::time::Duration;

use capsight::api::pb;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, BufReader};

#[path = "support/serving.rs"]
mod serving;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// A channel that sends the admin token with every call.
use serving::Authed;

const BATCH: usize = 250;

struct Child_ {
    process: Child,
    channel: Authed,
    /// host:port the server listens on.
    address: String,
}

/// Starts `capsight serve` on a free port and connects to it.
async fn start(data_dir: &std::path::Path, unsafe_ack: bool) -> Child_ {
    start_with(data_dir, unsafe_ack, &[]).await
}

/// Starts `capsight serve` with `extra` arguments.
async fn start_with(data_dir: &std::path::Path, unsafe_ack: bool, extra: &[&str]) -> Child_ {
    start_command(
        data_dir,
        unsafe_ack,
        extra,
        Command::new(env!("CARGO_BIN_EXE_capsight")),
    )
    .await
}

/// Starts `command` (capsight, perhaps behind a wrapper) as `serve` and connects to it.
async fn start_command(
    data_dir: &std::path::Path,
    unsafe_ack: bool,
    extra: &[&str],
    mut command: Command,
) -> Child_ {
    serving::serve(&mut command, data_dir).args(extra);
    if unsafe_ack {
        command.arg("--unsafe-ack-before-flush");
    }
    let mut process = command.spawn().expect("spawn capsight");
    let mut lines = BufReader::new(process.stderr.take().expect("stderr")).lines();
    let address = serving::serving_address(&mut lines).await;
    // Keep draining the log so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let channel = serving::connect(&address, data_dir).await;
    Child_ {
        process,
        channel,
        address,
    }
}

/// Sends SIGTERM to `process`.
fn sigterm(process: &Child) {
    serving::terminate(process.id().expect("running"));
}

/// Assessments `prefix-i` for each `i` of `range`.
fn batch(prefix: &str, range: std::ops::Range<u32>) -> Vec<pb::Assessment> {
    range.map(|i| assessment(format!("{prefix}-{i}"))).collect()
}

async fn seed_org(channel: Authed) {
    serving::seed_org(channel, "t", &["p".to_owned()]).await;
}

fn assessment(id: String) -> pb::Assessment {
    serving::assessment(id, "p", "")
}

/// Streams batches until the server dies; returns the ids of acknowledged items.
async fn stream_until_killed(channel: Authed, cycle: usize) -> Vec<String> {
    let mut ingest = IngestServiceClient::new(channel);
    let (sender, receiver) = mpsc::channel(8);
    tokio::spawn(async move {
        for seq in 0u64.. {
            let items = (0..BATCH)
                .map(|i| assessment(format!("c{cycle}-b{seq}-{i}")))
                .collect();
            let batch = pb::StreamAssessmentsRequest {
                sequence: seq,
                assessments: items,
            };
            if sender.send(batch).await.is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    let Ok(response) = ingest
        .stream_assessments(ReceiverStream::new(receiver))
        .await
    else {
        return acked;
    };
    let mut acks = response.into_inner();
    while let Some(Ok(ack)) = acks.next().await {
        assert_eq!(ack.accepted as usize, BATCH, "every streamed item is new");
        acked.extend((0..BATCH).map(|i| format!("c{cycle}-b{}-{i}", ack.sequence)));
    }
    acked
}

/// Re-sends `acked`; returns how many the server accepted as new (i.e. had lost).
async fn lost(channel: Authed, acked: &[String]) -> usize {
    let mut ingest = IngestServiceClient::new(channel);
    let mut lost = 0;
    for chunk in acked.chunks(5_000) {
        let items = chunk.iter().cloned().map(assessment).collect();
        let response = ingest
            .record_assessments(pb::RecordAssessmentsRequest { assessments: items })
            .await
            .expect("re-send")
            .into_inner();
        // A vanished person or skill means an acknowledged directory write was lost too;
        // any other rejection would mean the harness re-sent something different.
        let unknown = pb::RejectionKind::UnknownReference as i32;
        assert!(
            response.rejections.iter().all(|r| r.kind == unknown),
            "re-sent content is identical: {:?}",
            response.rejections.first()
        );
        lost += response.accepted as usize + response.rejections.len();
    }
    lost
}

/// Runs kill/restart cycles; returns (cycles with loss, total acknowledged, total lost).
async fn kill_cycles(unsafe_ack: bool, cycles: usize, stop_on_loss: bool) -> (usize, usize, usize) {
    let seed = std::env::var("CAPSIGHT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut server = start(&data, unsafe_ack).await;
    seed_org(server.channel.clone()).await;
    if unsafe_ack {
        // Nothing is flushed in this mode until shutdown: stop gracefully once so the seed
        // is on disk and the cycles measure assessments.
        let pid = server.process.id().expect("pid").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        assert!(status.expect("kill -TERM").success());
        server.process.wait().await.expect("graceful stop");
        server = start(&data, unsafe_ack).await;
    }
    let (mut lossy_cycles, mut total_acked, mut total_lost) = (0, 0, 0);
    for cycle in 0..cycles {
        let kill_after = Duration::from_millis(rng.random_range(100..600));
        let streaming = tokio::spawn(stream_until_killed(server.channel.clone(), cycle));
        tokio::time::sleep(kill_after).await;
        server.process.start_kill().expect("SIGKILL");
        server.process.wait().await.expect("reap");
        let acked = streaming.await.expect("stream task");
        server = start(&data, unsafe_ack).await;
        let lost_now = lost(server.channel.clone(), &acked).await;
        eprintln!(
            "cycle {cycle}: killed after {kill_after:?}, {} acknowledged, {lost_now} lost",
            acked.len()
        );
        total_acked += acked.len();
        total_lost += lost_now;
        if lost_now > 0 {
            lossy_cycles += 1;
            if stop_on_loss {
                break;
            }
        }
    }
    server.process.start_kill().ok();
    (lossy_cycles, total_acked, total_lost)
}

fn cycles() -> usize {
    std::env::var("CAPSIGHT_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_assessments_survive_sigkill_at_random_moments() {
    let cycles = cycles();
    let (lossy, acked, lost) = kill_cycles(false, cycles, false).await;
    eprintln!("durable mode: {cycles} cycles, {acked} acknowledged, {lost} lost");
    assert!(
        acked > 0,
        "the test acknowledged nothing, so it proved nothing"
    );
    assert_eq!((lossy, lost), (0, 0), "acknowledged assessments were lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crash_test_detects_loss_when_acknowledging_before_flush() {
    // Loss needs a kill while acknowledged data is still in sled's buffers (the page
    // cache survives SIGKILL), which a loaded machine makes rarer: up to three times the
    // cycles, stopping at the first loss.
    let (lossy, acked, lost) = kill_cycles(true, cycles() * 3, true).await;
    eprintln!("ack-before-flush mode: {acked} acknowledged, {lost} lost");
    assert!(
        lossy > 0 && lost > 0,
        "ack-before-flush lost nothing; the crash test would not bite"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_computations_exits_within_the_grace_period() {
    use capsight::api::pb::org_insights_service_client::OrgInsightsServiceClient;
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let args = ["--demo", "--shutdown-grace-secs", "1"];
    let mut server = start_with(&data, false, &args).await;
    // Clusterings of 2,000 people for many k: far more work than the grace period.
    let calls: Vec<_> = (2..40)
        .map(|k| {
            let mut insights = OrgInsightsServiceClient::new(server.channel.clone());
            tokio::spawn(async move {
                let request = pb::GetSkillArchetypesRequest {
                    k: Some(k),
                    result_policy: pb::ResultPolicy::Current.into(),
                    ..Default::default()
                };
                insights.get_skill_archetypes(request).await.map(drop)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(&server.process);
    let started = std::time::Instant::now();
    let exited = tokio::time::timeout(Duration::from_secs(10), server.process.wait()).await;
    let status = exited.expect("exited in time").expect("wait");
    assert!(status.success(), "clean exit: {status:?}");
    // Grace (1 s) plus the store's flush; never the computations' length.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    for call in calls {
        let _ = call.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_open_file_limit_never_stall_writes_or_shutdown() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    // The common default limit of 1,024 open files, hard and soft, for the server only.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "ulimit -n 1024 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_capsight"),
    ]);
    let args = ["--shutdown-grace-secs", "2"];
    let mut server = start_command(&data, false, &args, command).await;
    seed_org(server.channel.clone()).await;
    let address = server.address.clone();

    // 1,100 idle connections (no token needed), held open.
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        match tokio::net::TcpStream::connect(&address).await {
            Ok(stream) => idle.push(stream),
            Err(e) => panic!("connect: {e}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The existing client still writes and reads. A batch this large is stored by sled
    // as a blob file of its own: the write needs a new descriptor.
    let mut ingest = IngestServiceClient::new(server.channel.clone());
    let during: Vec<_> = batch("flood-during", 0..60)
        .into_iter()
        .map(|a| pb::Assessment {
            evidence: "x".repeat(4_000),
            ..a
        })
        .collect();
    let written = ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: during,
        })
        .await
        .expect("a write during the flood");
    assert_eq!(written.get_ref().accepted, 60);
    let mut directory = DirectoryServiceClient::new(server.channel.clone());
    directory
        .get_person(pb::GetPersonRequest {
            person_id: "p".into(),
        })
        .await
        .expect("a read during the flood");

    // Once the idle connections close, a new client writes.
    drop(idle);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = serving::connect(&address, &data).await;
    let written = IngestServiceClient::new(fresh)
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: batch("flood-after", 0..10),
        })
        .await
        .expect("a write after the flood");
    assert_eq!(written.get_ref().accepted, 10);

    sigterm(&server.process);
    let exited = tokio::time::timeout(Duration::from_secs(8), server.process.wait()).await;
    assert!(
        exited
            .expect("exited within the grace period")
            .expect("wait")
            .success()
    );
}
