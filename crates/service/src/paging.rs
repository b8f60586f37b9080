//! List paging (SPEC §4): `?limit=` 1..200 (default 50) and an opaque `?cursor=`.

use crate::ServiceError;
use base64::Engine;
use inventiv_domain::PageLimit;
use std::str::FromStr;

/// A page request as parsed from the query string.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// A page of results; `next_cursor` is None on the last page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl PageRequest {
    /// The validated limit and the decoded cursor position.
    pub fn parse<K: FromStr>(&self) -> Result<(u64, Option<K>), ServiceError> {
        let limit = PageLimit::parse(self.limit)?.get();
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(
                decode(cursor).ok_or_else(|| ServiceError::invalid("cursor", "invalid cursor"))?,
            ),
        };
        Ok((limit, after))
    }
}

fn decode<K: FromStr>(cursor: &str) -> Option<K> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok()?.parse().ok()
}

/// Builds a page from up to `limit + 1` fetched rows: the extra row only says "there is more".
pub fn page_of<T, K: ToString>(mut rows: Vec<T>, limit: u64, key: impl Fn(&T) -> K) -> Page<T> {
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|last| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(last).to_string())
        })
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}
