//! The regex patterns of the text fields, each exactly its parser's rule in
//! every regex dialect a client may use; the tests check them against the
//! parsers.

use chrono::{Datelike, Utc};

use crate::domain::MAX_TAG_CHARS;

/// What Rust's `str::trim` removes (Unicode `White_Space`), as a regex class
/// body. Spelled out because `\s` means other sets in other regex dialects.
const WS: &str = r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (`char::is_control`, category Cc).
const CC: &str = r"\u0000-\u001f\u007f-\u009f";

/// End of input in every dialect: `$` also matches before a final newline in
/// some (Python's), and the value then carries a newline the server refuses.
const END: &str = r"(?![\s\S])";

/// Text that is 1..=`max` characters after trimming and holds no NUL
/// (Postgres text cannot): a title.
pub fn trimmed_text_pattern(max: usize) -> String {
    format!(
        r"^[{WS}]*[^{WS}\u0000](?:[^\u0000]{{0,{inner}}}[^{WS}\u0000])?[{WS}]*$",
        inner = max - 2
    )
}

/// A tag: 1..=50 characters after trimming, no control characters.
/// (Lower-casing `İ` gives two characters; a 50-character tag holding one is
/// refused, the one case this pattern cannot count.)
pub fn tag_pattern() -> String {
    format!(
        r"^[{WS}]*[^{WS}{CC}](?:[^{CC}]{{0,{inner}}}[^{WS}{CC}])?[{WS}]*$",
        inner = MAX_TAG_CHARS - 2
    )
}

/// Characters of a host name label the URL parser accepts as they are.
const LABEL: &str = r"A-Za-z0-9!$&'()*+,;=_~-";

/// An absolute http(s) URL with a registered-name host. The last label starts
/// with a non-digit, so the host is never read as an IPv4 address; a path,
/// query or fragment may hold anything but controls and spaces (the parser
/// percent-encodes the rest). Stricter than the parser (no IP literals, no
/// user info), never looser.
pub fn http_url_pattern() -> String {
    format!(
        r"^[hH][tT][tT][pP][sS]?://(?:[{LABEL}]+\.)*[A-Za-z!$&'()*+,;=_~-][{LABEL}]*(?::[0-9]{{0,4}})?(?:[/?#][^\u0000-\u0020\u007f]*)?$"
    )
}

/// An RFC 3339 date-time with a year before the current one, so never in the
/// future (the server refuses those) whatever the offset. February 29th is
/// left out rather than spelling out leap years.
pub fn past_date_time_pattern() -> String {
    // A day back: the latest time this allows, 23:59 behind UTC, is still past.
    let last_year = (Utc::now() - chrono::Duration::days(1)).year() - 1;
    let recent: Vec<String> = (2000..=last_year).map(|y| y.to_string()).collect();
    format!(
        concat!(
            r"^(?:0(?:00[1-9]|0[1-9][0-9]|[1-9][0-9]{{2}})|1[0-9]{{3}}|{recent})-",
            r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))",
            r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,9}})?",
            r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]){END}"
        ),
        recent = recent.join("|"),
        END = END,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use regex::Regex;

    use super::*;
    use crate::domain::{HttpUrl, PublishedAt, Tag, Title};

    /// The pattern without its anchors, for proptest's generator (which has none).
    fn body(pattern: &str) -> String {
        pattern
            .trim_start_matches('^')
            .trim_end_matches('$')
            .trim_end_matches(END)
            .to_owned()
    }

    fn anchored(pattern: &str) -> Regex {
        Regex::new(&format!("^(?:{})$", body(pattern))).unwrap()
    }

    static TITLE: LazyLock<Regex> =
        LazyLock::new(|| anchored(&trimmed_text_pattern(Title::MAX_CHARS)));
    static TAG: LazyLock<Regex> = LazyLock::new(|| anchored(&tag_pattern()));

    /// Strings rich in what the rules are about: whitespace, controls, NUL,
    /// lengths around the limits.
    fn tricky(max: usize) -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("\u{85}".to_owned()),
            Just("\u{3000}".to_owned()),
            Just("\u{1c}".to_owned()),
            Just("\u{7}".to_owned()),
            Just("\u{0}".to_owned()),
            Just("\n".to_owned()),
            "[a-zA-Zé]{1,3}",
            "[a-z]{40,60}",
            any::<char>().prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..max).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn title_pattern_is_the_title_rule(s in prop_oneof![
            tricky(12),
            proptest::string::string_regex(&body(&trimmed_text_pattern(Title::MAX_CHARS))).unwrap(),
        ]) {
            prop_assert_eq!(TITLE.is_match(&s), Title::parse(&s).is_ok() && !s.contains('\0'), "{:?}", s);
        }

        #[test]
        fn tag_pattern_is_the_tag_rule(s in prop_oneof![
            tricky(4),
            proptest::string::string_regex(&body(&tag_pattern())).unwrap(),
        ]) {
            // Lower-casing `İ` makes two characters: the documented exception.
            prop_assume!(!s.contains('\u{130}'));
            prop_assert_eq!(TAG.is_match(&s), Tag::parse(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn every_url_the_pattern_allows_is_accepted(
            s in proptest::string::string_regex(&body(&http_url_pattern())).unwrap()
        ) {
            prop_assume!(s.chars().count() <= HttpUrl::MAX_CHARS);
            prop_assert!(HttpUrl::parse(&s).is_ok(), "{:?}", s);
        }

        #[test]
        fn every_date_time_the_pattern_allows_is_accepted(
            s in proptest::string::string_regex(&body(&past_date_time_pattern())).unwrap()
        ) {
            prop_assert!(PublishedAt::parse(&s, Utc::now()).is_ok(), "{:?}", s);
        }
    }

    #[test]
    fn urls_appended_to_stay_allowed_where_the_parser_accepts_them() {
        // A fuzzer's way of breaking a pattern: append a character.
        let re = anchored(&http_url_pattern());
        for url in [
            "https://a.example",
            "http://a.b/c",
            "https://x.y?q",
            "http://h:80",
        ] {
            assert!(re.is_match(url), "{url}");
            for extra in ["*", "-", "_", "~", "!", "9", "/", "'"] {
                let longer = format!("{url}{extra}");
                if HttpUrl::parse(&longer).is_ok() {
                    assert!(re.is_match(&longer), "{longer}");
                }
            }
        }
        for refused in [
            "ftp://a.b",
            "https://1.2",
            "/relative",
            "https://",
            "https://a b",
        ] {
            assert!(!re.is_match(refused), "{refused}");
        }
    }
}
