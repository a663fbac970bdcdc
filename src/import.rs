//! CSV import and export. Import is a client of a running server: rows become the
//! same gRPC writes any client makes, so the server's validation applies, and every
//! problem is reported as `file:line: column …: reason`. Re-running an import is
//! idempotent: directory upserts replace, assessments with known ids are duplicates.
//!
//! | file            | columns |
//! |-----------------|---------|
//! | skills.csv      | id, name, category (technical, soft, business, leadership, domain, knowledge), description, indicator_1 … indicator_5 |
//! | roles.csv       | role_id, role_name, skill_id, required_level, weight — one row per requirement |
//! | teams.csv       | id, name, parent_id, manager_id — parents before children |
//! | people.csv      | id, display_name, team_id, role_id, target_role_id, availability |
//! | assessments.csv | id, person_id, skill_id, score, source (SELF, PEER, MANAGER, OBSERVED_PRACTICE, OBJECTIVE_TEST, CERTIFICATION), assessor_id, assessed_at (RFC 3339), evidence |

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use crate::api::pb;
use crate::api::pb::directory_service_client::DirectoryServiceClient;
use crate::api::pb::ingest_service_client::IngestServiceClient;
use crate::api::{BearerToken, timestamp_to_pb};
use crate::demo::DemoOrg;
use crate::domain::{Directory, MAX_BATCH_ITEMS, Person, Role, Skill, Team};

mod check;
pub mod progress;

/// How an import runs.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Assessments per streamed batch.
    pub batch_size: usize,
    /// Check everything, write nothing.
    pub dry_run: bool,
    /// Show progress on stderr (a bar on a terminal, lines otherwise).
    pub progress: bool,
}

/// Attempts of a call the server answers UNAVAILABLE (restarting, shedding), with a
/// doubling pause from 250 ms.
const ATTEMPTS: u32 = 6;

/// Calls `call` until it succeeds, fails otherwise than UNAVAILABLE, or has tried
/// `ATTEMPTS` times.
async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut pause = std::time::Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(status) if status.code() == tonic::Code::Unavailable && attempt < ATTEMPTS => {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The files to import; any may be absent.
#[derive(Debug, Default, Clone)]
pub struct ImportFiles {
    /// skills.csv
    pub skills: Option<PathBuf>,
    /// roles.csv
    pub roles: Option<PathBuf>,
    /// teams.csv
    pub teams: Option<PathBuf>,
    /// people.csv
    pub people: Option<PathBuf>,
    /// assessments.csv
    pub assessments: Option<PathBuf>,
}

impl ImportFiles {
    /// The files given, in the order they are imported.
    pub fn given(&self) -> Vec<String> {
        [
            &self.skills,
            &self.roles,
            &self.teams,
            &self.people,
            &self.assessments,
        ]
        .iter()
        .filter_map(|f| f.as_deref())
        .map(path_name)
        .collect()
    }
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read as CSV.
    #[error("{file}: {message}")]
    File {
        /// The file.
        file: String,
        /// What went wrong.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to {server}: {message}")]
    Connect {
        /// The server URL.
        server: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused a request for a reason that is not about one cell.
    #[error("{file}: the server refused the request ({code:?}): {message}")]
    Rpc {
        /// The file being imported.
        file: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
}

/// A problem with one cell (or row) of an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Column name.
    pub column: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}{}",
            self.file,
            self.line,
            if self.column.is_empty() {
                String::new()
            } else {
                format!("column {}: ", self.column)
            },
            self.reason
        )
    }
}

/// What an import wrote and what it could not.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Skills written.
    pub skills: usize,
    /// Roles written.
    pub roles: usize,
    /// Teams written.
    pub teams: usize,
    /// People written.
    pub people: usize,
    /// Assessments newly stored.
    pub assessments_accepted: u64,
    /// Assessments already stored with the same content.
    pub assessments_duplicate: u64,
    /// Cells or rows not imported.
    pub problems: Vec<Problem>,
    /// Files not written because the directory files have problems (they are written
    /// only when every one is sound; the assessments need them).
    pub skipped: Vec<String>,
    /// Checked only (`--dry-run`): nothing was written.
    pub dry_run: bool,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "{problem}")?;
        }
        for file in &self.skipped {
            writeln!(
                f,
                "{file}: not imported: nothing was written because of the problems above \
                 (the directory files are written only when every file is sound)"
            )?;
        }
        if self.dry_run {
            write!(
                f,
                "dry run: nothing written; {} problem(s)",
                self.problems.len()
            )
        } else {
            write!(
                f,
                "skills {}, roles {}, teams {}, people {}, assessments {} new + {} already \
                 stored, {} problem(s)",
                self.skills,
                self.roles,
                self.teams,
                self.people,
                self.assessments_accepted,
                self.assessments_duplicate,
                self.problems.len()
            )
        }
    }
}

