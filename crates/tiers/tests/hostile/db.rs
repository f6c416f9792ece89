//! Attacks on the DB tier's wire protocol.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::harness::{Pg, Up};

/// Issue 15's remote crash: `SELECT 1+1+...+1` with 100,000 terms (200 KB)
/// overflowed the connection thread's stack and aborted all three tiers.
/// Now: 54001, and the same connection (and process) carry on.
#[test]
fn a_statement_of_100000_terms_gets_54001_and_everything_keeps_serving() {
    let mut up = Up::start(&[]);
    let mut pg = Pg::connect(up.db);
    for op in [" + ", " OR ", " || ", " AND "] {
        let sql = format!("SELECT {}", vec!["1"; 100_000].join(op));
        let reply = pg.query(&sql).expect("an answer, not a dropped connection");
        let (code, message) = reply
            .error
            .unwrap_or_else(|| panic!("{op}: no error: {:?}", reply.rows.first().map(|r| r.len())));
        assert_eq!(code, "54001", "{op}: {message}");
        assert!(message.contains("nested"), "{message}");
    }
    let reply = pg.query("SELECT 1 + 1").unwrap();
    assert_eq!(reply.rows, vec![vec![Some("2".to_string())]]);
    up.assert_alive();
    assert!(up.get(up.web, "/").starts_with("HTTP/1.1 200"));
}

/// The DB accept loop used to end at the first `accept()` error: running
/// out of descriptors once silently disabled the DB tier for good. With
/// the descriptor limit at 256, 300 connections exhaust it; once they
/// close, the DB tier accepts and answers again.
#[test]
fn running_out_of_descriptors_does_not_stop_the_db_tier() {
    let mut up = Up::start_with(&[("db", "max_connections = 1000")], |c| {
        // SAFETY: setrlimit is async-signal-safe; it runs in the child
        // between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 256,
                    rlim_max: 256,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                Ok(())
            });
        }
    });
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], up.db));
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()
        })
        .collect();
    assert!(flood.len() > 256, "the flood reached the listener");
    std::thread::sleep(Duration::from_millis(500));
    drop(flood);
    std::thread::sleep(Duration::from_millis(1500));
    let mut pg = Pg::connect(up.db);
    let reply = pg.query("SELECT 40 + 2").unwrap();
    assert_eq!(reply.rows, vec![vec![Some("42".to_string())]]);
    up.assert_alive();
}

fn parse_message(name: &str, sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    body.extend_from_slice(sql.as_bytes());
    body.push(0);
    body.extend_from_slice(&0u16.to_be_bytes());
    body
}

/// Named prepared statements were kept without bound per connection (a
/// client preparing a new name for every query grew the server for
/// ever). Now the 1,001st is refused with 54000 until one is closed, and
/// memory stays bounded.
#[test]
fn named_prepared_statements_are_capped_per_connection() {
    let mut up = Up::start(&[]);
    let mut pg = Pg::connect(up.db);
    let before = up.rss_kib();
    for i in 0..1000 {
        pg.send(
            b'P',
            &parse_message(&format!("s{i}"), &format!("SELECT {i} + $1::int")),
        )
        .unwrap();
    }
    pg.send(b'S', &[]).unwrap();
    let reply = pg.until_ready().unwrap();
    assert!(reply.error.is_none(), "{:?}", reply.error);
    pg.send(b'P', &parse_message("one_more", "SELECT 1"))
        .unwrap();
    pg.send(b'S', &[]).unwrap();
    let (code, message) = pg.until_ready().unwrap().error.expect("refused");
    assert_eq!(code, "54000");
    assert!(
        message.contains("1000 named prepared statements"),
        "{message}"
    );
    // Closing one makes room.
    let mut close = vec![b'S'];
    close.extend_from_slice(b"s0\0");
    pg.send(b'C', &close).unwrap();
    pg.send(b'P', &parse_message("one_more", "SELECT 1"))
        .unwrap();
    pg.send(b'S', &[]).unwrap();
    assert!(pg.until_ready().unwrap().error.is_none());
    let grown = up.rss_kib().saturating_sub(before);
    assert!(
        grown < 64 << 10,
        "RSS grew by {grown} KiB for 1,000 statements"
    );
    assert_eq!(
        pg.query("SELECT 2").unwrap().rows,
        vec![vec![Some("2".to_string())]]
    );
    up.assert_alive();
}

