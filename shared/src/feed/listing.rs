//! What a listing is and how it is ordered: the types a query and its
//! cursors both name, below either of them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    /// `published_at` desc, `id` desc.
    Newest,
    /// `view_count` desc, `published_at` desc, `id` desc.
    Popular,
}

impl Sort {
    pub const ALL: [Self; 2] = [Self::Newest, Self::Popular];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Popular => "popular",
        }
    }

    pub(super) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "newest" => Some(Self::Newest),
            "popular" => Some(Self::Popular),
            _ => None,
        }
    }
}

/// Which videos the admin listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusFilter {
    All,
    Draft,
    Published,
}

impl StatusFilter {
    pub const ALL: [Self; 3] = [Self::All, Self::Draft, Self::Published];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    pub(super) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "all" => Some(Self::All),
            "draft" => Some(Self::Draft),
            "published" => Some(Self::Published),
            _ => None,
        }
    }
}

/// Which listing a query (and its cursors) belongs to: a cursor of one is
/// refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// The public feed: published videos only.
    Public,
    /// The admin listing, filtered by status.
    Admin(StatusFilter),
}
