//! Parse benchmark on the cluster-scale kube-proxy dump, side by side with
//! the kernel's own parser.
//!
//! Input: see `common/input.rs` (`IPTVIZ_BENCH_RULES=FILE`, or made with
//! `../shared/tools/kube-scale.py --services 10000` from the corpus).
//!
//! Prints, for one thread and for the default (parallel on large inputs):
//! best and median wall time of `parse_owned` over 7 runs, and the peak
//! memory (VmHWM) of a fresh process that reads the file and parses it once.
//! As root, with `ip` and `iptables-restore` installed, it also times
//! `iptables-restore --test` on the same file inside a network namespace it
//! creates and deletes, and prints the ratio.

use std::path::Path;
use std::process::{Command, Stdio};
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

fn options(threads: Option<usize>) -> ParseOptions {
    ParseOptions {
        threads,
        ..ParseOptions::lenient("bench")
    }
}

/// Child mode: read FILE, parse it once, print peak and starting memory.
fn child(threads: &str, file: &str) {
    let start = status_kb("VmRSS:");
    let bytes = std::fs::read(file).expect("bench file");
    let threads = threads.parse().ok();
    let parsed = parse_owned(bytes, &options(threads)).expect("bench input parses");
    let peak = status_kb("VmHWM:");
    println!("{peak} {start} {}", parsed.ruleset.rule_count());
}

fn time_parse(bytes: &[u8], threads: Option<usize>) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..7)
        .map(|_| {
            let copy = bytes.to_vec();
            let t = Instant::now();
            let parsed = parse_owned(copy, &options(threads)).expect("bench input parses");
            let d = t.elapsed();
            drop(parsed);
            d
        })
        .collect();
    times.sort();
    (times[0], times[times.len() / 2])
}

/// Peak memory in KB of a fresh process parsing `file`, and its memory
/// before reading.
fn peak_kb(file: &Path, threads: &str) -> Option<(u64, u64)> {
    let out = Command::new(std::env::current_exe().ok()?)
        .env("IPTVIZ_BENCH_CHILD", threads)
        .env("IPTVIZ_BENCH_FILE", file)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = text.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((w.next()??, w.next()??))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Best and median of `iptables-restore --test FILE` in a fresh namespace.
fn restore_times(file: &Path) -> Result<(Duration, Duration), String> {
    if !is_root() {
        return Err("not root".into());
    }
    if !ok(Command::new("iptables-restore").arg("--version")) {
        return Err("iptables-restore is not installed".into());
    }
    let ns = format!("iptviz-bench-{}", std::process::id());
    if !ok(Command::new("ip").args(["netns", "add", &ns])) {
        return Err("cannot create a network namespace".into());
    }
    let mut times = Vec::new();
    let mut failed = None;
    for _ in 0..5 {
        let t = Instant::now();
        let st = Command::new("ip")
            .args(["netns", "exec", &ns, "iptables-restore", "--test"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        let d = t.elapsed();
        match st {
            Ok(o) if o.status.success() => times.push(d),
            Ok(o) => failed = Some(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => failed = Some(e.to_string()),
        }
    }
    let _ = ok(Command::new("ip").args(["netns", "del", &ns]));
    if let Some(f) = failed {
        return Err(format!("iptables-restore --test failed: {}", f.trim()));
    }
    times.sort();
    Ok((times[0], times[times.len() / 2]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    if let (Ok(t), Ok(f)) = (
        std::env::var("IPTVIZ_BENCH_CHILD"),
        std::env::var("IPTVIZ_BENCH_FILE"),
    ) {
        child(&t, &f);
        return;
    }
    let (bytes, name) = input::kube_dump();
    let mb = bytes.len() as f64 / 1e6;
    let file = std::env::temp_dir().join(format!("iptviz-bench-{}.rules", std::process::id()));
    std::fs::write(&file, &bytes).expect("write the bench input to a temporary file");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("parse {name}: {mb:.1} MB; {threads} CPUs");
    let mut best_default = Duration::MAX;
    for (label, t, child_arg) in [("1 thread", Some(1), "1"), ("default", None, "auto")] {
        let (best, median) = time_parse(&bytes, t);
        if t.is_none() {
            best_default = best;
        }
        let mem = match peak_kb(&file, child_arg) {
            Some((peak, start)) => format!(
                "peak {:.1} MB = {:.2}x the file (process before reading: {:.1} MB)",
                peak as f64 / 1024.0,
                peak as f64 * 1024.0 / bytes.len() as f64,
                start as f64 / 1024.0
            ),
            None => "peak memory: child process failed".into(),
        };
        println!(
            "  {label:9} best {:.1} ms, median {:.1} ms, {:.0} MB/s; {mem}",
            ms(best),
            ms(median),
            mb / best.as_secs_f64()
        );
    }
    match restore_times(&file) {
        Ok((best, median)) => println!(
            "  iptables-restore --test: best {:.0} ms, median {:.0} ms; iptviz (default) is {:.1}x faster (best vs best)",
            ms(best),
            ms(median),
            best.as_secs_f64() / best_default.as_secs_f64()
        ),
        Err(why) => println!("  iptables-restore --test: not measured ({why})"),
    }
    let _ = std::fs::remove_file(&file);
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
