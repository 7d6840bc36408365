//! Request bodies that create or change videos, validated from raw JSON field
//! by field. Deserializing into a struct would stop at the first problem and
//! describe it in serde's words; admins want every failing field at once,
//! named by its path (`title`, `tags[3]`, `videos[2].video_url`), including
//! wrong JSON types, unknown fields (typos) and read-only fields.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    Description, Duration, HttpUrl, PublishedAt, Status, Tag, Tags, Title, ViewCount, MAX_TAGS,
};
use crate::FieldError;

/// Videos in one batch create.
pub const MAX_BATCH: usize = 1000;

/// The fields a client may write, in the resource's order.
pub const WRITABLE_FIELDS: &[&str] = &[
    "title",
    "description",
    "video_url",
    "thumbnail_url",
    "duration_seconds",
    "tags",
    "view_count",
    "status",
    "published_at",
];
const READ_ONLY: &[&str] = &["id", "created_at", "updated_at", "version"];

/// The writable state of a video, as it is stored. A published video whose
/// `published_at` is `None` here gets the time of the writing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFields {
    pub title: String,
    pub description: String,
    pub video_url: String,
    pub thumbnail_url: Option<String>,
    pub duration_seconds: Option<i32>,
    pub tags: Vec<String>,
    pub view_count: i64,
    pub status: Status,
    pub published_at: Option<DateTime<Utc>>,
}

/// A valid create (`POST /v1/videos`, one element of a batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVideo {
    pub title: Title,
    pub description: Description,
    pub video_url: HttpUrl,
    pub thumbnail_url: Option<HttpUrl>,
    pub duration: Option<Duration>,
    pub tags: Tags,
    pub view_count: ViewCount,
    pub status: Status,
    pub published_at: Option<PublishedAt>,
}

impl NewVideo {
    /// Validates one create. `prefix` is the path of the object in the request
    /// (`""` for a whole body, `videos[3]` in a batch); `now` bounds `published_at`.
    pub fn parse(value: &Value, prefix: &str, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::of(value, prefix, now)?;
        let title = f.get("title", text(Title::parse)).required(&mut f, "title");
        let description = f.get("description", text(Description::parse)).or_default(
            &mut f,
            "description",
            Description::default,
        );
        let video_url = f
            .get("video_url", text(HttpUrl::parse))
            .required(&mut f, "video_url");
        let thumbnail_url = f.get("thumbnail_url", text(HttpUrl::parse)).nullable();
        let duration = f
            .get("duration_seconds", integer(Duration::parse))
            .nullable();
        let tags = f
            .get("tags", tags)
            .or_default(&mut f, "tags", Tags::default);
        let view_count = f.get("view_count", integer(ViewCount::parse)).or_default(
            &mut f,
            "view_count",
            ViewCount::default,
        );
        let status = f
            .get("status", text(Status::parse))
            .or_default(&mut f, "status", || Status::Published);
        let published_at = f.get("published_at", published_at).nullable();

        match (
            title,
            description,
            video_url,
            thumbnail_url,
            duration,
            tags,
            view_count,
            status,
            published_at,
        ) {
            (
                Some(title),
                Some(description),
                Some(video_url),
                Some(thumbnail_url),
                Some(duration),
                Some(tags),
                Some(view_count),
                Some(status),
                Some(published_at),
            ) if f.errors.is_empty() => Ok(Self {
                title,
                description,
                video_url,
                thumbnail_url,
                duration,
                tags,
                view_count,
                status,
                published_at,
            }),
            _ => Err(f.errors),
        }
    }

    pub fn into_fields(self) -> VideoFields {
        VideoFields {
            title: self.title.into_inner(),
            description: self.description.into_inner(),
            video_url: self.video_url.into_inner(),
            thumbnail_url: self.thumbnail_url.map(HttpUrl::into_inner),
            duration_seconds: self.duration.map(Duration::get),
            tags: self.tags.to_strings(),
            view_count: self.view_count.get(),
            status: self.status,
            published_at: self.published_at.map(PublishedAt::get),
        }
    }
}

