//! The write side's body validation on arbitrary bytes: whatever parses as
//! JSON goes through create, batch and merge-patch validation; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use shared::domain::{parse_batch, NewVideo, VideoPatch};

fuzz_target!(|bytes: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };
    let now = chrono::Utc::now();
    let created = NewVideo::parse(&body, "", now);
    let _ = parse_batch(&json!({ "videos": [body.clone()] }), now);
    let _ = parse_batch(&body, now);
    if let Ok(patch) = VideoPatch::parse(&body, now) {
        let base = json!({"title": "t", "video_url": "https://cdn.example.com/v.mp4"});
        if let Ok(base) = NewVideo::parse(&base, "", now) {
            let _ = patch.apply(created.map_or_else(|_| base.into_fields(), NewVideo::into_fields));
        }
    }
});
