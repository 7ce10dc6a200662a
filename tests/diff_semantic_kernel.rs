//! The kernel as the oracle for the semantic diff: single-rule edits of
//! corpus rulesets (their filter table; a FORWARD rule deleted, one
//! inserted, a port changed), each side loaded into a namespace lab (see
//! `kernel/lab.rs`) in turn. Every reported FORWARD box's example packet
//! (and a few more packets of the box) is sent through both, and whether
//! the kernel forwarded it must be the reported outcome on each side;
//! packets outside every box must be forwarded alike by both.
//!
//! Needs root, `ip`, `iptables-restore`, `iptables-save`, `conntrack` and
//! `python3`; without them it says why and passes, unless
//! `IPTVIZ_REQUIRE_KERNEL_TESTS=1`.

#[allow(dead_code)]
#[path = "kernel/lab.rs"]
mod lab;
#[allow(dead_code)]
#[path = "kernel/packets.rs"]
mod packets;

use std::path::Path;

use iptviz::diff::semantic::{FateBox, semantic_diff};
use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::{CtState, Packet};
use lab::{Family, Lab};
use packets::TestPacket;

const CASES: [&str; 8] = [
    "ferm-dmz-router.rules",
    "home-user-complex.rules",
    "in-bad-schmiedeberg-router.rules",
    "openlab-hackerspace-policyrouting.rules",
    "shorewall-akachan-2014.rules",
    "libvirt-duplicated-rules.rules",
    "docker-2016-isolated-network.rules",
    "medium-company-mainfw-security.rules",
];

/// Only the `*filter` block of a dump.
fn filter_block(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with("*filter") {
            inside = true;
        }
        if inside {
            out.push_str(l);
            out.push('\n');
        }
        if inside && l.trim_end() == "COMMIT" {
            inside = false;
        }
    }
    out
}

/// Edits of the FORWARD chain: (what, new text).
fn edits(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let fwd: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("-A FORWARD "))
        .collect();
    let join = |v: Vec<&str>| v.join("\n") + "\n";
    let mut out = Vec::new();
    if fwd.is_empty() {
        return out;
    }
    let k = fwd[fwd.len() / 2];
    let mut v = lines.clone();
    v.remove(k);
    out.push((format!("delete line {}", k + 1), join(v)));
    let ins = "-A FORWARD -s 10.1.0.0/16 -p tcp -m tcp --dport 8080 -j DROP";
    let ins2 = "-A FORWARD -d 198.51.100.0/24 -p udp -m udp --dport 53 -j ACCEPT";
    let mut v = lines.clone();
    v.insert(fwd[0], ins);
    v.insert(fwd[0], ins2);
    out.push(("insert two rules first".into(), join(v)));
    let re = regex::Regex::new(r"--dport (\d+)\b").unwrap();
    if let Some(&k) = fwd.iter().find(|&&i| re.is_match(lines[i])) {
        let changed = re
            .replace(lines[k], |c: &regex::Captures| {
                format!("--dport {}", c[1].parse::<u32>().unwrap() % 65535 + 1)
            })
            .into_owned();
        let mut v = lines.clone();
        v[k] = &changed;
        out.push((format!("port changed on line {}", k + 1), join(v)));
    }
    out
}

