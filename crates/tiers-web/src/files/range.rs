//! `Range: bytes=...` requests (RFC 9110 §14).

/// What a Range header asks of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// No usable Range header: send everything with 200.
    Whole,
    /// These inclusive byte ranges, in request order, each within the body.
    Some(Vec<(u64, u64)>),
    /// Syntactically fine but none overlaps the body: 416.
    Unsatisfiable,
}

/// More ranges than this in one request are answered with the whole body
/// (a defence against range amplification).
const MAX_RANGES: usize = 16;

/// Parses `header` for a body of `len` bytes. A malformed header is
/// ignored, as the RFC asks.
pub fn parse(header: &str, len: u64) -> Ranges {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let mut out = Vec::new();
    let mut any = false;
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        any = true;
        let Some((a, b)) = part.split_once('-') else {
            return Ranges::Whole;
        };
        let (a, b) = (a.trim(), b.trim());
        let range = if a.is_empty() {
            // Suffix: the last N bytes.
            let Ok(n) = b.parse::<u64>() else {
                return Ranges::Whole;
            };
            if n == 0 || len == 0 {
                None
            } else {
                Some((len.saturating_sub(n), len - 1))
            }
        } else {
            let Ok(start) = a.parse::<u64>() else {
                return Ranges::Whole;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    _ => return Ranges::Whole,
                }
            };
            if start >= len {
                None
            } else {
                Some((start, end.min(len - 1)))
            }
        };
        if let Some(r) = range {
            out.push(r);
        }
    }
    if !any {
        return Ranges::Whole;
    }
    if out.is_empty() {
        return Ranges::Unsatisfiable;
    }
    if out.len() > MAX_RANGES {
        return Ranges::Whole;
    }
    Ranges::Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_a_hundred_bytes() {
        assert_eq!(parse("bytes=0-9", 100), Ranges::Some(vec![(0, 9)]));
        assert_eq!(parse("bytes=90-", 100), Ranges::Some(vec![(90, 99)]));
        assert_eq!(parse("bytes=-10", 100), Ranges::Some(vec![(90, 99)]));
        assert_eq!(parse("bytes=-500", 100), Ranges::Some(vec![(0, 99)]));
        assert_eq!(parse("bytes=50-5000", 100), Ranges::Some(vec![(50, 99)]));
        assert_eq!(
            parse("bytes=0-0, 10-19", 100),
            Ranges::Some(vec![(0, 0), (10, 19)])
        );
        assert_eq!(parse("bytes=100-", 100), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Ranges::Unsatisfiable);
        assert_eq!(parse("bytes=0-1", 0), Ranges::Unsatisfiable);
        for ignored in ["items=0-1", "bytes=9-1", "bytes=a-b", "bytes=", "bytes=1"] {
            assert_eq!(parse(ignored, 100), Ranges::Whole, "{ignored}");
        }
        let many = format!("bytes={}", vec!["0-0"; 17].join(","));
        assert_eq!(parse(&many, 100), Ranges::Whole);
    }
}
