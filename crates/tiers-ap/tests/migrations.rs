//! Migrations against a live `tiers db`, through tokio-postgres.

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
