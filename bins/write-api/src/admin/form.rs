//! The video form: what the admin typed, the JSON body it becomes, and the
//! page that shows it with its errors.
//!
//! A form becomes the JSON body the API would get, and the API's own parsers
//! (`NewVideo::parse`, `VideoPatch::parse`) judge it: one source of truth for
//! validation.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use shared::{
    domain::{Status, Video},
    FieldError,
};

use super::{session::Session, views};

/// The form's fields: the API's field names, each with its label.
pub(super) const FIELDS: &[(&str, &str)] = &[
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
    pub(super) csrf: String,
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
    pub(super) version: String,
    /// The fields as they were when the edit started (JSON), to tell the
    /// admin what someone else changed.
    pub(super) original: String,
}

impl VideoForm {
    /// The empty form of a new video, a draft until the admin says otherwise.
    pub(super) fn draft() -> Self {
        Self {
            status: "draft".into(),
            ..Self::default()
        }
    }

    pub(super) fn of(video: &Video) -> Self {
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
            original: fields_json(video).to_string(),
        }
    }

    /// The body the API would get for this form. Text the API would refuse
    /// (a word in a number field) goes as it is, so the API's message is shown.
    pub(super) fn to_json(&self, creating: bool) -> Value {
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
pub(super) fn fields_json(video: &Video) -> Value {
    serde_json::to_value(video.writable_fields()).unwrap_or(Value::Null)
}

/// Field errors by form field; errors of no field (or the body) under "".
pub(super) fn errors_by_field(errors: Vec<FieldError>) -> BTreeMap<String, String> {
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

pub(super) enum Kind<'a> {
    New,
    Edit(&'a Video),
}

pub(super) fn render(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use shared::domain::{NewVideo, WRITABLE_FIELDS};

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
    fn the_form_has_every_writable_field() {
        let names: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, WRITABLE_FIELDS);
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
