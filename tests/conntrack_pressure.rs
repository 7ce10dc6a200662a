//! NAT port pressure, table fill offline, and recordings (`--record`,
//! `--replay`) without a kernel: generated tables and hand-made recordings.

use assert_cmd::Command;
use iptviz::conntrack::history::{self, CpuRow, Record, TupleSample};
use iptviz::conntrack::nat::NatRules;
use iptviz::conntrack::pressure::{PressureLevel, PressureOptions, RangeFrom};
use iptviz::conntrack::{self, Fill, Parsed, StatsFormat};
use iptviz::parse::{ParseOptions, parse_str};
use predicates::prelude::*;

/// Pods 10.244.1.x behind the node address 192.168.49.2, SNAT to a range.
const RULES: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -m comment --comment \"default/kubernetes:https\" -j DNAT --to-destination 192.168.49.10:6443
-A POSTROUTING -s 10.244.0.0/16 -p tcp -j SNAT --to-source 192.168.49.2:30000-30099
-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE
COMMIT
";

/// `n` TCP connections from pod `10.244.1.{pod}` to the API service VIP,
/// DNAT'd to the API server and SNAT'd to the node, ports from `first`.
fn api_conns(pod: u8, n: u16, first: u16) -> String {
    let mut s = String::new();
    for k in 0..n {
        let (sport, xport) = (40000 + k + pod as u16 * 1000, first + k);
        s.push_str(&format!(
            "ipv4 2 tcp 6 86399 ESTABLISHED src=10.244.1.{pod} dst=10.96.0.1 sport={sport} dport=443 \
             src=192.168.49.10 dst=192.168.49.2 sport=6443 dport={xport} [ASSURED] mark=0 zone=0 use=2\n"
        ));
    }
    s
}

/// UDP DNS flows through MASQUERADE (no ports named: the kernel default).
fn dns_conns(n: u16) -> String {
    let mut s = String::new();
    for k in 0..n {
        s.push_str(&format!(
            "ipv4 2 udp 17 25 src=10.244.2.9 dst=8.8.8.8 sport={} dport=53 \
             src=8.8.8.8 dst=192.168.49.2 sport=53 dport={} mark=0 zone=0 use=2\n",
            50000 + k,
            50000 + k
        ));
    }
    s
}

fn table(text: &str) -> conntrack::ConnTable {
    match conntrack::parse_bytes(text.as_bytes(), "t") {
        Ok(Parsed::Entries(t)) => t,
        other => panic!("{other:?}"),
    }
}

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").expect("binary built")
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iptviz-pressure-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn snat_range_of_the_rule_bounds_the_tuple() {
    // 85 of 100 ports: above 80%; one pod holds 60 of them.
    let text = format!(
        "{}{}{}",
        api_conns(7, 60, 30000),
        api_conns(8, 25, 30060),
        dns_conns(4)
    );
    let t = table(&text);
    let rs = parse_str(RULES, &ParseOptions::strict("rules")).unwrap();
    let nat = NatRules::from_ruleset(&rs.ruleset);
    let p = conntrack::pressure(
        &t.entries,
        Some(&nat),
        PressureOptions {
            top: 5,
            clients_per_tuple: 3,
            limit_per_dest: None,
        },
    );
    assert_eq!(p.tuples_total, 2);
    assert_eq!(p.translated_entries, 85 + 4);
    let api = &p.tuples[0];
    assert_eq!(api.label(), "tcp 192.168.49.2 -> 192.168.49.10:6443");
    assert_eq!(
        (api.ports, api.range, api.range_size),
        (85, (30000, 30099), 100)
    );
    assert_eq!(api.range_from, RangeFrom::Rule);
    assert_eq!(api.level, PressureLevel::Over80);
    assert_eq!(api.original_dst.as_deref(), Some("10.96.0.1:443"));
    let rule = api.rule.as_ref().expect("rule");
    assert_eq!(
        (rule.chain.as_str(), rule.index, rule.target.as_str()),
        ("POSTROUTING", 1, "SNAT")
    );
    assert_eq!(api.clients[0].client.to_string(), "10.244.1.7");
    assert_eq!(api.clients[0].ports, 60);
    assert_eq!(p.clients[0].client.to_string(), "10.244.1.7");
    let dns = &p.tuples[1];
    assert_eq!(dns.range, (1024, 65535));
    assert_eq!(dns.range_from, RangeFrom::KernelDefault);
    assert!(
        dns.range_why.contains("MASQUERADE rule POSTROUTING #2"),
        "{}",
        dns.range_why
    );
    assert!(
        dns.range_why.contains("kept when free"),
        "{}",
        dns.range_why
    );
    assert_eq!((p.over_80, p.over_50, p.full), (1, 0, 0));
}

