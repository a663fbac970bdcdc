//! On-disk record encoding: prost messages (forward-compatible field tags) behind a
//! one-byte format version, converted to and from domain types. Loading re-validates
//! every record through the domain parsers, so a damaged record is reported, not used.

use prost::Message;

use super::StoredToken;
use super::keys::{KeyRing, Keys, SEALED_OVERHEAD};
use crate::domain::{
    AccessRole, Assessment, AssessmentId, AuditEvent, Availability, FieldViolation, Grant,
    Indicator, Level, Mentorship, Person, PersonId, Requirement, Role, RoleId, Skill,
    SkillCategory, SkillId, Source, Team, TeamId, Text, Timestamp, TokenId, TokenInfo, Weight,
};
use crate::error::Error;

/// Format byte of values written before checksums: the message follows it directly.
/// Still read.
const RECORD_V1: u8 = 1;
/// Format byte of values with a checksum: the message's xxh3-64 (8 bytes, little endian)
/// follows it, then the message. Written since schema 2.
const RECORD_V2: u8 = 2;
/// Bytes in front of a V2 message.
const V2_HEADER: usize = 1 + 8;

#[derive(Clone, PartialEq, Message)]
pub(super) struct IndicatorRecord {
    #[prost(uint32, tag = "1")]
    level: u32,
    #[prost(string, tag = "2")]
    description: String,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct SkillRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(uint32, tag = "3")]
    category: u32,
    #[prost(string, tag = "4")]
    description: String,
    #[prost(message, repeated, tag = "5")]
    indicators: Vec<IndicatorRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct RequirementRecord {
    #[prost(string, tag = "1")]
    skill_id: String,
    #[prost(float, tag = "2")]
    level: f32,
    #[prost(float, tag = "3")]
    weight: f32,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct RoleRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "3")]
    requirements: Vec<RequirementRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct TeamRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    parent_id: String,
    #[prost(string, tag = "4")]
    manager_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct PersonRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    display_name: String,
    #[prost(string, tag = "3")]
    team_id: String,
    #[prost(string, tag = "4")]
    role_id: String,
    #[prost(string, tag = "5")]
    target_role_id: String,
    #[prost(float, tag = "6")]
    availability: f32,
    /// The person's key in `person.keys` (see `keys`); absent in records written before
    /// schema 2, whose name is in `display_name`.
    #[prost(uint32, optional, tag = "7")]
    pub(super) key_slot: Option<u32>,
    /// The display name sealed under the person's key (`display_name` is then empty).
    #[prost(bytes = "vec", tag = "8")]
    sealed_name: Vec<u8>,
    /// Cluster mode: the person's cluster key (`log::LogKey`) sealed under their local
    /// key, so that it goes with them on erasure and can be given back to the cluster
    /// if its key stream (held in memory) is lost.
    #[prost(bytes = "vec", tag = "9")]
    sealed_cluster_key: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct AssessmentRecord {
    #[prost(string, tag = "1")]
    pub(super) id: String,
    #[prost(string, tag = "2")]
    pub(super) person_id: String,
    #[prost(string, tag = "3")]
    pub(super) skill_id: String,
    #[prost(float, tag = "4")]
    score: f32,
    #[prost(uint32, tag = "5")]
    source: u32,
    #[prost(string, tag = "6")]
    pub(super) assessor_id: String,
    #[prost(int64, tag = "7")]
    assessed_at_ms: i64,
    #[prost(string, tag = "8")]
    evidence: String,
    /// Hash of the content as first received. Kept through erasure's assessor clearing
    /// so that re-sending the original stays a duplicate, not a conflict.
    #[prost(fixed64, tag = "9")]
    pub(super) fingerprint: u64,
    /// The evidence sealed under the assessed person's key (`evidence` is then empty).
    #[prost(bytes = "vec", tag = "10")]
    sealed_evidence: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct BatchRecord {
    #[prost(message, repeated, tag = "1")]
    pub(super) items: Vec<AssessmentRecord>,
}

/// Encodes `message` behind the format byte and its checksum.
pub(super) fn encode(message: &impl Message) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(V2_HEADER + message.encoded_len());
    bytes.push(RECORD_V2);
    bytes.extend_from_slice(&[0; 8]);
    // Encoding into a Vec cannot run out of buffer space.
    message.encode(&mut bytes).expect("Vec grows as needed");
    let sum = xxhash_rust::xxh3::xxh3_64(&bytes[V2_HEADER..]);
    bytes[1..V2_HEADER].copy_from_slice(&sum.to_le_bytes());
    bytes
}

