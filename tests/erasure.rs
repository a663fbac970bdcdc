//! Physical erasure: after an acknowledged DeletePerson and a stop, no file of the data
//! directory holds the erased person's name or the evidence written about them, in any
//! form a reader could recognise (raw bytes of every file, blobs included).

use capsight::api::pb;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;

#[path = "support/serving.rs"]
mod serving;

use serving::{files_holding, start, stop};

const NAME: &str = "Quilla Zebediah-Canary";
const EVIDENCE: &str = "canary-evidence-8472: fixed the flux capacitor";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_persons_name_and_evidence_are_in_no_file_of_the_data_directory() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let (child, channel, _) = start(&data).await;
    let people: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    serving::seed_org(channel.clone(), "org", &people).await;
    let mut directory = DirectoryServiceClient::new(channel.clone());
    directory
        .upsert_people(pb::UpsertPeopleRequest {
            people: vec![pb::Person {
                id: "canary".into(),
                display_name: NAME.into(),
                team_id: "org".into(),
                role_id: "dev".into(),
                availability: 1.0,
                ..Default::default()
            }],
        })
        .await
        .expect("canary person");
    // Renamed once: the first name is in the log's history too.
    directory
        .upsert_people(pb::UpsertPeopleRequest {
            people: vec![pb::Person {
                id: "canary".into(),
                display_name: format!("{NAME} II"),
                team_id: "org".into(),
                role_id: "dev".into(),
                availability: 1.0,
                ..Default::default()
            }],
        })
        .await
        .expect("renamed");
    let mut ingest = IngestServiceClient::new(channel.clone());
    for batch in 0..12 {
        // Small batches and large ones (values sled writes as blob files), mixing the
        // canary's assessments with other people's.
        let items = if batch % 4 == 0 { 150 } else { 5 };
        let assessments = (0..items)
            .map(|i| {
                let (person, text) = if i % 3 == 0 {
                    ("canary".to_owned(), format!("{EVIDENCE} #{batch}-{i}"))
                } else {
                    (people[i % 6].clone(), format!("ordinary evidence {i}"))
                };
                serving::assessment(format!("b{batch}-{i}"), &person, &text.repeat(8))
            })
            .collect();
        ingest
            .record_assessments(pb::RecordAssessmentsRequest { assessments })
            .await
            .expect("assessments");
    }
    // Served in the clear to those allowed to read it.
    let profile = CapabilityServiceClient::new(channel.clone())
        .get_person_profile(pb::GetPersonProfileRequest {
            person_id: "canary".into(),
        })
        .await
        .expect("profile")
        .into_inner();
    assert_eq!(
        profile.person.as_ref().map(|p| p.display_name.as_str()),
        Some(format!("{NAME} II").as_str())
    );
    let exported = directory
        .export_person(pb::ExportPersonRequest {
            person_id: "canary".into(),
        })
        .await
        .expect("export")
        .into_inner();
    assert!(
        format!("{exported:?}").contains(EVIDENCE),
        "the evidence reads back"
    );
    directory
        .delete_person(pb::DeletePersonRequest {
            person_id: "canary".into(),
        })
        .await
        .expect("erasure");
    stop(child).await;

    for needle in [
        NAME,
        "Zebediah",
        EVIDENCE,
        "canary-evidence-8472",
        "flux capacitor",
    ] {
        let holding = files_holding(&data, needle.as_bytes());
        assert!(holding.is_empty(), "{needle:?} found in {holding:?}");
    }
    // The others' names and evidence are sealed the same way, and still served.
    assert!(files_holding(&data, b"Person p1").is_empty());
    assert!(files_holding(&data, b"ordinary evidence").is_empty());
    let (child, channel, _) = start(&data).await;
    let person = DirectoryServiceClient::new(channel.clone())
        .get_person(pb::GetPersonRequest {
            person_id: "p1".into(),
        })
        .await
        .expect("p1")
        .into_inner();
    assert_eq!(person.person.expect("person").display_name, "Person p1");
    let gone = DirectoryServiceClient::new(channel)
        .get_person(pb::GetPersonRequest {
            person_id: "canary".into(),
        })
        .await
        .expect_err("erased");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    stop(child).await;
}
