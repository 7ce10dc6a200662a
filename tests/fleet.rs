//! `iptviz fleet`: synthetic kube-proxy nodes with drift injected in a
//! known set; exactly that drift is reported, with the nodes named.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};

use assert_cmd::Command;
use iptviz::fleet::{FleetOptions, FleetReport, discover, fleet};
use regex::Regex;

/// The corpus kube-proxy dump grown to `services` services by the shared
/// kube-scale.py.
fn kube_base(services: usize) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("../shared/tools/kube-scale.py");
    let dump = common::corpus_dir().join("iptables/k8s-calico-kubeproxy-iptables-mode.rules");
    let out = Proc::new("python3")
        .arg(&script)
        .args(["--services", &services.to_string()])
        .stdin(std::fs::File::open(dump).unwrap())
        .stderr(Stdio::inherit())
        .output()
        .expect("python3 is needed to grow the kube-proxy dump (kube-scale.py)");
    assert!(out.status.success(), "kube-scale.py failed");
    String::from_utf8(out.stdout).unwrap()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("iptviz-fleet-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Inserts `lines` before the COMMIT of `table`.
fn before_commit(text: &str, table: &str, lines: &str) -> String {
    let start = text
        .find(&format!("*{table}\n"))
        .unwrap_or_else(|| panic!("no {table} table"));
    let commit = start + text[start..].find("\nCOMMIT").unwrap() + 1;
    format!("{}{lines}{}", &text[..commit], &text[commit..])
}

/// Every rule's counters set to something node-specific: fleet must not
/// care.
fn node_counters(text: &str, n: usize) -> String {
    let rule = Regex::new(r"(?m)^(?:\[\d+:\d+\] )?-A ").unwrap();
    let chain = Regex::new(r"(?m)^(:\S+ \S+) \[\d+:\d+\]").unwrap();
    let mut k = 0;
    let t = rule.replace_all(text, |_: &regex::Captures<'_>| {
        k += 1;
        format!("[{}:{}] -A ", n * 7 + k % 13, n * 900 + k)
    });
    chain
        .replace_all(&t, |c: &regex::Captures<'_>| {
            format!("{} [{n}:{}]", &c[1], n * 64)
        })
        .into_owned()
}

const STALE: [&str; 3] = ["node-03", "node-07", "node-11"];
const MISSING: &str = "node-15";
const EXTRA_DROP: [&str; 2] = ["node-05", "node-18"];
const STALE_CHAIN: &str = "KUBE-SVC-STALESERVICE0001";
const DROP_RULE: &str = "-A INPUT -s 203.0.113.66/32 -j DROP";

