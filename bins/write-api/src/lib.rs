//! `write-api`: the admin API over videos (the command side). See the README.
//!
//! [`start`] builds the app and serves it on a bound listener (port 0 works,
//! for tests); `main` parses [`config::Cli`] and calls [`run`], [`migrate`] or
//! [`seed::run`].

mod admin;
mod auth;
mod body;
pub mod config;
mod error;
mod idempotency;
mod openapi;
mod ops;
mod preconditions;
mod schema;
pub mod seed;
mod videos;
mod warmup;

use std::{net::SocketAddr, time::Duration};

use axum::{middleware::from_fn_with_state, routing::any, Router};
use shared::Problem;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{auth::AdminTokens, config::ServeArgs, error::ApiError, schema::SchemaStatus};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ADMIN_TOKENS must hold at least one non-empty token; refusing to start")]
    NoAdminTokens,
    #[error("invalid database settings")]
    Database(#[source] sqlx::Error),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
    #[error("migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A server started by [`start`].
pub struct Running {
    /// The address actually bound.
    pub addr: SocketAddr,
    /// Ends after the shutdown token is cancelled and requests have drained.
    pub server: JoinHandle<std::io::Result<()>>,
}

/// Binds, starts answering at once, and applies pending migrations in the
/// background (`/v1` and `/readyz` answer 503 until they are applied).
pub async fn start(
    args: &ServeArgs,
    pool: PgPool,
    shutdown: CancellationToken,
) -> Result<Running, Error> {
    let tokens = AdminTokens::new(&args.admin_tokens).ok_or(Error::NoAdminTokens)?;
    let listener = shared::http::bind(&args.listen_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: args.listen_addr.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(Error::Serve)?;
    let schema = schema::migrate_in_background(pool.clone(), shutdown.clone());
    idempotency::prune_periodically(pool.clone(), shutdown.clone());
    let console = admin::router(pool.clone(), tokens.clone(), &args.console);
    let app = app(pool, tokens, schema, console, args.http.request_timeout());
    let server = tokio::spawn(shared::http::serve(
        listener,
        app,
        shutdown,
        args.http.shutdown_grace(),
    ));
    Ok(Running { addr, server })
}

/// `write-api serve`: runs until the shutdown token is cancelled.
pub async fn run(args: ServeArgs, shutdown: CancellationToken) -> Result<(), Error> {
    let pool = shared::db::pool(&args.database, "write-api").map_err(Error::Database)?;
    let running = start(&args, pool, shutdown).await?;
    running
        .server
        .await
        .map_err(|e| Error::Serve(std::io::Error::other(e)))?
        .map_err(Error::Serve)
}

/// `write-api migrate` (and the start of `seed`): applies pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), Error> {
    shared::db::MIGRATOR.run(pool).await?;
    Ok(())
}

fn app(
    pool: PgPool,
    tokens: AdminTokens,
    schema: SchemaStatus,
    console: Router,
    request_timeout: Duration,
) -> Router {
    let (v1, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(videos::router())
        .split_for_parts();
    let openapi_json = openapi::finish(&api);
    // Unknown paths under /v1 are routed here rather than to the global
    // fallback, so that they too need a token first.
    let unknown = || async { ApiError::from(Problem::not_found("No such resource.")) };
    let v1 = v1
        .route("/v1", any(unknown))
        .route("/v1/", any(unknown))
        .route("/v1/{*rest}", any(unknown))
        .layer(from_fn_with_state(schema.clone(), schema::require_ready))
        .layer(from_fn_with_state(tokens, auth::require_bearer))
        .with_state(pool.clone());
    let console = console.layer(from_fn_with_state(schema.clone(), schema::require_ready));
    shared::http::with_common_layers(
        v1.merge(console)
            .merge(ops::router(pool, schema, openapi_json)),
        request_timeout,
    )
}
