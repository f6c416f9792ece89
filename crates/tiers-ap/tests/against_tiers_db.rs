//! The AP tier against a live `tiers db`, through tokio-postgres: migrations
//! and SQL with named parameters.

use std::path::Path;

use tiers_ap::{App, migrate};
use tiers_db::{Server, ServerConfig};

async fn db() -> (tempfile::TempDir, String, tokio::sync::oneshot::Sender<()>) {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("db"));
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    (
        dir,
        format!("host=127.0.0.1 port={} user=app dbname=tiers", addr.port()),
        stop,
    )
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_in_order_and_edits_are_refused() {
    let (_db_dir, url, _stop) = db().await;
    let app_dir = tempfile::tempdir().unwrap();
    let a = app_dir.path();
    write(a, "app.toml", "name = \"board\"\n");
    write(
        a,
        "schema/001_posts.sql",
        "CREATE TABLE posts (id SERIAL PRIMARY KEY, title TEXT NOT NULL);\n\
         INSERT INTO posts (title) VALUES ('hello');",
    );
    write(
        a,
        "schema/002_comments.sql",
        "CREATE TABLE comments (id SERIAL PRIMARY KEY, post_id INTEGER NOT NULL, body TEXT);",
    );
    let mut client = connect(&url).await;
    let report = migrate::apply(&mut client, &App::load(a).unwrap().migrations)
        .await
        .unwrap();
    assert_eq!(report.applied, [1, 2]);
    let n: i64 = client
        .query_one("SELECT count(*) FROM posts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // Again: nothing to do, and the data is not inserted twice.
    let report = migrate::apply(&mut client, &App::load(a).unwrap().migrations)
        .await
        .unwrap();
    assert_eq!((report.applied.len(), report.already), (0, vec![1, 2]));
    let n: i64 = client
        .query_one("SELECT count(*) FROM posts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // A new one is applied; a broken one is rolled back and stops the run.
    write(
        a,
        "schema/003_author.sql",
        "ALTER TABLE posts ADD COLUMN author TEXT;",
    );
    write(
        a,
        "schema/004_broken.sql",
        "CREATE TABLE half (id INTEGER PRIMARY KEY); CREATE TABLE oops (;",
    );
    write(
        a,
        "schema/005_after.sql",
        "CREATE TABLE after_broken (id INTEGER);",
    );
    let e = migrate::apply(&mut client, &App::load(a).unwrap().migrations)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("004_broken.sql") && e.contains("rolled back"),
        "{e}"
    );
    client
        .execute("SELECT author FROM posts", &[])
        .await
        .unwrap();
    assert!(
        client.execute("SELECT * FROM half", &[]).await.is_err(),
        "rolled back"
    );
    assert!(
        client
            .execute("SELECT * FROM after_broken", &[])
            .await
            .is_err(),
        "not run"
    );
    let versions: Vec<i32> = client
        .query("SELECT version FROM tiers_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);

    // Fixed, it goes through with the rest.
    write(
        a,
        "schema/004_broken.sql",
        "CREATE TABLE half (id INTEGER PRIMARY KEY);",
    );
    let report = migrate::apply(&mut client, &App::load(a).unwrap().migrations)
        .await
        .unwrap();
    assert_eq!(report.applied, [4, 5]);

    // Editing an applied migration is a clear error naming the file.
    write(a, "schema/001_posts.sql", "CREATE TABLE posts (id BIGINT);");
    let e = migrate::apply(&mut client, &App::load(a).unwrap().migrations)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("001_posts.sql") && e.contains("changed after it was applied"),
        "{e}"
    );

    // So is removing one.
    std::fs::remove_file(a.join("schema/001_posts.sql")).unwrap();
    let e = migrate::apply(&mut client, &App::load(a).unwrap().migrations)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("migration 1 (posts)"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_parameters_bind_safely_and_rows_become_typed_json() {
    use tiers_ap::query::{Param, compile, row_to_json};
    let (_db_dir, url, _stop) = db().await;
    let client = connect(&url).await;
    client
        .batch_execute(
            "CREATE TABLE posts (id SERIAL PRIMARY KEY, title TEXT NOT NULL, score DOUBLE PRECISION, \
             hidden BOOLEAN, day DATE, at TIMESTAMP, n BIGINT, small SMALLINT);
             INSERT INTO posts (title, score, hidden, day, at, n, small) VALUES \
             ('first', 1.5, false, '2026-11-28', '2026-11-28 12:34:56.5', 9007199254740993, 7)",
        )
        .await
        .unwrap();
    let insert =
        compile("INSERT INTO posts (title, hidden) VALUES (:title, :hidden) RETURNING id, title")
            .unwrap();
    assert_eq!(insert.names, ["title", "hidden"]);
    // A hostile value is just a value.
    let evil = Param::Text("x'); DROP TABLE posts; --".into());
    let hidden = Param::from_json(&serde_json::json!(true));
    let row = client
        .query_one(&insert.text, &[&evil, &hidden])
        .await
        .unwrap();
    let json = row_to_json(&row).unwrap();
    assert_eq!(json["title"], "x'); DROP TABLE posts; --");
    assert_eq!(json["id"], 2);

    let select = compile("SELECT * FROM posts WHERE id = :id").unwrap();
    let row = client
        .query_one(&select.text, &[&Param::Text("1".into())])
        .await
        .unwrap();
    let json = serde_json::Value::Object(row_to_json(&row).unwrap());
    assert_eq!(
        json,
        serde_json::json!({
            "id": 1, "title": "first", "score": 1.5, "hidden": false, "day": "2026-11-28",
            "at": "2026-11-28T12:34:56.5", "n": 9007199254740993i64, "small": 7
        })
    );
    let nulls = client
        .query_one(&select.text, &[&Param::Text("2".into())])
        .await
        .unwrap();
    let json = row_to_json(&nulls).unwrap();
    assert_eq!(json["score"], serde_json::Value::Null);
    // A value of the wrong shape is the database's clear error, not a crash.
    let e = client
        .query(&select.text, &[&Param::Text("abc".into())])
        .await
        .unwrap_err();
    assert!(e.as_db_error().is_some(), "{e}");
    // NULL parameters.
    let rows = client
        .query(
            "SELECT count(*) FROM posts WHERE $1::TEXT IS NULL",
            &[&Param::Null],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2);
}