/// One parsed CSV file: header positions and rows with their line numbers.
struct Table {
    file: String,
    columns: HashMap<String, usize>,
    rows: Vec<(u64, csv::StringRecord)>,
    /// Lines that could not be read as a row (wrong number of fields), each a problem;
    /// the other rows are imported.
    problems: Vec<Problem>,
}

impl Table {
    /// The header of `reader`'s file as an empty table, checking the required columns.
    fn header(
        file: &str,
        reader: &mut csv::Reader<std::fs::File>,
        required: &[&str],
    ) -> Result<Self, ImportError> {
        let fail = |message: String| ImportError::File {
            file: file.to_owned(),
            message,
        };
        let columns: HashMap<String, usize> = reader
            .headers()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_owned(), i))
            .collect();
        if let Some(missing) = required.iter().find(|c| !columns.contains_key(**c)) {
            return Err(fail(format!("missing column `{missing}`")));
        }
        Ok(Self {
            file: file.to_owned(),
            columns,
            rows: Vec::new(),
            problems: Vec::new(),
        })
    }

    /// The problem of a line with the wrong number of fields.
    fn short_line(file: &str, line: u64, fields: usize, width: usize) -> Problem {
        Problem {
            file: file.to_owned(),
            line,
            column: String::new(),
            reason: format!("{fields} fields where the header has {width}; the line is skipped"),
        }
    }

    /// A CSV reader of `path`: cells trimmed, rows of any length (a short row is a
    /// problem of its own, not the end of the file).
    fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>, ImportError> {
        csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_path(path)
            .map_err(|e| ImportError::File {
                file: path_name(path),
                message: e.to_string(),
            })
    }

    fn read(path: &Path, required: &[&str]) -> Result<Self, ImportError> {
        let file = path.display().to_string();
        let fail = |message: String| ImportError::File {
            file: file.clone(),
            message,
        };
        let mut reader = Self::reader(path)?;
        let Self { columns, .. } = Self::header(&file, &mut reader, required)?;
        let width = columns.len();
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| fail(e.to_string()))?;
            let line = record.position().map_or(0, csv::Position::line);
            if record.len() == width {
                rows.push((line, record));
            } else {
                problems.push(Self::short_line(&file, line, record.len(), width));
            }
        }
        Ok(Self {
            file,
            columns,
            rows,
            problems,
        })
    }

    fn cell<'a>(&self, record: &'a csv::StringRecord, column: &str) -> &'a str {
        self.columns
            .get(column)
            .and_then(|&i| record.get(i))
            .unwrap_or("")
    }

    fn problem(&self, line: u64, column: &str, reason: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            line,
            column: column.to_owned(),
            reason: reason.into(),
        }
    }

    /// A number cell; empty means `default`.
    fn number(
        &self,
        (line, record): &(u64, csv::StringRecord),
        column: &str,
        default: f64,
        problems: &mut Vec<Problem>,
    ) -> f64 {
        let raw = self.cell(record, column);
        if raw.is_empty() {
            return default;
        }
        raw.parse().unwrap_or_else(|_| {
            problems.push(self.problem(*line, column, format!("`{raw}` is not a number")));
            default
        })
    }
}

/// Splits `"people[3].team_id"` into (3, "team_id").
fn split_path(field: &str) -> Option<(usize, &str)> {
    let open = field.find('[')?;
    let close = field[open..].find(']')? + open;
    let index = field[open + 1..close].parse().ok()?;
    let rest = field[close + 1..].trim_start_matches('.');
    Some((index, rest))
}

/// Imports `files` into the server at `server`, in dependency order, authenticating with
/// `token` (an admin or ingest token).
pub async fn run(
    server: &str,
    token: &str,
    files: &ImportFiles,
    batch_size: usize,
) -> Result<ImportReport, ImportError> {
    let endpoint =
        Endpoint::from_shared(server.to_owned()).map_err(|e| connect_error(server, e))?;
    run_on(endpoint, token, files, batch_size).await
}

