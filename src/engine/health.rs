//! Whether the store can take writes. The writer reports each flush's start, end and
//! failure here; everyone else asks before writing or recording an audit event, and the
//! server watches it to report NOT_SERVING and exit.
//!
//! A failed or stalled flush (sled can block forever after an I/O error) makes storage
//! *failed* for good in this process: writes answer UNAVAILABLE at once instead of
//! queueing behind a writer that will never return, and the server exits so that its
//! supervisor restarts it on a store whose state is known (see `server::run`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How long one flush may take before storage is considered failed.
pub const DEFAULT_STALL: Duration = Duration::from_secs(10);

/// The writer's view of the store, shared.
#[derive(Debug)]
pub struct StorageHealth {
    failed: AtomicBool,
    /// Milliseconds from `origin` at which the running flush started; 0: none runs.
    flush_since_ms: AtomicU64,
    origin: Instant,
    stall: Duration,
    reason: Mutex<Option<String>>,
}

impl StorageHealth {
    /// Healthy storage whose flushes may take up to `stall`.
    pub fn new(stall: Duration) -> Self {
        Self {
            failed: AtomicBool::new(false),
            flush_since_ms: AtomicU64::new(0),
            origin: Instant::now(),
            stall,
            reason: Mutex::new(None),
        }
    }

    /// The writer starts a flush.
    pub(super) fn begin_flush(&self) {
        let since = self.origin.elapsed().as_millis().max(1);
        self.flush_since_ms
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// The writer's flush returned.
    pub(super) fn end_flush(&self) {
        self.flush_since_ms.store(0, Ordering::SeqCst);
    }

    /// Marks storage failed for good, with the reason an operator reads.
    pub(super) fn fail(&self, reason: String) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(reason);
        self.failed.store(true, Ordering::SeqCst);
    }

    /// `Err(StoragePoisoned)` once a flush failed or has run longer than the stall limit.
    pub fn check(&self) -> Result<()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(Error::StoragePoisoned);
        }
        let since = self.flush_since_ms.load(Ordering::SeqCst);
        if since != 0 {
            let running = self
                .origin
                .elapsed()
                .saturating_sub(Duration::from_millis(since));
            if running > self.stall {
                self.fail(format!(
                    "a flush has not returned for {} s",
                    running.as_secs()
                ));
                return Err(Error::StoragePoisoned);
            }
        }
        Ok(())
    }

    /// Why storage failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.check().err()?;
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_flush_fails_storage_for_good() {
        let health = StorageHealth::new(DEFAULT_STALL);
        assert!(health.check().is_ok());
        health.begin_flush();
        health.fail("disk full".into());
        health.end_flush();
        assert!(matches!(health.check(), Err(Error::StoragePoisoned)));
        assert_eq!(health.failure().as_deref(), Some("disk full"));
    }

    #[test]
    fn a_flush_running_past_the_stall_limit_fails_storage() {
        let health = StorageHealth::new(Duration::from_millis(20));
        health.begin_flush();
        assert!(health.check().is_ok());
        std::thread::sleep(Duration::from_millis(40));
        assert!(health.check().is_err());
        health.end_flush();
        assert!(health.check().is_err(), "stays failed");
    }
}
