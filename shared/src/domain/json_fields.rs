//! Reading one JSON object of a request body field by field: each field's
//! value in a [`Slot`], every error recorded with its path, unknown and
//! read-only fields refused. The create and the patch share it.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{
    writable::{READ_ONLY, WRITABLE_FIELDS},
    PublishedAt, Tag, Tags, MAX_TAGS,
};
use crate::FieldError;

/// The fields of one JSON object being validated, and the errors found so far.
pub(super) struct Fields<'a> {
    object: &'a Map<String, Value>,
    prefix: &'a str,
    now: DateTime<Utc>,
    pub(super) errors: Vec<FieldError>,
}

/// What one field of the object holds.
pub(super) enum Slot<T> {
    Absent,
    Null,
    Valid(T),
    /// Its errors are already recorded.
    Invalid,
}

impl<'a> Fields<'a> {
    /// Refuses a non-object outright, then records every unknown and read-only field.
    pub(super) fn of(
        value: &'a Value,
        prefix: &'a str,
        now: DateTime<Utc>,
    ) -> Result<Self, Vec<FieldError>> {
        let Some(object) = value.as_object() else {
            let message = if prefix.is_empty() {
                "the body must be a JSON object"
            } else {
                "must be a JSON object"
            };
            return Err(vec![FieldError::new(prefix, message)]);
        };
        let mut fields = Self {
            object,
            prefix,
            now,
            errors: Vec::new(),
        };
        for key in object.keys() {
            if READ_ONLY.contains(&key.as_str()) {
                let path = fields.path(key);
                fields.errors.push(FieldError::new(path, "is read-only"));
            } else if !WRITABLE_FIELDS.contains(&key.as_str()) {
                let path = fields.path(key);
                fields
                    .errors
                    .push(FieldError::new(path, "is not a field of a video"));
            }
        }
        Ok(fields)
    }

    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub(super) fn get<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&Value, &str, DateTime<Utc>) -> Result<T, Vec<FieldError>>,
    ) -> Slot<T> {
        match self.object.get(name) {
            None => Slot::Absent,
            Some(Value::Null) => Slot::Null,
            Some(value) => match parse(value, &self.path(name), self.now) {
                Ok(v) => Slot::Valid(v),
                Err(errors) => {
                    self.errors.extend(errors);
                    Slot::Invalid
                }
            },
        }
    }

    fn error(&mut self, name: &str, message: &str) {
        let path = self.path(name);
        self.errors.push(FieldError::new(path, message));
    }
}

impl<T> Slot<T> {
    /// A field a create must give.
    pub(super) fn required(self, f: &mut Fields<'_>, name: &str) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Absent => {
                f.error(name, "is required");
                None
            }
            Self::Null => {
                f.error(name, "must not be null");
                None
            }
            Self::Invalid => None,
        }
    }

    /// A non-nullable field a create may leave out.
    pub(super) fn or_default(
        self,
        f: &mut Fields<'_>,
        name: &str,
        default: impl FnOnce() -> T,
    ) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Absent => Some(default()),
            Self::Null => {
                f.error(name, "must not be null");
                None
            }
            Self::Invalid => None,
        }
    }

    /// A nullable field of a create: `Some(None)` when absent or null.
    pub(super) fn nullable(self) -> Option<Option<T>> {
        match self {
            Self::Valid(v) => Some(Some(v)),
            Self::Absent | Self::Null => Some(None),
            Self::Invalid => None,
        }
    }

    /// A non-nullable field of a patch.
    pub(super) fn replace(self, f: &mut Fields<'_>, name: &str) -> Option<T> {
        match self {
            Self::Valid(v) => Some(v),
            Self::Null => {
                f.error(name, "must not be null (it cannot be cleared)");
                None
            }
            Self::Absent | Self::Invalid => None,
        }
    }

    /// A nullable field of a patch: `Some(None)` clears it.
    pub(super) fn clearable(self) -> Option<Option<T>> {
        match self {
            Self::Valid(v) => Some(Some(v)),
            Self::Null => Some(None),
            Self::Absent | Self::Invalid => None,
        }
    }
}

pub(super) fn text<T>(
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&Value, &str, DateTime<Utc>) -> Result<T, Vec<FieldError>> {
    move |value, path, _| match value {
        // Postgres text cannot hold NUL.
        Value::String(s) if s.contains('\0') => Err(vec![FieldError::new(
            path,
            "must not contain NUL characters",
        )]),
        Value::String(s) => parse(s).map_err(|m| vec![FieldError::new(path, m)]),
        _ => Err(vec![FieldError::new(path, "must be a string")]),
    }
}

pub(super) fn integer<T>(
    parse: fn(i64) -> Result<T, String>,
) -> impl Fn(&Value, &str, DateTime<Utc>) -> Result<T, Vec<FieldError>> {
    move |value, path, _| match whole_number(value) {
        Some(Ok(n)) => parse(n).map_err(|m| vec![FieldError::new(path, m)]),
        Some(Err(())) => Err(vec![FieldError::new(path, "is too large")]),
        None => Err(vec![FieldError::new(path, "must be an integer")]),
    }
}

/// A JSON number with no fractional part, as JSON Schema's `integer` reads
/// it: `95` and `95.0` alike (JSON has one number type); `Err` when it does
/// not fit an i64.
fn whole_number(value: &Value) -> Option<Result<i64, ()>> {
    if let Some(n) = value.as_i64() {
        return Some(Ok(n));
    }
    if value.is_u64() {
        return Some(Err(()));
    }
    let f = value.as_f64().filter(|f| f.fract() == 0.0)?;
    // i64::MIN is exactly representable; i64::MAX rounds up to 2^63, out of range.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    Some(if f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Ok(f as i64)
    } else {
        Err(())
    })
}

pub(super) fn published_at(
    value: &Value,
    path: &str,
    now: DateTime<Utc>,
) -> Result<PublishedAt, Vec<FieldError>> {
    match value {
        Value::String(s) => PublishedAt::parse(s, now).map_err(|m| vec![FieldError::new(path, m)]),
        _ => Err(vec![FieldError::new(
            path,
            "must be a string (an RFC 3339 date-time)",
        )]),
    }
}

pub(super) fn tags(value: &Value, path: &str, _: DateTime<Utc>) -> Result<Tags, Vec<FieldError>> {
    let Value::Array(items) = value else {
        return Err(vec![FieldError::new(path, "must be an array of strings")]);
    };
    let strings: Vec<String> = items
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if strings.len() == items.len() {
        return Tags::parse(&strings, path);
    }
    // Some elements are not strings: report each bad element at its own index.
    let mut errors = Vec::new();
    if items.len() > MAX_TAGS {
        errors.push(FieldError::new(
            path,
            format!("must have at most {MAX_TAGS} tags"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let message = match item.as_str() {
            Some(s) => Tag::parse(s).err(),
            None => Some("must be a string".to_owned()),
        };
        if let Some(message) = message {
            errors.push(FieldError::new(format!("{path}[{i}]"), message));
        }
    }
    Err(errors)
}