/// Validates a batch body, `{"videos": [ ... ]}` with 1..=[`MAX_BATCH`] creates;
/// errors of the elements are named `videos[i].field`.
pub fn parse_batch(value: &Value, now: DateTime<Utc>) -> Result<Vec<NewVideo>, Vec<FieldError>> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError::new("", "the body must be a JSON object")]);
    };
    let mut errors: Vec<FieldError> = object
        .keys()
        .filter(|k| k.as_str() != "videos")
        .map(|k| FieldError::new(k.as_str(), "is not a field of a batch (only `videos` is)"))
        .collect();
    let items = match object.get("videos") {
        None => {
            errors.push(FieldError::new("videos", "is required"));
            return Err(errors);
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(FieldError::new("videos", "must be an array of videos"));
            return Err(errors);
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        errors.push(FieldError::new(
            "videos",
            format!(
                "must hold 1 to {MAX_BATCH} videos (it holds {})",
                items.len()
            ),
        ));
        return Err(errors);
    }
    let mut videos = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match NewVideo::parse(item, &format!("videos[{i}]"), now) {
            Ok(video) => videos.push(video),
            Err(item_errors) => errors.extend(item_errors),
        }
    }
    if errors.is_empty() {
        Ok(videos)
    } else {
        Err(errors)
    }
}

/// A valid JSON merge patch (RFC 7396) of a video: `None` leaves a field
/// alone; for nullable fields `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoPatch {
    pub title: Option<Title>,
    pub description: Option<Description>,
    pub video_url: Option<HttpUrl>,
    pub thumbnail_url: Option<Option<HttpUrl>>,
    pub duration: Option<Option<Duration>>,
    pub tags: Option<Tags>,
    pub view_count: Option<ViewCount>,
    pub status: Option<Status>,
    pub published_at: Option<Option<PublishedAt>>,
}

impl VideoPatch {
    pub fn parse(value: &Value, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::of(value, "", now)?;
        let patch = Self {
            title: f.get("title", text(Title::parse)).replace(&mut f, "title"),
            description: f
                .get("description", text(Description::parse))
                .replace(&mut f, "description"),
            video_url: f
                .get("video_url", text(HttpUrl::parse))
                .replace(&mut f, "video_url"),
            thumbnail_url: f.get("thumbnail_url", text(HttpUrl::parse)).clearable(),
            duration: f
                .get("duration_seconds", integer(Duration::parse))
                .clearable(),
            tags: f.get("tags", tags).replace(&mut f, "tags"),
            view_count: f
                .get("view_count", integer(ViewCount::parse))
                .replace(&mut f, "view_count"),
            status: f
                .get("status", text(Status::parse))
                .replace(&mut f, "status"),
            published_at: f.get("published_at", published_at).clearable(),
        };
        if f.errors.is_empty() {
            Ok(patch)
        } else {
            Err(f.errors)
        }
    }

    /// The state after applying this patch to `current`. `published_at` may be
    /// cleared only on a video that is a draft afterwards; a video that becomes
    /// published without one is dated by the writer, and a published video
    /// made a draft keeps its date.
    pub fn apply(self, current: VideoFields) -> Result<VideoFields, Vec<FieldError>> {
        let status = self.status.unwrap_or(current.status);
        let published_at = match self.published_at {
            None => current.published_at,
            Some(Some(at)) => Some(at.get()),
            Some(None) if status == Status::Draft => None,
            Some(None) => {
                return Err(vec![FieldError::new(
                    "published_at",
                    "can only be cleared on a draft; a published video has a publication date",
                )])
            }
        };
        Ok(VideoFields {
            title: self.title.map_or(current.title, Title::into_inner),
            description: self
                .description
                .map_or(current.description, Description::into_inner),
            video_url: self
                .video_url
                .map_or(current.video_url, HttpUrl::into_inner),
            thumbnail_url: self
                .thumbnail_url
                .map_or(current.thumbnail_url, |v| v.map(HttpUrl::into_inner)),
            duration_seconds: self
                .duration
                .map_or(current.duration_seconds, |v| v.map(Duration::get)),
            tags: self.tags.map_or(current.tags, |t| t.to_strings()),
            view_count: self.view_count.map_or(current.view_count, ViewCount::get),
            status,
            published_at,
        })
    }
}

/// The fields of one JSON object being validated, and the errors found so far.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
    now: DateTime<Utc>,
    errors: Vec<FieldError>,
}

/// What one field of the object holds.
enum Slot<T> {
    Absent,
    Null,
    Valid(T),
    /// Its errors are already recorded.
    Invalid,
}

