//! Writes as log entries: the unit cluster mode replicates (see `crate::cluster`). An
//! entry is one write request, with everything the writer would otherwise decide by
//! itself fixed in it (the time, a token's hash), so that every node applying the same
//! entries in the same order reaches the same state and the same per-item outcomes.
//!
//! Names and evidence are never in an entry in plain text: they are sealed (AES-256-GCM)
//! under the person's cluster key, which erasure destroys (crypto-shredding the log).

use std::collections::HashMap;

use prost::Message;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::StoredToken;
use super::records::{
    AssessmentRecord, AuditRecord, MentorshipRecord, PersonRecord, RoleRecord, SkillRecord,
    TeamRecord, TokenRecord, decode, encode,
};
use crate::domain::{
    Assessment, AuditEvent, Mentorship, Person, PersonId, Role, Skill, Team, Timestamp, TokenId,
};
use crate::error::Error;

/// A write, as replicated.
#[derive(Clone, Debug)]
pub enum LogOp {
    /// Creates or replaces skills.
    Skills(Vec<Skill>),
    /// Creates or replaces roles.
    Roles(Vec<Role>),
    /// Creates or replaces teams.
    Teams(Vec<Team>),
    /// Creates or replaces people.
    People(Vec<Person>),
    /// Records assessments, each with its position in the request.
    Assessments(Vec<(u32, Assessment)>),
    /// Starts a mentorship, with the mentor's capacity.
    StartMentoring(Mentorship, u32),
    /// Ends the mentorship of (mentee, mentor).
    EndMentoring(PersonId, PersonId),
    /// Erases a person.
    DeletePerson(PersonId),
    /// Adds a token (its secret's hash only).
    CreateToken(StoredToken),
    /// Adds the first admin token if there is no token yet.
    FirstAdminToken(StoredToken),
    /// Revokes a token.
    RevokeToken(TokenId),
    /// Appends audit events recorded by a node.
    Audit(Vec<AuditEvent>),
}

/// One replicated write.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Unique per write; the log's de-duplication id.
    pub id: String,
    /// When the write was received: the writer's clock while it applies the entry.
    pub at: Timestamp,
    /// What to do.
    pub op: LogOp,
}

/// A person's cluster key (AES-256).
pub type LogKey = [u8; 32];

/// Display name shown for a person whose key was destroyed before a lagging node read
/// an entry naming them (the entry that erases them follows in the log).
const ERASED_NAME: &str = "(erased)";

#[derive(Clone, PartialEq, Message)]
struct IndexedAssessment {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(message, optional, tag = "2")]
    record: Option<AssessmentRecord>,
}

#[derive(Clone, PartialEq, Message)]
struct EntryRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(int64, tag = "2")]
    at_ms: i64,
    #[prost(uint32, tag = "3")]
    kind: u32,
    #[prost(message, repeated, tag = "4")]
    skills: Vec<SkillRecord>,
    #[prost(message, repeated, tag = "5")]
    roles: Vec<RoleRecord>,
    #[prost(message, repeated, tag = "6")]
    teams: Vec<TeamRecord>,
    #[prost(message, repeated, tag = "7")]
    people: Vec<PersonRecord>,
    #[prost(message, repeated, tag = "8")]
    assessments: Vec<IndexedAssessment>,
    #[prost(message, optional, tag = "9")]
    mentorship: Option<MentorshipRecord>,
    #[prost(uint32, tag = "10")]
    capacity: u32,
    #[prost(string, tag = "11")]
    first: String,
    #[prost(string, tag = "12")]
    second: String,
    #[prost(message, optional, tag = "13")]
    token: Option<TokenRecord>,
    #[prost(message, repeated, tag = "14")]
    audit: Vec<AuditRecord>,
}

const SKILLS: u32 = 1;
const ROLES: u32 = 2;
const TEAMS: u32 = 3;
const PEOPLE: u32 = 4;
const ASSESSMENTS: u32 = 5;
const START_MENTORING: u32 = 6;
const END_MENTORING: u32 = 7;
const DELETE_PERSON: u32 = 8;
const CREATE_TOKEN: u32 = 9;
const FIRST_ADMIN: u32 = 10;
const REVOKE_TOKEN: u32 = 11;
const AUDIT: u32 = 12;

fn corrupt(detail: impl Into<String>) -> Error {
    Error::Corrupt {
        tree: "cluster log".into(),
        detail: detail.into(),
    }
}

