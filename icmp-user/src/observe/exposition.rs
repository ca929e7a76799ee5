//! The two text formats a scraper may ask for: OpenMetrics 1.0 (what
//! Prometheus asks for first) and the Prometheus text format 0.0.4 (what
//! `curl` and `promtool check metrics` read). One list of metric families,
//! two renderings, so the formats cannot drift apart.

use std::fmt::Write as _;

/// What a family's samples mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only ever grows; samples are `<name>_total`.
    Counter,
    Gauge,
    /// node_exporter's netstat values: untyped, so a query written for
    /// `node_netstat_*` works with only the prefix changed.
    Unknown,
}

/// One metric family: its name (without `_total`), help, kind and samples.
#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<(Vec<(&'static str, String)>, u64)>,
}

impl Family {
    pub fn new(name: impl Into<String>, help: &'static str, kind: Kind) -> Self {
        Self {
            name: name.into(),
            help,
            kind,
            samples: Vec::new(),
        }
    }

    pub fn add(&mut self, labels: Vec<(&'static str, String)>, value: u64) {
        self.samples.push((labels, value));
    }

    fn sample_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            Kind::Gauge | Kind::Unknown => self.name.clone(),
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

fn samples(out: &mut String, f: &Family) {
    let name = f.sample_name();
    for (labels, value) in &f.samples {
        let _ = write!(out, "{name}");
        if !labels.is_empty() {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = write!(out, "{{{}}}", l.join(","));
        }
        let _ = writeln!(out, " {value}");
    }
}

/// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
pub fn openmetrics(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Unknown => "unknown",
        };
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        samples(&mut out, f);
    }
    out.push_str("# EOF\n");
    out
}

/// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
pub fn prometheus_text(families: &[Family]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Unknown => "untyped",
        };
        let name = f.sample_name();
        let _ = writeln!(out, "# HELP {name} {}", f.help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        samples(&mut out, f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats() {
        let mut c = Family::new("x_frames", "Frames", Kind::Counter);
        c.add(vec![("iface", "a\"b".into())], 3);
        let mut u = Family::new("x_netstat_Icmp_InMsgs", "In", Kind::Unknown);
        u.add(vec![], 1);
        let om = openmetrics(&[c.clone(), u.clone()]);
        assert_eq!(
            om,
            "# TYPE x_frames counter\n# HELP x_frames Frames\nx_frames_total{iface=\"a\\\"b\"} 3\n\
             # TYPE x_netstat_Icmp_InMsgs unknown\n# HELP x_netstat_Icmp_InMsgs In\nx_netstat_Icmp_InMsgs 1\n# EOF\n"
        );
        let text = prometheus_text(&[c, u]);
        assert_eq!(
            text,
            "# HELP x_frames_total Frames\n# TYPE x_frames_total counter\nx_frames_total{iface=\"a\\\"b\"} 3\n\
             # HELP x_netstat_Icmp_InMsgs In\n# TYPE x_netstat_Icmp_InMsgs untyped\nx_netstat_Icmp_InMsgs 1\n"
        );
    }
}
