//! Starting, restarting and stopping a real server for a test, plus fixtures.

use std::path::PathBuf;
use std::sync::Once;

use capsight::api::BearerToken;
use capsight::api::pb;
use capsight::api::pb::access_service_client::AccessServiceClient;
use capsight::api::pb::capability_service_client::CapabilityServiceClient;
use capsight::api::pb::directory_service_client::DirectoryServiceClient;
use capsight::api::pb::ingest_service_client::IngestServiceClient;
use capsight::api::pb::org_insights_service_client::OrgInsightsServiceClient;
use capsight::api::pb::talent_service_client::TalentServiceClient;
use capsight::server::{self, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel that sends a bearer token with every call.
pub type Authed = InterceptedService<Channel, BearerToken>;

/// Clients of every capsight service, all using one token.
#[derive(Clone)]
pub struct Clients {
    pub directory: DirectoryServiceClient<Authed>,
    pub ingest: IngestServiceClient<Authed>,
    pub access: AccessServiceClient<Authed>,
    pub capability: CapabilityServiceClient<Authed>,
    pub insights: OrgInsightsServiceClient<Authed>,
    pub talent: TalentServiceClient<Authed>,
}

impl Clients {
    pub fn new(channel: &Channel, token: &str) -> Self {
        let auth = BearerToken::new(token).expect("ascii token");
        Self {
            directory: DirectoryServiceClient::with_interceptor(channel.clone(), auth.clone()),
            ingest: IngestServiceClient::with_interceptor(channel.clone(), auth.clone()),
            access: AccessServiceClient::with_interceptor(channel.clone(), auth.clone()),
            capability: CapabilityServiceClient::with_interceptor(channel.clone(), auth.clone()),
            insights: OrgInsightsServiceClient::with_interceptor(channel.clone(), auth.clone()),
            talent: TalentServiceClient::with_interceptor(channel.clone(), auth),
        }
    }
}

/// A running server and clients connected to it with the admin token.
pub struct TestApp {
    pub directory: DirectoryServiceClient<Authed>,
    pub ingest: IngestServiceClient<Authed>,
    pub access: AccessServiceClient<Authed>,
    pub admin_token: String,
    pub channel: Channel,
    pub address: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<capsight::Result<()>>>,
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
                .init();
        }
    });
}

impl TestApp {
    /// A server on a fresh, empty data directory.
    pub async fn spawn() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("data");
        let mut app = Self::start(ServerConfig::new(dir)).await;
        app._temp = Some(temp);
        app
    }

    /// A server with `config`.
    pub async fn start(config: ServerConfig) -> Self {
        init_logs();
        let data_dir = config.data_dir.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, config, async {
            let _ = stopped.await;
        }));
        let channel = connect(&address).await;
        let admin_token = read_admin_token(&data_dir).await;
        let clients = Clients::new(&channel, &admin_token);
        Self {
            directory: clients.directory,
            ingest: clients.ingest,
            access: clients.access,
            admin_token,
            channel,
            address,
            data_dir,
            _temp: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Shuts the server down gracefully and waits until the store is closed.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    /// Stops the server and starts a new one on the same data directory.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let temp = self._temp.take();
        let mut app = Self::start(ServerConfig::new(self.data_dir.clone())).await;
        app._temp = temp;
        app
    }
}

impl TestApp {
    /// Clients using `token`.
    pub fn clients(&self, token: &str) -> Clients {
        Clients::new(&self.channel, token)
    }

    /// Creates a token with `role`, scoped to `teams` or bound to `person`.
    pub async fn token(&mut self, role: pb::AccessRole, teams: &[&str], person: &str) -> String {
        self.access
            .create_token(pb::CreateTokenRequest {
                role: role.into(),
                team_ids: teams.iter().map(|t| (*t).to_owned()).collect(),
                person_id: person.into(),
                description: format!("test {role:?}"),
                ttl_seconds: 0,
            })
            .await
            .expect("create token")
            .into_inner()
            .token
    }
}

/// The admin token the server writes on first start.
async fn read_admin_token(data_dir: &std::path::Path) -> String {
    let path = data_dir.join(capsight::server::ADMIN_TOKEN_FILE);
    for _ in 0..250 {
        if let Ok(token) = std::fs::read_to_string(&path)
            && !token.trim().is_empty()
        {
            return token.trim().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no admin token at {}", path.display())
}

async fn connect(address: &str) -> Channel {
    let endpoint = Channel::from_shared(address.to_owned()).expect("endpoint");
    for _ in 0..500 {
        if let Ok(channel) = endpoint.connect().await {
            return channel;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("server at {address} did not come up")
}

pub fn skill(id: &str) -> pb::Skill {
    pb::Skill {
        id: id.into(),
        name: format!("Skill {id}"),
        category: pb::SkillCategory::Technical.into(),
        description: String::new(),
        indicators: vec![pb::BehaviouralIndicator {
            level: 3,
            description: "does it unaided".into(),
        }],
    }
}

pub fn role(id: &str, skills: &[&str]) -> pb::Role {
    pb::Role {
        id: id.into(),
        name: format!("Role {id}"),
        requirements: skills
            .iter()
            .map(|s| pb::RoleRequirement {
                skill_id: (*s).into(),
                required_level: 3.0,
                weight: 1.0,
            })
            .collect(),
    }
}

pub fn team(id: &str, parent: &str) -> pb::Team {
    pb::Team {
        id: id.into(),
        name: format!("Team {id}"),
        parent_id: parent.into(),
        manager_id: String::new(),
    }
}

pub fn person(id: &str, team: &str) -> pb::Person {
    pb::Person {
        id: id.into(),
        display_name: format!("Person {id}"),
        team_id: team.into(),
        role_id: "dev".into(),
        target_role_id: String::new(),
        availability: 1.0,
    }
}

pub fn assessment(id: &str, person: &str, skill: &str, score: f64) -> pb::Assessment {
    pb::Assessment {
        id: id.into(),
        person_id: person.into(),
        skill_id: skill.into(),
        score,
        source: pb::AssessmentSource::ObjectiveTest.into(),
        assessor_id: String::new(),
        assessed_at: Some(prost_types::Timestamp {
            seconds: 1_750_000_000,
            nanos: 0,
        }),
        evidence: String::new(),
    }
}

/// A small organisation: skills rust/sql, role dev, org → eng → {backend, frontend},
/// sales, and people alice, bob (backend), carol (frontend), dan (sales).
pub async fn seed_org(app: &mut TestApp) {
    let d = &mut app.directory;
    d.upsert_skills(pb::UpsertSkillsRequest {
        skills: vec![skill("rust"), skill("sql")],
    })
    .await
    .expect("skills");
    d.upsert_roles(pb::UpsertRolesRequest {
        roles: vec![role("dev", &["rust", "sql"])],
    })
    .await
    .expect("roles");
    d.upsert_teams(pb::UpsertTeamsRequest {
        teams: vec![
            team("org", ""),
            team("eng", "org"),
            team("backend", "eng"),
            team("frontend", "eng"),
            team("sales", "org"),
        ],
    })
    .await
    .expect("teams");
    d.upsert_people(pb::UpsertPeopleRequest {
        people: vec![
            person("alice", "backend"),
            person("bob", "backend"),
            person("carol", "frontend"),
            person("dan", "sales"),
        ],
    })
    .await
    .expect("people");
}

/// The `(field, description)` pairs of a status's BadRequest details.
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}
