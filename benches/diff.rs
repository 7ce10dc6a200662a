//! Rule diff and fleet at cluster scale.
//!
//! 1. Two kube-proxy dumps of 10,000 services (113,000 rules, 16.7 MB)
//!    that differ in one service (removed from the new one): parse time,
//!    `diff()` time (best and median of 5), and `iptviz diff OLD NEW` wall
//!    time end to end; the diff must name exactly that service's rules.
//!    The semantic diff of the same pair (`semantic_diff()`, best and
//!    median of 3, and `iptviz diff` end to end with and without it): it
//!    must name exactly that service's packets (every box is TCP to the
//!    service's cluster IP and port, and there is one).
//! 2. `iptviz fleet` over 100 such nodes (`IPTVIZ_BENCH_FLEET_NODES=N` for
//!    another count) with drift injected in a known set (a stale service on
//!    3 nodes, a missing chain on 1, an extra DROP on 2): wall time, peak
//!    memory (VmHWM of the process, sampled every 10 ms), and whether
//!    exactly that drift was reported.
//!
//! `cargo bench --bench diff`

#[path = "common/input.rs"]
mod input;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iptviz::diff::semantic::semantic_diff;
use iptviz::diff::{DiffOptions, diff};
use iptviz::parse::{ParseOptions, parse_str};

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The new dump: `text` without service `key` (its KUBE-SERVICES rule, its
/// service chain and its endpoint chains). Returns it and the number of
/// rules and chains removed.
fn without_service(text: &str, key: &str) -> (String, usize, usize) {
    let quoted = format!("\"{key}:");
    let svc_rule = text
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES") && l.contains(&quoted))
        .expect("service in KUBE-SERVICES");
    let svc = svc_rule.rsplit(' ').next().unwrap().to_string();
    let mut names = vec![svc.clone()];
    for l in text.lines() {
        if l.starts_with(&format!("-A {svc} "))
            && let Some(t) = l.rsplit(' ').next()
            && t.starts_with("KUBE-SEP-")
        {
            names.push(t.to_string());
        }
    }
    let mut rules = 0;
    let mut chains = 0;
    let mut out = String::with_capacity(text.len());
    for l in text.lines() {
        let hit = names.iter().any(|n| {
            l.split(' ')
                .any(|w| w == n || w.strip_prefix(':') == Some(n.as_str()))
        });
        if hit {
            if l.starts_with(':') {
                chains += 1;
            } else {
                rules += 1;
            }
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    (out, rules, chains)
}

fn rule_diff_bench(text: &str, bin: &Path, tmp: &Path) {
    let (new, rules, chains) = without_service(text, "ns1/svc-1");
    println!(
        "rule diff: {} bytes against {} bytes, one service removed ({rules} rules, {chains} chains)",
        text.len(),
        new.len()
    );
    let t = Instant::now();
    let a = parse_str(text, &ParseOptions::lenient("old")).unwrap();
    let parse_a = t.elapsed();
    let t = Instant::now();
    let b = parse_str(&new, &ParseOptions::lenient("new")).unwrap();
    let parse_b = t.elapsed();
    println!(
        "  parse: old {} ({} rules), new {} ({} rules)",
        secs(parse_a),
        a.ruleset.rule_count(),
        secs(parse_b),
        b.ruleset.rule_count()
    );
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let t = Instant::now();
        let d = diff(
            &a.ruleset,
            &b.ruleset,
            "old",
            "new",
            &DiffOptions::default(),
        );
        times.push(t.elapsed());
        last = Some(d);
    }
    times.sort();
    let d = last.unwrap();
    println!(
        "  diff(): best {}, median {}",
        secs(times[0]),
        secs(times[times.len() / 2])
    );
    let s = &d.summary;
    let exact = s.rules_removed == rules
        && s.chains_removed == chains
        && s.rules_added + s.rules_changed + s.rules_moved + s.chains_added + s.chains_renamed == 0;
    println!(
        "  found: {} rules removed, {} chains removed, {} other changes -> exactly that service: {}",
        s.rules_removed,
        s.chains_removed,
        s.rules_added + s.rules_changed + s.rules_moved + s.chains_added + s.chains_renamed,
        if exact { "yes" } else { "NO" }
    );
    // The semantic diff: the removed service's cluster IP and port.
    let svc_rule = text
        .lines()
        .find(|l| l.starts_with("-A KUBE-SERVICES") && l.contains("\"ns1/svc-1:"))
        .unwrap();
    let word_after = |flag: &str| {
        let w: Vec<&str> = svc_rule.split(' ').collect();
        let i = w.iter().position(|x| *x == flag).unwrap();
        w[i + 1].trim_end_matches("/32").to_string()
    };
    let (vip, port, proto) = (word_after("-d"), word_after("--dport"), word_after("-p"));
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let t = Instant::now();
        let s = semantic_diff(&a.ruleset, &b.ruleset).unwrap();
        times.push(t.elapsed());
        last = Some(s);
    }
    times.sort();
    let s = last.unwrap();
    let boxes: Vec<_> = s.paths.iter().flat_map(|p| p.boxes.iter()).collect();
    let exact = !boxes.is_empty()
        && s.skipped.is_empty()
        && boxes.iter().all(|b| {
            b.dst.as_deref() == Some(vip.as_str())
                && b.dport.as_deref() == Some(port.as_str())
                && b.proto.as_deref() == Some(proto.as_str())
        });
    println!(
        "  semantic_diff(): best {}, median {}; {} boxes in {}; all {proto} to {vip}:{port} (exactly that service): {}",
        secs(times[0]),
        secs(times[1]),
        boxes.len(),
        s.paths
            .iter()
            .map(|p| format!("{} {}", p.table, p.chain))
            .collect::<Vec<_>>()
            .join(", "),
        if exact { "yes" } else { "NO" }
    );
    let old_path = tmp.join("old.rules");
    let new_path = tmp.join("new.rules");
    std::fs::write(&old_path, text).unwrap();
    std::fs::write(&new_path, &new).unwrap();
    for (what, flag) in [
        ("rule diff only, --no-semantic", "--no-semantic"),
        ("with the semantic diff (default)", "--semantic"),
    ] {
        let mut wall = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let st = Command::new(bin)
                .arg("diff")
                .arg(flag)
                .arg(&old_path)
                .arg(&new_path)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            wall.push(t.elapsed());
            assert_eq!(st.code(), Some(1), "iptviz diff should find the change");
        }
        wall.sort();
        println!(
            "  `iptviz diff OLD NEW` end to end (read, parse both, diff, print; {what}): best {}, median {}",
            secs(wall[0]),
            secs(wall[1])
        );
    }
}

