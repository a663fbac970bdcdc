//! The commit marker: a small file beside the sled store that says how many commits the
//! store has made durable, so that a store rolled back to an older state is noticed.
//!
//! sled checksums every message of its log; when it finds a damaged one at start-up it
//! treats the log as ending there and opens the older state before it, silently. A
//! store truncated, partly overwritten, or restored from an old copy does the same. The
//! store therefore counts its commits (a `meta` key written in the same flush as the
//! data) and, once a flush is durable, writes the count to this file and syncs it. At
//! start-up a store whose count is below the marker's has lost acknowledged commits and
//! is refused with an error naming both files, unless the operator accepts the loss.
//!
//! The file is 24 bytes — a magic number, the count and a checksum of both — rewritten
//! in place: a write that small never spans two sectors, so it is never torn, and the
//! file's size never changes, so `fdatasync` makes it durable. The marker may lag the
//! store (a crash between the flush and the marker's write), never lead it; a store
//! ahead of its marker is accepted and the marker catches up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The marker's file name in the data directory.
pub const MARKER_FILE: &str = "commit.marker";

const MAGIC: u64 = 0x4341_5053_4947_4854; // "CAPSIGHT"

/// The marker file of one store.
#[derive(Debug)]
pub(super) struct CommitMarker {
    file: File,
}

/// What the marker file says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Recorded {
    /// No marker yet (a new store, or one from before markers existed).
    Absent,
    /// Commits made durable.
    Commits(u64),
    /// The file is there but not a valid marker.
    Unreadable(String),
}

fn checksum(commits: u64) -> u64 {
    // FNV-1a over the magic and the count: enough to tell a marker from garbage.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in MAGIC.to_le_bytes().into_iter().chain(commits.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Reads the marker in `dir`.
pub(super) fn read(dir: &Path) -> std::io::Result<Recorded> {
    let path = dir.join(MARKER_FILE);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut file) => file.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recorded::Absent),
        Err(e) => return Err(e),
    };
    let Ok(bytes) = <[u8; 24]>::try_from(bytes.as_slice()) else {
        return Ok(Recorded::Unreadable(format!(
            "{} bytes, not 24",
            bytes.len()
        )));
    };
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (magic, commits, sum) = (word(0), word(1), word(2));
    if magic != MAGIC || sum != checksum(commits) {
        return Ok(Recorded::Unreadable("checksum mismatch".into()));
    }
    Ok(Recorded::Commits(commits))
}

impl CommitMarker {
    /// Opens (creating) the marker in `dir` and records `commits` durably.
    pub(super) fn create(dir: &Path, commits: u64) -> std::io::Result<Self> {
        let path = dir.join(MARKER_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut marker = Self { file };
        marker.write(commits, true)?;
        if !existed {
            File::open(dir)?.sync_all()?;
        }
        Ok(marker)
    }

    /// Records that `commits` commits are durable.
    pub(super) fn record(&mut self, commits: u64) -> std::io::Result<()> {
        self.write(commits, false)
    }

    fn write(&mut self, commits: u64, full: bool) -> std::io::Result<()> {
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[8..16].copy_from_slice(&commits.to_le_bytes());
        bytes[16..].copy_from_slice(&checksum(commits).to_le_bytes());
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&bytes)?;
        if full {
            // The first write may set the file's size: metadata too.
            self.file.set_len(24)?;
            self.file.sync_all()
        } else {
            self.file.sync_data()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_and_garbage_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Recorded::Absent);
        let mut marker = CommitMarker::create(dir.path(), 7).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Recorded::Commits(7));
        marker.record(8).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Recorded::Commits(8));
        let path = dir.path().join(MARKER_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[9] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(read(dir.path()).unwrap(), Recorded::Unreadable(_)));
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(read(dir.path()).unwrap(), Recorded::Unreadable(_)));
    }
}
