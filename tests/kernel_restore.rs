//! The kernel agrees: every corpus dump that `iptables-restore --test`
//! accepts in its original form is accepted again after we re-emit it.
//! Runs inside a network namespace the test creates and deletes.

mod common;

use iptviz::model::Family;
use iptviz::parse::{ParseOptions, parse_bytes};

use common::Netns;

#[test]
fn kernel_accepts_our_re_emitted_dumps() {
    if !common::kernel_tests_can_run(&["ip", "iptables-restore", "ip6tables-restore"]) {
        return;
    }
    let ns = Netns::new("restore");
    let (mut accepted, mut refused_original) = (0, Vec::new());
    let mut failures = Vec::new();
    for path in common::corpus_files("iptables", "rules") {
        let bytes = std::fs::read(&path).unwrap();
        let parsed = parse_bytes(&bytes, &ParseOptions::strict("x")).unwrap();
        let restore = match parsed.ruleset.family {
            Family::Ipv4 => "iptables-restore",
            Family::Ipv6 => "ip6tables-restore",
        };
        let (ok, _, err) = ns.run(restore, &["--test"], &bytes);
        if !ok {
            refused_original.push(format!(
                "{}: {}",
                path.file_name().unwrap().to_string_lossy(),
                err.lines().next().unwrap_or("")
            ));
            continue;
        }
        let ours = iptviz::save::to_save_text(&parsed.ruleset);
        let (ok, _, err) = ns.run(restore, &["--test"], ours.as_bytes());
        if ok {
            accepted += 1;
        } else {
            failures.push(format!("{}: {err}", path.display()));
        }
    }
    eprintln!(
        "kernel accepted {accepted} re-emitted dumps; {} originals it refuses itself:\n  {}",
        refused_original.len(),
        refused_original.join("\n  ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(accepted >= 10, "too few dumps were checked: {accepted}");
}
