//! `icmpxdp bench`: per-path cost through BPF_PROG_TEST_RUN, then (unless
//! `--no-e2e`) replies/s and CPU per reply over veth; Markdown or JSON.

use std::io::Write as _;

use anyhow::Result;
use icmp_user::bench::{e2e, testrun};

use super::require_privileges;

pub(crate) fn bench(json: bool, quick: bool, no_e2e: bool) -> Result<()> {
    require_privileges()?;
    let report = testrun::run(if quick {
        testrun::Options::QUICK
    } else {
        testrun::Options::FULL
    })?;
    let e2e = if no_e2e {
        None
    } else {
        Some(e2e::run(if quick { e2e::Options::QUICK } else { e2e::Options::FULL })?)
    };
    if json {
        say!("{}", serde_json::json!({"paths": report, "end_to_end": e2e}));
    } else {
        say_raw!("{}", report.markdown());
        if let Some(e) = e2e {
            say_raw!(
                "\n#### End to end over veth (generator and responder on different CPUs)\n\n{}",
                e.markdown()
            );
        }
    }
    Ok(())
}

/// `icmpxdp bench --profile PATH`: one path in a loop, for `perf record`.
pub(crate) fn profile(path: &str, seconds: u64, jit_lines: Option<&std::path::Path>) -> Result<()> {
    require_privileges()?;
    let runs = icmp_user::bench::versus::profile(path, seconds, jit_lines)?;
    say!("{path}: {runs} runs in {seconds} s");
    Ok(())
}
