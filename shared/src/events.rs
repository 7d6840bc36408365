//! Change events, as the write side records them in the outbox
//! (`video_events`), and the one pure function that says which cache scopes an
//! event can change.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{cache::Scope, domain::Status};

/// The Postgres channel the change trigger notifies, with the newest seq.
pub const CHANNEL: &str = "video_events";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "insert" => Some(Self::Insert),
            "update" => Some(Self::Update),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// The part of a video's state that decides where it appears in feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedState {
    pub status: Status,
    pub tags: Vec<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub view_count: i64,
}

impl FeedState {
    fn is_published(&self) -> bool {
        self.status == Status::Published
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub seq: i64,
    pub video_id: Uuid,
    pub op: Op,
    /// `None` for an insert.
    pub before: Option<FeedState>,
    /// `None` for a delete.
    pub after: Option<FeedState>,
    /// When the change was recorded, just before its commit.
    pub recorded_at: DateTime<Utc>,
}

impl ChangeEvent {
    /// The cache scopes whose content this change can alter, and no others.
    ///
    /// The public API shows published videos only, so a change that neither
    /// starts nor ends published (a draft that stays a draft, or is deleted)
    /// alters nothing cached. Otherwise every field of the video appears in
    /// every page that lists it and in its detail, so any change alters: the
    /// whole feed (both sorts: totals, order or content), the feed of every
    /// tag it carried while published, before or after, and its detail —
    /// except after an insert: a new id has no cached detail, because the read
    /// API never caches a 404. Skipping it keeps a bulk load of a million
    /// inserts down to a handful of purged scopes.
    pub fn scopes(&self) -> Vec<Scope> {
        fn published(s: &Option<FeedState>) -> Option<&FeedState> {
            s.as_ref().filter(|s| s.is_published())
        }
        let (before, after) = (published(&self.before), published(&self.after));
        if before.is_none() && after.is_none() {
            return Vec::new();
        }
        let mut scopes = vec![Scope::Feed];
        if self.op != Op::Insert {
            scopes.push(Scope::Video(self.video_id));
        }
        let tags: BTreeSet<&String> = before
            .into_iter()
            .chain(after)
            .flat_map(|s| s.tags.iter())
            .collect();
        scopes.extend(tags.into_iter().map(|t| Scope::Tag(t.clone())));
        scopes
    }
}

/// The union of the scopes of a batch of events: each scope once, so a bulk
/// load of a million events purges a handful of scopes, not a million.
pub fn affected_scopes<'a>(events: impl IntoIterator<Item = &'a ChangeEvent>) -> BTreeSet<Scope> {
    events.into_iter().flat_map(ChangeEvent::scopes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: Status, tags: &[&str]) -> FeedState {
        FeedState {
            status,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            published_at: (status == Status::Published).then(Utc::now),
            view_count: 0,
        }
    }

    fn event(op: Op, before: Option<FeedState>, after: Option<FeedState>) -> ChangeEvent {
        ChangeEvent {
            seq: 1,
            video_id: Uuid::nil(),
            op,
            before,
            after,
            recorded_at: Utc::now(),
        }
    }

    fn scopes(e: &ChangeEvent) -> BTreeSet<Scope> {
        e.scopes().into_iter().collect()
    }

    fn expected(tags: &[&str]) -> BTreeSet<Scope> {
        let mut s: BTreeSet<Scope> = [Scope::Feed, Scope::Video(Uuid::nil())].into();
        s.extend(tags.iter().map(|t| Scope::Tag((*t).to_owned())));
        s
    }

    use Status::{Draft, Published};

    #[test]
    fn insert_published_purges_feed_and_its_tags_but_no_detail() {
        let e = event(
            Op::Insert,
            None,
            Some(state(Published, &["summer", "linen"])),
        );
        let mut want = expected(&["summer", "linen"]);
        want.remove(&Scope::Video(Uuid::nil()));
        assert_eq!(scopes(&e), want);
    }

    #[test]
    fn insert_draft_purges_nothing() {
        assert!(event(Op::Insert, None, Some(state(Draft, &["summer"])))
            .scopes()
            .is_empty());
    }

    #[test]
    fn draft_staying_draft_purges_nothing() {
        let e = event(
            Op::Update,
            Some(state(Draft, &["a"])),
            Some(state(Draft, &["b"])),
        );
        assert!(e.scopes().is_empty());
    }

    #[test]
    fn delete_of_draft_purges_nothing() {
        assert!(event(Op::Delete, Some(state(Draft, &["a"])), None)
            .scopes()
            .is_empty());
    }

    #[test]
    fn delete_of_published_purges_its_scopes() {
        let e = event(Op::Delete, Some(state(Published, &["a"])), None);
        assert_eq!(scopes(&e), expected(&["a"]));
    }

    #[test]
    fn publish_purges_the_new_tags_only() {
        let e = event(
            Op::Update,
            Some(state(Draft, &["old"])),
            Some(state(Published, &["new"])),
        );
        assert_eq!(scopes(&e), expected(&["new"]));
    }

    #[test]
    fn unpublish_purges_the_old_tags_only() {
        let e = event(
            Op::Update,
            Some(state(Published, &["old"])),
            Some(state(Draft, &["new"])),
        );
        assert_eq!(scopes(&e), expected(&["old"]));
    }

    #[test]
    fn tag_change_purges_old_and_new_tags() {
        let e = event(
            Op::Update,
            Some(state(Published, &["summer", "linen"])),
            Some(state(Published, &["linen", "wool"])),
        );
        assert_eq!(scopes(&e), expected(&["summer", "linen", "wool"]));
    }

    #[test]
    fn view_count_or_other_field_change_of_published_purges_all_its_scopes() {
        let before = state(Published, &["a"]);
        let mut after = before.clone();
        after.view_count = 10;
        assert_eq!(
            scopes(&event(Op::Update, Some(before.clone()), Some(after))),
            expected(&["a"])
        );
        // A title change leaves the feed state equal but still changes pages.
        assert_eq!(
            scopes(&event(Op::Update, Some(before.clone()), Some(before))),
            expected(&["a"])
        );
    }

    #[test]
    fn batch_scopes_are_coalesced() {
        let events: Vec<_> = (0..1000)
            .map(|i| ChangeEvent {
                video_id: Uuid::from_u128(i),
                ..event(Op::Insert, None, Some(state(Published, &["a", "b"])))
            })
            .collect();
        let want: BTreeSet<Scope> =
            [Scope::Feed, Scope::Tag("a".into()), Scope::Tag("b".into())].into();
        assert_eq!(affected_scopes(&events), want);
    }

    #[test]
    fn op_parse() {
        assert_eq!(Op::parse("insert"), Some(Op::Insert));
        assert_eq!(Op::parse("update"), Some(Op::Update));
        assert_eq!(Op::parse("delete"), Some(Op::Delete));
        assert_eq!(Op::parse("x"), None);
    }
}
