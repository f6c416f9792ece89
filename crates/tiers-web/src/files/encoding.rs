//! Content codings: choosing one from `Accept-Encoding`, and compressing.

use std::io::Write;

/// A content coding we can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Brotli.
    Br,
    /// Zstandard.
    Zstd,
    /// gzip.
    Gzip,
}

impl Coding {
    /// All codings, in our order of preference when the client likes them
    /// equally.
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The token in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// File name suffix of a precompressed sibling.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// Position in [`Coding::ALL`].
    pub fn index(self) -> usize {
        match self {
            Coding::Br => 0,
            Coding::Zstd => 1,
            Coding::Gzip => 2,
        }
    }

    /// Compresses `data`.
    pub fn compress(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 3),
                    flate2::Compression::new(6),
                );
                e.write_all(data)?;
                e.finish()
            }
            Coding::Br => {
                let mut out = Vec::with_capacity(data.len() / 3);
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 64 << 10, 5, 22);
                    w.write_all(data)?;
                    w.flush()?;
                }
                Ok(out)
            }
            Coding::Zstd => zstd::bulk::compress(data, 6),
        }
    }
}

/// The client's weight for each of [`Coding::ALL`] (0 when refused), from
/// an `Accept-Encoding` value.
pub fn accepted(header: &str) -> [f32; 3] {
    let mut q = [0.0f32; 3];
    let mut star: Option<f32> = None;
    let mut named = [false; 3];
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut weight = 1.0f32;
        for p in parts {
            if let Some(v) = p.trim().strip_prefix("q=") {
                weight = v.trim().parse().unwrap_or(0.0);
            }
        }
        let weight = weight.clamp(0.0, 1.0);
        match name.as_str() {
            "*" => star = Some(weight),
            n => {
                if let Some(c) = Coding::ALL.iter().find(|c| c.token() == n) {
                    q[c.index()] = weight;
                    named[c.index()] = true;
                }
            }
        }
    }
    if let Some(s) = star {
        for i in 0..3 {
            if !named[i] {
                q[i] = s;
            }
        }
    }
    q
}

/// The best coding among those `available`, or `None` for identity.
pub fn choose(q: &[f32; 3], available: impl Fn(Coding) -> bool) -> Option<Coding> {
    let mut best: Option<(Coding, f32)> = None;
    for c in Coding::ALL {
        let w = q[c.index()];
        if w > 0.0 && available(c) && best.is_none_or(|(_, bw)| w > bw) {
            best = Some((c, w));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_weights_then_our_order() {
        let all = |_| true;
        assert_eq!(
            choose(&accepted("gzip, deflate, br, zstd"), all),
            Some(Coding::Br)
        );
        assert_eq!(choose(&accepted("gzip"), all), Some(Coding::Gzip));
        assert_eq!(
            choose(&accepted("br;q=0.5, gzip;q=0.9"), all),
            Some(Coding::Gzip)
        );
        assert_eq!(choose(&accepted("identity"), all), None);
        assert_eq!(choose(&accepted(""), all), None);
        assert_eq!(choose(&accepted("*"), all), Some(Coding::Br));
        assert_eq!(choose(&accepted("*;q=0, gzip"), all), Some(Coding::Gzip));
        assert_eq!(choose(&accepted("br;q=0"), all), None);
        assert_eq!(
            choose(&accepted("br, gzip"), |c| c == Coding::Gzip),
            Some(Coding::Gzip)
        );
    }

    #[test]
    fn every_coding_round_trips() {
        use std::io::Read;
        let data = "hello tiers ".repeat(1000).into_bytes();
        let gz = Coding::Gzip.compress(&data).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let br = Coding::Br.compress(&data).unwrap();
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let zs = Coding::Zstd.compress(&data).unwrap();
        assert_eq!(zstd::bulk::decompress(&zs, data.len()).unwrap(), data);
        assert!(gz.len() < data.len() / 10 && br.len() < gz.len() + 64);
    }
}
