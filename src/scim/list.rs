//! List requests and responses (RFC 7644 §3.4.2, §3.4.3; RFC 9865 cursors): the parameters a
//! client sends, in a query string or a `.search` body, and the `ListResponse` it gets back.
//! Pure: no I/O.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::filter::{self, AttrPath, Filter};
use crate::error::{Error, Result};

pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The largest page a client can ask for (advertised as `filter.maxResults`), and the page
/// size when it does not ask: OneLogin and authentik page by `startIndex` alone
/// (idp-compat.md §1.1 (j)).
pub const MAX_RESULTS: u64 = 1000;

/// `sortBy` / `sortOrder` (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub by: AttrPath,
    pub descending: bool,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// RFC 7644 §3.4.2.4: 1-based index of the first result.
    Index(u64),
    /// RFC 9865: the first page (`cursor` given empty), or the page after a cursor.
    Cursor(Option<Cursor>),
}

/// What a cursor carries: the position after which the next page starts (the internal,
/// never reused row number of the last resource returned) and the total counted when the
/// traversal began, so following a cursor costs one index range read, not a recount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub after: i64,
    pub total: u64,
}

impl Cursor {
    const PREFIX: &'static str = "c1.";

    /// The opaque token handed to clients.
    pub fn encode(&self) -> String {
        let raw = format!("{}{}.{}", Self::PREFIX, self.after, self.total);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(token: &str) -> Result<Cursor> {
        let invalid =
            || Error::InvalidCursor(format!("\"{token}\" is not a cursor this server issued"));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| invalid())?;
        let raw = String::from_utf8(raw).map_err(|_| invalid())?;
        let (after, total) = raw
            .strip_prefix(Self::PREFIX)
            .and_then(|r| r.split_once('.'))
            .ok_or_else(invalid)?;
        Ok(Cursor {
            after: after.parse().map_err(|_| invalid())?,
            total: total.parse().map_err(|_| invalid())?,
        })
    }
}

/// A list request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    pub paging: Paging,
    /// Maximum results to return, already capped at `MAX_RESULTS`.
    pub count: u64,
    /// `attributes` and `excludedAttributes`, comma-separated as in a query string.
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            filter: None,
            sort: None,
            paging: Paging::Index(1),
            count: MAX_RESULTS,
            attributes: None,
            excluded_attributes: None,
        }
    }
}

/// The raw parameters, wherever they came from.
#[derive(Default)]
struct Raw<'a> {
    filter: Option<&'a str>,
    sort_by: Option<&'a str>,
    sort_order: Option<&'a str>,
    start_index: Option<i64>,
    count: Option<i64>,
    cursor: Option<&'a str>,
    attributes: Option<String>,
    excluded: Option<String>,
}

