//! `iptviz check` against the kernel: every line of every upstream
//! extension test (`*.t`, OK and FAIL lines) and every corpus dump is
//! loaded with the real `iptables-restore` / `ip6tables-restore` in a
//! network namespace the test creates, and our verdict (any error) is
//! compared with the kernel's (refused or not).
//!
//! The restore is a real one, not `--test`: `--test` stops before the
//! kernel, which is where targets are checked against tables and hooks.
//! The namespace is thrown away afterwards.
//!
//! Goal: no line or dump the kernel accepts gets an error, and at least 95%
//! of the lines the kernel refuses do (lines refused only because this
//! machine lacks a kernel module or an object the line names are counted
//! apart). Every disagreement is printed; `docs/check-vs-kernel.md` gives
//! the reason of each.

mod common;

use std::path::Path;

use iptviz::model::Family;
use iptviz::parse::{ParseOptions, parse_bytes};

use common::Netns;

/// Why the kernel here refused a line for reasons outside the line: a
/// module this kernel lacks, or an object (set, SELinux context, nfacct
/// object, OS fingerprints) the line names and the machine does not have.
fn environment(msg: &str, rule: &str) -> Option<&'static str> {
    if msg.contains("missing kernel module") || msg.contains("Couldn't load") {
        return Some("kernel module missing here");
    }
    if msg.contains("doesn't exist") {
        return Some("the ipset does not exist");
    }
    if msg.contains("No such file or directory") {
        if rule.contains("SECMARK") {
            return Some("no SELinux here");
        }
        if rule.contains("connlabel") {
            return Some("no /etc/xtables/connlabel.conf here");
        }
        if rule.contains("nfacct") {
            return Some("the nfacct object does not exist");
        }
        if rule.contains("rateest") {
            return Some("the rate estimator does not exist");
        }
        if rule.contains("--algo") {
            return None;
        }
        return Some("kernel module missing here");
    }
    if rule.contains("-m osf") && msg.contains("Invalid argument") && rule.contains("-p tcp") {
        return Some("no OS fingerprints loaded");
    }
    None
}

fn flagged(text: &str, family: Family) -> (bool, Vec<String>) {
    let opts = ParseOptions {
        family: Some(family),
        ..ParseOptions::lenient("t")
    };
    match parse_bytes(text.as_bytes(), &opts) {
        Ok(p) => {
            let errs: Vec<String> = p
                .problems
                .iter()
                .filter(|x| x.severity == iptviz::Severity::Error)
                .map(|x| x.message.clone())
                .collect();
            (!errs.is_empty(), errs)
        }
        Err(e) => (true, vec![e.to_string()]),
    }
}

#[derive(Default)]
struct Tally {
    refused: usize,
    refused_flagged: usize,
    environment: usize,
    accepted: usize,
    accepted_flagged: usize,
    misses: Vec<String>,
    false_errors: Vec<String>,
    env_lines: Vec<String>,
}

fn run_t_file(ns: &Netns, path: &Path, t: &mut Tally) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let family = if name.starts_with("libip6t_") {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    let (cmd, restore) = match family {
        Family::Ipv4 => ("iptables", "iptables-restore"),
        Family::Ipv6 => ("ip6tables", "ip6tables-restore"),
    };
    let text = std::fs::read_to_string(path).unwrap();
    let mut table = "filter".to_string();
    let mut chains: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(tb) = line.strip_prefix('*') {
            table = tb.to_string();
            continue;
        }
        if let Some(c) = line.strip_prefix(':') {
            chains = c.split(',').map(str::to_string).collect();
            continue;
        }
        if let Some(c) = line.strip_prefix('%') {
            // A setup command of the upstream test (e.g. a RATEEST rule).
            let mut words = c.split_whitespace();
            let tool = words.next().unwrap_or("");
            let tool = if tool == "iptables" { cmd } else { tool };
            let args: Vec<&str> = words.collect();
            ns.run(tool, &args, b"");
            continue;
        }
        if let Some(rest) = line.strip_prefix('@') {
            let args: Vec<&str> = rest.split_whitespace().collect();
            if let Some((tool, rest)) = args.split_first() {
                ns.run(tool, rest, b"");
            }
            continue;
        }
        let fields: Vec<&str> = line.split(';').collect();
        if fields.len() < 3 {
            continue;
        }
        let rule = fields[0];
        // Shaped like iptables-save output: the built-in chains declared.
        let mut dump = format!("*{table}\n");
        for c in &chains {
            dump.push_str(&format!(":{c} ACCEPT [0:0]\n"));
        }
        for c in &chains {
            dump.push_str(&format!("-A {c} {rule}\n"));
        }
        dump.push_str("COMMIT\n");
        let (ok, _, msg) = ns.run(restore, &[], dump.as_bytes());
        let (ours, errs) = flagged(&dump, family);
        let msg1 = msg
            .lines()
            .filter(|l| !l.starts_with("Try `") && !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        let label = format!("{name} [{table} {}] {rule}", chains.join(","));
        if ok {
            t.accepted += 1;
            if ours {
                t.accepted_flagged += 1;
                t.false_errors
                    .push(format!("{label}\n      ours: {}", errs.join(" | ")));
            }
        } else if let Some(why) = environment(&msg, rule) {
            t.environment += 1;
            t.env_lines.push(format!(
                "{label}: {why}{}",
                if ours { " (flagged too)" } else { "" }
            ));
        } else {
            t.refused += 1;
            if ours {
                t.refused_flagged += 1;
            } else {
                t.misses.push(format!("{label}\n      kernel: {msg1}"));
            }
        }
    }
}

