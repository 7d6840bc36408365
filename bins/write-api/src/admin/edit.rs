//! Create and edit a video. Writes run the API's transactions. An edit
//! carries the version it started from, like `If-Match`: if the video changed
//! meanwhile nothing is written and the admin sees what changed.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use chrono::Utc;
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use shared::{
    domain::{NewVideo, Video, VideoPatch},
    FieldError, Problem,
};
use uuid::Uuid;

use super::{
    csrf,
    error::PageError,
    form::{errors_by_field, fields_json, render, Kind, VideoForm, FIELDS},
    session::Session,
    views, ConsoleState,
};
use crate::{
    error::ApiError,
    videos::{create, item},
};

pub(super) fn video_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::try_parse(raw).map_err(|_| PageError::NotFound)
}

pub async fn new_page(session: Session) -> Response {
    let form = VideoForm::draft();
    render(Kind::New, &session, &form, &BTreeMap::new(), None).into_response()
}

pub async fn create(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<VideoForm>,
) -> Result<Response, PageError> {
    csrf::verify(&session, &form.csrf, &headers)?;
    let video = match NewVideo::parse(&form.to_json(true), "", Utc::now()) {
        Ok(video) => video,
        Err(errors) => return Ok(invalid(Kind::New, &session, &form, errors)),
    };
    let mut tx = state.pool.begin().await?;
    let video = match create::insert_one(&mut tx, Uuid::now_v7(), video.into_fields()).await {
        Ok(video) => video,
        Err(ApiError::Problem(problem)) if problem.status == 422 => {
            return Ok(invalid(Kind::New, &session, &form, problem.errors))
        }
        Err(error) => return Err(error.into()),
    };
    tx.commit().await?;
    Ok(Redirect::to(&format!("/admin/videos/{}?done=created", video.id)).into_response())
}

fn invalid(
    kind: Kind<'_>,
    session: &Session,
    form: &VideoForm,
    errors: Vec<FieldError>,
) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        render(kind, session, form, &errors_by_field(errors), None),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Done {
    done: String,
}

pub async fn edit_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let video = item::fetch(&state.pool, video_id(&id)?).await?;
    let notice = match done.done.as_str() {
        "created" => Some("The video was created."),
        "saved" => Some("Your changes were saved."),
        "publish" => Some("The video is published."),
        "unpublish" => Some("The video is a draft now."),
        _ => None,
    }
    .map(|text| views::notice("ok", html! { (text) }));
    Ok(render(
        Kind::Edit(&video),
        &session,
        &VideoForm::of(&video),
        &BTreeMap::new(),
        notice,
    )
    .into_response())
}

/// The version check of a console write: like `If-Match: "<version>"`.
pub(super) fn expect_version(raw: &str) -> impl FnOnce(&Video) -> Result<(), ApiError> + '_ {
    move |current| {
        if raw.trim().parse::<i64>().ok() == Some(current.version) {
            Ok(())
        } else {
            Err(Problem::precondition_failed("changed meanwhile").into())
        }
    }
}

pub async fn save(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<VideoForm>,
) -> Result<Response, PageError> {
    csrf::verify(&session, &form.csrf, &headers)?;
    let id = video_id(&id)?;
    let patch = match VideoPatch::parse(&form.to_json(false), Utc::now()) {
        Ok(patch) => patch,
        Err(errors) => {
            let video = item::fetch(&state.pool, id).await?;
            return Ok(invalid(Kind::Edit(&video), &session, &form, errors));
        }
    };
    match item::apply_patch(&state.pool, id, patch, expect_version(&form.version)).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/videos/{id}?done=saved")).into_response()),
        Err(ApiError::Problem(problem)) if problem.status == 422 => {
            let video = item::fetch(&state.pool, id).await?;
            Ok(invalid(Kind::Edit(&video), &session, &form, problem.errors))
        }
        Err(error) if error.is(StatusCode::PRECONDITION_FAILED) => {
            conflict(&state, &session, id, form).await
        }
        Err(error) => Err(error.into()),
    }
}

/// Someone else changed the video: nothing was written. The page keeps the
/// admin's values, lists what changed, and now carries the new version, so
/// saving again is a deliberate overwrite.
async fn conflict(
    state: &ConsoleState,
    session: &Session,
    id: Uuid,
    mut form: VideoForm,
) -> Result<Response, PageError> {
    let current = item::fetch(&state.pool, id).await?;
    let now = fields_json(&current);
    let before: Value = serde_json::from_str(&form.original).unwrap_or(Value::Null);
    let changed: Vec<(&str, String, String)> = FIELDS
        .iter()
        .filter(|(name, _)| before.get(name) != now.get(name))
        .map(|(name, label)| {
            (
                *label,
                shown(before.get(name).unwrap_or(&Value::Null)),
                shown(now.get(name).unwrap_or(&Value::Null)),
            )
        })
        .collect();
    let notice = views::notice(
        "error",
        html! {
            strong { "Someone else changed this video while you were editing it; nothing was saved." }
            @if changed.is_empty() {
                " (Version " (form.version) " is now version " (current.version) ".)"
            } @else {
                " They changed:"
                ul.changes {
                    @for (label, was, is) in &changed {
                        li { strong { (label) } ": " (was) " → " (is) }
                    }
                }
            }
            " Your values are still in the form below: Save again to replace their changes, or reload the page to start from theirs."
        },
    );
    form.version = current.version.to_string();
    form.original = now.to_string();
    Ok((
        StatusCode::CONFLICT,
        render(
            Kind::Edit(&current),
            session,
            &form,
            &BTreeMap::new(),
            Some(notice),
        ),
    )
        .into_response())
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(empty)".into(),
        Value::String(s) => format!("“{s}”"),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}
