//! The request bodies' schemas, built from the constants the validation
//! uses, and the validated types that carry them into the documents.

use std::borrow::Cow;

use serde_json::{json, Map, Value};
use utoipa::{
    openapi::{RefOr, Schema},
    PartialSchema, ToSchema,
};

use super::patterns::{
    http_url_pattern, past_date_time_pattern, tag_pattern, trimmed_text_pattern,
};
use crate::domain::{
    Description, Duration, HttpUrl, NewVideo, Status, Title, VideoPatch, MAX_BATCH, MAX_TAGS,
    MAX_TAG_CHARS, WRITABLE_FIELDS,
};

/// Text without NUL, at most `max` characters: a description.
fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": r"^[^\u0000]*$"})
}

fn title() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "pattern": trimmed_text_pattern(Title::MAX_CHARS),
        "description": format!("1..={} characters after trimming.", Title::MAX_CHARS),
    })
}

fn http_url(nullable: bool) -> Value {
    json!({
        "type": if nullable { json!(["string", "null"]) } else { json!("string") },
        "format": "uri",
        "maxLength": HttpUrl::MAX_CHARS,
        "pattern": http_url_pattern(),
        "description": format!("An absolute http or https URL, at most {} characters.", HttpUrl::MAX_CHARS),
    })
}

pub(super) fn tag() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "pattern": tag_pattern(),
        "description": format!(
            "Trimmed and lower-cased; then 1..={MAX_TAG_CHARS} characters, no control characters."
        ),
    })
}

pub(super) fn enum_of(values: impl IntoIterator<Item = &'static str>) -> Value {
    json!({"type": "string", "enum": values.into_iter().collect::<Vec<_>>()})
}

/// The schema of each writable field; `create` adds the defaults.
fn field_schemas(create: bool) -> Map<String, Value> {
    let default = |mut schema: Value, value: Value| {
        if create {
            schema["default"] = value;
        }
        schema
    };
    let fields = [
        ("title", title()),
        (
            "description",
            default(text(Description::MAX_CHARS), json!("")),
        ),
        ("video_url", http_url(false)),
        ("thumbnail_url", http_url(true)),
        (
            "duration_seconds",
            json!({"type": ["integer", "null"], "minimum": 0, "maximum": Duration::MAX}),
        ),
        (
            "tags",
            default(
                json!({
                    "type": "array", "maxItems": MAX_TAGS, "items": tag(),
                    "description": "Duplicates (after lower-casing) are dropped, the first kept.",
                }),
                json!([]),
            ),
        ),
        (
            "view_count",
            default(
                json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
                json!(0),
            ),
        ),
        (
            "status",
            default(
                enum_of(Status::ALL.map(Status::as_str)),
                json!(Status::Published.as_str()),
            ),
        ),
        (
            "published_at",
            json!({
                "type": ["string", "null"],
                "format": "date-time",
                "pattern": past_date_time_pattern(),
                "description": "RFC 3339, not in the future. A video published without one gets the time of the write.",
            }),
        ),
    ];
    debug_assert!(fields
        .iter()
        .map(|(n, _)| *n)
        .eq(WRITABLE_FIELDS.iter().copied()));
    fields
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect()
}

/// `POST /v1/videos` and one element of a batch.
pub fn video_create_schema() -> Value {
    json!({
        "type": "object",
        "description": "A video to create. Unknown and read-only fields (`id`, `created_at`, `updated_at`, `version`) are refused.",
        "properties": field_schemas(true),
        "required": ["title", "video_url"],
        "additionalProperties": false,
    })
}

/// `PATCH /v1/videos/{id}`: a JSON merge patch. `null` clears only the
/// nullable fields (`published_at` only on a video that is a draft afterwards).
pub fn video_patch_schema() -> Value {
    json!({
        "type": "object",
        "description": "A JSON merge patch (RFC 7396): present fields replace, `null` clears `thumbnail_url`, `duration_seconds` or (on what is a draft afterwards) `published_at`; `null` for another field is refused.",
        "properties": field_schemas(false),
        "additionalProperties": false,
        // Clearing the date needs a draft afterwards; said here as: with
        // `status: draft` in the same patch (a draft's patch may omit it,
        // which no schema of the request alone can know).
        "if": {"properties": {"published_at": {"type": "null"}}, "required": ["published_at"]},
        "then": {
            "properties": {"status": {"const": Status::Draft.as_str()}},
            "required": ["status"],
        },
    })
}

/// `POST /v1/videos/batch`.
pub fn batch_create_schema(item: &Value) -> Value {
    json!({
        "type": "object",
        "description": format!("1 to {MAX_BATCH} videos to create, all or none."),
        "properties": {"videos": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": item}},
        "required": ["videos"],
        "additionalProperties": false,
    })
}

/// A schema built as JSON, as utoipa's types hold it. They have no
/// `if`/`then`: the served document sets the patch's from the JSON itself.
pub fn schema_of(value: Value) -> RefOr<Schema> {
    serde_json::from_value(value).unwrap_or_else(|error| {
        tracing::error!(%error, "a request-body schema does not deserialize");
        RefOr::T(Schema::default())
    })
}

// The request bodies are validated from raw JSON field by field (see
// `crate::domain`), so the validated types carry the schemas built above,
// under the names the documents have always used.

impl PartialSchema for NewVideo {
    fn schema() -> RefOr<Schema> {
        schema_of(video_create_schema())
    }
}

/// A video to create (`POST /v1/videos`).
impl ToSchema for NewVideo {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("VideoCreate")
    }
}

impl PartialSchema for VideoPatch {
    fn schema() -> RefOr<Schema> {
        schema_of(video_patch_schema())
    }
}

/// A JSON merge patch of a video (`PATCH /v1/videos/{id}`).
impl ToSchema for VideoPatch {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("VideoMergePatch")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn create_schema_lists_exactly_the_writable_fields() {
        let schema = video_create_schema();
        let mut names: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let mut expected = WRITABLE_FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected);
        assert_eq!(schema["additionalProperties"], json!(false));
    }
}
