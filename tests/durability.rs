//! Durability by system calls: a child `capsight serve` runs under `strace` (Debian's,
//! installed by `.ci/`) while a client makes writes one at a time. In the trace, before
//! every acknowledgement (any write to a TCP socket), every file of the data directory
//! written since the previous one must have been `fsync`ed or `fdatasync`ed after its
//! last write, and that sync must have returned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use capsight::api::pb;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[path = "support/serving.rs"]
mod serving;

/// One traced system call that matters here.
#[derive(Debug)]
enum Event {
    /// A write to a file (start of the call).
    FileWrite(String),
    /// A completed `fsync`/`fdatasync` of a file.
    Synced(String),
    /// A write to a TCP socket (start of the call): an answer leaving.
    Answer(usize),
}

/// The fd annotation of `strace -yy`: `name(12</path/to/file>, …` → `/path/to/file`.
fn annotated(rest: &str) -> Option<&str> {
    let start = rest.find('<')? + 1;
    let end = start + rest[start..].find('>')?;
    Some(&rest[start..end])
}

/// Events of the trace, in order. Calls interrupted by another thread's are split into
/// `… <unfinished ...>` and `<... name resumed>`: a sync counts when it returns.
fn events(trace: &str, data: &str) -> Vec<Event> {
    let mut pending: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (n, line) in trace.lines().enumerate() {
        // `pid time call`; strace pads short pids with spaces.
        let Some((pid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((_time, call)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        if let Some(resumed) = call.strip_prefix("<... ") {
            let name = resumed.split(' ').next().unwrap_or("");
            if let Some(path) = pending.remove(pid)
                && (name == "fsync" || name == "fdatasync")
                && resumed.contains("= 0")
            {
                out.push(Event::Synced(path));
            }
            continue;
        }
        let name = call.split('(').next().unwrap_or("");
        let Some(target) = annotated(call) else {
            continue;
        };
        let unfinished = call.ends_with("<unfinished ...>");
        match name {
            "fsync" | "fdatasync" if target.starts_with(data) => {
                if unfinished {
                    pending.insert(pid, target.to_owned());
                } else if call.contains("= 0") {
                    out.push(Event::Synced(target.to_owned()));
                }
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2"
                if target.starts_with(data) =>
            {
                out.push(Event::FileWrite(target.to_owned()));
            }
            "write" | "writev" | "sendmsg" | "sendto" if target.starts_with("TCP") => {
                out.push(Event::Answer(n + 1));
            }
            _ => {}
        }
    }
    out
}

/// The files written and not synced since, at each answer: `(trace line, files)`.
fn unsynced_at_answers(events: &[Event]) -> Vec<(usize, BTreeSet<String>)> {
    let mut dirty: BTreeSet<String> = BTreeSet::new();
    let mut found = Vec::new();
    for event in events {
        match event {
            Event::FileWrite(path) => {
                dirty.insert(path.clone());
            }
            Event::Synced(path) => {
                dirty.remove(path);
            }
            Event::Answer(line) if !dirty.is_empty() => found.push((*line, dirty.clone())),
            Event::Answer(_) => {}
        }
    }
    found
}

#[test]
fn the_trace_parser_reads_split_calls_and_fd_paths() {
    let trace = "\
1 10:00:00.000001 pwrite64(9</d/db>, \"x\", 1, 0) = 1
2  10:00:00.000002 fdatasync(9</d/db> <unfinished ...>
1 10:00:00.000003 writev(12<TCP:[127.0.0.1:1->127.0.0.1:2]>, [...], 1) = 9
2 10:00:00.000004 <... fdatasync resumed>) = 0
1 10:00:00.000005 writev(12<TCP:[127.0.0.1:1->127.0.0.1:2]>, [...], 1) = 9
1 10:00:00.000006 write(2<pipe:[5]>, \"log\", 3) = 3";
    let events = events(trace, "/d");
    // The first answer left while the sync had not returned; the second after.
    let unsynced = unsynced_at_answers(&events);
    assert_eq!(unsynced.len(), 1);
    assert_eq!(unsynced[0].0, 3);
    assert!(unsynced[0].1.contains("/d/db"));
}

fn strace_available() -> bool {
    std::process::Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledgement_follows_a_sync_of_every_file_written_since_the_last() {
    if !strace_available() {
        // CI installs strace; only a developer machine without it may skip.
        assert!(std::env::var_os("CI").is_none(), "strace is missing in CI");
        eprintln!("strace is not installed: skipped");
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let trace_path = temp.path().join("trace.txt");
    let mut command = Command::new("strace");
    command
        .args([
            "-f",
            "-tt",
            "-yy",
            "-e",
            "trace=write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,sendmsg,sendto",
            "-o",
        ])
        .arg(&trace_path)
        .arg(env!("CARGO_BIN_EXE_capsight"));
    let mut child = serving::serve(&mut command, &data)
        .spawn()
        .expect("spawn strace");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let address = serving::serving_address(&mut lines).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let channel = serving::connect(&address, &data).await;
    let people: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
    serving::seed_org(channel.clone(), "org", &people).await;
    let mut ingest = IngestServiceClient::new(channel.clone());
    let mut accepted = 0;
    for batch in 0..20 {
        // Some batches are large enough for sled's blob files.
        let items = if batch % 4 == 0 { 150 } else { 5 };
        let assessments = (0..items)
            .map(|i| {
                let person = format!("p{}", i % 5);
                serving::assessment(format!("b{batch}-{i}"), &person, &"e".repeat(1_500))
            })
            .collect();
        accepted += ingest
            .record_assessments(pb::RecordAssessmentsRequest { assessments })
            .await
            .expect("assessments")
            .into_inner()
            .accepted;
    }
    assert_eq!(accepted, 5 * 150 + 15 * 5);
    // An erasure writes the erasure ledger and zeroes a key in the key file.
    capsight::api::pb::directory_service_client::DirectoryServiceClient::new(channel.clone())
        .delete_person(pb::DeletePersonRequest {
            person_id: "p4".into(),
        })
        .await
        .expect("erasure");
    // Stop capsight (strace's child) gracefully; strace ends with it.
    let strace = child.id().expect("pid").to_string();
    let capsight = std::process::Command::new("pgrep")
        .args(["-P", &strace])
        .output()
        .expect("pgrep");
    let capsight = String::from_utf8_lossy(&capsight.stdout).trim().to_owned();
    assert!(!capsight.is_empty(), "capsight under strace");
    std::process::Command::new("kill")
        .args(["-TERM", &capsight])
        .status()
        .expect("kill");
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stopped")
        .expect("status");

    let trace = std::fs::read_to_string(&trace_path).expect("trace");
    let data = data.to_string_lossy().into_owned();
    let events = events(&trace, &data);
    let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    let answers = count(|e| matches!(e, Event::Answer(_)));
    let syncs = count(|e| matches!(e, Event::Synced(_)));
    let mut written: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        if let Event::FileWrite(p) = e {
            *written
                .entry(
                    Path::new(p)
                        .file_name()
                        .map_or(p.clone(), |n| n.to_string_lossy().into_owned()),
                )
                .or_default() += 1;
        }
    }
    println!("{answers} answers, {syncs} syncs; writes per file: {written:?}");
    assert!(answers >= 24, "{answers} answers traced");
    for file in ["db", "commit.marker", "person.keys", "erasures.ledger"] {
        assert!(written.contains_key(file), "{file} not written");
    }
    let unsynced = unsynced_at_answers(&events);
    assert!(
        unsynced.is_empty(),
        "answers sent with unsynced files (trace line, files): {unsynced:?}"
    );
}
