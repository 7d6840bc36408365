use std::io::Write;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{write::GzEncoder, Compression};
use sha2::{Digest, Sha256};

/// A whole response as the cache stores it: the JSON body, its gzip form
/// (compressed once, at store time, never per hit) and its strong ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedResponse {
    /// Quoted, ready for the `ETag` header.
    pub etag: String,
    /// `etag` as a header value, built once rather than on every hit.
    pub etag_header: http::HeaderValue,
    pub body: Bytes,
    pub gzip: Bytes,
}

/// An ETag is quoted hex, always a valid header value.
fn etag_header(etag: &str) -> http::HeaderValue {
    http::HeaderValue::from_str(etag).unwrap_or_else(|_| http::HeaderValue::from_static("\"\""))
}

const MAGIC: &[u8; 4] = b"VFC1";

impl CachedResponse {
    /// Builds an entry from a freshly serialized JSON body.
    pub fn new(body: Bytes) -> Self {
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..16]));
        let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
        // Writing to a Vec cannot fail.
        let gzip = encoder
            .write_all(&body)
            .and_then(|()| encoder.finish())
            .map(Bytes::from)
            .unwrap_or_default();
        Self {
            etag_header: etag_header(&etag),
            etag,
            body,
            gzip,
        }
    }

    /// `MAGIC | etag len u16 | etag | body len u32 | body | gzip`.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(
            4 + 2 + self.etag.len() + 4 + self.body.len() + self.gzip.len(),
        );
        out.put_slice(MAGIC);
        out.put_u16(u16::try_from(self.etag.len()).unwrap_or(0));
        out.put_slice(self.etag.as_bytes());
        out.put_u32(u32::try_from(self.body.len()).unwrap_or(0));
        out.put_slice(&self.body);
        out.put_slice(&self.gzip);
        out.freeze()
    }

    /// `None` for anything [`encode`](Self::encode) did not make (an entry of an
    /// older format, or a corrupted value): the caller treats it as a miss.
    /// Slices the input without copying the bodies.
    pub fn decode(mut raw: Bytes) -> Option<Self> {
        if raw.len() < 10 || &raw[..4] != MAGIC {
            return None;
        }
        raw.advance(4);
        let etag_len = usize::from(raw.get_u16());
        if raw.len() < etag_len + 4 {
            return None;
        }
        let etag = String::from_utf8(raw.split_to(etag_len).to_vec()).ok()?;
        let body_len = usize::try_from(raw.get_u32()).ok()?;
        if raw.len() < body_len || etag.is_empty() {
            return None;
        }
        let body = raw.split_to(body_len);
        Some(Self {
            etag_header: etag_header(&etag),
            etag,
            body,
            gzip: raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let entry = CachedResponse::new(Bytes::from_static(b"{\"results\":[]}"));
        assert!(entry.etag.starts_with('"') && entry.etag.ends_with('"'));
        assert!(!entry.gzip.is_empty());
        assert_eq!(CachedResponse::decode(entry.encode()), Some(entry));
    }

    #[test]
    fn etag_follows_content() {
        let a = CachedResponse::new(Bytes::from_static(b"a"));
        let b = CachedResponse::new(Bytes::from_static(b"b"));
        assert_ne!(a.etag, b.etag);
        assert_eq!(a.etag, CachedResponse::new(Bytes::from_static(b"a")).etag);
    }

    #[test]
    fn garbage_is_a_miss() {
        assert_eq!(CachedResponse::decode(Bytes::from_static(b"")), None);
        assert_eq!(
            CachedResponse::decode(Bytes::from_static(b"VFC1\xff\xff")),
            None
        );
        let mut truncated = CachedResponse::new(Bytes::from_static(b"abc")).encode();
        truncated.truncate(20);
        assert_eq!(CachedResponse::decode(truncated), None);
    }
}
