//! The admin search text (`q`): what a title must contain.

/// Longest `q`, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// A valid search text: 1..=200 characters, no NUL (which no title can hold).
/// Every character is literal; [`SearchText::like_pattern`] escapes the ones
/// `LIKE` would treat as wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > MAX_SEARCH_CHARS {
            return Err(format!("must be at most {MAX_SEARCH_CHARS} characters"));
        }
        if raw.contains('\0') {
            return Err("must not contain a NUL character".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `LIKE` pattern (default escape `\`) for "contains this text".
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(SearchText::parse("").is_err());
        assert!(SearchText::parse("a").is_ok());
        assert!(SearchText::parse(&"é".repeat(200)).is_ok());
        assert!(SearchText::parse(&"é".repeat(201)).is_err());
        assert!(SearchText::parse("a\0b").is_err());
    }

    #[test]
    fn wildcards_are_literal() {
        let q = SearchText::parse(r"50%_off\").unwrap();
        assert_eq!(q.like_pattern(), r"%50\%\_off\\%");
    }
}
