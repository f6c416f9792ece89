//! The access log: one line per request, nginx's `combined` format (plus
//! request time, upstream and request id) or JSON. Lines are handed to a
//! writer thread through a bounded channel; when the disk cannot keep up,
//! lines are dropped and counted rather than slowing requests down.

use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use crate::config::LogFormat;

/// One request, as logged.
pub struct Entry<'a> {
    /// Client address.
    pub client: IpAddr,
    /// Method.
    pub method: &'a str,
    /// Request target.
    pub target: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub version: &'a str,
    /// Status sent.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// `Referer`.
    pub referer: &'a str,
    /// `User-Agent`.
    pub user_agent: &'a str,
    /// From the request head to the last body byte.
    pub duration: Duration,
    /// Upstream server, if proxied.
    pub upstream: Option<&'a str>,
    /// Time to the upstream's response head.
    pub upstream_time: Option<Duration>,
    /// Request id, if any.
    pub request_id: &'a str,
}

/// Where lines go.
pub struct AccessLog {
    tx: SyncSender<String>,
    format: LogFormat,
    /// Lines dropped because the writer fell behind.
    pub dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Opens the log (`"-"` is standard output, else a file appended to).
    pub fn open(target: &str, format: LogFormat) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)?,
            )
        };
        let (tx, rx) = sync_channel(16_384);
        std::thread::Builder::new()
            .name("tiers-web-log".into())
            .spawn(move || write_lines(rx, out))?;
        Ok(AccessLog {
            tx,
            format,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Logs one request.
    pub fn log(&self, e: &Entry<'_>) {
        let line = match self.format {
            LogFormat::Combined => combined(e),
            LogFormat::Json => json(e),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_lines(rx: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let _ = out.write_all(line.as_bytes());
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = out.flush();
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// Escapes `"` and `\` and control bytes the way nginx does (`\xHH`).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            out.push_str(&format!("\\x{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

fn combined(e: &Entry<'_>) -> String {
    format!(
        "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" rt={:.3} upstream={} urt={} rid={}\n",
        e.client.to_canonical(),
        clf_time(SystemTime::now()),
        escape(e.method),
        escape(e.target),
        e.version,
        e.status,
        e.bytes,
        escape(dash(e.referer)),
        escape(dash(e.user_agent)),
        e.duration.as_secs_f64(),
        e.upstream.unwrap_or("-"),
        e.upstream_time
            .map_or_else(|| "-".to_string(), |d| format!("{:.3}", d.as_secs_f64())),
        dash(e.request_id),
    )
}

fn json(e: &Entry<'_>) -> String {
    let v = serde_json::json!({
        "time": httpdate::fmt_http_date(SystemTime::now()),
        "client": e.client.to_canonical().to_string(),
        "method": e.method,
        "target": e.target,
        "version": e.version,
        "status": e.status,
        "bytes": e.bytes,
        "referer": e.referer,
        "user_agent": e.user_agent,
        "duration_ms": e.duration.as_secs_f64() * 1000.0,
        "upstream": e.upstream,
        "upstream_ms": e.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
        "request_id": e.request_id,
    });
    let mut line = v.to_string();
    line.push('\n');
    line
}

/// `10/Oct/2000:13:55:36 +0000` (UTC).
pub fn clf_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_log_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(971_186_136);
        assert_eq!(clf_time(t), "10/Oct/2000:13:55:36 +0000");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_208_000);
        assert_eq!(clf_time(leap), "29/Feb/2024:12:00:00 +0000");
    }

    #[test]
    fn lines_escape_what_clients_send() {
        let e = Entry {
            client: "127.0.0.1".parse().unwrap(),
            method: "GET",
            target: "/a\"b\nc",
            version: "HTTP/1.1",
            status: 200,
            bytes: 5,
            referer: "",
            user_agent: "curl/8",
            duration: Duration::from_millis(3),
            upstream: Some("127.0.0.1:8081"),
            upstream_time: Some(Duration::from_millis(2)),
            request_id: "r1",
        };
        let line = combined(&e);
        assert!(
            line.contains("\"GET /a\\x22b\\x0Ac HTTP/1.1\" 200 5 \"-\" \"curl/8\""),
            "{line}"
        );
        assert!(line.ends_with("rt=0.003 upstream=127.0.0.1:8081 urt=0.002 rid=r1\n"));
        let j: serde_json::Value = serde_json::from_str(&json(&e)).unwrap();
        assert_eq!(j["status"], 200);
        assert_eq!(j["target"], "/a\"b\nc");
    }
}
