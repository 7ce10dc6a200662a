//! `iptviz diff` on nftables rulesets: tables, chains, rules and set
//! elements are compared (the diff once saw only iptables tables and
//! called any two nft rulesets the same), text and JSON of one ruleset are
//! the same, and the semantic diff says that it does not cover nft tables.

mod common;

use assert_cmd::Command;
use iptviz::diff::{ChangeKind, DiffOptions, RuleDiff, Status, diff};
use iptviz::parse::{ParseOptions, parse_str};

fn corpus(name: &str) -> String {
    let p = common::corpus_dir().join("nftables").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rule_diff(a: &str, b: &str) -> RuleDiff {
    let p = |t: &str| parse_str(t, &ParseOptions::lenient("t")).unwrap().ruleset;
    diff(&p(a), &p(b), "old", "new", &DiffOptions::default())
}

#[test]
fn two_different_nft_rulesets_are_not_called_the_same() {
    let d = rule_diff(
        &corpus("firewalld-debian12-default.nft"),
        &corpus("fail2ban-nftables-multiport.nft"),
    );
    assert!(!d.is_same());
    let st = |n: &str| d.tables.iter().find(|t| t.name == n).map(|t| t.status);
    assert_eq!(st("inet firewalld"), Some(Status::Removed));
    assert_eq!(st("inet f2b-table"), Some(Status::Added));
    assert_eq!((d.summary.tables_removed, d.summary.tables_added), (1, 1));
    assert_eq!(d.summary.old_rules, 92);
    // The removed table's rules, and its set elements, are removed lines.
    let elements: usize = d.tables[0]
        .chains
        .iter()
        .filter(|c| c.name.starts_with('@'))
        .map(|c| c.rules.len())
        .sum();
    assert_eq!(d.tables[0].name, "inet firewalld");
    assert!(d.summary.rules_removed >= d.summary.old_rules + elements);
}

#[test]
fn one_rule_edited_is_one_rule_changed_in_its_chain() {
    let old = corpus("firewalld-debian12-default.nft");
    let new = old.replacen("tcp dport 22 accept", "tcp dport 2222 accept", 1);
    assert_ne!(old, new, "the corpus rule to edit is there");
    let d = rule_diff(&old, &new);
    assert_eq!(d.summary.rules_changed, 1, "{:#?}", d.summary);
    assert_eq!(d.summary.rules_added + d.summary.rules_removed, 0);
    let [t] = d.tables.as_slice() else {
        panic!("one table differs: {:#?}", d.tables)
    };
    assert_eq!(t.name, "inet firewalld");
    let [c] = t.chains.as_slice() else {
        panic!("one chain differs")
    };
    assert_eq!(c.name, "filter_IN_public_allow");
    let r = &c.rules[0];
    assert_eq!(r.kind, ChangeKind::Changed);
    assert_eq!(r.old.as_ref().unwrap().text, "tcp dport 22 accept");
    assert_eq!(r.new.as_ref().unwrap().text, "tcp dport 2222 accept");
    assert_eq!(r.old.as_ref().unwrap().line, 146);
}

#[test]
fn set_elements_and_base_chain_policies_are_compared() {
    let old = corpus("fail2ban-nftables-multiport.nft");
    let new = old.replacen(
        "elements = { 198.51.100.4, 203.0.113.17 }",
        "elements = { 198.51.100.4, 203.0.113.17, 192.0.2.9 }",
        1,
    );
    assert_ne!(old, new);
    let d = rule_diff(&old, &new);
    let c = &d.tables[0].chains[0];
    assert_eq!(c.name, "@addr-set-sshd");
    assert_eq!(c.rules.len(), 1);
    assert_eq!(c.rules[0].kind, ChangeKind::Added);
    assert_eq!(c.rules[0].new.as_ref().unwrap().text, "192.0.2.9");

    let text = "table inet t {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport 22 accept\n }\n}\n";
    let d = rule_diff(text, &text.replace("policy accept", "policy drop"));
    let c = &d.tables[0].chains[0];
    let (o, n) = c.policy.as_ref().expect("policy change");
    assert!(
        o.ends_with("policy accept") && n.ends_with("policy drop"),
        "{o} / {n}"
    );
    assert_eq!(d.summary.policies_changed, 1);
    assert!(c.rules.is_empty());
}

#[test]
fn counters_are_left_out_unless_asked_for() {
    let text =
        "table ip t {\n chain c {\n  tcp dport 80 counter packets 1 bytes 60 accept\n }\n}\n";
    let more = text.replace("packets 1 bytes 60", "packets 9 bytes 900");
    assert!(rule_diff(text, &more).is_same());
    let p = |t: &str| parse_str(t, &ParseOptions::lenient("t")).unwrap().ruleset;
    let d = diff(
        &p(text),
        &p(&more),
        "old",
        "new",
        &DiffOptions { counters: true },
    );
    assert!(!d.is_same());
}

#[test]
fn text_and_json_of_one_ruleset_are_the_same() {
    let dir = common::corpus_dir().join("nftables");
    for name in [
        "firewalld-debian12-default",
        "fw4-ipsets",
        "kube-proxy-nftables-ipv6",
        "sshguard-nft-sets",
    ] {
        Command::cargo_bin("iptviz")
            .unwrap()
            .arg("diff")
            .arg(dir.join(format!("{name}.listed.nft")))
            .arg(dir.join(format!("{name}.json")))
            .assert()
            .code(0);
    }
}

#[test]
fn the_semantic_diff_names_the_nft_tables_it_does_not_cover() {
    let dir = common::corpus_dir().join("nftables");
    let old = dir.join("firewalld-debian12-default.nft");
    let edited = std::env::temp_dir().join(format!("iptviz-diff-nft-{}.nft", std::process::id()));
    std::fs::write(
        &edited,
        corpus("firewalld-debian12-default.nft").replacen(
            "tcp dport 22 accept",
            "tcp dport 23 accept",
            1,
        ),
    )
    .unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .arg("diff")
        .arg(&old)
        .arg(&edited)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let _ = std::fs::remove_file(&edited);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("~ #1    tcp dport 22 accept"), "{out}");
    assert!(out.contains("=> #1  tcp dport 23 accept"), "{out}");
    assert!(
        out.contains("not compared: nftables table inet firewalld"),
        "{out}"
    );
    assert!(!out.contains("no packet changes fate"), "{out}");
}

#[test]
fn fleet_groups_nft_hosts_by_their_nft_rules() {
    let dir = common::corpus_dir().join("nftables");
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["fleet", "--json"])
        .arg(dir.join("firewalld-debian12-default.nft"))
        .arg(dir.join("firewalld-debian12-default.listed.nft"))
        .arg(dir.join("fail2ban-nftables-multiport.nft"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let text = v.to_string();
    assert!(
        text.contains("\"rules\":92"),
        "firewalld's rules counted: {text}"
    );
    let groups = v["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "firewalld twice, fail2ban apart: {text}");
}

#[test]
fn lint_says_it_leaves_nft_tables_out() {
    let dir = common::corpus_dir().join("nftables");
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["lint", "--json"])
        .arg(dir.join("firewalld-debian12-default.nft"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 nftables table not analysed (inet firewalld)"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["nft_tables_not_analysed"][0], "inet firewalld");
}
