//! Conntrack parse and summary speed on a synthetic 1,000,000-entry
//! `/proc/net/nf_conntrack` text grown from the real sample in the corpus.
//!
//! `cargo bench --bench conntrack` prints MB/s, memory against the text size,
//! the summary time, the NAT port pressure time and the memory it adds
//! (peak RSS while it runs against the RSS holding the parsed table; the
//! goal is under 0.5 s and under 20%), and `wc -l` on the same file as the
//! floor. The file is
//! kept in `target/conntrack-bench/` so it can be measured with other tools.
//! `CONNTRACK_BENCH_ENTRIES=N` changes the size.
//!
//! `CONNTRACK_BENCH_ONCE=parse` (or `=pressure`) reads and parses the file
//! once (then computes the pressure with the bench's nat rules) and exits,
//! for whole-process peak memory side by side:
//! `CONNTRACK_BENCH_ONCE=parse /usr/bin/time -v target/release/deps/conntrack-HASH`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use iptviz::conntrack::nat::NatRules;
use iptviz::conntrack::{self, Entry, PressureOptions};

/// CPU time of this thread so far: on a machine shared with other work the
/// wall time of a step also counts the time others held the cores.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

fn status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Rewrites the numbers of a real line so that every generated line is a
/// distinct connection while the shape (fields, lengths) stays real.
fn grow(sample: &[&str], n: usize) -> String {
    let mut out = String::with_capacity(n * 240);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line = sample[i % sample.len()];
        let port = 1024 + (x % 64000) as u16;
        let host = 1 + (x >> 20) % 254;
        let net = (x >> 28) % 32;
        for (k, w) in line.split(' ').enumerate() {
            if k > 0 {
                out.push(' ');
            }
            // Replace the client's port and address in both tuples.
            if let Some(v) = w.strip_prefix("sport=")
                && v.parse::<u16>().is_ok_and(|p| p > 1023)
            {
                out.push_str(&format!("sport={port}"));
                continue;
            }
            if let Some(v) = w.strip_prefix("dport=")
                && v.parse::<u16>().is_ok_and(|p| p > 1023)
            {
                out.push_str(&format!("dport={port}"));
                continue;
            }
            if let Some(v) = w.strip_prefix("src=").or_else(|| w.strip_prefix("dst="))
                && v.starts_with("192.168.")
            {
                out.push_str(&format!("{}=192.168.{net}.{host}", &w[..3]));
                continue;
            }
            out.push_str(w);
        }
        out.push('\n');
    }
    out
}