/// `run` over `endpoint` (e.g. with TLS settings, see `client_endpoint`).
pub async fn run_on(
    endpoint: Endpoint,
    token: &str,
    files: &ImportFiles,
    batch_size: usize,
) -> Result<ImportReport, ImportError> {
    let options = ImportOptions {
        batch_size,
        dry_run: false,
        progress: false,
    };
    run_with(endpoint, token, files, &options).await
}

/// Every page of a directory list rpc, or `None` when the token may not read it.
macro_rules! list_all {
    ($client:expr, $method:ident, $request:ident, $field:ident) => {{
        let mut items = Vec::new();
        let mut page_token = String::new();
        loop {
            // Teams and people take a subtree filter too, left empty.
            #[allow(clippy::needless_update)]
            let answer = with_retries(|| {
                let mut client = $client.clone();
                let request = pb::$request {
                    page_size: 1000,
                    page_token: page_token.clone(),
                    ..Default::default()
                };
                async move { client.$method(request).await }
            })
            .await;
            match answer {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    items.extend(answer.$field);
                    if answer.next_page_token.is_empty() {
                        break Ok(Some(items));
                    }
                    page_token = answer.next_page_token;
                }
                Err(status) if status.code() == tonic::Code::PermissionDenied => break Ok(None),
                Err(status) => break Err(status),
            }
        }
    }};
}

/// The server's directory, to check references against; `None` when the token may not
/// read it (an ingest token).
async fn server_directory(
    client: &DirectoryServiceClient<InterceptedService<Channel, BearerToken>>,
) -> Result<Option<Directory>, tonic::Status> {
    let Some(skills) = list_all!(client, list_skills, ListSkillsRequest, skills)? else {
        return Ok(None);
    };
    let roles = list_all!(client, list_roles, ListRolesRequest, roles)?.unwrap_or_default();
    let teams = list_all!(client, list_teams, ListTeamsRequest, teams)?.unwrap_or_default();
    let people = list_all!(client, list_people, ListPeopleRequest, people)?.unwrap_or_default();
    let mut directory = Directory::default();
    directory.upsert_skills(skills.into_iter().filter_map(|s| Skill::try_from(s).ok()));
    directory.upsert_roles(roles.into_iter().filter_map(|r| Role::try_from(r).ok()));
    directory.upsert_teams(teams.into_iter().filter_map(|t| Team::try_from(t).ok()));
    directory.upsert_people(people.into_iter().filter_map(|p| Person::try_from(p).ok()));
    Ok(Some(directory))
}

/// Imports `files`: reads and checks every file first (every problem of every file, in
/// line order, in one run), then — unless `dry_run` or there are problems in the
/// directory files — writes them in dependency order and streams the assessments (whose
/// invalid rows are reported and skipped).
pub async fn run_with(
    endpoint: Endpoint,
    token: &str,
    files: &ImportFiles,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let server = endpoint.uri().to_string();
    let server = server.as_str();
    let channel = with_retries(|| {
        let endpoint = endpoint.clone();
        async move {
            endpoint
                .connect()
                .await
                .map_err(|e| tonic::Status::unavailable(error_chain(&e)))
        }
    })
    .await
    .map_err(|e| connect_error(server, e.message()))?;
    let auth = BearerToken::new(token).map_err(|e| connect_error(server, e))?;
    let channel = InterceptedService::new(channel, auth);
    let directory = DirectoryServiceClient::new(channel.clone());
    let mut report = ImportReport::default();
    let order = files.given();
    let first_file = order.first().cloned().unwrap_or_default();
    let base = server_directory(&directory)
        .await
        .map_err(|status| ImportError::Rpc {
            file: first_file,
            code: status.code(),
            message: status.message().to_owned(),
        })?;
    let mut checker = check::Checker::new(base);

    // Read and check every directory file, in dependency order.
    macro_rules! read_and_check {
        ($file:ident, $read:ident, $check:ident) => {
            match &files.$file {
                Some(path) => {
                    let (items, problems) = $read(path)?;
                    report.problems.extend(problems);
                    let checked = checker.$check(&path_name(path), &items);
                    report.problems.extend(checked);
                    items
                }
                None => Vec::new(),
            }
        };
    }
    let skills = read_and_check!(skills, read_skills, skills);
    let roles = read_and_check!(roles, read_roles, roles);
    let teams = read_and_check!(teams, read_teams, teams);
    let people = read_and_check!(people, read_people, people);
    report
        .problems
        .extend(checker.managers(&teams_file(files), &teams));

    let write = !options.dry_run && report.problems.is_empty();
    if write {
        write_directory(&directory, files, skills, roles, teams, people, &mut report).await?;
    }
    if let Some(path) = &files.assessments {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let progress = progress::Progress::new(&path_name(path), size, options.progress);
        let batch_size = options.batch_size.clamp(1, MAX_BATCH_ITEMS);
        if write && report.problems.is_empty() {
            let ingest = IngestServiceClient::new(channel);
            import_assessments(ingest, path, batch_size, &mut report, progress).await?;
        } else {
            // Not sent: checked row by row against the directory as the import would
            // have left it.
            let path = path.clone();
            let problems = tokio::task::spawn_blocking(move || {
                read_assessments(&path, batch_size, None, Some(&checker), &progress)
            })
            .await
            .map_err(|e| ImportError::File {
                file: path_name(files.assessments.as_deref().unwrap_or(Path::new(""))),
                message: format!("the reader failed: {e}"),
            })??;
            report.problems.extend(problems);
        }
    }
    // Problems in file order, then line order; a cell the importer and the server's
    // rules both fault is reported once (the importer's words, which quote the value).
    report.problems.sort_by(|a, b| {
        let key = |p: &Problem| {
            let file = order
                .iter()
                .position(|f| *f == p.file)
                .unwrap_or(usize::MAX);
            (file, p.line, p.column.clone())
        };
        key(a).cmp(&key(b))
    });
    report
        .problems
        .dedup_by(|a, b| a.file == b.file && a.line == b.line && a.column == b.column);
    if !write && !options.dry_run {
        report.skipped = order;
    }
    report.dry_run = options.dry_run;
    Ok(report)
}

