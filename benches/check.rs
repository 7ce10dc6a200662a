//! `iptviz check` on the cluster-scale kube-proxy dump (issue 10's speed
//! goal: within 10% of `check` before the match table, commit 560d87f).
//!
//! Input: see `common/input.rs` (`IPTVIZ_BENCH_RULES=FILE`, or made with
//! `../shared/tools/kube-scale.py --services 10000` from the corpus and
//! written under the target directory, never committed).
//!
//! Prints best and median of 9 runs of:
//! - in process: parsing with every check (`parse_owned`: the table's
//!   option checks, targets, placement in tables and hooks, jump loops and
//!   the suspicious rules `check` prints, found in the same walk), and the
//!   standalone suspicious-rule pass (`parse::check::lint`) for scale;
//! - the `iptviz check FILE` command, a fresh process each time.
//!
//! With `IPTVIZ_BASE_BIN=PATH` (an `iptviz` built from an older commit) the
//! command is also timed with that binary, the two runs interleaved so that
//! load on the machine falls on both alike, and the ratio of the medians
//! is printed against the goal (1.10).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iptviz::parse::{ParseOptions, check, parse_owned};

#[path = "common/input.rs"]
mod input;

const RUNS: usize = 9;

fn best_median(mut t: Vec<Duration>) -> (Duration, Duration) {
    t.sort();
    (t[0], t[t.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Wall time of one `BIN check FILE`; exits the bench when it fails to run.
fn run_check(bin: &Path, file: &Path) -> Duration {
    let t = Instant::now();
    let status = Command::new(bin)
        .arg("check")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let d = t.elapsed();
    match status {
        // 0 clean, 1 problems found: both are a finished check.
        Ok(s) if matches!(s.code(), Some(0 | 1)) => d,
        other => {
            eprintln!("{} check {}: {other:?}", bin.display(), file.display());
            std::process::exit(2);
        }
    }
}

fn main() {
    let (bytes, name) = input::kube_dump();
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-check-kube10k.rules");
    if std::fs::read(&file).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(&file, &bytes).expect("write the bench dump under the target directory");
    }

    let mut parse = Vec::new();
    let mut lint = Vec::new();
    let mut rules = 0;
    for _ in 0..RUNS {
        let copy = bytes.clone();
        let t = Instant::now();
        let parsed =
            parse_owned(copy, &ParseOptions::lenient("bench")).expect("bench input parses");
        parse.push(t.elapsed());
        let t = Instant::now();
        let warnings = check::lint(&parsed.ruleset);
        lint.push(t.elapsed());
        rules = parsed.ruleset.rule_count();
        assert!(
            parsed.error_count() == 0,
            "the kube dump is clean: {:?}",
            parsed.problems.first()
        );
        assert_eq!(warnings, parsed.suspicious);
        std::hint::black_box(warnings);
    }
    let (pb, pm) = best_median(parse);
    let (lb, lm) = best_median(lint);
    println!("check, {name} ({rules} rules)");
    println!(
        "  parse + checks      best {:>7.1} ms  median {:>7.1} ms",
        ms(pb),
        ms(pm)
    );
    println!(
        "  lint again, alone   best {:>7.1} ms  median {:>7.1} ms",
        ms(lb),
        ms(lm)
    );

    let ours = Path::new(env!("CARGO_BIN_EXE_iptviz"));
    let base = std::env::var_os("IPTVIZ_BASE_BIN").map(std::path::PathBuf::from);
    let mut now = Vec::new();
    let mut then = Vec::new();
    // One warm-up run each, then interleaved.
    run_check(ours, &file);
    if let Some(b) = &base {
        run_check(b, &file);
    }
    for _ in 0..RUNS {
        now.push(run_check(ours, &file));
        if let Some(b) = &base {
            then.push(run_check(b, &file));
        }
    }
    let (nb, nm) = best_median(now);
    println!(
        "  iptviz check FILE   best {:>7.1} ms  median {:>7.1} ms",
        ms(nb),
        ms(nm)
    );
    match base {
        Some(b) => {
            let (bb, bm) = best_median(then);
            println!(
                "  base {}  best {:>7.1} ms  median {:>7.1} ms",
                b.display(),
                ms(bb),
                ms(bm)
            );
            let ratio = nm.as_secs_f64() / bm.as_secs_f64();
            println!(
                "  ratio of medians {ratio:.2} (goal <= 1.10: {})",
                if ratio <= 1.10 { "met" } else { "not met" }
            );
        }
        None => println!(
            "  (set IPTVIZ_BASE_BIN to an iptviz built from 560d87f to compare side by side)"
        ),
    }
}
