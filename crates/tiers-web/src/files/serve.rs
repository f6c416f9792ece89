//! A static file lookup turned into an HTTP response: index files,
//! conditional requests (304/412), ranges (206/416) and content codings.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};

use super::{Coding, FileCache, FileEntry, Lookup, Ranges, Root, accepted, choose, range};
use crate::body::Body;
use crate::path::SafePath;

/// The outcome of trying to serve a file.
pub enum Served {
    /// A response (the file, a redirect, 304, 403...).
    Response(Box<Response<Body>>),
    /// Nothing there: the caller may forward the request or answer 404.
    Missing,
}

/// Serves a GET or HEAD for `safe` under `root`. `path_and_query` is the
/// original target, used for the trailing-slash redirect.
pub async fn serve(
    cache: &Arc<FileCache>,
    root: &Root,
    safe: &SafePath,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
) -> Served {
    let relative = safe.relative();
    let entry = match cache.lookup(root, &relative).await {
        Lookup::File(e) => e,
        Lookup::Missing => return Served::Missing,
        Lookup::Forbidden => {
            return Served::Response(Box::new(plain(StatusCode::FORBIDDEN, "forbidden\n")));
        }
        Lookup::Directory => {
            if !safe.trailing_slash && !safe.segments.is_empty() {
                // One leading slash: `//host/dir/` (or `/\\host`) in
                // Location would send the browser to another site.
                let path = format!("/{}", path.trim_start_matches(['/', '\\']));
                let location = match query {
                    Some(q) => format!("{path}/?{q}"),
                    None => format!("{path}/"),
                };
                let mut r = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                return Served::Response(Box::new(r));
            }
            let mut found = None;
            for index in &cache.config().index {
                if let Lookup::File(e) = cache.lookup(root, &relative.join(index)).await {
                    found = Some(e);
                    break;
                }
            }
            match found {
                Some(e) => e,
                None => return Served::Missing,
            }
        }
    };
    cache.remember_target(root, path, entry.clone());
    Served::Response(Box::new(respond(cache, &entry, method, headers).await))
}

/// Serves a file a request path resolved to recently, skipping path checks.
pub async fn serve_known(
    cache: &Arc<FileCache>,
    entry: &Arc<FileEntry>,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    respond(cache, entry, method, headers).await
}

/// A short text response.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::bytes(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// What will be sent: the file itself or one of its encoded forms.
struct Representation {
    content: Option<Bytes>,
    file: Option<Arc<FileEntry>>,
    len: u64,
    etag: HeaderValue,
    coding: Option<Coding>,
}

async fn respond(
    cache: &Arc<FileCache>,
    entry: &Arc<FileEntry>,
    method: &Method,
    headers: &HeaderMap,
) -> Response<Body> {
    let config = cache.config();
    let compressible =
        crate::mime::compressible(entry.content_type) && entry.len >= config.compress_min;
    let wants_range = headers.contains_key(header::RANGE) && method == Method::GET;
    let mut rep = Representation {
        content: entry.content.clone(),
        file: Some(entry.clone()),
        len: entry.len,
        etag: entry.base_headers[header::ETAG].clone(),
        coding: None,
    };
    if compressible
        && !wants_range
        && let Some(ae) = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
    {
        let q = accepted(ae);
        let on_the_fly = entry.len <= config.compress_max;
        let coding = choose(&q, |c| {
            entry.precompressed[c.index()].is_some()
                || (on_the_fly && !matches!(cached_compressed(entry, c), Some(None)))
        });
        if let Some(c) = coding {
            if let Some(pre) = &entry.precompressed[c.index()] {
                rep = Representation {
                    content: pre.content.clone(),
                    file: Some(pre.clone()),
                    len: pre.len,
                    etag: entry_etag(entry, c),
                    coding: Some(c),
                };
            } else if let Some(b) = compressed(cache, entry, c).await {
                rep = Representation {
                    len: b.len() as u64,
                    content: Some(b),
                    file: None,
                    etag: entry_etag(entry, c),
                    coding: Some(c),
                };
            }
        }
    }

    let mut out = entry.base_headers.clone();
    if let Some(c) = rep.coding {
        out.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(c.token()),
        );
        out.insert(header::ETAG, rep.etag.clone());
        out.remove(header::ACCEPT_RANGES);
    }
    let etag = rep.etag.to_str().unwrap_or("");

    // Preconditions (RFC 9110 §13.2.2): If-Match, then If-None-Match, else
    // If-Modified-Since.
    if let Some(im) = header_str(headers, header::IF_MATCH)
        && !etag_matches(im, etag, false)
    {
        return finish(out, StatusCode::PRECONDITION_FAILED, Body::empty(), 0);
    }
    let not_modified = match header_str(headers, header::IF_NONE_MATCH) {
        Some(inm) => etag_matches(inm, etag, true),
        None => header_str(headers, header::IF_MODIFIED_SINCE)
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .is_some_and(|since| {
                since
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .is_ok_and(|s| entry.mtime_secs <= s.as_secs())
            }),
    };
    if not_modified {
        return finish(out, StatusCode::NOT_MODIFIED, Body::empty(), 0);
    }

    let head = method == Method::HEAD;
    let ranges = match header_str(headers, header::RANGE) {
        Some(r) if wants_range && if_range_holds(headers, entry) => range::parse(r, rep.len),
        _ => Ranges::Whole,
    };
    match ranges {
        Ranges::Whole => {
            let body = if head { Body::empty() } else { whole(&rep) };
            finish(out, StatusCode::OK, body, rep.len)
        }
        Ranges::Unsatisfiable => {
            out.insert(
                header::CONTENT_RANGE,
                header_value(format!("bytes */{}", rep.len)),
            );
            finish(out, StatusCode::RANGE_NOT_SATISFIABLE, Body::empty(), 0)
        }
        Ranges::Some(list) if list.len() == 1 => {
            let (a, b) = list[0];
            out.insert(
                header::CONTENT_RANGE,
                header_value(format!("bytes {a}-{b}/{}", rep.len)),
            );
            let body = match &rep.content {
                Some(c) => Body::bytes(c.slice(a as usize..=b as usize)),
                None => Body::file(
                    rep.file.as_ref().expect("file or content").file.clone(),
                    a,
                    b - a + 1,
                ),
            };
            finish(out, StatusCode::PARTIAL_CONTENT, body, b - a + 1)
        }
        Ranges::Some(list) => match multipart(&rep, entry.content_type, &list).await {
            Some((boundary, parts)) => {
                let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
                let mut r = finish(out, StatusCode::PARTIAL_CONTENT, Body::pieces(parts), total);
                if let Ok(v) =
                    HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
                {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                r
            }
            None => finish(out, StatusCode::OK, whole(&rep), rep.len),
        },
    }
}

