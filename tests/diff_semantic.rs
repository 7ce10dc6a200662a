//! The semantic diff checked against the tracer: refactorings (the same
//! dump, counters zeroed, non-overlapping rules swapped, kube-proxy chains
//! re-hashed) change no packet's fate; single-rule edits of corpus dumps
//! (a rule deleted, one inserted, a port changed, two adjacent rules with
//! different targets swapped) report boxes whose example packets the
//! tracer sends to the two reported verdicts, and random packets outside
//! every box get the same verdict from the tracer on both sides.

mod common;

use iptviz::diff::semantic::{SemanticDiff, SemanticOptions, semantic_diff, semantic_diff_with};
use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::{CtState, Direction, Packet, TraceOptions, Tracer, Verdict};

fn parse(text: &str, name: &str) -> Option<Ruleset> {
    let p = parse_str(text, &ParseOptions::lenient(name)).ok()?;
    (p.error_count() == 0).then_some(p.ruleset)
}

/// Corpus dumps that parse without errors, with their text.
fn corpus() -> Vec<(String, String)> {
    common::corpus_files("iptables", "rules")
        .into_iter()
        .filter_map(|p| {
            let text = String::from_utf8_lossy(&std::fs::read(&p).ok()?).into_owned();
            let name = p.file_name()?.to_string_lossy().into_owned();
            parse(&text, &name)?;
            Some((name, text))
        })
        .collect()
}

fn sem(a: &Ruleset, b: &Ruleset, whole: bool) -> SemanticDiff {
    semantic_diff_with(a, b, &SemanticOptions { whole }).expect("same family")
}

fn assert_same(d: &SemanticDiff, what: &str) {
    assert!(
        d.skipped.is_empty(),
        "{what}: not compared: {:?}",
        d.skipped
    );
    assert!(
        d.same,
        "{what}: packets change fate: {}",
        serde_json::to_string_pretty(&d.paths).unwrap()
    );
}

/// Whether a test also walks every packet of a dump (not only the region
/// the rule diff points at): up to 1000 rules, except the dump whose whole
/// walk takes over a minute (hundreds of rules on crossing address ranges
/// cut it into millions of boxes); its region walks are checked.
fn whole_ok(name: &str, rs: &Ruleset) -> bool {
    rs.rule_count() <= 1000 && name != "medium-company-mainfw-security.rules"
}

#[test]
fn every_corpus_dump_against_itself_changes_no_fate() {
    let mut n = 0;
    for (name, text) in corpus() {
        let rs = parse(&text, &name).unwrap();
        assert_same(&sem(&rs, &rs, false), &name);
        if whole_ok(&name, &rs) {
            assert_same(&sem(&rs, &rs, true), &format!("{name} (whole)"));
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} dumps walked whole");
}

fn zero_counters(text: &str) -> String {
    let re = regex::Regex::new(r"\[\d+:\d+\]").unwrap();
    re.replace_all(text, "[0:0]").into_owned()
}

#[test]
fn counters_zeroed_change_no_fate() {
    let mut changed = 0;
    for (name, text) in corpus() {
        let z = zero_counters(&text);
        if z != text {
            changed += 1;
        }
        let (a, b) = (parse(&text, &name).unwrap(), parse(&z, &name).unwrap());
        assert_same(&sem(&a, &b, false), &name);
        if whole_ok(&name, &a) {
            assert_same(&sem(&a, &b, true), &format!("{name} (whole)"));
        }
    }
    assert!(changed >= 3, "only {changed} dumps had counters");
}

/// The protocol a rule names with a plain `-p X` (no `!`).
fn plain_proto(line: &str) -> Option<&str> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let i = w.iter().position(|x| *x == "-p" || *x == "--protocol")?;
    if i > 0 && w[i - 1] == "!" {
        return None;
    }
    w.get(i + 1).copied().filter(|p| *p != "!" && *p != "all")
}

