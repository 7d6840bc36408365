//! The baseline: read-api's exact response bytes (identity and gzip) served
//! from one minimal axum handler with no I/O behind it. Its requests/s are the
//! ceiling for an HTTP server on this machine, so read-api's hit path is
//! judged as a ratio to it.
//!
//! With `--common-layers` the same handler sits behind the middleware
//! read-api has (`shared::http::with_read_layers`: request id, trace span,
//! metrics, problem normalization, panic catching, CORS) with the same
//! tracing and metrics set-up, which separates what those layers cost from
//! what read-api's own hit path (cache lookup) costs.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, HeaderName, HeaderValue, Response},
    routing::get,
    Router,
};
use bytes::Bytes;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:18084")]
    listen: SocketAddr,
    /// The uncompressed body to serve.
    #[arg(long)]
    body: PathBuf,
    /// The gzip body served when the request accepts gzip.
    #[arg(long)]
    gzip_body: PathBuf,
    /// Serve through the project's common middleware, with its tracing and
    /// metrics installed.
    #[arg(long)]
    common_layers: bool,
    #[command(flatten)]
    telemetry: shared::config::TelemetryArgs,
}

struct Bodies {
    identity: Bytes,
    gzip: Bytes,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bodies = Arc::new(Bodies {
        identity: Bytes::from(tokio::fs::read(&args.body).await?),
        gzip: Bytes::from(tokio::fs::read(&args.gzip_body).await?),
    });
    let routes = Router::new().route("/v1/videos", get(serve));
    let app = if args.common_layers {
        shared::telemetry::init_tracing(&args.telemetry);
        // Installs the Prometheus recorder, as every binary's /metrics does.
        let _ = shared::telemetry::metrics_handle();
        shared::http::with_read_layers(
            routes.with_state(bodies),
            &[header::ETAG, HeaderName::from_static("x-cache")],
        )
    } else {
        routes.fallback(serve).with_state(bodies)
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("listening addr={}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The same headers read-api sends on a hit, so both send the same bytes.
async fn serve(State(bodies): State<Arc<Bodies>>, request: HeaderMap) -> Response<Body> {
    let gzip = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let body = if gzip { &bodies.gzip } else { &bodies.identity };
    let mut response = Response::new(Body::from(body.clone()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::ETAG,
        HeaderValue::from_static("\"0123456789abcdef0123456789abcdef\""),
    );
    headers.insert("x-cache", HeaderValue::from_static("HIT"));
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}