impl<'a> Fields<'a> {
    /// Refuses a non-object outright, then records every unknown and read-only field.
    fn of(value: &'a Value, prefix: &'a str, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            let message = if prefix.is_empty() {
                "the body must be a JSON object"
            } else {
                "must be a JSON object"
            };
            return Err(vec![FieldError::new(prefix, message)]);
        };
        let mut fields = Self {
            object,
            prefix,
            now,
            errors: Vec::new(),
        };
        for key in object.keys() {
            if READ_ONLY.contains(&key.as_str()) {
                let path = fields.path(key);
                fields.errors.push(FieldError::new(path, "is read-only"));
            } else if !WRITABLE_FIELDS.contains(&key.as_str()) {
                let path = fields.path(key);
                fields
                    .errors
                    .push(FieldError::new(path, "is not a field of a video"));
            }
        }
        Ok(fields)
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn get<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&Value, &str, DateTime<Utc>) -> Result<T, Vec<FieldError>>,
    ) -> Slot<T> {
        match self.object.get(name) {
            None => Slot::Absent,
            Some(Value::Null) => Slot::Null,
            Some(value) => match parse(value, &self.path(name), self.now) {
                Ok(v) => Slot::Valid(v),
                Err(errors) => {
                    self.errors.extend(errors);
                    Slot::Invalid
                }
            },
        }
    }

    fn error(&mut self, name: &str, message: &str) {
        let path = self.path(name);
        self.errors.push(FieldError::new(path, message));
    }
}

impl<T> Slot<T> {
    /// A field a create must give.
    fn required(self, f: &mut Fields<'_>, name: &str) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Absent => {
                f.error(name, "is required");
                None
            }
            Self::Null => {
                f.error(name, "must not be null");
                None
            }
            Self::Invalid => None,
        }
    }

    /// A non-nullable field a create may leave out.
    fn or_default(self, f: &mut Fields<'_>, name: &str, default: impl FnOnce() -> T) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Absent => Some(default()),
            Self::Null => {
                f.error(name, "must not be null");
                None
            }
            Self::Invalid => None,
        }
    }

    /// A nullable field of a create: `Some(None)` when absent or null.
    fn nullable(self) -> Option<Option<T>> {
        match self {
            Self::Valid(v) => Some(Some(v)),
            Self::Absent | Self::Null => Some(None),
            Self::Invalid => None,
        }
    }

    /// A non-nullable field of a patch.
    fn replace(self, f: &mut Fields<'_>, name: &str) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Null => {
                f.error(name, "must not be null (it cannot be cleared)");
                None
            }
            Self::Absent | Self::Invalid => None,
        }
    }

    /// A nullable field of a patch: `Some(None)` clears it.
    fn clearable(self) -> Option<Option<T>> {
        match self {
            Self::Valid(v) => Some(Some(v)),
            Self::Null => Some(None),
            Self::Absent | Self::Invalid => None,
        }
    }
}

fn text<T>(
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&Value, &str, DateTime<Utc>) -> Result<T, Vec<FieldError>> {
    move |value, path, _| match value {
        // Postgres text cannot hold NUL.
        Value::String(s) if s.contains('\0') => Err(vec![FieldError::new(
            path,
            "must not contain NUL characters",
        )]),
        Value::String(s) => parse(s).map_err(|m| vec![FieldError::new(path, m)]),
        _ => Err(vec![FieldError::new(path, "must be a string")]),
    }
}

fn integer<T>(
    parse: fn(i64) -> Result<T, String>,
) -> impl Fn(&Value, &str, DateTime<Utc>) -> Result<T, Vec<FieldError>> {
    move |value, path, _| match whole_number(value) {
        Some(Ok(n)) => parse(n).map_err(|m| vec![FieldError::new(path, m)]),
        Some(Err(())) => Err(vec![FieldError::new(path, "is too large")]),
        None => Err(vec![FieldError::new(path, "must be an integer")]),
    }
}

/// A JSON number with no fractional part, as JSON Schema's `integer` reads
/// it: `95` and `95.0` alike (JSON has one number type); `Err` when it does
/// not fit an i64.
fn whole_number(value: &Value) -> Option<Result<i64, ()>> {
    if let Some(n) = value.as_i64() {
        return Some(Ok(n));
    }
    if value.is_u64() {
        return Some(Err(()));
    }
    let f = value.as_f64().filter(|f| f.fract() == 0.0)?;
    // i64::MIN is exactly representable; i64::MAX rounds up to 2^63, out of range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    Some(if f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Ok(f as i64)
    } else {
        Err(())
    })
}

fn published_at(
    value: &Value,
    path: &str,
    now: DateTime<Utc>,
) -> Result<PublishedAt, Vec<FieldError>> {
    match value {
        Value::String(s) => PublishedAt::parse(s, now).map_err(|m| vec![FieldError::new(path, m)]),
        _ => Err(vec![FieldError::new(
            path,
            "must be a string (an RFC 3339 date-time)",
        )]),
    }
}

