//! The published culture snapshot analysts read.
//!
//! Per-group suppression stops a single answer from exposing anyone; it cannot stop an
//! analyst from *differencing two answers over time*: ask for patterns by team, let one
//! person move into a team, ask again, and the difference is that person. So analysts
//! never read the live data. Their archetypes and patterns are computed from one engine
//! snapshot pinned for a period (`--culture-snapshot-hours`, default 24): every analyst
//! answer within the period rests on the same data, however it changes meanwhile, so two
//! answers minutes apart are identical and their difference is empty. The pin moves to
//! the current data when the period ends, and at once after an erasure (an erased
//! person's data is never served, even at the cost of an early publication).
//!
//! The residual risk is the same attack across periods: a difference between two
//! publications still reveals a change, when only one change happened to a group during
//! the whole period and the group stays above the minimum size. Per-cell suppression
//! (every figure rests on the minimum number of people) and the period (a day of other
//! changes mixed in) make that hard, not impossible; README, "Privacy", says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::domain::Timestamp;
use crate::engine::insights::{
    ArchetypeView, GroupBy, PatternData, compute_archetypes, patterns_at,
};
use crate::engine::{Cancel, Engine, Fresh, KChoice, Snapshot, Want};
use crate::error::{Error, Result};

/// Default period between publications.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(24 * 3600);

type Slot<T> = Arc<OnceCell<Arc<T>>>;

/// One publication: the pinned data and what has been computed from it.
struct Pin {
    snapshot: Arc<Snapshot>,
    /// When it was published (for the period).
    since: Instant,
    /// The same, as a timestamp: answers say it, and levels are evaluated at it.
    stamped: Timestamp,
    archetypes: Mutex<HashMap<KChoice, Slot<ArchetypeView>>>,
    patterns: Mutex<HashMap<(GroupBy, u32), Slot<PatternData>>>,
}

fn slot<K: Eq + std::hash::Hash, T>(map: &Mutex<HashMap<K, Slot<T>>>, key: K) -> Slot<T> {
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(map.entry(key).or_default())
}

/// The culture snapshot of an engine.
pub struct Culture {
    engine: Arc<Engine>,
    /// `None`: analysts read the current data like everyone else.
    period: Option<Duration>,
    pinned: Mutex<Option<Arc<Pin>>>,
}

impl Culture {
    /// Publications at most once per `period` (`Duration::ZERO`: none, live data).
    pub fn new(engine: Arc<Engine>, period: Duration) -> Self {
        Self {
            engine,
            period: (!period.is_zero()).then_some(period),
            pinned: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<Pin>>> {
        self.pinned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current publication: the last one while its period runs and no erasure
    /// happened since, else a new one of the current data.
    fn pin(&self, period: Duration) -> Arc<Pin> {
        let now = self.engine.snapshot();
        let mut pinned = self.lock();
        if let Some(pin) = pinned.as_ref()
            && pin.since.elapsed() < period
            && pin.snapshot.erasures == now.erasures
        {
            return Arc::clone(pin);
        }
        let pin = Arc::new(Pin {
            snapshot: now,
            since: Instant::now(),
            stamped: Timestamp::now(),
            archetypes: Mutex::default(),
            patterns: Mutex::default(),
        });
        *pinned = Some(Arc::clone(&pin));
        pin
    }

    /// The data analysts read now: the published snapshot (the current data when
    /// there is no period).
    pub fn published(&self) -> Arc<Snapshot> {
        match self.period {
            Some(period) => Arc::clone(&self.pin(period).snapshot),
            None => self.engine.snapshot(),
        }
    }

    fn fresh<T>(&self, pin: &Pin, value: Arc<T>) -> Fresh<T> {
        Fresh {
            value,
            computed_version: pin.snapshot.data_version,
            computed_at: pin.stamped,
            current_version: self.engine.snapshot().data_version,
            refreshing: false,
        }
    }

    /// Whether the engine's own cache answers for the pinned data: the pin is the
    /// current data, so the engine computes exactly what the pin would.
    fn pin_is_current(&self, pin: &Pin) -> bool {
        let now = self.engine.snapshot();
        now.data_version == pin.snapshot.data_version && now.erasures == pin.snapshot.erasures
    }

    /// The organisation's archetypes as published (the live ones without a period).
    pub async fn archetypes(&self, choice: KChoice, want: Want) -> Result<Fresh<ArchetypeView>> {
        let Some(period) = self.period else {
            return self.engine.archetypes(None, choice, want).await;
        };
        let pin = self.pin(period);
        let value = self.archetypes_at(&pin, choice).await?;
        Ok(self.fresh(&pin, value))
    }

    async fn archetypes_at(&self, pin: &Pin, choice: KChoice) -> Result<Arc<ArchetypeView>> {
        let cell = slot(&pin.archetypes, choice);
        cell.get_or_try_init(|| async {
            if self.pin_is_current(pin) {
                let fresh = self.engine.archetypes(None, choice, Want::Current).await?;
                if fresh.computed_version == pin.snapshot.data_version {
                    return Ok(fresh.value);
                }
            }
            let snapshot = Arc::clone(&pin.snapshot);
            let view = self
                .engine
                .jobs()
                .run(Cancel::new(), move |cancel| {
                    compute_archetypes(&snapshot, None, choice, cancel)
                })
                .await?;
            Ok(Arc::new(view))
        })
        .await
        .cloned()
    }

    /// The organisation's skill patterns as published (the live ones without a period).
    pub async fn patterns(
        &self,
        group_by: GroupBy,
        trend_days: u32,
        want: Want,
    ) -> Result<Fresh<PatternData>> {
        let Some(period) = self.period else {
            return self.engine.patterns(group_by, None, trend_days, want).await;
        };
        let pin = self.pin(period);
        let cell = slot(&pin.patterns, (group_by, trend_days));
        let value = cell
            .get_or_try_init(|| async {
                if self.pin_is_current(&pin) {
                    let fresh = self
                        .engine
                        .patterns(group_by, None, trend_days, Want::Current)
                        .await?;
                    if fresh.computed_version == pin.snapshot.data_version {
                        return Ok(fresh.value);
                    }
                }
                let archetypes = match self.archetypes_at(&pin, KChoice::AUTO).await {
                    Ok(a) => Some(a),
                    Err(Error::FailedPrecondition(_)) => None,
                    Err(e) => return Err(e),
                };
                let snapshot = Arc::clone(&pin.snapshot);
                let reader = self.engine.evidence();
                let (version, at) = (snapshot.data_version, pin.stamped);
                let data = self
                    .engine
                    .jobs()
                    .run(Cancel::new(), move |cancel| {
                        // The evidence of the pinned data only: later batches are left out.
                        patterns_at(
                            &snapshot,
                            &reader,
                            None,
                            group_by,
                            archetypes.as_ref().map(|a| (a, version)),
                            trend_days,
                            at,
                            cancel,
                        )
                    })
                    .await?;
                Ok(Arc::new(data))
            })
            .await?
            .clone();
        Ok(self.fresh(&pin, value))
    }
}
