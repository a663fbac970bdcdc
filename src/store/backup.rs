//! Backups: a consistent copy of a running store, made by the writer between two commits
//! (writes wait for it, reads go on), and its restore into a new data directory.
//!
//! A backup is two files. `backup.bin`: a magic number, then every entry of every sled
//! tree and the contents of the key file and the erasure ledger, each length-prefixed,
//! and an end mark. `MANIFEST`: text lines giving the format, time, commit count, size
//! and SHA-256 of `backup.bin`, and the records of each tree. Restore checks the size,
//! the digest and every count before it writes anything, writes a new store, and opens
//! it (which decodes and checks every record and key).
//!
//! Erasures made after the backup are carried over: the restore takes the ledger of the
//! store being replaced (or one given) when it continues the backup's, and the server
//! re-applies its newer entries at the next start (see `ledger`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::keys::{self, KEYS_FILE};
use super::ledger::{Contents, LEDGER_FILE};
use super::records::{PersonRecord, decode};
use super::{COMMITS_KEY, Store, StoreOptions, marker, meta_u64};
use crate::error::{Error, Result};

/// The backup's data file in a backup directory.
pub const BACKUP_FILE: &str = "backup.bin";
/// The backup's manifest in a backup directory.
pub const MANIFEST_FILE: &str = "MANIFEST";

const MAGIC: &[u8; 8] = b"CAPSBKUP";
const FORMAT: u32 = 1;
const TREE_ENTRY: u8 = 1;
const FILE: u8 = 2;
const END: u8 = 0;
/// A cluster checkpoint's people's keys, each sealed under that person's cluster key
/// (see `Store::write_checkpoint`).
const SEALED_KEYS_FILE: &str = "person.keys.sealed";
/// Largest key, value or file a backup may hold (sled values are far smaller).
const MAX_PART: u32 = 1 << 30;

/// What a backup holds, and how to check its data file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Milliseconds since the epoch when the copy was made.
    pub created_at_ms: i64,
    /// Commits the store had made (see `marker`).
    pub commits: u64,
    /// Bytes of `backup.bin`.
    pub bytes: u64,
    /// SHA-256 of `backup.bin`, lower-case hex.
    pub sha256: String,
    /// Records per sled tree.
    pub trees: BTreeMap<String, u64>,
}

impl Manifest {
    /// The manifest file's text.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "capsight-backup {FORMAT}\ncreated_at_ms {}\ncommits {}\nbytes {}\nsha256 {}\n",
            self.created_at_ms, self.commits, self.bytes, self.sha256
        );
        for (tree, n) in &self.trees {
            let _ = writeln!(text, "tree {tree} {n}");
        }
        text
    }

    /// Parses a manifest file's text.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut manifest = Self {
            created_at_ms: 0,
            commits: 0,
            bytes: 0,
            sha256: String::new(),
            trees: BTreeMap::new(),
        };
        let mut format = None;
        for (i, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("line {}: cannot read {line:?}", i + 1);
            let number = |w: &str| w.parse::<u64>().map_err(|_| bad());
            match words.as_slice() {
                ["capsight-backup", f] => format = Some(number(f)?),
                ["created_at_ms", v] => manifest.created_at_ms = v.parse().map_err(|_| bad())?,
                ["commits", v] => manifest.commits = number(v)?,
                ["bytes", v] => manifest.bytes = number(v)?,
                ["sha256", v] if v.len() == 64 => manifest.sha256 = (*v).to_owned(),
                ["tree", name, v] => {
                    manifest.trees.insert((*name).to_owned(), number(v)?);
                }
                [] => {}
                _ => return Err(bad()),
            }
        }
        match format {
            Some(f) if f == u64::from(FORMAT) => {}
            Some(f) => return Err(format!("backup format {f}; this build reads {FORMAT}")),
            None => return Err("not a capsight backup manifest".into()),
        }
        if manifest.sha256.is_empty() {
            return Err("the manifest has no sha256".into());
        }
        Ok(manifest)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A writer that digests and counts what passes through it.