fn finish(headers: HeaderMap, status: StatusCode, body: Body, len: u64) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = headers;
    if status != StatusCode::NOT_MODIFIED {
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    r
}

fn header_value(text: String) -> HeaderValue {
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn whole(rep: &Representation) -> Body {
    match &rep.content {
        Some(c) => Body::bytes(c.clone()),
        None => Body::file(
            rep.file.as_ref().expect("file or content").file.clone(),
            0,
            rep.len,
        ),
    }
}

fn entry_etag(entry: &FileEntry, c: Coding) -> HeaderValue {
    header_value(format!(
        "{}-{}\"",
        entry.etag.trim_end_matches('"'),
        c.token()
    ))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `list` (an If-Match or If-None-Match value) names `etag`.
fn etag_matches(list: &str, etag: &str, weak: bool) -> bool {
    let bare = |t: &str| {
        let t = t.trim();
        if weak { t.trim_start_matches("W/") } else { t }.to_string()
    };
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || bare(t) == bare(etag)
    })
}

fn if_range_holds(headers: &HeaderMap, entry: &FileEntry) -> bool {
    match header_str(headers, header::IF_RANGE) {
        None => true,
        Some(v) if v.starts_with('"') => v.trim() == entry.etag,
        Some(v) => httpdate::parse_http_date(v).is_ok_and(|d| {
            d.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|s| s.as_secs() == entry.mtime_secs)
        }),
    }
}

fn cached_compressed(entry: &FileEntry, c: Coding) -> Option<Option<Bytes>> {
    entry.compressed[c.index()].get().cloned()
}

/// The file compressed with `c`, computed once per entry and coding however
/// many requests ask at the same time (single flight); `None` when it does
/// not shrink or cannot be read. When the cache budget cannot keep the
/// result, the request that computed it sends it and later ones get the
/// file uncompressed: CPU spent on compression stays one run per file.
async fn compressed(cache: &Arc<FileCache>, entry: &Arc<FileEntry>, c: Coding) -> Option<Bytes> {
    let mut computed_here = None;
    let kept = entry.compressed[c.index()]
        .get_or_init(|| async {
            let e = entry.clone();
            cache.compressions.fetch_add(1, Ordering::Relaxed);
            let out = tokio::task::spawn_blocking(move || -> Option<Bytes> {
                let data = match &e.content {
                    Some(b) => b.clone(),
                    None => {
                        use std::os::unix::fs::FileExt;
                        let mut buf = vec![0u8; e.len as usize];
                        e.file.read_exact_at(&mut buf, 0).ok()?;
                        Bytes::from(buf)
                    }
                };
                let packed = c.compress(&data).ok()?;
                // Worth it only if it saves at least an eighth.
                let saves_enough = (packed.len() as u64) < e.len - e.len / 8;
                saves_enough.then(|| Bytes::from(packed))
            })
            .await
            .ok()
            .flatten();
            match out {
                Some(b) if !cache.reserve_compressed(entry, b.len() as u64) => {
                    computed_here = Some(b);
                    None
                }
                other => other,
            }
        })
        .await
        .clone();
    kept.or(computed_here)
}

async fn multipart(
    rep: &Representation,
    content_type: &str,
    list: &[(u64, u64)],
) -> Option<(String, Vec<Bytes>)> {
    const MAX_MULTIPART: u64 = 16 << 20;
    let total: u64 = list.iter().map(|(a, b)| b - a + 1).sum();
    if total > MAX_MULTIPART {
        return None;
    }
    let pieces: Vec<Bytes> = match &rep.content {
        Some(c) => list
            .iter()
            .map(|&(a, b)| c.slice(a as usize..=b as usize))
            .collect(),
        None => {
            let file = rep.file.as_ref()?.file.clone();
            let list = list.to_vec();
            tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                list.iter()
                    .map(|&(a, b)| {
                        let mut buf = vec![0u8; (b - a + 1) as usize];
                        file.read_exact_at(&mut buf, a)
                            .ok()
                            .map(|_| Bytes::from(buf))
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .await
            .ok()
            .flatten()?
        }
    };
    let boundary = format!("{:016x}", rand::random::<u64>());
    let mut parts = Vec::with_capacity(list.len() * 2 + 1);
    for (&(a, b), piece) in list.iter().zip(pieces) {
        parts.push(Bytes::from(format!(
            "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {a}-{b}/{}\r\n\r\n",
            rep.len
        )));
        parts.push(piece);
    }
    parts.push(Bytes::from(format!("\r\n--{boundary}--\r\n")));
    Some((boundary, parts))
}
