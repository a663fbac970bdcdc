//! Derived results cached by the data version they were computed from, with one shared
//! computation per key and version (single-flight).
//!
//! A computation runs as a task of its own, not in the caller's future: a caller whose
//! deadline passes leaves, the result is still kept, and the next caller is answered from
//! it. A caller may take the latest result at once while its successor is computed
//! (`Want::Latest`, the response says it is stale and refreshing) or wait for a result of
//! the current data (`Want::Current`). A computation for a superseded version that no
//! one waits for is cancelled. After an erasure only results scrubbed of the person are
//! kept (`Cache::scrub`); results computed on older snapshots are not.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use super::Snapshot;
use super::jobs::Cancel;
use crate::domain::Timestamp;
use crate::error::{Error, Result};

/// Which result a caller accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Want {
    /// The latest result at once, even if data changed since (a fresh one is then
    /// computed in the background); waits only when there is none.
    #[default]
    Latest,
    /// A result of the current data, waiting for it if needed.
    Current,
}

/// A cached result and how it relates to the data now.
#[derive(Debug)]
pub struct Fresh<T> {
    /// The result.
    pub value: Arc<T>,
    /// Data version it was computed from.
    pub computed_version: u64,
    /// When it was computed.
    pub computed_at: Timestamp,
    /// Data version now.
    pub current_version: u64,
    /// Whether a computation of a newer result is running.
    pub refreshing: bool,
}

struct Computed<T> {
    value: Arc<T>,
    version: u64,
    erasures: u64,
    at: Timestamp,
}

impl<T> Clone for Computed<T> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            version: self.version,
            erasures: self.erasures,
            at: self.at,
        }
    }
}

type Outcome<T> = Option<Result<Computed<T>>>;

/// A computation under way for one version.
struct Running<T> {
    version: u64,
    erasures: u64,
    done: watch::Receiver<Outcome<T>>,
    /// Every waiting caller holds a clone: the count says whether anyone waits.
    waiting: Arc<()>,
    cancel: Cancel,
}

impl<T> Running<T> {
    fn waiters(&self) -> usize {
        Arc::strong_count(&self.waiting) - 1
    }

    fn join(&self) -> Waiter<T> {
        Waiter {
            done: self.done.clone(),
            _counted: Arc::clone(&self.waiting),
        }
    }
}

/// A caller waiting for a computation; counted while it exists.
struct Waiter<T> {
    done: watch::Receiver<Outcome<T>>,
    _counted: Arc<()>,
}

struct Slot<T> {
    latest: Option<Computed<T>>,
    running: Option<Running<T>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            latest: None,
            running: None,
        }
    }
}

/// The work that computes a result from a snapshot.
pub type Job<T> = Pin<Box<dyn Future<Output = Result<T>> + Send>>;

/// Most keys one cache holds; past it, idle entries are dropped.
const CACHE_LIMIT: usize = 256;

/// A cache of one kind of derived result.
pub struct Cache<K, T> {
    slots: Mutex<HashMap<K, Slot<T>>>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    /// The version of a snapshot a result of this kind depends on.
    version_of: fn(&Snapshot) -> u64,
    /// The cache's name in metrics.
    kind: &'static str,
}

