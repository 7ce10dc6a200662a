//! Every real dump in the shared corpus parses cleanly and re-emits the
//! same rules, word for word.

mod common;

use iptviz::parse::{ParseOptions, Severity, parse_bytes, parse_rule, words};
use iptviz::save::{push_rule_body, rule_line};

fn rule_words(text: &str) -> Vec<String> {
    let mut w = words(text).unwrap();
    // `[p:b]` counters are printed by us too, keep them in the comparison.
    if w.first().is_some_and(|x| x == "--append") {
        w[0] = "-A".into();
    }
    w
}

/// Dumps the kernel refuses (`tests/kernel_check.rs` loads them), with the
/// error `check` must report for each; every other dump has no problem.
const REFUSED: &[(&str, &[&str])] = &[
    (
        // `-p ipv4`: a Fedora-family host's protocol name, refused by
        // iptables-restore where /etc/protocols is Debian's (a warning).
        "k8s-calico-kubeproxy-iptables-mode.rules",
        &["protocol name 'ipv4' (4)"],
    ),
    (
        "parser-stress-hand-edited.rules",
        &[
            "unknown option '--something-else' for -m multiport",
            "match module 'icmp6' exists only for ip6tables",
        ],
    ),
    (
        "tum-i8-chair-fw-2013-10-large.rules",
        &["'XX:XX:XX:XX:XX:XX' is not a MAC address"],
    ),
    (
        "tum-i8-chair-fw-2016-06-large.rules",
        &["'XX:XX:XX:XX:XX:XX' is not a MAC address"],
    ),
];

#[test]
fn every_corpus_dump_parses_without_problems() {
    let mut total_rules = 0;
    for path in common::corpus_files("iptables", "rules") {
        let bytes = std::fs::read(&path).unwrap();
        let parsed = parse_bytes(&bytes, &ParseOptions::strict(path.display().to_string()))
            .unwrap_or_else(|e| panic!("{e}"));
        let rendered: Vec<String> = parsed
            .problems
            .iter()
            .map(|p| p.render(&path.display().to_string()))
            .collect();
        let name = path.file_name().unwrap().to_string_lossy();
        match REFUSED.iter().find(|(n, _)| *n == name) {
            None => assert!(rendered.is_empty(), "{}", rendered.join("\n")),
            Some((_, expected)) => {
                for p in &parsed.problems {
                    assert!(
                        expected.iter().any(|e| p.message.contains(e)),
                        "{name}: unexpected {}",
                        p.message
                    );
                }
                for e in *expected {
                    assert!(
                        parsed.problems.iter().any(|p| p.message.contains(e)),
                        "{name}: expected an error with {e:?}"
                    );
                }
            }
        }
        let declared = String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                l.starts_with("-A") || (l.starts_with('[') && l.contains("-A"))
            })
            .count();
        assert_eq!(parsed.ruleset.rule_count(), declared, "{}", path.display());
        total_rules += declared;
    }
    assert!(
        total_rules > 10_000,
        "corpus unexpectedly small: {total_rules}"
    );
}

#[test]
fn every_corpus_rule_re_emits_word_for_word() {
    for path in common::corpus_files("iptables", "rules") {
        let bytes = std::fs::read(&path).unwrap();
        let parsed = parse_bytes(&bytes, &ParseOptions::strict("x")).unwrap();
        for t in &parsed.ruleset.tables {
            for c in &t.chains {
                for r in &c.rules {
                    assert_eq!(
                        rule_words(&rule_line(&c.name, r)),
                        rule_words(&r.text),
                        "{}:{}",
                        path.display(),
                        r.line
                    );
                }
            }
        }
        // The whole emitted dump parses again to the same rules.
        let again = iptviz::save::to_save_text(&parsed.ruleset);
        let re = iptviz::parse_str(&again, &ParseOptions::strict("re-emitted")).unwrap();
        assert_eq!(re.ruleset.rule_count(), parsed.ruleset.rule_count());
        assert_eq!(iptviz::save::to_save_text(&re.ruleset), again);
    }
}

#[test]
fn every_ok_line_of_the_extension_tests_parses_and_re_emits() {
    let mut ok_lines = 0;
    for path in common::corpus_files("iptables/upstream-extension-tests", "t") {
        let text = std::fs::read_to_string(&path).unwrap();
        for (no, line) in text.lines().enumerate() {
            if line.starts_with(['#', ':', '*']) || line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split(';');
            let (Some(rule), Some(_), Some(status)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if status.trim() != "OK" {
                continue;
            }
            ok_lines += 1;
            let where_ = format!("{}:{}", path.display(), no + 1);
            let r = parse_rule(rule).unwrap_or_else(|p| panic!("{where_}: {}", p.message));
            let mut out = String::new();
            push_rule_body(&mut out, &r);
            assert_eq!(
                words(&out).unwrap(),
                words(rule).unwrap(),
                "{where_}: re-emitted as `{out}`"
            );
        }
    }
    assert!(ok_lines > 500, "only {ok_lines} OK lines found");
}

#[test]
fn problems_are_errors_or_warnings_in_line_order() {
    let text = "*filter\n:INPUT ACCEPT\n-A INPUT -j NOWHERE\n-A GHOST -j ACCEPT\n";
    let p = iptviz::parse_str(text, &ParseOptions::lenient("t")).unwrap();
    let lines: Vec<u32> = p.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 4, 4]);
    assert!(p.problems.iter().all(|p| p.severity == Severity::Error));
}

/// `check` takes the suspicious-rule warnings from the parse, which finds
/// them in the walk that resolves targets (one pass over the rules fewer);
/// they must be what the standalone `lint` says of the same model, on
/// every dump (`tests/parallel.rs` holds the threaded parse to the same).
#[test]
fn suspicious_rules_found_while_parsing_are_what_lint_finds() {
    let mut with_findings = 0;
    for path in common::corpus_files("iptables", "rules") {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let parsed = parse_bytes(&bytes, &ParseOptions::lenient(&name)).unwrap();
        let lint = iptviz::parse::check::lint(&parsed.ruleset);
        assert_eq!(parsed.suspicious, lint, "{name}");
        with_findings += usize::from(!lint.is_empty());
    }
    // The comparison means something only if some dumps have findings.
    assert!(
        with_findings > 10,
        "only {with_findings} parses with findings"
    );
}
