//! The kernel as the oracle for the service matrix: for corpus rulesets
//! (their filter table loaded into a namespace lab, see `kernel/lab.rs`),
//! a TCP SYN between an address of each class and one of each other class
//! is sent through the firewall host, and whether the kernel forwarded it
//! must be what the matrix says, wherever the upper and lower closures
//! agree (no unknown test decides the pair). The counters of the rules
//! `lint` calls dead (shadowed, empty, after an unconditional rule) never
//! move, neither for those packets nor for packets sampled from the dead
//! FORWARD rules' own match spaces.
//!
//! Needs root, `ip`, `iptables-restore`, `iptables-save`, `ip6tables-*`,
//! `conntrack` and `python3`; without them it says why and passes, unless
//! `IPTVIZ_REQUIRE_KERNEL_TESTS=1`.

#[allow(dead_code)]
#[path = "kernel/lab.rs"]
mod lab;
#[allow(dead_code)]
#[path = "kernel/packets.rs"]
mod packets;

use std::net::IpAddr;
use std::path::Path;

use iptviz::analysis::Closure;
use iptviz::analysis::ifaces::IfaceMap;
use iptviz::analysis::lint::{Kind as LintKind, lint, sample_packets};
use iptviz::analysis::reach::{Class, ReachOptions, service_matrix};
use iptviz::parse::{ParseOptions, parse_str};
use lab::{Family, Lab};
use packets::TestPacket;

const CASES: [(&str, Family); 11] = [
    ("ferm-dmz-router.rules", Family::V4),
    ("home-user-complex.rules", Family::V4),
    ("in-bad-schmiedeberg-router.rules", Family::V4),
    ("medium-company-mainfw-security.rules", Family::V4),
    ("openlab-hackerspace-policyrouting.rules", Family::V4),
    ("shorewall-akachan-2014.rules", Family::V4),
    ("libvirt-duplicated-rules.rules", Family::V4),
    ("ufw-server.rules", Family::V4),
    ("docker-2016-isolated-network.rules", Family::V4),
    ("ipv6-mailserver.rules", Family::V6),
    ("synology-ds414-2016-ipv6.rules", Family::V6),
];

/// Pairs tried per matrix at most.
const PER_MATRIX: usize = 30;

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

/// Up to three addresses of the class a packet can carry through the lab.
fn usable(c: &Class, v6: bool, locals: &[IpAddr]) -> Vec<IpAddr> {
    let addr = |b: u128| iptviz::analysis::ifaces::bits_addr(b, v6);
    std::iter::once(c.representative)
        .chain(c.set.ranges().iter().flat_map(|&(lo, hi)| {
            [
                lo.saturating_add(1),
                lo + (hi - lo) / 2,
                hi.saturating_sub(1),
            ]
            .into_iter()
            .filter(move |b| (lo..=hi).contains(b))
            .map(addr)
        }))
        .filter(|a| {
            !packets::unusable(*a)
                && !locals.contains(a)
                && !matches!(a, IpAddr::V6(s) if s.segments()[0] & 0xffc0 == 0xfe80)
        })
        .fold(Vec::new(), |mut v, a| {
            if v.len() < 3 && !v.contains(&a) {
                v.push(a);
            }
            v
        })
}

#[derive(Default)]
struct Tally {
    sent: usize,
    dead_rules: usize,
    dead_samples: usize,
    agree: usize,
    problems: Vec<String>,
}