/// Decodes a record written by `encode` (or by a build before checksums), verifying its
/// checksum: a damaged value is an error naming its tree, never a different record.
pub(super) fn decode<M: Message + Default>(tree: &str, bytes: &[u8]) -> Result<M, Error> {
    match bytes.split_first() {
        Some((&RECORD_V2, rest)) if rest.len() >= 8 => {
            let (sum, body) = rest.split_at(8);
            if sum != xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() {
                return Err(corrupt(tree, "a value fails its checksum"));
            }
            M::decode(body).map_err(|e| corrupt(tree, e.to_string()))
        }
        Some((&RECORD_V1, body)) => M::decode(body).map_err(|e| corrupt(tree, e.to_string())),
        Some((version, _)) => Err(corrupt(tree, format!("unknown record format {version}"))),
        None => Err(corrupt(tree, "empty record")),
    }
}

fn corrupt(tree: &str, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        tree: tree.to_owned(),
        detail: detail.into(),
    }
}

fn invalid(tree: &str) -> impl Fn(FieldViolation) -> Error + '_ {
    move |v| corrupt(tree, format!("{}: {}", v.field, v.reason))
}

fn optional(raw: &str) -> Option<&str> {
    (!raw.is_empty()).then_some(raw)
}

impl From<&Skill> for SkillRecord {
    fn from(skill: &Skill) -> Self {
        Self {
            id: skill.id.to_string(),
            name: skill.name.as_str().to_owned(),
            category: u32::from(skill.category.code()),
            description: skill.description.as_str().to_owned(),
            indicators: skill
                .indicators
                .iter()
                .map(|i| IndicatorRecord {
                    level: u32::from(i.level),
                    description: i.description.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

impl SkillRecord {
    pub(super) fn into_domain(self) -> Result<Skill, Error> {
        let bad = invalid("skills");
        let category = u8::try_from(self.category)
            .ok()
            .and_then(SkillCategory::from_code)
            .ok_or_else(|| corrupt("skills", "unknown category"))?;
        let indicators = self
            .indicators
            .into_iter()
            .map(|i| {
                let description = Text::long(&i.description).map_err(&bad)?;
                Indicator::parse(i.level, description).map_err(&bad)
            })
            .collect::<Result<_, _>>()?;
        Ok(Skill {
            id: SkillId::parse(&self.id).map_err(&bad)?,
            name: Text::name(&self.name).map_err(&bad)?,
            category,
            description: Text::long(&self.description).map_err(&bad)?,
            indicators,
        })
    }
}

impl From<&Role> for RoleRecord {
    fn from(role: &Role) -> Self {
        Self {
            id: role.id.to_string(),
            name: role.name.as_str().to_owned(),
            requirements: role
                .requirements
                .iter()
                .map(|r| RequirementRecord {
                    skill_id: r.skill.to_string(),
                    level: r.level.value(),
                    weight: r.weight.value(),
                })
                .collect(),
        }
    }
}

impl RoleRecord {
    pub(super) fn into_domain(self) -> Result<Role, Error> {
        let bad = invalid("roles");
        let requirements = self
            .requirements
            .into_iter()
            .map(|r| {
                Ok(Requirement {
                    skill: SkillId::parse(&r.skill_id).map_err(&bad)?,
                    level: Level::parse(f64::from(r.level)).map_err(&bad)?,
                    weight: Weight::parse(f64::from(r.weight)).map_err(&bad)?,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Role {
            id: RoleId::parse(&self.id).map_err(&bad)?,
            name: Text::name(&self.name).map_err(&bad)?,
            requirements,
        })
    }
}

impl From<&Team> for TeamRecord {
    fn from(team: &Team) -> Self {
        Self {
            id: team.id.to_string(),
            name: team.name.as_str().to_owned(),
            parent_id: team
                .parent
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            manager_id: team
                .manager
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

impl TeamRecord {
    pub(super) fn into_domain(self) -> Result<Team, Error> {
        let bad = invalid("teams");
        Ok(Team {
            id: TeamId::parse(&self.id).map_err(&bad)?,
            name: Text::name(&self.name).map_err(&bad)?,
            parent: optional(&self.parent_id)
                .map(TeamId::parse)
                .transpose()
                .map_err(&bad)?,
            manager: optional(&self.manager_id)
                .map(PersonId::parse)
                .transpose()
                .map_err(&bad)?,
        })
    }
}

impl From<&Person> for PersonRecord {
    fn from(person: &Person) -> Self {
        Self {
            id: person.id.to_string(),
            display_name: person.display_name.as_str().to_owned(),
            team_id: person.team.to_string(),
            role_id: person.role.to_string(),
            target_role_id: person
                .target_role
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            availability: person.availability.value(),
            key_slot: None,
            sealed_name: Vec::new(),
            sealed_cluster_key: Vec::new(),
        }
    }
}

/// Additional data of a sealed cluster key: bound to its person.
fn cluster_key_aad(person: &str) -> Vec<u8> {
    [b"cluster-key\0".as_slice(), person.as_bytes()].concat()
}

/// Additional data of a sealed display name: the text is bound to its person.
fn name_aad(person: &str) -> Vec<u8> {
    [b"name\0".as_slice(), person.as_bytes()].concat()
}

/// Additional data of sealed evidence: bound to its assessment.
fn evidence_aad(assessment: &str) -> Vec<u8> {
    [b"evidence\0".as_slice(), assessment.as_bytes()].concat()
}

fn unseal(tree: &str, ring: &KeyRing, aad: &[u8], sealed: &[u8]) -> Result<String, Error> {
    let plain = ring.open(aad, sealed).map_err(|e| corrupt(tree, e))?;
    String::from_utf8(plain).map_err(|_| corrupt(tree, "sealed text is not UTF-8"))
}

impl PersonRecord {
    /// Seals the display name under the key in `slot`.
    pub(super) fn seal(&mut self, keys: &mut Keys, slot: u32) -> Result<(), Error> {
        let name = std::mem::take(&mut self.display_name);
        self.sealed_name = keys
            .seal(slot, &name_aad(&self.id), name.as_bytes())
            .map_err(Error::Internal)?;
        self.key_slot = Some(slot);
        Ok(())
    }

    /// Seals the person's cluster key under the key in `slot` (after `seal`).
    pub(super) fn seal_cluster_key(
        &mut self,
        keys: &mut Keys,
        slot: u32,
        key: &crate::store::LogKey,
    ) -> Result<(), Error> {
        self.sealed_cluster_key = keys
            .seal(slot, &cluster_key_aad(&self.id), key)
            .map_err(Error::Internal)?;
        Ok(())
    }

    /// The person's id and cluster key, if the record holds one.
    pub(super) fn cluster_key(
        &self,
        ring: &KeyRing,
    ) -> Result<Option<(PersonId, crate::store::LogKey)>, Error> {
        if self.sealed_cluster_key.is_empty() {
            return Ok(None);
        }
        let plain = ring
            .open(&cluster_key_aad(&self.id), &self.sealed_cluster_key)
            .map_err(|e| corrupt("people", e))?;
        let key = plain
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("people", "a cluster key is not 32 bytes"))?;
        let id = PersonId::parse(&self.id).map_err(invalid("people"))?;
        Ok(Some((id, key)))
    }

    pub(super) fn into_domain(self, ring: &KeyRing) -> Result<Person, Error> {
        let bad = invalid("people");
        let name = match self.key_slot {
            Some(_) => unseal("people", ring, &name_aad(&self.id), &self.sealed_name)?,
            None => self.display_name,
        };
        Ok(Person {
            id: PersonId::parse(&self.id).map_err(&bad)?,
            display_name: Text::name(&name).map_err(&bad)?,
            team: TeamId::parse(&self.team_id).map_err(&bad)?,
            role: RoleId::parse(&self.role_id).map_err(&bad)?,
            target_role: optional(&self.target_role_id)
                .map(RoleId::parse)
                .transpose()
                .map_err(&bad)?,
            availability: Availability::parse(f64::from(self.availability)).map_err(&bad)?,
        })
    }
}

/// Access for the cluster log (`log`), where the sealed fields hold text sealed under
/// the person's cluster key rather than a local key slot.
impl PersonRecord {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn set_log_sealed_name(&mut self, sealed: Vec<u8>) {
        self.display_name.clear();
        self.sealed_name = sealed;
    }

    pub(super) fn log_sealed_name(&self) -> &[u8] {
        &self.sealed_name
    }

    pub(super) fn set_plain_name(&mut self, name: String) {
        self.display_name = name;
        self.sealed_name.clear();
        self.key_slot = None;
    }

    /// The person of a record whose name is in plain text (`set_plain_name`).
    pub(super) fn into_plain_domain(self) -> Result<Person, Error> {
        self.into_domain(&KeyRing::default())
    }
}

impl AssessmentRecord {
    pub(super) fn has_sealed_evidence(&self) -> bool {
        !self.sealed_evidence.is_empty()
    }

    pub(super) fn set_log_sealed_evidence(&mut self, sealed: Vec<u8>) {
        self.evidence.clear();
        self.sealed_evidence = sealed;
    }

    pub(super) fn log_sealed_evidence(&self) -> &[u8] {
        &self.sealed_evidence
    }

    pub(super) fn set_plain_evidence(&mut self, evidence: String) {
        self.evidence = evidence;
        self.sealed_evidence.clear();
    }

    /// The assessment of a record whose evidence is in plain text.
    pub(super) fn into_plain_domain(self) -> Result<Assessment, Error> {
        self.to_domain(&KeyRing::default())
    }
}

impl AssessmentRecord {
    /// The record of a newly received assessment, with its content fingerprint.
    pub(super) fn new(a: &Assessment) -> Self {
        let mut record = Self {
            id: a.id.to_string(),
            person_id: a.person.to_string(),
            skill_id: a.skill.to_string(),
            score: a.score.value(),
            source: u32::from(a.source.code()),
            assessor_id: a
                .assessor
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            assessed_at_ms: a.assessed_at.unix_millis(),
            evidence: a.evidence.as_str().to_owned(),
            fingerprint: 0,
            sealed_evidence: Vec::new(),
        };
        record.fingerprint = xxhash_rust::xxh3::xxh3_64(&record.encode_to_vec());
        record
    }

    /// Seals non-empty evidence under the key in `slot` (the assessed person's).
    pub(super) fn seal(&mut self, keys: &mut Keys, slot: u32) -> Result<(), Error> {
        if self.evidence.is_empty() {
            return Ok(());
        }
        let evidence = std::mem::take(&mut self.evidence);
        self.sealed_evidence = keys
            .seal(slot, &evidence_aad(&self.id), evidence.as_bytes())
            .map_err(Error::Internal)?;
        Ok(())
    }

    pub(super) fn skill_id(&self) -> &str {
        &self.skill_id
    }

    /// Checks a stored record without allocating: id well-formed, score, source and
    /// evidence valid. Returns the parsed score, source and time.
    pub(super) fn check(&self) -> Result<(Level, Source, Timestamp), Error> {
        let bad = invalid("assessments");
        AssessmentId::validate(&self.id).map_err(&bad)?;
        let score = Level::parse(f64::from(self.score)).map_err(&bad)?;
        let source = u8::try_from(self.source)
            .ok()
            .and_then(Source::from_code)
            .ok_or_else(|| corrupt("assessments", "unknown source"))?;
        if self.evidence.chars().count() > Text::MAX_LONG
            || self.sealed_evidence.len() > SEALED_OVERHEAD + 4 * Text::MAX_LONG
        {
            return Err(corrupt("assessments", "evidence too long"));
        }
        Ok((
            score,
            source,
            Timestamp::from_unix_millis(self.assessed_at_ms),
        ))
    }

    pub(super) fn to_domain(&self, ring: &KeyRing) -> Result<Assessment, Error> {
        let bad = invalid("assessments");
        let sealed;
        let evidence = if self.sealed_evidence.is_empty() {
            self.evidence.as_str()
        } else {
            sealed = unseal(
                "assessments",
                ring,
                &evidence_aad(&self.id),
                &self.sealed_evidence,
            )?;
            sealed.as_str()
        };
        let source = u8::try_from(self.source)
            .ok()
            .and_then(Source::from_code)
            .ok_or_else(|| corrupt("assessments", "unknown source"))?;
        Ok(Assessment {
            id: AssessmentId::parse(&self.id).map_err(&bad)?,
            person: PersonId::parse(&self.person_id).map_err(&bad)?,
            skill: SkillId::parse(&self.skill_id).map_err(&bad)?,
            score: Level::parse(f64::from(self.score)).map_err(&bad)?,
            source,
            assessor: optional(&self.assessor_id)
                .map(PersonId::parse)
                .transpose()
                .map_err(&bad)?,
            assessed_at: Timestamp::from_unix_millis(self.assessed_at_ms),
            evidence: Text::long(evidence).map_err(&bad)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_format_byte() {
        let team = Team {
            id: TeamId::parse("t1").unwrap(),
            name: Text::name("Team one").unwrap(),
            parent: Some(TeamId::parse("org").unwrap()),
            manager: None,
        };
        let record = TeamRecord::from(&team);
        let bytes = encode(&record);
        assert_eq!(bytes[0], RECORD_V2);
        let back = decode::<TeamRecord>("teams", &bytes)
            .unwrap()
            .into_domain()
            .unwrap();
        assert_eq!(back, team);
        // Values written before checksums are still read.
        let mut legacy = vec![RECORD_V1];
        legacy.extend(record.encode_to_vec());
        let back = decode::<TeamRecord>("teams", &legacy).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn every_flipped_bit_of_a_value_is_detected() {
        let team = Team {
            id: TeamId::parse("t1").unwrap(),
            name: Text::name("Team one").unwrap(),
            parent: None,
            manager: None,
        };
        let bytes = encode(&TeamRecord::from(&team));
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode::<TeamRecord>("teams", &damaged).is_err(),
                "bit {bit} flipped undetected"
            );
        }
    }

    #[test]
    fn an_unknown_format_is_reported_as_corrupt() {
        let err = decode::<TeamRecord>("teams", &[9, 1, 2]).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }));
    }

    #[test]
    fn the_fingerprint_follows_content_not_identity() {
        let a = Assessment {
            id: AssessmentId::parse("a1").unwrap(),
            person: PersonId::parse("p").unwrap(),
            skill: SkillId::parse("s").unwrap(),
            score: Level::parse(3.0).unwrap(),
            source: Source::Peer,
            assessor: None,
            assessed_at: Timestamp::from_unix_millis(1),
            evidence: Text::default(),
        };
        let mut b = a.clone();
        assert_eq!(
            AssessmentRecord::new(&a).fingerprint,
            AssessmentRecord::new(&b).fingerprint
        );
        b.score = Level::parse(3.5).unwrap();
        assert_ne!(
            AssessmentRecord::new(&a).fingerprint,
            AssessmentRecord::new(&b).fingerprint
        );
    }
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct TokenRecord {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(uint32, tag = "2")]
    role: u32,
    #[prost(string, repeated, tag = "3")]
    team_ids: Vec<String>,
    #[prost(string, tag = "4")]
    person_id: String,
    #[prost(string, tag = "5")]
    description: String,
    #[prost(int64, tag = "6")]
    created_at_ms: i64,
    /// 0 when the token does not expire.
    #[prost(int64, tag = "7")]
    expires_at_ms: i64,
    /// 0 when the token is not revoked.
    #[prost(int64, tag = "8")]
    revoked_at_ms: i64,
    #[prost(bytes = "vec", tag = "9")]
    secret_hash: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct AuditRecord {
    #[prost(int64, tag = "1")]
    at_ms: i64,
    #[prost(string, tag = "2")]
    token_id: String,
    #[prost(uint32, tag = "3")]
    role: u32,
    #[prost(string, tag = "4")]
    rpc: String,
    #[prost(string, repeated, tag = "5")]
    pub(super) subjects: Vec<String>,
    #[prost(string, tag = "6")]
    outcome: String,
    #[prost(string, tag = "7")]
    source: String,
    /// 0 in records written before aggregation: one call.
    #[prost(uint32, tag = "8")]
    count: u32,
}

impl AuditRecord {
    /// When the event was recorded, in milliseconds since the epoch.
    pub(super) fn at_ms(&self) -> i64 {
        self.at_ms
    }
}

/// Audit events appended together, stored under the first one's sequence (the others
/// follow it in order): one sled insert per writer group instead of one per event.
#[derive(Clone, PartialEq, Message)]
pub(super) struct AuditBlock {
    /// Field 16, so that an older value holding one bare `AuditRecord` (fields 1-6)
    /// decodes as an empty block and is recognised.
    #[prost(message, repeated, tag = "16")]
    pub(super) events: Vec<AuditRecord>,
}

/// The events of an `audit` value, in sequence order.
pub(super) fn decode_audit(bytes: &[u8]) -> Result<Vec<AuditRecord>, Error> {
    let block: AuditBlock = decode("audit", bytes)?;
    if block.events.is_empty() {
        Ok(vec![decode("audit", bytes)?])
    } else {
        Ok(block.events)
    }
}

fn millis_or_none(ms: i64) -> Option<Timestamp> {
    (ms != 0).then(|| Timestamp::from_unix_millis(ms))
}

impl From<&StoredToken> for TokenRecord {
    fn from(token: &StoredToken) -> Self {
        let info = &token.info;
        Self {
            id: info.id.to_string(),
            role: u32::from(info.grant.role.code()),
            team_ids: info.grant.teams.iter().map(ToString::to_string).collect(),
            person_id: info
                .grant
                .person
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            description: info.description.as_str().to_owned(),
            created_at_ms: info.created_at.unix_millis(),
            expires_at_ms: info.expires_at.map_or(0, Timestamp::unix_millis),
            revoked_at_ms: info.revoked_at.map_or(0, Timestamp::unix_millis),
            secret_hash: token.secret_hash.to_vec(),
        }
    }
}

impl TokenRecord {
    pub(super) fn into_domain(self) -> Result<StoredToken, Error> {
        let bad = invalid("tokens");
        let role = u8::try_from(self.role)
            .ok()
            .and_then(AccessRole::from_code)
            .ok_or_else(|| corrupt("tokens", "unknown role"))?;
        let teams = self
            .team_ids
            .iter()
            .map(|t| TeamId::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&bad)?;
        let person = optional(&self.person_id)
            .map(PersonId::parse)
            .transpose()
            .map_err(&bad)?;
        let secret_hash: [u8; 32] = self
            .secret_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("tokens", "secret hash is not 32 bytes"))?;
        // An erased person's token keeps its role but loses the binding; it is revoked.
        let grant = Grant {
            role,
            teams,
            person,
        };
        Ok(StoredToken {
            info: TokenInfo {
                id: TokenId::parse(&self.id).map_err(&bad)?,
                grant,
                description: Text::long(&self.description).map_err(&bad)?,
                created_at: Timestamp::from_unix_millis(self.created_at_ms),
                expires_at: millis_or_none(self.expires_at_ms),
                revoked_at: millis_or_none(self.revoked_at_ms),
            },
            secret_hash,
        })
    }
}

impl From<AuditEvent> for AuditRecord {
    fn from(event: AuditEvent) -> Self {
        Self {
            at_ms: event.at.unix_millis(),
            token_id: event
                .token
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            role: event.role.map_or(0, |r| u32::from(r.code())),
            rpc: event.rpc,
            subjects: event.subjects,
            outcome: event.outcome,
            source: event.source.unwrap_or_default(),
            count: event.count,
        }
    }
}

impl AuditRecord {
    pub(super) fn into_domain(self, sequence: u64) -> Result<AuditEvent, Error> {
        Ok(AuditEvent {
            sequence,
            at: Timestamp::from_unix_millis(self.at_ms),
            token: optional(&self.token_id)
                .map(TokenId::parse)
                .transpose()
                .map_err(invalid("audit"))?,
            role: u8::try_from(self.role).ok().and_then(AccessRole::from_code),
            rpc: self.rpc,
            subjects: self.subjects,
            outcome: self.outcome,
            source: optional(&self.source).map(str::to_owned),
            count: self.count.max(1),
        })
    }
}

#[derive(Clone, PartialEq, Message)]
pub(super) struct MentorshipRecord {
    #[prost(string, tag = "1")]
    mentee_id: String,
    #[prost(string, tag = "2")]
    mentor_id: String,
    #[prost(string, repeated, tag = "3")]
    skill_ids: Vec<String>,
    #[prost(int64, tag = "4")]
    started_at_ms: i64,
}

impl From<&Mentorship> for MentorshipRecord {
    fn from(m: &Mentorship) -> Self {
        Self {
            mentee_id: m.mentee.to_string(),
            mentor_id: m.mentor.to_string(),
            skill_ids: m.skills.iter().map(ToString::to_string).collect(),
            started_at_ms: m.started.unix_millis(),
        }
    }
}

impl MentorshipRecord {
    pub(super) fn into_domain(self) -> Result<Mentorship, Error> {
        let bad = invalid("mentorships");
        Ok(Mentorship {
            mentee: PersonId::parse(&self.mentee_id).map_err(&bad)?,
            mentor: PersonId::parse(&self.mentor_id).map_err(&bad)?,
            skills: self
                .skill_ids
                .iter()
                .map(|s| SkillId::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(&bad)?,
            started: Timestamp::from_unix_millis(self.started_at_ms),
        })
    }
}
