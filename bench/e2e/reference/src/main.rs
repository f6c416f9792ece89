//! The bench/e2e reference: the board's dynamic pages as a plain axum
//! service over PostgreSQL (tokio-postgres, deadpool pool of 16), no cache.
//! Usage: board-reference LISTEN_ADDR POSTGRES_URL

use std::fmt::Write as _;

use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::Deserialize;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn index(State(pool): State<Pool>) -> Response {
    let Ok(c) = pool.get().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let rows = match c
        .query(
            "SELECT id, title, author, created_at::text, \
             (SELECT count(*) FROM comments c WHERE c.post_id = p.id) \
             FROM posts p ORDER BY id DESC LIMIT 21",
            &[],
        )
        .await
    {
        Ok(r) => r,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let mut html = String::from(
        "<!doctype html><html><head><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main><ul>",
    );
    for r in rows.iter().take(20) {
        let (id, title, author, at, n): (i32, String, String, String, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let _ = write!(
            html,
            "<li><a href=\"/posts/{id}\">{}</a> by {} · {} · {n} comments</li>",
            escape(&title),
            escape(&author),
            &at[..16.min(at.len())]
        );
    }
    html.push_str("</ul></main></body></html>");
    Html(html).into_response()
}

async fn post_json(State(pool): State<Pool>, Path(id): Path<i32>) -> Response {
    let Ok(c) = pool.get().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match c
        .query_opt(
            "SELECT id, title, body, author, created_at::text FROM posts WHERE id = $1",
            &[&id],
        )
        .await
    {
        Ok(Some(r)) => Json(serde_json::json!({
            "id": r.get::<_, i32>(0), "title": r.get::<_, String>(1), "body": r.get::<_, String>(2),
            "author": r.get::<_, String>(3), "created_at": r.get::<_, String>(4),
        }))
        .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Deserialize)]
struct NewPost {
    title: String,
    body: String,
    author: String,
}

async fn create(State(pool): State<Pool>, Form(p): Form<NewPost>) -> Response {
    if p.title.is_empty() || p.author.is_empty() || p.title.len() > 200 {
        return (StatusCode::BAD_REQUEST, "invalid").into_response();
    }
    let Ok(c) = pool.get().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match c
        .query_one(
            "INSERT INTO posts (title, body, author) VALUES ($1, $2, $3) RETURNING id",
            &[&p.title, &p.body, &p.author],
        )
        .await
    {
        Ok(r) => Redirect::to(&format!("/posts/{}", r.get::<_, i32>(0))).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (listen, url) = (&args[1], &args[2]);
    let config: tokio_postgres::Config = url.parse().expect("postgres url");
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager).max_size(16).build().expect("pool");
    let app = Router::new()
        .route("/", get(index))
        .route("/api/posts/{id}", get(post_json))
        .route("/posts", axum::routing::post(create))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    let _ = header::CONTENT_TYPE;
    axum::serve(listener, app).await.expect("serve");
}