fn run_case(name: &str, family: Family, t: &mut Tally) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/iptables")
        .join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
    let text = filter_block(&text);
    let rs = parse_str(&text, &ParseOptions::lenient(name))
        .map_err(|e| e.to_string())?
        .ruleset;
    let v6 = family == Family::V6;
    let ifaces = packets::interface_names(&rs);
    let mut lab = Lab::new(family, &rs, &text, ifaces, &[])?;
    // Rules lint calls dead: their counters must never move.
    let dead: Vec<(lab::Key, u32)> = lint(&rs)
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                LintKind::Shadowed | LintKind::EmptyMatch | LintKind::AfterUnconditional
            )
        })
        .filter_map(|f| Some(((f.table.clone(), f.chain.clone(), f.rule?), f.line)))
        .collect();
    let check_dead = |seen: &lab::Seen, what: &str, t: &mut Tally| {
        for (k, line) in &dead {
            if seen.hits.contains_key(k) {
                t.problems.push(format!(
                    "{name}:{line}: lint calls it dead, but {what} moved its counter"
                ));
            }
        }
    };
    t.dead_rules += dead.len();
    // Packets from the dead FORWARD rules' own match spaces.
    for (k, line) in dead.iter().filter(|(k, _)| k.1 == "FORWARD") {
        for p in sample_packets(&rs, "filter", "FORWARD", k.2, 40) {
            let ifx = |n: &Option<iptviz::model::Str>| match n {
                None => Some(None),
                Some(n) => lab.ifaces.iter().position(|i| i == n.as_str()).map(Some),
            };
            let (Some(i), Some(o)) = (ifx(&p.in_iface), ifx(&p.out_iface)) else {
                continue;
            };
            let in_if = i.unwrap_or(0);
            let out_if = o
                .unwrap_or(if in_if == 0 { 1 } else { 0 })
                .min(lab.ifaces.len() - 1);
            let ok_proto = matches!(p.proto, 6 | 17) || (p.proto == 1 && p.icmp.0 == 8);
            // The lab sends first packets: a sample of another state or
            // with other TCP flags is left out.
            if !ok_proto
                || p.state != iptviz::trace::CtState::New
                || p.fragment
                || packets::unusable(p.src)
                || packets::unusable(p.dst)
                || lab.locals.contains(&p.dst)
            {
                continue;
            }
            let tp = TestPacket {
                proto: p.proto,
                src: p.src,
                dst: p.dst,
                sport: p.sport,
                dport: p.dport,
                icmp: p.icmp,
                in_if,
                out_if,
                ttl: 64,
                uid: 0,
            };
            let flags = if p.proto == 6 { 0x02 } else { 0 };
            if p.proto == 6 && p.tcp_flags != flags {
                continue;
            }
            lab.flush_conntrack()?;
            lab.route_via(out_if)?;
            lab.send_wire(in_if, &tp.fields(flags, 7, 0))?;
            let seen = lab.observe()?;
            t.dead_samples += 1;
            check_dead(
                &seen,
                &format!(
                    "a packet of line {line}'s own space ({} {})",
                    p.addresses(),
                    p.context()
                ),
                t,
            );
        }
    }
    let n = lab.ifaces.len();
    // Every packet arrives on one interface and leaves by another: an
    // interface file and a route say so, so `-i` and `-o` are decided.
    let ways: Vec<(usize, usize)> = if n > 1 {
        vec![(0, 1), (1, 0)]
    } else {
        vec![(0, 0)]
    };
    for (dport, (in_if, out_if)) in [22u16, 80, 443]
        .into_iter()
        .flat_map(|d| ways.iter().map(move |w| (d, *w)))
    {
        let ipassmt = IfaceMap::parse_ipassmt(
            "lab",
            &format!("{} = all_but_those_ips []\n", lab.ifaces[in_if]),
            v6,
        )
        .map_err(|e| e.to_string())?;
        let routes =
            IfaceMap::parse_routes("lab", &format!("default dev {}\n", lab.ifaces[out_if]), v6)
                .map_err(|e| e.to_string())?;
        let o = ReachOptions {
            dport,
            v6,
            ipassmt: Some(ipassmt),
            routes: Some(routes),
            ..Default::default()
        };
        let up = service_matrix(&rs, &o).map_err(|e| e.to_string())?;
        let low = service_matrix(
            &rs,
            &ReachOptions {
                closure: Closure::Lower,
                ..o
            },
        )
        .map_err(|e| e.to_string())?;
        let mut tried = 0;
        'pairs: for (a, ca) in up.classes.iter().enumerate() {
            for (b, cb) in up.classes.iter().enumerate() {
                if tried >= PER_MATRIX {
                    break 'pairs;
                }
                let (srcs, dsts) = (usable(ca, v6, &lab.locals), usable(cb, v6, &lab.locals));
                for (k, (src, dst)) in srcs
                    .iter()
                    .flat_map(|s| dsts.iter().map(move |d| (*s, *d)))
                    .enumerate()
                {
                    if k >= 3 || tried >= PER_MATRIX {
                        continue;
                    }
                    let (la, lb) = (low.class_of(src), low.class_of(dst));
                    let (Some(la), Some(lb)) = (la, lb) else {
                        continue;
                    };
                    if low.accepts(la, lb) != up.accepts(a, b) {
                        continue;
                    }
                    tried += 1;
                    let p = TestPacket {
                        proto: 6,
                        src,
                        dst,
                        sport: 10000,
                        dport,
                        icmp: (0, 0),
                        in_if,
                        out_if,
                        ttl: 64,
                        uid: 0,
                    };
                    lab.flush_conntrack()?;
                    lab.route_via(out_if)?;
                    lab.send_wire(in_if, &p.fields(0x02, 1000 + t.sent as u32, 0))?;
                    let seen = lab.observe()?;
                    t.sent += 1;
                    let forwarded = seen.left > 0;
                    if forwarded == up.accepts(a, b) {
                        t.agree += 1;
                    } else {
                        t.problems.push(format!(
                        "{name} dport {dport}: c{a} -> c{b} ({src} -> {dst}): matrix {}, kernel {}",
                        if up.accepts(a, b) { "accepts" } else { "drops" },
                        if forwarded {
                            "forwarded it"
                        } else {
                            "did not forward it"
                        }
                    ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn kernel_forwards_what_the_matrix_accepts() {
    let required = std::env::var("IPTVIZ_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1");
    if let Some(why) = lab::missing_prerequisite(&[
        "ip",
        "iptables-restore",
        "iptables-save",
        "ip6tables-restore",
        "ip6tables-save",
        "conntrack",
        "python3",
    ]) {
        if required {
            panic!("kernel reach test required but cannot run: {why}");
        }
        eprintln!(
            "kernel reach test NOT RUN: {why} (set IPTVIZ_REQUIRE_KERNEL_TESTS=1 to fail instead)"
        );
        return;
    }
    let mut t = Tally::default();
    let mut cases = 0;
    for (name, family) in CASES {
        match run_case(name, family, &mut t) {
            Ok(()) => cases += 1,
            Err(e) => t.problems.push(format!("{name}: lab failed: {e}")),
        }
    }
    eprintln!(
        "{cases} rulesets, {}/{} packets agree; {} dead rules, {} packets from their own spaces",
        t.agree, t.sent, t.dead_rules, t.dead_samples
    );
    assert!(t.problems.is_empty(), "{}", t.problems.join("\n"));
    assert!(
        cases >= 8 && t.sent >= 300,
        "{cases} rulesets, {} packets",
        t.sent
    );
}