struct Digesting<W> {
    inner: W,
    digest: ring::digest::Context,
    bytes: u64,
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn part_len(len: usize) -> std::io::Result<[u8; 4]> {
    u32::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_PART)
        .map(u32::to_le_bytes)
        .ok_or_else(|| std::io::Error::other("a backup part is too large"))
}

fn put_part(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&part_len(bytes.len())?)?;
    out.write_all(bytes)
}

impl Store {
    /// Writes a backup of the store as it is to `path` (created, owner-only) and returns
    /// its manifest. Runs on the writer, so no write interleaves with the copy.
    pub fn write_backup(&self, path: &Path, now_ms: i64) -> Result<Manifest> {
        self.write_copy(path, now_ms, false)
    }

    /// A backup for a cluster's checkpoint: each person's key is in it sealed under their
    /// cluster key, not in plain. A replaced checkpoint's bytes may stay on the NATS
    /// servers' disks for a while (a stream's Raft log keeps them until its next
    /// snapshot); once a person's cluster key is deleted (their erasure), their key
    /// there, and all it sealed, can no longer be opened. A person without a cluster key
    /// (none is known to this store) has their key in plain, as in a backup. Restored
    /// with `restore_checkpoint`.
    pub fn write_checkpoint(&self, path: &Path, now_ms: i64) -> Result<Manifest> {
        self.write_copy(path, now_ms, true)
    }

    fn write_copy(&self, path: &Path, now_ms: i64, sealed_keys: bool) -> Result<Manifest> {
        let io = |e: std::io::Error| Error::Internal(format!("writing the backup: {e}"));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        let mut out = Digesting {
            inner: BufWriter::with_capacity(1 << 20, file),
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
        };
        let mut trees = BTreeMap::new();
        out.write_all(MAGIC).map_err(io)?;
        out.write_all(&FORMAT.to_le_bytes()).map_err(io)?;
        let mut names: Vec<sled::IVec> = self.db.tree_names();
        names.sort();
        for name in names {
            let tree = self.db.open_tree(&name)?;
            let label = String::from_utf8_lossy(&name).into_owned();
            let mut n = 0u64;
            for entry in tree.iter() {
                let (key, value) = entry?;
                out.write_all(&[TREE_ENTRY]).map_err(io)?;
                put_part(&mut out, &name).map_err(io)?;
                put_part(&mut out, &key).map_err(io)?;
                put_part(&mut out, &value).map_err(io)?;
                n += 1;
            }
            if n > 0 {
                trees.insert(label, n);
            }
        }
        let key_file = self.keys.file_bytes().map_err(io)?;
        let mut files = vec![(LEDGER_FILE, self.ledger.contents().to_bytes())];
        if sealed_keys {
            let (plain, sealed) = self.sealed_keys(&key_file)?;
            files.push((KEYS_FILE, plain));
            files.push((SEALED_KEYS_FILE, sealed));
        } else {
            files.push((KEYS_FILE, key_file));
        }
        for (name, bytes) in files {
            out.write_all(&[FILE]).map_err(io)?;
            put_part(&mut out, name.as_bytes()).map_err(io)?;
            put_part(&mut out, &bytes).map_err(io)?;
        }
        out.write_all(&[END]).map_err(io)?;
        out.flush().map_err(io)?;
        Ok(Manifest {
            created_at_ms: now_ms,
            commits: self.commits,
            bytes: out.bytes,
            sha256: hex(out.digest.finish().as_ref()),
            trees,
        })
    }

