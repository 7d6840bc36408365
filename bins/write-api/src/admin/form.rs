//! Create and edit a video, publish or unpublish it, delete it.
//!
//! A form becomes the JSON body the API would get, and the API's own parsers
//! (`NewVideo::parse`, `VideoPatch::parse`) judge it: one source of truth for
//! validation. Writes run the API's transactions. An edit carries the version
//! it started from, like `If-Match`: if the video changed meanwhile nothing is
//! written and the admin sees what changed.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use chrono::{SecondsFormat, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shared::{
    domain::{NewVideo, Status, Video, VideoFields, VideoPatch},
    FieldError,
};
use uuid::Uuid;

use super::{csrf, error::PageError, session::Session, views, ConsoleState};
use crate::{
    error::ApiError,
    videos::{create, item, writable_fields},
};

/// The form's fields: the API's field names, each with its label.
const FIELDS: &[(&str, &str)] = &[
    ("title", "Title"),
    ("description", "Description"),
    ("video_url", "Video URL"),
    ("thumbnail_url", "Thumbnail URL"),
    ("duration_seconds", "Duration (seconds)"),
    ("tags", "Tags"),
    ("view_count", "View count"),
    ("status", "Status"),
    ("published_at", "Published at"),
];

/// What the admin typed, kept as text so a page with errors shows it again.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VideoForm {
    csrf: String,
    title: String,
    description: String,
    video_url: String,
    thumbnail_url: String,
    duration_seconds: String,
    tags: String,
    view_count: String,
    status: String,
    published_at: String,
    /// The version the edit started from.
    version: String,
    /// The fields as they were when the edit started (JSON), to tell the
    /// admin what someone else changed.
    original: String,
}

impl VideoForm {
    fn of(video: &Video) -> Self {
        Self {
            csrf: String::new(),
            title: video.title.clone(),
            description: video.description.clone(),
            video_url: video.video_url.clone(),
            thumbnail_url: video.thumbnail_url.clone().unwrap_or_default(),
            duration_seconds: video
                .duration_seconds
                .map(|d| d.to_string())
                .unwrap_or_default(),
            tags: video.tags.join(", "),
            view_count: video.view_count.to_string(),
            status: video.status.as_str().to_owned(),
            published_at: video
                .published_at
                .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                .unwrap_or_default(),
            version: video.version.to_string(),
            original: fields_json(&writable_fields(video)).to_string(),
        }
    }

    /// The body the API would get for this form. Text the API would refuse
    /// (a word in a number field) goes as it is, so the API's message is shown.
    fn to_json(&self, creating: bool) -> Value {
        let mut body = Map::new();
        body.insert("title".into(), json!(self.title));
        body.insert("description".into(), json!(self.description));
        body.insert("video_url".into(), json!(self.video_url.trim()));
        body.insert("thumbnail_url".into(), optional_text(&self.thumbnail_url));
        body.insert(
            "duration_seconds".into(),
            optional_number(&self.duration_seconds),
        );
        let tags: Vec<&str> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        body.insert("tags".into(), json!(tags));
        if !self.view_count.trim().is_empty() {
            body.insert("view_count".into(), optional_number(&self.view_count));
        }
        body.insert("status".into(), json!(self.status));
        let published_at = optional_text(&self.published_at);
        // An empty date on a published video means "now" (create) or "keep
        // it" (edit); only a draft's date can be cleared.
        if !published_at.is_null() || creating || self.status == "draft" {
            body.insert("published_at".into(), published_at);
        }
        Value::Object(body)
    }
}

fn optional_text(raw: &str) -> Value {
    let raw = raw.trim();
    if raw.is_empty() {
        Value::Null
    } else {
        json!(raw)
    }
}

fn optional_number(raw: &str) -> Value {
    let raw = raw.trim();
    if raw.is_empty() {
        Value::Null
    } else {
        raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n))
    }
}

/// The writable fields as the API names them (what a conflict compares).
fn fields_json(v: &VideoFields) -> Value {
    json!({
        "title": v.title,
        "description": v.description,
        "video_url": v.video_url,
        "thumbnail_url": v.thumbnail_url,
        "duration_seconds": v.duration_seconds,
        "tags": v.tags,
        "view_count": v.view_count,
        "status": v.status.as_str(),
        "published_at": v.published_at.map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    })
}

/// Field errors by form field; errors of no field (or the body) under "".
fn errors_by_field(errors: Vec<FieldError>) -> BTreeMap<String, String> {
    let mut by_field: BTreeMap<String, String> = BTreeMap::new();
    for error in errors {
        let (field, message) = match error.field.split_once('[') {
            // `tags[2]`: the whole field is marked, the item named.
            Some((field, _)) => (
                field.to_owned(),
                format!("{}: {}", error.field, error.message),
            ),
            None => (error.field.clone(), error.message),
        };
        let field = if FIELDS.iter().any(|(name, _)| *name == field) {
            field
        } else {
            String::new()
        };
        by_field
            .entry(field)
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&message);
            })
            .or_insert(message);
    }
    by_field
}

