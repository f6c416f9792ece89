//! A real browser against `tiers up`: headless Chromium loads the board's
//! Ajax page (a static file from the web tier), which adds a post through
//! its form and must see it appear in the list without a reload, the data
//! going through the AP tier's REST API into the DB tier.
//!
//! It needs Debian's `chromium`, so it is `#[ignore]`d in the plain test
//! run; `.ci/run` installs the package and runs it with `--ignored`. On
//! failure it saves a screenshot and prints where.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use tiers_testkit::free_port;

fn chromium(args: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .args(args)
        .output()
        .expect("chromium is not installed; .ci/run installs it, or: apt-get install chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs Chromium (run by .ci/run)"]
fn the_ajax_page_adds_a_post_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (web, ap, db) = (free_port(), free_port(), free_port());
    std::fs::write(
        dir.path().join("tiers.toml"),
        format!(
            "[db]\nlisten = \"127.0.0.1:{db}\"\nadmin = \"127.0.0.1:0\"\n\
             [ap]\nlisten = \"127.0.0.1:{ap}\"\nadmin = \"127.0.0.1:0\"\n\
             [web]\nlisten = \"127.0.0.1:{web}\"\nadmin = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiers"))
        .arg("up")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("open http://"), "{line}");

    let url = format!("http://127.0.0.1:{web}/static/app.html#selftest");
    let dom = chromium(&["--virtual-time-budget=15000", "--dump-dom", &url]);
    let passed = dom
        .split("data-selftest=\"passed:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string);
    let Some(title) = passed else {
        let shot = std::env::temp_dir().join("tiers-browser-failure.png");
        chromium(&[
            &format!("--screenshot={}", shot.display()),
            "--window-size=800,1000",
            "--virtual-time-budget=15000",
            &url,
        ]);
        let _ = child.kill();
        panic!(
            "the post did not appear; screenshot at {}; DOM:\n{}",
            shot.display(),
            &dom[..dom.len().min(3000)]
        );
    };
    // It really went through the tiers: the API has it.
    let mut s = TcpStream::connect(("127.0.0.1", web)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /api/posts?title=eq.{title}&select=author HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.ends_with(r#"[{"author":"browser"}]"#), "{reply}");
    let _ = child.kill();
    let _ = child.wait();
}
