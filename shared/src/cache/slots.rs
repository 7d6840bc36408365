//! Redis Cluster hash slots, for per-slot state (a circuit breaker, a
//! tracking lease) kept by the processes that talk to a cluster.

/// The number of Redis Cluster hash slots.
pub const HASH_SLOTS: u16 = 16_384;

/// The Redis Cluster hash slot of `key` (of its hash tag, if it has one).
pub fn hash_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key
        .find('{')
        .and_then(|open| {
            let rest = &bytes[open + 1..];
            rest.iter()
                .position(|b| *b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty());
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % HASH_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{KeySpace, Scope};

    #[test]
    fn slots_follow_the_hash_tag() {
        // `CLUSTER KEYSLOT foo` is 12182.
        assert_eq!(hash_slot("foo"), 12_182);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_ne!(
            hash_slot("foo{}{bar}"),
            hash_slot("bar"),
            "an empty tag is no tag"
        );
        let keys = KeySpace::new("vf:").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            hash_slot(&keys.generation(&Scope::Feed)),
            hash_slot(&keys.entry(&Scope::Feed, "e", "g", "newest:20:p1"))
        );
    }
}