enum Kind<'a> {
    New,
    Edit(&'a Video),
}

fn render(
    kind: Kind<'_>,
    session: &Session,
    form: &VideoForm,
    errors: &BTreeMap<String, String>,
    notice: Option<Markup>,
) -> Markup {
    let (title, action) = match &kind {
        Kind::New => ("New video".to_owned(), "/admin/videos".to_owned()),
        Kind::Edit(video) => (
            format!("Edit “{}”", video.title),
            format!("/admin/videos/{}", video.id),
        ),
    };
    let error = |name: &str| errors.get(name).map(String::as_str);
    let content = html! {
        @if let Some(notice) = notice { (notice) }
        @if !errors.is_empty() {
            (views::notice("error", html! {
                "Nothing was saved: please correct the fields marked below."
                @if let Some(general) = error("") { " " (general) }
            }))
        }
        @if let Kind::Edit(video) = &kind {
            (actions(session, video))
        }
        form.card method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(session.csrf);
            @if let Kind::Edit(_) = &kind {
                input type="hidden" name="version" value=(form.version);
                input type="hidden" name="original" value=(form.original);
            }
            (input("title", "Title", "text", &form.title, error("title"), None))
            div.field.invalid[error("description").is_some()] {
                label for="description" { "Description" }
                textarea #description name="description" rows="4"
                    aria-invalid=[error("description").map(|_| "true")]
                    aria-describedby=[error("description").map(|_| "description-error")] { (form.description) }
                (views::field_error("description", error("description")))
            }
            (input("video_url", "Video URL", "url", &form.video_url, error("video_url"), None))
            (input("thumbnail_url", "Thumbnail URL", "url", &form.thumbnail_url, error("thumbnail_url"), Some("Optional.")))
            (input("duration_seconds", "Duration (seconds)", "text", &form.duration_seconds, error("duration_seconds"), Some("Optional; 0 to 86400.")))
            (input("tags", "Tags", "text", &form.tags, error("tags"), Some("Comma-separated, e.g. summer, dresses.")))
            (input("view_count", "View count", "text", &form.view_count, error("view_count"), None))
            div.field.invalid[error("status").is_some()] {
                label for="status" { "Status" }
                select #status name="status"
                    aria-invalid=[error("status").map(|_| "true")]
                    aria-describedby=[error("status").map(|_| "status-error")] {
                    option value="draft" selected[form.status != "published"] { "Draft" }
                    option value="published" selected[form.status == "published"] { "Published" }
                }
                (views::field_error("status", error("status")))
            }
            (input("published_at", "Published at", "text", &form.published_at, error("published_at"),
                Some("RFC 3339, e.g. 2026-11-28T14:30:00Z; empty when publishing: now.")))
            button type="submit" { "Save" }
        }
    };
    views::page(&title, &session.csrf, content)
}

fn input(
    id: &str,
    label: &str,
    kind: &str,
    value: &str,
    error: Option<&str>,
    hint: Option<&str>,
) -> Markup {
    let described = match (hint.is_some(), error.is_some()) {
        (true, true) => Some(format!("{id}-hint {id}-error")),
        (true, false) => Some(format!("{id}-hint")),
        (false, true) => Some(format!("{id}-error")),
        (false, false) => None,
    };
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            input id=(id) name=(id) type=(kind) value=(value)
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
            @if let Some(hint) = hint { p.hint id={ (id) "-hint" } { (hint) } }
            (views::field_error(id, error))
        }
    }
}

