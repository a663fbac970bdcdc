//! Unauthenticated denials, aggregated: anyone can send calls without a valid token, so
//! each one must not cost an audit record. They are counted per source address, rpc,
//! outcome and minute, and each count becomes one audit event when its minute is over
//! (or the server stops). Memory is bounded: past `MAX_KEYS` distinct keys in a minute,
//! further sources are counted under one "(other)" source.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::domain::{AuditEvent, Timestamp};

/// Most distinct (source, rpc, outcome) keys counted in one minute.
pub const MAX_KEYS: usize = 4_096;
/// The source of denials counted once a minute holds `MAX_KEYS` keys.
pub const OTHER_SOURCE: &str = "(other)";
const MINUTE_MS: i64 = 60_000;

type Key = (String, &'static str, &'static str);

/// Counts of unauthenticated denials per minute.
#[derive(Default)]
pub struct Denials {
    minutes: Mutex<HashMap<i64, HashMap<Key, u32>>>,
}

impl Denials {
    /// Counts one denial of `rpc` with `outcome` from `source` at `at`.
    pub fn note(
        &self,
        source: Option<IpAddr>,
        rpc: &'static str,
        outcome: &'static str,
        at: Timestamp,
    ) {
        let minute = at.unix_millis().div_euclid(MINUTE_MS);
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        let counts = minutes.entry(minute).or_default();
        let source = source.map_or_else(|| OTHER_SOURCE.to_owned(), |ip| ip.to_string());
        let mut key = (source, rpc, outcome);
        if !counts.contains_key(&key) && counts.len() >= MAX_KEYS {
            key.0 = OTHER_SOURCE.to_owned();
        }
        let count = counts.entry(key).or_insert(0);
        *count = count.saturating_add(1);
    }

    /// The events of every minute that ended before `now`, removed from the counts.
    pub fn take_ended(&self, now: Timestamp) -> Vec<AuditEvent> {
        let current = now.unix_millis().div_euclid(MINUTE_MS);
        self.take(|minute| minute < current)
    }

    /// The events of every minute counted so far (at shutdown).
    pub fn take_all(&self) -> Vec<AuditEvent> {
        self.take(|_| true)
    }

    fn take(&self, ended: impl Fn(i64) -> bool) -> Vec<AuditEvent> {
        let mut minutes = self.minutes.lock().unwrap_or_else(|e| e.into_inner());
        let done: Vec<i64> = minutes.keys().copied().filter(|m| ended(*m)).collect();
        let mut events = Vec::new();
        for minute in done {
            let Some(counts) = minutes.remove(&minute) else {
                continue;
            };
            let mut counted: Vec<(Key, u32)> = counts.into_iter().collect();
            counted.sort_unstable();
            events.extend(
                counted
                    .into_iter()
                    .map(|((source, rpc, outcome), count)| AuditEvent {
                        sequence: 0,
                        at: Timestamp::from_unix_millis(minute.saturating_mul(MINUTE_MS)),
                        token: None,
                        role: None,
                        rpc: rpc.to_owned(),
                        subjects: Vec::new(),
                        outcome: outcome.to_owned(),
                        source: Some(source),
                        count,
                    }),
            );
        }
        events.sort_by_key(|e| e.at);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RPC: &str = "/capsight.v1.DirectoryService/GetPerson";

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    #[test]
    fn denials_are_counted_per_source_rpc_outcome_and_minute() {
        let denials = Denials::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..1_000 {
            denials.note(Some(a), RPC, "UNAUTHENTICATED", at(60_000));
        }
        denials.note(Some(b), RPC, "UNAUTHENTICATED", at(119_999));
        denials.note(Some(a), RPC, "UNAUTHENTICATED", at(120_000));
        // The minute [60 s, 120 s) is over at 120 s; the next one is not.
        let ended = denials.take_ended(at(120_000));
        let summary: Vec<_> = ended
            .iter()
            .map(|e| (e.source.as_deref().unwrap(), e.count, e.at.unix_millis()))
            .collect();
        assert_eq!(
            summary,
            vec![("10.0.0.1", 1_000, 60_000), ("10.0.0.2", 1, 60_000)]
        );
        assert!(denials.take_ended(at(179_999)).is_empty());
        let rest = denials.take_all();
        assert_eq!(rest.len(), 1);
        assert_eq!((rest[0].count, rest[0].at.unix_millis()), (1, 120_000));
        assert!(denials.take_all().is_empty());
    }

    #[test]
    fn a_minute_of_many_sources_stays_within_its_key_bound() {
        let denials = Denials::default();
        for i in 0..(MAX_KEYS as u32 + 10_000) {
            let ip = IpAddr::from(i.to_be_bytes());
            denials.note(Some(ip), RPC, "UNAUTHENTICATED", at(0));
        }
        let events = denials.take_all();
        assert_eq!(events.len(), MAX_KEYS + 1);
        let other = events
            .iter()
            .find(|e| e.source.as_deref() == Some(OTHER_SOURCE))
            .unwrap();
        assert_eq!(other.count, 10_000);
        let total: u32 = events.iter().map(|e| e.count).sum();
        assert_eq!(total, MAX_KEYS as u32 + 10_000);
    }
}
