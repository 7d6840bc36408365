//! Publish or unpublish a video in one click, and delete it after a
//! confirmation. Each carries the version the page showed, like `If-Match`.

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use maud::{html, Markup};
use serde::Deserialize;
use shared::domain::{Status, Video, VideoPatch};

use super::{
    csrf,
    edit::{expect_version, video_id},
    error::PageError,
    form::{render, Kind, VideoForm},
    session::Session,
    views, ConsoleState,
};
use crate::videos::item;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Action {
    csrf: String,
    version: String,
}

pub async fn publish(
    state: State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    id: Path<String>,
    Form(action): Form<Action>,
) -> Result<Response, PageError> {
    set_status(state, session, headers, id, action, Status::Published).await
}

pub async fn unpublish(
    state: State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    id: Path<String>,
    Form(action): Form<Action>,
) -> Result<Response, PageError> {
    set_status(state, session, headers, id, action, Status::Draft).await
}

async fn set_status(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    action: Action,
    status: Status,
) -> Result<Response, PageError> {
    csrf::verify(&session, &action.csrf, &headers)?;
    let id = video_id(&id)?;
    let patch = VideoPatch {
        status: Some(status),
        ..VideoPatch::default()
    };
    match item::apply_patch(&state.pool, id, patch, expect_version(&action.version)).await {
        Ok(_) => {
            let done = match status {
                Status::Published => "publish",
                Status::Draft => "unpublish",
            };
            Ok(Redirect::to(&format!("/admin/videos/{id}?done={done}")).into_response())
        }
        Err(error) if error.is(StatusCode::PRECONDITION_FAILED) => {
            let current = item::fetch(&state.pool, id).await?;
            let notice = views::notice(
                "error",
                html! { "Someone else changed this video meanwhile; nothing was changed. Check it below and try again." },
            );
            Ok((
                StatusCode::CONFLICT,
                render(
                    Kind::Edit(&current),
                    &session,
                    &VideoForm::of(&current),
                    &BTreeMap::new(),
                    Some(notice),
                ),
            )
                .into_response())
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn delete_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let video = item::fetch(&state.pool, video_id(&id)?).await?;
    Ok(confirm_delete(&session, &video, StatusCode::OK, None))
}

fn confirm_delete(
    session: &Session,
    video: &Video,
    status: StatusCode,
    notice: Option<Markup>,
) -> Response {
    let content = html! {
        @if let Some(notice) = notice { (notice) }
        p { "Delete “" strong { (video.title) } "”? It disappears from the feed at once; this cannot be undone." }
        form.inline method="post" action={ "/admin/videos/" (video.id) "/delete" } {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="version" value=(video.version);
            button.danger type="submit" { "Delete" }
        }
        " "
        a.button href={ "/admin/videos/" (video.id) } { "Cancel" }
    };
    (status, views::page("Delete video", &session.csrf, content)).into_response()
}

pub async fn delete(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(action): Form<Action>,
) -> Result<Response, PageError> {
    csrf::verify(&session, &action.csrf, &headers)?;
    let id = video_id(&id)?;
    match item::delete(&state.pool, id, expect_version(&action.version)).await {
        Ok(()) => Ok(Redirect::to("/admin/videos?done=deleted").into_response()),
        Err(error) if error.is(StatusCode::PRECONDITION_FAILED) => {
            let current = item::fetch(&state.pool, id).await?;
            let notice = views::notice(
                "error",
                html! { "Someone else changed this video meanwhile; it was not deleted. Check it and confirm again." },
            );
            Ok(confirm_delete(
                &session,
                &current,
                StatusCode::CONFLICT,
                Some(notice),
            ))
        }
        Err(error) => Err(error.into()),
    }
}