#[test]
fn check_agrees_with_the_kernel_on_upstream_extension_tests_and_corpus_dumps() {
    if !common::kernel_tests_can_run(&["ip", "iptables-restore", "ip6tables-restore", "ipset"]) {
        return;
    }
    let ns = Netns::new("check");
    let mut t = Tally::default();
    let mut skipped = 0;
    for path in common::corpus_files("iptables/upstream-extension-tests", "t") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // ebtables and arptables extensions are out of scope.
        if name.starts_with("libebt_") || name.starts_with("libarpt_") {
            skipped += 1;
            continue;
        }
        run_t_file(&ns, &path, &mut t);
    }
    drop(ns);

    // Corpus dumps, each in a fresh namespace with the ipsets it names.
    let (mut dumps_ok, mut dumps_refused, mut dumps_refused_flagged) = (0, 0, 0);
    let mut dump_false = Vec::new();
    for path in common::corpus_files("iptables", "rules") {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(parsed) = parse_bytes(&bytes, &ParseOptions::lenient(&name)) else {
            continue;
        };
        let family = parsed.ruleset.family;
        let ns = Netns::new("dump");
        make_sets(&ns, &parsed.ruleset, family);
        let restore = match family {
            Family::Ipv4 => "iptables-restore",
            Family::Ipv6 => "ip6tables-restore",
        };
        let (ok, _, msg) = ns.run(restore, &[], &bytes);
        let errs: Vec<String> = parsed
            .problems
            .iter()
            .filter(|p| p.severity == iptviz::Severity::Error)
            .map(|p| p.render(&name).lines().next().unwrap_or("").to_string())
            .collect();
        if ok {
            dumps_ok += 1;
            if !errs.is_empty() {
                dump_false.push(format!("{name}: {}", errs.join(" | ")));
            }
        } else {
            dumps_refused += 1;
            if !errs.is_empty() {
                dumps_refused_flagged += 1;
            }
            println!(
                "dump refused by the kernel: {name}: {} ; ours: {}",
                msg.lines().next().unwrap_or(""),
                if errs.is_empty() {
                    "no error".to_string()
                } else {
                    errs[0].clone()
                }
            );
        }
    }

    println!(
        "upstream *.t lines (libxt, libipt, libip6t; {skipped} ebtables/arptables files skipped):"
    );
    println!(
        "  kernel refused {}: check flagged {} ({:.1}%)",
        t.refused,
        t.refused_flagged,
        100.0 * t.refused_flagged as f64 / t.refused.max(1) as f64
    );
    println!(
        "  kernel accepted {}: check flagged {} as errors",
        t.accepted, t.accepted_flagged
    );
    println!(
        "  refused for reasons outside the line (module or object missing here): {}",
        t.environment
    );
    for l in &t.env_lines {
        println!("    env: {l}");
    }
    for m in &t.misses {
        println!("  MISS (kernel refused, check passed): {m}");
    }
    for f in &t.false_errors {
        println!("  FALSE ERROR (kernel accepted): {f}");
    }
    println!(
        "corpus dumps: kernel accepted {dumps_ok} ({} with errors from check); refused {dumps_refused} ({dumps_refused_flagged} flagged)",
        dump_false.len()
    );
    for d in &dump_false {
        println!("  FALSE ERROR on dump: {d}");
    }
    assert!(
        t.false_errors.is_empty() && dump_false.is_empty(),
        "check flagged lines or dumps the kernel accepts (see above)"
    );
    assert!(
        t.refused_flagged * 100 >= t.refused * 95,
        "check flagged only {} of {} lines the kernel refused",
        t.refused_flagged,
        t.refused
    );
}

/// Creates the ipsets a ruleset names, with a type that fits the number of
/// src/dst flags it uses them with.
fn make_sets(ns: &Netns, rs: &iptviz::Ruleset, family: Family) {
    let fam = match family {
        Family::Ipv4 => "inet",
        Family::Ipv6 => "inet6",
    };
    let mut seen = std::collections::BTreeMap::new();
    for t in &rs.tables {
        for c in &t.chains {
            for r in &c.rules {
                for m in r.matches().filter(|m| m.module == "set") {
                    for o in m.opts.iter() {
                        if let (Some(n), Some(f)) = (o.args.first(), o.args.get(1)) {
                            seen.insert(n.to_string(), f.split(',').count());
                        }
                    }
                }
            }
        }
    }
    for (name, dims) in seen {
        let ty = match dims {
            1 => "hash:net",
            2 => "hash:ip,port",
            _ => "hash:ip,port,ip",
        };
        ns.run("ipset", &["create", &name, ty, "family", fam], b"");
    }
}
