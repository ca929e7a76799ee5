//! Counter snapshots rendered for people and scripts: the `icmpxdp stats`
//! table and its `--json` object. Reading the maps is [`super::counters`].

use std::fmt::Write as _;

use icmp_common::{
    counters::{type_index, type_name},
    ratelimit::Scope,
    reason::{Action, Family, Reason},
};
use serde_json::{Map as JsonMap, Value, json};

use super::counters::Snapshot;

impl Snapshot {
    fn by_type(counts: &[u64]) -> impl Iterator<Item = (Family, u8, u64)> + '_ {
        Family::ALL.into_iter().flat_map(move |f| {
            (0..=255u8).filter_map(move |t| {
                let n = counts[type_index(f, t) as usize];
                (n != 0).then_some((f, t, n))
            })
        })
    }

    fn type_label(f: Family, t: u8) -> String {
        type_name(f, t).map_or_else(|| format!("type_{t}"), str::to_owned)
    }

    pub fn to_json(&self, instance: &str) -> Value {
        let types = |counts: &[u64]| {
            let mut out = JsonMap::new();
            for f in Family::ALL {
                out.insert(f.label().to_owned(), Value::Object(JsonMap::new()));
            }
            for (f, t, n) in Self::by_type(counts) {
                out[f.label()]
                    .as_object_mut()
                    .expect("object")
                    .insert(Self::type_label(f, t), json!(n));
            }
            Value::Object(out)
        };
        let actions: JsonMap<String, Value> = Action::ALL
            .iter()
            .map(|a| (a.label().to_owned(), json!(self.action(*a))))
            .collect();
        let verdicts: JsonMap<String, Value> = Reason::ALL
            .iter()
            .map(|r| (r.label().to_owned(), json!(self.verdict(*r))))
            .collect();
        json!({
            "instance": instance,
            "frames": self.frames(),
            "actions": actions,
            "suppressed": self.suppressed(),
            "verdicts": verdicts,
            "received": types(&self.received),
            "sent": types(&self.sent),
            "rate_limited": Scope::ALL.iter().map(|s| (s.label().to_owned(), types(self.limited_in(*s)))).collect::<JsonMap<_, _>>(),
        })
    }

    pub fn to_table(&self, instance: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "icmpxdp on {instance}: {} frames", self.frames());
        let _ = writeln!(
            s,
            "  actions: tx {}  redirect {}  pass {}  drop {}  aborted {}",
            self.action(Action::Tx),
            self.action(Action::Redirect),
            self.action(Action::Pass),
            self.action(Action::Drop),
            self.action(Action::Aborted)
        );
        let _ = writeln!(s, "  {:<34}{:>14}", "verdict", "frames");
        for r in Reason::ALL {
            let _ = writeln!(s, "  {:<34}{:>14}", r.label(), self.verdict(r));
        }
        let limited: Vec<(String, &[u64])> = Scope::ALL
            .iter()
            .map(|s| (format!("rate limited ({})", s.label()), self.limited_in(*s)))
            .collect();
        let mut sections: Vec<(&str, &[u64])> = vec![("received", &self.received), ("sent", &self.sent)];
        sections.extend(limited.iter().map(|(t, c)| (t.as_str(), *c)));
        for (title, counts) in sections {
            let _ = writeln!(s, "  {:<34}{:>14}", title, "messages");
            let mut any = false;
            for (f, t, n) in Self::by_type(counts) {
                any = true;
                let _ = writeln!(
                    s,
                    "    {:<32}{:>14}",
                    format!("{} {} ({t})", f.label(), Self::type_label(f, t)),
                    n
                );
            }
            if !any {
                let _ = writeln!(s, "    (none)");
            }
        }
        s
    }
}