/// Counts one lookup of cache `kind`: `hit` (a result of the current data), `stale` (an
/// older result served at once while the next is computed) or `miss` (waited).
fn count(kind: &'static str, outcome: &'static str) {
    metrics::counter!("capsight_cache_requests_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

impl<K: Clone + Eq + Hash + Send + 'static, T: Send + Sync + 'static> Cache<K, T> {
    /// An empty cache whose results depend on `version_of` each snapshot.
    pub fn new(snapshot: Arc<ArcSwap<Snapshot>>, version_of: fn(&Snapshot) -> u64) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            snapshot,
            version_of,
            kind: "unnamed",
        }
    }

    /// Names the cache in metrics (`capsight_cache_requests_total{kind}`).
    pub fn named(mut self, kind: &'static str) -> Self {
        self.kind = kind;
        self
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Slot<T>>> {
        // Only plain field updates happen under the lock; a poisoned one is coherent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets every result and cancels computations no one waits for (after an erasure).
    pub fn clear(&self) {
        let mut slots = self.lock();
        for running in slots.values().filter_map(|s| s.running.as_ref()) {
            if running.waiters() == 0 {
                running.cancel.cancel();
            }
        }
        slots.clear();
    }

    /// The latest result of every key.
    pub fn latest(&self) -> Vec<Arc<T>> {
        self.lock()
            .values()
            .filter_map(|s| s.latest.as_ref().map(|c| Arc::clone(&c.value)))
            .collect()
    }

    /// After an erasure (the snapshot now counts `erasures`): keeps each result `scrub`
    /// returns — the result without the erased person's contribution — usable as a
    /// result of its old version (so served at once to `Want::Latest`, stale, while the
    /// current one is computed), and forgets the rest. Computations no one waits for are
    /// cancelled; their results, computed with the person, would not be kept anyway.
    pub fn scrub(&self, erasures: u64, scrub: impl Fn(&Arc<T>) -> Option<Arc<T>>) {
        let mut slots = self.lock();
        for running in slots.values().filter_map(|s| s.running.as_ref()) {
            if running.waiters() == 0 {
                running.cancel.cancel();
            }
        }
        slots.retain(|_, slot| {
            slot.latest = slot.latest.take().and_then(|c| {
                Some(Computed {
                    value: scrub(&c.value)?,
                    erasures,
                    ..c
                })
            });
            slot.latest.is_some() || slot.running.is_some()
        });
    }

    /// The result for `key` as `want` asks, computing it with `job` when needed.
    pub async fn get(
        self: &Arc<Self>,
        key: K,
        want: Want,
        job: impl FnOnce(Arc<Snapshot>, Cancel) -> Job<T>,
    ) -> Result<Fresh<T>> {
        let snapshot = self.snapshot.load_full();
        let current_version = (self.version_of)(&snapshot);
        let mut waiter = {
            let mut slots = self.lock();
            if slots.len() >= CACHE_LIMIT && !slots.contains_key(&key) {
                slots.retain(|_, s| s.running.is_some());
            }
            let slot = slots.entry(key.clone()).or_default();
            let usable = slot
                .latest
                .as_ref()
                .filter(|c| c.erasures == snapshot.erasures)
                .cloned();
            if let Some(c) = &usable
                && c.version == current_version
            {
                count(self.kind, "hit");
                return Ok(fresh(c, current_version, false));
            }
            // Served stale at once, or asked for by background work (a patterns refresh
            // needing archetypes): the computation is background work too.
            let background = (usable.is_some() && want == Want::Latest)
                || super::jobs::BACKGROUND.try_with(|b| *b).unwrap_or(false);
            let running = self.ensure_running(slot, key.clone(), &snapshot, job, background);
            match (usable, want) {
                (Some(c), Want::Latest) => {
                    count(self.kind, "stale");
                    return Ok(fresh(&c, current_version, true));
                }
                _ => {
                    count(self.kind, "miss");
                    running.join()
                }
            }
        };
        let outcome = waiter
            .done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::ShuttingDown)?
            .clone();
        let computed = outcome.unwrap_or(Err(Error::ShuttingDown))?;
        let refreshing = self
            .lock()
            .get(&key)
            .and_then(|s| s.running.as_ref())
            .is_some();
        Ok(fresh(&computed, current_version, refreshing))
    }

    /// The computation for `snapshot`'s version, started if none runs; a computation
    /// for an older version that no one waits for is cancelled.
    fn ensure_running<'s>(
        self: &Arc<Self>,
        slot: &'s mut Slot<T>,
        key: K,
        snapshot: &Arc<Snapshot>,
        job: impl FnOnce(Arc<Snapshot>, Cancel) -> Job<T>,
        background: bool,
    ) -> &'s Running<T> {
        let version = (self.version_of)(snapshot);
        if let Some(running) = &slot.running {
            if running.version == version && running.erasures == snapshot.erasures {
                return slot
                    .running
                    .as_ref()
                    .unwrap_or_else(|| unreachable!("just seen"));
            }
            if running.waiters() == 0 {
                running.cancel.cancel();
            }
        }
        let cancel = Cancel::new();
        let (tell, done) = watch::channel(None);
        let work = job(Arc::clone(snapshot), cancel.clone());
        let this = Arc::clone(self);
        let from = Arc::clone(snapshot);
        tokio::spawn(async move {
            // Its jobs queue behind those callers wait for (`jobs::BACKGROUND`).
            let result = super::jobs::BACKGROUND.scope(background, work).await;
            if let Err(e) = &result
                && !matches!(e, Error::Cancelled)
            {
                tracing::warn!(error = %e, "derived result failed");
            }
            let outcome = this.finish(key, &from, result);
            // Every waiter may have left; the slot keeps the result either way.
            let _ = tell.send(Some(outcome));
        });
        slot.running.insert(Running {
            version,
            erasures: snapshot.erasures,
            done,
            waiting: Arc::new(()),
            cancel,
        })
    }

    /// Keeps a finished result unless an erasure happened since or a newer result is
    /// already there, and clears the slot's running mark if it was this computation.
    fn finish(&self, key: K, from: &Snapshot, result: Result<T>) -> Result<Computed<T>> {
        let erasures_now = self.snapshot.load().erasures;
        let version = (self.version_of)(from);
        let mut slots = self.lock();
        let slot = slots.get_mut(&key);
        let computed = Computed {
            value: Arc::new(result?),
            version,
            erasures: from.erasures,
            at: Timestamp::now(),
        };
        let Some(slot) = slot else {
            // Cleared (an erasure) while computing: answer those who waited, keep nothing.
            return Ok(computed);
        };
        if slot
            .running
            .as_ref()
            .is_some_and(|r| r.version == version && r.erasures == from.erasures)
        {
            slot.running = None;
        }
        // Computed before an erasure: may hold the erased person. Still answer the callers
        // that waited for it (they read a snapshot that had them), never cache it.
        if computed.erasures == erasures_now
            && slot.latest.as_ref().is_none_or(|l| l.version <= version)
        {
            slot.latest = Some(computed.clone());
        }
        Ok(computed)
    }
}