/// A Query whose length word says 1 GiB used to be buffered as it came
/// (pgwire's limit for Query is 1 GiB). Now it is refused at its length
/// word, with FATAL 54000, after only the header was sent; the server
/// holds nothing for it and others keep working.
#[test]
fn a_one_gib_query_is_refused_at_its_length_word() {
    let mut up = Up::start(&[]);
    let before = up.rss_kib();
    let mut hostile: Vec<Pg> = (0..20).map(|_| Pg::connect(up.db)).collect();
    for pg in &mut hostile {
        let mut head = vec![b'Q'];
        head.extend_from_slice(&((1u32 << 30) - 1).to_be_bytes());
        std::io::Write::write_all(&mut pg.stream, &head).unwrap();
        // Stream 8 MiB of the promised gigabyte: the server must not keep it.
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..8 {
            if std::io::Write::write_all(&mut pg.stream, &chunk).is_err() {
                break;
            }
        }
    }
    for pg in &mut hostile {
        let (code, message) = pg.until_ready().unwrap().error.expect("refused");
        assert_eq!(code, "54000", "{message}");
        assert!(
            message.contains("longer than the server's limit"),
            "{message}"
        );
    }
    let grown = up.rss_kib().saturating_sub(before);
    assert!(grown < 32 << 10, "RSS grew by {grown} KiB");
    let mut pg = Pg::connect(up.db);
    assert_eq!(
        pg.query("SELECT 3").unwrap().rows,
        vec![vec![Some("3".to_string())]]
    );
    up.assert_alive();
}

/// `tiers up` with the DB tier on every interface and no users would
/// trust every client on the network: it refuses to start, and says why.
#[test]
fn tiers_up_refuses_trust_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::harness::free_port();
    std::fs::write(
        dir.path().join("tiers.toml"),
        format!("[db]\nlisten = \"0.0.0.0:{port}\"\n[db.users]\n"),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiers"))
        .arg("up")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no [db.users] are configured"), "{err}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// Starts SCRAM as `user`; what the server says to the client's first
/// message: its type, and the salt if it is a challenge.
fn scram_first_reply(port: u16, user: &str) -> (u8, Option<String>) {
    let mut pg = Pg::start(port, user);
    let (tag, _) = pg.read_message().unwrap();
    assert_eq!(tag, b'R', "AuthenticationSASL");
    let first = b"n,,n=,r=abcdefghijklmnopqrstuvwx";
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(first.len() as u32).to_be_bytes());
    body.extend_from_slice(first);
    pg.send(b'p', &body).unwrap();
    let (tag, body) = pg.read_message().unwrap();
    let salt = (tag == b'R')
        .then(|| String::from_utf8_lossy(&body[4..]).into_owned())
        .and_then(|s| {
            s.split(',')
                .find_map(|f| f.strip_prefix("s=").map(str::to_owned))
        });
    (tag, salt)
}

/// SCRAM used to refuse an unknown user at once, where a known one gets a
/// challenge: anyone could list the users. Now both get a challenge (the
/// unknown one with a stable salt of the same shape) and fail at the end.
#[test]
fn scram_does_not_reveal_whether_a_user_exists() {
    let mut up = Up::start(&[
        ("db", "[db.users]\napp = \"s3cret\""),
        (
            "ap",
            "db = \"postgres://app:s3cret@127.0.0.1:DB_PORT/tiers\"",
        ),
    ]);
    let (known, known_salt) = scram_first_reply(up.db, "app");
    let (unknown, unknown_salt) = scram_first_reply(up.db, "nobody");
    assert_eq!(known, b'R');
    assert_eq!(unknown, b'R', "an unknown user gets a challenge too");
    let (again, again_salt) = scram_first_reply(up.db, "nobody");
    assert_eq!(again, b'R');
    assert_eq!(unknown_salt, again_salt, "the decoy salt is stable");
    assert_eq!(
        known_salt.map(|s| s.len()),
        unknown_salt.map(|s| s.len()),
        "salts look alike"
    );
    up.assert_alive();
}
