//! Parse benchmark on the cluster-scale kube-proxy dump.
//!
//! Input: see `common/input.rs` (`IPTVIZ_BENCH_RULES=FILE`, or made with
//! `../shared/tools/kube-scale.py --services 10000` from the corpus).
//! Prints best and median wall time, throughput, and the memory the parsed
//! model holds (resident set growth measured from /proc/self/status).

use std::time::{Duration, Instant};

use iptviz::parse::{ParseOptions, parse_owned};

#[path = "common/input.rs"]
mod input;

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let (bytes, _) = input::kube_dump();
    let mb = bytes.len() as f64 / 1e6;
    let opts = ParseOptions::lenient("bench");
    // Memory of one parsed model, input buffer included (the model keeps it).
    let before = status_kb("VmRSS:");
    let parsed = parse_owned(bytes.clone(), &opts).expect("bench input parses");
    let after = status_kb("VmRSS:");
    drop(parsed);
    let mut times: Vec<Duration> = Vec::new();
    let mut rules = 0;
    for _ in 0..7 {
        let copy = bytes.clone();
        let t = Instant::now();
        let parsed = parse_owned(copy, &opts).expect("bench input parses");
        times.push(t.elapsed());
        rules = parsed.ruleset.rule_count();
        drop(parsed);
    }
    times.sort();
    let after_hwm = status_kb("VmHWM:");
    println!(
        "parse kube-proxy dump: {:.1} MB, {rules} rules\n  best {:.1} ms, median {:.1} ms, {:.0} MB/s\n  model + input resident: {:.1} MB ({:.2}x the file); peak RSS of the bench process {:.1} MB",
        mb,
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        mb / times[0].as_secs_f64(),
        (after.saturating_sub(before)) as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 * 1024.0 / bytes.len() as f64,
        after_hwm as f64 / 1024.0,
    );
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