#[test]
fn cli_pressure_marks_limit_and_offline_fill() {
    let ct = tmp("ct.txt");
    let rules = tmp("rules.txt");
    std::fs::write(&ct, format!("{}{}", api_conns(7, 60, 30000), dns_conns(4))).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    iptviz()
        .arg("conntrack")
        .arg(&ct)
        .arg("--rules")
        .arg(&rules)
        .args(["--limit-per-dest", "80", "--max", "100", "--buckets", "32"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "table fill:  64 of 100 (64.0%), 2.00 entries per bucket (32 buckets)",
        ))
        .stdout(predicate::str::contains("DNS:         4 udp entries to port 53"))
        .stdout(predicate::str::contains(
            "tcp 192.168.49.2 -> 192.168.49.10:6443               60 of   100 ports ( 60.0%), of the limit 80: 75.0%  >50%",
        ))
        .stdout(predicate::str::contains(
            "ports 30000-30099: SNAT rule POSTROUTING #1 (line 7) translates to ports 30000-30099",
        ))
        .stdout(predicate::str::contains("clients asked for 10.96.0.1:443 (DNAT)"))
        .stdout(predicate::str::contains("most used by 10.244.1.7 60"));
    // Without rules: the kernel default range, said so.
    let out = iptviz()
        .arg("conntrack")
        .arg(&ct)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["pressure"]["tuples"][0];
    assert_eq!(t["range_from"], "kernel-default");
    assert_eq!(t["range"], serde_json::json!([1024, 65535]));
    assert_eq!(t["ports"], 60);
    iptviz()
        .arg("conntrack")
        .arg(&ct)
        .args(["--limit-per-dest", "0"])
        .assert()
        .code(2);
}

fn record(time: f64, count: u64, failed: u64, drop: u64, top: u64) -> Record {
    Record {
        time,
        fill: Some(Fill {
            count,
            max: 10_000,
            buckets: Some(2_500),
        }),
        format: StatsFormat::ConntrackS,
        fields: vec![
            "found".into(),
            "insert_failed".into(),
            "drop".into(),
            "early_drop".into(),
        ],
        cpus: vec![
            CpuRow {
                cpu: 0,
                values: vec![Some(1), Some(failed), Some(drop), Some(0)],
            },
            CpuRow {
                cpu: 1,
                values: vec![Some(1), Some(0), Some(0), Some(0)],
            },
        ],
        top: vec![TupleSample {
            tuple: "udp 192.168.49.2 -> 8.8.8.8:53".into(),
            ports: top,
            range_size: 64512,
            percent: (top as f64 * 10000.0 / 64512.0).round() / 100.0,
            level: PressureLevel::Ok,
            rule: Some("MASQUERADE POSTROUTING #1, line 6".into()),
        }],
    }
}

