//! The video resource and the rules of its fields. Each field type is parsed
//! once, at the edge, and cannot hold an invalid value afterwards.

mod create;
mod fields;
mod json_fields;
mod patch;
mod row;
mod tag;
mod video;
mod writable;

pub use create::{parse_batch, NewVideo, MAX_BATCH};
pub use fields::{Description, Duration, HttpUrl, PublishedAt, Title, ViewCount};
pub use patch::VideoPatch;
pub use tag::{Tag, Tags, MAX_TAGS, MAX_TAG_CHARS};
pub use video::{Status, Video};
pub use writable::{VideoFields, WRITABLE_FIELDS};