/// 20 nodes with the known drift; returns the directory and the name of
/// the chain removed on MISSING.
fn make_fleet(dir: &Path) -> String {
    let base = kube_base(40);
    let missing_chain = Regex::new(r"(?m)^:(KUBE-SVC-[A-Z0-9]{16}) ")
        .unwrap()
        .captures(&base)
        .unwrap()[1]
        .to_string();
    for n in 1..=20 {
        let name = format!("node-{n:02}");
        let mut text = base.clone();
        if STALE.contains(&name.as_str()) {
            text = text.replacen("*nat\n", &format!("*nat\n:{STALE_CHAIN} - [0:0]\n"), 1);
            text = before_commit(
                &text,
                "nat",
                &format!(
                    "-A KUBE-SERVICES -d 10.96.250.1/32 -p tcp -m comment --comment \"old/gone:http cluster IP\" -m tcp --dport 80 -j {STALE_CHAIN}\n\
                     -A {STALE_CHAIN} -m comment --comment \"old/gone:http -> 10.128.250.1:8080\" -j KUBE-MARK-MASQ\n"
                ),
            );
        }
        if name == MISSING {
            text = text
                .lines()
                .filter(|l| !l.contains(&missing_chain))
                .collect::<Vec<_>>()
                .join("\n");
            text.push('\n');
        }
        if EXTRA_DROP.contains(&name.as_str()) {
            text = before_commit(&text, "filter", &format!("{DROP_RULE}\n"));
        }
        std::fs::write(dir.join(format!("{name}.rules")), node_counters(&text, n)).unwrap();
    }
    missing_chain
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn check_known_drift(r: &FleetReport, missing_chain: &str) {
    assert_eq!(r.nodes.len(), 20);
    assert_eq!(r.groups.len(), 4, "{:#?}", r.groups);
    assert_eq!(r.groups[0].nodes.len(), 14);
    assert_eq!(r.drift.len(), 3, "{:#?}", r.drift);

    let stale = r
        .drift
        .iter()
        .find(|d| d.present_on == sorted(&STALE))
        .expect("the stale service is reported on its 3 nodes");
    assert_eq!(stale.chains, vec![format!("nat {STALE_CHAIN}")]);
    assert_eq!(stale.lines.len(), 3, "{:#?}", stale.lines);
    assert_eq!(stale.missing_on.len(), 17);

    let gone = r
        .drift
        .iter()
        .find(|d| d.missing_on == vec![MISSING.to_string()])
        .expect("the missing chain is reported on its node");
    assert!(
        gone.chains.contains(&format!("nat {missing_chain}")),
        "{:#?}",
        gone.chains
    );
    assert!(gone.lines.iter().all(|l| l.text.contains(missing_chain)));

    let drop = r
        .drift
        .iter()
        .find(|d| d.present_on == sorted(&EXTRA_DROP))
        .expect("the extra DROP is reported on its 2 nodes");
    assert_eq!(drop.lines.len(), 1);
    assert_eq!(drop.lines[0].text, DROP_RULE);
    assert_eq!(drop.lines[0].table, "filter");

    // A tenth of 20 nodes: groups of at most 2 stand out.
    assert_eq!(r.outliers, sorted(&["node-05", "node-15", "node-18"]));
    for n in &r.nodes {
        assert!(n.unreadable.is_none(), "{n:?}");
        assert!(n.rules > 400, "{n:?}");
    }
}

#[test]
fn fleet_reports_exactly_the_injected_drift_with_the_nodes_named() {
    let dir = tmpdir("known");
    let missing_chain = make_fleet(&dir);
    let nodes = discover(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(nodes.len(), 20);
    assert_eq!(nodes[0].name, "node-01");
    for workers in [1, 2] {
        let r = fleet(
            &nodes,
            &FleetOptions {
                workers,
                ..Default::default()
            },
        );
        check_known_drift(&r, &missing_chain);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fleet_cli_text_json_and_svg() {
    let dir = tmpdir("cli");
    let missing_chain = make_fleet(&dir);
    let svg = dir.join("overview.svg");
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["fleet", "--json", "--svg"])
        .arg(&svg)
        .arg(&dir)
        .assert()
        .code(1);
    let r: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(r["drift"].as_array().unwrap().len(), 3);
    assert_eq!(r["groups"].as_array().unwrap().len(), 4);
    assert_eq!(r["nodes"].as_array().unwrap().len(), 20);

    let picture = std::fs::read_to_string(&svg).unwrap();
    let mut cells = 0;
    for e in xml::reader::EventReader::from_str(&picture) {
        if let xml::reader::XmlEvent::StartElement { name, .. } = e.expect("well-formed SVG")
            && name.local_name == "title"
        {
            cells += 1;
        }
    }
    assert_eq!(cells, 20, "one cell (with its hover text) per node");
    assert!(
        picture.contains("group 4: 1 node"),
        "legend names the groups"
    );

    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .arg("fleet")
        .arg(&dir)
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("only on node-03, node-07, node-11 (3):"),
        "{text}"
    );
    assert!(
        text.contains(&format!("missing on {MISSING} (1):")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  chain nat {missing_chain}")),
        "{text}"
    );
    assert!(text.contains(&format!("filter  {DROP_RULE}")), "{text}");
    assert!(
        text.contains("outliers: node-05, node-15, node-18"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn identical_nodes_with_other_counters_are_one_group_and_exit_0() {
    let dir = tmpdir("same");
    let base = kube_base(5);
    for n in 1..=4 {
        std::fs::write(dir.join(format!("n{n}.rules")), node_counters(&base, n)).unwrap();
    }
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .arg("fleet")
        .arg(&dir)
        .assert()
        .code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("1 group of identical rules"), "{text}");
    assert!(text.contains("drift: none"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn endpoint_churn_is_drift_unless_endpoints_are_ignored() {
    let dir = tmpdir("churn");
    let base = kube_base(5);
    // One endpoint moved to another pod: its KUBE-SEP chain has a new name
    // and address, and the service chain jumps to the new one.
    let sep = Regex::new(r"(?m)^:(KUBE-SEP-[A-Z0-9]{16}) ")
        .unwrap()
        .captures(&base)
        .unwrap()[1]
        .to_string();
    let addr = Regex::new(&format!(r"-A {sep} -s (\S+)/32"))
        .unwrap()
        .captures(&base)
        .unwrap()[1]
        .to_string();
    let moved = base
        .replace(&sep, "KUBE-SEP-MOVEDENDPOINT0001")
        .replace(&addr, "10.128.99.99");
    std::fs::write(dir.join("a.rules"), &base).unwrap();
    std::fs::write(dir.join("b.rules"), &moved).unwrap();
    let nodes = discover(std::slice::from_ref(&dir)).unwrap();
    let strict = fleet(&nodes, &FleetOptions::default());
    assert_eq!(strict.groups.len(), 2);
    assert!(!strict.drift.is_empty());
    let lenient = fleet(
        &nodes,
        &FleetOptions {
            ignore_endpoints: true,
            ..Default::default()
        },
    );
    assert_eq!(lenient.groups.len(), 1, "{:#?}", lenient.drift);
    assert!(lenient.drift.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conntrack_file_beside_a_node_gives_its_fill() {
    let dir = tmpdir("ct");
    let sample = std::fs::read_to_string(format!(
        "{}/samples/docker-host.rules",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    std::fs::write(dir.join("edge-1.rules"), &sample).unwrap();
    std::fs::write(dir.join("edge-2.rules"), &sample).unwrap();
    let ct = common::corpus_dir().join("conntrack/proc-nf_conntrack-acct-home-router.txt");
    std::fs::copy(&ct, dir.join("edge-1.conntrack")).unwrap();
    std::fs::write(dir.join("edge-1.conntrack_max"), "1000\n").unwrap();
    let expected = match iptviz::conntrack::parse_bytes(&std::fs::read(&ct).unwrap(), "ct").unwrap()
    {
        iptviz::conntrack::Parsed::Entries(t) => t.entries.len() as u64,
        _ => panic!("expected entries"),
    };
    assert!(expected > 0);
    let nodes = discover(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(nodes.len(), 2, "conntrack files are not nodes: {nodes:?}");
    let r = fleet(&nodes, &FleetOptions::default());
    let fill = r.nodes[0].conntrack.as_ref().unwrap();
    assert_eq!(fill.entries, expected);
    assert_eq!(fill.max, Some(1000));
    let pct = fill.percent.unwrap();
    assert!((pct - expected as f64 / 10.0).abs() < 0.1, "{pct}");
    assert!(r.nodes[1].conntrack.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_nodes_are_named_and_nothing_readable_exits_2() {
    let dir = tmpdir("bad");
    std::fs::write(
        dir.join("ok.rules"),
        "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
    )
    .unwrap();
    std::fs::write(dir.join("junk.rules"), [0u8, 1, 2, 3]).unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .arg("fleet")
        .arg(&dir)
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("junk"), "{text}");
    assert!(text.contains("unreadable"), "{text}");
    Command::cargo_bin("iptviz")
        .unwrap()
        .arg("fleet")
        .arg(dir.join("junk.rules"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("binary"));
    Command::cargo_bin("iptviz")
        .unwrap()
        .arg("fleet")
        .arg(dir.join("nope"))
        .assert()
        .code(2);
    let _ = std::fs::remove_dir_all(&dir);
}
