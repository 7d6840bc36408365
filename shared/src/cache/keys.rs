use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use uuid::Uuid;

use crate::feed::{FeedQuery, Position};

/// A set of cache entries purged together.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every page of the whole feed, both sorts.
    Feed,
    /// Every page of one tag's feed, both sorts.
    Tag(String),
    /// One video's detail.
    Video(Uuid),
}

/// Tags may hold any printable character; keys keep only these as they are,
/// so `:` `{` `}` in a tag can neither split a key nor change its hash slot.
const TAG_KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Feed => f.write_str("feed"),
            Self::Tag(tag) => write!(f, "tag:{}", utf8_percent_encode(tag, TAG_KEEP)),
            Self::Video(id) => write!(f, "video:{}", id.simple()),
        }
    }
}

impl Scope {
    /// The scope a public feed query's pages belong to.
    pub fn of_feed(query: &FeedQuery) -> Self {
        query
            .tag
            .as_ref()
            .map_or(Self::Feed, |t| Self::Tag(t.as_str().to_owned()))
    }
}

/// The normalized request within a scope for a feed query.
pub fn request_key(query: &FeedQuery) -> String {
    match &query.position {
        Position::Page(page) => format!("{}:{}:p{page}", query.sort.as_str(), query.page_size),
        Position::After(position) => format!(
            "{}:{}:c{}",
            query.sort.as_str(),
            query.page_size,
            // Re-encoded from the parsed cursor: one position, one key.
            query.cursor_after(position.clone()).encode()
        ),
    }
}

/// The normalized request of a detail entry within its video scope.
pub const DETAIL_REQUEST: &str = "detail";

/// The key namespace of one deployment (or one test): every key starts with
/// its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// A prefix may not contain braces: they would become the hash tag.
    pub fn new(prefix: &str) -> Result<Self, String> {
        if prefix.contains(['{', '}']) {
            return Err("the cache key prefix must not contain `{` or `}`".into());
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    /// The key prefixes a client tracks to hear of every generation and
    /// epoch change (`CLIENT TRACKING ... BCAST PREFIX`): `{prefix}{`, which
    /// also covers entry keys, and the epoch key.
    pub fn tracking_prefixes(&self) -> [String; 2] {
        [format!("{}{{", self.prefix), self.epoch()]
    }

    pub fn generation(&self, scope: &Scope) -> String {
        format!("{}{{{scope}}}:gen", self.prefix)
    }

    /// The entry key up to the generation: `<this><generation>:<request>` is the
    /// entry's key.
    pub fn entry_prefix(&self, scope: &Scope, epoch: &str) -> String {
        format!("{}{{{scope}}}:e:{epoch}:", self.prefix)
    }

    pub fn entry(&self, scope: &Scope, epoch: &str, generation: &str, request: &str) -> String {
        format!("{}{generation}:{request}", self.entry_prefix(scope, epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let keys = KeySpace::new("vf:").unwrap();
        assert_eq!(keys.epoch(), "vf:epoch");
        assert_eq!(keys.generation(&Scope::Feed), "vf:{feed}:gen");
        assert_eq!(
            keys.generation(&Scope::Tag("a b:{c}".into())),
            "vf:{tag:a%20b%3A%7Bc%7D}:gen"
        );
        assert_eq!(
            keys.entry(&Scope::Feed, "E", "G", "newest:20:p1"),
            "vf:{feed}:e:E:G:newest:20:p1"
        );
        assert!(KeySpace::new("a{b").is_err());
    }

    #[test]
    fn unknown_parameters_share_a_key() {
        let a = FeedQuery::parse_public(Some("page=2&x=1")).unwrap();
        let b = FeedQuery::parse_public(Some("sort=newest&page=2&page_size=20")).unwrap();
        assert_eq!(request_key(&a), request_key(&b));
        assert_eq!(Scope::of_feed(&a), Scope::Feed);
        let t = FeedQuery::parse_public(Some("tag=Summer")).unwrap();
        assert_eq!(Scope::of_feed(&t), Scope::Tag("summer".into()));
    }
}
