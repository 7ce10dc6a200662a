//! Whole-ruleset answers on big inputs.
//!
//! 1. The service matrix for ports 22 and 80 of the largest corpus dump
//!    (tum-i8 2016, 5,529 filter rules, chain FORWARD); target under 1 s.
//! 2. The same dump mapped to IPv6 by `benches/to_ipv6.py`; target under
//!    5 s (fffuu, the reference, took 33 minutes on a 6,203-rule ip6tables
//!    ruleset, as published).
//! 3. `lint` on the kube-proxy dump grown to 10,000 services (113,000
//!    rules; see `common/input.rs`); target under 10 s and 1 GB.
//!
//! Each step prints the best and the median of a few runs (parse apart),
//! and the peak memory of the process at the end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iptviz::analysis::lint::lint;
use iptviz::analysis::reach::{ReachOptions, service_matrix};
use iptviz::model::{Family, Ruleset};
use iptviz::parse::{ParseOptions, parse_str};

#[path = "common/input.rs"]
mod input;

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    times.sort();
    let out = last.expect("at least one run");
    (times[0], times[times.len() / 2], out)
}

fn parse(text: &str, name: &str, v6: bool) -> Ruleset {
    let opts = ParseOptions {
        family: v6.then_some(Family::Ipv6),
        ..ParseOptions::lenient(name)
    };
    parse_str(text, &opts).expect("bench input parses").ruleset
}

fn matrices(rs: &Ruleset, v6: bool, what: &str, target: f64) {
    let (best, median, n) = time(5, || {
        [22u16, 80]
            .iter()
            .map(|&dport| {
                let o = ReachOptions {
                    dport,
                    v6,
                    ..Default::default()
                };
                service_matrix(rs, &o)
                    .expect("FORWARD exists")
                    .classes
                    .len()
            })
            .collect::<Vec<_>>()
    });
    println!(
        "{what:<44} best {best:>9.2?}  median {median:>9.2?}  (classes {n:?}; target < {target} s)"
    );
}

fn peak_kb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tum = root.join("../shared/corpus/iptables/tum-i8-chair-fw-2016-06-large.rules");
    let text = std::fs::read_to_string(&tum).unwrap_or_else(|e| {
        eprintln!("cannot read {}: {e}", tum.display());
        std::process::exit(2)
    });
    let rs = parse(&text, "tum-i8-2016", false);
    println!(
        "tum-i8 2016: {} rules, FORWARD {} rules",
        rs.rule_count(),
        rs.table("filter")
            .and_then(|t| t.chain("FORWARD"))
            .map_or(0, |c| c.rules.len())
    );
    matrices(&rs, false, "service matrix IPv4, ports 22 + 80", 1.0);

    let mapped = Command::new("python3")
        .arg(root.join("benches/to_ipv6.py"))
        .stdin(std::fs::File::open(&tum).expect("opened above"))
        .stderr(Stdio::inherit())
        .output();
    match mapped {
        Ok(o) if o.status.success() => {
            let text6 = String::from_utf8_lossy(&o.stdout);
            let rs6 = parse(&text6, "tum-i8-2016-ipv6", true);
            println!("mapped to IPv6: {} rules", rs6.rule_count());
            matrices(&rs6, true, "service matrix IPv6, ports 22 + 80", 5.0);
        }
        _ => eprintln!("python3 benches/to_ipv6.py failed: IPv6 step skipped"),
    }

    let (bytes, name) = input::kube_dump();
    let ktext = String::from_utf8_lossy(&bytes);
    let t = Instant::now();
    let krs = parse(&ktext, &name, false);
    println!(
        "kube dump: {} rules, parsed in {:.2?}",
        krs.rule_count(),
        t.elapsed()
    );
    let (best, median, n) = time(3, || lint(&krs).findings.len());
    println!(
        "{:<44} best {best:>9.2?}  median {median:>9.2?}  ({n} findings; target < 10 s)",
        "lint, kube 10,000 services"
    );
    println!("peak memory {} kB (target < 1 GB)", peak_kb());
}
