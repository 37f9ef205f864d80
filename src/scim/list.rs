//! List requests and responses (RFC 7644 §3.4.2): the query parameters a client sends and the
//! `ListResponse` it gets back. Pure: no I/O.

use serde_json::{Value, json};

use super::filter::{self, Filter};
use crate::error::{Error, Result};

pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The largest page a client can ask for (advertised as `filter.maxResults`), and the page
/// size when it does not ask: OneLogin and authentik page by `startIndex` alone
/// (idp-compat.md §1.1 (j)).
pub const MAX_RESULTS: u64 = 1000;

/// A list request: filter and paging.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based index of the first result (RFC 7644 §3.4.2.4).
    pub start_index: u64,
    /// Maximum results to return, already capped at `MAX_RESULTS`.
    pub count: u64,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            start_index: 1,
            count: MAX_RESULTS,
        }
    }
}

impl ListQuery {
    /// Zero-based offset of the first result.
    pub fn offset(&self) -> u64 {
        self.start_index - 1
    }

    /// Reads the parameters of a query string's decoded pairs. Unknown parameters (Entra's
    /// `aadOptscim062020`) and empty ones (OneLogin's stray `&`) are ignored; names are
    /// matched case-insensitively.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut q = ListQuery::default();
        for (key, value) in pairs {
            if value.trim().is_empty() {
                continue;
            }
            if key.eq_ignore_ascii_case("filter") {
                q.filter = Some(
                    filter::parse(value)
                        .map_err(|e| Error::InvalidFilter(format!("invalid filter {e}")))?,
                );
            } else if key.eq_ignore_ascii_case("startIndex") {
                // RFC 7644 §3.4.2.4: a value below 1 is interpreted as 1.
                q.start_index = integer(key, value)?.max(1) as u64;
            } else if key.eq_ignore_ascii_case("count") {
                // RFC 7644 §3.4.2.4: a negative count is 0; above the maximum is capped.
                q.count = (integer(key, value)?.max(0) as u64).min(MAX_RESULTS);
            }
        }
        Ok(q)
    }
}

fn integer(name: &str, value: &str) -> Result<i64> {
    let v = value.trim();
    v.parse::<i64>().or_else(|_| {
        // Very large numbers saturate rather than fail: they are still valid integers.
        if !v.is_empty()
            && v.trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            Ok(if v.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            })
        } else {
            Err(Error::InvalidValue(format!(
                "query parameter \"{name}\" must be an integer, not \"{value}\""
            )))
        }
    })
}

/// The `ListResponse` body for one page of rendered resources.
pub fn response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery> {
        ListQuery::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_page_from_one_with_max_results() {
        let d = q(&[]).unwrap();
        assert_eq!((d.start_index, d.count, d.filter), (1, MAX_RESULTS, None));
    }

    #[test]
    fn paging_follows_rfc_7644_3_4_2_4() {
        assert_eq!(q(&[("startIndex", "0")]).unwrap().start_index, 1);
        assert_eq!(q(&[("startIndex", "-5")]).unwrap().start_index, 1);
        assert_eq!(q(&[("startIndex", "7")]).unwrap().offset(), 6);
        assert_eq!(q(&[("count", "-1")]).unwrap().count, 0);
        assert_eq!(q(&[("count", "0")]).unwrap().count, 0);
        assert_eq!(q(&[("count", "5000")]).unwrap().count, MAX_RESULTS);
        assert_eq!(
            q(&[("count", "99999999999999999999")]).unwrap().count,
            MAX_RESULTS
        );
        assert!(matches!(
            q(&[("count", "ten")]),
            Err(Error::InvalidValue(_))
        ));
    }

    #[test]
    fn unknown_and_empty_parameters_are_ignored() {
        let r = q(&[
            ("aadOptscim062020", ""),
            ("", ""),
            ("filter", ""),
            ("count", ""),
            ("startIndex", " "),
        ])
        .unwrap();
        assert_eq!(r, ListQuery::default());
    }

    #[test]
    fn bad_filter_is_invalid_filter() {
        assert!(matches!(
            q(&[("filter", "userName eq")]),
            Err(Error::InvalidFilter(_))
        ));
    }

    #[test]
    fn response_shape() {
        let r = response(3, 2, vec![json!({"id": "a"})]);
        assert_eq!(r["totalResults"], json!(3));
        assert_eq!(r["itemsPerPage"], json!(1));
        assert_eq!(r["startIndex"], json!(2));
    }
}
