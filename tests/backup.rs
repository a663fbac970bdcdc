//! Backup and restore: `capsight backup` of a running server under ingest, an erasure made
//! after the backup, `capsight restore --replace` and `capsight verify` on the result,
//! and a restart that serves the backup's state with the later erasure still in force.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use capsight::api::pb;
use capsight::api::pb::access_service_client::AccessServiceClient;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use tokio::process::Command;
use tokio::sync::Mutex;

#[path = "support/serving.rs"]
mod serving;

use serving::{files_holding, start, stop};

const LEAVER_NAME: &str = "Oswin Backup-Canary";

async fn capsight(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_capsight"))
        .args(args)
        .output()
        .await
        .expect("run capsight")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Acknowledged assessments per person.
type Acked = Arc<Mutex<BTreeMap<String, u64>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_ingest_restores_verified_with_a_later_erasure_still_in_force() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let (child, channel, address) = start(&data).await;
    let people: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    serving::seed_org(channel.clone(), "org", &people).await;
    DirectoryServiceClient::new(channel.clone())
        .upsert_people(pb::UpsertPeopleRequest {
            people: vec![pb::Person {
                id: "leaver".into(),
                display_name: LEAVER_NAME.into(),
                team_id: "org".into(),
                role_id: "dev".into(),
                availability: 1.0,
                ..Default::default()
            }],
        })
        .await
        .expect("leaver");

    // Ingest runs throughout the backup.
    let acked: Acked = Arc::default();
    let stop_ingest = Arc::new(AtomicBool::new(false));
    let ingest = tokio::spawn({
        let (acked, stop_ingest, channel) = (acked.clone(), stop_ingest.clone(), channel.clone());
        let everyone: Vec<String> = people
            .iter()
            .cloned()
            .chain(["leaver".to_owned()])
            .collect();
        async move {
            let mut client = IngestServiceClient::new(channel);
            let mut batch = 0usize;
            while !stop_ingest.load(Ordering::Relaxed) {
                let assessments: Vec<pb::Assessment> = (0..40)
                    .map(|i| {
                        let person = &everyone[(batch + i) % everyone.len()];
                        serving::assessment(format!("b{batch}-{i}"), person, "evidence")
                    })
                    .collect();
                let persons: Vec<String> =
                    assessments.iter().map(|a| a.person_id.clone()).collect();
                client
                    .record_assessments(pb::RecordAssessmentsRequest { assessments })
                    .await
                    .expect("ingest");
                let mut acked = acked.lock().await;
                for p in persons {
                    *acked.entry(p).or_default() += 1;
                }
                batch += 1;
            }
            batch
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_backup = acked.lock().await.clone();
    let backup = temp.path().join("backup");
    let url = format!("http://{address}");
    let token_file = data.join("admin.token");
    let made = capsight(&[
        "backup",
        "--server",
        &url,
        "--token-file",
        token_file.to_str().unwrap(),
        "--out",
        backup.to_str().unwrap(),
    ])
    .await;
    assert!(made.status.success(), "{}", text(&made));
    let after_backup = acked.lock().await.clone();
    let manifest = std::fs::read_to_string(backup.join("MANIFEST")).unwrap();
    assert!(manifest.starts_with("capsight-backup 1\n"), "{manifest}");
    assert!(manifest.contains("tree people 9"), "{manifest}");
    // The backup file left the data directory once sent.
    assert!(std::fs::read_dir(&data).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("backup")
    }));

    // An erasure after the backup, while ingest goes on.
    DirectoryServiceClient::new(channel.clone())
        .delete_person(pb::DeletePersonRequest {
            person_id: "leaver".into(),
        })
        .await
        .expect("erasure");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_ingest.store(true, Ordering::Relaxed);
    let batches = ingest.await.expect("ingest task");
    assert!(
        batches > 10,
        "ingest ran during the backup: {batches} batches"
    );
    stop(child).await;

    // A damaged backup is refused before anything is written.
    let damaged = temp.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::copy(backup.join("MANIFEST"), damaged.join("MANIFEST")).unwrap();
    let mut bytes = std::fs::read(backup.join("backup.bin")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(damaged.join("backup.bin"), bytes).unwrap();
    let elsewhere = temp.path().join("elsewhere");
    let restore = |from: &std::path::Path, into: &std::path::Path, replace: bool| {
        let mut args = vec![
            "restore".to_owned(),
            "--from".to_owned(),
            from.display().to_string(),
            "--data-dir".to_owned(),
            into.display().to_string(),
        ];
        if replace {
            args.push("--replace".to_owned());
        }
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            capsight(&args).await
        }
    };
    let refused = restore(&damaged, &elsewhere, false).await;
    assert!(!refused.status.success());
    assert!(text(&refused).contains("SHA-256"), "{}", text(&refused));
    assert!(!elsewhere.join("db").exists());
    // Nor is a restore over a store without --replace.
    let occupied = restore(&backup, &data, false).await;
    assert!(!occupied.status.success());
    assert!(text(&occupied).contains("--replace"), "{}", text(&occupied));

    let restored = restore(&backup, &data, true).await;
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        text(&restored).contains("erasures to make again at the next start: 1"),
        "{}",
        text(&restored)
    );
    // Owner-only, as the server makes its files.
    for entry in std::fs::read_dir(&data).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{:?} is {mode:o}", entry.file_name());
    }
    let verified = capsight(&["verify", "--data-dir", data.to_str().unwrap()]).await;
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(text(&verified).contains("no problems found"));

    let (child, channel, _) = start(&data).await;
    let mut directory = DirectoryServiceClient::new(channel.clone());
    let gone = directory
        .get_person(pb::GetPersonRequest {
            person_id: "leaver".into(),
        })
        .await
        .expect_err("the erasure made after the backup holds");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    // Everyone else has what was acknowledged before the backup began, and nothing
    // acknowledged after it ended.
    for person in &people {
        let served = directory
            .get_person(pb::GetPersonRequest {
                person_id: person.clone(),
            })
            .await
            .expect("person")
            .into_inner()
            .assessment_count;
        let (low, high) = (
            before_backup.get(person).copied().unwrap_or(0),
            after_backup.get(person).copied().unwrap_or(0),
        );
        assert!(
            (low..=high).contains(&served),
            "{person}: {served} not in {low}..={high}"
        );
    }
    let reapplied = |channel: serving::Authed| async move {
        AccessServiceClient::new(channel)
            .list_audit_events(pb::ListAuditEventsRequest {
                rpc: "capsight.server/ReapplyErasures".into(),
                ..Default::default()
            })
            .await
            .expect("audit")
            .into_inner()
            .events
    };
    let events = reapplied(channel.clone()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    stop(child).await;
    // Made again, and physically: the leaver's key is gone, their name nowhere.
    assert!(files_holding(&data, LEAVER_NAME.as_bytes()).is_empty());
    // A further start has nothing left to make again.
    let (child, channel, _) = start(&data).await;
    assert_eq!(reapplied(channel).await.len(), 1);
    stop(child).await;
}