/// Inserts `lines` before the COMMIT of `table`.
fn before_commit(text: &str, table: &str, lines: &str) -> String {
    let start = text.find(&format!("*{table}\n")).expect("table");
    let commit = start + text[start..].find("\nCOMMIT").unwrap() + 1;
    format!("{}{lines}{}", &text[..commit], &text[commit..])
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU seconds of a running process (`/proc/PID/stat`,
/// clock ticks of 1/100 s).
fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn fleet_bench(text: &str, bin: &Path, tmp: &Path, count: usize) {
    let dir = tmp.join("fleet");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stale = ["node-003", "node-047", "node-091"];
    let missing = "node-060";
    let extra = ["node-010", "node-077"];
    let gone_chain = text
        .lines()
        .find_map(|l| l.strip_prefix(":KUBE-SVC-"))
        .map(|l| format!("KUBE-SVC-{}", l.split(' ').next().unwrap()))
        .unwrap();
    let t = Instant::now();
    let mut total = 0usize;
    for n in 1..=count {
        let name = format!("node-{n:03}");
        let mut node = text.to_string();
        if stale.contains(&name.as_str()) {
            node = node.replacen("*nat\n", "*nat\n:KUBE-SVC-STALESERVICE0001 - [0:0]\n", 1);
            node = before_commit(
                &node,
                "nat",
                "-A KUBE-SERVICES -d 10.96.250.1/32 -p tcp -m comment --comment \"old/gone:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-STALESERVICE0001\n\
                 -A KUBE-SVC-STALESERVICE0001 -m comment --comment \"old/gone:http\" -j KUBE-MARK-MASQ\n",
            );
        }
        if name == missing {
            node = node
                .lines()
                .filter(|l| !l.contains(&gone_chain))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        if extra.contains(&name.as_str()) {
            node = before_commit(&node, "filter", "-A INPUT -s 203.0.113.66/32 -j DROP\n");
        }
        total += node.len();
        std::fs::write(dir.join(format!("{name}.rules")), node).unwrap();
    }
    println!(
        "fleet: {count} nodes, {:.1} MB each, {:.2} GB in all (written in {})",
        text.len() as f64 / 1e6,
        total as f64 / 1e9,
        secs(t.elapsed())
    );
    let out = tmp.join("fleet.json");
    // Other work on the machine stretches wall time; the load says how much.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().map(str::to_string))
        .unwrap_or_default();
    let t = Instant::now();
    let mut child = Command::new(bin)
        .args(["fleet", "--json", "-o"])
        .arg(&out)
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let mut cpu = 0.0f64;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        peak = peak.max(status_kb(pid, "VmHWM:").unwrap_or(0));
        cpu = cpu.max(cpu_secs(pid).unwrap_or(0.0));
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = t.elapsed();
    println!(
        "  `iptviz fleet --json DIR`: {} wall, {cpu:.1} s CPU (user+sys, sampled), peak memory {:.0} MB (VmHWM, sampled), exit {:?}, {} CPUs, load average before: {}",
        secs(wall),
        peak as f64 / 1024.0,
        status.code(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let drift = r["drift"].as_array().unwrap();
    let mut found = Vec::new();
    for d in drift {
        let present = names(&d["present_on"]);
        let missing_on = names(&d["missing_on"]);
        let lines = d["lines"].as_array().unwrap().len();
        if present.len() <= missing_on.len() {
            found.push(format!("only on {} ({lines} lines)", present.join(",")));
        } else {
            found.push(format!(
                "missing on {} ({lines} lines)",
                missing_on.join(",")
            ));
        }
    }
    let expected = [
        format!("missing on {missing}"),
        format!("only on {}", extra.join(",")),
        format!("only on {}", stale.join(",")),
    ];
    let exact = found.len() == 3
        && expected
            .iter()
            .all(|e| found.iter().any(|f| f.starts_with(e)));
    println!("  drift reported: {}", found.join("; "));
    println!(
        "  groups: {}, outliers: {}; exactly the injected drift: {}",
        r["groups"].as_array().unwrap().len(),
        names(&r["outliers"]).join(","),
        if exact { "yes" } else { "NO" }
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&out);
}

fn main() {
    let (bytes, name) = input::kube_dump();
    let text = String::from_utf8(bytes).expect("UTF-8 dump");
    println!("input: {name}");
    let bin = Path::new(env!("CARGO_BIN_EXE_iptviz"));
    let tmp = std::env::temp_dir().join(format!("iptviz-bench-diff-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    rule_diff_bench(&text, bin, &tmp);
    if std::env::var("IPTVIZ_BENCH_SKIP_FLEET").is_ok_and(|v| v == "1") {
        let _ = std::fs::remove_dir_all(&tmp);
        return;
    }
    let count = std::env::var("IPTVIZ_BENCH_FLEET_NODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    fleet_bench(&text, bin, &tmp, count);
    let _ = std::fs::remove_dir_all(&tmp);
}