/// Swaps the first pair of adjacent rules of one chain that name different
/// protocols (so no packet matches both).
fn swap_disjoint(text: &str) -> Option<String> {
    let mut lines: Vec<&str> = text.lines().collect();
    for i in 0..lines.len().saturating_sub(1) {
        let (a, b) = (lines[i], lines[i + 1]);
        fn chain(l: &str) -> Option<&str> {
            l.strip_prefix("-A ").and_then(|r| r.split(' ').next())
        }
        if let (Some(ca), Some(cb)) = (chain(a), chain(b))
            && ca == cb
            && let (Some(pa), Some(pb)) = (plain_proto(a), plain_proto(b))
            && pa != pb
        {
            lines.swap(i, i + 1);
            return Some(lines.join("\n") + "\n");
        }
    }
    None
}

#[test]
fn non_overlapping_rules_swapped_change_no_fate() {
    let mut n = 0;
    for (name, text) in corpus() {
        let Some(t2) = swap_disjoint(&text) else {
            continue;
        };
        let (a, b) = (parse(&text, &name).unwrap(), parse(&t2, &name).unwrap());
        if !whole_ok(&name, &a) {
            continue;
        }
        let d = sem(&a, &b, false);
        assert_same(&d, &format!("{name} swapped"));
        if whole_ok(&name, &a) {
            assert_same(&sem(&a, &b, true), &format!("{name} swapped (whole)"));
        }
        n += 1;
    }
    assert!(n >= 5, "only {n} dumps had a pair to swap");
}

/// Every kube-proxy hash name (`KUBE-SVC-...`, `KUBE-SEP-...` ...) replaced
/// by another one of the same form.
fn rehash(text: &str) -> String {
    let re = regex::Regex::new(r"\b(KUBE-(?:SVC|SEP|FW|XLB|EXT|SVL)-)([A-Z0-9]{16})\b").unwrap();
    re.replace_all(text, |c: &regex::Captures| {
        let h: String = c[2].chars().rev().collect();
        format!("{}{h}", &c[1])
    })
    .into_owned()
}

#[test]
fn kube_dump_rehashed_changes_no_fate() {
    let p = common::corpus_dir().join("iptables/k8s-calico-kubeproxy-iptables-mode.rules");
    let text = std::fs::read_to_string(p).unwrap();
    let t2 = rehash(&text);
    assert_ne!(text, t2);
    // The dump names protocol `ipv4`, which this machine's /etc/protocols
    // may lack: its rules are read all the same.
    let any = |t: &str| parse_str(t, &ParseOptions::lenient("k8s")).unwrap().ruleset;
    let (a, b) = (any(&text), any(&t2));
    assert!(a.rule_count() > 100);
    assert_same(&sem(&a, &b, false), "rehashed");
    assert_same(&sem(&a, &b, true), "rehashed (whole)");
    // And one service's endpoint changed on top is seen, in the nat table.
    let t3 = t2.replacen("--to-destination 10.", "--to-destination 11.", 1);
    let c = any(&t3);
    let d = sem(&a, &c, false);
    assert!(!d.same);
    assert!(d.paths.iter().all(|p| p.table == "nat"), "{:?}", d.compared);
    for p in &d.paths {
        for b in &p.boxes {
            assert!(
                b.old.outcome.starts_with("DNAT 10.") && b.new.outcome.starts_with("DNAT 11."),
                "{} {}",
                b.old.outcome,
                b.new.outcome
            );
        }
    }
}

// ---- single-rule edits, checked with the tracer ----

fn filter_only(rs: &Ruleset) -> Ruleset {
    let mut r = rs.clone();
    r.tables.retain(|t| t.name == "filter");
    r
}

/// Indices of the `-A` lines of the filter table's built-in chains.
fn filter_rule_lines(lines: &[&str]) -> Vec<usize> {
    let mut in_filter = false;
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with('*') {
            in_filter = l.trim() == "*filter";
        }
        let l = l.trim_start_matches(|c| c != '-' && c != '*' && c != ':');
        if in_filter && l.starts_with("-A ") {
            out.push(i);
        }
    }
    out
}

fn target(l: &str) -> &str {
    l.split_whitespace().last().unwrap_or("")
}

