//! The exact parts of both APIs' OpenAPI documents: the schemas of request
//! bodies and query parameters, and the headers and problem responses every
//! operation shares. They are built from the constants the validation uses
//! (`Title::MAX_CHARS`, `MAX_PAGE_SIZE`, `Sort::ALL`, ...), and the patterns
//! are checked against the parsers by the tests below, so a document cannot
//! allow what a server refuses, nor the reverse.
//!
//! The handlers' `#[utoipa::path]` annotations give the operations; [`refine`]
//! then makes every known parameter and shared header exact on the rendered
//! document, so a parameter added to an annotation (say the admin `q`) gets its
//! schema here by name.

use std::borrow::Cow;

use chrono::{Datelike, Utc};
use serde_json::{json, Map, Value};
use utoipa::{
    openapi::{RefOr, Schema},
    PartialSchema, ToSchema,
};

use crate::{
    domain::{
        Description, Duration, HttpUrl, NewVideo, Status, Title, VideoPatch, MAX_BATCH, MAX_TAGS,
        MAX_TAG_CHARS, WRITABLE_FIELDS,
    },
    feed::{Sort, StatusFilter, MAX_PAGE_SIZE},
    problem::{CONTENT_TYPE as PROBLEM, RETRY_AFTER_SECONDS},
};

/// Characters of the admin search `q`.
pub const MAX_SEARCH_CHARS: usize = 200;

/// What Rust's `str::trim` removes (Unicode `White_Space`), as a regex class
/// body. Spelled out because `\s` means other sets in other regex dialects.
const WS: &str = r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (`char::is_control`, category Cc).
const CC: &str = r"\u0000-\u001f\u007f-\u009f";

/// End of input in every dialect: `$` also matches before a final newline in
/// some (Python's), and the value then carries a newline the server refuses.
const END: &str = r"(?![\s\S])";

/// Text that is 1..=`max` characters after trimming and holds no NUL
/// (Postgres text cannot): a title.
pub fn trimmed_text_pattern(max: usize) -> String {
    format!(
        r"^[{WS}]*[^{WS}\u0000](?:[^\u0000]{{0,{inner}}}[^{WS}\u0000])?[{WS}]*$",
        inner = max - 2
    )
}

/// A tag: 1..=50 characters after trimming, no control characters.
/// (Lower-casing `İ` gives two characters; a 50-character tag holding one is
/// refused, the one case this pattern cannot count.)
pub fn tag_pattern() -> String {
    format!(
        r"^[{WS}]*[^{WS}{CC}](?:[^{CC}]{{0,{inner}}}[^{WS}{CC}])?[{WS}]*$",
        inner = MAX_TAG_CHARS - 2
    )
}

/// Characters of a host name label the URL parser accepts as they are.
const LABEL: &str = r"A-Za-z0-9!$&'()*+,;=_~-";

/// An absolute http(s) URL with a registered-name host. The last label starts
/// with a non-digit, so the host is never read as an IPv4 address; a path,
/// query or fragment may hold anything but controls and spaces (the parser
/// percent-encodes the rest). Stricter than the parser (no IP literals, no
/// user info), never looser.
pub fn http_url_pattern() -> String {
    format!(
        r"^[hH][tT][tT][pP][sS]?://(?:[{LABEL}]+\.)*[A-Za-z!$&'()*+,;=_~-][{LABEL}]*(?::[0-9]{{0,4}})?(?:[/?#][^\u0000-\u0020\u007f]*)?$"
    )
}

/// An RFC 3339 date-time with a year before the current one, so never in the
/// future (the server refuses those) whatever the offset. February 29th is
/// left out rather than spelling out leap years.
pub fn past_date_time_pattern() -> String {
    // A day back: the latest time this allows, 23:59 behind UTC, is still past.
    let last_year = (Utc::now() - chrono::Duration::days(1)).year() - 1;
    let recent: Vec<String> = (2000..=last_year).map(|y| y.to_string()).collect();
    format!(
        concat!(
            r"^(?:0(?:00[1-9]|0[1-9][0-9]|[1-9][0-9]{{2}})|1[0-9]{{3}}|{recent})-",
            r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))",
            r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,9}})?",
            r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]){END}"
        ),
        recent = recent.join("|"),
        END = END,
    )
}

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

