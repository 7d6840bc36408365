use std::borrow::Cow;

use url::form_urlencoded;

use super::cursor::{Cursor, CursorPosition};
use super::listing::{Listing, Sort, StatusFilter};
use super::search::SearchText;
use crate::{domain::Tag, Problem};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Position {
    /// Page mode, 1-based.
    Page(u64),
    /// Cursor mode: the items after this position.
    After(CursorPosition),
}

/// A validated, normalized feed request. Unknown parameters never reach it, so
/// two requests that differ only in them are the same `FeedQuery`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedQuery {
    pub listing: Listing,
    pub sort: Sort,
    pub tag: Option<Tag>,
    /// Admin search (`q`): titles containing this text. Always `None` in the
    /// public feed.
    pub search: Option<SearchText>,
    pub page_size: u32,
    pub position: Position,
}

/// The recognized parameters as given, borrowed from the query string unless
/// percent-decoding changed them (no allocation on a typical cache hit).
#[derive(Default)]
struct Raw<'a> {
    page: Option<Cow<'a, str>>,
    page_size: Option<Cow<'a, str>>,
    sort: Option<Cow<'a, str>>,
    tag: Option<Cow<'a, str>>,
    cursor: Option<Cow<'a, str>>,
    status: Option<Cow<'a, str>>,
    q: Option<Cow<'a, str>>,
}

impl FeedQuery {
    /// Parses the public feed's query string.
    pub fn parse_public(query: Option<&str>) -> Result<Self, Problem> {
        Self::parse(query, false)
    }

    /// Parses the admin listing's query string (the public parameters plus `status`).
    pub fn parse_admin(query: Option<&str>) -> Result<Self, Problem> {
        Self::parse(query, true)
    }

    fn parse(query: Option<&str>, admin: bool) -> Result<Self, Problem> {
        let raw = collect(query.unwrap_or(""), admin)?;
        let page_size = match raw.page_size.as_deref() {
            None => DEFAULT_PAGE_SIZE,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    bad(
                        "page_size",
                        &format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                    )
                })?,
        };
        let sort = raw
            .sort
            .as_deref()
            .map(|v| Sort::parse(v).ok_or_else(|| bad("sort", "must be `newest` or `popular`")))
            .transpose()?;
        let tag = raw
            .tag
            .as_deref()
            .map(|v| Tag::parse(v).map_err(|m| bad("tag", &m)))
            .transpose()?;
        let status = raw
            .status
            .as_deref()
            .map(|v| {
                StatusFilter::parse(v)
                    .ok_or_else(|| bad("status", "must be `draft`, `published` or `all`"))
            })
            .transpose()?;
        let search = raw
            .q
            .as_deref()
            .map(|v| SearchText::parse(v).map_err(|m| bad("q", &m)))
            .transpose()?;

        if let Some(encoded) = raw.cursor.as_deref() {
            if raw.page.is_some() {
                return Err(Problem::bad_request(
                    "`cursor` and `page` cannot be combined: a cursor already says where the page starts.",
                ));
            }
            let cursor = Cursor::decode(encoded)
                .ok_or_else(|| bad("cursor", "is not a cursor this API issued"))?;
            let listing_matches = match (cursor.listing, admin) {
                (Listing::Public, false) => true,
                (Listing::Admin(s), true) => status.is_none_or(|given| given == s),
                _ => false,
            };
            if !listing_matches {
                return Err(bad("cursor", "belongs to another listing or status filter"));
            }
            if sort.is_some_and(|s| s != cursor.sort) {
                return Err(bad("sort", "differs from the cursor's sort"));
            }
            if tag.as_ref().is_some_and(|t| Some(t) != cursor.tag.as_ref()) {
                return Err(bad("tag", "differs from the cursor's tag"));
            }
            if search
                .as_ref()
                .is_some_and(|q| Some(q) != cursor.search.as_ref())
            {
                return Err(bad("q", "differs from the cursor's search"));
            }
            return Ok(Self {
                listing: cursor.listing,
                sort: cursor.sort,
                tag: cursor.tag,
                search: cursor.search,
                page_size,
                position: Position::After(cursor.position),
            });
        }

        let page = match raw.page.as_deref() {
            None => 1,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("page", "must be an integer >= 1"))?,
        };
        Ok(Self {
            listing: if admin {
                Listing::Admin(status.unwrap_or(StatusFilter::All))
            } else {
                Listing::Public
            },
            sort: sort.unwrap_or(Sort::Newest),
            tag,
            search,
            page_size,
            position: Position::Page(page),
        })
    }

    /// The cursor that continues after `position` in this listing, sort and tag.
    pub fn cursor_after(&self, position: CursorPosition) -> Cursor {
        Cursor {
            listing: self.listing,
            sort: self.sort,
            tag: self.tag.clone(),
            search: self.search.clone(),
            position,
        }
    }
}

/// The query parameters of the public feed, and the admin listing's extra one.
pub const PUBLIC_PARAMETERS: &[&str] = &["page", "page_size", "sort", "tag", "cursor"];
pub const ADMIN_PARAMETERS: &[&str] = &["status"];

