//! The service matrix checked against the concrete tracer: for every class
//! pair of every matrix over the corpus (IPv4 and IPv6; ports 22, 80, 443;
//! FORWARD and INPUT), a packet between the classes' representatives is
//! traced, and where no unknown test decides the pair (the upper and lower
//! closures agree) the tracer's verdict must be the matrix's. Random
//! rulesets check the same, and that the lower closure never accepts what
//! the upper one drops.

mod common;

use iptviz::analysis::Closure;
use iptviz::analysis::ifaces::IfaceMap;
use iptviz::analysis::reach::{Matrix, ReachOptions, service_matrix};
use iptviz::model::{Family, Ruleset};
use iptviz::parse::{ParseOptions, parse_bytes, parse_str};
use iptviz::trace::{Direction, TraceOptions, Tracer, Verdict};
use proptest::prelude::*;

/// The ruleset with only its filter table, so the tracer walks nothing else.
fn filter_only(rs: &Ruleset) -> Ruleset {
    let mut r = rs.clone();
    r.tables.retain(|t| t.name == "filter");
    r
}

#[derive(Default, Debug)]
struct Tally {
    checked: usize,
    undecided: usize,
    skipped_unroutable: usize,
}

/// Checks every class pair of the matrix; `lower` is the same matrix with
/// the lower closure.
fn check(rs: &Ruleset, up: &Matrix, lower: &Matrix, what: &str, t: &mut Tally) {
    let only = filter_only(rs);
    let tracer = Tracer::new(&only);
    let opts = TraceOptions {
        direction: Some(if up.chain == "INPUT" {
            Direction::In
        } else {
            Direction::Forward
        }),
        ..Default::default()
    };
    // The kernel forwards nothing from or to loopback addresses, nor from
    // IPv6 link-local ones (the tracer takes loopback as this host).
    let unroutable = |a: std::net::IpAddr| {
        a.is_loopback()
            || matches!(a, std::net::IpAddr::V6(s) if s.segments()[0] & 0xffc0 == 0xfe80)
    };
    for (a, ca) in up.classes.iter().enumerate() {
        for (b, cb) in up.classes.iter().enumerate() {
            let (src, dst) = (ca.representative, cb.representative);
            if up.chain == "FORWARD" && (unroutable(src) || unroutable(dst)) {
                t.skipped_unroutable += 1;
                continue;
            }
            let la = lower
                .class_of(src)
                .expect("lower matrix covers every address");
            let lb = lower
                .class_of(dst)
                .expect("lower matrix covers every address");
            assert!(
                !lower.accepts(la, lb) || up.accepts(a, b),
                "{what}: lower closure accepts {src} -> {dst} but the upper does not"
            );
            if lower.accepts(la, lb) != up.accepts(a, b) {
                t.undecided += 1;
                continue;
            }
            let trace = tracer.trace(&up.packet(src, dst), &opts);
            let accepted = trace.verdict == Verdict::Accept;
            assert_eq!(
                accepted,
                up.accepts(a, b),
                "{what}: c{a} -> c{b} ({src} -> {dst}): the matrix says {}, the tracer {:?}",
                if up.accepts(a, b) {
                    "accepted"
                } else {
                    "dropped"
                },
                trace.verdict
            );
            t.checked += 1;
        }
    }
}

fn matrices(rs: &Ruleset, chain: &str, dport: u16, v6: bool) -> Option<(Matrix, Matrix)> {
    let o = ReachOptions {
        chain: chain.into(),
        dport,
        v6,
        ..Default::default()
    };
    let up = service_matrix(rs, &o).ok()?;
    let low = service_matrix(
        rs,
        &ReachOptions {
            closure: Closure::Lower,
            ..o
        },
    )
    .ok()?;
    Some((up, low))
}

