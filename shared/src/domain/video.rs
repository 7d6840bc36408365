use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Published,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "draft" => Ok(Self::Draft),
            "published" => Ok(Self::Published),
            _ => Err("must be `draft` or `published`".into()),
        }
    }
}

/// The video resource, as both APIs return it. Field names are the column
/// names of the `videos` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Video {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub video_url: String,
    pub thumbnail_url: Option<String>,
    pub duration_seconds: Option<i32>,
    pub tags: Vec<String>,
    pub view_count: i64,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