    /// The key file with only the keys of people without a cluster key, and every other
    /// person's key sealed under their cluster key: entries of slot (u32), id length
    /// (u16), id and sealed key.
    fn sealed_keys(&self, key_file: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        let key_ring = self.keys.ring();
        let rng = ring::rand::SystemRandom::new();
        let mut plain = keys::emptied(key_file);
        let mut sealed = Vec::new();
        for item in self.people.iter() {
            let (_, bytes) = item?;
            let record: PersonRecord = decode("people", &bytes)?;
            let Some(slot) = record.key_slot else {
                continue;
            };
            let Some(local) = keys::slot_key(key_file, slot) else {
                continue;
            };
            let Some((id, cluster)) = record.cluster_key(&key_ring)? else {
                keys::set_slot(&mut plain, slot, &local).map_err(Error::Internal)?;
                continue;
            };
            let id = id.as_str().as_bytes();
            let id_len = u16::try_from(id.len())
                .map_err(|_| Error::Internal("a person id longer than 64 KiB".into()))?;
            let wrapped = keys::wrap(&rng, &cluster, &sealed_key_aad(id, slot), &local)
                .map_err(Error::Internal)?;
            sealed.extend_from_slice(&slot.to_le_bytes());
            sealed.extend_from_slice(&id_len.to_le_bytes());
            sealed.extend_from_slice(id);
            sealed.extend_from_slice(&wrapped);
        }
        Ok((plain, sealed))
    }
}

/// What a sealed key is bound to: its person and slot.
fn sealed_key_aad(id: &[u8], slot: u32) -> Vec<u8> {
    let mut aad = b"capsight checkpoint key\0".to_vec();
    aad.extend_from_slice(&slot.to_le_bytes());
    aad.extend_from_slice(id);
    aad
}

/// The entries of a checkpoint's sealed keys: slot, person id, sealed key.
fn sealed_entries(bytes: &[u8]) -> Result<Vec<(u32, String, &[u8])>> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let short = || corrupt_backup("its sealed keys end inside an entry");
        let head = rest.get(..6).ok_or_else(short)?;
        let slot = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let id_len = usize::from(u16::from_le_bytes([head[4], head[5]]));
        let id = rest.get(6..6 + id_len).ok_or_else(short)?;
        let id = String::from_utf8(id.to_vec())
            .map_err(|_| corrupt_backup("a sealed key's person id is not UTF-8"))?;
        let sealed = rest
            .get(6 + id_len..6 + id_len + keys::WRAPPED_LEN)
            .ok_or_else(short)?;
        entries.push((slot, id, sealed));
        rest = &rest[6 + id_len + keys::WRAPPED_LEN..];
    }
    Ok(entries)
}

/// Finds the cluster keys of the people given (by id); those it returns are used to
/// open a checkpoint's sealed keys.
pub type ClusterKeys<'a> = &'a dyn Fn(&[String]) -> Result<HashMap<String, [u8; 32]>>;

/// The key file of a checkpoint: its plain keys, and its sealed ones opened with the
/// cluster keys `open` finds. A person whose cluster key is not found (erased since, or
/// not yet given back to a key stream that restarted) fails it, UNAVAILABLE.
fn opened_keys(mut key_file: Vec<u8>, sealed: &[u8], open: ClusterKeys<'_>) -> Result<Vec<u8>> {
    let entries = sealed_entries(sealed)?;
    let people: Vec<String> = entries.iter().map(|(_, id, _)| id.clone()).collect();
    let found = open(&people)?;
    let missing = people.iter().filter(|p| !found.contains_key(*p)).count();
    if missing > 0 {
        return Err(Error::Unavailable(format!(
            "{missing} of the checkpoint's {} people have no cluster key in the log (erased \
             since, or not yet given back after the key stream restarted)",
            people.len()
        )));
    }
    for (slot, id, sealed) in &entries {
        let local = keys::unwrap(&found[id], &sealed_key_aad(id.as_bytes(), *slot), sealed)
            .map_err(corrupt_backup)?;
        keys::set_slot(&mut key_file, *slot, &local).map_err(corrupt_backup)?;
    }
    Ok(key_file)
}

/// What a restore wrote.
#[derive(Debug)]
pub struct Restored {
    /// Records per tree, as the manifest listed them.
    pub trees: BTreeMap<String, u64>,
    /// Erasures made after the backup that the server will make again at its next start.
    pub erasures_to_reapply: usize,
}

