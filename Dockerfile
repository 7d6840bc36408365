# syntax=docker/dockerfile:1
# One small image holding the three binaries: write-api, read-api, invalidator.
# The build checks SQL against the committed .sqlx/ data: no database needed.

FROM rust:1-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true CARGO_TERM_COLOR=never
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p write-api -p read-api -p invalidator \
    && mkdir -p /out \
    && cp target/release/write-api target/release/read-api target/release/invalidator /out/

FROM debian:bookworm-slim
# bash is there for the compose health checks (no curl in the image).
RUN useradd --system --uid 10001 --no-create-home videofeed
COPY --from=build /out/ /usr/local/bin/
USER videofeed
ENV LOG_FORMAT=json
EXPOSE 8080 8081 8082
# Each container picks its binary: `write-api serve|migrate|seed`, `read-api`,
# `invalidator`.
CMD ["write-api", "serve"]