impl ListQuery {
    /// Reads the parameters of a query string's decoded pairs. Unknown parameters (Entra's
    /// `aadOptscim062020`) and empty ones (OneLogin's stray `&`) are ignored — except
    /// `cursor`, whose empty value asks for the first page (RFC 9865); names are matched
    /// case-insensitively.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut raw = Raw::default();
        for (key, value) in pairs {
            let is = |name: &str| key.eq_ignore_ascii_case(name);
            if is("cursor") {
                raw.cursor = Some(value);
            } else if value.trim().is_empty() {
                continue;
            } else if is("filter") {
                raw.filter = Some(value);
            } else if is("sortBy") {
                raw.sort_by = Some(value);
            } else if is("sortOrder") {
                raw.sort_order = Some(value);
            } else if is("startIndex") {
                raw.start_index = Some(integer(key, value)?);
            } else if is("count") {
                raw.count = Some(integer(key, value)?);
            } else if is("attributes") {
                raw.attributes = Some(value.to_string());
            } else if is("excludedAttributes") {
                raw.excluded = Some(value.to_string());
            }
        }
        Self::from_raw(raw)
    }

    /// Reads a `POST /.search` body (RFC 7644 §3.4.3).
    pub fn from_search(body: &Value) -> Result<Self> {
        let Value::Object(map) = body else {
            return Err(Error::InvalidSyntax(
                "a search request must be a JSON object".into(),
            ));
        };
        let field = |name: &str| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
                .filter(|v| !v.is_null())
        };
        let string = |name: &str| -> Result<Option<&str>> {
            match field(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(Error::InvalidValue(format!("\"{name}\" must be a string"))),
            }
        };
        let number = |name: &str| -> Result<Option<i64>> {
            match field(name) {
                None => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| Error::InvalidValue(format!("\"{name}\" must be an integer"))),
                Some(_) => Err(Error::InvalidValue(format!(
                    "\"{name}\" must be an integer"
                ))),
            }
        };
        let list = |name: &str| -> Result<Option<String>> {
            match field(name) {
                None => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            Error::InvalidValue(format!("\"{name}\" must be a list of strings"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(|v| Some(v.join(","))),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(Error::InvalidValue(format!(
                    "\"{name}\" must be a list of strings"
                ))),
            }
        };
        Self::from_raw(Raw {
            filter: string("filter")?.filter(|f| !f.trim().is_empty()),
            sort_by: string("sortBy")?.filter(|s| !s.trim().is_empty()),
            sort_order: string("sortOrder")?,
            start_index: number("startIndex")?,
            count: number("count")?,
            cursor: string("cursor")?,
            attributes: list("attributes")?,
            excluded: list("excludedAttributes")?,
        })
    }

    fn from_raw(raw: Raw) -> Result<Self> {
        let filter = raw
            .filter
            .map(|f| {
                filter::parse(f).map_err(|e| Error::InvalidFilter(format!("invalid filter {e}")))
            })
            .transpose()?;
        let descending = match raw.sort_order.map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(Error::InvalidValue(format!(
                    "sortOrder must be \"ascending\" or \"descending\", not \"{o}\""
                )));
            }
        };
        let sort = raw
            .sort_by
            .map(|by| {
                let by = filter::parse_path(by.trim())
                    .map_err(|e| Error::InvalidValue(format!("invalid sortBy {e}")))?;
                Ok::<_, Error>(Sort { by, descending })
            })
            .transpose()?;
        let paging = match (raw.cursor, raw.start_index) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidValue(
                    "use either startIndex or cursor paging, not both".into(),
                ));
            }
            (Some(c), None) if c.trim().is_empty() => Paging::Cursor(None),
            (Some(c), None) => Paging::Cursor(Some(Cursor::decode(c)?)),
            // RFC 7644 §3.4.2.4: a startIndex below 1 is interpreted as 1.
            (None, s) => Paging::Index(s.unwrap_or(1).max(1) as u64),
        };
        if sort.is_some() && matches!(paging, Paging::Cursor(_)) {
            return Err(Error::InvalidValue(
                "cursor paging follows creation order; use startIndex paging with sortBy".into(),
            ));
        }
        Ok(ListQuery {
            filter,
            sort,
            paging,
            // RFC 7644 §3.4.2.4: a negative count is 0; above the maximum is capped.
            count: (raw.count.unwrap_or(MAX_RESULTS as i64).max(0) as u64).min(MAX_RESULTS),
            attributes: raw.attributes,
            excluded_attributes: raw.excluded,
        })
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

/// One page of results, rendered: as JSON values, or (`response_text`) as JSON text.
pub struct Page<R = Value> {
    pub total: u64,
    pub resources: Vec<R>,
    /// Set for cursor paging: the cursor of the next page, if there is one.
    pub next_cursor: Option<Cursor>,
}

/// The `ListResponse` body (RFC 7644 §3.4.2; RFC 9865 adds `nextCursor`).
pub fn response(page: Page, paging: Paging) -> Value {
    let mut out = envelope(&page, paging);
    out.insert("Resources".into(), Value::Array(page.resources));
    Value::Object(out)
}

/// `response` as JSON text, for resources that are JSON text already.
pub fn response_text(page: Page<String>, paging: Paging) -> String {
    let head = Value::Object(envelope(&page, paging)).to_string();
    let size = page.resources.iter().map(|r| r.len() + 1).sum::<usize>();
    let mut out = String::with_capacity(head.len() + size + 16);
    // The members before `Resources`, without the closing brace.
    out.push_str(&head[..head.len() - 1]);
    out.push_str(",\"Resources\":[");
    for (i, r) in page.resources.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r);
    }
    out.push_str("]}");
    out
}