fn recording() -> String {
    let recs = [
        record(1000.0, 4000, 0, 0, 100),
        record(1002.0, 4200, 10, 2, 140),
        record(1004.0, 4400, 30, 2, 180),
    ];
    recs.iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn recording_replays_to_the_same_ticks() {
    let text = recording();
    let back = history::read_recording(text.as_bytes(), "rec");
    assert!(back.problem.is_none());
    let t = history::ticks(&back.records);
    assert_eq!(t.len(), 2);
    assert_eq!(t[1].rate("insert_failed"), Some(10.0));
    assert_eq!(t[1].growth_per_second, Some(100.0));
    assert_eq!(t[1].seconds_to_full, Some(56.0));
    assert_eq!(t[1].per_bucket, Some(1.76));
    let path = tmp("rec.jsonl");
    std::fs::write(&path, &text).unwrap();
    iptviz()
        .args(["conntrack", "--replay"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("3 readings over 4 s"))
        .stdout(predicate::str::contains(
            "t+4.0     entries 4400 of 10000 (44.0%), 1.76 entries per bucket (2500 buckets), +100.0/s, full in about 56 s at this rate",
        ))
        .stdout(predicate::str::contains("insert_failed 10.00/s  drop 0.00/s  early_drop 0.00/s"))
        .stdout(predicate::str::contains(
            "most pressed NAT tuple: udp 192.168.49.2 -> 8.8.8.8:53 180 of 64512 ports (0.3%)",
        ));
    // JSON ticks, one per line, from stdin too.
    let out = iptviz()
        .args(["conntrack", "--replay", "-", "--json"])
        .write_stdin(text.clone())
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["growth_per_second"], 100.0);
}

#[test]
fn recording_cut_mid_line_is_read_up_to_that_line() {
    let text = recording();
    let cut = &text[..text.len() - 40];
    let path = tmp("cut.jsonl");
    std::fs::write(&path, cut).unwrap();
    let name = path.display().to_string();
    iptviz()
        .args(["conntrack", "--replay"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("2 readings over 2 s"))
        .stdout(predicate::str::contains("t+2.0"))
        .stderr(predicate::str::contains(format!("{name}:3:")))
        .stderr(predicate::str::contains(
            "the recording ends in the middle of a record (cut short while being written?); 2 record(s) before it were read",
        ))
        .stderr(predicate::str::contains("^"));
}

#[test]
fn recording_with_unknown_fields_names_the_line_and_field() {
    let text = recording().replacen("\"format\"", "\"colour\":\"red\",\"format\"", 1);
    let lines: Vec<&str> = text.lines().collect();
    // Only the second line has the unknown field.
    let text = format!(
        "{}\n{}\n{}\n",
        recording().lines().next().unwrap(),
        lines[0],
        lines[2]
    );
    let path = tmp("odd.jsonl");
    std::fs::write(&path, &text).unwrap();
    iptviz()
        .args(["conntrack", "--replay"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("1 readings"))
        .stderr(predicate::str::contains(":2:"))
        .stderr(predicate::str::contains("unknown field `colour`"));
    // Not a recording at all.
    iptviz()
        .args(["conntrack", "--replay", "-"])
        .write_stdin("ipv4 2 tcp 6 10 ESTABLISHED\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "<stdin>:1:1: error: not a recorded reading",
        ));
}

#[test]
fn insert_failed_is_tied_to_the_udp_nat_rules() {
    let ct = tmp("race-ct.txt");
    let rules = tmp("race-rules.txt");
    let a = tmp("race-a.txt");
    let b = tmp("race-b.txt");
    std::fs::write(&ct, dns_conns(3)).unwrap();
    std::fs::write(&rules, RULES).unwrap();
    std::fs::write(&a, "cpu=0 found=1 insert_failed=10 drop=0\n").unwrap();
    std::fs::write(&b, "cpu=0 found=1 insert_failed=70 drop=0\n").unwrap();
    iptviz()
        .arg("conntrack")
        .arg(&ct)
        .arg("--rules")
        .arg(&rules)
        .arg("--stats")
        .arg(&a)
        .arg("--stats")
        .arg(&b)
        .args(["--interval", "30"])
        .assert()
        .success()
        .stdout(predicate::str::contains("insert_failed 70, 2.00/s now"))
        .stdout(predicate::str::contains(
            "nat POSTROUTING #2 (line 8) MASQUERADE  (without --random-fully)",
        ))
        // The SNAT rule is tcp only: not listed.
        .stdout(predicate::str::contains("POSTROUTING #1").not())
        .stdout(predicate::str::contains(
            "udp 192.168.49.2 -> 8.8.8.8:53 (3 ports in use)",
        ))
        .stdout(predicate::str::contains("hints to check, not certainties"))
        .stdout(predicate::str::contains(
            "--random-fully on the SNAT/MASQUERADE rule",
        ));
}
