//! A video's columns, written once for every query of both APIs, each of
//! which reads its rows into [`Video`](crate::domain::Video).
//!
//! `sqlx::query_as!` checks a query against the schema at compile time (and
//! against `.sqlx/` offline) but takes only string literals, joined with `+`,
//! never a `const` or `concat!`. So the list lives in a macro that expands to
//! the whole `query_as!` call with the list as one more literal:
//! [`select_videos!`](crate::select_videos) and
//! [`returning_videos!`](crate::returning_videos).
//!
//! The columns are qualified with `v`, so a query names the `videos` table
//! `v` (`from videos v`, `insert into videos as v`, `update videos v`) and
//! may join tables with columns of the same names. The NOT NULL columns carry
//! `!`: behind a join or a CTE sqlx cannot always see that they are.

/// The `query_as!` call with the column list between two runs of literals.
#[doc(hidden)]
#[macro_export]
macro_rules! __query_videos {
    ($out:path; [$($before:tt)*] [$($after:tt)*] $(, $arg:expr)*) => {
        ::sqlx::query_as!(
            $out,
            $($before)*
            "v.id as \"id!\", v.title as \"title!\", v.description as \"description!\", \
             v.video_url as \"video_url!\", v.thumbnail_url, v.duration_seconds, \
             v.tags as \"tags!\", v.view_count as \"view_count!\", \
             v.status as \"status!: shared::domain::Status\", v.published_at, \
             v.created_at as \"created_at!\", v.updated_at as \"updated_at!\", \
             v.version as \"version!\""
            $($after)*
            $(, $arg)*
        )
    };
}

/// `select <every column of v> ` followed by `$rest` (a string literal that
/// starts at `from` and names the videos table `v`), with its bind arguments.
/// Rows are [`Video`](crate::domain::Video)s; with `Row =>` first they are
/// `Row`s, a [`video_row!`](crate::video_row) type whose extra columns
/// `$rest` selects first (`", count(*) over () as matches from ..."`); a
/// `with` clause goes before: `Row => "with ..." select ", ... from ..."`.
///
/// ```ignore
/// shared::select_videos!("from videos v where v.id = $1", id).fetch_optional(pool)
/// ```
#[macro_export]
macro_rules! select_videos {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        $crate::__query_videos!($crate::domain::Video; ["select " +] [+ " " + $rest] $(, $arg)*)
    };
    ($out:path => $rest:literal $(, $arg:expr)* $(,)?) => {
        $crate::__query_videos!($out; ["select " +] [+ $rest] $(, $arg)*)
    };
    ($out:path => $with:literal select $rest:literal $(, $arg:expr)* $(,)?) => {
        $crate::__query_videos!($out; [$with + " select " +] [+ $rest] $(, $arg)*)
    };
}

/// `$statement` (a string literal: an insert into `videos as v` or an
/// `update videos v`) followed by `returning <every column of v>`, with its
/// bind arguments.
#[macro_export]
macro_rules! returning_videos {
    ($statement:literal $(, $arg:expr)* $(,)?) => {
        $crate::__query_videos!($crate::domain::Video; [$statement + " returning " +] [] $(, $arg)*)
    };
}

/// Declares a row type: every column of a video, in the columns' order, then
/// the `extra` fields. `Video` itself is one; a query that reads more than a
/// video (a search page's count of matches) reads into another, whose
/// `into_parts` gives the [`Video`](crate::domain::Video) and the extras.
#[macro_export]
macro_rules! video_row {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {}) => {
        $crate::video_row!(@struct $(#[$meta])* $vis $name {});
    };
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($extra:ident: $ty:ty),+ $(,)? }) => {
        $crate::video_row!(@struct $(#[$meta])* $vis $name { $($extra: $ty),+ });
        impl $name {
            /// The video, and the extra columns in their order.
            #[allow(dead_code)]
            $vis fn into_parts(self) -> ($crate::domain::Video, $($ty),+) {
                $crate::video_row!(@split self [$($extra),+]
                    id title description video_url thumbnail_url duration_seconds tags
                    view_count status published_at created_at updated_at version)
            }
        }
    };
    (@split $row:ident [$($extra:ident),+] $($field:ident)+) => {
        ($crate::domain::Video { $($field: $row.$field),+ }, $($row.$extra),+)
    };
    (@struct $(#[$meta:meta])* $vis:vis $name:ident { $($extra:ident: $ty:ty),* }) => {
        $(#[$meta])*
        $vis struct $name {
            pub id: ::uuid::Uuid,
            pub title: ::std::string::String,
            pub description: ::std::string::String,
            pub video_url: ::std::string::String,
            pub thumbnail_url: ::std::option::Option<::std::string::String>,
            pub duration_seconds: ::std::option::Option<i32>,
            pub tags: ::std::vec::Vec<::std::string::String>,
            pub view_count: i64,
            pub status: $crate::domain::Status,
            pub published_at: ::std::option::Option<::chrono::DateTime<::chrono::Utc>>,
            pub created_at: ::chrono::DateTime<::chrono::Utc>,
            pub updated_at: ::chrono::DateTime<::chrono::Utc>,
            pub version: i64,
            $(pub $extra: $ty,)*
        }
    };
}
