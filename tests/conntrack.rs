//! Conntrack parsing over the shared corpus, bad input, NAT links, CLI.

use std::path::PathBuf;

use assert_cmd::Command;
use iptviz::conntrack::{
    self, ConnTable, ConntrackError, Flags, Format, L3, Parsed, State, Stats, StatsFormat,
};
use iptviz::parse::{ParseOptions, parse_str};
use predicates::prelude::*;
use proptest::prelude::*;

fn corpus(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/conntrack");
    assert!(
        dir.is_dir(),
        "the conntrack corpus is missing: expected {} (the shared corpus next to the repository)",
        dir.display()
    );
    dir.join(name)
}

fn read(name: &str) -> Vec<u8> {
    let p = corpus(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn entries(text: &[u8]) -> ConnTable {
    match conntrack::parse_bytes(text, "t") {
        Ok(Parsed::Entries(t)) => t,
        other => panic!("expected entries, got {other:?}"),
    }
}

fn stats(text: &[u8]) -> Stats {
    match conntrack::parse_bytes(text, "t") {
        Ok(Parsed::Stats(s)) => s,
        other => panic!("expected stats, got {other:?}"),
    }
}

#[test]
fn proc_table_with_accounting() {
    let text = read("proc-nf_conntrack-acct-home-router.txt");
    assert_eq!(conntrack::detect(&text), Format::ProcEntries);
    let t = entries(&text);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!(t.entries.len(), 112);
    let first = &t.entries[0];
    assert_eq!(first.l3, L3::Ipv4);
    assert_eq!(first.proto_name(), "udp");
    assert_eq!(first.timeout, 138);
    assert_eq!(first.orig.dport, 53);
    assert_eq!(first.orig_counters.packets, 2);
    assert_eq!(first.reply_counters.bytes, 1628);
    assert!(first.has(Flags::ASSURED) && first.has(Flags::COUNTERS) && first.has(Flags::ZONE));
    assert_eq!(first.use_count, 2);
    let s = conntrack::summarize(&t.entries, 5);
    assert_eq!(s.total, 112);
    assert_eq!(
        s.unreplied,
        t.entries.iter().filter(|e| e.unreplied()).count() as u64
    );
    assert!(s.unreplied > 0);
    // The router masquerades its LAN: replies go to its public address.
    let masq = t
        .entries
        .iter()
        .find(|e| e.orig.src.to_string() == "172.25.9.60")
        .expect("a LAN entry");
    assert!(masq.nat().snat && !masq.nat().dnat);
}

#[test]
fn conntrack_list_with_trailer() {
    let mut text = read("conntrack-L-scanport.txt");
    assert_eq!(conntrack::detect(&text), Format::ConntrackList);
    let t = entries(&text);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!(t.entries.len(), 27);
    assert_eq!(t.entries[0].state, State::from_name("TIME_WAIT").unwrap());
    text.extend_from_slice(
        b"\nconntrack v1.4.7 (conntrack-tools): 27 flow entries have been shown.\n",
    );
    let t = entries(&text);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!(t.trailer_count, Some(27));
}

#[test]
fn conntrack_s_k8s_node() {
    let text = read("conntrack-S-k8s-node.txt");
    assert_eq!(conntrack::detect(&text), Format::ConntrackStats);
    let s = stats(&text);
    assert!(s.problems.is_empty(), "{:#?}", s.problems);
    assert_eq!(s.format, StatsFormat::ConntrackS);
    assert_eq!(s.cpus.len(), 4);
    assert_eq!(s.total("invalid"), Some(3856 + 3647 + 71264 + 70168));
    assert_eq!(s.worst_cpu("search_restart"), Some((3, 2320376)));
    let h = conntrack::health(&s, None);
    let names: Vec<&str> = h.iter().take(5).map(|i| i.counter.as_str()).collect();
    assert_eq!(
        names,
        [
            "insert_failed",
            "drop",
            "early_drop",
            "invalid",
            "search_restart"
        ]
    );
    assert!(
        h.iter()
            .all(|i| !i.highlighted || !i.explanation.is_empty())
    );
}

#[test]
fn proc_stat_many_cpus() {
    let text = read("proc-stat-nf_conntrack-many-cpus.txt");
    assert_eq!(conntrack::detect(&text), Format::ProcStats);
    let s = stats(&text);
    assert!(s.problems.is_empty(), "{:#?}", s.problems);
    assert_eq!(s.format, StatsFormat::Proc);
    assert_eq!(s.cpus.len(), 16);
    assert_eq!(s.fields[0], "entries");
    assert_eq!(s.total("entries"), Some(2));
    assert!(s.total("found").unwrap() > 0);
}

#[test]
fn xml_events_are_refused_plainly() {
    let text = read("conntrack-E-xml-events.xml");
    assert_eq!(conntrack::detect(&text), Format::Xml);
    let e = conntrack::parse_bytes(&text, "ev.xml").unwrap_err();
    assert!(matches!(e, ConntrackError::Xml { .. }));
    assert!(e.to_string().contains("-o xml"));
}

#[test]
fn every_protocol_and_optional_field() {
    let text = "\
ipv6     10 tcp      6 300 ESTABLISHED src=2001:db8::1 dst=2001:db8::2 sport=5000 dport=443 src=2001:db8::2 dst=2001:db8::1 sport=443 dport=5000 [ASSURED] mark=0 secctx=system_u:object_r:unlabeled_t:s0 zone=0 use=2
ipv4     2 sctp     132 210 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=3868 dport=3868 src=10.0.0.2 dst=10.0.0.1 sport=3868 dport=3868 [ASSURED] mark=0 use=1
ipv6     10 icmpv6   58 29 src=fe80::1 dst=fe80::2 type=128 code=0 id=7 src=fe80::2 dst=fe80::1 type=129 code=0 id=7 mark=0 use=1
ipv4     2 unknown  2 599 src=10.0.0.1 dst=224.0.0.1 [UNREPLIED] src=224.0.0.1 dst=10.0.0.1 mark=0 use=1
ipv4     2 udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [OFFLOAD] mark=7 zone=3 use=1
";
    let t = entries(text.as_bytes());
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    let p: Vec<&str> = t.entries.iter().map(|e| e.proto_name()).collect();
    assert_eq!(p, ["tcp", "sctp", "icmpv6", "unknown", "udp"]);
    assert_eq!(
        t.string(t.entries[0].secctx),
        "system_u:object_r:unlabeled_t:s0"
    );
    assert_eq!(t.entries[0].l3, L3::Ipv6);
    assert_eq!(t.entries[2].orig.dport >> 8, 128);
    assert_eq!(t.entries[3].proto, 2);
    assert!(t.entries[3].unreplied());
    let last = &t.entries[4];
    assert!(last.has(Flags::OFFLOAD) && last.unreplied());
    assert_eq!((last.mark, last.zone), (7, 3));
}

#[test]
fn event_lines_and_extended_list() {
    let text = "    [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=4000 dport=80 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=4000
 [DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=4000 dport=53 src=10.0.0.2 dst=10.0.0.1 sport=53 dport=4000
ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=4001 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=4001 [ASSURED] mark=0 use=1 id=3735928559
";
    let t = entries(text.as_bytes());
    // A DESTROY event has no timeout left; it is read and marked as ended.
    assert_eq!(t.entries.len(), 3, "{:#?}", t.problems);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert!(!t.entries[0].has(Flags::DESTROYED));
    let gone = &t.entries[1];
    assert!(gone.has(Flags::DESTROYED));
    assert_eq!((gone.timeout, gone.proto, gone.orig.dport), (0, 17, 53));
    assert_eq!(t.entries[2].id, 3735928559);
    let s = iptviz::conntrack::summary::summarize(&t.entries, 3);
    assert_eq!((s.total, s.destroyed), (3, 1));
    // Without the event prefix, a missing timeout is still an error.
    let bare = "udp      17 src=10.0.0.1 dst=10.0.0.2 sport=4000 dport=53 src=10.0.0.2 dst=10.0.0.1 sport=53 dport=4000\n";
    let t = entries(bare.as_bytes());
    assert!(t.entries.is_empty());
    assert_eq!(t.problems.len(), 1);
}

/// Bad lines: each reported with its line and column, the rest kept.
#[test]
fn bad_lines_have_line_and_column() {
    let good = "ipv4 2 tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0 use=1";
    let text = format!(
        "{good}\n\
         ipv4 2 tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 spo\n\
         ipv4 2 tcp 6 10 ESTABLISHED src=1.1.1.300 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1\n\
         ipv4 2 tcp 6 ten ESTABLISHED\n\
         \n\
         ipv4 2 udp 17 10 src=1.1.1.1 dst=2.2.2.2 sport=99999 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1\n\
         ipv4 2 tcp\n\
         ipv4 2 udp 17 10 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 garbage src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1\n\
         {good}\n"
    );
    let t = entries(text.as_bytes());
    assert_eq!(t.entries.len(), 2);
    assert_eq!(t.entries[1].line, 9);
    let at: Vec<(u32, u32)> = t.problems.iter().map(|p| (p.line, p.column)).collect();
    assert_eq!(
        at,
        [(2, 93), (3, 33), (4, 14), (6, 48), (7, 11), (8, 58)],
        "{:#?}",
        t.problems
    );
    assert!(
        t.problems[0].message.contains("key=value"),
        "{}",
        t.problems[0].message
    );
    assert!(
        t.problems[4].message.contains("truncated"),
        "{}",
        t.problems[4].message
    );
    assert!(t.problems[1].message.contains("IP address"));
    assert!(t.problems[2].message.contains("timeout"));
    assert!(t.problems[3].message.contains("port"));
    let shown = t.problems[1].render("ct.txt");
    assert!(
        shown.starts_with("ct.txt:3:33: error: src: expected an IP address"),
        "{shown}"
    );
}

#[test]
fn binary_and_empty_inputs_are_errors_not_panics() {
    let bin: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert!(matches!(
        conntrack::parse_bytes(&bin, "b"),
        Err(ConntrackError::Binary { .. })
    ));
    assert!(matches!(
        conntrack::parse_bytes(b"  \n\n", "e"),
        Err(ConntrackError::Empty { .. })
    ));
    assert!(matches!(
        conntrack::parse_bytes(b"hello world\n", "u"),
        Err(ConntrackError::Unknown { .. })
    ));
    // Invalid UTF-8 inside an otherwise good file: one bad line.
    let mut text = b"ipv4 2 udp 17 10 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1\n".to_vec();
    text.extend_from_slice(b"ipv4 2 udp 17 10 src=\xff\xfe dst=2.2.2.2\n");
    let t = entries(&text);
    assert_eq!(
        (t.entries.len(), t.problems.len(), t.problems[0].line),
        (1, 1, 2)
    );
}

#[test]
fn truncated_corpus_never_panics_and_reports_the_cut_line() {
    let text = read("proc-nf_conntrack-acct-home-router.txt");
    for cut in (1..text.len()).step_by(97) {
        if let Ok(Parsed::Entries(t)) = conntrack::parse_bytes(&text[..cut], "cut") {
            let lines = text[..cut].iter().filter(|&&b| b == b'\n').count();
            assert!(t.entries.len() >= lines.saturating_sub(1).min(112));
            for p in &t.problems {
                assert_eq!(p.line as usize, lines + 1, "only the cut line is bad");
            }
        }
    }
}

proptest! {
    #[test]
    fn random_lines_never_panic(s in "\\PC{0,200}") {
        let _ = conntrack::parse_bytes(s.as_bytes(), "p");
        let _ = conntrack::parse_entries(s.as_bytes(), "p");
        let _ = conntrack::parse_stats(s.as_bytes(), "p");
    }

    #[test]
    fn mutated_entries_never_panic(cut in 0usize..230, byte in any::<u8>(), at in 0usize..230) {
        let mut line = b"ipv4     2 udp      17 138 src=42.191.180.28 dst=8.8.8.8 sport=12344 dport=53 packets=2 bytes=136 src=8.8.8.8 dst=42.191.180.28 sport=53 dport=12344 packets=2 bytes=1628 [ASSURED] mark=0 zone=0 use=2\n".to_vec();
        if at < line.len() { line[at] = byte; }
        line.truncate(cut.min(line.len()));
        let t = conntrack::parse_entries(&line, "m");
        // A mutated byte may split the line in two (a newline), never more.
        let lines = line.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
        prop_assert!(t.entries.len() + t.problems.len() <= lines.max(1));
    }

    #[test]
    fn stats_rows_never_panic(words in proptest::collection::vec("[0-9a-z=_]{0,12}", 0..20)) {
        let text = format!("entries found\n{}\ncpu=0 {}\n", words.join(" "), words.join(" "));
        let _ = conntrack::parse_stats(text.as_bytes(), "s");
    }
}

const KUBE_RULES: &str = "*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
:KUBE-POSTROUTING - [0:0]
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment \"kube-system/kube-dns:dns cluster IP\" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment \"kube-system/kube-dns:dns -> 10.244.0.2:53\" -m statistic --mode random --probability 0.5 -j KUBE-SEP-A
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment \"kube-system/kube-dns:dns -> 10.244.0.3:53\" -j KUBE-SEP-B
-A KUBE-SEP-A -p udp -m comment --comment \"kube-system/kube-dns:dns\" -m udp -j DNAT --to-destination 10.244.0.2:53
-A KUBE-SEP-B -p udp -m comment --comment \"kube-system/kube-dns:dns\" -m udp -j DNAT --to-destination 10.244.0.3:53
-A KUBE-POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE --random-fully
COMMIT
";

#[test]
fn nat_entries_link_to_kube_proxy_rules() {
    let ct = "\
ipv4 2 udp 17 20 src=10.244.1.7 dst=10.96.0.10 sport=41000 dport=53 src=10.244.0.3 dst=10.244.1.7 sport=53 dport=41000 mark=0 use=1
ipv4 2 tcp 6 100 ESTABLISHED src=10.244.1.7 dst=93.184.216.34 sport=42000 dport=443 src=93.184.216.34 dst=192.0.2.10 sport=443 dport=42000 [ASSURED] mark=0 use=1
ipv4 2 tcp 6 100 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1
";
    let t = entries(ct.as_bytes());
    let rules = parse_str(KUBE_RULES, &ParseOptions::lenient("nat.rules")).unwrap();
    assert!(rules.problems.is_empty(), "{:?}", rules.problems);
    let nat = conntrack::nat::NatRules::from_ruleset(&rules.ruleset);
    assert_eq!(nat.rules.len(), 3);
    let links = conntrack::link_nat(t.entries.iter().enumerate(), Some(&nat));
    assert_eq!(links.len(), 2);
    let dns = &links[0];
    assert_eq!(
        dns.arrow(),
        "udp 10.244.1.7:41000 -> 10.96.0.10:53 => 10.244.0.3:53"
    );
    let r = dns.dnat_rule.as_ref().expect("linked to a DNAT rule");
    assert_eq!((r.chain.as_str(), r.index, r.line), ("KUBE-SEP-B", 1, 17));
    assert_eq!(r.service.as_deref(), Some("kube-system/kube-dns:dns"));
    assert!(dns.snat_rule.is_none());
    let out = &links[1];
    assert!(out.kind.snat && !out.kind.dnat);
    assert_eq!(
        out.snat_rule.as_ref().map(|r| r.target.as_str()),
        Some("MASQUERADE")
    );
}

#[test]
fn filters_select_entries() {
    let t = entries(&read("proc-nf_conntrack-acct-home-router.txt"));
    let count = |f: conntrack::Filter| t.entries.iter().filter(|e| f.matches(e)).count();
    let all = count(conntrack::Filter::default());
    assert_eq!(all, 112);
    let udp = count(conntrack::Filter {
        proto: Some(17),
        ..Default::default()
    });
    assert_eq!(udp, 80);
    let dns_to_router = count(conntrack::Filter {
        dst: Some(conntrack::filter::parse_net("192.168.1.1").unwrap()),
        port: Some(53),
        ..Default::default()
    });
    assert!(dns_to_router > 0 && dns_to_router < udp);
    let unreplied = count(conntrack::Filter {
        unreplied_only: true,
        ..Default::default()
    });
    assert_eq!(
        unreplied,
        t.entries.iter().filter(|e| e.unreplied()).count()
    );
    let est = count(conntrack::Filter {
        state: conntrack::State::from_name("established"),
        nat_only: true,
        ..Default::default()
    });
    assert!(est > 0);
}

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").expect("binary built")
}

#[test]
fn cli_summary_text_and_json() {
    iptviz()
        .args(["conntrack", "--top", "3"])
        .arg(corpus("proc-nf_conntrack-acct-home-router.txt"))
        .assert()
        .success()
        .stdout(predicate::str::contains("112 entries"))
        .stdout(predicate::str::contains("udp/53"))
        .stdout(predicate::str::contains("NAT: 51 entries"));
    let out = iptviz()
        .args(["conntrack", "--json", "--proto", "udp", "--port", "53"])
        .arg(corpus("proc-nf_conntrack-acct-home-router.txt"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["by_proto"][0]["key"], "udp");
    assert!(v["summary"]["total"].as_u64().unwrap() < 80);
}

#[test]
fn cli_nat_with_rules_and_stats_rates() {
    let dir = std::env::temp_dir().join(format!("iptviz-ct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("nat.rules");
    std::fs::write(&rules, KUBE_RULES).unwrap();
    let ct = dir.join("ct.txt");
    std::fs::write(&ct, "udp 17 20 src=10.244.1.7 dst=10.96.0.10 sport=41000 dport=53 src=10.244.0.2 dst=10.244.1.7 sport=53 dport=41000 mark=0 use=1\n").unwrap();
    let a = dir.join("a.txt");
    let b = dir.join("b.txt");
    std::fs::write(&a, "cpu=0 found=1 insert_failed=10 drop=0\n").unwrap();
    std::fs::write(&b, "cpu=0 found=1 insert_failed=70 drop=0\n").unwrap();
    iptviz()
        .arg("conntrack")
        .arg(&ct)
        .arg("--rules")
        .arg(&rules)
        .args(["--stats"])
        .arg(&a)
        .arg("--stats")
        .arg(&b)
        .args(["--interval", "30"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "udp 10.244.1.7:41000 -> 10.96.0.10:53 => 10.244.0.2:53",
        ))
        .stdout(predicate::str::contains(
            "KUBE-SEP-A rule 1 (line 16): DNAT  service kube-system/kube-dns:dns",
        ))
        .stdout(predicate::str::contains("!! insert_failed"))
        .stdout(predicate::str::contains("2.00/s"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_rules_from_stdin_and_destroy_events() {
    let dir = std::env::temp_dir().join(format!("iptviz-ct-stdin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ct = dir.join("events.txt");
    std::fs::write(
        &ct,
        "    [NEW] udp      17 30 src=10.244.1.7 dst=10.96.0.10 sport=41000 dport=53 [UNREPLIED] src=10.244.0.2 dst=10.244.1.7 sport=53 dport=41000\n \
         [DESTROY] udp      17 src=10.244.1.8 dst=10.96.0.10 sport=41001 dport=53 src=10.244.0.2 dst=10.244.1.8 sport=53 dport=41001\n",
    )
    .unwrap();
    iptviz()
        .arg("conntrack")
        .arg(&ct)
        .args(["--rules", "-"])
        .write_stdin(KUBE_RULES)
        .assert()
        .success()
        .stdout(predicate::str::contains("2 entries"))
        .stdout(predicate::str::contains("ended:       1"))
        .stdout(predicate::str::contains(
            "KUBE-SEP-A rule 1 (line 16): DNAT  service kube-system/kube-dns:dns",
        ));
    // Both from stdin cannot work: said plainly, exit 2.
    iptviz()
        .args(["conntrack", "-", "--rules", "-"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot both be read from stdin"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_bad_input_exit_codes() {
    iptviz()
        .args(["conntrack", "-"])
        .write_stdin("ipv4 2 tcp 6 10 ESTABLISHED src=1.1.1.1\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("<stdin>:1:"));
    iptviz()
        .args(["conntrack", "-"])
        .write_stdin(vec![0u8, 1, 2, 3, 0, 0])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("binary"));
    iptviz()
        .args(["conntrack", "/nonexistent/ct.txt"])
        .assert()
        .code(2);
    iptviz().args(["conntrack"]).assert().code(2);
}
