//! The erasure ledger: every erasure the store has made, as a keyed hash of the person's
//! id and the time, in `erasures.ledger` beside the sled store. It outlives what it
//! records: a backup made before an erasure holds the person, and restoring it would
//! bring them back; the restore therefore carries the newer ledger over, and the server
//! re-applies, at its next start, every erasure the restored store has not made (its
//! `meta` tree counts the ledger entries it has applied).
//!
//! Ids are hashed (SHA-256 of a random per-store salt and the id): the ledger names no
//! one, yet tells whether a given person was erased. Ids are short and often guessable,
//! so the hash does not hide *whether* a known id was erased from someone holding the
//! store; it keeps the ledger free of the ids themselves.
//!
//! The file is a 32-byte header (magic, format, salt) and 48-byte entries: the hash, the
//! time in milliseconds, and an xxh3-64 of both. Entries are appended and synced before
//! the sled flush that makes the erasure durable; a torn last entry (a crash during the
//! append, never acknowledged) is dropped.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

/// The ledger's file name in the data directory.
pub const LEDGER_FILE: &str = "erasures.ledger";

const MAGIC: &[u8; 8] = b"CAPSERAS";
const FORMAT: u32 = 1;
const HEADER: usize = 32;
const ENTRY: usize = 48;

/// One erasure: the keyed hash of the id and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub hash: [u8; 32],
    pub at_ms: i64,
}

impl Entry {
    fn encode(&self) -> [u8; ENTRY] {
        let mut bytes = [0u8; ENTRY];
        bytes[..32].copy_from_slice(&self.hash);
        bytes[32..40].copy_from_slice(&self.at_ms.to_le_bytes());
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes[..40]);
        bytes[40..].copy_from_slice(&sum.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes[..40]).to_le_bytes();
        if bytes[40..48] != sum {
            return None;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[..32]);
        let mut at = [0u8; 8];
        at.copy_from_slice(&bytes[32..40]);
        Some(Self {
            hash,
            at_ms: i64::from_le_bytes(at),
        })
    }
}

/// The keyed hash of a person's id under `salt`.
pub fn hash_id(salt: &[u8; 16], id: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(salt);
    context.update(id.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// A ledger's content, read from its file's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    pub salt: [u8; 16],
    pub entries: Vec<Entry>,
}

impl Contents {
    /// Parses a ledger file; a damaged entry other than a torn last one is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err("not an erasure ledger".into());
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&bytes[12..28]);
        let body = &bytes[HEADER..];
        let whole = body.len() / ENTRY;
        let mut entries = Vec::with_capacity(whole);
        for (i, chunk) in body.chunks_exact(ENTRY).enumerate() {
            match Entry::decode(chunk) {
                Some(entry) => entries.push(entry),
                // The last entry, torn by a crash while it was appended.
                None if i + 1 == whole => {}
                None => return Err(format!("entry {i} fails its checksum")),
            }
        }
        Ok(Self { salt, entries })
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = header(&self.salt).to_vec();
        for entry in &self.entries {
            bytes.extend_from_slice(&entry.encode());
        }
        bytes
    }
}

fn header(salt: &[u8; 16]) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT.to_le_bytes());
    header[12..28].copy_from_slice(salt);
    header
}

/// The ledger file, owned by the store's writer.
pub(super) struct Ledger {
    file: File,
    contents: Contents,
    dirty: bool,
}

impl Ledger {
    /// Opens the ledger in `dir`, creating it (with a new salt) when absent.
    pub(super) fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(LEDGER_FILE);
        let (file, bytes) = super::durable::open_with_header(dir, LEDGER_FILE, || {
            let mut salt = [0u8; 16];
            SystemRandom::new()
                .fill(&mut salt)
                .map_err(|_| "the system's random source failed".to_owned())?;
            Ok(header(&salt).to_vec())
        })?;
        let contents = Contents::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            file,
            contents,
            dirty: false,
        })
    }

    pub(super) fn contents(&self) -> &Contents {
        &self.contents
    }

    /// The keyed hash of `id` in this ledger.
    pub(super) fn hash(&self, id: &str) -> [u8; 32] {
        hash_id(&self.contents.salt, id)
    }

    /// Appends an erasure (durable after `sync`).
    pub(super) fn append(&mut self, hash: [u8; 32], at_ms: i64) -> std::io::Result<()> {
        let entry = Entry { hash, at_ms };
        let at = (HEADER + self.contents.entries.len() * ENTRY) as u64;
        self.file.write_all_at(&entry.encode(), at)?;
        self.contents.entries.push(entry);
        self.dirty = true;
        Ok(())
    }

    /// Makes appended entries durable.
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reopen_and_a_torn_last_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        let (a, b) = (ledger.hash("ada"), ledger.hash("bob"));
        assert_ne!(a, b);
        ledger.append(a, 1).unwrap();
        ledger.append(b, 2).unwrap();
        ledger.sync().unwrap();
        let salt = ledger.contents().salt;
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.contents().salt, salt);
        assert_eq!(ledger.contents().entries.len(), 2);
        assert_eq!(ledger.hash("ada"), a);

        let path = dir.path().join(LEDGER_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        let parsed = Contents::parse(&bytes).unwrap();
        assert_eq!(parsed.entries, vec![Entry { hash: a, at_ms: 1 }]);
        bytes[HEADER + 2] ^= 1;
        assert!(Contents::parse(&bytes).is_err());
        assert!(Contents::parse(b"nonsense").is_err());
    }
}
