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
        self.write_key(f)
    }
}

impl Scope {
    /// Writes the scope's part of a key with plain string writes: keys are
    /// built on every cache hit, where `format!`'s machinery cost more than
    /// the rest of the key building (bench/callgrind).
    fn write_key(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Self::Feed => out.write_str("feed"),
            Self::Tag(tag) => {
                out.write_str("tag:")?;
                utf8_percent_encode(tag, TAG_KEEP).try_for_each(|part| out.write_str(part))
            }
            Self::Video(id) => {
                out.write_str("video:")?;
                out.write_str(id.simple().encode_lower(&mut Uuid::encode_buffer()))
            }
        }
    }

    /// The scope a public feed query's pages belong to.
    pub fn of_feed(query: &FeedQuery) -> Self {
        query
            .tag
            .as_ref()
            .map_or(Self::Feed, |t| Self::Tag(t.as_str().to_owned()))
    }
}

/// The normalized request within a scope for a feed query:
/// `<sort>:<page size>:p<page>` or `<sort>:<page size>:c<cursor>`.
pub fn request_key(query: &FeedQuery) -> String {
    let mut key = String::with_capacity(32);
    key.push_str(query.sort.as_str());
    key.push(':');
    key.push_str(itoa::Buffer::new().format(query.page_size));
    match &query.position {
        Position::Page(page) => {
            key.push_str(":p");
            key.push_str(itoa::Buffer::new().format(*page));
        }
        Position::After(position) => {
            key.push_str(":c");
            // Re-encoded from the parsed cursor: one position, one key.
            key.push_str(&query.cursor_after(position.clone()).encode());
        }
    }
    key
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
        // Sized for the common scopes and the request the L1 key appends.
        let mut key = String::with_capacity(self.prefix.len() + 64);
        key.push_str(&self.prefix);
        key.push('{');
        // Writing to a String cannot fail.
        let _ = scope.write_key(&mut key);
        key.push_str("}:gen");
        key
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
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            keys.generation(&Scope::Video(id)),
            "vf:{video:0123456789abcdef0123456789abcdef}:gen"
        );
        assert_eq!(
            Scope::Video(id).to_string(),
            "video:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            keys.entry(&Scope::Feed, "E", "G", "newest:20:p1"),
            "vf:{feed}:e:E:G:newest:20:p1"
        );
        assert!(KeySpace::new("a{b").is_err());
    }

    #[test]
    fn request_key_layout() {
        let page = FeedQuery::parse_public(Some("sort=popular&page=37&page_size=50")).unwrap();
        assert_eq!(request_key(&page), "popular:50:p37");
        let encoded = page
            .cursor_after(crate::feed::CursorPosition {
                view_count: 7,
                published_at: Some(chrono::DateTime::UNIX_EPOCH),
                id: Uuid::nil(),
            })
            .encode();
        let cursor =
            FeedQuery::parse_public(Some(&format!("cursor={encoded}&page_size=50"))).unwrap();
        assert_eq!(request_key(&cursor), format!("popular:50:c{encoded}"));
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
