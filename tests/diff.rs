//! `iptviz diff`: the rule diff finds nothing where nothing changed (the
//! same dump, its counters zeroed, kube-proxy chains re-hashed) and exactly
//! the edit where one rule was edited.

mod common;

use std::collections::HashMap;

use assert_cmd::Command;
use iptviz::diff::{ChangeKind, DiffOptions, RuleDiff, Status, diff};
use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_bytes, parse_str};
use regex::Regex;

fn parse(text: &str) -> Ruleset {
    let p = parse_str(text, &ParseOptions::lenient("t")).unwrap();
    p.ruleset
}

fn rule_diff(a: &str, b: &str) -> RuleDiff {
    diff(&parse(a), &parse(b), "old", "new", &DiffOptions::default())
}

fn sample(name: &str) -> String {
    std::fs::read_to_string(format!("{}/samples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn kube_corpus() -> String {
    std::fs::read_to_string(
        common::corpus_dir().join("iptables/k8s-calico-kubeproxy-iptables-mode.rules"),
    )
    .unwrap()
}

/// Every `[packets:bytes]` set to `[0:0]`.
fn zero_counters(text: &str) -> String {
    let rule = Regex::new(r"(?m)^\[\d+:\d+\]").unwrap();
    let chain = Regex::new(r"(?m)^(:\S+ \S+) \[\d+:\d+\]").unwrap();
    let t = rule.replace_all(text, "[0:0]");
    chain.replace_all(&t, "$1 [0:0]").into_owned()
}

/// kube-proxy's hashed chain names replaced by other ones, the same way
/// everywhere (what a kube-proxy of another version, or with another
/// hashing, would write for the same services).
fn rehash(text: &str) -> (String, usize) {
    let re = Regex::new(r"\b(KUBE-(?:SVC|SEP|EXT|FW|SVL|XLB)-)([A-Z0-9]{16})\b").unwrap();
    let mut names = HashMap::new();
    let out = re
        .replace_all(text, |c: &regex::Captures<'_>| {
            let new: String = c[2].chars().rev().collect();
            names.insert(c[0].to_string(), ());
            format!("{}{}Q", &c[1], &new[1..])
        })
        .into_owned();
    (out, names.len())
}

#[test]
fn every_corpus_dump_against_itself_is_the_same() {
    let mut dumps = common::corpus_files("iptables", "rules");
    for s in ["docker-host.rules", "kube-proxy.rules", "server-ipv6.rules"] {
        dumps.push(format!("{}/samples/{s}", env!("CARGO_MANIFEST_DIR")).into());
    }
    for path in &dumps {
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        let a = parse_bytes(&bytes, &ParseOptions::lenient(&name)).unwrap();
        let b = parse_bytes(&bytes, &ParseOptions::lenient(&name)).unwrap();
        let d = diff(
            &a.ruleset,
            &b.ruleset,
            &name,
            &name,
            &DiffOptions { counters: true },
        );
        assert!(d.is_same(), "{name}: {:#?}", d.tables);
        assert_eq!(d.summary.old_rules, a.ruleset.rule_count());
    }
}

#[test]
fn every_corpus_dump_with_counters_zeroed_is_the_same_unless_counters_are_asked_for() {
    let mut with_counters = 0;
    for path in common::corpus_files("iptables", "rules") {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let zeroed = zero_counters(&text);
        let d = rule_diff(&text, &zeroed);
        assert!(d.is_same(), "{}: {:#?}", path.display(), d.tables);
        if zeroed != text {
            with_counters += 1;
            let a = parse(&text);
            let b = parse(&zeroed);
            let d = diff(&a, &b, "a", "b", &DiffOptions { counters: true });
            assert!(!d.is_same(), "{}", path.display());
            assert!(d.summary.counters_changed > 0);
            assert_eq!(
                d.summary.rules_added + d.summary.rules_removed + d.summary.rules_changed,
                0
            );
        }
    }
    assert!(
        with_counters >= 3,
        "the corpus should hold dumps with counters"
    );
}

#[test]
fn kube_dump_rehashed_has_every_kube_chain_renamed_and_no_rule_changed() {
    for text in [sample("kube-proxy.rules"), kube_corpus()] {
        let (rehashed, kube_chains) = rehash(&text);
        assert!(kube_chains > 5);
        let d = rule_diff(&text, &rehashed);
        let s = &d.summary;
        assert_eq!(s.chains_renamed, kube_chains, "{:#?}", d.tables);
        assert_eq!(s.chains_added + s.chains_removed, 0, "{:#?}", d.tables);
        assert_eq!(
            s.rules_added + s.rules_removed + s.rules_changed + s.rules_moved,
            0,
            "{:#?}",
            d.tables
        );
        for t in &d.tables {
            for c in &t.chains {
                assert_eq!(c.status, Status::Renamed);
                assert!(c.rules.is_empty(), "{c:#?}");
            }
        }
    }
}

#[test]
fn kube_service_whose_endpoints_changed_and_names_rehashed_is_still_one_renamed_service() {
    let text = sample("kube-proxy.rules");
    let (rehashed, _) = rehash(&text);
    // One endpoint of the DNS service moves to another pod address.
    let moved = rehashed.replace("10.244.0.2", "10.244.0.9");
    assert_ne!(moved, rehashed);
    let d = rule_diff(&text, &moved);
    let s = &d.summary;
    assert_eq!(s.chains_added + s.chains_removed, 0, "{:#?}", d.tables);
    // Two endpoint chains (udp and tcp): their masquerade and DNAT rules,
    // and the two service rules that jump to them and name the address.
    assert_eq!(s.rules_changed, 6, "{:#?}", d.tables);
    assert_eq!(s.rules_added + s.rules_removed, 0, "{:#?}", d.tables);
}

const BASE: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:SSH - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j SSH
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
-A INPUT -s 10.0.0.0/8 -j ACCEPT
-A INPUT -s 10.1.0.0/16 -j DROP
-A SSH -s 192.0.2.0/24 -j ACCEPT
-A SSH -j DROP
COMMIT
";

fn only_change(d: &RuleDiff) -> &iptviz::diff::RuleChange {
    let changes: Vec<_> = d
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .collect();
    assert_eq!(changes.len(), 1, "{changes:#?}");
    changes[0]
}

#[test]
fn deleting_one_rule_is_one_removed_rule_at_its_place() {
    let new = BASE.replace("-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n", "");
    let d = rule_diff(BASE, &new);
    let c = only_change(&d);
    assert_eq!(c.kind, ChangeKind::Removed);
    let o = c.old.as_ref().unwrap();
    assert_eq!((o.index, o.line), (4, 9));
    assert_eq!(o.text, "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT");
}

#[test]
fn inserting_one_rule_is_one_added_rule_at_its_place() {
    let new = BASE.replace(
        "-A SSH -j DROP",
        "-A SSH -s 198.51.100.7/32 -j ACCEPT\n-A SSH -j DROP",
    );
    let d = rule_diff(BASE, &new);
    let c = only_change(&d);
    assert_eq!(c.kind, ChangeKind::Added);
    let n = c.new.as_ref().unwrap();
    assert_eq!(n.index, 2);
    assert_eq!(n.text, "-A SSH -s 198.51.100.7/32 -j ACCEPT");
}

#[test]
fn changing_a_port_is_one_changed_rule() {
    let new = BASE.replace("--dport 80 -j", "--dport 8080 -j");
    let d = rule_diff(BASE, &new);
    let c = only_change(&d);
    assert_eq!(c.kind, ChangeKind::Changed);
    assert_eq!(c.old.as_ref().unwrap().index, 4);
    assert_eq!(c.new.as_ref().unwrap().index, 4);
    assert!(c.new.as_ref().unwrap().text.contains("--dport 8080"));
}

#[test]
fn another_target_at_the_same_place_is_a_removed_and_an_added_rule() {
    let new = BASE.replace("--dport 80 -j ACCEPT", "--dport 80 -j DROP");
    let d = rule_diff(BASE, &new);
    assert_eq!(
        (
            d.summary.rules_added,
            d.summary.rules_removed,
            d.summary.rules_changed
        ),
        (1, 1, 0)
    );
}

#[test]
fn swapping_two_overlapping_rules_is_one_move() {
    let new = BASE.replace(
        "-A INPUT -s 10.0.0.0/8 -j ACCEPT\n-A INPUT -s 10.1.0.0/16 -j DROP\n",
        "-A INPUT -s 10.1.0.0/16 -j DROP\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\n",
    );
    let d = rule_diff(BASE, &new);
    let c = only_change(&d);
    assert_eq!(c.kind, ChangeKind::Moved);
    let (o, n) = (c.old.as_ref().unwrap(), c.new.as_ref().unwrap());
    assert_eq!(o.text, n.text);
    assert_ne!(o.index, n.index);
}

#[test]
fn a_policy_change_is_reported_with_both_policies() {
    let new = BASE.replace(":INPUT DROP", ":INPUT ACCEPT");
    let d = rule_diff(BASE, &new);
    assert_eq!(d.summary.policies_changed, 1);
    let c = &d.tables[0].chains[0];
    assert_eq!(c.name, "INPUT");
    assert_eq!(c.policy, Some(("DROP".into(), "ACCEPT".into())));
}

#[test]
fn a_renamed_user_chain_is_recognised_and_the_jump_into_it_is_unchanged() {
    let new = BASE.replace("SSH", "SSH-IN");
    let d = rule_diff(BASE, &new);
    assert_eq!(d.summary.chains_renamed, 1, "{:#?}", d.tables);
    assert_eq!(
        d.summary.rules_added + d.summary.rules_removed + d.summary.rules_changed,
        0
    );
}

#[test]
fn added_and_removed_chains_and_tables_list_their_rules() {
    let new = format!(
        "{}*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 2222 -j REDIRECT --to-ports 22\nCOMMIT\n",
        BASE.replace("-A INPUT -p tcp -m tcp --dport 22 -j SSH\n", "")
            .replace(":SSH - [0:0]\n", "")
            .replace("-A SSH -s 192.0.2.0/24 -j ACCEPT\n-A SSH -j DROP\n", "")
    );
    let d = rule_diff(BASE, &new);
    let s = &d.summary;
    assert_eq!(
        (s.tables_added, s.chains_removed, s.chains_added),
        (1, 1, 1)
    );
    assert_eq!((s.rules_removed, s.rules_added), (3, 1), "{:#?}", d.tables);
    let nat = d.tables.iter().find(|t| t.name == "nat").unwrap();
    assert_eq!(nat.status, Status::Added);
}

// The command line.

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").unwrap()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("iptviz-diff-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn cli_exit_codes_same_different_unreadable() {
    let dir = tmpdir("exit");
    let a = write(&dir, "a.rules", BASE);
    let b = write(
        &dir,
        "b.rules",
        &BASE.replace("--dport 80 -j", "--dport 8080 -j"),
    );
    let out = iptviz().args(["diff", &a, &a]).assert().code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("same: no differences in 8 rules"), "{text}");
    let out = iptviz().args(["diff", &a, &b]).assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("~ #4    -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT"),
        "{text}"
    );
    assert!(
        text.contains("=> #4  -A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT"),
        "{text}"
    );
    assert!(text.contains("different: 1 rule changed"), "{text}");
    let missing = dir.join("missing.rules").display().to_string();
    iptviz()
        .args(["diff", &a, &missing])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("missing.rules"));
    let bad = write(
        &dir,
        "bad.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j\nCOMMIT\n",
    );
    iptviz()
        .args(["diff", &a, &bad])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("bad.rules:3:"));
    iptviz()
        .args(["diff", "-", "-"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("only one side"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_reads_one_side_from_stdin_and_prints_json() {
    let dir = tmpdir("json");
    let a = write(&dir, "a.rules", BASE);
    let new = BASE.replace(":INPUT DROP", ":INPUT ACCEPT");
    let out = iptviz()
        .args(["diff", "--json", &a, "-"])
        .write_stdin(new)
        .assert()
        .code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["summary"]["policies_changed"], 1);
    assert_eq!(v["new"], "<stdin>");
    assert_eq!(v["tables"][0]["chains"][0]["policy"][1], "ACCEPT");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_counters_flag_reports_counter_changes() {
    let dir = tmpdir("ctr");
    let a = write(
        &dir,
        "a.rules",
        &BASE.replace("-A INPUT -i lo", "[5:300] -A INPUT -i lo"),
    );
    let b = write(
        &dir,
        "b.rules",
        &BASE.replace("-A INPUT -i lo", "[9:600] -A INPUT -i lo"),
    );
    iptviz().args(["diff", &a, &b]).assert().code(0);
    let out = iptviz()
        .args(["diff", "--counters", &a, &b])
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("c #1    [5:300] -> [9:600]"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_semantic_flag_still_diffs_and_says_no_packet_changes_fate() {
    let dir = tmpdir("sem");
    let a = write(&dir, "a.rules", BASE);
    iptviz()
        .args(["diff", "--semantic", &a, &a])
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "semantic: no packet changes fate",
        ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The docker sample with one rule changed, one added (into a new chain),
/// one removed, and a whole chain (with the jumps into it) removed.
fn docker_edited() -> String {
    let t = sample("docker-host.rules");
    let t = t.replace("--dport 22 -m comment", "--dport 2222 -m comment");
    let t = t.replace(
        "[0:0] -A DOCKER-USER -s 203.0.113.0/24 -m comment --comment \"blocked partner range\" -j DROP\n",
        "",
    );
    let t = t.replace(
        ":DOCKER-USER - [0:0]\n",
        ":DOCKER-USER - [0:0]\n:NEW-CHAIN - [0:0]\n",
    );
    let t = t.replace(
        "[0:0] -A DOCKER-USER -j RETURN\n",
        "[0:0] -A DOCKER-USER -j RETURN\n[0:0] -A NEW-CHAIN -j ACCEPT\n",
    );
    let t = t.replace(
        "[0:0] -A INPUT -j DROP\n",
        "[0:0] -A INPUT -j DROP\n[0:0] -A INPUT -s 198.51.100.0/24 -j NEW-CHAIN\n",
    );
    t.lines()
        .filter(|l| !l.contains("DOCKER-ISOLATION-STAGE-2"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn render_diff_marks_added_changed_and_removed_chains_and_rows() {
    let dir = tmpdir("render");
    let old = format!("{}/samples/docker-host.rules", env!("CARGO_MANIFEST_DIR"));
    let new = write(&dir, "new.rules", &docker_edited());
    let out = iptviz()
        .args([
            "render", "--rules", "-t", "filter", "-f", "json", "--diff", &old, &new,
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    let index = |id: &str| {
        nodes
            .iter()
            .position(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    };
    let mark = |i: usize| -> Option<String> {
        v["diff"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m[0] == i)
            .map(|m| m[1].as_str().unwrap().to_string())
    };
    assert_eq!(mark(index("filter/NEW-CHAIN")).as_deref(), Some("added"));
    assert_eq!(mark(index("filter/INPUT")).as_deref(), Some("changed"));
    assert_eq!(
        mark(index("filter/DOCKER-USER")).as_deref(),
        Some("changed")
    );
    assert_eq!(
        mark(index("filter/DOCKER-ISOLATION-STAGE-2")).as_deref(),
        Some("removed"),
        "a removed chain is drawn as a ghost"
    );
    assert_eq!(
        mark(index("filter/DOCKER")),
        None,
        "unchanged chains are plain"
    );
    // Rows: INPUT's third rule changed, its last added; DOCKER-USER's
    // removed rule is back as a struck-out row before RETURN.
    let rows = |i: usize| -> Vec<(u64, String)> {
        v["diff"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m[0] == i)
            .map(|m| (m[1].as_u64().unwrap(), m[2].as_str().unwrap().to_string()))
            .collect()
    };
    let input = index("filter/INPUT");
    assert_eq!(
        rows(input),
        vec![(2, "changed".to_string()), (6, "added".to_string())]
    );
    let user = index("filter/DOCKER-USER");
    assert_eq!(rows(user), vec![(0, "removed".to_string())]);
    let text = nodes[user]["rows"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("removed: -A DOCKER-USER -s 203.0.113.0/24"),
        "{text}"
    );
    assert_eq!(nodes[user]["rows"].as_array().unwrap().len(), 2);

    // The SVG draws them in the diff colours, the ghost dashed.
    let out = iptviz()
        .args(["render", "--rules", "-t", "filter", "--diff", &old, &new])
        .assert()
        .success();
    let svg = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for colour in ["#16a34a", "#ea580c", "#dc2626"] {
        assert!(svg.contains(colour), "{colour} missing");
    }
    assert!(svg.contains("line-through"));
    assert!(svg.contains("diff against"));
    let _ = std::fs::remove_dir_all(&dir);
}