/// `teams` without their managers: teams go in before people, managers after them.
fn without_managers(teams: &[Located<pb::Team>]) -> Vec<Located<pb::Team>> {
    teams
        .iter()
        .map(|(at, t)| {
            let team = pb::Team {
                manager_id: String::new(),
                ..t.clone()
            };
            (at.clone(), team)
        })
        .collect()
}

/// Writes the directory files, in dependency order: skills, roles, teams without their
/// managers, people, then the teams' managers.
async fn write_directory(
    directory: &DirectoryServiceClient<InterceptedService<Channel, BearerToken>>,
    files: &ImportFiles,
    skills: Vec<Located<pb::Skill>>,
    roles: Vec<Located<pb::Role>>,
    teams: Vec<Located<pb::Team>>,
    people: Vec<Located<pb::Person>>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let name = |p: &Option<PathBuf>| p.as_deref().map(path_name).unwrap_or_default();
    // One upsert rpc per chunk of a file's items.
    macro_rules! upsert_all {
        ($file:expr, $items:expr, $method:ident, $request:ident, $field:ident) => {
            upsert(&$file, $items, &mut report.problems, |chunk| {
                let mut client = directory.clone();
                async move {
                    client
                        .$method(pb::$request { $field: chunk })
                        .await
                        .map(|_| ())
                }
            })
            .await?
        };
    }
    report.skills = upsert_all!(
        name(&files.skills),
        skills,
        upsert_skills,
        UpsertSkillsRequest,
        skills
    );
    report.roles = upsert_all!(
        name(&files.roles),
        roles,
        upsert_roles,
        UpsertRolesRequest,
        roles
    );
    let unmanaged = without_managers(&teams);
    report.teams = upsert_all!(
        teams_file(files),
        unmanaged,
        upsert_teams,
        UpsertTeamsRequest,
        teams
    );
    report.people = upsert_all!(
        name(&files.people),
        people,
        upsert_people,
        UpsertPeopleRequest,
        people
    );
    let managed: Vec<Located<pb::Team>> = teams
        .into_iter()
        .filter(|(_, t)| !t.manager_id.is_empty())
        .collect();
    if !managed.is_empty() {
        upsert_all!(
            teams_file(files),
            managed,
            upsert_teams,
            UpsertTeamsRequest,
            teams
        );
    }
    Ok(())
}

/// An error and its causes, outermost first: "transport error: tcp connect error:
/// Connection refused (os error 111)" rather than tonic's bare "transport error".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The endpoint of a client command: `server` with TLS when it is `https://`, trusting
/// `ca_cert` (PEM) when given, else the public web roots.
pub fn client_endpoint(server: &str, ca_cert: Option<&Path>) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| format!("{server} is not a server URL: {}", error_chain(&e)))?;
    let tls = endpoint.uri().scheme_str() == Some("https");
    if !tls {
        return match ca_cert {
            Some(_) => Err(format!(
                "--ca-cert is for TLS servers; use an https:// URL, not {server}"
            )),
            None => Ok(endpoint),
        };
    }
    let config = match ca_cert {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read --ca-cert {}: {e}", path.display()))?;
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem))
        }
        None => tonic::transport::ClientTlsConfig::new().with_webpki_roots(),
    };
    endpoint
        .tls_config(config)
        .map_err(|e| format!("TLS settings for {server}: {}", error_chain(&e)))
}

