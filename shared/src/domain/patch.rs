//! A JSON merge patch of a video (`PATCH /v1/videos/{id}`), validated from
//! raw JSON field by field like a create, and applied to the stored fields.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    json_fields::{integer, published_at, tags, text, Fields},
    Description, Duration, HttpUrl, PublishedAt, Status, Tags, Title, VideoFields, ViewCount,
};
use crate::FieldError;

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{
        create::tests::{fields_of, now},
        NewVideo,
    };

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