fn main() {
    let n: usize = std::env::var("CONNTRACK_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sample_path =
        root.join("../shared/corpus/conntrack/proc-nf_conntrack-acct-home-router.txt");
    let sample = std::fs::read_to_string(&sample_path).unwrap_or_else(|e| {
        panic!(
            "the corpus sample is missing: {}: {e}",
            sample_path.display()
        )
    });
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).collect();
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("conntrack-bench");
    std::fs::create_dir_all(&dir).expect("create bench dir");
    let path = dir.join(format!("nf_conntrack-{n}.txt"));
    if !path.exists() {
        let t = Instant::now();
        std::fs::write(&path, grow(&lines, n)).expect("write bench file");
        eprintln!("generated {} in {:.2?}", path.display(), t.elapsed());
    }

    let rules_text = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
        -A POSTROUTING -s 192.168.0.0/16 -p tcp -j SNAT --to-source 42.191.180.28:1024-65535\n\
        -A POSTROUTING -s 172.16.0.0/12 -j MASQUERADE\n\
        -A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n";
    let rs = iptviz::parse_str(rules_text, &iptviz::ParseOptions::strict("bench rules"))
        .expect("bench rules parse");
    let nat_rules = NatRules::from_ruleset(&rs.ruleset);
    let opt = PressureOptions {
        top: 10,
        clients_per_tuple: 3,
        limit_per_dest: Some(1024),
    };

    if let Ok(once) = std::env::var("CONNTRACK_BENCH_ONCE") {
        // As `iptviz conntrack` does: the text is dropped after parsing.
        let t = Instant::now();
        let table = {
            let text = std::fs::read(&path).expect("read bench file");
            conntrack::parse_entries(&text, "bench")
        };
        let parse_secs = t.elapsed().as_secs_f64();
        let rss = status_kb("VmRSS:").unwrap_or(0);
        let t = Instant::now();
        let tuples = (once == "pressure")
            .then(|| conntrack::pressure(&table.entries, Some(&nat_rules), opt).tuples_total);
        println!(
            "once {once}: {} entries parsed in {parse_secs:.3} s (RSS {:.1} MB); pressure {:?} tuples in {:.3} s; peak RSS {:.1} MB",
            table.entries.len(),
            rss as f64 / 1e3,
            tuples,
            t.elapsed().as_secs_f64(),
            status_kb("VmHWM:").unwrap_or(0) as f64 / 1e3
        );
        return;
    }

    let t = Instant::now();
    let text = std::fs::read(&path).expect("read bench file");
    let read_time = t.elapsed();
    let mb = text.len() as f64 / 1e6;
    println!(
        "file: {} ({n} entries, {mb:.1} MB), read in {read_time:.2?}",
        path.display()
    );
    println!(
        "size_of::<Entry>() = {} bytes",
        std::mem::size_of::<Entry>()
    );

    let rss_text = status_kb("VmRSS:").unwrap_or(0);
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    for _ in 0..3 {
        let (t, cpu) = (Instant::now(), cpu_secs());
        let table = conntrack::parse_entries(black_box(&text), "bench");
        let secs = t.elapsed().as_secs_f64();
        best_cpu = best_cpu.min(cpu_secs() - cpu);
        assert_eq!(table.entries.len(), n, "{:?}", table.problems.first());
        assert!(table.problems.is_empty());
        best = best.min(secs);
        drop(table);
    }
    println!(
        "parse: best of 3 {:.3} s ({best_cpu:.3} s on the CPU), {:.0} MB/s, {:.2} M entries/s",
        best,
        mb / best,
        n as f64 / best / 1e6
    );

    let t = Instant::now();
    let table = conntrack::parse_entries(&text, "bench");
    let parse_secs = t.elapsed().as_secs_f64();
    let rss_parsed = status_kb("VmRSS:").unwrap_or(0);
    let t = Instant::now();
    let summary = conntrack::summarize(&table.entries, 10);
    let sum_secs = t.elapsed().as_secs_f64();
    black_box(&summary);
    let t = Instant::now();
    let nat = table.entries.iter().filter(|e| e.nat().any()).count();
    let nat_secs = t.elapsed().as_secs_f64();
    let entries_bytes = table.entries.capacity() * std::mem::size_of::<Entry>();
    println!(
        "memory: text {:.1} MB; entries {:.1} MB ({:.2}x text); RSS with text {:.1} MB, after parse {:.1} MB ({:.2}x text), peak {:.1} MB",
        mb,
        entries_bytes as f64 / 1e6,
        entries_bytes as f64 / text.len() as f64,
        rss_text as f64 / 1e3,
        rss_parsed as f64 / 1e3,
        rss_parsed as f64 * 1e3 / text.len() as f64,
        status_kb("VmHWM:").unwrap_or(0) as f64 / 1e3
    );
    println!(
        "summary: {sum_secs:.3} s; parse + summary {:.3} s; NAT scan {nat_secs:.3} s ({nat} NAT entries)",
        parse_secs + sum_secs
    );

    // NAT port pressure, on top of the parsed table: the text is dropped
    // first so that the baseline is the table alone.
    drop(text);
    for (what, rules) in [
        ("without rules", None),
        ("with 3 nat rules", Some(&nat_rules)),
    ] {
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        let mut grow_kb = 0u64;
        let mut base_kb = 0u64;
        let mut found = None;
        for _ in 0..3 {
            base_kb = status_kb("VmRSS:").unwrap_or(0);
            // Writing 5 resets the peak (VmHWM) to the current RSS.
            let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
            let (t, cpu) = (Instant::now(), cpu_secs());
            let p = conntrack::pressure(black_box(&table.entries), rules, opt);
            best = best.min(t.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(cpu_secs() - cpu);
            if reset {
                grow_kb = grow_kb.max(status_kb("VmHWM:").unwrap_or(0).saturating_sub(base_kb));
            }
            found = Some((
                p.tuples_total,
                p.translated_entries,
                p.tuples.first().cloned(),
            ));
        }
        let (tuples, translated, top) = found.expect("ran");
        println!(
            "pressure {what}: best of 3 {best:.3} s ({best_cpu:.3} s on the CPU); {tuples} tuples, {translated} translated entries; peak memory +{:.1} MB over {:.1} MB RSS holding the table ({:.1}%)",
            grow_kb as f64 / 1e3,
            base_kb as f64 / 1e3,
            grow_kb as f64 * 100.0 / base_kb.max(1) as f64
        );
        if let Some(t) = top {
            println!(
                "  most pressed: {} {} of {} ports ({:.1}%), of the limit 1024: {:.1}%",
                t.label(),
                t.ports,
                t.range_size,
                t.percent,
                t.limit_percent.unwrap_or(0.0)
            );
        }
    }

    let t = Instant::now();
    match std::process::Command::new("wc")
        .arg("-l")
        .arg(&path)
        .output()
    {
        Ok(o) => {
            let secs = t.elapsed().as_secs_f64();
            println!(
                "wc -l: {:.3} s ({:.0} MB/s): {}",
                secs,
                mb / secs,
                String::from_utf8_lossy(&o.stdout).trim()
            );
        }
        Err(e) => println!("wc -l: not run ({e})"),
    }
}
