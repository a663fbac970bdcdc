//! Per-person keys, for erasure that reaches the bytes on disk (crypto-shredding).
//!
//! sled is a log-structured store: a removed or rewritten value stays in the log file
//! until sled happens to reuse its segment, so deleting a person's records cannot
//! promise that their name or the text written about them is gone from the disk. The
//! personal free text — a person's display name and the evidence of every assessment
//! about them — is therefore stored only sealed (AES-256-GCM) under a key of that person's
//! own, and the keys live outside sled, in `person.keys`, a file of fixed-size slots
//! rewritten in place. Erasing a person zeroes their slot and syncs the file: every copy
//! of their sealed text, wherever the log still holds it (and in any backup made since),
//! becomes noise.
//!
//! The file is a 16-byte header (magic, format) and 40-byte slots: the key and an xxh3-64
//! of the slot number and key, so that a damaged slot is found rather than used. A slot of
//! zeros is free. Order of writes: a new key is synced before the sled flush that makes
//! the first record referencing it durable; a slot is zeroed only after the flush that
//! removed the person is durable. A crash in between leaves a key no record references,
//! which the next start zeroes (completing an erasure the client was never told about).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The key file's name in the data directory.
pub const KEYS_FILE: &str = "person.keys";

const MAGIC: &[u8; 8] = b"CAPSKEYS";
const FORMAT: u32 = 1;
const HEADER: u64 = 16;
const KEY_LEN: usize = 32;
const SLOT_LEN: usize = KEY_LEN + 8;
/// Bytes in front of a sealed text: slot (u32 LE) and nonce.
const SEALED_HEADER: usize = 4 + NONCE_LEN;
/// Bytes a sealed text adds to its plaintext.
pub(super) const SEALED_OVERHEAD: usize = SEALED_HEADER + 16;

pub(super) type Key = [u8; KEY_LEN];

fn slot_sum(slot: u32, key: &Key) -> [u8; 8] {
    let mut bytes = [0u8; 4 + KEY_LEN];
    bytes[..4].copy_from_slice(&slot.to_le_bytes());
    bytes[4..].copy_from_slice(key);
    xxhash_rust::xxh3::xxh3_64(&bytes).to_le_bytes()
}

fn offset(slot: u32) -> u64 {
    HEADER + u64::from(slot) * SLOT_LEN as u64
}

/// A key file's bytes with every slot free (its header kept) and as many slots as
/// `bytes`, for a copy that carries only some keys (`set_slot`).
pub(super) fn emptied(bytes: &[u8]) -> Vec<u8> {
    let mut empty = vec![0u8; bytes.len()];
    let header = (HEADER as usize).min(bytes.len());
    empty[..header].copy_from_slice(&bytes[..header]);
    empty
}

/// The key in `slot` of a key file's bytes, if it holds one (unchecked: the file is
/// checked when a store opens it).
pub(super) fn slot_key(bytes: &[u8], slot: u32) -> Option<Key> {
    let start = usize::try_from(offset(slot)).ok()?;
    let chunk = bytes.get(start..start.checked_add(SLOT_LEN)?)?;
    if chunk.iter().all(|&b| b == 0) {
        return None;
    }
    chunk[..KEY_LEN].try_into().ok()
}

/// Puts `key` (with its checksum) in `slot` of a key file's bytes. A slot beyond them
/// is an error: a copy's slots are those of the file it was made from, so a damaged
/// copy cannot make the file grow without bound.
pub(super) fn set_slot(bytes: &mut [u8], slot: u32, key: &Key) -> Result<(), String> {
    let chunk = usize::try_from(offset(slot))
        .ok()
        .and_then(|start| bytes.get_mut(start..start.checked_add(SLOT_LEN)?))
        .ok_or_else(|| format!("key slot {slot} is beyond the key file"))?;
    chunk[..KEY_LEN].copy_from_slice(key);
    chunk[KEY_LEN..].copy_from_slice(&slot_sum(slot, key));
    Ok(())
}

/// Bytes of a key sealed by `wrap`: nonce, ciphertext and tag.
pub(super) const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + 16;

