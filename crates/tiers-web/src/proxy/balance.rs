//! Load balancing: which server of a pool gets the next request (the book's
//! 로드 밸런서). Smooth weighted round robin, least connections, and
//! consistent hashing; each skips servers that are down or already tried.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::Balance;

/// What the balancer needs to know about each server right now.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// May get requests (healthy and not yet tried for this request).
    pub eligible: bool,
    /// Effective weight, scaled (slow start lowers it).
    pub weight: u32,
    /// Requests in flight to it.
    pub active: usize,
}

/// Virtual nodes per unit of weight on the hash ring.
const VNODES: u32 = 160;

/// Picks servers for one pool.
pub struct Balancer {
    kind: Balance,
    current: Mutex<Vec<i64>>,
    ring: Vec<(u64, usize)>,
    turn: AtomicUsize,
}

impl Balancer {
    /// A balancer for servers with these configured weights.
    pub fn new(kind: Balance, names: &[String], weights: &[u32]) -> Balancer {
        let mut ring = Vec::new();
        if matches!(
            kind,
            Balance::HashIp | Balance::HashHeader(_) | Balance::HashCookie(_)
        ) {
            for (i, (name, w)) in names.iter().zip(weights).enumerate() {
                for v in 0..VNODES * w {
                    ring.push((hash(format!("{name}#{v}").as_bytes()), i));
                }
            }
            ring.sort_unstable();
        }
        Balancer {
            kind,
            current: Mutex::new(vec![0; names.len()]),
            ring,
            turn: AtomicUsize::new(0),
        }
    }

    /// The balancing method.
    pub fn kind(&self) -> &Balance {
        &self.kind
    }

    /// The next server, or `None` when none is eligible. `key` is the hash
    /// key for hashing methods (without one they fall back to round robin).
    pub fn pick(&self, servers: &[Candidate], key: Option<&[u8]>) -> Option<usize> {
        match (&self.kind, key) {
            (Balance::LeastConn, _) => self.least_conn(servers),
            (Balance::HashIp | Balance::HashHeader(_) | Balance::HashCookie(_), Some(k)) => {
                self.hashed(servers, hash(k))
            }
            _ => self.round_robin(servers),
        }
    }

    /// nginx's smooth weighted round robin: every eligible server gains its
    /// weight, the richest is chosen and pays the total.
    fn round_robin(&self, servers: &[Candidate]) -> Option<usize> {
        let mut current = self.current.lock().expect("balancer");
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, s) in servers.iter().enumerate() {
            if !s.eligible {
                continue;
            }
            let w = i64::from(s.weight.max(1));
            current[i] += w;
            total += w;
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        current[b] -= total;
        Some(b)
    }

    /// Fewest requests in flight per unit of weight; ties rotate.
    fn least_conn(&self, servers: &[Candidate]) -> Option<usize> {
        let n = servers.len();
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % n.max(1);
        let mut best: Option<usize> = None;
        for k in 0..n {
            let i = (start + k) % n;
            let s = &servers[i];
            if !s.eligible {
                continue;
            }
            let better = best.is_none_or(|b| {
                let o = &servers[b];
                // active_i / w_i < active_b / w_b
                (s.active as u64) * u64::from(o.weight.max(1))
                    < (o.active as u64) * u64::from(s.weight.max(1))
            });
            if better {
                best = Some(i);
            }
        }
        best
    }

    /// The first eligible server clockwise from the key on the ring.
    fn hashed(&self, servers: &[Candidate], key: u64) -> Option<usize> {
        if self.ring.is_empty() {
            return None;
        }
        let start = self.ring.partition_point(|(h, _)| *h < key);
        for k in 0..self.ring.len() {
            let (_, i) = self.ring[(start + k) % self.ring.len()];
            if servers[i].eligible {
                return Some(i);
            }
        }
        None
    }
}

/// FNV-1a with a final mix: stable across processes and machines, so every
/// web tier instance maps a key to the same server.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64 finaliser spreads FNV's weak low bits.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .map(|&w| Candidate {
                eligible: true,
                weight: w,
                active: 0,
            })
            .collect()
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("127.0.0.1:{}", 9000 + i)).collect()
    }

    #[test]
    fn smooth_round_robin_follows_weights_and_interleaves() {
        let b = Balancer::new(Balance::RoundRobin, &names(3), &[5, 1, 1]);
        let c = cands(&[5, 1, 1]);
        let picks: Vec<usize> = (0..7).map(|_| b.pick(&c, None).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&p| p == 0).count(), 5);
        // Smooth: the heavy server never gets all five in a row.
        assert_ne!(&picks[..5], &[0, 0, 0, 0, 0]);
        let mut c = c;
        c[0].eligible = false;
        for _ in 0..10 {
            assert_ne!(b.pick(&c, None), Some(0));
        }
        for s in &mut c {
            s.eligible = false;
        }
        assert_eq!(b.pick(&c, None), None);
    }

    #[test]
    fn least_conn_prefers_the_idle() {
        let b = Balancer::new(Balance::LeastConn, &names(3), &[1, 1, 1]);
        let mut c = cands(&[1, 1, 1]);
        c[0].active = 5;
        c[1].active = 1;
        c[2].active = 3;
        assert_eq!(b.pick(&c, None), Some(1));
        c[1].eligible = false;
        assert_eq!(b.pick(&c, None), Some(2));
    }

    #[test]
    fn consistent_hash_is_sticky_and_moves_little() {
        let b = Balancer::new(Balance::HashIp, &names(4), &[1, 1, 1, 1]);
        let mut c = cands(&[1, 1, 1, 1]);
        let keys: Vec<String> = (0..2000)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect();
        let before: Vec<usize> = keys
            .iter()
            .map(|k| b.pick(&c, Some(k.as_bytes())).unwrap())
            .collect();
        let mut counts = [0; 4];
        for &p in &before {
            counts[p] += 1;
        }
        for n in counts {
            assert!((300..=700).contains(&n), "uneven spread {counts:?}");
        }
        c[2].eligible = false;
        let after: Vec<usize> = keys
            .iter()
            .map(|k| b.pick(&c, Some(k.as_bytes())).unwrap())
            .collect();
        for (x, y) in before.iter().zip(&after) {
            if *x != 2 {
                assert_eq!(x, y, "keys of healthy servers must not move");
            } else {
                assert_ne!(*y, 2);
            }
        }
    }
}
