//! The video resource and the rules of its fields. Each field type is parsed
//! once, at the edge, and cannot hold an invalid value afterwards.

mod fields;
mod input;
mod tag;
mod video;

pub use fields::{Description, Duration, HttpUrl, PublishedAt, Title, ViewCount};
pub use input::{parse_batch, NewVideo, VideoFields, VideoPatch, MAX_BATCH, WRITABLE_FIELDS};
pub use tag::{Tag, Tags, MAX_TAGS, MAX_TAG_CHARS};
pub use video::{Status, Video};
