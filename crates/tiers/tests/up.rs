//! `tiers up` as a real process in an empty directory: it writes the
//! bundled board app, starts the three tiers on their own ports, serves
//! pages through the whole path, and stops cleanly with a checkpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tiers_testkit::free_port;

fn request(port: u16, text: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(text.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Writes a tiers.toml with free ports; returns the web port.
fn configure(dir: &std::path::Path) -> u16 {
    let (web, ap, db) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("tiers.toml"),
        format!(
            "[db]\nlisten = \"127.0.0.1:{db}\"\nadmin = \"127.0.0.1:0\"\n\
             [ap]\nlisten = \"127.0.0.1:{ap}\"\nadmin = \"127.0.0.1:0\"\n\
             [web]\nlisten = \"127.0.0.1:{web}\"\nadmin = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    web
}

/// Starts `tiers up` in `dir` and waits until it says where it is.
fn start(dir: &std::path::Path, web: u16) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiers"))
        .arg("up")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!("open http://127.0.0.1:{web}/")),
        "{line}"
    );
    (child, out)
}

fn post(web: u16, body: &str) -> String {
    request(
        web,
        &format!(
            "POST /posts HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn titles(web: u16) -> String {
    request(
        web,
        "GET /api/posts?select=title&order=id&limit=10000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
}

#[test]
fn up_serves_the_board_through_all_three_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let web = configure(dir.path());
    let (mut child, mut out) = start(dir.path(), web);
    assert!(
        dir.path().join("tiers-data/apps/board/app.toml").exists(),
        "the bundled app was written"
    );

    let page = request(
        web,
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Welcome to the board"), "{page}");
    let lower = page.to_lowercase();
    assert!(
        lower.contains("x-request-id:"),
        "through the web tier: {page}"
    );
    let css = request(
        web,
        "GET /static/style.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        css.starts_with("HTTP/1.1 200") && css.to_lowercase().contains("content-type: text/css"),
        "{css}"
    );
    let body = "title=From+the+test&author=ci&body=hello";
    let posted = request(
        web,
        &format!(
            "POST /posts HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(posted.starts_with("HTTP/1.1 303"), "{posted}");
    let api = request(
        web,
        "GET /api/posts?select=title&order=id HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(
        api.ends_with(r#"[{"title":"Welcome to the board"},{"title":"From the test"}]"#),
        "{api}"
    );

    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("final checkpoint"), "{rest}");
    // The data is there next time.
    let (mut again, _out_again) = start(dir.path(), web);
    assert!(
        titles(web).ends_with(r#"[{"title":"Welcome to the board"},{"title":"From the test"}]"#),
        "restart keeps the data"
    );
    let dup = request(
        web,
        "POST /api/posts HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert!(
        dup.starts_with("HTTP/1.1 405"),
        "the board's REST API is read-only: {dup}"
    );
    again.kill().unwrap();
    again.wait().unwrap();
}

/// kill -9 while clients write: every POST answered 303 is there after a
/// restart.
#[test]
fn sigkill_mid_writes_loses_no_answered_post() {
    let dir = tempfile::tempdir().unwrap();
    let web = configure(dir.path());
    let (mut child, _out) = start(dir.path(), web);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                for i in 0..10_000 {
                    let title = format!("w{w}-{i}");
                    let r = std::panic::catch_unwind(|| {
                        post(web, &format!("title={title}&author=load&body=x"))
                    });
                    match r {
                        Ok(text) if text.starts_with("HTTP/1.1 303") => answered.push(title),
                        _ => break,
                    }
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let answered: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(answered.len() > 20, "writes happened: {}", answered.len());
    let (mut again, _out_again) = start(dir.path(), web);
    let stored = titles(web);
    for t in &answered {
        assert!(
            stored.contains(&format!("\"{t}\"")),
            "answered post {t} lost; after the restart: {}",
            &stored[..stored.len().min(600)]
        );
    }
    again.kill().unwrap();
    again.wait().unwrap();
}

#[path = "../../tiers-ap/tests/support/board.rs"]
mod board;

/// The whole board scenario (posts, comments, validation, search, paging,
/// the REST API) through the web tier of a fresh `tiers up`.
#[test]
fn the_board_scenario_through_tiers_up() {
    let dir = tempfile::tempdir().unwrap();
    let web = configure(dir.path());
    let (mut child, _out) = start(dir.path(), web);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(board::drive(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            web,
        ))));
    child.kill().unwrap();
    child.wait().unwrap();
}