/// The packet as the lab can send it: interfaces chosen among the lab's so
/// that it stays in the box (when `bx` is given), or `None`.
fn lab_packet(p: &Packet, lab: &Lab, bx: Option<&FateBox>) -> Option<(TestPacket, Packet)> {
    let ok_proto = matches!(p.proto, 6 | 17) || (p.proto == 1 && p.icmp == (8, 0));
    if !ok_proto
        || p.state != CtState::New
        || p.fragment
        || (p.proto == 6 && p.tcp_flags != 0x02)
        || packets::unusable(p.src)
        || packets::unusable(p.dst)
        || lab.locals.contains(&p.dst)
        || lab.locals.contains(&p.src)
    {
        return None;
    }
    let n = lab.ifaces.len();
    let idx = |name: &Option<iptviz::model::Str>| {
        name.as_ref()
            .and_then(|x| lab.ifaces.iter().position(|i| i == x.as_str()))
    };
    let mut tries: Vec<(usize, usize)> = Vec::new();
    if let (Some(i), Some(o)) = (idx(&p.in_iface), idx(&p.out_iface)) {
        tries.push((i, o));
    }
    for i in 0..n {
        for o in 0..n {
            if i != o || n == 1 {
                tries.push((i, o));
            }
        }
    }
    for (i, o) in tries {
        let mut q = p.clone();
        q.in_iface = Some(lab.ifaces[i].as_str().into());
        q.out_iface = Some(lab.ifaces[o].as_str().into());
        if bx.is_some_and(|b| !b.contains(&q)) {
            continue;
        }
        let tp = TestPacket {
            proto: q.proto,
            src: q.src,
            dst: q.dst,
            sport: q.sport,
            dport: q.dport,
            icmp: q.icmp,
            in_if: i,
            out_if: o,
            ttl: 64,
            uid: 0,
        };
        return Some((tp, q));
    }
    None
}

/// Sends each packet through a lab holding `text`; true where forwarded.
fn forwarded(
    rs: &Ruleset,
    text: &str,
    ifaces: &[String],
    pkts: &[TestPacket],
) -> Result<Vec<bool>, String> {
    let mut lab = Lab::new(Family::V4, rs, text, ifaces.to_vec(), &[])?;
    let mut out = Vec::new();
    for (k, p) in pkts.iter().enumerate() {
        lab.flush_conntrack()?;
        lab.route_via(p.out_if)?;
        let flags = if p.proto == 6 { 0x02 } else { 0 };
        lab.send_wire(p.in_if, &p.fields(flags, 1000 + k as u32, 0))?;
        out.push(lab.observe()?.left > 0);
    }
    Ok(out)
}

/// A packet to send, whether each side should forward it (`None`: alike
/// on both), and what it is in words.
type Planned = (TestPacket, Option<(bool, bool)>, String);

#[derive(Default)]
struct Tally {
    rulesets: usize,
    boxes: usize,
    in_boxes: usize,
    outside: usize,
    problems: Vec<String>,
}

fn parse(text: &str, name: &str) -> Result<Ruleset, String> {
    Ok(parse_str(text, &ParseOptions::lenient(name))
        .map_err(|e| e.to_string())?
        .ruleset)
}