#[test]
fn every_corpus_matrix_agrees_with_the_tracer() {
    let mut t = Tally::default();
    let mut matrices_seen = 0;
    let mut families = [0usize; 2];
    for path in common::corpus_files("iptables", "rules") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(parsed) = parse_bytes(&bytes, &ParseOptions::lenient(&name)) else {
            continue;
        };
        let rs = parsed.ruleset;
        let v6 = rs.family == Family::Ipv6;
        for chain in ["FORWARD", "INPUT"] {
            for dport in [22, 80, 443] {
                let Some((up, low)) = matrices(&rs, chain, dport, v6) else {
                    continue;
                };
                matrices_seen += 1;
                families[v6 as usize] += 1;
                check(&rs, &up, &low, &format!("{name} {chain} {dport}"), &mut t);
            }
        }
    }
    eprintln!("{matrices_seen} matrices, {t:?}");
    assert!(families[0] >= 60 && families[1] >= 6, "{families:?}");
    assert!(t.checked >= 300, "{t:?}");
}

#[test]
fn ipassmt_turns_interfaces_into_addresses() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                -A FORWARD -i eth0 -o eth1 -j ACCEPT\nCOMMIT\n";
    let rs = parse_str(text, &ParseOptions::strict("t")).unwrap().ruleset;
    let assmt = IfaceMap::parse_ipassmt(
        "a",
        "eth0 = [10.0.0.0/8]\neth1 = all_but_those_ips [10.0.0.0/8]\n",
        false,
    )
    .unwrap();
    let routes = IfaceMap::parse_routes(
        "r",
        "default via 192.0.2.1 dev eth1\n10.0.0.0/8 dev eth0\n",
        false,
    )
    .unwrap();
    let m = service_matrix(
        &rs,
        &ReachOptions {
            ipassmt: Some(assmt.clone()),
            routes: Some(routes),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(m.classes.len(), 2, "{:?}", m.classes);
    let inside = m.class_of("10.1.1.1".parse().unwrap()).unwrap();
    let out = 1 - inside;
    assert_eq!(m.edges, vec![(inside, out)]);
    assert!(m.notes.is_empty(), "{:?}", m.notes);
    // Without --routes, -o is unknown: the lower closure accepts nothing.
    let low = service_matrix(
        &rs,
        &ReachOptions {
            ipassmt: Some(assmt),
            closure: Closure::Lower,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(low.edges.is_empty());
}

/// One random rule over a small pool of prefixes, ports and targets.
fn rule_text(chain: &str, n: u8, targets: &[&str]) -> String {
    const NETS: [&str; 6] = [
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.2.3",
        "192.168.0.0/16",
        "0.0.0.0/1",
        "172.16.0.0/12",
    ];
    let mut s = format!("-A {chain}");
    let pick = |k: u8| NETS[(k as usize) % NETS.len()];
    if n & 1 == 1 {
        s += &format!(
            " {}-s {}",
            if n & 64 != 0 { "! " } else { "" },
            pick(n >> 1)
        );
    }
    if n & 2 == 2 {
        s += &format!(" -d {}", pick(n >> 3));
    }
    if n & 4 == 4 {
        s += if n & 128 != 0 {
            " -p udp"
        } else {
            " -p tcp -m tcp --dport 20:30"
        };
    }
    if n & 8 == 8 && n & 16 == 16 {
        s += " -m mark --mark 0x1";
    }
    if n & 32 == 32 && n & 1 == 0 {
        s += " -m iprange --dst-range 10.1.2.0-10.1.2.9";
    }
    s + &format!(" -j {}", targets[(n as usize * 7 + 3) % targets.len()])
}

fn random_ruleset(fwd: &[u8], sub: &[u8], policy: bool) -> String {
    let mut t = format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD {} [0:0]\n:OUTPUT ACCEPT [0:0]\n:SUB - [0:0]\n:LEAF - [0:0]\n",
        if policy { "ACCEPT" } else { "DROP" }
    );
    for &n in fwd {
        t += &rule_text("FORWARD", n, &["ACCEPT", "DROP", "SUB", "REJECT", "LEAF"]);
        t.push('\n');
    }
    for &n in sub {
        t += &rule_text("SUB", n, &["ACCEPT", "RETURN", "DROP", "LEAF"]);
        t.push('\n');
        t += &rule_text("LEAF", n.rotate_left(3), &["ACCEPT", "RETURN", "DROP"]);
        t.push('\n');
    }
    t + "-A SUB -g LEAF\nCOMMIT\n"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_rulesets_agree_with_the_tracer(
        fwd in proptest::collection::vec(any::<u8>(), 0..10),
        sub in proptest::collection::vec(any::<u8>(), 0..6),
        policy in any::<bool>(),
        dport in prop_oneof![Just(22u16), Just(25), Just(80)],
        probes in proptest::collection::vec((any::<u32>(), any::<u32>()), 20),
    ) {
        let text = random_ruleset(&fwd, &sub, policy);
        let rs = parse_str(&text, &ParseOptions::strict("random")).unwrap().ruleset;
        let (up, low) = matrices(&rs, "FORWARD", dport, false).unwrap();
        let mut t = Tally::default();
        check(&rs, &up, &low, &text, &mut t);
        // Random addresses too, not only the representatives: any member of
        // a class gets the verdict of its class.
        let only = filter_only(&rs);
        let tracer = Tracer::new(&only);
        let opts = TraceOptions { direction: Some(Direction::Forward), ..Default::default() };
        for (s, d) in probes {
            // Bias towards the pool's prefixes.
            let s = if s & 1 == 0 { 0x0a01_0200 | (s >> 28) } else { s };
            let d = if d & 1 == 0 { 0xc0a8_0000 | (d >> 20) } else { d };
            let (src, dst) = (std::net::Ipv4Addr::from(s).into(), std::net::Ipv4Addr::from(d).into());
            let (a, b) = (up.class_of(src).unwrap(), up.class_of(dst).unwrap());
            let (la, lb) = (low.class_of(src).unwrap(), low.class_of(dst).unwrap());
            if up.accepts(a, b) != low.accepts(la, lb) || s >> 24 == 127 || d >> 24 == 127 {
                continue;
            }
            let v = tracer.trace(&up.packet(src, dst), &opts).verdict;
            prop_assert_eq!(v == Verdict::Accept, up.accepts(a, b), "{} -> {}\n{}", src, dst, text);
        }
    }
}

#[test]
fn reach_command_text_json_drawings_and_bad_ipassmt() {
    use assert_cmd::Command;
    let dir = std::env::temp_dir().join(format!("iptviz-reach-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("fw.rules");
    std::fs::write(
        &rules,
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A FORWARD -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::cargo_bin("iptviz")
            .unwrap()
            .arg("reach")
            .arg(&rules)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--dport", "22"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 classes, 2 accepted pairs"), "{text}");
    assert!(
        text.contains("  c0   everything else: 11.0.0.0-255.255.255.255, 0.0.0.0-9.255.255.255"),
        "{text}"
    );
    assert!(text.contains("  c1   10.0.0.0/8"), "{text}");
    assert!(text.contains("  c1 -> every class"), "{text}");
    let json = run(&["--dport", "22", "--dport", "80", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["edges"].as_array().unwrap().len(), 2);
    assert_eq!(v[1]["edges"].as_array().unwrap().len(), 0);
    assert_eq!(v[0]["classes"][1]["representative"], "10.0.0.1");
    let dot = run(&["--dport", "22", "-f", "dot"]);
    let dot = String::from_utf8_lossy(&dot.stdout);
    assert!(
        dot.starts_with("digraph") && dot.contains("c1\\n10.0.0.0/8"),
        "{dot}"
    );
    if common::graphviz_available() {
        common::assert_dot_accepts(&dot, "reach -f dot");
    }
    let svg = run(&["--dport", "22", "-f", "svg"]);
    let svg = String::from_utf8_lossy(&svg.stdout);
    assert!(
        svg.contains("<svg") && svg.contains("everything else"),
        "{svg}"
    );
    // The matrix has no chains or jumps: its legend names its own boxes.
    assert!(
        svg.contains(">address class</text>") && svg.contains(">accepted (dport 22)</text>"),
        "reach legend: {svg}"
    );
    assert!(
        !svg.contains(">user chain</text>") && !svg.contains(">-j call</text>"),
        "reach svg legend spoke of chains and jumps: {svg}"
    );
    let assmt = dir.join("bad.ipassmt");
    std::fs::write(&assmt, "# interfaces\neth0 = [10.0.0.0/8, 300.1.2.3]\n").unwrap();
    let bad = run(&["--dport", "22", "--ipassmt", assmt.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains(&format!("{}:2:21: error: bad address", assmt.display())),
        "{err}"
    );
    assert!(
        err.contains("eth0 = [10.0.0.0/8, 300.1.2.3]\n                      ^"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