/// Publish or unpublish in one click, and the way to delete.
fn actions(session: &Session, video: &Video) -> Markup {
    let (verb, label) = match video.status {
        Status::Draft => ("publish", "Publish"),
        Status::Published => ("unpublish", "Unpublish"),
    };
    html! {
        div.actions {
            p.meta {
                "Status: " span class={ "status " (video.status.as_str()) } { (video.status.as_str()) }
                " · version " (video.version)
                " · updated " (video.updated_at.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            form.inline method="post" action={ "/admin/videos/" (video.id) "/" (verb) } {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="version" value=(video.version);
                button type="submit" { (label) }
            }
            a.button.danger href={ "/admin/videos/" (video.id) "/delete" } { "Delete" }
        }
    }
}

fn video_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::try_parse(raw).map_err(|_| PageError::NotFound)
}

pub async fn new_page(session: Session) -> Response {
    let form = VideoForm {
        status: "draft".into(),
        ..VideoForm::default()
    };
    render(Kind::New, &session, &form, &BTreeMap::new(), None).into_response()
}

pub async fn create(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<VideoForm>,
) -> Result<Response, PageError> {
    csrf::verify(&session, &form.csrf, &headers)?;
    let video = match NewVideo::parse(&form.to_json(true), "", Utc::now()) {
        Ok(video) => video,
        Err(errors) => return Ok(invalid(Kind::New, &session, &form, errors)),
    };
    let mut tx = state.pool.begin().await?;
    let video = match create::insert_one(&mut tx, Uuid::now_v7(), video.into_fields()).await {
        Ok(video) => video,
        Err(ApiError::Validation(errors)) => {
            return Ok(invalid(Kind::New, &session, &form, errors))
        }
        Err(error) => return Err(error.into()),
    };
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/videos/{}?done=created", video.id)).into_response())
}

fn invalid(
    kind: Kind<'_>,
    session: &Session,
    form: &VideoForm,
    errors: Vec<FieldError>,
) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        render(kind, session, form, &errors_by_field(errors), None),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Done {
    done: String,
}

pub async fn edit_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let video = item::fetch(&state.pool, video_id(&id)?).await?;
    let notice = match done.done.as_str() {
        "created" => Some("The video was created."),
        "saved" => Some("Your changes were saved."),
        "publish" => Some("The video is published."),
        "unpublish" => Some("The video is a draft now."),
        _ => None,
    }
    .map(|text| views::notice("ok", html! { (text) }));
    Ok(render(
        Kind::Edit(&video),
        &session,
        &VideoForm::of(&video),
        &BTreeMap::new(),
        notice,
    )
    .into_response())
}

/// The version check of a console write: like `If-Match: "<version>"`.
fn expect_version(raw: &str) -> impl FnOnce(&Video) -> Result<(), ApiError> + '_ {
    move |current| {
        if raw.trim().parse::<i64>().ok() == Some(current.version) {
            Ok(())
        } else {
            Err(ApiError::PreconditionFailed("changed meanwhile".into()))
        }
    }
}

pub async fn save(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<VideoForm>,
) -> Result<Response, PageError> {
    csrf::verify(&session, &form.csrf, &headers)?;
    let id = video_id(&id)?;
    let patch = match VideoPatch::parse(&form.to_json(false), Utc::now()) {
        Ok(patch) => patch,
        Err(errors) => {
            let video = item::fetch(&state.pool, id).await?;
            return Ok(invalid(Kind::Edit(&video), &session, &form, errors));
        }
    };
    match item::apply_patch(&state.pool, id, patch, expect_version(&form.version)).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/videos/{id}?done=saved")).into_response()),
        Err(ApiError::Validation(errors)) => {
            let video = item::fetch(&state.pool, id).await?;
            Ok(invalid(Kind::Edit(&video), &session, &form, errors))
        }
        Err(ApiError::PreconditionFailed(_)) => conflict(&state, &session, id, form).await,
        Err(error) => Err(error.into()),
    }
}