/// The edits of one dump: (what, new text).
fn edits(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let fr = filter_rule_lines(&lines);
    if fr.len() < 2 {
        return Vec::new();
    }
    let join = |v: Vec<&str>| v.join("\n") + "\n";
    let mut out = Vec::new();
    // Delete the middle rule.
    let k = fr[fr.len() / 2];
    let mut v = lines.clone();
    v.remove(k);
    out.push((format!("delete line {}", k + 1), join(v)));
    // Insert a rule before the first filter rule, in its chain.
    let k = fr[0];
    let chain = lines[k]
        .split_whitespace()
        .skip_while(|w| *w != "-A")
        .nth(1)
        .unwrap()
        .to_string();
    let ins = format!("-A {chain} -s 10.1.0.0/16 -p tcp -m tcp --dport 8080 -j REJECT");
    let mut v = lines.clone();
    v.insert(k, &ins);
    out.push((format!("insert before line {}", k + 1), join(v)));
    // Change a port.
    let re = regex::Regex::new(r"--dport (\d+)\b").unwrap();
    if let Some(&k) = fr.iter().find(|&&i| re.is_match(lines[i])) {
        let changed = re
            .replace(lines[k], |c: &regex::Captures| {
                format!("--dport {}", c[1].parse::<u32>().unwrap() % 65535 + 1)
            })
            .into_owned();
        let mut v = lines.clone();
        v[k] = &changed;
        out.push((format!("port changed on line {}", k + 1), join(v.clone())));
    }
    // Swap two adjacent rules of one chain with different targets.
    for w in fr.windows(2) {
        let (a, b) = (lines[w[0]], lines[w[1]]);
        fn chain(l: &str) -> Option<&str> {
            l.split_whitespace().skip_while(|w| *w != "-A").nth(1)
        }
        if w[1] == w[0] + 1 && chain(a) == chain(b) && target(a) != target(b) {
            let mut v = lines.clone();
            v.swap(w[0], w[1]);
            out.push((format!("swap lines {} and {}", w[0] + 1, w[1] + 1), join(v)));
            break;
        }
    }
    out
}

fn direction(chain: &str) -> Option<Direction> {
    match chain {
        "INPUT" => Some(Direction::In),
        "FORWARD" => Some(Direction::Forward),
        "OUTPUT" => Some(Direction::Out),
        _ => None,
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Accept => "ACCEPT",
        Verdict::Drop => "DROP",
        Verdict::Reject => "REJECT",
        Verdict::Queue => "QUEUE",
    }
}