fn collect(query: &str, admin: bool) -> Result<Raw<'_>, Problem> {
    let mut raw = Raw::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "page" => &mut raw.page,
            "page_size" => &mut raw.page_size,
            "sort" => &mut raw.sort,
            "tag" => &mut raw.tag,
            "cursor" => &mut raw.cursor,
            "status" if admin => &mut raw.status,
            "q" if admin => &mut raw.q,
            // Unknown parameters are ignored (and so never reach a cache key).
            _ => continue,
        };
        if slot.is_some() {
            return Err(bad(&key, "is given more than once"));
        }
        if value.is_empty() {
            return Err(bad(&key, "must not be empty"));
        }
        *slot = Some(value);
    }
    Ok(raw)
}

fn bad(param: &str, message: &str) -> Problem {
    Problem::bad_request(format!("Query parameter `{param}` {message}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(q: &str) -> Result<FeedQuery, Problem> {
        FeedQuery::parse_public(Some(q))
    }

    #[test]
    fn defaults() {
        let q = public("").unwrap();
        assert_eq!(q.sort, Sort::Newest);
        assert_eq!(q.page_size, 20);
        assert_eq!(q.position, Position::Page(1));
        assert_eq!(q.tag, None);
    }

    #[test]
    fn unknown_parameters_do_not_change_the_query() {
        assert_eq!(public("page=2&utm=x").unwrap(), public("page=2").unwrap());
        // `status` is unknown to the public feed.
        assert_eq!(public("status=draft").unwrap(), public("").unwrap());
    }

    #[test]
    fn bad_values_are_400() {
        for q in [
            "page=",
            "page=0",
            "page=abc",
            "page=-1",
            "page_size=0",
            "page_size=101",
            "page_size=1.5",
            "sort=",
            "sort=oldest",
            "tag=",
            "tag=%20",
            "cursor=",
            "cursor=nonsense",
            "page=1&page=2",
        ] {
            let err = public(q).unwrap_err();
            assert_eq!(err.status, 400, "{q}");
        }
    }

    #[test]
    fn tag_is_lower_cased() {
        assert_eq!(
            public("tag=Summer").unwrap().tag.unwrap().as_str(),
            "summer"
        );
    }

    #[test]
    fn cursor_round_trip_and_conflicts() {
        let q = public("sort=popular&tag=linen").unwrap();
        let cursor = q
            .cursor_after(CursorPosition {
                view_count: 7,
                published_at: Some(chrono::Utc::now()),
                id: uuid::Uuid::now_v7(),
            })
            .encode();
        let next = public(&format!("cursor={cursor}&page_size=5")).unwrap();
        assert_eq!(next.sort, Sort::Popular);
        assert_eq!(next.tag.as_ref().unwrap().as_str(), "linen");
        assert_eq!(next.page_size, 5);
        assert!(public(&format!("cursor={cursor}&sort=popular&tag=LINEN")).is_ok());
        assert_eq!(
            public(&format!("cursor={cursor}&page=1"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            public(&format!("cursor={cursor}&sort=newest"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            public(&format!("cursor={cursor}&tag=wool"))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            FeedQuery::parse_admin(Some(&format!("cursor={cursor}")))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn admin_search() {
        let q = FeedQuery::parse_admin(Some("q=50%25_off&status=draft")).unwrap();
        assert_eq!(q.search.as_ref().unwrap().as_str(), "50%_off");
        let long = "x".repeat(201);
        for bad_q in ["q=".to_owned(), format!("q={long}"), "q=a&q=b".to_owned()] {
            assert_eq!(
                FeedQuery::parse_admin(Some(&bad_q)).unwrap_err().status,
                400,
                "{bad_q}"
            );
        }
        // Unknown to the public feed.
        assert_eq!(public("q=x").unwrap().search, None);
        // A cursor carries the search; a different `q` beside it is refused.
        let cursor = q
            .cursor_after(CursorPosition {
                view_count: 0,
                published_at: None,
                id: uuid::Uuid::now_v7(),
            })
            .encode();
        let next = FeedQuery::parse_admin(Some(&format!("cursor={cursor}"))).unwrap();
        assert_eq!(next.search, q.search);
        assert!(FeedQuery::parse_admin(Some(&format!("cursor={cursor}&q=50%25_off"))).is_ok());
        assert_eq!(
            FeedQuery::parse_admin(Some(&format!("cursor={cursor}&q=other")))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn admin_status() {
        let q = FeedQuery::parse_admin(Some("status=draft")).unwrap();
        assert_eq!(q.listing, Listing::Admin(StatusFilter::Draft));
        assert_eq!(
            FeedQuery::parse_admin(Some("status=x")).unwrap_err().status,
            400
        );
        assert_eq!(
            FeedQuery::parse_admin(None).unwrap().listing,
            Listing::Admin(StatusFilter::All)
        );
    }
}
