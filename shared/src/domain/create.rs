//! A create (`POST /v1/videos`, one element of a batch), validated from raw
//! JSON field by field. Deserializing into a struct would stop at the first
//! problem and describe it in serde's words; admins want every failing field
//! at once, named by its path (`title`, `tags[3]`, `videos[2].video_url`),
//! including wrong JSON types, unknown fields (typos) and read-only fields.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    json_fields::{integer, published_at, tags, text, Fields},
    Description, Duration, HttpUrl, PublishedAt, Status, Tags, Title, VideoFields, ViewCount,
};
use crate::FieldError;

/// Videos in one batch create.
pub const MAX_BATCH: usize = 1000;

/// A valid create (`POST /v1/videos`, one element of a batch): the fields to
/// store, each checked by its type's parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVideo(VideoFields);

impl NewVideo {
    /// Validates one create. `prefix` is the path of the object in the request
    /// (`""` for a whole body, `videos[3]` in a batch); `now` bounds `published_at`.
    pub fn parse(value: &Value, prefix: &str, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::of(value, prefix, now)?;
        match Self::read(&mut f) {
            Some(video) if f.errors.is_empty() => Ok(video),
            _ => Err(f.errors),
        }
    }

    /// Reads every field, recording the errors of each, before giving up on
    /// any: `None` when one is missing or invalid.
    fn read(f: &mut Fields<'_>) -> Option<Self> {
        let title = f.get("title", text(Title::parse)).required(f, "title");
        let description = f.get("description", text(Description::parse)).or_default(
            f,
            "description",
            Description::default,
        );
        let video_url = f
            .get("video_url", text(HttpUrl::parse))
            .required(f, "video_url");
        let thumbnail_url = f.get("thumbnail_url", text(HttpUrl::parse)).nullable();
        let duration = f
            .get("duration_seconds", integer(Duration::parse))
            .nullable();
        let tags = f.get("tags", tags).or_default(f, "tags", Tags::default);
        let view_count = f.get("view_count", integer(ViewCount::parse)).or_default(
            f,
            "view_count",
            ViewCount::default,
        );
        let status = f
            .get("status", text(Status::parse))
            .or_default(f, "status", || Status::Published);
        let published_at = f.get("published_at", published_at).nullable();
        Some(Self(VideoFields {
            title: title?.into_inner(),
            description: description?.into_inner(),
            video_url: video_url?.into_inner(),
            thumbnail_url: thumbnail_url?.map(HttpUrl::into_inner),
            duration_seconds: duration?.map(Duration::get),
            tags: tags?.to_strings(),
            view_count: view_count?.get(),
            status: status?,
            published_at: published_at?.map(PublishedAt::get),
        }))
    }

    pub fn into_fields(self) -> VideoFields {
        self.0
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::VideoPatch;

    pub(in crate::domain) fn now() -> DateTime<Utc> {
        Utc::now()
    }

    pub(in crate::domain) fn fields_of(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
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
}