fn corrupt_backup(detail: impl Into<String>) -> Error {
    Error::DataDir(format!("the backup is damaged: {}", detail.into()))
}

fn read_part(input: &mut impl Read) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|_| corrupt_backup("it ends inside a record"))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_PART {
        return Err(corrupt_backup("a record claims an impossible length"));
    }
    let mut bytes = Vec::new();
    input
        .take(u64::from(len))
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt_backup(e.to_string()))?;
    if bytes.len() != len as usize {
        return Err(corrupt_backup("it ends inside a record"));
    }
    Ok(bytes)
}

/// Checks `backup.bin` of `from` against its manifest (size and SHA-256).
fn check_digest(data: &Path, manifest: &Manifest) -> Result<()> {
    let mut file = File::open(data)
        .map_err(|e| Error::DataDir(format!("cannot read {}: {e}", data.display())))?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::DataDir(format!("cannot read {}: {e}", data.display())))?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        bytes += n as u64;
    }
    if bytes != manifest.bytes {
        return Err(corrupt_backup(format!(
            "{} holds {bytes} bytes, the manifest says {}",
            data.display(),
            manifest.bytes
        )));
    }
    if hex(digest.finish().as_ref()) != manifest.sha256 {
        return Err(corrupt_backup(format!(
            "the SHA-256 of {} differs from the manifest's",
            data.display()
        )));
    }
    Ok(())
}

/// Whether `dir` holds anything (a store, or files restore must not overwrite).
pub fn holds_store(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// Restores the backup in directory `from` into `into` (absent or empty). `newer` is the
/// erasure ledger of the store being replaced, if there is one: when it continues the
/// backup's ledger, its newer entries are kept, and the server makes those erasures again
/// at its next start. The restored store is opened (every record and key checked)
/// before this returns.
pub fn restore(from: &Path, into: &Path, newer: Option<&Contents>) -> Result<Restored> {
    restore_copy(from, into, newer, None)
}

/// Restores a cluster checkpoint (`Store::write_checkpoint`) into `into`, as `restore`
/// does a backup, opening its sealed keys with the cluster keys `cluster_keys` finds.
pub fn restore_checkpoint(
    from: &Path,
    into: &Path,
    cluster_keys: ClusterKeys<'_>,
) -> Result<Restored> {
    restore_copy(from, into, None, Some(cluster_keys))
}

fn restore_copy(
    from: &Path,
    into: &Path,
    newer: Option<&Contents>,
    cluster_keys: Option<ClusterKeys<'_>>,
) -> Result<Restored> {
    let manifest = read_manifest(from)?;
    let data = from.join(BACKUP_FILE);
    check_digest(&data, &manifest)?;
    if holds_store(into) {
        return Err(Error::DataDir(format!(
            "{} is not empty: restore writes a new data directory",
            into.display()
        )));
    }
    std::fs::create_dir_all(into)
        .and_then(|()| super::restrict_to_owner(into))
        .map_err(|e| Error::DataDir(format!("cannot use {}: {e}", into.display())))?;
    let db = sled::Config::new()
        .path(into)
        .open()
        .map_err(|e| Error::DataDir(format!("cannot create {}: {e}", into.display())))?;
    let mut files = copy_records(&data, &db, &manifest)?;
    let keys = key_file(&mut files, cluster_keys)?;
    let ledger = kept_ledger(&mut files, newer)?;
    let meta = db.open_tree("meta")?;
    let applied = meta_u64(&meta, super::ERASURES_APPLIED_KEY)?;
    let commits = meta_u64(&meta, COMMITS_KEY)?;
    db.flush()?;
    // Every handle on the store goes, so that sled lets go of its lock.
    drop(meta);
    drop(db);
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let path: PathBuf = into.join(name);
        std::fs::write(&path, bytes)
            .and_then(|()| File::open(&path)?.sync_all())
            .map_err(|e| Error::DataDir(format!("cannot write {}: {e}", path.display())))
    };
    write(KEYS_FILE, &keys)?;
    write(LEDGER_FILE, &ledger.to_bytes())?;
    marker::CommitMarker::create(into, commits)
        .map_err(|e| Error::DataDir(format!("cannot write the commit marker: {e}")))?;
    // Opening checks every record, reference and key, and syncs what sled left out.
    let opened = Store::open(into, &StoreOptions::default(), |_, _| {})?;
    let erasures_to_reapply = ledger
        .entries
        .len()
        .saturating_sub(usize::try_from(applied).unwrap_or(usize::MAX));
    drop(opened);
    Ok(Restored {
        trees: manifest.trees,
        erasures_to_reapply,
    })
}

