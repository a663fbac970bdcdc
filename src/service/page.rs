//! Cursor pagination. A page token is opaque: a cursor (the last id returned, or a
//! position) plus a 64-bit tag over the cursor and the request it belongs to — the rpc
//! and every filter field. A token is accepted only by the same rpc with the same
//! filters, and an edited or foreign token is INVALID_ARGUMENT. The tag is a check, not a
//! secret: a forged cursor could only move within what the caller may list anyway,
//! because scope and filters are applied to every page.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::Bound;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::domain::FieldViolation;
use crate::error::Error;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

/// Longest page token accepted, in characters (a cursor is an id of at most 128 bytes).
const MAX_TOKEN_CHARS: usize = 512;

/// The rpc and filters a page token is bound to: `context(&["ListPeople", team])`.
pub fn context(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

/// The page token continuing after `cursor` for requests with `context`.
pub fn encode_token(context: &str, cursor: &[u8]) -> String {
    let tag = xxh3_64_with_seed(&[context.as_bytes(), b"\0", cursor].concat(), 0x00ca_5516);
    tag.to_be_bytes()
        .iter()
        .chain(cursor)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cursor of `token` (`None` when empty), if it was issued for `context`.
pub fn decode_token(token: &str, context: &str) -> Result<Option<Vec<u8>>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        invalid(
            "page_token",
            "is not a token this server issued for this request",
        )
    };
    if token.len() > MAX_TOKEN_CHARS || !token.len().is_multiple_of(2) || token.len() < 16 {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let (_, cursor) = bytes.split_at(8);
    if encode_token(context, cursor) != token.to_ascii_lowercase() {
        return Err(bad());
    }
    Ok(Some(cursor.to_vec()))
}

/// The request fields and sizes of a list paged apart from the answer's main list.
#[derive(Clone, Copy, Debug)]
pub struct PageFields {
    /// Name of the page size field.
    pub size: &'static str,
    /// Name of the page token field.
    pub token: &'static str,
    /// Size when none is asked for.
    pub default: usize,
    /// Largest size.
    pub most: usize,
}

/// Where a page starts and how long it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageRequest {
    size: usize,
    after: Option<String>,
    context: String,
}

impl PageRequest {
    /// Parses `page_size` (0 = default) and `page_token`, which must have been issued for
    /// `context` (see `context`).
    pub fn parse(page_size: u32, page_token: &str, context: String) -> Result<Self, Error> {
        let size = page_size_or_default(page_size)?;
        Self::with_size(size, page_token, context)
    }

    /// As `parse`, for a list with its own page fields and sizes.
    pub fn parse_sized(
        page_size: u32,
        page_token: &str,
        context: String,
        fields: PageFields,
    ) -> Result<Self, Error> {
        let size = match page_size as usize {
            0 => fields.default,
            n if n <= fields.most => n,
            _ => {
                let reason = format!("must be at most {}", fields.most);
                return Err(invalid(fields.size, &reason));
            }
        };
        Self::with_size(size, page_token, context).map_err(|e| match e {
            Error::InvalidArgument(violations) => Error::InvalidArgument(
                violations
                    .into_iter()
                    .map(|v| FieldViolation::new(fields.token, v.reason))
                    .collect(),
            ),
            other => other,
        })
    }

    fn with_size(size: usize, page_token: &str, context: String) -> Result<Self, Error> {
        let after = decode_token(page_token, &context)?
            .map(String::from_utf8)
            .transpose()
            .map_err(|_| invalid("page_token", "is not a token this server issued"))?;
        Ok(Self {
            size,
            after,
            context,
        })
    }

    /// One page of the values of `map` that `keep` accepts, and the next page's token
    /// (empty on the last page).
    pub fn apply<'a, K, V>(
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
            (Some(_), Some((last, _))) => encode_token(&self.context, (*last).borrow().as_bytes()),
            _ => String::new(),
        };
        (page.into_iter().map(|(_, v)| v).collect(), next)
    }
}

impl PageRequest {
    /// One page of `items`, which are sorted by their unique `key`: the range it covers
    /// and the next page's token (empty on the last page). The page starts after the
    /// token's key, so it continues correctly when items came or went in between.
    pub fn apply_sorted<T>(
        &self,
        items: &[T],
        key: impl Fn(&T) -> String,
    ) -> (std::ops::Range<usize>, String) {
        let start = self.after.as_deref().map_or(0, |after| {
            items.partition_point(|item| key(item).as_str() <= after)
        });
        let end = start.saturating_add(self.size).min(items.len());
        let next = match end < items.len() && end > start {
            true => encode_token(&self.context, key(&items[end - 1]).as_bytes()),
            false => String::new(),
        };
        (start..end, next)
    }
}

/// A page size: 0 means the default (100), at most 1,000.
pub fn page_size_or_default(page_size: u32) -> Result<usize, Error> {
    match page_size as usize {
        0 => Ok(DEFAULT_PAGE),
        n if n <= MAX_PAGE => Ok(n),
        _ => Err(invalid("page_size", "must be at most 1000")),
    }
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidArgument(vec![FieldViolation::new(field, reason)])
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
            let request = PageRequest::parse(4, &token, context(&["List"])).unwrap();
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
    fn tokens_are_bound_to_their_request_and_bad_ones_are_invalid_arguments() {
        let people = context(&["ListPeople", "team-1"]);
        let token = encode_token(&people, b"p-7");
        assert_eq!(
            decode_token(&token, &people).unwrap().as_deref(),
            Some(&b"p-7"[..])
        );
        assert!(decode_token(&token, &context(&["ListPeople", "team-2"])).is_err());
        assert!(decode_token(&token, &context(&["ListSkills"])).is_err());
        let mut edited = token.clone();
        edited.replace_range(token.len() - 2.., "38");
        assert!(decode_token(&edited, &people).is_err());
        assert!(
            decode_token(&"ab".repeat(300), &people).is_err(),
            "too long"
        );
        assert!(PageRequest::parse(1001, "", people.clone()).is_err());
        assert!(PageRequest::parse(10, "zz", people.clone()).is_err());
        assert!(PageRequest::parse(10, "abc", people).is_err());
    }

    proptest::proptest! {
        /// Any page size and any token either parse or are INVALID_ARGUMENT; a token
        /// never yields a cursor longer than the longest token allows.
        #[test]
        fn any_page_request_parses_or_is_refused(
            size in proptest::num::u32::ANY,
            token in "[0-9a-fA-Fz]{0,1200}",
        ) {
            match PageRequest::parse(size, &token, context(&["List"])) {
                Ok(page) => {
                    proptest::prop_assert!(page.size >= 1 && page.size <= MAX_PAGE);
                    proptest::prop_assert!(page.after.is_none_or(|a| a.len() * 2 <= MAX_TOKEN_CHARS));
                }
                Err(e) => proptest::prop_assert!(matches!(e, Error::InvalidArgument(_))),
            }
        }
    }
}