fn connect_error(server: &str, e: impl fmt::Display) -> ImportError {
    ImportError::Connect {
        server: server.to_owned(),
        message: e.to_string(),
    }
}

fn path_name(path: &Path) -> String {
    path.display().to_string()
}

fn teams_file(files: &ImportFiles) -> String {
    files.teams.as_deref().map(path_name).unwrap_or_default()
}

/// Where an item came from: its line, and for roles the line of each requirement.
#[derive(Clone, Debug)]
struct Origin {
    line: u64,
    sub_lines: Vec<u64>,
}

type Located<T> = (Origin, T);

/// Sends `items` in chunks through `send`. Parse problems, or the server's field
/// violations (mapped back to lines and columns), stop the import of this file.
async fn upsert<T: Clone, F, Fut>(
    file: &str,
    items: Vec<Located<T>>,
    problems: &mut Vec<Problem>,
    send: F,
) -> Result<usize, ImportError>
where
    F: Fn(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    if !problems.is_empty() {
        return Ok(0);
    }
    let mut written = 0;
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_BATCH_ITEMS));
        let (origins, chunk): (Vec<Origin>, Vec<T>) = rest.into_iter().unzip();
        let len = chunk.len();
        if let Err(status) = with_retries(|| send(chunk.clone())).await {
            let Some(bad) = status.get_details_bad_request() else {
                return Err(ImportError::Rpc {
                    file: file.to_owned(),
                    code: status.code(),
                    message: status.message().to_owned(),
                });
            };
            for violation in bad.field_violations {
                problems.push(locate(
                    file,
                    &origins,
                    &violation.field,
                    violation.description,
                ));
            }
            return Ok(written);
        }
        written += len;
        rest = tail;
    }
    Ok(written)
}

/// Maps a server field path (`"roles[2].requirements[1].skill_id"`) to a file position.
fn locate(file: &str, origins: &[Origin], field: &str, reason: String) -> Problem {
    let (line, column) = match split_path(field) {
        Some((i, rest)) => {
            let origin = origins.get(i);
            let line = origin.map_or(0, |o| o.line);
            match split_path(rest) {
                Some((j, column)) => (
                    origin
                        .and_then(|o| o.sub_lines.get(j))
                        .copied()
                        .unwrap_or(line),
                    column.to_owned(),
                ),
                None => (line, rest.to_owned()),
            }
        }
        None => (0, field.to_owned()),
    };
    let column = match column.as_str() {
        "id" if file.contains("roles") => "role_id".to_owned(),
        "name" if file.contains("roles") => "role_name".to_owned(),
        _ => column,
    };
    Problem {
        file: file.to_owned(),
        line,
        column,
        reason,
    }
}

fn single(line: u64) -> Origin {
    Origin {
        line,
        sub_lines: Vec::new(),
    }
}

fn read_skills(path: &Path) -> Result<(Vec<Located<pb::Skill>>, Vec<Problem>), ImportError> {
    let mut table = Table::read(path, &["id", "name", "category"])?;
    let mut problems = std::mem::take(&mut table.problems);
    let mut skills = Vec::new();
    for (line, record) in &table.rows {
        let category_name = table.cell(record, "category");
        let category = pb::SkillCategory::from_str_name(&format!(
            "SKILL_CATEGORY_{}",
            category_name.to_ascii_uppercase()
        ))
        .unwrap_or_else(|| {
            problems.push(table.problem(
                *line,
                "category",
                format!("unknown category `{category_name}`"),
            ));
            pb::SkillCategory::Unspecified
        });
        let indicators = (1..=5u32)
            .filter_map(|level| {
                let text = table.cell(record, &format!("indicator_{level}"));
                (!text.is_empty()).then(|| pb::BehaviouralIndicator {
                    level,
                    description: text.to_owned(),
                })
            })
            .collect();
        skills.push((
            single(*line),
            pb::Skill {
                id: table.cell(record, "id").to_owned(),
                name: table.cell(record, "name").to_owned(),
                category: category.into(),
                description: table.cell(record, "description").to_owned(),
                indicators,
            },
        ));
    }
    Ok((skills, problems))
}