/// Someone else changed the video: nothing was written. The page keeps the
/// admin's values, lists what changed, and now carries the new version, so
/// saving again is a deliberate overwrite.
async fn conflict(
    state: &ConsoleState,
    session: &Session,
    id: Uuid,
    mut form: VideoForm,
) -> Result<Response, PageError> {
    let current = item::fetch(&state.pool, id).await?;
    let now = fields_json(&writable_fields(&current));
    let before: Value = serde_json::from_str(&form.original).unwrap_or(Value::Null);
    let changed: Vec<(&str, String, String)> = FIELDS
        .iter()
        .filter(|(name, _)| before.get(name) != now.get(name))
        .map(|(name, label)| {
            (
                *label,
                shown(before.get(name).unwrap_or(&Value::Null)),
                shown(now.get(name).unwrap_or(&Value::Null)),
            )
        })
        .collect();
    let notice = views::notice(
        "error",
        html! {
            strong { "Someone else changed this video while you were editing it; nothing was saved." }
            @if changed.is_empty() {
                " (Version " (form.version) " is now version " (current.version) ".)"
            } @else {
                " They changed:"
                ul.changes {
                    @for (label, was, is) in &changed {
                        li { strong { (label) } ": " (was) " → " (is) }
                    }
                }
            }
            " Your values are still in the form below: Save again to replace their changes, or reload the page to start from theirs."
        },
    );
    form.version = current.version.to_string();
    form.original = now.to_string();
    Ok((
        StatusCode::CONFLICT,
        render(
            Kind::Edit(&current),
            session,
            &form,
            &BTreeMap::new(),
            Some(notice),
        ),
    )
        .into_response())
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".into(),
        Value::String(s) => format!("“{s}”"),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Action {
    csrf: String,
    version: String,
}

pub async fn publish(
    state: State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    id: Path<String>,
    Form(action): Form<Action>,
) -> Result<Response, PageError> {
    set_status(state, session, headers, id, action, Status::Published).await
}

pub async fn unpublish(
    state: State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    id: Path<String>,
    Form(action): Form<Action>,
) -> Result<Response, PageError> {
    set_status(state, session, headers, id, action, Status::Draft).await
}

async fn set_status(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    action: Action,
    status: Status,
) -> Result<Response, PageError> {
    csrf::verify(&session, &action.csrf, &headers)?;
    let id = video_id(&id)?;
    let patch = VideoPatch {
        status: Some(status),
        ..VideoPatch::default()
    };
    match item::apply_patch(&state.pool, id, patch, expect_version(&action.version)).await {
        Ok(_) => {
            let done = match status {
                Status::Published => "publish",
                Status::Draft => "unpublish",
            };
            Ok(Redirect::to(&format!("/admin/videos/{id}?done={done}")).into_response())
        }
        Err(ApiError::PreconditionFailed(_)) => {
            let current = item::fetch(&state.pool, id).await?;
            let notice = views::notice(
                "error",
                html! { "Someone else changed this video meanwhile; nothing was changed. Check it below and try again." },
            );
            Ok((
                StatusCode::CONFLICT,
                render(
                    Kind::Edit(&current),
                    &session,
                    &VideoForm::of(&current),
                    &BTreeMap::new(),
                    Some(notice),
                ),
            )
                .into_response())
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn delete_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let video = item::fetch(&state.pool, video_id(&id)?).await?;
    Ok(confirm_delete(&session, &video, StatusCode::OK, None))
}

fn confirm_delete(
    session: &Session,
    video: &Video,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let content = html! {
        @if let Some(notice) = notice { (notice) }
        p { "Delete “" strong { (video.title) } "”? It disappears from the feed at once; this cannot be undone." }
        form.inline method="post" action={ "/admin/videos/" (video.id) "/delete" } {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="version" value=(video.version);
            button.danger type="submit" { "Delete" }
        }
        " "
        a.button href={ "/admin/videos/" (video.id) } { "Cancel" }
    };
    (status, views::page("Delete video", &session.csrf, content)).into_response()
}

pub async fn delete(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(action): Form<Action>,
) -> Result<Response, PageError> {
    csrf::verify(&session, &action.csrf, &headers)?;
    let id = video_id(&id)?;
    match item::delete(&state.pool, id, expect_version(&action.version)).await {
        Ok(()) => Ok(Redirect::to("/admin/videos?done=deleted").into_response()),
        Err(ApiError::PreconditionFailed(_)) => {
            let current = item::fetch(&state.pool, id).await?;
            let notice = views::notice(
                "error",
                html! { "Someone else changed this video meanwhile; it was not deleted. Check it and confirm again." },
            );
            Ok(confirm_delete(
                &session,
                &current,
                StatusCode::CONFLICT,
                Some(notice),
            ))
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_judged_by_the_api_parser() {
        let form = VideoForm {
            title: "  ".into(),
            video_url: "not a url".into(),
            duration_seconds: "ten".into(),
            tags: "a, ,b".into(),
            status: "draft".into(),
            ..VideoForm::default()
        };
        let body = form.to_json(true);
        assert_eq!(body["tags"], json!(["a", "b"]));
        assert_eq!(body["duration_seconds"], json!("ten"));
        let errors = errors_by_field(NewVideo::parse(&body, "", Utc::now()).unwrap_err());
        assert_eq!(errors["title"], "must not be empty");
        assert_eq!(errors["duration_seconds"], "must be an integer");
        assert!(errors["video_url"].starts_with("must be an absolute URL"));
    }

    #[test]
    fn an_empty_date_keeps_a_published_video_dated() {
        let form = VideoForm {
            status: "published".into(),
            ..VideoForm::default()
        };
        assert!(form.to_json(false).get("published_at").is_none());
        assert!(form.to_json(true)["published_at"].is_null());
        let draft = VideoForm {
            status: "draft".into(),
            ..VideoForm::default()
        };
        assert!(draft.to_json(false)["published_at"].is_null());
    }

    #[test]
    fn item_errors_mark_their_field() {
        let errors = errors_by_field(vec![
            FieldError::new("tags[2]", "must not be empty"),
            FieldError::new("", "the body must be a JSON object"),
        ]);
        assert_eq!(errors["tags"], "tags[2]: must not be empty");
        assert_eq!(errors[""], "the body must be a JSON object");
    }
}
