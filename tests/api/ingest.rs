use capsight::api::pb;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::helpers::{TestApp, assessment, seed_org, violations};

fn record(items: Vec<pb::Assessment>) -> pb::RecordAssessmentsRequest {
    pb::RecordAssessmentsRequest { assessments: items }
}

#[tokio::test]
async fn a_unary_batch_is_stored_and_counted() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let response = app
        .ingest
        .record_assessments(record(vec![
            assessment("a1", "alice", "rust", 4.0),
            assessment("a2", "alice", "sql", 2.5),
            assessment("a3", "bob", "rust", 3.0),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.accepted, response.duplicates), (3, 0));
    assert!(response.rejections.is_empty());
    let alice = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        alice.assessment_count, 2,
        "an acknowledged write is visible at once"
    );
}

#[tokio::test]
async fn each_invalid_item_is_rejected_with_its_index_field_and_kind_while_valid_ones_are_stored() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 2 * 24 * 3600;
    let mut items = vec![assessment("ok-1", "alice", "rust", 3.0)];
    let mut push = |mutate: &dyn Fn(&mut pb::Assessment)| {
        let mut a = assessment(&format!("bad-{}", items.len()), "alice", "rust", 3.0);
        mutate(&mut a);
        items.push(a);
    };
    push(&|a| a.score = 5.5); // 1
    push(&|a| a.score = -1.0); // 2
    push(&|a| a.score = f64::NAN); // 3
    push(&|a| a.assessed_at.as_mut().unwrap().seconds = future); // 4
    push(&|a| a.person_id = "nobody".into()); // 5
    push(&|a| a.skill_id = "cobol".into()); // 6
    push(&|a| a.id = String::new()); // 7
    push(&|a| a.id = "y".repeat(129)); // 8
    push(&|a| a.source = pb::AssessmentSource::Unspecified.into()); // 9
    push(&|a| a.assessed_at = None); // 10
    push(&|a| a.evidence = "e".repeat(4_001)); // 11
    items.push(assessment("ok-2", "bob", "sql", 2.0)); // 12

    let response = app
        .ingest
        .record_assessments(record(items))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.accepted, 2);
    let got: Vec<(u32, &str, i32)> = response
        .rejections
        .iter()
        .map(|r| (r.index, r.field.as_str(), r.kind))
        .collect();
    let invalid = pb::RejectionKind::Invalid as i32;
    let unknown = pb::RejectionKind::UnknownReference as i32;
    assert_eq!(
        got,
        [
            (1, "score", invalid),
            (2, "score", invalid),
            (3, "score", invalid),
            (4, "assessed_at", invalid),
            (5, "person_id", unknown),
            (6, "skill_id", unknown),
            (7, "id", invalid),
            (8, "id", invalid),
            (9, "source", invalid),
            (10, "assessed_at", invalid),
            (11, "evidence", invalid),
        ]
    );
}

#[tokio::test]
async fn resending_an_assessment_is_a_duplicate_and_changing_it_is_a_conflict() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let original = assessment("a1", "alice", "rust", 4.0);
    let first = app
        .ingest
        .record_assessments(record(vec![original.clone()]))
        .await
        .unwrap();
    assert_eq!(first.into_inner().accepted, 1);

    let mut changed = original.clone();
    changed.score = 1.0;
    let again = app
        .ingest
        .record_assessments(record(vec![original.clone(), changed, original]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (0, 2));
    assert_eq!(again.rejections.len(), 1);
    assert_eq!(again.rejections[0].index, 1);
    assert_eq!(again.rejections[0].field, "id");
    assert_eq!(again.rejections[0].kind, pb::RejectionKind::Conflict as i32);

    // Within one batch too: the second copy with other content conflicts with the first.
    let mut twin = assessment("a9", "bob", "sql", 2.0);
    let fresh = twin.clone();
    twin.score = 3.0;
    let inside = app
        .ingest
        .record_assessments(record(vec![fresh, twin]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inside.accepted, 1);
    assert_eq!(
        inside.rejections[0].kind,
        pb::RejectionKind::Conflict as i32
    );

    let alice = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.assessment_count, 1, "a conflict never overwrites");
}

#[tokio::test]
async fn an_empty_or_oversized_batch_is_an_invalid_argument() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let empty = app
        .ingest
        .record_assessments(record(vec![]))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert_eq!(violations(&empty)[0].0, "assessments");
    let many = (0..10_001)
        .map(|i| assessment(&format!("a{i}"), "alice", "rust", 3.0))
        .collect();
    let oversized = app
        .ingest
        .record_assessments(record(many))
        .await
        .unwrap_err();
    assert_eq!(oversized.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn streamed_batches_are_acknowledged_in_order_with_their_counts() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let batches: Vec<pb::StreamAssessmentsRequest> = (0..20u64)
        .map(|seq| pb::StreamAssessmentsRequest {
            sequence: 100 + seq,
            assessments: (0..50)
                .map(|i| {
                    // Every batch repeats item 0 of batch 0, and batch 7 has one bad score.
                    if i == 0 && seq > 0 {
                        return assessment("s0-0", "carol", "rust", 3.0);
                    }
                    let score = if seq == 7 && i == 3 { 9.0 } else { 3.0 };
                    assessment(&format!("s{seq}-{i}"), "carol", "rust", score)
                })
                .collect(),
        })
        .collect();
    let acks: Vec<pb::StreamAssessmentsResponse> = app
        .ingest
        .stream_assessments(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner()
        .map(|ack| ack.unwrap())
        .collect()
        .await;
    let sequences: Vec<u64> = acks.iter().map(|a| a.sequence).collect();
    assert_eq!(sequences, (100..120).collect::<Vec<_>>());
    assert_eq!((acks[0].accepted, acks[0].duplicates), (50, 0));
    assert_eq!((acks[1].accepted, acks[1].duplicates), (49, 1));
    assert_eq!(acks[7].accepted, 48);
    assert_eq!(
        (
            acks[7].rejections[0].index,
            acks[7].rejections[0].field.as_str()
        ),
        (3, "score")
    );
    let total: u32 = acks.iter().map(|a| a.accepted).sum();
    let carol = app
        .directory
        .get_person(pb::GetPersonRequest {
            person_id: "carol".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(carol.assessment_count, u64::from(total));
    assert_eq!(total, 50 + 19 * 49 - 1);
}

#[tokio::test]
async fn an_oversized_streamed_batch_ends_the_stream_with_invalid_argument_after_earlier_acks() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    let good = pb::StreamAssessmentsRequest {
        sequence: 1,
        assessments: vec![assessment("g1", "alice", "rust", 3.0)],
    };
    let bad = pb::StreamAssessmentsRequest {
        sequence: 2,
        assessments: vec![],
    };
    let mut acks = app
        .ingest
        .stream_assessments(tokio_stream::iter(vec![good, bad]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acks.next().await.unwrap().unwrap().sequence, 1);
    assert_eq!(
        acks.next().await.unwrap().unwrap_err().code(),
        Code::InvalidArgument
    );
}