fn read_roles(path: &Path) -> Result<(Vec<Located<pb::Role>>, Vec<Problem>), ImportError> {
    let mut table = Table::read(
        path,
        &[
            "role_id",
            "role_name",
            "skill_id",
            "required_level",
            "weight",
        ],
    )?;
    let mut problems = std::mem::take(&mut table.problems);
    let mut roles: Vec<Located<pb::Role>> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for row in &table.rows {
        let (line, record) = row;
        let id = table.cell(record, "role_id");
        let slot = *position.entry(id.to_owned()).or_insert_with(|| {
            roles.push((
                single(*line),
                pb::Role {
                    id: id.to_owned(),
                    name: table.cell(record, "role_name").to_owned(),
                    requirements: Vec::new(),
                },
            ));
            roles.len() - 1
        });
        let skill_id = table.cell(record, "skill_id");
        if skill_id.is_empty() {
            continue;
        }
        let required_level = table.number(row, "required_level", f64::NAN, &mut problems);
        let weight = table.number(row, "weight", 1.0, &mut problems);
        let (origin, role) = &mut roles[slot];
        origin.sub_lines.push(*line);
        role.requirements.push(pb::RoleRequirement {
            skill_id: skill_id.to_owned(),
            required_level,
            weight,
        });
    }
    Ok((roles, problems))
}

fn read_teams(path: &Path) -> Result<(Vec<Located<pb::Team>>, Vec<Problem>), ImportError> {
    let mut table = Table::read(path, &["id", "name", "parent_id"])?;
    let problems = std::mem::take(&mut table.problems);
    let teams = table
        .rows
        .iter()
        .map(|(line, record)| {
            (
                single(*line),
                pb::Team {
                    id: table.cell(record, "id").to_owned(),
                    name: table.cell(record, "name").to_owned(),
                    parent_id: table.cell(record, "parent_id").to_owned(),
                    manager_id: table.cell(record, "manager_id").to_owned(),
                },
            )
        })
        .collect();
    Ok((teams, problems))
}

fn read_people(path: &Path) -> Result<(Vec<Located<pb::Person>>, Vec<Problem>), ImportError> {
    let mut table = Table::read(path, &["id", "display_name", "team_id", "role_id"])?;
    let mut problems = std::mem::take(&mut table.problems);
    let people = table
        .rows
        .iter()
        .map(|row| {
            let (line, record) = row;
            (
                single(*line),
                pb::Person {
                    id: table.cell(record, "id").to_owned(),
                    display_name: table.cell(record, "display_name").to_owned(),
                    team_id: table.cell(record, "team_id").to_owned(),
                    role_id: table.cell(record, "role_id").to_owned(),
                    target_role_id: table.cell(record, "target_role_id").to_owned(),
                    availability: table.number(row, "availability", 1.0, &mut problems),
                },
            )
        })
        .collect();
    Ok((people, problems))
}

const ASSESSMENT_COLUMNS: [&str; 8] = [
    "id",
    "person_id",
    "skill_id",
    "score",
    "source",
    "assessor_id",
    "assessed_at",
    "evidence",
];

/// Parses one assessment row; the problem names the offending column.
fn parse_assessment(
    table: &Table,
    row: &(u64, csv::StringRecord),
) -> Result<pb::Assessment, Problem> {
    let (line, record) = row;
    let mut problems = Vec::new();
    let score = table.number(row, "score", f64::NAN, &mut problems);
    if let Some(problem) = problems.pop() {
        return Err(problem);
    }
    let source_name = table.cell(record, "source");
    let source = pb::AssessmentSource::from_str_name(&format!(
        "ASSESSMENT_SOURCE_{}",
        source_name.to_ascii_uppercase()
    ))
    .ok_or_else(|| table.problem(*line, "source", format!("unknown source `{source_name}`")))?;
    let at = table.cell(record, "assessed_at");
    let assessed_at = prost_types::Timestamp::from_str(at).map_err(|_| {
        table.problem(
            *line,
            "assessed_at",
            format!("`{at}` is not an RFC 3339 time"),
        )
    })?;
    Ok(pb::Assessment {
        id: table.cell(record, "id").to_owned(),
        person_id: table.cell(record, "person_id").to_owned(),
        skill_id: table.cell(record, "skill_id").to_owned(),
        score,
        source: source.into(),
        assessor_id: table.cell(record, "assessor_id").to_owned(),
        assessed_at: Some(assessed_at),
        evidence: table.cell(record, "evidence").to_owned(),
    })
}

