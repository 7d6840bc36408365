//! The OpenAPI document (served at `/openapi.json`): the paths come from the
//! handlers' annotations; these are the request-body schemas, which are
//! validated from raw JSON (see `shared::domain`) and so have no Rust struct.

use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "write-api", description = "Admin CRUD over videos. Every /v1 route needs `Authorization: Bearer <token>`."),
    modifiers(&BearerAuth),
    tags((name = "videos", description = "The video resource"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// A video to create. Unknown and read-only fields (`id`, `created_at`,
/// `updated_at`, `version`) are refused.
#[allow(dead_code)] // A schema only: bodies are validated from raw JSON.
#[derive(ToSchema)]
pub struct VideoCreate {
    /// 1..=200 characters after trimming.
    title: String,
    /// At most 5000 characters.
    #[schema(default = "")]
    description: Option<String>,
    /// Absolute http(s) URL, at most 2048 characters.
    video_url: String,
    thumbnail_url: Option<String>,
    /// 0..=86400.
    duration_seconds: Option<i32>,
    /// At most 20; trimmed, lower-cased, 1..=50 characters; duplicates dropped.
    tags: Option<Vec<String>>,
    #[schema(default = 0, minimum = 0)]
    view_count: Option<i64>,
    /// `draft` or `published` (default).
    #[schema(default = "published")]
    status: Option<String>,
    /// RFC 3339, not in the future; now when published without one.
    published_at: Option<String>,
}

/// A JSON merge patch: fields present replace, `null` clears `thumbnail_url`,
/// `duration_seconds` or (on a draft) `published_at`; `null` for any other
/// field is refused.
#[allow(dead_code)] // A schema only: bodies are validated from raw JSON.
#[derive(ToSchema)]
pub struct VideoPatchDoc {
    title: Option<String>,
    description: Option<String>,
    video_url: Option<String>,
    thumbnail_url: Option<String>,
    duration_seconds: Option<i32>,
    tags: Option<Vec<String>>,
    view_count: Option<i64>,
    status: Option<String>,
    published_at: Option<String>,
}

/// 1 to 1000 videos to create, all or none.
#[allow(dead_code)] // A schema only: bodies are validated from raw JSON.
#[derive(ToSchema)]
pub struct BatchCreate {
    videos: Vec<VideoCreate>,
}
