//! Error bodies never carry SQL, file paths or stack traces, whatever failed.

use super::*;

/// Text a failing trigger puts in its error: SQL, a path and a panic-like
/// line, none of which may reach a client.
const PLANTED: &str = "select secret_column from hidden_table at /srv/app/src/db.rs:42 panicked";

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn error_bodies_never_carry_sql_paths_or_stack_traces(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let env = Env::for_test(&connect);
    let (write, http) = write_api_ready(&env).await;
    let secrets = ["secret_column", "hidden_table", "/srv/app", "e2e_"];

    // A database error the API does not expect: a trigger raising one.
    sqlx::raw_sql(&format!(
        "create function e2e_explode() returns trigger language plpgsql as $$
         begin
           if new.title = 'explode' then raise exception '{PLANTED}'; end if;
           return new;
         end $$;
         create trigger e2e_explode before insert or update on videos
           for each row execute function e2e_explode();"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let response = admin(&http, &write, Method::POST, "/v1/videos")
        .json(&video_body("explode", &[], "published"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "create failing in a trigger",
        response,
        &[StatusCode::INTERNAL_SERVER_ERROR],
        &secrets,
    )
    .await;
    let id = created_id(
        admin(&http, &write, Method::POST, "/v1/videos")
            .json(&video_body("calm", &[], "published"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let response = admin(&http, &write, Method::PATCH, &format!("/v1/videos/{id}"))
        .json(&json!({"title": "explode"}))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "patch failing in a trigger",
        response,
        &[StatusCode::INTERNAL_SERVER_ERROR],
        &secrets,
    )
    .await;

    // Constraint violations: a check and a unique index of the test's own.
    sqlx::raw_sql(
        "alter table videos add constraint e2e_no_shouting check (title <> upper(title));
         create unique index e2e_unique_title on videos (title);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let response = admin(&http, &write, Method::POST, "/v1/videos")
        .json(&video_body("SHOUTING", &[], "published"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "check violation",
        response,
        &[
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::INTERNAL_SERVER_ERROR,
        ],
        &secrets,
    )
    .await;
    let response = admin(&http, &write, Method::POST, "/v1/videos")
        .json(&video_body("calm", &[], "published"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "unique violation",
        response,
        &[StatusCode::UNPROCESSABLE_ENTITY, StatusCode::CONFLICT],
        &secrets,
    )
    .await;
    let response = admin(&http, &write, Method::POST, "/v1/videos/batch")
        .json(&json!({"videos": [video_body("fresh", &[], "published"), video_body("calm", &[], "published")]}))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "unique violation in a batch",
        response,
        &[StatusCode::UNPROCESSABLE_ENTITY, StatusCode::CONFLICT],
        &secrets,
    )
    .await;

    // The read API on a database whose table has gone.
    let read = env.read_api();
    let ready = wait_until(Duration::from_secs(30), || async {
        http.get(read.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(ready, "read-api never up; log:\n{}", read.log());
    sqlx::raw_sql("alter table videos rename to e2e_hidden_videos")
        .execute(&pool)
        .await
        .unwrap();
    for path in ["/v1/videos?page_size=3", &format!("/v1/videos/{id}")] {
        let response = http.get(read.url(path)).send().await.unwrap();
        assert_reveals_nothing(
            &format!("read-api {path} without its table"),
            response,
            &[
                StatusCode::INTERNAL_SERVER_ERROR,
                StatusCode::SERVICE_UNAVAILABLE,
            ],
            &secrets,
        )
        .await;
    }
    let response = admin(&http, &write, Method::GET, &format!("/v1/videos/{id}"))
        .send()
        .await
        .unwrap();
    assert_reveals_nothing(
        "write-api read without its table",
        response,
        &[
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::SERVICE_UNAVAILABLE,
        ],
        &secrets,
    )
    .await;

    // Postgres unreachable: a 503 that does not say where it was looked for.
    let gone = Env::new("postgres://postgres@127.0.0.1:1/nowhere".into());
    let unreachable = gone.write_api();
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/videos",
            Some(video_body("a", &[], "published")),
        ),
        (Method::GET, "/v1/videos", None),
        (
            Method::POST,
            "/v1/videos/batch",
            Some(json!({"videos": [video_body("a", &[], "published")]})),
        ),
    ] {
        let mut request = admin(&http, &unreachable, method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_reveals_nothing(
            &format!("{method} {path} with Postgres unreachable"),
            request.send().await.unwrap(),
            &[StatusCode::SERVICE_UNAVAILABLE],
            &secrets,
        )
        .await;
    }
}
