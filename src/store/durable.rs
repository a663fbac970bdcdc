//! What sled's flush leaves out. On Linux, sled 0.34.7 makes its log durable with
//! `sync_file_range`, which writes the data but neither the file's metadata (a grown
//! size) nor the device's write cache, and writes large values as blob files without
//! syncing them at all. After each flush the store therefore `fdatasync`s the log, and
//! `fsync`s every blob file created since the last flush and the directory that names
//! it: an acknowledged write then survives a power cut, not only a crash of the process.
//! sled's `conf` file, written when the store is created and never synced by sled, is
//! synced when the store opens (found by `tests/durability.rs`, which traces the server's
//! system calls).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Syncs what a sled flush does not.
#[derive(Debug)]
pub(super) struct Durability {
    log: File,
    blobs: PathBuf,
    /// Blob files already synced, and the blob directory's mtime when last scanned.
    synced_blobs: HashSet<OsString>,
    blobs_seen_at: Option<SystemTime>,
}

impl Durability {
    /// For the sled store in `dir` (already opened). Existing blob files are synced once.
    pub(super) fn new(dir: &Path) -> std::io::Result<Self> {
        let mut durability = Self {
            log: File::open(dir.join("db"))?,
            blobs: dir.join("blobs"),
            synced_blobs: HashSet::new(),
            blobs_seen_at: None,
        };
        durability.sync_new_blobs()?;
        // sled writes its `conf` file when it creates a store and never syncs it; a
        // store whose `conf` is lost with a power cut does not open.
        match File::open(dir.join("conf")) {
            Ok(conf) => conf.sync_all()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        sync_dir(dir)?;
        Ok(durability)
    }

    /// Makes what sled has flushed durable: the log's data and size, new blob files and
    /// their names.
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        self.log.sync_data()?;
        self.sync_new_blobs()
    }

    /// Syncs blob files created since the last call (the directory's mtime moves when a
    /// file is added, so an unchanged directory costs one `stat`).
    fn sync_new_blobs(&mut self) -> std::io::Result<()> {
        let modified = match std::fs::metadata(&self.blobs) {
            Ok(meta) => meta.modified()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.blobs_seen_at == Some(modified) {
            return Ok(());
        }
        let mut present = HashSet::new();
        let mut synced_any = false;
        for entry in std::fs::read_dir(&self.blobs)? {
            let entry = entry?;
            let name = entry.file_name();
            if !self.synced_blobs.contains(&name) {
                match File::open(entry.path()) {
                    Ok(blob) => blob.sync_all()?,
                    // Removed by sled's GC since the directory was read: no longer part
                    // of the store, so there is nothing to make durable.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                synced_any = true;
            }
            present.insert(name);
        }
        if synced_any {
            sync_dir(&self.blobs)?;
        }
        // Removed blobs (sled's GC) are forgotten, so the set stays the directory's size.
        self.synced_blobs = present;
        self.blobs_seen_at = Some(modified);
        Ok(())
    }
}

/// Opens (creating) the file `name` of `dir` for reading and in-place writes, and reads
/// it. A new (empty) file first gets the bytes `header` makes, synced with the
/// directory entry that names it. Errors name the file.
pub(super) fn open_with_header(
    dir: &Path,
    name: &str,
    header: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<(File, Vec<u8>), String> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let path = dir.join(name);
    let what = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(what)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(what)?;
    if bytes.is_empty() {
        bytes = header()?;
        file.write_all_at(&bytes, 0).map_err(what)?;
        file.sync_all().map_err(what)?;
        sync_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok((file, bytes))
}

/// `fsync` of a directory, so that the names of files created in it are durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_removed_while_the_directory_is_read_is_not_an_error() {
        // A name listed whose file is gone by the time it is opened, as when sled's GC
        // removes a blob between `read_dir` and `open` (found by a 100k-person load that
        // failed its flush with ENOENT): here a dangling symbolic link.
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("db"), b"log").unwrap();
        let blobs = temp.path().join("blobs");
        std::fs::create_dir(&blobs).unwrap();
        std::os::unix::fs::symlink(temp.path().join("gone"), blobs.join("7")).unwrap();
        let mut durability = Durability::new(temp.path()).unwrap();
        assert!(durability.synced_blobs.is_empty());
        std::fs::write(blobs.join("8"), b"blob").unwrap();
        durability.blobs_seen_at = None;
        durability.sync().unwrap();
        assert_eq!(durability.synced_blobs.len(), 1);
    }

    #[test]
    fn new_blob_files_are_synced_once_and_removed_ones_forgotten() {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("db"), b"log").unwrap();
        let mut durability = Durability::new(temp.path()).unwrap();
        durability.sync().unwrap();
        std::fs::create_dir(temp.path().join("blobs")).unwrap();
        std::fs::write(temp.path().join("blobs").join("1"), b"blob").unwrap();
        durability.sync().unwrap();
        assert_eq!(durability.synced_blobs.len(), 1);
        std::fs::remove_file(temp.path().join("blobs").join("1")).unwrap();
        std::fs::write(temp.path().join("blobs").join("2"), b"blob").unwrap();
        durability.sync().unwrap();
        assert!(durability.synced_blobs.contains(&OsString::from("2")));
        assert_eq!(durability.synced_blobs.len(), 1);
    }
}
