//! Cursor pagination over id-ordered maps. The page token is the last id returned,
//! hex-encoded so that clients treat it as opaque.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::Bound;

use crate::domain::FieldViolation;
use crate::error::Error;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

/// Where a page starts and how long it is.
pub(super) struct PageRequest {
    size: usize,
    after: Option<String>,
}

impl PageRequest {
    /// Parses `page_size` (0 = default) and `page_token`.
    pub(super) fn parse(page_size: u32, page_token: &str) -> Result<Self, Error> {
        let size = match page_size as usize {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            _ => return Err(invalid("page_size", "must be at most 1000")),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            Some(
                decode_token(page_token)
                    .ok_or_else(|| invalid("page_token", "is not a token this server issued"))?,
            )
        };
        Ok(Self { size, after })
    }

    /// One page of the values of `map` that `keep` accepts, and the next page's token
    /// (empty on the last page).
    pub(super) fn apply<'a, K, V>(
        &self,
        map: &'a BTreeMap<K, V>,
        keep: impl Fn(&V) -> bool,
    ) -> (Vec<&'a V>, String)
    where
        K: Borrow<str> + Ord,
    {
        let start = self
            .after
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Excluded);
        let mut matching = map
            .range::<str, _>((start, Bound::Unbounded))
            .filter(|(_, v)| keep(v));
        let page: Vec<(&K, &V)> = matching.by_ref().take(self.size).collect();
        let next = match (matching.next(), page.last()) {
            (Some(_), Some((last, _))) => encode_token((*last).borrow()),
            _ => String::new(),
        };
        (page.into_iter().map(|(_, v)| v).collect(), next)
    }
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

fn encode_token(last: &str) -> String {
    last.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_kept_item_once() {
        let map: BTreeMap<String, u32> = (0..25).map(|i| (format!("k{i:02}"), i)).collect();
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let request = PageRequest::parse(4, &token).unwrap();
            let (page, next) = request.apply(&map, |v| v % 2 == 0);
            seen.extend(page.into_iter().copied());
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, (0..25).filter(|v| v % 2 == 0).collect::<Vec<_>>());
    }

    #[test]
    fn bad_sizes_and_tokens_are_invalid_arguments() {
        assert!(PageRequest::parse(1001, "").is_err());
        assert!(PageRequest::parse(10, "zz").is_err());
        assert!(PageRequest::parse(10, "abc").is_err());
        assert_eq!(decode_token(&encode_token("p-7")).as_deref(), Some("p-7"));
    }
}