/// Every member of a `ListResponse` but `Resources`, in order.
fn envelope<R>(page: &Page<R>, paging: Paging) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("schemas".into(), json!([LIST_RESPONSE_URN]));
    out.insert("totalResults".into(), json!(page.total));
    match paging {
        Paging::Index(start) => {
            out.insert("startIndex".into(), json!(start));
        }
        Paging::Cursor(_) => {
            if let Some(next) = page.next_cursor {
                out.insert("nextCursor".into(), json!(next.encode()));
            }
        }
    }
    out.insert("itemsPerPage".into(), json!(page.resources.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery> {
        ListQuery::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_page_from_one_with_max_results() {
        assert_eq!(q(&[]).unwrap(), ListQuery::default());
        assert_eq!(ListQuery::default().paging, Paging::Index(1));
        assert_eq!(ListQuery::default().count, MAX_RESULTS);
    }

    #[test]
    fn paging_follows_rfc_7644_3_4_2_4() {
        assert_eq!(q(&[("startIndex", "0")]).unwrap().paging, Paging::Index(1));
        assert_eq!(q(&[("startIndex", "-5")]).unwrap().paging, Paging::Index(1));
        assert_eq!(q(&[("startIndex", "7")]).unwrap().paging, Paging::Index(7));
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
            ("sortBy", ""),
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
    fn sort_parameters() {
        let s = q(&[("sortBy", "name.familyName"), ("sortOrder", "DESCENDING")]).unwrap();
        let sort = s.sort.unwrap();
        assert_eq!(sort.by.attr, "name");
        assert_eq!(sort.by.sub_attr.as_deref(), Some("familyName"));
        assert!(sort.descending);
        assert!(
            !q(&[("sortBy", "userName")])
                .unwrap()
                .sort
                .unwrap()
                .descending
        );
        assert!(matches!(
            q(&[("sortOrder", "up"), ("sortBy", "x")]),
            Err(Error::InvalidValue(_))
        ));
        assert!(matches!(
            q(&[("sortBy", "a b")]),
            Err(Error::InvalidValue(_))
        ));
    }

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let c = Cursor {
            after: 41,
            total: 100_000,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "nope",
            "YzEuNDE",
            "!!!",
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("c1.x.1"),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(Error::InvalidCursor(_))),
                "{bad}"
            );
        }
        assert_eq!(q(&[("cursor", "")]).unwrap().paging, Paging::Cursor(None));
        assert_eq!(
            q(&[("cursor", &c.encode())]).unwrap().paging,
            Paging::Cursor(Some(c))
        );
        assert!(matches!(
            q(&[("cursor", ""), ("startIndex", "1")]),
            Err(Error::InvalidValue(_))
        ));
        assert!(matches!(
            q(&[("cursor", ""), ("sortBy", "userName")]),
            Err(Error::InvalidValue(_))
        ));
    }

    #[test]
    fn search_bodies_read_like_query_strings() {
        let body = json!({
            "schemas": [SEARCH_REQUEST_URN],
            "attributes": ["userName", "emails"],
            "filter": "userName sw \"a\"",
            "sortBy": "userName", "sortOrder": "descending",
            "startIndex": 3, "count": 20
        });
        let s = ListQuery::from_search(&body).unwrap();
        assert_eq!(s.attributes.as_deref(), Some("userName,emails"));
        assert_eq!(s.paging, Paging::Index(3));
        assert_eq!(s.count, 20);
        assert!(s.filter.is_some() && s.sort.unwrap().descending);
        assert!(matches!(
            ListQuery::from_search(&json!({"count": "5"})),
            Err(Error::InvalidValue(_))
        ));
        assert!(matches!(
            ListQuery::from_search(&json!([])),
            Err(Error::InvalidSyntax(_))
        ));
        assert_eq!(
            ListQuery::from_search(&json!({})).unwrap(),
            ListQuery::default()
        );
    }

    #[test]
    fn response_shapes() {
        let page = |next| Page {
            total: 3,
            resources: vec![json!({"id": "a"})],
            next_cursor: next,
        };
        let r = response(page(None), Paging::Index(2));
        assert_eq!(
            (
                r["totalResults"].clone(),
                r["itemsPerPage"].clone(),
                r["startIndex"].clone()
            ),
            (json!(3), json!(1), json!(2))
        );
        let c = Cursor { after: 9, total: 3 };
        let r = response(page(Some(c)), Paging::Cursor(None));
        assert_eq!(r["nextCursor"], json!(c.encode()));
        assert!(r.get("startIndex").is_none());
        let r = response(page(None), Paging::Cursor(Some(c)));
        assert!(r.get("nextCursor").is_none());
    }

    #[test]
    fn response_text_is_response_as_text() {
        let c = Cursor { after: 9, total: 3 };
        let resources = [
            json!({"id": "a"}),
            json!({"id": "b", "x": [1, {"y": null}]}),
        ];
        for paging in [Paging::Index(2), Paging::Cursor(None)] {
            for n in 0..=resources.len() {
                let values = resources[..n].to_vec();
                let texts = values.iter().map(Value::to_string).collect();
                let text = response_text(
                    Page {
                        total: 3,
                        resources: texts,
                        next_cursor: Some(c),
                    },
                    paging,
                );
                let value = response(
                    Page {
                        total: 3,
                        resources: values,
                        next_cursor: Some(c),
                    },
                    paging,
                );
                assert_eq!(text, value.to_string());
            }
        }
    }
}
