//! The fields a client may write, declared once: their names (what the
//! parsers accept and the OpenAPI schema lists), their stored values
//! ([`VideoFields`], whose JSON is the batch insert's record and what the
//! console compares) and how a stored video's are read.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Status, Video};

/// The fields a video has that no client writes.
pub(super) const READ_ONLY: &[&str] = &["id", "created_at", "updated_at", "version"];

macro_rules! writable_fields {
    ($($field:ident: $ty:ty,)+) => {
        /// The fields a client may write, in the resource's order.
        pub const WRITABLE_FIELDS: &[&str] = &[$(stringify!($field)),+];

        /// The writable state of a video, as it is stored. A published video
        /// whose `published_at` is `None` here gets the time of the writing
        /// transaction.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        pub struct VideoFields {
            $(pub $field: $ty,)+
        }

        impl Video {
            /// The video's writable fields.
            #[allow(clippy::clone_on_copy)]
            pub fn writable_fields(&self) -> VideoFields {
                VideoFields {
                    $($field: self.$field.clone(),)+
                }
            }
        }
    };
}

writable_fields! {
    title: String,
    description: String,
    video_url: String,
    thumbnail_url: Option<String>,
    duration_seconds: Option<i32>,
    tags: Vec<String>,
    view_count: i64,
    status: Status,
    published_at: Option<DateTime<Utc>>,
}
