//! Request forgery checks for the AP tier's writes (form posts and the
//! REST API), in the spirit of Django's CSRF middleware and Go's
//! `CrossOriginProtection`: a browser says where a request comes from, and a
//! write that a page on another site made the browser send is refused.
//!
//! For every method other than GET, HEAD and OPTIONS:
//! - `Sec-Fetch-Site: cross-site` or `same-site` is refused (sent by every
//!   current browser, and not settable by a page);
//! - otherwise an `Origin` header (or, without it, a `Referer`) must name the
//!   host the request was sent to (`Host`), or one of the app's
//!   `trusted_origins`; `Origin: null` (sandboxed frames, some redirects) is
//!   refused;
//! - a request with none of these headers is not from a browser page (curl,
//!   scripts, other services) and passes: forgery needs a victim's browser.
//!
//! The body's type is checked too: JSON only as `application/json` (which a
//! cross-site page cannot send without a CORS preflight, never answered
//! here), forms only as `application/x-www-form-urlencoded`.

use hyper::HeaderMap;
use hyper::header::{self, HeaderValue};

/// How a request body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body.
    Empty,
    /// `application/json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// Why a write is refused: the message for the client.
pub type Forbidden = String;

/// True for methods that change nothing and need no check.
pub fn is_safe(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Checks where a write comes from (see the module doc).
pub fn check_origin(headers: &HeaderMap, trusted: &[String]) -> Result<(), Forbidden> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && matches!(site, "cross-site" | "same-site")
    {
        return Err(format!(
            "cross-site write refused (Sec-Fetch-Site: {site}): post from a page of this site"
        ));
    }
    let host = text(header::HOST).map(normalise_authority);
    let (name, claimed) = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(o), _) => ("Origin", o),
        (None, Some(r)) => ("Referer", r),
        (None, None) => return Ok(()),
    };
    if claimed == "null" {
        return Err("write refused: Origin is null (a sandboxed or opaque page)".into());
    }
    let Some(authority) = authority_of(claimed) else {
        return Err(format!("write refused: {name} {claimed:?} is not a URL"));
    };
    if host.as_deref() == Some(authority.as_str())
        || trusted
            .iter()
            .any(|t| authority_of(t).as_deref() == Some(authority.as_str()))
    {
        return Ok(());
    }
    Err(format!(
        "cross-site write refused: {name} {claimed:?} is not this site ({}); \
         list it in trusted_origins in app.toml if it is yours",
        host.as_deref().unwrap_or("no Host header")
    ))
}

/// The body's kind from its `Content-Type`, or why it is not accepted.
pub fn body_kind(content_type: Option<&HeaderValue>, body_len: usize) -> Result<BodyKind, String> {
    if body_len == 0 {
        return Ok(BodyKind::Empty);
    }
    let ct = content_type.and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        "" => Err("the body has no Content-Type: send application/json or \
                   application/x-www-form-urlencoded"
            .into()),
        other => Err(format!(
            "Content-Type {other} is not accepted: send application/json or \
             application/x-www-form-urlencoded"
        )),
    }
}

/// `host[:port]` of a URL or origin, lower case, without a default port.
fn authority_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    if authority.is_empty() {
        return None;
    }
    let lower = authority.to_ascii_lowercase();
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    Some(lower.strip_suffix(default).unwrap_or(&lower).to_string())
}

/// A `Host` header lower case, without `:80` or `:443`.
fn normalise_authority(host: &str) -> String {
    let lower = host.trim().to_ascii_lowercase();
    for default in [":80", ":443"] {
        if let Some(h) = lower.strip_suffix(default) {
            return h.to_string();
        }
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_site_writes_and_non_browsers_pass() {
        let ok = |pairs: &[(&'static str, &str)]| check_origin(&headers(pairs), &[]);
        assert!(ok(&[]).is_ok(), "curl sends none of the headers");
        assert!(
            ok(&[
                ("host", "board.example:8080"),
                ("origin", "http://board.example:8080")
            ])
            .is_ok()
        );
        assert!(
            ok(&[
                ("host", "Board.Example"),
                ("origin", "https://board.example:443")
            ])
            .is_ok()
        );
        assert!(ok(&[("host", "a.test"), ("referer", "http://a.test/posts/1?x=y")]).is_ok());
        assert!(
            ok(&[
                ("sec-fetch-site", "same-origin"),
                ("host", "a.test"),
                ("origin", "http://a.test")
            ])
            .is_ok()
        );
        let trusted = vec!["https://www.a.test".to_string()];
        assert!(
            check_origin(
                &headers(&[("host", "internal:80"), ("origin", "https://www.a.test")]),
                &trusted
            )
            .is_ok()
        );
    }

    #[test]
    fn cross_site_writes_are_refused_with_the_reason() {
        let refused =
            |pairs: &[(&'static str, &str)]| check_origin(&headers(pairs), &[]).unwrap_err();
        assert!(
            refused(&[("host", "a.test"), ("origin", "http://evil.test")]).contains("evil.test")
        );
        assert!(
            refused(&[("host", "a.test"), ("origin", "http://a.test.evil.test")])
                .contains("not this site")
        );
        assert!(refused(&[("host", "a.test"), ("origin", "null")]).contains("null"));
        assert!(
            refused(&[("host", "a.test"), ("referer", "https://evil.test/a.test")])
                .contains("Referer")
        );
        assert!(
            refused(&[("host", "a.test"), ("origin", "http://a.test:81")])
                .contains("not this site")
        );
        assert!(refused(&[("sec-fetch-site", "cross-site")]).contains("Sec-Fetch-Site"));
        assert!(refused(&[("host", "a.test"), ("origin", "a.test")]).contains("not a URL"));
    }

    #[test]
    fn bodies_need_a_json_or_form_type() {
        let kind = |ct: &str| body_kind(Some(&ct.parse().unwrap()), 5);
        assert_eq!(kind("application/json; charset=utf-8"), Ok(BodyKind::Json));
        assert_eq!(
            kind("Application/X-WWW-Form-Urlencoded"),
            Ok(BodyKind::Form)
        );
        assert!(
            kind("text/plain")
                .unwrap_err()
                .contains("text/plain is not accepted")
        );
        assert!(kind("multipart/form-data; boundary=x").is_err());
        assert!(body_kind(None, 5).unwrap_err().contains("no Content-Type"));
        assert_eq!(body_kind(None, 0), Ok(BodyKind::Empty));
    }
}
