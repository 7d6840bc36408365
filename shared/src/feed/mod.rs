//! The feed's query parameters, cursors and response envelope, shared by the
//! public feed (read API) and the admin listing (write API).

mod cursor;
mod envelope;
mod listing;
mod query;
mod search;

pub use cursor::{Cursor, CursorPosition};
pub use envelope::{total_pages, FeedPage};
pub use listing::{Listing, Sort, StatusFilter};
pub use query::{
    FeedQuery, Position, ADMIN_PARAMETERS, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PUBLIC_PARAMETERS,
};
pub use search::{SearchText, MAX_SEARCH_CHARS};
