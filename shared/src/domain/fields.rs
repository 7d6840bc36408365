use chrono::{DateTime, Utc};

/// 1..=200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let title = raw.trim();
        match title.chars().count() {
            0 => Err("must not be empty".into()),
            n if n > Self::MAX_CHARS => {
                Err(format!("must be at most {} characters", Self::MAX_CHARS))
            }
            _ => Ok(Self(title.to_owned())),
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// At most 5000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 5000;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An absolute `http` or `https` URL with a host, at most 2048 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub const MAX_CHARS: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        let url = url::Url::parse(raw).map_err(|e| format!("must be an absolute URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must have a host".into());
        }
        // Stored as given, so a client reads back exactly what it wrote.
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Whole seconds, 0..=86400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(i32);

impl Duration {
    pub const MAX: i32 = 86_400;

    pub fn parse(raw: i64) -> Result<Self, String> {
        match i32::try_from(raw) {
            Ok(v) if (0..=Self::MAX).contains(&v) => Ok(Self(v)),
            _ => Err(format!("must be an integer from 0 to {}", Self::MAX)),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// A view count: an integer >= 0 that fits Postgres' bigint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewCount(i64);

impl ViewCount {
    pub fn parse(raw: i64) -> Result<Self, String> {
        if raw < 0 {
            return Err("must be an integer >= 0".into());
        }
        Ok(Self(raw))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// An RFC 3339 time that is not in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedAt(DateTime<Utc>);

impl PublishedAt {
    pub fn parse(raw: &str, now: DateTime<Utc>) -> Result<Self, String> {
        let at = DateTime::parse_from_rfc3339(raw)
            .map_err(|_| "must be an RFC 3339 date-time, e.g. 2026-11-23T10:00:00Z".to_owned())?
            .with_timezone(&Utc);
        if at > now {
            return Err("must not be in the future".into());
        }
        Ok(Self(at))
    }

    pub fn get(self) -> DateTime<Utc> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_trims_and_bounds() {
        assert_eq!(Title::parse("  Linen  ").unwrap().into_inner(), "Linen");
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"x".repeat(200)).is_ok());
        assert!(Title::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn description_bounds() {
        assert!(Description::parse(&"x".repeat(5000)).is_ok());
        assert!(Description::parse(&"x".repeat(5001)).is_err());
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert!(HttpUrl::parse("https://cdn.example.com/v/1.mp4").is_ok());
        assert!(HttpUrl::parse("http://cdn.example.com").is_ok());
        assert!(HttpUrl::parse("/v/1.mp4").is_err());
        assert!(HttpUrl::parse("ftp://cdn.example.com/v").is_err());
        assert!(HttpUrl::parse("javascript:alert(1)").is_err());
        assert!(HttpUrl::parse(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }

    #[test]
    fn duration_bounds() {
        assert!(Duration::parse(0).is_ok());
        assert!(Duration::parse(86_400).is_ok());
        assert!(Duration::parse(86_401).is_err());
        assert!(Duration::parse(-1).is_err());
        assert!(Duration::parse(i64::MAX).is_err());
    }

    #[test]
    fn view_count_non_negative() {
        assert!(ViewCount::parse(0).is_ok());
        assert!(ViewCount::parse(-1).is_err());
    }

    #[test]
    fn published_at_rfc3339_not_future() {
        let now = Utc::now();
        assert!(PublishedAt::parse("2026-01-01T00:00:00Z", now).is_ok());
        assert!(PublishedAt::parse("2026-01-01T00:00:00+02:00", now).is_ok());
        assert!(PublishedAt::parse("2026-01-01", now).is_err());
        assert!(PublishedAt::parse("2999-01-01T00:00:00Z", now).is_err());
    }
}