fn fresh<T>(c: &Computed<T>, current_version: u64, refreshing: bool) -> Fresh<T> {
    Fresh {
        value: Arc::clone(&c.value),
        computed_version: c.version,
        computed_at: c.at,
        current_version,
        refreshing,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn snapshot(data_version: u64) -> Arc<ArcSwap<Snapshot>> {
        Arc::new(ArcSwap::from_pointee(Snapshot {
            data_version,
            ..Snapshot::default()
        }))
    }

    /// A job that counts its runs and finishes when `release` says so.
    fn gated(
        runs: &Arc<AtomicUsize>,
        release: &watch::Receiver<bool>,
    ) -> impl FnOnce(Arc<Snapshot>, Cancel) -> Job<u64> + use<> {
        let (runs, mut release) = (Arc::clone(runs), release.clone());
        move |snapshot, _| {
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let _ = release.wait_for(|r| *r).await;
                Ok(snapshot.data_version * 10)
            })
        }
    }

    #[tokio::test]
    async fn a_scrubbed_result_is_served_at_once_after_an_erasure_and_then_refreshed() {
        let snapshots = snapshot(7);
        let cache: Arc<Cache<u8, u64>> =
            Arc::new(Cache::new(Arc::clone(&snapshots), |s| s.data_version));
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(true);
        let first = cache.get(1, Want::Current, gated(&runs, &released)).await;
        assert_eq!(*first.unwrap().value, 70);
        let five = |_: Arc<Snapshot>, _: Cancel| -> Job<u64> { Box::pin(async { Ok(5) }) };
        cache.get(2, Want::Current, five).await.unwrap();
        // The erasure: a new version and one more erasure; key 2's result cannot be
        // scrubbed and is forgotten, key 1's is kept without the person (here: + 1).
        snapshots.store(Arc::new(Snapshot {
            data_version: 8,
            erasures: 1,
            ..Snapshot::default()
        }));
        cache.scrub(1, |v| (**v == 70).then(|| Arc::new(**v + 1)));
        release.send_replace(false);
        let at_once = cache
            .get(1, Want::Latest, gated(&runs, &released))
            .await
            .unwrap();
        assert_eq!((*at_once.value, at_once.computed_version), (71, 7));
        assert!(at_once.refreshing, "computing the current result");
        let waiting = tokio::spawn({
            let cache = Arc::clone(&cache);
            let job = gated(&runs, &released);
            async move { cache.get(2, Want::Latest, job).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "nothing usable for key 2: it waits");
        release.send_replace(true);
        assert_eq!(*waiting.await.unwrap().unwrap().value, 80);
        let current = cache
            .get(1, Want::Current, gated(&runs, &released))
            .await
            .unwrap();
        assert_eq!((*current.value, current.computed_version), (80, 8));
    }

    #[tokio::test]
    async fn a_caller_that_leaves_keeps_the_result_for_the_next_one_computed_once() {
        let cache: Arc<Cache<u8, u64>> = Arc::new(Cache::new(snapshot(7), |s| s.data_version));
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let hurried = tokio::time::timeout(
            Duration::from_millis(20),
            cache.get(1, Want::Current, gated(&runs, &released)),
        )
        .await;
        assert!(hurried.is_err(), "the first caller gave up");
        // A second caller joins the same computation instead of starting one.
        let waiting = tokio::spawn({
            let cache = Arc::clone(&cache);
            let job = gated(&runs, &released);
            async move { cache.get(1, Want::Current, job).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.send(true).unwrap();
        let answer = waiting.await.unwrap().unwrap();
        assert_eq!((*answer.value, answer.computed_version), (70, 7));
        let again = cache
            .get(1, Want::Current, gated(&runs, &released))
            .await
            .unwrap();
        assert_eq!(*again.value, 70);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "computed once");
    }

    #[tokio::test]
    async fn latest_answers_stale_at_once_while_the_successor_is_computed() {
        let live = snapshot(1);
        let cache: Arc<Cache<u8, u64>> =
            Arc::new(Cache::new(Arc::clone(&live), |s| s.data_version));
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(true);
        cache
            .get(1, Want::Latest, gated(&runs, &released))
            .await
            .unwrap();
        release.send(false).unwrap();
        live.store(Arc::new(Snapshot {
            data_version: 2,
            ..Snapshot::default()
        }));
        let stale = cache
            .get(1, Want::Latest, gated(&runs, &released))
            .await
            .unwrap();
        assert_eq!((*stale.value, stale.computed_version), (10, 1));
        assert!(stale.refreshing);
        release.send(true).unwrap();
        let current = cache
            .get(1, Want::Current, gated(&runs, &released))
            .await
            .unwrap();
        assert_eq!((*current.value, current.computed_version), (20, 2));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_superseded_computation_no_one_waits_for_is_cancelled() {
        let live = snapshot(1);
        let cache: Arc<Cache<u8, u64>> =
            Arc::new(Cache::new(Arc::clone(&live), |s| s.data_version));
        let (flag_tx, flag_rx) = tokio::sync::oneshot::channel();
        let (_release, released) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let first = gated(&runs, &released);
        let hurried = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get(1, Want::Current, move |s, cancel| {
                let _ = flag_tx.send(cancel.clone());
                first(s, cancel)
            }),
        )
        .await;
        assert!(hurried.is_err());
        let cancel = flag_rx.await.unwrap();
        assert!(!cancel.is_cancelled(), "kept while its version is current");
        live.store(Arc::new(Snapshot {
            data_version: 2,
            ..Snapshot::default()
        }));
        let _ = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get(1, Want::Current, gated(&runs, &released)),
        )
        .await;
        assert!(cancel.is_cancelled(), "superseded and unwanted");
    }
}