/// The filter verdict of a packet in one chain, or `None` when the tracer
/// did not reach the chain or stopped.
fn verdict(t: &Tracer<'_>, p: &Packet, chain: &str) -> Option<&'static str> {
    let d = direction(chain)?;
    let opts = TraceOptions {
        direction: Some(d),
        ..Default::default()
    };
    let tr = t.trace(p, &opts);
    if tr.stopped.is_some() || !tr.hooks.iter().any(|h| h.chain() == chain) {
        return None;
    }
    Some(verdict_name(tr.verdict))
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// A packet: mostly ordinary values, often near the example packets.
fn random_packet(r: &mut Rng, near: &[Packet]) -> Packet {
    let mut p = if !near.is_empty() && r.next().is_multiple_of(2) {
        near[(r.next() % near.len() as u64) as usize].clone()
    } else {
        let addrs = [
            "10.0.0.1",
            "10.1.2.3",
            "192.168.1.10",
            "172.17.0.2",
            "8.8.8.8",
            "203.0.113.7",
            "1.2.3.4",
        ];
        let proto = r.pick(&[6u8, 6, 17, 1]);
        Packet::new(
            proto,
            r.pick(&addrs).parse().unwrap(),
            r.pick(&addrs).parse().unwrap(),
        )
    };
    match r.next() % 6 {
        0 => p.dport = r.pick(&[22, 53, 80, 443, 8080, 3306, 25, 1194]),
        1 => p.sport = (r.next() % 65535) as u16 + 1,
        2 => p.state = r.pick(&[CtState::New, CtState::Established, CtState::Related]),
        3 => {
            p.in_iface = r
                .pick(&[None, Some("eth0"), Some("eth1"), Some("lo")])
                .map(Into::into)
        }
        4 => {
            p.src = format!("10.{}.{}.9", r.next() % 4, r.next() % 4)
                .parse()
                .unwrap()
        }
        _ => p.dport = (r.next() % 65535) as u16 + 1,
    }
    if p.has_ports() && p.sport == 0 {
        p.sport = 40000;
    }
    if p.has_ports() && p.dport == 0 {
        p.dport = 80;
    }
    p
}

#[derive(Default, Debug)]
struct Tally {
    edits: usize,
    boxes: usize,
    examples_checked: usize,
    unknown_boxes: usize,
    random_outside: usize,
    random_inside: usize,
}

fn check_edit(name: &str, what: &str, a: &Ruleset, b: &Ruleset, t: &mut Tally, r: &mut Rng) {
    let d = semantic_diff(a, b).unwrap();
    assert!(d.skipped.is_empty(), "{name} {what}: {:?}", d.skipped);
    // The whole walk agrees with the region walk (small dumps).
    if whole_ok(name, a) {
        let w = sem(a, b, true);
        let n = |d: &SemanticDiff| -> Vec<(String, String, usize)> {
            d.paths
                .iter()
                .map(|p| (p.table.clone(), p.chain.clone(), p.boxes.len()))
                .collect()
        };
        assert_eq!(
            d.same, w.same,
            "{name} {what}: region and whole walks disagree"
        );
        let (x, y) = (n(&d), n(&w));
        assert_eq!(
            x.iter().map(|p| (&p.0, &p.1)).collect::<Vec<_>>(),
            y.iter().map(|p| (&p.0, &p.1)).collect::<Vec<_>>(),
            "{name} {what}"
        );
    }
    let (fa, fb) = (filter_only(a), filter_only(b));
    let (ta, tb) = (Tracer::new(&fa), Tracer::new(&fb));
    t.edits += 1;
    for chain in ["INPUT", "FORWARD", "OUTPUT"] {
        let boxes: Vec<_> = d
            .paths
            .iter()
            .filter(|p| p.table == "filter" && p.chain == chain)
            .flat_map(|p| p.boxes.iter())
            .collect();
        for bx in &boxes {
            t.boxes += 1;
            assert_ne!(bx.old.outcome, bx.new.outcome);
            assert!(
                bx.contains(&bx.example),
                "{name} {what}: example outside its box"
            );
            if !bx.unknown.is_empty() {
                t.unknown_boxes += 1;
                continue;
            }
            let (Some(va), Some(vb)) = (
                verdict(&ta, &bx.example, chain),
                verdict(&tb, &bx.example, chain),
            ) else {
                continue;
            };
            assert_eq!(
                (va, vb),
                (bx.old.outcome.as_str(), bx.new.outcome.as_str()),
                "{name} {what}: {chain} example {}",
                bx.example_text
            );
            t.examples_checked += 1;
        }
        let near: Vec<Packet> = boxes.iter().map(|b| b.example.clone()).collect();
        for _ in 0..150 {
            let mut p = random_packet(r, &near);
            match chain {
                "OUTPUT" => p.in_iface = None,
                "INPUT" => p.out_iface = None,
                _ => {}
            }
            let (Some(va), Some(vb)) = (verdict(&ta, &p, chain), verdict(&tb, &p, chain)) else {
                continue;
            };
            match boxes.iter().find(|b| b.contains(&p)) {
                None => {
                    assert_eq!(
                        va, vb,
                        "{name} {what}: {chain}: {p} is in no reported box but changes fate"
                    );
                    t.random_outside += 1;
                }
                Some(b) if b.unknown.is_empty() => {
                    assert_eq!(
                        (va, vb),
                        (b.old.outcome.as_str(), b.new.outcome.as_str()),
                        "{name} {what}: {chain}: {p}"
                    );
                    t.random_inside += 1;
                }
                Some(_) => {}
            }
        }
    }
}

#[test]
fn single_rule_edits_report_exactly_the_changed_packets() {
    let mut t = Tally::default();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut with_boxes = 0;
    for (name, text) in corpus() {
        let a = parse(&text, &name).unwrap();
        if a.family != iptviz::model::Family::Ipv4
            || a.table("filter").is_none()
            || !whole_ok(&name, &a)
        {
            continue;
        }
        for (what, t2) in edits(&text) {
            let Some(b) = parse(&t2, &name) else {
                continue;
            };
            let before = t.boxes;
            check_edit(&name, &what, &a, &b, &mut t, &mut r);
            if t.boxes > before {
                with_boxes += 1;
            }
        }
    }
    eprintln!("{t:?}, {with_boxes} edits with boxes");
    assert!(t.edits >= 40, "{t:?}");
    assert!(
        with_boxes >= 25,
        "{with_boxes} edits changed something: {t:?}"
    );
    assert!(t.examples_checked >= 40, "{t:?}");
    assert!(t.random_outside >= 1000, "{t:?}");
    assert!(t.random_inside >= 50, "{t:?}");
}

#[test]
fn deleting_a_port_rule_reports_that_port_and_nothing_else() {
    let a = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
             -A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT\n\
             -A INPUT -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n";
    let b = a.replace(
        "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT\n",
        "",
    );
    let (a, b) = (parse(a, "a").unwrap(), parse(&b, "b").unwrap());
    let d = semantic_diff(&a, &b).unwrap();
    assert_eq!(d.paths.len(), 1);
    let p = &d.paths[0];
    assert_eq!((p.table.as_str(), p.chain.as_str()), ("filter", "INPUT"));
    assert_eq!(p.boxes.len(), 1, "{:#?}", p.boxes);
    let bx = &p.boxes[0];
    assert_eq!(bx.proto.as_deref(), Some("tcp"));
    assert_eq!(bx.src.as_deref(), Some("10.0.0.0/8"));
    assert_eq!(bx.dport.as_deref(), Some("22"));
    assert_eq!(bx.state.as_deref(), Some("INVALID,NEW,UNTRACKED"));
    assert_eq!(
        (bx.old.outcome.as_str(), bx.new.outcome.as_str()),
        ("ACCEPT", "DROP")
    );
    assert!(bx.old.by.starts_with("rule #2 of INPUT"), "{}", bx.old.by);
    assert_eq!(bx.new.by, "policy of INPUT");
}

#[test]
fn unknown_tests_are_named_in_the_box() {
    let a = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A INPUT -p tcp -m tcp --dport 80 -m mark --mark 0x1 -j DROP\nCOMMIT\n";
    let b = a.replace("--dport 80", "--dport 81");
    let (a, b) = (parse(a, "a").unwrap(), parse(&b, "b").unwrap());
    let d = semantic_diff(&a, &b).unwrap();
    let boxes = &d.paths[0].boxes;
    assert_eq!(boxes.len(), 2);
    for bx in boxes {
        assert_eq!(bx.unknown, ["-m mark --mark 0x1 = yes"], "{bx:#?}");
    }
}

#[test]
fn cli_reports_fates_and_keeps_exit_codes() {
    let dir = std::env::temp_dir().join(format!("iptviz-sem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let a = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A INPUT -p tcp -m tcp --dport 22 -j DROP\n-A INPUT -p udp -j ACCEPT\nCOMMIT\n";
    let swapped = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A INPUT -p udp -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n";
    let b = a.replace("--dport 22", "--dport 23");
    let pa = dir.join("a.rules");
    let pb = dir.join("b.rules");
    let ps = dir.join("s.rules");
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    std::fs::write(&ps, swapped).unwrap();
    let bin = env!("CARGO_BIN_EXE_iptviz");
    let run = |args: &[&std::path::Path], extra: &[&str]| {
        let o = std::process::Command::new(bin)
            .arg("diff")
            .args(extra)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(&[&pa, &pa], &[]);
    assert_eq!(code, Some(0));
    assert!(out.contains("semantic: no packet changes fate"), "{out}");
    let (code, out) = run(&[&pa, &ps], &[]);
    assert_eq!(code, Some(1), "rules moved: different rules");
    assert!(out.contains("semantic: no packet changes fate"), "{out}");
    let (code, out) = run(&[&pa, &pb], &[]);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("filter INPUT (packets for this host):"),
        "{out}"
    );
    assert!(out.contains("e.g. tcp"), "{out}");
    assert!(out.contains("old: DROP by rule #1 of INPUT"), "{out}");
    let (_, out) = run(&[&pa, &pb], &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["semantic"]["paths"][0]["boxes"].as_array().unwrap().len(),
        2
    );
    let (code, out) = run(&[&pa, &pb], &["--no-semantic"]);
    assert_eq!(code, Some(1));
    assert!(!out.contains("semantic"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