fn tag() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "pattern": tag_pattern(),
        "description": format!(
            "Trimmed and lower-cased; then 1..={MAX_TAG_CHARS} characters, no control characters."
        ),
    })
}

fn enum_of(values: impl IntoIterator<Item = &'static str>) -> Value {
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

/// The schema of a feed or listing query parameter, by name.
pub fn query_parameter_schema(name: &str) -> Option<Value> {
    Some(match name {
        "page" => json!({"type": "integer", "minimum": 1, "maximum": u64::MAX, "default": 1}),
        "page_size" => json!({
            "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
            "default": crate::feed::DEFAULT_PAGE_SIZE,
        }),
        "sort" => {
            let mut schema = enum_of(Sort::ALL.map(Sort::as_str));
            schema["default"] = json!(Sort::Newest.as_str());
            schema
        }
        "status" => {
            let mut schema = enum_of(StatusFilter::ALL.map(StatusFilter::as_str));
            schema["default"] = json!(StatusFilter::All.as_str());
            schema
        }
        "tag" => tag(),
        // Opaque: only a `next_cursor` the server issued is accepted.
        "cursor" => json!({"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"}),
        "q" => json!({"type": "string", "minLength": 1, "maxLength": MAX_SEARCH_CHARS}),
        _ => return None,
    })
}

/// A response header's object.
fn header(schema: Value, description: &str) -> Value {
    json!({"schema": schema, "description": description})
}

/// Makes the rendered document exact where annotations cannot say enough:
/// every known query parameter gets its schema; problem responses get their
/// headers (`WWW-Authenticate` on 401, `Retry-After` on 503); `ETag` gets
/// its shape. Idempotent.
pub fn refine(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter(|op| op.get("responses").is_some())
    {
        if let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        {
            for parameter in parameters.iter_mut() {
                let name = parameter["name"].as_str().unwrap_or_default().to_owned();
                if parameter["in"] == "query" {
                    if let Some(schema) = query_parameter_schema(&name) {
                        parameter["schema"] = schema;
                    }
                    if name == "cursor" {
                        // What no schema can say.
                        parameter["description"] = json!(
                            "The `next_cursor` of a previous page, as issued (anything else: 400). \
                             Not with `page`, nor with a `sort` or `tag` other than the cursor's (400)."
                        );
                    }
                }
            }
        }
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let headers = response
                .as_object_mut()
                .map(|r| r.entry("headers").or_insert_with(|| json!({})));
            let Some(headers) = headers.and_then(Value::as_object_mut) else {
                continue;
            };
            match status.as_str() {
                "401" => {
                    headers.insert(
                        "WWW-Authenticate".into(),
                        header(
                            json!({"type": "string", "const": "Bearer"}),
                            "Always `Bearer`.",
                        ),
                    );
                }
                "503" => {
                    headers.insert(
                        "Retry-After".into(),
                        header(
                            json!({"type": "integer", "const": RETRY_AFTER_SECONDS}),
                            "Seconds to wait before retrying.",
                        ),
                    );
                }
                _ => {}
            }
            if let Some(etag) = headers.get_mut("ETag") {
                etag["schema"] = json!({"type": "string", "pattern": "^\"[^\"]*\"$"});
                etag["description"] = json!("Strong entity tag of the representation.");
            }
            if headers.is_empty() {
                if let Some(r) = response.as_object_mut() {
                    r.remove("headers");
                }
            }
        }
        // Every problem body is application/problem+json with the Problem schema.
        for response in responses.values_mut() {
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                if let Some(problem) = content.get_mut(PROBLEM) {
                    problem["schema"] = json!({"$ref": "#/components/schemas/Problem"});
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use regex::Regex;

    use super::*;
    use crate::domain::{PublishedAt, Tag};

    /// The pattern without its anchors, for proptest's generator (which has none).
    fn body(pattern: &str) -> String {
        pattern
            .trim_start_matches('^')
            .trim_end_matches('$')
            .trim_end_matches(END)
            .to_owned()
    }

    fn anchored(pattern: &str) -> Regex {
        Regex::new(&format!("^(?:{})$", body(pattern))).unwrap()
    }

    static TITLE: LazyLock<Regex> =
        LazyLock::new(|| anchored(&trimmed_text_pattern(Title::MAX_CHARS)));
    static TAG: LazyLock<Regex> = LazyLock::new(|| anchored(&tag_pattern()));

    /// Strings rich in what the rules are about: whitespace, controls, NUL,
    /// lengths around the limits.
    fn tricky(max: usize) -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("\u{85}".to_owned()),
            Just("\u{3000}".to_owned()),
            Just("\u{1c}".to_owned()),
            Just("\u{7}".to_owned()),
            Just("\u{0}".to_owned()),
            Just("\n".to_owned()),
            "[a-zA-Zé]{1,3}",
            "[a-z]{40,60}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..max).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn title_pattern_is_the_title_rule(s in prop_oneof![
            tricky(12),
            proptest::string::string_regex(&body(&trimmed_text_pattern(Title::MAX_CHARS))).unwrap(),
        ]) {
            prop_assert_eq!(TITLE.is_match(&s), Title::parse(&s).is_ok() && !s.contains('\0'), "{:?}", s);
        }

        #[test]
        fn tag_pattern_is_the_tag_rule(s in prop_oneof![
            tricky(4),
            proptest::string::string_regex(&body(&tag_pattern())).unwrap(),
        ]) {
            // Lower-casing `İ` makes two characters: the documented exception.
            prop_assume!(!s.contains('\u{130}'));
            prop_assert_eq!(TAG.is_match(&s), Tag::parse(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn every_url_the_pattern_allows_is_accepted(
            s in proptest::string::string_regex(&body(&http_url_pattern())).unwrap()
        ) {
            prop_assume!(s.chars().count() <= HttpUrl::MAX_CHARS);
            prop_assert!(HttpUrl::parse(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn every_date_time_the_pattern_allows_is_accepted(
            s in proptest::string::string_regex(&body(&past_date_time_pattern())).unwrap()
        ) {
            prop_assert!(PublishedAt::parse(&s, Utc::now()).is_ok(), "{:?}", s);
        }
    }

    #[test]
    fn urls_appended_to_stay_allowed_where_the_parser_accepts_them() {
        // A fuzzer's way of breaking a pattern: append a character.
        let re = anchored(&http_url_pattern());
        for url in [
            "https://a.example",
            "http://a.b/c",
            "https://x.y?q",
            "http://h:80",
        ] {
            assert!(re.is_match(url), "{url}");
            for extra in ["*", "-", "_", "~", "!", "9", "/", "'"] {
                let longer = format!("{url}{extra}");
                if HttpUrl::parse(&longer).is_ok() {
                    assert!(re.is_match(&longer), "{longer}");
                }
            }
        }
        for refused in [
            "ftp://a.b",
            "https://1.2",
            "/relative",
            "https://",
            "https://a b",
        ] {
            assert!(!re.is_match(refused), "{refused}");
        }
    }

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

    #[test]
    fn enums_parse_back() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
        }
        for name in ["sort", "status"] {
            let schema = query_parameter_schema(name).unwrap();
            for value in schema["enum"].as_array().unwrap() {
                let q = format!("{name}={}", value.as_str().unwrap());
                assert!(crate::feed::FeedQuery::parse_admin(Some(&q)).is_ok(), "{q}");
            }
        }
        for name in crate::feed::PUBLIC_PARAMETERS
            .iter()
            .chain(crate::feed::ADMIN_PARAMETERS)
        {
            assert!(query_parameter_schema(name).is_some(), "{name}");
            // The parser knows it: an empty value is refused.
            let q = format!("{name}=");
            assert!(
                crate::feed::FeedQuery::parse_admin(Some(&q)).is_err(),
                "{q}"
            );
        }
    }
}
