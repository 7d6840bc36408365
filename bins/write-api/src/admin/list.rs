//! `/admin/videos`: search, filters, sort, the total and cursor pages.
//!
//! The filters go through the admin listing's own query parser and query
//! (`FeedQuery::parse_admin`, `listing::fetch_page`): one listing query per
//! page, and whatever the listing learns (`q` for title search) the console
//! passes on without a change here.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::{html, Markup};
use serde::Deserialize;
use shared::{domain::Video, feed::FeedQuery};

use super::{error::PageError, session::Session, views, ConsoleState};
use crate::{error::ApiError, videos::listing};

const PAGE_SIZE: &str = "25";
/// Marks the first page in the trail of earlier pages.
const FIRST: &str = "-";

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    sort: String,
    /// Where this page starts (the listing's `next_cursor`).
    #[serde(default)]
    cursor: String,
    /// The cursors of the earlier pages, for "Previous" (cursors only go forward).
    #[serde(default)]
    trail: String,
    #[serde(default)]
    done: String,
}

impl Filters {
    /// The listing's query string: the same parameters as `GET /v1/videos`,
    /// empty ones left out (the parser refuses them).
    fn listing_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("page_size", PAGE_SIZE);
        for (name, value) in [
            ("q", &self.q),
            ("status", &self.status),
            ("tag", &self.tag),
            ("sort", &self.sort),
            ("cursor", &self.cursor),
        ] {
            let value = value.trim();
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }

    /// A link to this listing starting at `cursor` (`None`: the first page).
    fn link(&self, cursor: Option<&str>, trail: &[&str]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &self.q),
            ("status", &self.status),
            ("tag", &self.tag),
            ("sort", &self.sort),
        ] {
            if !value.trim().is_empty() {
                query.append_pair(name, value.trim());
            }
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        if !trail.is_empty() {
            query.append_pair("trail", &trail.join(","));
        }
        format!("/admin/videos?{}", query.finish())
    }
}

pub async fn page(
    State(state): State<ConsoleState>,
    session: Session,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let result = match FeedQuery::parse_admin(Some(&filters.listing_query())) {
        Ok(query) => listing::fetch_page(&state.pool, &query).await,
        Err(problem) => Err(ApiError::Problem(problem)),
    };
    let (status, content) = match result {
        Ok(page) => {
            let trail: Vec<&str> = filters.trail.split(',').filter(|c| !c.is_empty()).collect();
            let here = if filters.cursor.is_empty() {
                FIRST
            } else {
                filters.cursor.as_str()
            };
            let next = page.next_cursor.as_deref().map(|next| {
                let mut longer = trail.clone();
                longer.push(here);
                filters.link(Some(next), &longer)
            });
            let previous = trail.split_last().map(|(last, rest)| {
                let cursor = (*last != FIRST).then_some(*last);
                filters.link(cursor, rest)
            });
            (
                StatusCode::OK,
                html! {
                    p.total aria-live="polite" {
                        (page.total_videos) @if page.total_videos == 1 { " video" } @else { " videos" }
                    }
                    (table(&page.results))
                    nav.pages aria-label="Pages" {
                        @if let Some(previous) = previous { a rel="prev" href=(previous) { "← Previous" } }
                        @if let Some(next) = next { a rel="next" href=(next) { "Next →" } }
                    }
                },
            )
        }
        Err(ApiError::Problem(problem)) => (
            StatusCode::BAD_REQUEST,
            views::notice("error", html! { (problem.detail.unwrap_or(problem.title)) }),
        ),
        Err(error) => return Err(error.into()),
    };
    let done = match filters.done.as_str() {
        "deleted" => Some("The video was deleted."),
        _ => None,
    };
    let body = html! {
        @if let Some(done) = done { (views::notice("ok", html! { (done) })) }
        p { a.button href="/admin/videos/new" { "New video" } }
        (filter_form(&filters))
        (content)
    };
    Ok((status, views::page("Videos", &session.csrf, body)).into_response())
}

fn filter_form(filters: &Filters) -> Markup {
    let status = filters.status.as_str();
    let sort = filters.sort.as_str();
    html! {
        form.filters method="get" action="/admin/videos" role="search" {
            div.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(filters.q) placeholder="Title contains…";
            }
            div.field {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="all" selected[status.is_empty() || status == "all"] { "All" }
                    option value="draft" selected[status == "draft"] { "Draft" }
                    option value="published" selected[status == "published"] { "Published" }
                }
            }
            div.field {
                label for="tag" { "Tag" }
                input #tag type="text" name="tag" value=(filters.tag);
            }
            div.field {
                label for="sort" { "Sort" }
                select #sort name="sort" {
                    option value="newest" selected[sort != "popular"] { "Newest" }
                    option value="popular" selected[sort == "popular"] { "Popular" }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

fn table(videos: &[Video]) -> Markup {
    html! {
        @if videos.is_empty() {
            p { "No videos match." }
        } @else {
            div.scroll {
                table {
                    thead {
                        tr {
                            th scope="col" { "Title" }
                            th scope="col" { "Status" }
                            th scope="col" { "Published" }
                            th scope="col" { "Tags" }
                            th scope="col" { "Views" }
                        }
                    }
                    tbody {
                        @for video in videos {
                            tr {
                                td { a href={ "/admin/videos/" (video.id) } { (video.title) } }
                                td { span class={ "status " (video.status.as_str()) } { (video.status.as_str()) } }
                                td {
                                    @if let Some(at) = video.published_at {
                                        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M")) }
                                    } @else { "—" }
                                }
                                td { (video.tags.join(", ")) }
                                td.num { (video.view_count) }
                            }
                        }
                    }
                }
            }
        }
    }
}
