//! Corruption matrix: a store with acknowledged data (and an erasure) is stopped; copies
//! of it are damaged in each way a disk, an operator or a bad restore can damage one;
//! a child `capsight serve` is started on each copy. Every case must either serve
//! exactly the acknowledged state or refuse to start with a clear error. No case may
//! serve an older state, bring the erased person back, or replace `admin.token`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use capsight::api::pb;
use capsight::api::pb::access_service_client::AccessServiceClient;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[path = "support/serving.rs"]
mod serving;

use serving::Authed;

/// A started child server, or the log of one that refused to start.
#[allow(clippy::large_enum_variant)] // one short-lived value at a time
enum Started {
    Serving {
        child: Child,
        channel: Authed,
    },
    Refused {
        status: std::process::ExitStatus,
        log: Vec<String>,
    },
}

async fn start(data: &Path) -> Started {
    start_with(data, &[]).await
}

async fn start_with(data: &Path, args: &[&str]) -> Started {
    let mut child = serving::serve(&mut Command::new(env!("CARGO_BIN_EXE_capsight")), data)
        .args(args)
        .spawn()
        .expect("spawn capsight");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    match serving::serving_or_exit(&mut lines).await {
        Ok(address) => {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Started::Serving {
                child,
                channel: serving::connect(&address, data).await,
            }
        }
        Err(log) => {
            let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .expect("exited")
                .expect("status");
            Started::Refused { status, log }
        }
    }
}

async fn stop(mut child: Child) {
    serving::terminate(child.id().expect("pid"));
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stopped in time")
        .expect("status");
}

/// What the server serves: each person's assessment count, and the token ids.
#[derive(Debug, PartialEq)]
struct State {
    people: BTreeMap<String, u64>,
    tokens: Vec<String>,
}

async fn state(channel: &Authed) -> State {
    let mut directory = DirectoryServiceClient::new(channel.clone());
    let listed = directory
        .list_people(pb::ListPeopleRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list people")
        .into_inner();
    let mut people = BTreeMap::new();
    for p in listed.people {
        let count = directory
            .get_person(pb::GetPersonRequest {
                person_id: p.id.clone(),
            })
            .await
            .expect("get person")
            .into_inner()
            .assessment_count;
        people.insert(p.id, count);
    }
    let tokens = AccessServiceClient::new(channel.clone())
        .list_tokens(pb::ListTokensRequest::default())
        .await
        .expect("list tokens")
        .into_inner()
        .tokens
        .into_iter()
        .map(|t| t.token_id)
        .collect();
    State { people, tokens }
}

/// Builds the original store: people, 40 batches of assessments with long evidence text
/// (some values large enough for sled's blob files), a token and an erasure.
async fn original(data: &Path, old: &Path) -> State {
    let Started::Serving { child, channel } = start(data).await else {
        panic!("a fresh store starts");
    };
    let people: Vec<String> = (0..12).map(|i| format!("p{i:02}")).collect();
    serving::seed_org(channel.clone(), "org", &people).await;
    let mut ingest = IngestServiceClient::new(channel.clone());
    for batch in 0..40 {
        // Every fifth batch is large (about 400 KB), the rest small.
        let items = if batch % 5 == 0 { 200 } else { 10 };
        let assessments = (0..items)
            .map(|i| {
                let person = format!("p{:02}", (batch + i) % 12);
                serving::assessment(format!("b{batch}-{i}"), &person, &"x".repeat(2_000))
            })
            .collect();
        ingest
            .record_assessments(pb::RecordAssessmentsRequest { assessments })
            .await
            .expect("assessments");
    }
    // A copy of the store as it is now, stopped: an older state to roll back to.
    stop(child).await;
    copy_dir(data, old);
    let Started::Serving { child, channel } = start(data).await else {
        panic!("the store starts again");
    };
    let mut directory = DirectoryServiceClient::new(channel.clone());
    AccessServiceClient::new(channel.clone())
        .create_token(pb::CreateTokenRequest {
            role: pb::AccessRole::Analyst.into(),
            description: "kept".into(),
            ..Default::default()
        })
        .await
        .expect("token");
    directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "p03".into(),
        })
        .await
        .expect("erasure");
    let acknowledged = state(&channel).await;
    assert!(!acknowledged.people.contains_key("p03"));
    stop(child).await;
    acknowledged
}

