use serde::Serialize;
use url::form_urlencoded;

use super::{
    cursor::CursorPosition,
    listing::{Listing, StatusFilter},
    query::{FeedQuery, Position},
};
use crate::Problem;

/// The feed envelope, as both APIs return it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedPage<T> {
    pub total_videos: i64,
    pub total_pages: i64,
    /// Null in cursor mode.
    pub page: Option<u64>,
    pub page_size: u32,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub next_cursor: Option<String>,
    pub results: Vec<T>,
}

pub fn total_pages(total_videos: i64, page_size: u32) -> i64 {
    let size = i64::from(page_size.max(1));
    (total_videos.max(0) + size - 1) / size
}

impl FeedQuery {
    /// Page mode: the 404 for a page past the last. Page 1 of an empty feed exists.
    pub fn check_page_exists(&self, total_videos: i64) -> Result<(), Problem> {
        if let Position::Page(page) = self.position {
            let last = total_pages(total_videos, self.page_size).max(1);
            if page > last.unsigned_abs() {
                return Err(Problem::not_found(format!(
                    "Page {page} is past the last page ({last})."
                )));
            }
        }
        Ok(())
    }

    /// Page mode: rows to skip. Call after [`check_page_exists`](Self::check_page_exists),
    /// which bounds the page.
    pub fn offset(&self) -> i64 {
        match self.position {
            Position::Page(page) => i64::try_from(
                page.saturating_sub(1)
                    .saturating_mul(u64::from(self.page_size)),
            )
            .unwrap_or(i64::MAX),
            Position::After(_) => 0,
        }
    }

    /// Rows to fetch: one more than a page, to learn whether another follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.page_size) + 1
    }

    fn page_link(&self, page: u64) -> String {
        let mut link = form_urlencoded::Serializer::new(String::new());
        link.append_pair("page", &page.to_string())
            .append_pair("page_size", &self.page_size.to_string())
            .append_pair("sort", self.sort.as_str());
        if let Some(tag) = &self.tag {
            link.append_pair("tag", tag.as_str());
        }
        if let Listing::Admin(status) = self.listing {
            if status != StatusFilter::All {
                link.append_pair("status", status.as_str());
            }
        }
        if let Some(search) = &self.search {
            link.append_pair("q", search.as_str());
        }
        format!("/v1/videos?{}", link.finish())
    }

    /// Assembles the envelope from the total and up to `fetch_limit()` rows.
    pub fn page_of<T>(
        &self,
        total_videos: i64,
        mut rows: Vec<T>,
        position_of: impl Fn(&T) -> CursorPosition,
    ) -> FeedPage<T> {
        let total_pages = total_pages(total_videos, self.page_size);
        let size = self.page_size as usize;
        let more = rows.len() > size;
        rows.truncate(size);
        let next_cursor = more
            .then(|| {
                rows.last()
                    .map(|last| self.cursor_after(position_of(last)).encode())
            })
            .flatten();
        let (page, next, previous) = match self.position {
            Position::Page(page) => {
                let has_next = i64::try_from(page).is_ok_and(|p| p < total_pages);
                (
                    Some(page),
                    has_next.then(|| self.page_link(page + 1)),
                    (page > 1).then(|| self.page_link(page - 1)),
                )
            }
            Position::After(_) => (
                None,
                next_cursor
                    .as_ref()
                    .map(|c| format!("/v1/videos?cursor={c}&page_size={}", self.page_size)),
                None,
            ),
        };
        FeedPage {
            total_videos,
            total_pages,
            page,
            page_size: self.page_size,
            next,
            previous,
            next_cursor,
            results: rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn pos(_: &u32) -> CursorPosition {
        CursorPosition {
            view_count: 0,
            published_at: Some(chrono::Utc::now()),
            id: Uuid::nil(),
        }
    }

    #[test]
    fn arithmetic() {
        assert_eq!(total_pages(0, 20), 0);
        assert_eq!(total_pages(1, 20), 1);
        assert_eq!(total_pages(40, 20), 2);
        assert_eq!(total_pages(41, 20), 3);
    }

    #[test]
    fn links_in_page_mode() {
        let q = FeedQuery::parse_public(Some("page=2&page_size=20&tag=Summer")).unwrap();
        let page = q.page_of(45, (0..21).collect(), pos);
        assert_eq!(page.total_pages, 3);
        assert_eq!(
            page.next.as_deref(),
            Some("/v1/videos?page=3&page_size=20&sort=newest&tag=summer")
        );
        assert_eq!(
            page.previous.as_deref(),
            Some("/v1/videos?page=1&page_size=20&sort=newest&tag=summer")
        );
        assert!(page.next_cursor.is_some());
        assert_eq!(page.results.len(), 20);
    }

    #[test]
    fn last_page_has_no_next() {
        let q = FeedQuery::parse_public(Some("page=3")).unwrap();
        let page = q.page_of(45, (0..5).collect(), pos);
        assert_eq!(page.next, None);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn past_the_last_page_is_404_but_empty_page_one_is_not() {
        let q = FeedQuery::parse_public(Some("page=4")).unwrap();
        assert_eq!(q.check_page_exists(45).unwrap_err().status, 404);
        let q = FeedQuery::parse_public(None).unwrap();
        assert!(q.check_page_exists(0).is_ok());
        let q = FeedQuery::parse_public(Some("page=18446744073709551615")).unwrap();
        assert_eq!(q.check_page_exists(45).unwrap_err().status, 404);
    }

    #[test]
    fn cursor_mode_links() {
        let first = FeedQuery::parse_public(Some("page_size=2")).unwrap();
        let cursor = first.page_of(5, vec![1, 2, 3], pos).next_cursor.unwrap();
        let q = FeedQuery::parse_public(Some(&format!("cursor={cursor}&page_size=2"))).unwrap();
        let page = q.page_of(5, vec![3, 4, 5], pos);
        assert_eq!(page.page, None);
        assert_eq!(page.previous, None);
        let c = page.next_cursor.unwrap();
        assert_eq!(
            page.next.unwrap(),
            format!("/v1/videos?cursor={c}&page_size=2")
        );
    }
}
