//! The baseline: read-api's exact response bytes (identity and gzip) served
//! from one minimal axum handler with no I/O behind it. Its requests/s are the
//! ceiling for an HTTP server on this machine, so read-api's hit path is
//! judged as a ratio to it.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap, HeaderValue, Response},
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
    let app = Router::new().fallback(serve).with_state(bodies);
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