fn verify(data: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_capsight"))
        .args(["verify", "--data-dir"])
        .arg(data)
        .output()
        .expect("run capsight verify")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn flip(path: &Path, at: f64) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
    bytes[i] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn zero_page(path: &Path, at: f64) {
    let mut bytes = std::fs::read(path).unwrap();
    let start = ((bytes.len() as f64 * at) as usize) / 4096 * 4096;
    let end = (start + 4096).min(bytes.len());
    bytes[start..end].fill(0);
    std::fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, keep: f64) {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len((len as f64 * keep) as u64).unwrap();
}

fn random_bytes(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len().max(4096) as usize;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(path, bytes).unwrap();
}

fn blobs(data: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(data.join("blobs"))
        .map(|dir| dir.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damaged_store_serves_the_acknowledged_state_or_refuses_to_start() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("original");
    let old = temp.path().join("older");
    let acknowledged = original(&data, &old).await;
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let has_blobs = !blobs(&data).is_empty();
    println!(
        "store: db {} bytes, {} blob files",
        std::fs::metadata(data.join("db")).unwrap().len(),
        blobs(&data).len()
    );

    type Damage = Box<dyn Fn(&Path)>;
    let mut cases: Vec<(&str, Damage)> = vec![
        ("untouched", Box::new(|_: &Path| {})),
        (
            "db: byte flipped at 30%",
            Box::new(|d: &Path| flip(&d.join("db"), 0.3)),
        ),
        (
            "db: byte flipped at 50%",
            Box::new(|d: &Path| flip(&d.join("db"), 0.5)),
        ),
        (
            "db: byte flipped at 70%",
            Box::new(|d: &Path| flip(&d.join("db"), 0.7)),
        ),
        (
            "db: byte flipped at 95%",
            Box::new(|d: &Path| flip(&d.join("db"), 0.95)),
        ),
        (
            "db: 4 KiB page zeroed at 60%",
            Box::new(|d: &Path| zero_page(&d.join("db"), 0.6)),
        ),
        (
            "db: truncated to 50%",
            Box::new(|d: &Path| truncate(&d.join("db"), 0.5)),
        ),
        (
            "db: truncated to 4096 bytes",
            Box::new(|d: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("db"))
                    .unwrap();
                f.set_len(4096).unwrap();
            }),
        ),
        (
            "db: truncated to 0",
            Box::new(|d: &Path| truncate(&d.join("db"), 0.0)),
        ),
        (
            "db: replaced by random bytes",
            Box::new(|d: &Path| random_bytes(&d.join("db"))),
        ),
        (
            "db: deleted",
            Box::new(|d: &Path| std::fs::remove_file(d.join("db")).unwrap()),
        ),
        (
            "conf: garbage",
            Box::new(|d: &Path| random_bytes(&d.join("conf"))),
        ),
        (
            "rolled back: the store files of an older copy",
            Box::new({
                let old = old.clone();
                move |d: &Path| {
                    // Every file of the older copy but the marker and the token file.
                    let kept = [capsight::store::MARKER_FILE, "admin.token"];
                    for entry in std::fs::read_dir(d).unwrap() {
                        let entry = entry.unwrap();
                        if kept.iter().any(|k| entry.file_name() == *k) {
                            continue;
                        }
                        if entry.file_type().unwrap().is_dir() {
                            std::fs::remove_dir_all(entry.path()).unwrap();
                        } else {
                            std::fs::remove_file(entry.path()).unwrap();
                        }
                    }
                    for entry in std::fs::read_dir(&old).unwrap() {
                        let entry = entry.unwrap();
                        if kept.iter().any(|k| entry.file_name() == *k) {
                            continue;
                        }
                        if entry.file_type().unwrap().is_dir() {
                            copy_dir(&entry.path(), &d.join(entry.file_name()));
                        } else {
                            std::fs::copy(entry.path(), d.join(entry.file_name())).unwrap();
                        }
                    }
                }
            }),
        ),
        (
            "person.keys: byte flipped in a key",
            Box::new(|d: &Path| flip(&d.join(capsight::store::KEYS_FILE), 0.5)),
        ),
        (
            "person.keys: truncated to its header",
            Box::new(|d: &Path| {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join(capsight::store::KEYS_FILE))
                    .unwrap();
                f.set_len(16).unwrap();
            }),
        ),
        (
            "person.keys: deleted",
            Box::new(|d: &Path| std::fs::remove_file(d.join(capsight::store::KEYS_FILE)).unwrap()),
        ),
        (
            "person.keys: garbage",
            Box::new(|d: &Path| random_bytes(&d.join(capsight::store::KEYS_FILE))),
        ),
        (
            "commit marker: garbage",
            Box::new(|d: &Path| {
                std::fs::write(d.join(capsight::store::MARKER_FILE), b"not a marker").unwrap()
            }),
        ),
    ];
    if has_blobs {
        cases.push((
            "blob: byte flipped",
            Box::new(|d: &Path| flip(&blobs(d)[0], 0.5)),
        ));
        cases.push((
            "blob: truncated",
            Box::new(|d: &Path| truncate(&blobs(d)[0], 0.5)),
        ));
        cases.push((
            "blob: deleted",
            Box::new(|d: &Path| std::fs::remove_file(&blobs(d)[0]).unwrap()),
        ));
    }

    // `capsight verify` on the stopped original finds it sound, and counts what it holds.
    let verified = verify(&data);
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{verified:?}");
    assert!(
        report.contains("people: 11") && report.contains("no problems found"),
        "{report}"
    );

    let mut outcomes = Vec::new();
    for (n, (name, damage)) in cases.iter().enumerate() {
        let copy = temp.path().join(format!("case-{n}"));
        copy_dir(&data, &copy);
        damage(&copy);
        let outcome = match start(&copy).await {
            Started::Serving { child, channel } => {
                let served = state(&channel).await;
                stop(child).await;
                assert_eq!(served, acknowledged, "{name}: served a different state");
                "served the acknowledged state".to_owned()
            }
            Started::Refused { status, log } => {
                assert!(!status.success(), "{name}: exited 0 without serving");
                // `verify` refuses the same copy.
                assert!(!verify(&copy).status.success(), "{name}: verify passed it");
                // The last line is the reason, naming the store and what to do.
                let last = log.last().cloned().unwrap_or_default();
                assert!(
                    last.to_lowercase().contains("restore")
                        || last.contains("holds no access tokens"),
                    "{name}: not a clear error: {last}"
                );
                format!("refused: {last}")
            }
        };
        assert_eq!(
            std::fs::read_to_string(copy.join("admin.token")).unwrap(),
            token,
            "{name}: admin.token replaced"
        );
        println!("{name}: {outcome}");
        outcomes.push(outcome);
    }
    assert!(
        outcomes[0].starts_with("served"),
        "the untouched copy serves"
    );

    // The operator may accept the loss: the store then serves what it holds, the
    // decision is audited, and the next start needs no flag.
    let copy = temp.path().join("accepted");
    copy_dir(&old, &copy);
    std::fs::copy(
        data.join(capsight::store::MARKER_FILE),
        copy.join(capsight::store::MARKER_FILE),
    )
    .unwrap();
    let Started::Serving { child, channel } = start_with(&copy, &["--accept-data-loss"]).await
    else {
        panic!("--accept-data-loss serves");
    };
    let events = AccessServiceClient::new(channel.clone())
        .list_audit_events(pb::ListAuditEventsRequest {
            rpc: "capsight.server/StartAcceptingDataLoss".into(),
            ..Default::default()
        })
        .await
        .expect("audit")
        .into_inner()
        .events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].subject_ids[0].contains("acknowledged writes are missing"));
    stop(child).await;
    let Started::Serving { child, .. } = start(&copy).await else {
        panic!("accepted once, the store starts without the flag");
    };
    stop(child).await;
}
