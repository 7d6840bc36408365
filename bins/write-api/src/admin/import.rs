//! Bulk import: a JSON array of videos, or CSV whose header row names the
//! API's fields. All or nothing through the batch endpoint's parser and
//! insert; errors are reported per row (`row 7: video_url: ...`, rows counted
//! from 1, a CSV's header not counted).

use axum::{
    extract::{Multipart, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use shared::{
    domain::{parse_batch, MAX_BATCH},
    FieldError,
};

use super::{csrf, error::PageError, session::Session, views, ConsoleState};
use crate::videos::create;

pub async fn page(session: Session) -> Response {
    render(&session, StatusCode::OK, None).into_response()
}

fn render(session: &Session, status: StatusCode, notice: Option<Markup>) -> Response {
    let content = html! {
        @if let Some(notice) = notice { (notice) }
        p {
            "Up to " (MAX_BATCH) " videos at once, all or none: a JSON array of videos as "
            code { "POST /v1/videos" } " takes them, or CSV with a header row of the same field names ("
            code { "title,video_url,tags,status" } "…; " code { "tags" } " comma-separated in one cell)."
        }
        form.card method="post" action="/admin/import" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(session.csrf);
            div.field {
                label for="file" { "File" }
                input #file type="file" name="file" required accept=".json,.csv,application/json,text/csv";
            }
            button type="submit" { "Import" }
        }
    };
    (status, views::page("Import videos", &session.csrf, content)).into_response()
}

pub async fn submit(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    csrf::same_origin(&headers)?;
    let mut token = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                // A cut-off upload or one over the size limit.
                let notice =
                    views::notice("error", html! { "The upload failed: " (error.body_text()) });
                return Ok(render(&session, error.status(), Some(notice)));
            }
        };
        match field.name() {
            Some("csrf") => token = field.text().await.unwrap_or_default(),
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_lowercase();
                match field.bytes().await {
                    Ok(bytes) => file = Some((name, bytes.to_vec())),
                    Err(error) => {
                        let notice = views::notice(
                            "error",
                            html! { "The upload failed: " (error.body_text()) },
                        );
                        return Ok(render(&session, error.status(), Some(notice)));
                    }
                }
            }
            _ => {}
        }
    }
    csrf::verify(&session, &token, &headers)?;
    let Some((name, bytes)) = file.filter(|(_, bytes)| !bytes.is_empty()) else {
        let notice = views::notice("error", html! { "Choose a JSON or CSV file to import." });
        return Ok(render(
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(notice),
        ));
    };
    let items = match parse_file(&name, &bytes) {
        Ok(items) => items,
        Err(errors) => return Ok(failed(&session, &errors)),
    };
    let videos = match parse_batch(&json!({ "videos": items }), Utc::now()) {
        Ok(videos) => videos,
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(row_error).collect();
            return Ok(failed(&session, &errors));
        }
    };
    let created = create::insert_batch(&state.pool, videos).await?;
    let notice = views::notice(
        "ok",
        html! {
            "Imported " (created.len()) @if created.len() == 1 { " video" } @else { " videos" } ". "
            a href="/admin/videos" { "See the list" }
        },
    );
    Ok(render(&session, StatusCode::OK, Some(notice)))
}

fn failed(session: &Session, errors: &[String]) -> Response {
    let notice = views::notice(
        "error",
        html! {
            strong { "Nothing was imported." }
            ul.errors {
                @for error in errors.iter().take(200) { li { (error) } }
                @if errors.len() > 200 { li { "… and " (errors.len() - 200) " more." } }
            }
        },
    );
    render(session, StatusCode::UNPROCESSABLE_ENTITY, Some(notice))
}

/// `videos[6].video_url: msg` as `row 7: video_url: msg`.
fn row_error(error: &FieldError) -> String {
    let row = error
        .field
        .strip_prefix("videos[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(index, rest)| Some((index.parse::<usize>().ok()?, rest)));
    match row {
        Some((index, "")) => format!("row {}: {}", index + 1, error.message),
        Some((index, rest)) => format!(
            "row {}: {}: {}",
            index + 1,
            rest.trim_start_matches('.'),
            error.message
        ),
        None if error.field == "videos" => format!("file: {}", error.message),
        None => format!("{}: {}", error.field, error.message),
    }
}

/// The file's videos as JSON objects, for the batch parser to judge.
fn parse_file(name: &str, bytes: &[u8]) -> Result<Vec<Value>, Vec<String>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(vec!["file: is not UTF-8 text".into()]);
    };
    let text = text.trim_start_matches('\u{feff}');
    if name.ends_with(".json") || text.trim_start().starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) => Err(vec!["file: must be a JSON array of videos".into()]),
            Err(error) => Err(vec![format!("file: is not valid JSON ({error})")]),
        }
    } else {
        parse_csv(text)
    }
}

fn parse_csv(text: &str) -> Result<Vec<Value>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => return Err(vec![format!("header row: {error}")]),
    };
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                errors.push(format!("row {}: {error}", i + 1));
                continue;
            }
        };
        let mut object = Map::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            let value = match name {
                "tags" => json!(cell
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()),
                "duration_seconds" | "view_count" => cell
                    .parse::<i64>()
                    .map_or_else(|_| json!(cell), |n| json!(n)),
                _ => json!(cell),
            };
            object.insert(name.to_owned(), value);
        }
        items.push(Value::Object(object));
    }
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_api_objects() {
        let items = parse_csv(
            "title,video_url,tags,view_count,duration_seconds\n\
             A,https://v.example/a.mp4,\"summer, dresses\",12,\n\
             B,https://v.example/b.mp4,,x,30\n",
        )
        .unwrap();
        assert_eq!(
            items[0],
            json!({"title": "A", "video_url": "https://v.example/a.mp4",
                   "tags": ["summer", "dresses"], "view_count": 12})
        );
        assert_eq!(items[1]["view_count"], json!("x"));
        assert_eq!(items[1]["duration_seconds"], json!(30));
    }

    #[test]
    fn errors_are_named_by_row() {
        assert_eq!(
            row_error(&FieldError::new("videos[6].video_url", "must have a host")),
            "row 7: video_url: must have a host"
        );
        assert_eq!(
            row_error(&FieldError::new("videos[0].tags[2]", "must not be empty")),
            "row 1: tags[2]: must not be empty"
        );
        assert_eq!(
            row_error(&FieldError::new("videos[3]", "must be a JSON object")),
            "row 4: must be a JSON object"
        );
        assert!(
            row_error(&FieldError::new("videos", "must hold 1 to 1000 videos"))
                .starts_with("file: ")
        );
    }

    #[test]
    fn json_or_csv_by_name_or_content() {
        assert_eq!(
            parse_file("x.json", b"[{\"title\": \"a\"}]").unwrap().len(),
            1
        );
        assert_eq!(parse_file("x", b" [{}]").unwrap().len(), 1);
        assert!(parse_file("x.json", b"{}").is_err());
        assert_eq!(parse_file("x.csv", b"title\na\nb\n").unwrap().len(), 2);
    }
}