/// The manifest of the backup in directory `from`.
fn read_manifest(from: &Path) -> Result<Manifest> {
    let path = from.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::DataDir(format!("cannot read {}: {e}", path.display())))?;
    Manifest::parse(&text)
        .map_err(|e| Error::DataDir(format!("{} is not a backup manifest: {e}", path.display())))
}

/// Writes every tree entry of the backup file `data` into `db`, checks their counts
/// against the manifest's, and returns the files the backup holds, by name.
fn copy_records(
    data: &Path,
    db: &sled::Db,
    manifest: &Manifest,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut input = BufReader::with_capacity(
        1 << 20,
        File::open(data)
            .map_err(|e| Error::DataDir(format!("cannot read {}: {e}", data.display())))?,
    );
    let mut head = [0u8; 12];
    input
        .read_exact(&mut head)
        .map_err(|_| corrupt_backup("too short"))?;
    if &head[..8] != MAGIC || head[8..12] != FORMAT.to_le_bytes() {
        return Err(corrupt_backup("not a capsight backup of format 1"));
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    loop {
        let mut kind = [0u8; 1];
        input
            .read_exact(&mut kind)
            .map_err(|_| corrupt_backup("it has no end mark"))?;
        match kind[0] {
            END => break,
            TREE_ENTRY => {
                let name = read_part(&mut input)?;
                let (key, value) = (read_part(&mut input)?, read_part(&mut input)?);
                db.open_tree(&name)?.insert(key, value)?;
                *counts
                    .entry(String::from_utf8_lossy(&name).into_owned())
                    .or_default() += 1;
            }
            FILE => {
                let name = String::from_utf8(read_part(&mut input)?)
                    .map_err(|_| corrupt_backup("a file name is not UTF-8"))?;
                files.insert(name, read_part(&mut input)?);
            }
            other => return Err(corrupt_backup(format!("unknown record kind {other}"))),
        }
    }
    if counts != manifest.trees {
        return Err(corrupt_backup(
            "its records differ from the manifest's counts",
        ));
    }
    Ok(files)
}

/// The key file to restore: the backup's, or a checkpoint's with its sealed keys
/// opened with the cluster keys.
fn key_file(
    files: &mut BTreeMap<String, Vec<u8>>,
    cluster_keys: Option<ClusterKeys<'_>>,
) -> Result<Vec<u8>> {
    let keys = files
        .remove(KEYS_FILE)
        .ok_or_else(|| corrupt_backup("it holds no key file"))?;
    let Some(sealed) = files.remove(SEALED_KEYS_FILE) else {
        return Ok(keys);
    };
    let Some(open) = cluster_keys else {
        return Err(Error::DataDir(
            "this is a cluster checkpoint: its people's keys open only with the cluster's \
             keys (a node restores it when it starts with an empty data directory)"
                .into(),
        ));
    };
    opened_keys(keys, &sealed, open)
}

/// The erasure ledger to restore: the backup's, or `newer` when it continues it.
fn kept_ledger(
    files: &mut BTreeMap<String, Vec<u8>>,
    newer: Option<&Contents>,
) -> Result<Contents> {
    let ledger = Contents::parse(
        &files
            .remove(LEDGER_FILE)
            .ok_or_else(|| corrupt_backup("it holds no erasure ledger"))?,
    )
    .map_err(|e| corrupt_backup(format!("its erasure ledger: {e}")))?;
    match newer {
        None => Ok(ledger),
        Some(newer) if newer.salt != ledger.salt => Err(Error::DataDir(
            "the erasure ledger given belongs to another store than the backup".into(),
        )),
        Some(newer) if newer.entries.starts_with(&ledger.entries) => Ok(newer.clone()),
        Some(_) => Err(Error::DataDir(
            "the erasure ledger given does not continue the backup's (it is older, or from \
             a store restored since): give the ledger of the store the backup was taken from"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn a_checkpoint_holds_each_persons_key_sealed_under_their_cluster_key() {
        let temp = tempfile::tempdir().unwrap();
        let open = |dir: &Path| Store::open(dir, &StoreOptions::default(), |_, _| {}).unwrap();
        let mut store = open(&temp.path().join("store")).store;
        let ada = crate::store::tests::person("ada", "Ada Lovelace");
        let bob = crate::store::tests::person("bob", "Bob Keyless");
        let ada_cluster = [7u8; 32];
        store
            .put_people_keyed(
                &[ada.clone(), bob.clone()],
                &HashMap::from([(ada.id.clone(), ada_cluster)]),
            )
            .unwrap();
        store.flush().unwrap();
        let key_file = store.keys.file_bytes().unwrap();
        let ada_local = keys::slot_key(&key_file, store.slots["ada"]).unwrap();
        let bob_local = keys::slot_key(&key_file, store.slots["bob"]).unwrap();
        let copy = temp.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        let manifest = store.write_checkpoint(&copy.join(BACKUP_FILE), 1).unwrap();
        std::fs::write(copy.join(MANIFEST_FILE), manifest.to_text()).unwrap();
        drop(store);

        // Ada's key is only sealed; Bob, who has no cluster key, has his in plain.
        let bytes = std::fs::read(copy.join(BACKUP_FILE)).unwrap();
        let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!holds(&ada_local), "a sealed key is not in plain");
        assert!(holds(&bob_local));
        // A backup's restore refuses it; without Ada's cluster key (erased), or with
        // another, it is not restored.
        let into = |name: &str| temp.path().join(name);
        assert!(matches!(
            restore(&copy, &into("plain"), None),
            Err(Error::DataDir(_))
        ));
        let erased = |_: &[String]| Ok(HashMap::new());
        assert!(matches!(
            restore_checkpoint(&copy, &into("erased"), &erased),
            Err(Error::Unavailable(_))
        ));
        let other = |_: &[String]| Ok(HashMap::from([("ada".to_owned(), [8u8; 32])]));
        assert!(restore_checkpoint(&copy, &into("other"), &other).is_err());
        // With it, Ada's name and Bob's read back.
        let found = |people: &[String]| {
            assert_eq!(people, ["ada"]);
            Ok(HashMap::from([("ada".to_owned(), ada_cluster)]))
        };
        restore_checkpoint(&copy, &into("restored"), &found).unwrap();
        let restored = open(&into("restored"));
        assert_eq!(
            restored.directory.person("ada").unwrap().display_name,
            ada.display_name
        );
        assert_eq!(
            restored.directory.person("bob").unwrap().display_name,
            bob.display_name
        );
    }

    #[test]
    fn a_manifest_reads_back_and_rejects_what_it_does_not_know() {
        let manifest = Manifest {
            created_at_ms: 5,
            commits: 9,
            bytes: 100,
            sha256: "ab".repeat(32),
            trees: [("people".to_owned(), 3)].into_iter().collect(),
        };
        assert_eq!(Manifest::parse(&manifest.to_text()).unwrap(), manifest);
        assert!(Manifest::parse("capsight-backup 2\n").is_err());
        assert!(Manifest::parse("hello\n").is_err());
        assert!(Manifest::parse("capsight-backup 1\nbytes x\n").is_err());
    }
}
