use serde::Serialize;

use crate::FieldError;

pub const MAX_TAGS: usize = 20;
/// Characters of one tag, after trimming and lower-casing.
pub const MAX_TAG_CHARS: usize = 50;

/// A tag: trimmed, lower-cased, 1..=50 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let tag = raw.trim().to_lowercase();
        if tag.is_empty() {
            return Err("must not be empty".into());
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(format!("must be at most {MAX_TAG_CHARS} characters"));
        }
        if tag.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A video's tags: at most 20, each a valid [`Tag`], duplicates dropped with
/// the first occurrence's position kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// `field` names the list in errors (`tags`, `videos[2].tags`); each bad
    /// element is reported as `field[i]`.
    pub fn parse(raw: &[String], field: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if raw.len() > MAX_TAGS {
            errors.push(FieldError::new(
                field,
                format!("must have at most {MAX_TAGS} tags"),
            ));
        }
        let mut tags: Vec<Tag> = Vec::with_capacity(raw.len().min(MAX_TAGS));
        for (i, item) in raw.iter().enumerate() {
            match Tag::parse(item) {
                Ok(tag) if !tags.contains(&tag) => tags.push(tag),
                Ok(_) => {}
                Err(message) => errors.push(FieldError::new(format!("{field}[{i}]"), message)),
            }
        }
        if errors.is_empty() {
            Ok(Self(tags))
        } else {
            Err(errors)
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|t| t.0.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_trimmed_and_lower_cased() {
        assert_eq!(Tag::parse("  Summer ").unwrap().as_str(), "summer");
    }

    #[test]
    fn tag_rejects_empty_long_and_control() {
        assert!(Tag::parse("   ").is_err());
        assert!(Tag::parse(&"a".repeat(51)).is_err());
        assert!(Tag::parse(&"é".repeat(50)).is_ok());
        assert!(Tag::parse("a\u{7}b").is_err());
    }

    #[test]
    fn tags_drop_duplicates_keeping_order() {
        let raw = vec!["B".into(), "a".into(), "b ".into()];
        assert_eq!(
            Tags::parse(&raw, "tags").unwrap().to_strings(),
            vec!["b", "a"]
        );
    }

    #[test]
    fn tags_name_the_failing_element() {
        let raw = vec!["ok".into(), "".into(), "\n".into()];
        let errors = Tags::parse(&raw, "tags").unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["tags[1]", "tags[2]"]);
    }

    #[test]
    fn tags_limit_is_twenty() {
        let raw: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(Tags::parse(&raw, "tags").is_err());
        assert!(Tags::parse(&raw[..20], "tags").is_ok());
    }
}