/// Reads assessments.csv row by row (memory does not grow with the file): parsed rows
/// go out in batches with their line numbers through `out` when given, or are checked by
/// `checker` (`--dry-run`, or a file not sent because an earlier one has problems).
/// Returns the rows' problems. Progress goes to `progress`.
fn read_assessments(
    path: &Path,
    batch_size: usize,
    out: Option<mpsc::Sender<(pb::StreamAssessmentsRequest, Vec<u64>)>>,
    checker: Option<&check::Checker>,
    progress: &progress::Progress,
) -> Result<Vec<Problem>, ImportError> {
    let file = path_name(path);
    let fail = |message: String| ImportError::File {
        file: file.clone(),
        message,
    };
    let mut reader = Table::reader(path)?;
    let table = Table::header(&file, &mut reader, &ASSESSMENT_COLUMNS[..7])?;
    let width = table.columns.len();
    let mut problems = Vec::new();
    let mut batch = pb::StreamAssessmentsRequest::default();
    let mut lines = Vec::new();
    let mut sequence = 0u64;
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(fail(e.to_string())),
        }
        rows += 1;
        let line = record.position().map_or(0, csv::Position::line);
        if rows.is_multiple_of(4096) {
            progress.at(reader.position().byte(), rows);
        }
        if record.len() != width {
            problems.push(Table::short_line(&file, line, record.len(), width));
            continue;
        }
        let row = (line, std::mem::take(&mut record));
        let parsed = parse_assessment(&table, &row);
        record = row.1;
        match (parsed, checker) {
            (Err(problem), _) => problems.push(problem),
            (Ok(assessment), Some(checker)) => {
                if let Err(v) = checker.assessment(assessment) {
                    problems.push(table.problem(line, &v.field, v.reason));
                }
            }
            (Ok(assessment), None) => {
                batch.assessments.push(assessment);
                lines.push(line);
            }
        }
        if batch.assessments.len() == batch_size
            && let Some(out) = &out
        {
            batch.sequence = sequence;
            sequence += 1;
            let full = (std::mem::take(&mut batch), std::mem::take(&mut lines));
            if out.blocking_send(full).is_err() {
                // The stream ended early; its error is reported by the sender side.
                break;
            }
        }
    }
    if !batch.assessments.is_empty()
        && let Some(out) = &out
    {
        batch.sequence = sequence;
        let _ = out.blocking_send((batch, lines));
    }
    progress.done(reader.position().byte(), rows);
    Ok(problems)
}

async fn import_assessments(
    mut client: IngestServiceClient<InterceptedService<Channel, BearerToken>>,
    path: &Path,
    batch_size: usize,
    report: &mut ImportReport,
    progress: progress::Progress,
) -> Result<(), ImportError> {
    let file = path_name(path);
    let (batches, mut incoming) = mpsc::channel::<(pb::StreamAssessmentsRequest, Vec<u64>)>(8);
    let reading = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            read_assessments(&path, batch_size, Some(batches), None, &progress)
        })
    };
    // Lines of the batches sent and not yet acknowledged, in order.
    let pending: std::sync::Arc<std::sync::Mutex<VecDeque<Vec<u64>>>> = Default::default();
    let (requests, outbound) = mpsc::channel(8);
    let forwarding = {
        let pending = std::sync::Arc::clone(&pending);
        tokio::spawn(async move {
            while let Some((request, lines)) = incoming.recv().await {
                pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_back(lines);
                if requests.send(request).await.is_err() {
                    break;
                }
            }
        })
    };
    let rpc_error = |status: tonic::Status| ImportError::Rpc {
        file: file.clone(),
        code: status.code(),
        message: status.message().to_owned(),
    };
    let mut acks = client
        .stream_assessments(ReceiverStream::new(outbound))
        .await
        .map_err(rpc_error)?
        .into_inner();
    while let Some(ack) = acks.next().await {
        let ack = ack.map_err(rpc_error)?;
        let lines = pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
            .unwrap_or_default();
        report.assessments_accepted += u64::from(ack.accepted);
        report.assessments_duplicate += u64::from(ack.duplicates);
        for rejection in ack.rejections {
            report.problems.push(Problem {
                file: file.clone(),
                line: lines.get(rejection.index as usize).copied().unwrap_or(0),
                column: rejection.field,
                reason: rejection.reason,
            });
        }
    }
    let _ = forwarding.await;
    let problems = reading.await.map_err(|e| ImportError::File {
        file: file.clone(),
        message: format!("the reader failed: {e}"),
    })??;
    report.problems.extend(problems);
    let unacknowledged = pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len();
    if unacknowledged > 0 {
        return Err(ImportError::Rpc {
            file,
            code: tonic::Code::Unavailable,
            message: format!("{unacknowledged} batch(es) were not acknowledged"),
        });
    }
    Ok(())
}

