use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::listing::{Listing, Sort, StatusFilter};
use super::search::SearchText;
use crate::domain::Tag;

/// Where a page ends in a feed order: the sort key of its last item. Keyset
/// pagination seeks to the first item after it, so its cost does not depend on
/// depth, and items inserted or deleted elsewhere do not shift it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CursorPosition {
    /// Used by `popular` only (0 for `newest`).
    pub view_count: i64,
    /// `None` only for drafts in the admin listing.
    pub published_at: Option<DateTime<Utc>>,
    pub id: Uuid,
}

/// The opaque `next_cursor`: listing, sort, tag and position, base64url of a
/// small versioned binary record. Decoding accepts only what encoding makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub listing: Listing,
    pub sort: Sort,
    pub tag: Option<Tag>,
    /// The admin search (`q`), so that `next_cursor` alone continues it.
    pub search: Option<SearchText>,
    pub position: CursorPosition,
}

const VERSION: u8 = 1;
const HEADER: usize = 4 + 8 + 8 + 16;
/// Longest encoding this API issues: header, a 200-character search of up to
/// 4 bytes each with its length, and a tag.
const MAX_ENCODED: usize = 1400;

impl Cursor {
    pub fn encode(&self) -> String {
        let tag = self.tag.as_ref().map_or("", Tag::as_str);
        let mut bytes = Vec::with_capacity(HEADER + tag.len());
        bytes.push(VERSION);
        bytes.push(match self.listing {
            Listing::Public => 0,
            Listing::Admin(StatusFilter::All) => 1,
            Listing::Admin(StatusFilter::Draft) => 2,
            Listing::Admin(StatusFilter::Published) => 3,
        });
        bytes.push(match self.sort {
            Sort::Newest => 0,
            Sort::Popular => 1,
        });
        let flags = u8::from(self.position.published_at.is_some())
            | (u8::from(self.tag.is_some()) << 1)
            | (u8::from(self.search.is_some()) << 2);
        bytes.push(flags);
        bytes.extend_from_slice(&self.position.view_count.to_be_bytes());
        let micros = self
            .position
            .published_at
            .map_or(0, |t| t.timestamp_micros());
        bytes.extend_from_slice(&micros.to_be_bytes());
        bytes.extend_from_slice(self.position.id.as_bytes());
        if let Some(search) = &self.search {
            // At most 800 bytes (200 characters), so the length fits.
            let text = search.as_str().as_bytes();
            bytes.extend_from_slice(&(text.len() as u16).to_be_bytes());
            bytes.extend_from_slice(text);
        }
        bytes.extend_from_slice(tag.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `None` for anything this API did not issue.
    pub fn decode(encoded: &str) -> Option<Self> {
        if encoded.len() > MAX_ENCODED {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        if bytes.len() < HEADER || bytes[0] != VERSION {
            return None;
        }
        let listing = match bytes[1] {
            0 => Listing::Public,
            1 => Listing::Admin(StatusFilter::All),
            2 => Listing::Admin(StatusFilter::Draft),
            3 => Listing::Admin(StatusFilter::Published),
            _ => return None,
        };
        let sort = match bytes[2] {
            0 => Sort::Newest,
            1 => Sort::Popular,
            _ => return None,
        };
        let flags = bytes[3];
        if flags & !0b111 != 0 {
            return None;
        }
        let view_count = i64::from_be_bytes(bytes[4..12].try_into().ok()?);
        let micros = i64::from_be_bytes(bytes[12..20].try_into().ok()?);
        let id = Uuid::from_slice(&bytes[20..36]).ok()?;
        let published_at = if flags & 1 == 1 {
            Some(DateTime::from_timestamp_micros(micros)?)
        } else if micros == 0 {
            None
        } else {
            return None;
        };
        let mut rest = &bytes[HEADER..];
        let search = if flags & 4 == 4 {
            let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
            let text = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
            rest = &rest[2 + len..];
            Some(SearchText::parse(text).ok()?)
        } else {
            None
        };
        if search.is_some() && listing == Listing::Public {
            return None;
        }
        let tag_text = std::str::from_utf8(rest).ok()?;
        let tag = if flags & 2 == 2 {
            let tag = Tag::parse(tag_text).ok()?;
            // Only the canonical form, so one position has one cursor.
            (tag.as_str() == tag_text).then_some(tag)?.into()
        } else if tag_text.is_empty() {
            None
        } else {
            return None;
        };
        if view_count < 0 || (sort == Sort::Newest && view_count != 0) {
            return None;
        }
        if listing == Listing::Public && published_at.is_none() {
            return None;
        }
        Some(Self {
            listing,
            sort,
            tag,
            search,
            position: CursorPosition {
                view_count,
                published_at,
                id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Cursor {
        Cursor {
            listing: Listing::Public,
            sort: Sort::Popular,
            tag: Some(Tag::parse("été").unwrap()),
            search: None,
            position: CursorPosition {
                view_count: 42,
                published_at: DateTime::from_timestamp_micros(1_700_000_000_123_456),
                id: Uuid::now_v7(),
            },
        }
    }

    #[test]
    fn round_trips() {
        let c = sample();
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    #[test]
    fn round_trips_with_a_search() {
        let c = Cursor {
            listing: Listing::Admin(StatusFilter::Draft),
            search: Some(SearchText::parse(&"é%_".repeat(66)).unwrap()),
            ..sample()
        };
        let encoded = c.encode();
        assert!(encoded.len() <= MAX_ENCODED);
        assert_eq!(Cursor::decode(&encoded), Some(c));
    }

    #[test]
    fn rejects_tampering() {
        let encoded = sample().encode();
        assert!(Cursor::decode(&encoded[..encoded.len() - 2]).is_none());
        assert!(Cursor::decode("").is_none());
        assert!(Cursor::decode("!!!").is_none());
        assert!(Cursor::decode(&format!("{encoded}A")).is_none());
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,200}") {
            let _ = Cursor::decode(&s);
        }

        #[test]
        fn decode_of_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Cursor::decode(&URL_SAFE_NO_PAD.encode(bytes));
        }
    }
}
