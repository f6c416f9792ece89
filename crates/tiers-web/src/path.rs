//! Turning a request path into a file path that cannot leave the root.
//!
//! The request path is percent-decoded exactly once and then judged as
//! bytes: an encoded `/`, a backslash, NUL or another control character,
//! bytes that are not UTF-8 (which is how overlong encodings such as
//! `%c0%ae` arrive), and any `..` segment are refused outright rather than
//! "cleaned up". Names starting with `.` are hidden unless enabled. What
//! remains is a list of plain names joined under the root; symbolic links
//! are then checked by the file cache, which compares the canonical path
//! with the canonical root.

use std::path::PathBuf;

/// Why a path was refused; each maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed or dangerous: 400.
    BadRequest,
    /// A hidden name: 404, as if it did not exist.
    Hidden,
}

/// The checked form of a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    /// Plain names, none empty, `.`, `..` or containing `/`.
    pub segments: Vec<String>,
    /// The request path ended with `/` (a directory was asked for).
    pub trailing_slash: bool,
}

impl SafePath {
    /// The path relative to a root.
    pub fn relative(&self) -> PathBuf {
        self.segments.iter().collect()
    }
}

/// Checks `raw` (the path part of the request target, still encoded).
/// `strip` is a route prefix already matched, removed before decoding.
pub fn sanitize(raw: &str, strip: &str, hidden_allowed: bool) -> Result<SafePath, Refusal> {
    if !raw.starts_with('/') {
        return Err(Refusal::BadRequest);
    }
    let rest = raw.strip_prefix(strip.trim_end_matches('/')).unwrap_or(raw);
    let bytes = rest.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(Refusal::BadRequest)?;
            let v = (hex_value(hex[0]).ok_or(Refusal::BadRequest)? << 4)
                | hex_value(hex[1]).ok_or(Refusal::BadRequest)?;
            // An encoded separator is a request to confuse us.
            if v == b'/' || v == b'\\' {
                return Err(Refusal::BadRequest);
            }
            decoded.push(v);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    if decoded.iter().any(|&b| b == b'\\' || b < 0x20 || b == 0x7f) {
        return Err(Refusal::BadRequest);
    }
    let text = String::from_utf8(decoded).map_err(|_| Refusal::BadRequest)?;
    let trailing_slash = text.ends_with('/');
    let mut segments = Vec::new();
    for seg in text.split('/') {
        match seg {
            "" | "." => continue,
            ".." => return Err(Refusal::BadRequest),
            s if s.starts_with('.') && !hidden_allowed && s != ".well-known" => {
                return Err(Refusal::Hidden);
            }
            s => segments.push(s.to_string()),
        }
    }
    Ok(SafePath {
        segments,
        trailing_slash,
    })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Vec<String> {
        sanitize(raw, "", false).unwrap().segments
    }

    #[test]
    fn plain_paths_become_segments() {
        assert_eq!(ok("/"), Vec::<String>::new());
        assert_eq!(ok("/a/b.html"), ["a", "b.html"]);
        assert_eq!(ok("/a//./b"), ["a", "b"]);
        assert_eq!(ok("/caf%C3%A9%20menu.txt"), ["café menu.txt"]);
        assert_eq!(ok("/.well-known/x"), [".well-known", "x"]);
        assert!(sanitize("/dir/", "", false).unwrap().trailing_slash);
        assert_eq!(
            sanitize("/static/css/a.css", "/static/", false)
                .unwrap()
                .segments,
            ["css", "a.css"]
        );
    }

    #[test]
    fn dangerous_paths_are_refused() {
        for raw in [
            "/..",
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/a%2f..%2f..%2fetc",
            "/..%5c..%5cwindows",
            "/a\\..\\b",
            "/a%00.html",
            "/%c0%ae%c0%ae/etc/passwd",
            "/%e0%80%ae%e0%80%ae/x",
            "/%ff",
            "/%",
            "/%2",
            "/%zz",
            "relative",
            "/a%0d%0aSet-Cookie:x",
        ] {
            assert_eq!(
                sanitize(raw, "", false),
                Err(Refusal::BadRequest),
                "{raw} must be refused"
            );
        }
        // Double encoding decodes once to a literal name, never to "..".
        assert_eq!(ok("/%252e%252e/etc"), ["%2e%2e", "etc"]);
    }

    #[test]
    fn hidden_names_need_permission() {
        assert_eq!(sanitize("/.git/config", "", false), Err(Refusal::Hidden));
        assert_eq!(sanitize("/a/.env", "", false), Err(Refusal::Hidden));
        assert_eq!(sanitize("/%2eenv", "", false), Err(Refusal::Hidden));
        assert_eq!(sanitize("/.env", "", true).unwrap().segments, [".env"]);
    }
}
