//! `tiers web` as a real process: SIGHUP reloads the config file without
//! dropping connections, SIGTERM lets requests in flight finish, and a new
//! process can take over the port (SO_REUSEPORT) while the old one drains.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tiers_testkit::free_port;

/// Starts `tiers web` with `config`; returns the process and its output
/// lines as they come.
fn start(config: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiers"))
        .args(["web", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let line = wait_for(&rx, "listening");
    assert!(line.contains("listening"), "{line}");
    (child, rx)
}

fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100))
            && line.contains(needle)
        {
            return line;
        }
    }
    panic!("no line containing {needle:?}");
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// One request on a fresh connection; returns the whole response text.
fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn write_config(path: &Path, port: u16, root: &Path, cache_control: &str, extra: &str) {
    std::fs::write(
        path,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\nadmin = \"127.0.0.1:0\"\nroot = {root:?}\n\
             drain_timeout = \"5s\"\n{extra}\n[web.files]\ncache_control = \"{cache_control}\"\n"
        ),
    )
    .unwrap();
}

#[test]
fn sighup_reloads_the_file_and_keeps_connections() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "file a").unwrap();
    let config = dir.path().join("tiers.toml");
    let port = free_port();
    write_config(&config, port, dir.path(), "max-age=1", "");
    let (mut child, rx) = start(&config);

    // A keep-alive connection opened before the reload...
    let mut kept = TcpStream::connect(("127.0.0.1", port)).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let ask = b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n";
    kept.write_all(ask).unwrap();
    let first = read_one(&mut kept);
    assert!(first.contains("cache-control: max-age=1"), "{first}");

    write_config(&config, port, dir.path(), "max-age=99", "");
    signal(&child, "HUP");
    wait_for(&rx, "configuration reloaded");
    // ...is still open and sees the new configuration.
    kept.write_all(ask).unwrap();
    let second = read_one(&mut kept);
    assert!(second.contains("cache-control: max-age=99"), "{second}");

    // A broken file is refused and the running configuration stays.
    std::fs::write(&config, "[web]\nlisten = \"nonsense\"\n").unwrap();
    signal(&child, "HUP");
    wait_for(&rx, "reload refused");
    assert!(get(port, "/a.txt").contains("max-age=99"));

    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

fn read_one(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

/// An upstream that answers every request after `delay`.
fn slow_upstream(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                        got.drain(..end + 4);
                        std::thread::sleep(delay);
                        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

#[test]
fn sigterm_drains_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = slow_upstream(Duration::from_millis(1500));
    let config = dir.path().join("tiers.toml");
    let port = free_port();
    write_config(
        &config,
        port,
        dir.path(),
        "no-cache",
        &format!("upstreams = [\"http://127.0.0.1:{upstream}\"]\nworkers = 2"),
    );
    let (mut child, rx) = start(&config);
    let in_flight = std::thread::spawn(move || get(port, "/slow"));
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    wait_for(&rx, "stopping");
    let reply = in_flight.join().unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("slow"), "{reply}");
    assert!(child.wait().unwrap().success());
    // Stopped accepting: the port is closed now.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_new_process_takes_over_the_port_without_refusing_anyone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "served").unwrap();
    let config = dir.path().join("tiers.toml");
    let port = free_port();
    write_config(&config, port, dir.path(), "no-cache", "");
    let (mut old, _old_rx) = start(&config);
    // Clients keep coming throughout the handover.
    let load = std::thread::spawn(move || {
        let mut failures = Vec::new();
        let mut served = 0;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && served < 5000 {
            let r = get(port, "/a.txt");
            if r.ends_with("served") {
                served += 1;
            } else {
                failures.push(r);
            }
        }
        (served, failures)
    });
    std::thread::sleep(Duration::from_millis(500));
    let (mut new, _new_rx) = start(&config);
    std::thread::sleep(Duration::from_millis(300));
    signal(&old, "TERM");
    assert!(old.wait().unwrap().success());
    let (served, failures) = load.join().unwrap();
    assert!(served > 100, "load ran: {served}");
    // Linux may reset connections still queued on the old socket at the
    // moment it closes; allow that rare race but nothing more.
    assert!(
        failures.len() <= 2,
        "{} failures of {served}: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(
        get(port, "/a.txt").ends_with("served"),
        "the new process serves"
    );
    signal(&new, "TERM");
    assert!(new.wait().unwrap().success());
}
