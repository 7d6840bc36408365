//! What annotations cannot say, set on the rendered document: the query
//! parameters' schemas by name, and the headers of shared responses.

use serde_json::{json, Value};

use super::bodies::{enum_of, tag};
use crate::{
    feed::{Sort, StatusFilter, MAX_PAGE_SIZE, MAX_SEARCH_CHARS},
    problem::{CONTENT_TYPE as PROBLEM, RETRY_AFTER_SECONDS},
};

/// The schema of a feed or listing query parameter, by name.
pub fn query_parameter_schema(name: &str) -> Option<Value> {
    Some(match name {
        "page" => json!({"type": "integer", "minimum": 1, "maximum": u64::MAX, "default": 1}),
        "page_size" => json!({
            "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
            "default": crate::feed::DEFAULT_PAGE_SIZE,
        }),
        "sort" => {
            let mut schema = enum_of(Sort::ALL.map(Sort::as_str));
            schema["default"] = json!(Sort::Newest.as_str());
            schema
        }
        "status" => {
            let mut schema = enum_of(StatusFilter::ALL.map(StatusFilter::as_str));
            schema["default"] = json!(StatusFilter::All.as_str());
            schema
        }
        "tag" => tag(),
        // Opaque: only a `next_cursor` the server issued is accepted.
        "cursor" => json!({"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$"}),
        "q" => json!({"type": "string", "minLength": 1, "maxLength": MAX_SEARCH_CHARS}),
        _ => return None,
    })
}

/// A response header's object.
fn header(schema: Value, description: &str) -> Value {
    json!({"schema": schema, "description": description})
}

/// Makes the rendered document exact where annotations cannot say enough:
/// every known query parameter gets its schema; problem responses get their
/// headers (`WWW-Authenticate` on 401, `Retry-After` on 503); `ETag` gets
/// its shape. Idempotent.
pub fn refine(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter(|op| op.get("responses").is_some())
    {
        if let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        {
            for parameter in parameters.iter_mut() {
                let name = parameter["name"].as_str().unwrap_or_default().to_owned();
                if parameter["in"] == "query" {
                    if let Some(schema) = query_parameter_schema(&name) {
                        parameter["schema"] = schema;
                    }
                    if name == "cursor" {
                        // What no schema can say.
                        parameter["description"] = json!(
                            "The `next_cursor` of a previous page, as issued (anything else: 400). \
                             Not with `page`, nor with a `sort` or `tag` other than the cursor's (400)."
                        );
                    }
                }
            }
        }
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let headers = response
                .as_object_mut()
                .map(|r| r.entry("headers").or_insert_with(|| json!({})));
            let Some(headers) = headers.and_then(Value::as_object_mut) else {
                continue;
            };
            match status.as_str() {
                "401" => {
                    headers.insert(
                        "WWW-Authenticate".into(),
                        header(
                            json!({"type": "string", "const": "Bearer"}),
                            "Always `Bearer`.",
                        ),
                    );
                }
                "503" => {
                    headers.insert(
                        "Retry-After".into(),
                        header(
                            json!({"type": "integer", "const": RETRY_AFTER_SECONDS}),
                            "Seconds to wait before retrying.",
                        ),
                    );
                }
                _ => {}
            }
            if let Some(etag) = headers.get_mut("ETag") {
                etag["schema"] = json!({"type": "string", "pattern": "^\"[^\"]*\"$"});
                etag["description"] = json!("Strong entity tag of the representation.");
            }
            if headers.is_empty() {
                if let Some(r) = response.as_object_mut() {
                    r.remove("headers");
                }
            }
        }
        // Every problem body is application/problem+json with the Problem schema.
        for response in responses.values_mut() {
            if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                if let Some(problem) = content.get_mut(PROBLEM) {
                    problem["schema"] = json!({"$ref": "#/components/schemas/Problem"});
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::Status;

    #[test]
    fn enums_parse_back() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
        }
        for name in ["sort", "status"] {
            let schema = query_parameter_schema(name).unwrap();
            for value in schema["enum"].as_array().unwrap() {
                let q = format!("{name}={}", value.as_str().unwrap());
                assert!(crate::feed::FeedQuery::parse_admin(Some(&q)).is_ok(), "{q}");
            }
        }
        for name in crate::feed::PUBLIC_PARAMETERS
            .iter()
            .chain(crate::feed::ADMIN_PARAMETERS)
        {
            assert!(query_parameter_schema(name).is_some(), "{name}");
            // The parser knows it: an empty value is refused.
            let q = format!("{name}=");
            assert!(
                crate::feed::FeedQuery::parse_admin(Some(&q)).is_err(),
                "{q}"
            );
        }
    }
}
