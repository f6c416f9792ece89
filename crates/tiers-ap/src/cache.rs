//! The response cache (the book's 캐시): small, rarely-changing results kept
//! in memory for a while, so a repeated request needs no database round
//! trip.
//!
//! A GET route with `cache_ttl_s` keeps its responses, keyed by the route
//! and its parameter values, for that long. Which tables a route reads and
//! writes is derived from its SQL (or declared with `reads`): a successful
//! write to a table empties the caches of every route that reads it. Each
//! table has a generation number, bumped by writes; a response computed
//! while a write happened is not stored, so a cache never keeps a result
//! older than a write it raced with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

/// A stored response.
#[derive(Debug, Clone)]
pub struct Cached {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
    /// Its strong validator.
    pub etag: String,
}

/// The caches of one application.
pub struct ResponseCache {
    routes: Vec<Option<moka::sync::Cache<String, Cached>>>,
    reads: Vec<BTreeSet<String>>,
    generations: BTreeMap<String, AtomicU64>,
    /// Requests answered from the cache.
    pub hits: AtomicU64,
    /// Cacheable requests that had to go to the database.
    pub misses: AtomicU64,
}

impl ResponseCache {
    /// Caches for routes with these TTLs (0: not cached) reading and
    /// writing these tables.
    pub fn new(
        ttls: &[u64],
        reads: Vec<BTreeSet<String>>,
        writes: &[BTreeSet<String>],
    ) -> ResponseCache {
        let mut tables: BTreeSet<String> = BTreeSet::new();
        for t in reads.iter().chain(writes) {
            tables.extend(t.iter().cloned());
        }
        ResponseCache {
            routes: ttls
                .iter()
                .map(|&ttl| {
                    (ttl > 0).then(|| {
                        moka::sync::Cache::builder()
                            .max_capacity(10_000)
                            .time_to_live(Duration::from_secs(ttl))
                            .build()
                    })
                })
                .collect(),
            reads,
            generations: tables.into_iter().map(|t| (t, AtomicU64::new(0))).collect(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether route `i` is cached.
    pub fn enabled(&self, i: usize) -> bool {
        self.routes.get(i).is_some_and(Option::is_some)
    }

    /// The stored response, if any.
    pub fn get(&self, i: usize, key: &str) -> Option<Cached> {
        let cache = self.routes.get(i)?.as_ref()?;
        let hit = cache.get(key);
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// The generations of the tables route `i` reads, taken before it
    /// queries.
    pub fn snapshot(&self, i: usize) -> Vec<u64> {
        self.reads[i]
            .iter()
            .map(|t| {
                self.generations
                    .get(t)
                    .map_or(0, |g| g.load(Ordering::Acquire))
            })
            .collect()
    }

    /// Stores a response unless a table it read was written since
    /// `snapshot`.
    pub fn put(&self, i: usize, key: String, snapshot: &[u64], value: Cached) {
        let Some(Some(cache)) = self.routes.get(i) else {
            return;
        };
        if self.snapshot(i) == snapshot {
            cache.insert(key, value);
        }
    }

    /// A write to `tables` succeeded: forget everything that read them.
    pub fn written(&self, tables: &BTreeSet<String>) {
        for t in tables {
            if let Some(g) = self.generations.get(t) {
                g.fetch_add(1, Ordering::AcqRel);
            }
        }
        for (i, reads) in self.reads.iter().enumerate() {
            if !reads.is_disjoint(tables)
                && let Some(Some(cache)) = self.routes.get(i)
            {
                cache.invalidate_all();
            }
        }
    }
}

/// Tables a statement reads (after FROM and JOIN) and writes (after INSERT
/// INTO, UPDATE, DELETE FROM), lower-cased, without schema.
pub fn tables(sql: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let words = words(sql);
    let mut reads = BTreeSet::new();
    let mut writes = BTreeSet::new();
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).map(|s| table_name(s));
        match w.as_str() {
            "from" | "join" => {
                if let Some(t) = next
                    && !t.is_empty()
                    && t != "("
                {
                    reads.insert(t);
                }
            }
            "into" if i > 0 && words[i - 1] == "insert" => {
                if let Some(t) = next {
                    writes.insert(t);
                }
            }
            "update" => {
                if let Some(t) = next {
                    writes.insert(t);
                }
            }
            _ => {}
        }
    }
    // DELETE FROM t: a write, not a read.
    for (i, w) in words.iter().enumerate() {
        if w == "delete"
            && words.get(i + 1).is_some_and(|f| f == "from")
            && let Some(t) = words.get(i + 2)
        {
            let t = table_name(t);
            reads.remove(&t);
            writes.insert(t);
        }
    }
    (reads, writes)
}

fn table_name(word: &str) -> String {
    word.rsplit('.')
        .next()
        .unwrap_or(word)
        .trim_matches('"')
        .to_string()
}

/// Lower-cased words outside quotes and comments; `(` as its own word.
fn words(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur).to_lowercase());
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                flush(&mut cur, &mut out);
                while let Some(q) = chars.next() {
                    if q == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut cur, &mut out);
                for q in chars.by_ref() {
                    if q == '\n' {
                        break;
                    }
                }
            }
            '(' => {
                flush(&mut cur, &mut out);
                out.push("(".into());
            }
            c if c.is_alphanumeric() || c == '_' || c == '.' || c == '"' => cur.push(c),
            _ => flush(&mut cur, &mut out),
        }
    }
    flush(&mut cur, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tables_read_and_written() {
        let (r, w) = tables(
            "SELECT p.id FROM posts p JOIN comments c ON c.post_id = p.id WHERE x = 'from nowhere'",
        );
        assert_eq!((r, w), (set(&["comments", "posts"]), set(&[])));
        let (r, w) = tables("INSERT INTO public.posts (title) SELECT title FROM drafts");
        assert_eq!((r, w), (set(&["drafts"]), set(&["posts"])));
        let (r, w) = tables("UPDATE posts SET n = (SELECT count(*) FROM comments)");
        assert_eq!((r, w), (set(&["comments"]), set(&["posts"])));
        let (r, w) = tables("DELETE FROM \"Posts\" WHERE id = :id");
        assert_eq!((r, w), (set(&[]), set(&["posts"])));
        let (r, _) = tables("SELECT * FROM (SELECT 1) AS x");
        assert!(r.is_empty());
    }

    #[test]
    fn writes_empty_the_caches_that_read_them() {
        let c = ResponseCache::new(
            &[60, 60, 0],
            vec![set(&["posts"]), set(&["users"]), set(&[])],
            &[set(&[]), set(&[]), set(&["posts"])],
        );
        let v = Cached {
            status: 200,
            content_type: "application/json",
            body: Bytes::from_static(b"[]"),
            etag: "\"x\"".into(),
        };
        let snap = c.snapshot(0);
        c.put(0, "a".into(), &snap, v.clone());
        let snap1 = c.snapshot(1);
        c.put(1, "a".into(), &snap1, v.clone());
        assert!(c.get(0, "a").is_some() && c.get(1, "a").is_some());
        c.written(&set(&["posts"]));
        assert!(c.get(0, "a").is_none(), "posts changed");
        assert!(c.get(1, "a").is_some(), "users did not");
        // A response computed across a write is not stored.
        let before = c.snapshot(0);
        c.written(&set(&["posts"]));
        c.put(0, "b".into(), &before, v);
        assert!(c.get(0, "b").is_none());
        assert!(!c.enabled(2));
        assert_eq!(c.hits.load(Ordering::Relaxed), 3);
    }
}