/// Seals a key under another (`wrapping`), bound to `aad`: a random nonce, then the
/// ciphertext and its tag.
pub(super) fn wrap(
    rng: &SystemRandom,
    wrapping: &Key,
    aad: &[u8],
    key: &Key,
) -> Result<Vec<u8>, String> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce)
        .map_err(|_| "the system's random source failed".to_owned())?;
    let mut sealed = key.to_vec();
    less_safe(wrapping)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut sealed,
        )
        .map_err(|_| "sealing failed".to_owned())?;
    let mut out = nonce.to_vec();
    out.append(&mut sealed);
    Ok(out)
}

/// Opens what `wrap` sealed.
pub(super) fn unwrap(wrapping: &Key, aad: &[u8], sealed: &[u8]) -> Result<Key, String> {
    if sealed.len() != WRAPPED_LEN {
        return Err("a sealed key has the wrong length".into());
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce =
        Nonce::try_assume_unique_for_key(nonce).map_err(|_| "malformed nonce".to_owned())?;
    let mut body = body.to_vec();
    let plain = less_safe(wrapping)?
        .open_in_place(nonce, Aad::from(aad), &mut body)
        .map_err(|_| "a sealed key fails authentication".to_owned())?;
    plain
        .try_into()
        .map_err(|_| "a sealed key has the wrong length".to_owned())
}

/// The keys in memory, shared with readers that open sealed text.
#[derive(Clone, Default)]
pub(super) struct KeyRing(Arc<RwLock<Vec<Option<Key>>>>);

impl KeyRing {
    fn key(&self, slot: u32) -> Option<Key> {
        let keys = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.get(slot as usize).copied().flatten()
    }

    fn set(&self, slot: u32, key: Option<Key>) {
        let mut keys = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = slot as usize;
        if keys.len() <= index {
            keys.resize(index + 1, None);
        }
        keys[index] = key;
    }

    /// The plaintext of `sealed` (from `Keys::seal` with the same `aad`). An error
    /// says why not: the key was erased, or the text was damaged or moved.
    pub(super) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < SEALED_OVERHEAD {
            return Err("sealed text is shorter than its header".into());
        }
        let (head, body) = sealed.split_at(SEALED_HEADER);
        let mut slot = [0u8; 4];
        slot.copy_from_slice(&head[..4]);
        let slot = u32::from_le_bytes(slot);
        let key = self
            .key(slot)
            .ok_or_else(|| format!("key slot {slot} of {KEYS_FILE} holds no key"))?;
        let key = less_safe(&key)?;
        let nonce = Nonce::try_assume_unique_for_key(&head[4..])
            .map_err(|_| "malformed nonce".to_owned())?;
        let mut text = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(aad), &mut text)
            .map_err(|_| format!("sealed text fails authentication under key slot {slot}"))?;
        let len = plain.len();
        text.truncate(len);
        Ok(text)
    }
}

fn less_safe(key: &Key) -> Result<LessSafeKey, String> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| "invalid key".to_owned())
}

/// The key file, owned by the store's writer.
pub(super) struct Keys {
    file: File,
    ring: KeyRing,
    rng: SystemRandom,
    /// Slots in the file (free or not).
    slots: u32,
    /// Zeroed slots, durable as such, free to reuse.
    free: Vec<u32>,
    /// Slots of erased people, zeroed at the next `shred_pending`.
    pending: Vec<u32>,
    /// Written since the last sync.
    dirty: bool,
    /// Nonces: a random prefix and a counter; a fresh prefix when the counter wraps.
    nonce_prefix: [u8; 8],
    nonce_counter: u32,
    /// Keys prepared for sealing (AES key schedule and GHASH table, ~0.5 µs each), so
    /// that ingest mixing many people prepares each once; emptied when full.
    prepared: ahash::AHashMap<u32, LessSafeKey>,
}

/// Prepared keys kept for sealing (about 0.5 KiB each).
const PREPARED_KEYS: usize = 16_384;

