//! Headers on the way through the proxy: hop-by-hop headers removed, the
//! client described to the upstream (X-Forwarded-*, `Forwarded`), and the
//! request made traceable across tiers (`traceparent`, `X-Request-Id`).

use std::net::IpAddr;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// `X-Request-Id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// W3C trace context.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Removes hop-by-hop headers, including any the `Connection` header names,
/// and `Upgrade` unless `keep_upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        if !(keep_upgrade && n == header::UPGRADE) {
            headers.remove(n);
        }
    }
    for h in HOP_BY_HOP {
        headers.remove(h);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// Who sent the request to us.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The peer address of the client connection.
    pub ip: IpAddr,
    /// Whether the connection was TLS.
    pub tls: bool,
}

/// Rewrites request headers for the upstream. Returns the request id.
pub fn to_upstream(
    headers: &mut HeaderMap,
    client: Client,
    upgrade: Option<&HeaderValue>,
) -> String {
    strip_hop_by_hop(headers, false);
    // The body is already read in full: nothing for the upstream to expect.
    headers.remove(header::EXPECT);
    let proto = if client.tls { "https" } else { "http" };
    let ip = client.ip.to_canonical();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip.to_string(),
    };
    set(headers, "x-forwarded-for", &xff);
    set(headers, "x-forwarded-proto", proto);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let node = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut fwd = format!("for={node};proto={proto}");
    if let Some(h) = &host {
        set(headers, "x-forwarded-host", h);
        if h.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            fwd.push_str(&format!(";host=\"{h}\""));
        }
    }
    let forwarded = match headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {fwd}"),
        None => fwd,
    };
    set(headers, "forwarded", &forwarded);

    let trace = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent);
    let (trace_id, flags) =
        trace.unwrap_or_else(|| (format!("{:032x}", nonzero_u128()), "01".into()));
    // We are a hop: the upstream's parent is our span.
    set(
        headers,
        "traceparent",
        &format!("00-{trace_id}-{:016x}-{flags}", nonzero_u64()),
    );

    let id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", nonzero_u128()));
    set(headers, "x-request-id", &id);

    if let Some(u) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, u.clone());
    }
    id
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Trace id and flags of a valid version-00 `traceparent`.
fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if parts.len() != 4
        || parts[0] != "00"
        || !hex(parts[1], 32)
        || !hex(parts[2], 16)
        || !hex(parts[3], 2)
        || parts[1].bytes().all(|b| b == b'0')
        || parts[2].bytes().all(|b| b == b'0')
    {
        return None;
    }
    Some((parts[1].to_string(), parts[3].to_string()))
}

fn nonzero_u128() -> u128 {
    rand::random::<u128>() | 1
}

fn nonzero_u64() -> u64 {
    rand::random::<u64>() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_described_and_hops_removed() {
        let mut h = HeaderMap::new();
        h.insert("host", "example.org".parse().unwrap());
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        let id = to_upstream(
            &mut h,
            Client {
                ip: "10.1.2.3".parse().unwrap(),
                tls: true,
            },
            None,
        );
        assert_eq!(id.len(), 32);
        assert!(
            h.get("x-secret").is_none() && h.get("te").is_none() && h.get("connection").is_none()
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "example.org");
        assert_eq!(
            h["forwarded"],
            "for=10.1.2.3;proto=https;host=\"example.org\""
        );
        assert_eq!(h["host"], "example.org");
        let tp = h["traceparent"].to_str().unwrap();
        assert!(parse_traceparent(tp).is_some(), "{tp}");
    }

    #[test]
    fn trace_and_request_ids_are_kept() {
        let mut h = HeaderMap::new();
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        h.insert("traceparent", trace.parse().unwrap());
        h.insert("x-request-id", "abc-123".parse().unwrap());
        let id = to_upstream(
            &mut h,
            Client {
                ip: "::1".parse().unwrap(),
                tls: false,
            },
            None,
        );
        assert_eq!(id, "abc-123");
        let tp = h["traceparent"].to_str().unwrap();
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(!tp.contains("00f067aa0ba902b7"), "a new parent span");
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http");
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none()
        );
        assert!(parse_traceparent("zz").is_none());
    }
}