fn tags(value: &Value, path: &str, _: DateTime<Utc>) -> Result<Tags, Vec<FieldError>> {
    let Value::Array(items) = value else {
        return Err(vec![FieldError::new(path, "must be an array of strings")]);
    };
    let strings: Vec<String> = items
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if strings.len() == items.len() {
        return Tags::parse(&strings, path);
    }
    // Some elements are not strings: report each bad element at its own index.
    let mut errors = Vec::new();
    if items.len() > MAX_TAGS {
        errors.push(FieldError::new(
            path,
            format!("must have at most {MAX_TAGS} tags"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let message = match item.as_str() {
            Some(s) => Tag::parse(s).err(),
            None => Some("must be a string".to_owned()),
        };
        if let Some(message) = message {
            errors.push(FieldError::new(format!("{path}[{i}]"), message));
        }
    }
    Err(errors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn fields_of(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn current() -> VideoFields {
        NewVideo::parse(
            &json!({"title": "T", "video_url": "https://e.com/v.mp4", "thumbnail_url": "https://e.com/t.jpg",
                    "duration_seconds": 10, "published_at": "2026-01-01T00:00:00Z"}),
            "",
            now(),
        )
        .unwrap()
        .into_fields()
    }

    #[test]
    fn create_defaults() {
        let v = NewVideo::parse(
            &json!({"title": " Linen ", "video_url": "https://e.com/v.mp4"}),
            "",
            now(),
        )
        .unwrap()
        .into_fields();
        assert_eq!(v.title, "Linen");
        assert_eq!(v.description, "");
        assert_eq!(v.thumbnail_url, None);
        assert_eq!(v.duration_seconds, None);
        assert!(v.tags.is_empty());
        assert_eq!(v.view_count, 0);
        assert_eq!(v.status, Status::Published);
        assert_eq!(v.published_at, None);
    }

    #[test]
    fn create_reports_every_failing_field() {
        let errors = NewVideo::parse(
            &json!({"title": 5, "duration_seconds": 1.5, "tags": ["a", "", 3, "b"], "view_count": -1,
                    "status": "live", "published_at": "2999-01-01T00:00:00Z", "thumbnail_url": "/t.jpg",
                    "description": null, "id": "x", "version": 3, "titel": "typo"}),
            "",
            now(),
        )
        .unwrap_err();
        let mut fields = fields_of(&errors);
        fields.sort_unstable();
        assert_eq!(
            fields,
            vec![
                "description",
                "duration_seconds",
                "id",
                "published_at",
                "status",
                "tags[1]",
                "tags[2]",
                "thumbnail_url",
                "titel",
                "title",
                "version",
                "video_url",
                "view_count"
            ]
        );
        let video_url = errors.iter().find(|e| e.field == "video_url").unwrap();
        assert_eq!(video_url.message, "is required");
    }

    #[test]
    fn wrong_types_are_named() {
        for (body, field, message) in [
            (json!({"title": 5}), "title", "must be a string"),
            (
                json!({"duration_seconds": 1.5}),
                "duration_seconds",
                "must be an integer",
            ),
            (
                json!({"duration_seconds": "10"}),
                "duration_seconds",
                "must be an integer",
            ),
            (
                json!({"view_count": 18446744073709551615_u64}),
                "view_count",
                "is too large",
            ),
            (
                json!({"tags": "summer"}),
                "tags",
                "must be an array of strings",
            ),
            (
                json!({"tags": ["a", "b", "c", true]}),
                "tags[3]",
                "must be a string",
            ),
            (
                json!({"published_at": 5}),
                "published_at",
                "must be a string (an RFC 3339 date-time)",
            ),
        ] {
            let errors = VideoPatch::parse(&body, now()).unwrap_err();
            assert_eq!(errors, vec![FieldError::new(field, message)], "{body}");
        }
    }

    #[test]
    fn whole_floats_are_integers() {
        let patch = VideoPatch::parse(
            &json!({"view_count": 4705.0, "duration_seconds": 95.0}),
            now(),
        )
        .unwrap();
        assert_eq!(patch.view_count, Some(ViewCount::parse(4705).unwrap()));
        assert_eq!(patch.duration, Some(Some(Duration::parse(95).unwrap())));
        for (body, message) in [
            (json!({"view_count": 1.5}), "must be an integer"),
            (json!({"view_count": 1e19}), "is too large"),
            (json!({"view_count": -1.0}), "must be an integer >= 0"),
        ] {
            let errors = VideoPatch::parse(&body, now()).unwrap_err();
            assert_eq!(
                errors,
                vec![FieldError::new("view_count", message)],
                "{body}"
            );
        }
    }

    #[test]
    fn nul_characters_are_refused() {
        let body =
            json!({"title": "a\u{0}b", "description": "\u{0}", "video_url": "https://e.com/\u{0}"});
        let errors = NewVideo::parse(&body, "", now()).unwrap_err();
        assert_eq!(
            fields_of(&errors),
            vec!["title", "description", "video_url"]
        );
    }

    #[test]
    fn non_objects_are_refused() {
        for body in [json!([]), json!("x"), json!(null), json!(1)] {
            assert_eq!(
                fields_of(&NewVideo::parse(&body, "", now()).unwrap_err()),
                vec![""]
            );
            assert_eq!(
                fields_of(&VideoPatch::parse(&body, now()).unwrap_err()),
                vec![""]
            );
            assert_eq!(fields_of(&parse_batch(&body, now()).unwrap_err()), vec![""]);
        }
    }

    #[test]
    fn batch_paths_name_the_element() {
        let body = json!({"videos": [
            {"title": "ok", "video_url": "https://e.com/1"},
            {"title": "", "video_url": "https://e.com/2"},
            "nope",
            {"title": "ok", "video_url": "https://e.com/3", "tags": ["x", 1]},
        ]});
        let errors = parse_batch(&body, now()).unwrap_err();
        assert_eq!(
            fields_of(&errors),
            vec!["videos[1].title", "videos[2]", "videos[3].tags[1]"]
        );
    }

    #[test]
    fn batch_shape() {
        let one = json!({"title": "t", "video_url": "https://e.com/1"});
        assert_eq!(
            parse_batch(&json!({"videos": [one.clone()]}), now())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            fields_of(&parse_batch(&json!({"videos": []}), now()).unwrap_err()),
            vec!["videos"]
        );
        assert_eq!(
            fields_of(&parse_batch(&json!({}), now()).unwrap_err()),
            vec!["videos"]
        );
        assert_eq!(
            fields_of(&parse_batch(&json!({"videos": {}}), now()).unwrap_err()),
            vec!["videos"]
        );
        let extra = json!({"videos": [one.clone()], "dry_run": true});
        assert_eq!(
            fields_of(&parse_batch(&extra, now()).unwrap_err()),
            vec!["dry_run"]
        );
        let many = json!({"videos": vec![one.clone(); MAX_BATCH + 1]});
        assert_eq!(
            fields_of(&parse_batch(&many, now()).unwrap_err()),
            vec!["videos"]
        );
        assert_eq!(
            parse_batch(&json!({"videos": vec![one; MAX_BATCH]}), now())
                .unwrap()
                .len(),
            MAX_BATCH
        );
    }

    #[test]
    fn patch_null_clears_nullable_and_refuses_required() {
        let patch = VideoPatch::parse(
            &json!({"thumbnail_url": null, "duration_seconds": null}),
            now(),
        )
        .unwrap();
        let after = patch.apply(current()).unwrap();
        assert_eq!(after.thumbnail_url, None);
        assert_eq!(after.duration_seconds, None);
        assert_eq!(after.title, "T");

        for field in [
            "title",
            "video_url",
            "description",
            "tags",
            "view_count",
            "status",
        ] {
            let errors = VideoPatch::parse(&json!({ field: null }), now()).unwrap_err();
            assert_eq!(fields_of(&errors), vec![field]);
        }
    }

    #[test]
    fn patch_published_at_rules() {
        // A published video keeps its date when made a draft.
        let draft = VideoPatch::parse(&json!({"status": "draft"}), now())
            .unwrap()
            .apply(current())
            .unwrap();
        assert_eq!(draft.status, Status::Draft);
        assert!(draft.published_at.is_some());
        // The date can be cleared only on what is a draft afterwards.
        let cleared = VideoPatch::parse(&json!({"status": "draft", "published_at": null}), now())
            .unwrap()
            .apply(current())
            .unwrap();
        assert_eq!(cleared.published_at, None);
        let refused = VideoPatch::parse(&json!({"published_at": null}), now())
            .unwrap()
            .apply(current())
            .unwrap_err();
        assert_eq!(fields_of(&refused), vec!["published_at"]);
        // A draft without a date that becomes published is left for the writer to date.
        let published = VideoPatch::parse(&json!({"status": "published"}), now())
            .unwrap()
            .apply(cleared)
            .unwrap();
        assert_eq!(
            (published.status, published.published_at),
            (Status::Published, None)
        );
    }

    #[test]
    fn empty_patch_changes_nothing() {
        let patch = VideoPatch::parse(&json!({}), now()).unwrap();
        assert_eq!(patch, VideoPatch::default());
        assert_eq!(patch.apply(current()).unwrap(), current());
    }
}