fn run_case(name: &str, t: &mut Tally) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/iptables")
        .join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
    let text = filter_block(&text);
    let old = parse(&text, name)?;
    let mut ifaces = packets::interface_names(&old);
    for extra in ["eth0", "eth1"] {
        if ifaces.len() < 2 && !ifaces.iter().any(|i| i == extra) {
            ifaces.push(extra.into());
        }
    }
    ifaces.truncate(6);
    // A lab to pick interfaces and local addresses with.
    let probe = Lab::new(Family::V4, &old, &text, ifaces.clone(), &[])?;
    let mut rng = packets::Lcg(0x5eed ^ name.len() as u64);
    for (what, t2) in edits(&text) {
        let new = parse(&t2, name)?;
        let d = semantic_diff(&old, &new).map_err(|e| e.to_string())?;
        // (packet, expected old forwarded, expected new forwarded), or
        // None for "the same on both sides".
        let mut pkts: Vec<Planned> = Vec::new();
        let boxes: Vec<&FateBox> = d
            .paths
            .iter()
            .filter(|p| p.table == "filter" && p.chain == "FORWARD")
            .flat_map(|p| p.boxes.iter())
            .collect();
        for bx in &boxes {
            if !bx.unknown.is_empty() {
                continue;
            }
            t.boxes += 1;
            let want = Some((bx.old.outcome == "ACCEPT", bx.new.outcome == "ACCEPT"));
            let mut cands = vec![bx.example.clone()];
            for _ in 0..3 {
                let mut p = bx.example.clone();
                p.sport = 1024 + (rng.next() % 60000) as u16;
                cands.push(p);
            }
            for c in cands {
                if let Some((tp, q)) = lab_packet(&c, &probe, Some(bx)) {
                    pkts.push((tp, want, format!("{} ({})", q, bx.example_text)));
                }
            }
        }
        // Packets outside every box: the same on both sides.
        let addrs = [
            "10.1.2.3",
            "192.168.1.10",
            "172.16.5.5",
            "8.8.8.8",
            "203.0.113.9",
        ];
        let mut outside = 0;
        for _ in 0..60 {
            if outside >= 10 {
                break;
            }
            let base = if !boxes.is_empty() && rng.next().is_multiple_of(2) {
                boxes[(rng.next() % boxes.len() as u64) as usize]
                    .example
                    .clone()
            } else {
                let s = addrs[(rng.next() % 5) as usize].parse().unwrap();
                let dd = addrs[(rng.next() % 5) as usize].parse().unwrap();
                let mut p = Packet::new(if rng.next().is_multiple_of(3) { 17 } else { 6 }, s, dd);
                p.sport = 40000;
                p
            };
            let mut p = base;
            p.dport = [22, 53, 80, 443, 8080, 25][(rng.next() % 6) as usize];
            let Some((tp, q)) = lab_packet(&p, &probe, None) else {
                continue;
            };
            if boxes.iter().any(|b| b.contains(&q)) {
                continue;
            }
            outside += 1;
            pkts.push((tp, None, format!("{q} (outside every box)")));
        }
        if pkts.is_empty() {
            continue;
        }
        let list: Vec<TestPacket> = pkts.iter().map(|p| p.0.clone()).collect();
        let fo = forwarded(&old, &text, &ifaces, &list)?;
        let fnew = forwarded(&new, &t2, &ifaces, &list)?;
        t.rulesets += 2;
        for (k, (_, want, desc)) in pkts.iter().enumerate() {
            let got = (fo[k], fnew[k]);
            let ok = match want {
                Some(w) => {
                    t.in_boxes += 1;
                    got == *w
                }
                None => {
                    t.outside += 1;
                    got.0 == got.1
                }
            };
            if !ok {
                t.problems.push(format!(
                    "{name} {what}: {desc}: reported {want:?}, kernel forwarded (old, new) = {got:?}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn kernel_treats_exactly_the_reported_packets_differently() {
    let required = std::env::var("IPTVIZ_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1");
    if let Some(why) = lab::missing_prerequisite(&[
        "ip",
        "iptables-restore",
        "iptables-save",
        "conntrack",
        "python3",
    ]) {
        if required {
            panic!("kernel semantic diff test required but cannot run: {why}");
        }
        eprintln!(
            "kernel semantic diff test NOT RUN: {why} (set IPTVIZ_REQUIRE_KERNEL_TESTS=1 to fail instead)"
        );
        return;
    }
    let mut t = Tally::default();
    for name in CASES {
        if let Err(e) = run_case(name, &mut t) {
            t.problems.push(format!("{name}: lab failed: {e}"));
        }
    }
    eprintln!(
        "{} rulesets loaded, {} boxes, {} packets in boxes and {} outside agree or not: {} problems",
        t.rulesets,
        t.boxes,
        t.in_boxes,
        t.outside,
        t.problems.len()
    );
    assert!(t.problems.is_empty(), "{}", t.problems.join("\n"));
    assert!(
        t.rulesets >= 8 && t.in_boxes + t.outside >= 200 && t.in_boxes >= 100,
        "{} rulesets, {} packets in boxes, {} outside",
        t.rulesets,
        t.in_boxes,
        t.outside
    );
}