fn sealing_key(key: &LogKey) -> LessSafeKey {
    // A 32-byte key is always a valid AES-256 key.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256 key"))
}

/// Seals `plain` under `key`: a random nonce, then the ciphertext and tag.
fn seal(key: &LogKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| Error::Internal("no randomness for a nonce".into()))?;
    let mut sealed = plain.to_vec();
    sealing_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut sealed,
        )
        .map_err(|_| Error::Internal("sealing failed".into()))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

fn open(key: &LogKey, aad: &[u8], sealed: &[u8]) -> Result<String, Error> {
    if sealed.len() < NONCE_LEN {
        return Err(corrupt("sealed text too short"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt("bad nonce"))?;
    let mut body = body.to_vec();
    let plain = sealing_key(key)
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| corrupt("sealed text does not open under its person's key"))?;
    String::from_utf8(plain.to_vec()).map_err(|_| corrupt("sealed text is not UTF-8"))
}

/// A new random cluster key.
pub fn new_log_key() -> Result<LogKey, Error> {
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| Error::Internal("no randomness for a key".into()))?;
    Ok(key)
}

fn name_aad(person: &str) -> Vec<u8> {
    [b"log-name\0".as_slice(), person.as_bytes()].concat()
}

fn evidence_aad(assessment: &str) -> Vec<u8> {
    [b"log-evidence\0".as_slice(), assessment.as_bytes()].concat()
}

impl LogEntry {
    /// The people whose keys sealing this entry needs: those named or with evidence.
    pub fn sealed_for(&self) -> Vec<PersonId> {
        let mut people: Vec<PersonId> = match &self.op {
            LogOp::People(people) => people.iter().map(|p| p.id.clone()).collect(),
            LogOp::Assessments(items) => items
                .iter()
                .filter(|(_, a)| !a.evidence.as_str().is_empty())
                .map(|(_, a)| a.person.clone())
                .collect(),
            _ => Vec::new(),
        };
        people.sort();
        people.dedup();
        people
    }

    /// Encodes the entry, sealing names and evidence with `keys` (which must hold a
    /// key for everyone `sealed_for` names).
    pub fn encode(&self, keys: &HashMap<PersonId, LogKey>) -> Result<Vec<u8>, Error> {
        let key_of = |id: &PersonId| {
            keys.get(id)
                .ok_or_else(|| Error::Internal(format!("no cluster key for a person ({id})")))
        };
        let mut record = EntryRecord {
            id: self.id.clone(),
            at_ms: self.at.unix_millis(),
            ..EntryRecord::default()
        };
        match &self.op {
            LogOp::Skills(skills) => {
                record.kind = SKILLS;
                record.skills = skills.iter().map(SkillRecord::from).collect();
            }
            LogOp::Roles(roles) => {
                record.kind = ROLES;
                record.roles = roles.iter().map(RoleRecord::from).collect();
            }
            LogOp::Teams(teams) => {
                record.kind = TEAMS;
                record.teams = teams.iter().map(TeamRecord::from).collect();
            }
            LogOp::People(people) => {
                record.kind = PEOPLE;
                for person in people {
                    let mut r = PersonRecord::from(person);
                    let sealed = seal(
                        key_of(&person.id)?,
                        &name_aad(person.id.as_str()),
                        person.display_name.as_str().as_bytes(),
                    )?;
                    r.set_log_sealed_name(sealed);
                    record.people.push(r);
                }
            }
            LogOp::Assessments(items) => {
                record.kind = ASSESSMENTS;
                for (index, a) in items {
                    let mut r = AssessmentRecord::new(a);
                    if !a.evidence.as_str().is_empty() {
                        let sealed = seal(
                            key_of(&a.person)?,
                            &evidence_aad(a.id.as_str()),
                            a.evidence.as_str().as_bytes(),
                        )?;
                        r.set_log_sealed_evidence(sealed);
                    }
                    record.assessments.push(IndexedAssessment {
                        index: *index,
                        record: Some(r),
                    });
                }
            }
            LogOp::StartMentoring(m, capacity) => {
                record.kind = START_MENTORING;
                record.mentorship = Some(MentorshipRecord::from(m));
                record.capacity = *capacity;
            }
            LogOp::EndMentoring(mentee, mentor) => {
                record.kind = END_MENTORING;
                record.first = mentee.to_string();
                record.second = mentor.to_string();
            }
            LogOp::DeletePerson(id) => {
                record.kind = DELETE_PERSON;
                record.first = id.to_string();
            }
            LogOp::CreateToken(token) | LogOp::FirstAdminToken(token) => {
                record.kind = if matches!(self.op, LogOp::CreateToken(_)) {
                    CREATE_TOKEN
                } else {
                    FIRST_ADMIN
                };
                record.token = Some(TokenRecord::from(token));
            }
            LogOp::RevokeToken(id) => {
                record.kind = REVOKE_TOKEN;
                record.first = id.to_string();
            }
            LogOp::Audit(events) => {
                record.kind = AUDIT;
                record.audit = events.iter().cloned().map(AuditRecord::from).collect();
            }
        }
        Ok(encode(&record))
    }

