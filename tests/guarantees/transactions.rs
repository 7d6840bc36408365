//! A transaction that fails after its rows are written leaves no video and
//! no event.

use super::*;

async fn counts(pool: &PgPool) -> (i64, i64) {
    let videos: i64 = sqlx::query_scalar("select count(*) from videos")
        .fetch_one(pool)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("select count(*) from video_events")
        .fetch_one(pool)
        .await
        .unwrap();
    (videos, events)
}

/// The title a test's deferred trigger refuses at commit, after the rows,
/// their events and their counters were all written.
const REFUSED: &str = "refused at commit";

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn a_transaction_that_fails_after_writing_leaves_no_video_and_no_event(
    pool_options: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_options.connect_with(connect.clone()).await.unwrap();
    let env = Env::for_test(&connect);
    let (write, http) = write_api_ready(&env).await;
    let kept = created_id(
        admin(&http, &write, Method::POST, "/v1/videos")
            .json(&video_body("kept", &["summer"], "published"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let doomed = created_id(
        admin(&http, &write, Method::POST, "/v1/videos")
            .json(&video_body(REFUSED, &["summer"], "published"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let feed_counts = || async {
        sqlx::query_scalar::<_, String>(
            "select string_agg(format('%s:%s:%s', tag, published, draft), ',' order by tag) from feed_counts",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = (counts(&pool).await, feed_counts().await);
    let version = |id: Uuid| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select version from videos where id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let kept_version = version(kept).await;

    // Refused at commit: every row of the statement is written by then.
    sqlx::raw_sql(&format!(
        "create function e2e_refuse() returns trigger language plpgsql as $$
         begin
           if coalesce(new.title, old.title) = '{REFUSED}' then
             raise exception 'refused';
           end if;
           return null;
         end $$;
         create constraint trigger e2e_refuse after insert or update or delete on videos
           deferrable initially deferred
           for each row execute function e2e_refuse();"
    ))
    .execute(&pool)
    .await
    .unwrap();
    let mut batch: Vec<Value> = (0..200)
        .map(|i| video_body(&format!("b{i}"), &["summer", "batch"], "published"))
        .collect();
    batch.push(video_body(REFUSED, &["summer"], "published"));
    let attempts = [
        (
            Method::POST,
            "/v1/videos/batch".to_owned(),
            json!({"videos": batch}),
        ),
        (
            Method::POST,
            "/v1/videos".to_owned(),
            video_body(REFUSED, &["winter"], "published"),
        ),
        (
            Method::PATCH,
            format!("/v1/videos/{kept}"),
            json!({"title": REFUSED, "tags": ["winter"]}),
        ),
        (Method::DELETE, format!("/v1/videos/{doomed}"), Value::Null),
    ];
    for (method, path, body) in attempts {
        let mut request = admin(&http, &write, method.clone(), &path);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_reveals_nothing(
            &format!("{method} {path} refused at commit"),
            response,
            &[StatusCode::INTERNAL_SERVER_ERROR],
            &["refused"],
        )
        .await;
        assert_eq!(
            (counts(&pool).await, feed_counts().await),
            before,
            "{method} {path}: (videos, events), feed counts changed"
        );
    }
    assert_eq!(version(kept).await, kept_version);
    sqlx::raw_sql("drop trigger e2e_refuse on videos")
        .execute(&pool)
        .await
        .unwrap();

    // The backend terminated in the middle of a batch, after its rows were
    // written: a trigger holds the statement there until the test kills it.
    sqlx::raw_sql(
        "create function e2e_stall() returns trigger language plpgsql as $$
         begin
           if new.title = 'stall' then perform pg_sleep(60); end if;
           return null;
         end $$;
         create trigger e2e_stall after insert on videos
           for each row execute function e2e_stall();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut batch: Vec<Value> = (0..200)
        .map(|i| video_body(&format!("s{i}"), &["summer"], "published"))
        .collect();
    batch.push(video_body("stall", &["summer"], "published"));
    let request = admin(&http, &write, Method::POST, "/v1/videos/batch")
        .json(&json!({"videos": batch}))
        .send();
    let in_flight = tokio::spawn(request);
    let stalled = wait_until(Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity
             where datname = current_database() and wait_event = 'PgSleep'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    assert!(stalled, "the batch never reached its last row");
    let terminated: bool = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and wait_event = 'PgSleep'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(terminated);
    let response = in_flight.await.unwrap().unwrap();
    assert_reveals_nothing(
        "a batch whose backend was terminated",
        response,
        &[
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ],
        &["stall", "terminat"],
    )
    .await;
    assert_eq!(
        (counts(&pool).await, feed_counts().await),
        before,
        "the terminated batch left rows behind: (videos, events), feed counts"
    );

    // And the API is unharmed: the next batch goes through, one event each.
    sqlx::raw_sql("drop trigger e2e_stall on videos")
        .execute(&pool)
        .await
        .unwrap();
    let response = admin(&http, &write, Method::POST, "/v1/videos/batch")
        .json(&json!({"videos": [video_body("after", &[], "published"), video_body("after 2", &[], "draft")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let ((videos, events), _) = before;
    assert_eq!(counts(&pool).await, (videos + 2, events + 2));
}
