//! `Cursor::decode` on arbitrary text: never a panic, and whatever decodes
//! re-encodes to a cursor that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::feed::{Cursor, FeedQuery};

fuzz_target!(|text: &str| {
    if let Some(cursor) = Cursor::decode(text) {
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
    }
    // The cursor arrives inside a query string, next to the other parameters.
    let _ = FeedQuery::parse_public(Some(&format!("cursor={text}")));
    let _ = FeedQuery::parse_admin(Some(text));
});