    /// The person an encoded entry erases, if it is an erasure.
    pub fn erases(bytes: &[u8]) -> Result<Option<PersonId>, Error> {
        let record: EntryRecord = decode("cluster log", bytes)?;
        if record.kind != DELETE_PERSON {
            return Ok(None);
        }
        PersonId::parse(&record.first)
            .map(Some)
            .map_err(|v| corrupt(format!("{}: {}", v.field, v.reason)))
    }

    /// The people whose keys decoding `bytes` needs (cheap: no unsealing).
    pub fn sealed_in(bytes: &[u8]) -> Result<Vec<PersonId>, Error> {
        let record: EntryRecord = decode("cluster log", bytes)?;
        let mut ids: Vec<&str> = record.people.iter().map(PersonRecord::id).collect();
        ids.extend(
            record
                .assessments
                .iter()
                .filter_map(|i| i.record.as_ref())
                .filter(|r| r.has_sealed_evidence())
                .map(|r| r.person_id.as_str()),
        );
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|id| PersonId::parse(id).map_err(|v| corrupt(v.reason)))
            .collect()
    }

    /// Decodes an entry, opening sealed text with `keys`. A person without a key (erased
    /// since) gets a placeholder name and no evidence: the entry erasing them follows.
    pub fn decode(bytes: &[u8], keys: &HashMap<PersonId, LogKey>) -> Result<Self, Error> {
        let record: EntryRecord = decode("cluster log", bytes)?;
        let bad = |v: crate::domain::FieldViolation| corrupt(format!("{}: {}", v.field, v.reason));
        let person = |raw: &str| PersonId::parse(raw).map_err(bad);
        let op = match record.kind {
            SKILLS => LogOp::Skills(
                record
                    .skills
                    .into_iter()
                    .map(SkillRecord::into_domain)
                    .collect::<Result<_, _>>()?,
            ),
            ROLES => LogOp::Roles(
                record
                    .roles
                    .into_iter()
                    .map(RoleRecord::into_domain)
                    .collect::<Result<_, _>>()?,
            ),
            TEAMS => LogOp::Teams(
                record
                    .teams
                    .into_iter()
                    .map(TeamRecord::into_domain)
                    .collect::<Result<_, _>>()?,
            ),
            PEOPLE => {
                let mut people = Vec::with_capacity(record.people.len());
                for mut r in record.people {
                    let id = person(r.id())?;
                    let name = match keys.get(&id) {
                        Some(key) => open(key, &name_aad(id.as_str()), r.log_sealed_name())?,
                        None => ERASED_NAME.to_owned(),
                    };
                    r.set_plain_name(name);
                    people.push(r.into_plain_domain()?);
                }
                LogOp::People(people)
            }
            ASSESSMENTS => {
                let mut items = Vec::with_capacity(record.assessments.len());
                for item in record.assessments {
                    let mut r = item.record.ok_or_else(|| corrupt("assessment missing"))?;
                    if r.has_sealed_evidence() {
                        let id = person(&r.person_id)?;
                        let evidence = match keys.get(&id) {
                            Some(key) => open(key, &evidence_aad(&r.id), r.log_sealed_evidence())?,
                            None => String::new(),
                        };
                        r.set_plain_evidence(evidence);
                    }
                    items.push((item.index, r.into_plain_domain()?));
                }
                LogOp::Assessments(items)
            }
            START_MENTORING => LogOp::StartMentoring(
                record
                    .mentorship
                    .ok_or_else(|| corrupt("mentorship missing"))?
                    .into_domain()?,
                record.capacity,
            ),
            END_MENTORING => LogOp::EndMentoring(person(&record.first)?, person(&record.second)?),
            DELETE_PERSON => LogOp::DeletePerson(person(&record.first)?),
            CREATE_TOKEN | FIRST_ADMIN => {
                let token = record
                    .token
                    .ok_or_else(|| corrupt("token missing"))?
                    .into_domain()?;
                if record.kind == CREATE_TOKEN {
                    LogOp::CreateToken(token)
                } else {
                    LogOp::FirstAdminToken(token)
                }
            }
            REVOKE_TOKEN => {
                LogOp::RevokeToken(TokenId::parse(&record.first).map_err(|v| corrupt(v.reason))?)
            }
            AUDIT => LogOp::Audit(
                record
                    .audit
                    .into_iter()
                    .map(|r| r.into_domain(0))
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(corrupt(format!("unknown entry kind {other}"))),
        };
        Ok(Self {
            id: record.id,
            at: Timestamp::from_unix_millis(record.at_ms),
            op,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::person;
    use super::*;
    use crate::domain::{AssessmentId, Level, SkillId, Source, Text};

    fn assessment(id: &str, person: &str, evidence: &str) -> Assessment {
        Assessment {
            id: AssessmentId::parse(id).unwrap(),
            person: PersonId::parse(person).unwrap(),
            skill: SkillId::parse("s").unwrap(),
            score: Level::parse(3.0).unwrap(),
            source: Source::Peer,
            assessor: None,
            assessed_at: Timestamp::from_unix_millis(5),
            evidence: Text::long(evidence).unwrap(),
        }
    }

    #[test]
    fn entries_round_trip_with_names_and_evidence_sealed() {
        let p = PersonId::parse("p1").unwrap();
        let keys = HashMap::from([(p.clone(), new_log_key().unwrap())]);
        let people = LogEntry {
            id: "e1".into(),
            at: Timestamp::from_unix_millis(42),
            op: LogOp::People(vec![person("p1", "Canary Zyx")]),
        };
        assert_eq!(people.sealed_for(), vec![p.clone()]);
        let bytes = people.encode(&keys).unwrap();
        assert!(!bytes.windows(10).any(|w| w == b"Canary Zyx"));
        assert_eq!(LogEntry::sealed_in(&bytes).unwrap(), vec![p.clone()]);
        let back = LogEntry::decode(&bytes, &keys).unwrap();
        assert_eq!(back.at, Timestamp::from_unix_millis(42));
        match back.op {
            LogOp::People(v) => assert_eq!(v, vec![person("p1", "Canary Zyx")]),
            other => panic!("{other:?}"),
        }

        let items = vec![(3, assessment("a1", "p1", "secret evidence"))];
        let entry = LogEntry {
            id: "e2".into(),
            at: Timestamp::from_unix_millis(43),
            op: LogOp::Assessments(items.clone()),
        };
        let bytes = entry.encode(&keys).unwrap();
        assert!(!bytes.windows(15).any(|w| w == b"secret evidence"));
        match LogEntry::decode(&bytes, &keys).unwrap().op {
            LogOp::Assessments(v) => assert_eq!(v, items),
            other => panic!("{other:?}"),
        }
        // Without the key (erased), the text is unreadable and replaced.
        match LogEntry::decode(&bytes, &HashMap::new()).unwrap().op {
            LogOp::Assessments(v) => assert!(v[0].1.evidence.as_str().is_empty()),
            other => panic!("{other:?}"),
        }
        let bytes = people.encode(&keys).unwrap();
        match LogEntry::decode(&bytes, &HashMap::new()).unwrap().op {
            LogOp::People(v) => assert_eq!(v[0].display_name.as_str(), ERASED_NAME),
            other => panic!("{other:?}"),
        }
        // A wrong key is an error, never wrong text.
        let other = HashMap::from([(p, new_log_key().unwrap())]);
        assert!(LogEntry::decode(&bytes, &other).is_err());
    }

    #[test]
    fn an_entry_without_its_key_cannot_be_encoded() {
        let entry = LogEntry {
            id: "e".into(),
            at: Timestamp::from_unix_millis(1),
            op: LogOp::People(vec![person("p1", "Someone")]),
        };
        assert!(entry.encode(&HashMap::new()).is_err());
    }
}
