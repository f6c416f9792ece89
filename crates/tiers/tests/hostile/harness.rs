//! A `tiers up` child process on free loopback ports, its resource use
//! from `/proc`, and a minimal PostgreSQL wire client that can send what a
//! real driver never would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use tiers_testkit::free_port;

/// A running `tiers up`; killed when dropped.
pub struct Up {
    pub child: Child,
    pub web: u16,
    pub ap: u16,
    pub db: u16,
    pub web_admin: u16,
    _dir: tempfile::TempDir,
    _out: BufReader<std::process::ChildStdout>,
}

impl Up {
    /// Starts `tiers up` with `extra` settings, (section, `key = value`
    /// lines), in its tiers.toml; `DB_PORT` in them stands for the DB
    /// tier's port.
    pub fn start(extra: &[(&str, &str)]) -> Up {
        Up::start_with(extra, |_| {})
    }

    /// As [`Up::start`], letting the caller adjust the command (limits).
    pub fn start_with(extra: &[(&str, &str)], adjust: impl FnOnce(&mut Command)) -> Up {
        let dir = tempfile::tempdir().unwrap();
        let (web, ap, db, web_admin) = (free_port(), free_port(), free_port(), free_port());
        let section = |name: &str| -> String {
            extra
                .iter()
                .filter(|(s, _)| *s == name)
                .map(|(_, lines)| format!("{}\n", lines.replace("DB_PORT", &db.to_string())))
                .collect()
        };
        std::fs::write(
            dir.path().join("tiers.toml"),
            format!(
                "[db]\nlisten = \"127.0.0.1:{db}\"\nadmin = \"127.0.0.1:0\"\n{}\
                 [ap]\nlisten = \"127.0.0.1:{ap}\"\nadmin = \"127.0.0.1:0\"\n{}\
                 [web]\nlisten = \"127.0.0.1:{web}\"\nadmin = \"127.0.0.1:{web_admin}\"\n{}",
                section("db"),
                section("ap"),
                section("web"),
            ),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tiers"));
        command
            .arg("up")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        adjust(&mut command);
        let mut child = command.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains(&format!("127.0.0.1:{web}")), "{line}");
        Up {
            child,
            web,
            ap,
            db,
            web_admin,
            _dir: dir,
            _out: out,
        }
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// The most resident memory the process has had so far, in KiB: big
    /// buffers are returned to the system when freed, so only the peak
    /// shows what a request held at once.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server process is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect(field)
    }

    /// User plus system CPU time used so far.
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the server process is alive");
        // Fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf only reads a system constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }

    /// Panics unless the process is still running.
    pub fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the tiers process died"
        );
    }

    /// One HTTP/1.1 request to `port`; the whole response.
    pub fn http(&self, port: u16, request: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    pub fn get(&self, port: u16, path: &str) -> String {
        self.http(
            port,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL wire connection speaking the simple protocol by hand.
pub struct Pg {
    pub stream: TcpStream,
}

/// What a statement came back with.
#[derive(Debug)]
pub struct Reply {
    /// SQLSTATE of an ErrorResponse, if any.
    pub error: Option<(String, String)>,
    /// Text of each column of each DataRow.
    pub rows: Vec<Vec<Option<String>>>,
}

impl Pg {
    pub fn connect(port: u16) -> Pg {
        let mut pg = Pg::start(port, "tiers");
        let reply = pg.until_ready().expect("startup");
        assert!(reply.error.is_none(), "startup: {:?}", reply.error);
        pg
    }

    /// Connects and sends the startup message for `user`, nothing more.
    pub fn start(port: u16, user: &str) -> Pg {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&196608u32.to_be_bytes());
        for (k, v) in [("user", user), ("database", "tiers")] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        stream.write_all(&msg).unwrap();
        Pg { stream }
    }

    /// Sends one message of type `tag` with `body`.
    pub fn send(&mut self, tag: u8, body: &[u8]) -> std::io::Result<()> {
        let mut msg = vec![tag];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(body);
        self.stream.write_all(&msg)
    }

    /// Runs one simple-protocol Query.
    pub fn query(&mut self, sql: &str) -> std::io::Result<Reply> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(b'Q', &body)?;
        self.until_ready()
    }

    /// Reads one message: its type and body.
    pub fn read_message(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body)?;
        Ok((head[0], body))
    }

    /// Reads messages up to ReadyForQuery (or the end of the connection
    /// after a FATAL error).
    pub fn until_ready(&mut self) -> std::io::Result<Reply> {
        let mut reply = Reply {
            error: None,
            rows: Vec::new(),
        };
        loop {
            let (tag, body) = match self.read_message() {
                Ok(m) => m,
                Err(e) if reply.error.is_some() => {
                    let _ = e;
                    return Ok(reply);
                }
                Err(e) => return Err(e),
            };
            match tag {
                b'Z' => return Ok(reply),
                b'E' => reply.error = Some(error_fields(&body)),
                b'D' => reply.rows.push(data_row(&body)),
                _ => {}
            }
        }
    }
}

fn error_fields(body: &[u8]) -> (String, String) {
    let (mut code, mut message) = (String::new(), String::new());
    for field in body.split(|b| *b == 0) {
        match field.first() {
            Some(b'C') => code = String::from_utf8_lossy(&field[1..]).into_owned(),
            Some(b'M') => message = String::from_utf8_lossy(&field[1..]).into_owned(),
            _ => {}
        }
    }
    (code, message)
}

fn data_row(body: &[u8]) -> Vec<Option<String>> {
    let n = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            let len = len as usize;
            out.push(Some(
                String::from_utf8_lossy(&body[at..at + len]).into_owned(),
            ));
            at += len;
        }
    }
    out
}

/// An HTTP/1.1 keep-alive connection for many small requests.
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub fn connect(port: u16) -> KeepAlive {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        KeepAlive {
            reader: BufReader::new(s),
        }
    }

    /// GETs `path`; the status code and the body.
    pub fn get(&mut self, path: &str) -> (u16, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}