impl Keys {
    /// Opens (creating) the key file in `dir` and reads every slot. A damaged slot or
    /// header is an error naming the file.
    pub(super) fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(KEYS_FILE);
        let (file, bytes) = super::durable::open_with_header(dir, KEYS_FILE, || {
            let mut header = vec![0u8; HEADER as usize];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&FORMAT.to_le_bytes());
            Ok(header)
        })?;
        if bytes.len() < HEADER as usize || &bytes[..8] != MAGIC {
            return Err(format!("{} is not a key file", path.display()));
        }
        let rng = SystemRandom::new();
        let mut keys = Self {
            file,
            ring: KeyRing::default(),
            rng,
            slots: 0,
            free: Vec::new(),
            pending: Vec::new(),
            dirty: false,
            nonce_prefix: [0; 8],
            nonce_counter: 0,
            prepared: ahash::AHashMap::new(),
        };
        keys.fresh_prefix()?;
        // A trailing partial slot is an append a crash cut short, never synced, so never
        // referenced by a durable record: it is free.
        let body = &bytes[HEADER as usize..];
        let mut ring = Vec::with_capacity(body.len() / SLOT_LEN);
        for (i, chunk) in body.chunks_exact(SLOT_LEN).enumerate() {
            let slot = u32::try_from(i).map_err(|_| "too many key slots".to_owned())?;
            if chunk.iter().all(|&b| b == 0) {
                keys.free.push(slot);
                ring.push(None);
                continue;
            }
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(&chunk[..KEY_LEN]);
            if chunk[KEY_LEN..] != slot_sum(slot, &key) {
                return Err(format!(
                    "{}: key slot {slot} fails its checksum",
                    path.display()
                ));
            }
            ring.push(Some(key));
        }
        keys.slots = u32::try_from(ring.len()).map_err(|_| "too many key slots".to_owned())?;
        // Reused lowest first.
        keys.free.reverse();
        *keys
            .ring
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
        Ok(keys)
    }

    fn fresh_prefix(&mut self) -> Result<(), String> {
        self.rng
            .fill(&mut self.nonce_prefix)
            .map_err(|_| "the system's random source failed".to_owned())?;
        self.nonce_counter = 0;
        Ok(())
    }

    /// The key file's bytes as they are on disk (for a backup).
    pub(super) fn file_bytes(&self) -> std::io::Result<Vec<u8>> {
        let len = usize::try_from(self.file.metadata()?.len())
            .map_err(|_| std::io::Error::other("key file too large"))?;
        let mut bytes = vec![0u8; len];
        self.file.read_exact_at(&mut bytes, 0)?;
        Ok(bytes)
    }

    /// A handle for readers.
    pub(super) fn ring(&self) -> KeyRing {
        self.ring.clone()
    }

    /// Whether `slot` holds a key.
    pub(super) fn holds(&self, slot: u32) -> bool {
        self.ring.key(slot).is_some()
    }

    /// Slots holding a key.
    pub(super) fn used(&self) -> Vec<u32> {
        (0..self.slots).filter(|&s| self.holds(s)).collect()
    }

    /// A new random key in a free slot (durable after `sync`).
    pub(super) fn allocate(&mut self) -> std::io::Result<u32> {
        let mut key = [0u8; KEY_LEN];
        self.rng
            .fill(&mut key)
            .map_err(|_| std::io::Error::other("the system's random source failed"))?;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = self.slots;
                self.slots = slot
                    .checked_add(1)
                    .ok_or_else(|| std::io::Error::other("key file full"))?;
                slot
            }
        };
        let mut bytes = [0u8; SLOT_LEN];
        bytes[..KEY_LEN].copy_from_slice(&key);
        bytes[KEY_LEN..].copy_from_slice(&slot_sum(slot, &key));
        self.file.write_all_at(&bytes, offset(slot))?;
        self.dirty = true;
        self.ring.set(slot, Some(key));
        self.prepared.remove(&slot);
        Ok(slot)
    }

    /// Marks `slot` for zeroing at the next `shred_pending`.
    pub(super) fn shred_later(&mut self, slot: u32) {
        self.pending.push(slot);
    }

    /// Makes new keys durable (`fdatasync`; an append also grows the file).
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Zeroes the slots of people whose erasure is durable, and syncs.
    pub(super) fn shred_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        for &slot in &self.pending {
            self.file.write_all_at(&[0u8; SLOT_LEN], offset(slot))?;
            self.ring.set(slot, None);
            self.prepared.remove(&slot);
        }
        self.file.sync_data()?;
        self.free.append(&mut self.pending);
        Ok(())
    }

    /// Seals `plain` under the key in `slot`, bound to `aad`: the slot, a nonce never
    /// used before with this key, the ciphertext and its tag.
    pub(super) fn seal(&mut self, slot: u32, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
        if self.nonce_counter == u32::MAX {
            self.fresh_prefix()?;
        }
        self.nonce_counter += 1;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&self.nonce_prefix);
        nonce[8..].copy_from_slice(&self.nonce_counter.to_le_bytes());
        if !self.prepared.contains_key(&slot) {
            let key = self
                .ring
                .key(slot)
                .ok_or_else(|| format!("key slot {slot} holds no key"))?;
            if self.prepared.len() >= PREPARED_KEYS {
                self.prepared.clear();
            }
            self.prepared.insert(slot, less_safe(&key)?);
        }
        let key = &self.prepared[&slot];
        let mut sealed = Vec::with_capacity(SEALED_OVERHEAD + plain.len());
        sealed.extend_from_slice(&slot.to_le_bytes());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed[SEALED_HEADER..],
            )
            .map_err(|_| "sealing failed".to_owned())?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_until_its_key_is_shredded_and_the_slot_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::open(dir.path()).unwrap();
        let slot = keys.allocate().unwrap();
        keys.sync().unwrap();
        let sealed = keys.seal(slot, b"name\0p1", b"Ada Lovelace").unwrap();
        assert!(!sealed.windows(3).any(|w| w == b"Ada"));
        let ring = keys.ring();
        assert_eq!(ring.open(b"name\0p1", &sealed).unwrap(), b"Ada Lovelace");
        // Bound to its context and to every byte.
        assert!(ring.open(b"name\0p2", &sealed).is_err());
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(ring.open(b"name\0p1", &damaged).is_err());
        // Survives a reopen.
        drop(keys);
        let mut keys = Keys::open(dir.path()).unwrap();
        assert_eq!(
            keys.ring().open(b"name\0p1", &sealed).unwrap(),
            b"Ada Lovelace"
        );
        keys.shred_later(slot);
        keys.shred_pending().unwrap();
        assert!(keys.ring().open(b"name\0p1", &sealed).is_err());
        let file = std::fs::read(dir.path().join(KEYS_FILE)).unwrap();
        assert!(file[HEADER as usize..].iter().all(|&b| b == 0));
        // The zeroed slot is reused by the next person, with a new key.
        let again = keys.allocate().unwrap();
        assert_eq!(again, slot);
        assert!(keys.ring().open(b"name\0p1", &sealed).is_err());
        drop(keys);
        let keys = Keys::open(dir.path()).unwrap();
        assert_eq!(keys.used(), vec![slot]);
    }

    #[test]
    fn a_copys_key_goes_only_into_a_slot_the_file_has() {
        let mut bytes = vec![0u8; HEADER as usize + 2 * SLOT_LEN];
        set_slot(&mut bytes, 1, &[9; KEY_LEN]).unwrap();
        assert_eq!(slot_key(&bytes, 1), Some([9; KEY_LEN]));
        assert_eq!(slot_key(&bytes, 0), None);
        // A damaged copy naming a far slot: refused, nothing allocated.
        assert!(set_slot(&mut bytes, u32::MAX, &[9; KEY_LEN]).is_err());
        assert!(set_slot(&mut bytes, 2, &[9; KEY_LEN]).is_err());
        assert_eq!(bytes.len(), HEADER as usize + 2 * SLOT_LEN);
    }

    #[test]
    fn a_damaged_slot_is_an_error_and_a_torn_append_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::open(dir.path()).unwrap();
        keys.allocate().unwrap();
        keys.allocate().unwrap();
        keys.sync().unwrap();
        drop(keys);
        let path = dir.path().join(KEYS_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[7; 11]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Keys::open(dir.path()).unwrap().used(), vec![0, 1]);
        bytes[HEADER as usize + SLOT_LEN + 3] ^= 4;
        std::fs::write(&path, &bytes).unwrap();
        let err = Keys::open(dir.path()).err().unwrap();
        assert!(err.contains("slot 1 fails its checksum"), "{err}");
        std::fs::write(&path, b"garbage garbage garbage").unwrap();
        assert!(Keys::open(dir.path()).is_err());
    }
}
