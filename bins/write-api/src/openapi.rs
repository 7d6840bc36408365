//! The OpenAPI document (served at `/openapi.json`): the paths come from the
//! handlers' annotations, the request-body and parameter schemas from
//! `shared::openapi`, and [`finish`] adds what annotations cannot say.

use serde_json::{json, Value};
use shared::domain::{NewVideo, VideoPatch};
use utoipa::{
    openapi::{
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        RefOr, Schema,
    },
    Modify, OpenApi, PartialSchema, ToSchema,
};

use crate::idempotency;

#[derive(OpenApi)]
#[openapi(
    info(title = "write-api", description = "Admin CRUD over videos. Every /v1 route needs `Authorization: Bearer <token>`."),
    modifiers(&BearerAuth),
    tags((name = "videos", description = "The video resource"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The served document: the annotations' document made exact by
/// `shared::openapi::refine`, with the `Idempotency-Key` rules, the headers
/// of a create and the links from a create to the item's operations.
pub fn finish(api: &utoipa::openapi::OpenApi) -> String {
    let mut document = match serde_json::to_value(api) {
        Ok(document) => document,
        Err(error) => {
            tracing::error!(%error, "cannot serialize the OpenAPI document");
            return "{}".to_owned();
        }
    };
    shared::openapi::refine(&mut document);
    // Set as JSON: utoipa's schema types have no `if`/`then`.
    let schemas = &mut document["components"]["schemas"];
    schemas[NewVideo::name().as_ref()] = shared::openapi::video_create_schema();
    schemas[VideoPatch::name().as_ref()] = shared::openapi::video_patch_schema();
    add_write_rules(&mut document);
    serde_json::to_string(&document).unwrap_or_else(|_| "{}".to_owned())
}

fn add_write_rules(document: &mut Value) {
    let paths = &mut document["paths"];
    let create = &mut paths["/v1/videos"]["post"];
    if let Some(parameters) = create["parameters"].as_array_mut() {
        for parameter in parameters {
            if parameter["name"] == idempotency::HEADER.as_str()
                || parameter["name"] == "Idempotency-Key"
            {
                // Visible ASCII; spaces inside only (HTTP trims them at the ends).
                parameter["schema"] = json!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": idempotency::MAX_KEY_CHARS,
                    "pattern": format!(
                        "^[!-~](?:[ -~]{{0,{}}}[!-~])?$",
                        idempotency::MAX_KEY_CHARS - 2
                    ),
                });
            }
        }
    }
    let created = &mut create["responses"]["201"];
    created["headers"]["Location"] = json!({
        "description": "The new video's URL, relative: `/v1/videos/{id}`.",
        "schema": {"type": "string", "pattern": "^/v1/videos/[0-9a-f-]{36}$"},
    });
    created["headers"]["Idempotent-Replayed"] = json!({
        "description": "Present on a replay of an earlier request with the same Idempotency-Key: nothing was created.",
        "schema": {"type": "string", "enum": ["true"]},
    });
    created["links"] = item_links("$response.body#/id");
    paths["/v1/videos/batch"]["post"]["responses"]["201"]["links"] =
        item_links("$response.body#/videos/0/id");
    paths["/v1/videos"]["get"]["responses"]["200"]["links"] =
        item_links("$response.body#/results/0/id");
}

/// Links from a response holding a video's id to the item's operations, so
/// clients and stateful tools reach them with real ids.
fn item_links(id: &str) -> Value {
    let link = |operation: &str, description: &str| json!({"operationId": operation, "parameters": {"id": id}, "description": description});
    json!({
        "GetVideo": link("get_video", "The video"),
        "PatchVideo": link("patch_video", "Change the video"),
        "DeleteVideo": link("delete_video", "Delete the video"),
    })
}

/// 1 to 1000 videos to create, all or none (`POST /v1/videos/batch`): the
/// one request body with no validated type of its own to carry its schema
/// (`parse_batch` answers the videos).
pub struct BatchCreate;

impl PartialSchema for BatchCreate {
    fn schema() -> RefOr<Schema> {
        shared::openapi::schema_of(shared::openapi::batch_create_schema(
            &json!({"$ref": format!("#/components/schemas/{}", NewVideo::name())}),
        ))
    }
}

impl ToSchema for BatchCreate {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((NewVideo::name().into_owned(), NewVideo::schema()));
    }
}
