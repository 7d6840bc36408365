//! The exact parts of both APIs' OpenAPI documents: the schemas of request
//! bodies and query parameters, and the headers and problem responses every
//! operation shares. They are built from the constants the validation uses
//! (`Title::MAX_CHARS`, `MAX_PAGE_SIZE`, `Sort::ALL`, ...), and the patterns
//! are checked against the parsers by their tests, so a document cannot
//! allow what a server refuses, nor the reverse.
//!
//! The handlers' `#[utoipa::path]` annotations give the operations; [`refine`]
//! then makes every known parameter and shared header exact on the rendered
//! document, so a parameter added to an annotation (say the admin `q`) gets its
//! schema here by name.

mod bodies;
mod document;
mod patterns;

pub use bodies::{batch_create_schema, schema_of, video_create_schema, video_patch_schema};
pub use document::{query_parameter_schema, refine};
pub use patterns::{http_url_pattern, past_date_time_pattern, tag_pattern, trimmed_text_pattern};
