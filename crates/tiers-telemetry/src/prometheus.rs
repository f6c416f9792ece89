//! The Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

use crate::Histogram;

/// Builds a `/metrics` page. Metric names get the tier's prefix
/// (`tiers_db_`, `tiers_web_`, ...).
#[derive(Debug)]
pub struct Prometheus {
    prefix: String,
    out: String,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Prometheus {
    /// A page whose metric names start with `prefix` (e.g. `tiers_db`).
    pub fn new(prefix: &str) -> Prometheus {
        Prometheus {
            prefix: prefix.to_owned(),
            out: String::new(),
        }
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {}_{name} {help}", self.prefix);
        let _ = writeln!(self.out, "# TYPE {}_{name} {kind}", self.prefix);
    }

    /// A counter (only grows).
    pub fn counter(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.header(name, help, "counter");
        let _ = writeln!(self.out, "{}_{name} {value}", self.prefix);
        self
    }

    /// A gauge (goes up and down).
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) -> &mut Self {
        self.header(name, help, "gauge");
        let _ = writeln!(self.out, "{}_{name} {value}", self.prefix);
        self
    }

    /// A metric with one label, one sample per label value.
    pub fn labelled(
        &mut self,
        name: &str,
        help: &str,
        kind: &str,
        label: &str,
        samples: &[(String, f64)],
    ) -> &mut Self {
        self.header(name, help, kind);
        for (value, v) in samples {
            let _ = writeln!(
                self.out,
                "{}_{name}{{{label}=\"{}\"}} {v}",
                self.prefix,
                escape(value)
            );
        }
        self
    }

    /// A histogram (durations in seconds).
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) -> &mut Self {
        self.header(name, help, "histogram");
        let (buckets, sum, count) = h.snapshot();
        for (le, c) in buckets {
            let le = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                le.to_string()
            };
            let _ = writeln!(self.out, "{}_{name}_bucket{{le=\"{le}\"}} {c}", self.prefix);
        }
        let _ = writeln!(self.out, "{}_{name}_sum {sum}", self.prefix);
        let _ = writeln!(self.out, "{}_{name}_count {count}", self.prefix);
        self
    }

    /// The finished page.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let h = Histogram::default();
        h.observe(std::time::Duration::from_millis(2));
        let mut p = Prometheus::new("tiers_db");
        p.counter("commits_total", "Commits", 3.0)
            .gauge("connections", "Open connections", 2.0)
            .labelled(
                "requests_total",
                "Requests by status",
                "counter",
                "status",
                &[("200".into(), 5.0), ("a\"b".into(), 1.0)],
            )
            .histogram("statement_seconds", "Statement latency", &h);
        let text = p.finish();
        assert!(text.contains("# TYPE tiers_db_commits_total counter\ntiers_db_commits_total 3\n"));
        assert!(text.contains("tiers_db_requests_total{status=\"a\\\"b\"} 1"));
        assert!(text.contains("tiers_db_statement_seconds_bucket{le=\"0.0025\"} 1"));
        assert!(text.contains("tiers_db_statement_seconds_bucket{le=\"+Inf\"} 1"));
        assert!(text.contains("tiers_db_statement_seconds_count 1"));
    }
}