/// Writes `org` as the five CSV files `run` reads.
pub fn write_org_csv(org: &DemoOrg, dir: &Path) -> Result<(), ImportError> {
    let fail = |file: &str, e: &dyn fmt::Display| ImportError::File {
        file: dir.join(file).display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("", &e))?;
    let write = |file: &str, header: &[&str], rows: &mut dyn Iterator<Item = Vec<String>>| {
        let mut writer = csv::Writer::from_path(dir.join(file)).map_err(|e| fail(file, &e))?;
        writer.write_record(header).map_err(|e| fail(file, &e))?;
        for row in rows {
            writer.write_record(&row).map_err(|e| fail(file, &e))?;
        }
        writer.flush().map_err(|e| fail(file, &e))
    };
    let opt = |v: Option<&dyn fmt::Display>| v.map(ToString::to_string).unwrap_or_default();
    write(
        "skills.csv",
        &[
            "id",
            "name",
            "category",
            "description",
            "indicator_1",
            "indicator_2",
            "indicator_3",
            "indicator_4",
            "indicator_5",
        ],
        &mut org.skills.iter().map(|s| {
            let mut row = vec![
                s.id.to_string(),
                s.name.as_str().into(),
                s.category.name().into(),
                s.description.as_str().into(),
            ];
            row.extend((1..=5u8).map(|l| {
                s.indicators
                    .iter()
                    .find(|i| i.level == l)
                    .map(|i| i.description.as_str().to_owned())
                    .unwrap_or_default()
            }));
            row
        }),
    )?;
    write(
        "roles.csv",
        &[
            "role_id",
            "role_name",
            "skill_id",
            "required_level",
            "weight",
        ],
        &mut org.roles.iter().flat_map(|r| {
            r.requirements.iter().map(move |q| {
                vec![
                    r.id.to_string(),
                    r.name.as_str().into(),
                    q.skill.to_string(),
                    q.level.value().to_string(),
                    q.weight.value().to_string(),
                ]
            })
        }),
    )?;
    let managers: HashMap<&str, String> = org
        .managed_teams
        .iter()
        .map(|t| (t.id.as_str(), opt(t.manager.as_ref().map(|m| m as _))))
        .collect();
    write(
        "teams.csv",
        &["id", "name", "parent_id", "manager_id"],
        &mut org.teams.iter().map(|t| {
            vec![
                t.id.to_string(),
                t.name.as_str().into(),
                opt(t.parent.as_ref().map(|p| p as _)),
                managers.get(t.id.as_str()).cloned().unwrap_or_default(),
            ]
        }),
    )?;
    write(
        "people.csv",
        &[
            "id",
            "display_name",
            "team_id",
            "role_id",
            "target_role_id",
            "availability",
        ],
        &mut org.people.iter().map(|p| {
            vec![
                p.id.to_string(),
                p.display_name.as_str().into(),
                p.team.to_string(),
                p.role.to_string(),
                opt(p.target_role.as_ref().map(|r| r as _)),
                p.availability.value().to_string(),
            ]
        }),
    )?;
    write(
        "assessments.csv",
        &ASSESSMENT_COLUMNS,
        &mut org.assessments.iter().map(|a| {
            vec![
                a.id.to_string(),
                a.person.to_string(),
                a.skill.to_string(),
                a.score.value().to_string(),
                a.source.name().into(),
                opt(a.assessor.as_ref().map(|p| p as _)),
                timestamp_to_pb(a.assessed_at).to_string(),
                a.evidence.as_str().into(),
            ]
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_map_to_lines_and_columns() {
        let origins = vec![
            single(2),
            Origin {
                line: 3,
                sub_lines: vec![3, 4, 5],
            },
        ];
        let p = locate(
            "roles.csv",
            &origins,
            "roles[1].requirements[2].skill_id",
            "unknown skill".into(),
        );
        assert_eq!((p.line, p.column.as_str()), (5, "skill_id"));
        let p = locate(
            "people.csv",
            &origins,
            "people[0].team_id",
            "unknown team".into(),
        );
        assert_eq!((p.line, p.column.as_str()), (2, "team_id"));
        assert_eq!(split_path("x[12]"), Some((12, "")));
    }
}
