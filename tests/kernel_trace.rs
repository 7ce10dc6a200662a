//! The kernel as the oracle for `iptviz::trace`.
//!
//! For each real ruleset, a host namespace (the firewall under test) and a
//! peer namespace are joined by one veth pair per interface name the rules
//! use (see `kernel/lab.rs`). The ruleset is loaded with `iptables-restore`
//! or `ip6tables-restore`; then, packet by packet, one packet is sent, and
//! the packet counter of every rule and built-in policy in `iptables-save
//! -c` must have moved by exactly as many packets as our trace matched it.
//! Where the packet went is checked too: delivered to the host (its
//! `InDelivers`), or out of it (the peer's `InReceives`), or neither. When
//! a NAT rule rewrote a first TCP or UDP packet, the connection the trace
//! predicts (`Trace::connection`) must be the kernel's conntrack entry.
//!
//! Kinds of packets:
//! - arriving IPv4 and IPv6 packets from the peer, for the host or to be
//!   forwarded (PREROUTING, INPUT or FORWARD, POSTROUTING);
//! - packets the host sends itself from one of its addresses (OUTPUT,
//!   POSTROUTING; to one of its own addresses they come back in on `lo`
//!   through PREROUTING and INPUT);
//! - the packets of a TCP handshake after the first (ESTABLISHED), where the
//!   nat table is not consulted and the connection's NAT binding is.
//!
//! Needs root, `ip`, `iptables-restore`, `iptables-save`, their IPv6
//! twins, `conntrack`, `ipset` and `python3`. Without them the test says
//! why and passes, unless `IPTVIZ_REQUIRE_KERNEL_TESTS=1`, when it fails.
//! `IPTVIZ_KERNEL_CASE=TEXT` runs only the rulesets whose name contains TEXT.

#[path = "kernel/lab.rs"]
mod lab;
#[path = "kernel/packets.rs"]
mod packets;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::{
    Action, CtState, Direction, Packet, Route, RuleRef, Trace, TraceOptions, Tracer, Verdict,
};

use lab::{Family, Key, Lab, POLICY, Seen};
use packets::TestPacket;

/// One ruleset and how many packets of each kind it gets.
struct Case {
    name: &'static str,
    family: Family,
    arriving: usize,
    local: usize,
    /// At most this many accepted TCP SYNs among the arriving packets are
    /// followed by the rest of their handshake (SYN-ACK back, ACK).
    established: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "docker-2016-isolated-network.rules",
        family: Family::V4,
        arriving: 50,
        local: 30,
        established: 10,
    },
    Case {
        name: "kube20",
        family: Family::V4,
        arriving: 70,
        local: 40,
        established: 10,
    },
    Case {
        name: "ufw-server.rules",
        family: Family::V4,
        arriving: 40,
        local: 30,
        established: 10,
    },
    Case {
        name: "ferm-dmz-router.rules",
        family: Family::V4,
        arriving: 40,
        local: 20,
        established: 10,
    },
    Case {
        name: "libvirt-duplicated-rules.rules",
        family: Family::V4,
        arriving: 40,
        local: 20,
        established: 10,
    },
    Case {
        name: "shorewall-akachan-2014.rules",
        family: Family::V4,
        arriving: 50,
        local: 30,
        established: 10,
    },
    Case {
        name: "home-user-complex.rules",
        family: Family::V4,
        arriving: 40,
        local: 30,
        established: 10,
    },
    Case {
        name: "ipv6-mailserver.rules",
        family: Family::V6,
        arriving: 40,
        local: 15,
        established: 8,
    },
    Case {
        name: "synology-ds414-2016-ipv6.rules",
        family: Family::V6,
        arriving: 40,
        local: 15,
        established: 8,
    },
    Case {
        name: "firewalld-fedora27-ipv6-counters.rules",
        family: Family::V6,
        arriving: 40,
        local: 15,
        established: 8,
    },
    Case {
        name: "samples/server-ipv6.rules",
        family: Family::V6,
        arriving: 40,
        local: 15,
        established: 8,
    },
];

/// Kinds of packets, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Arriving,
    Local,
    Established,
}

impl Kind {
    fn name(self, family: Family) -> &'static str {
        match (self, family) {
            (Kind::Arriving, Family::V4) => "arriving IPv4",
            (Kind::Arriving, Family::V6) => "arriving IPv6",
            (Kind::Local, Family::V4) => "local IPv4",
            (Kind::Local, Family::V6) => "local IPv6",
            (Kind::Established, Family::V4) => "established IPv4",
            (Kind::Established, Family::V6) => "established IPv6",
        }
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/iptables")
}

fn load_text(name: &str) -> Result<String, String> {
    let dir = corpus_dir();
    if name == "kube20" {
        let src = dir.join("k8s-calico-kubeproxy-iptables-mode.rules");
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/kube-scale.py");
        let input = std::fs::File::open(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        let out = Command::new("python3")
            .arg(&tool)
            .args(["--services", "20"])
            .stdin(input)
            .output()
            .map_err(|e| format!("{}: {e}", tool.display()))?;
        if !out.status.success() {
            return Err(format!(
                "kube-scale.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let p = match name.strip_prefix("samples/") {
        Some(f) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(f),
        None => dir.join(name),
    };
    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// The conntrack state the kernel gives a lone packet of this kind.
fn lone_packet_state(p: &TestPacket) -> CtState {
    match (p.proto, p.icmp.0) {
        (1, 8 | 13 | 15 | 17) => CtState::New,
        // ICMP errors without a connection, and replies, are INVALID.
        (1, _) => CtState::Invalid,
        // Echo and node information requests start a connection ...
        (58, 128 | 139) => CtState::New,
        // ... neighbour discovery and listener messages are left untracked.
        (58, 130..=136 | 143) => CtState::Untracked,
        (58, _) => CtState::Invalid,
        _ => CtState::New,
    }
}

/// Rules whose outcome depends on state the trace cannot know: the random
/// coin of `statistic`, the token buckets of `limit`/`hashlimit` (drained by
/// the earlier packets of the run), `recent` lists and `connlimit` counts.
/// The trace reports them as assumptions; here the kernel's outcome is fed
/// back as an override, so that the rest of the walk is still checked.
fn stateful_rules(rs: &Ruleset) -> Vec<Key> {
    let mut v = Vec::new();
    for t in &rs.tables {
        for c in &t.chains {
            for (i, r) in c.rules.iter().enumerate() {
                if r.matches().any(|m| {
                    matches!(
                        m.module,
                        "statistic" | "limit" | "hashlimit" | "recent" | "connlimit"
                    )
                }) {
                    v.push((t.name.to_string(), c.name.to_string(), i));
                }
            }
        }
    }
    v
}

/// Result of one kind of packet on one ruleset.
#[derive(Default)]
struct Tally {
    packets: usize,
    agree: usize,
    rules_hit: BTreeSet<Key>,
    /// Packets the kernel delivered to the host, let out, and stopped.
    outcomes: [usize; 3],
}

/// Result of one ruleset.
#[derive(Default)]
struct CaseReport {
    tallies: Vec<(Kind, Tally)>,
    /// NAT bindings of first packets compared with the kernel's
    /// conntrack entry, and how many were the same.
    bindings: (usize, usize),
    disagreements: Vec<String>,
}

impl CaseReport {
    fn tally(&mut self, kind: Kind) -> &mut Tally {
        if let Some(i) = self.tallies.iter().position(|(k, _)| *k == kind) {
            return &mut self.tallies[i].1;
        }
        self.tallies.push((kind, Tally::default()));
        &mut self.tallies.last_mut().unwrap().1
    }
}

/// What one ruleset needs to trace a packet.
struct Ctx<'r> {
    name: &'r str,
    rs: &'r Ruleset,
    tracer: Tracer<'r>,
    stateful: Vec<Key>,
}

impl Ctx<'_> {
    /// Traces `pkt` with the kernel's outcome of the stateful rules, and
    /// compares with what the kernel saw; records the result under `kind`.
    fn check(
        &self,
        kind: Kind,
        pkt: &Packet,
        mut opts: TraceOptions,
        seen: &Seen,
        report: &mut CaseReport,
    ) -> Trace {
        for (t, c, i) in &self.stateful {
            opts.overrides.insert(
                RuleRef {
                    table: t.clone(),
                    chain: c.clone(),
                    rule: *i,
                },
                seen.hits.contains_key(&(t.clone(), c.clone(), *i)),
            );
        }
        let tr = self.tracer.trace(pkt, &opts);
        // How many times the walk matched each rule (a chain called from
        // two hooks of a looped packet is met twice).
        let mut ours: BTreeMap<Key, u64> = BTreeMap::new();
        for s in tr
            .steps
            .iter()
            .filter(|s| s.matched && !matches!(s.action, Action::FallOff))
        {
            let t = &self.rs.tables[s.table];
            let key = (
                t.name.to_string(),
                t.chains[s.chain].name.to_string(),
                s.rule.unwrap_or(POLICY),
            );
            *ours.entry(key).or_default() += 1;
        }
        let accepted = tr.verdict == Verdict::Accept;
        let our_delivered = u64::from(accepted && tr.route == Route::Local);
        let our_left = u64::from(accepted && matches!(tr.route, Route::Forward | Route::Output));
        let tally = report.tally(kind);
        tally.packets += 1;
        tally.outcomes[if seen.delivered > 0 {
            0
        } else if seen.left > 0 {
            1
        } else {
            2
        }] += 1;
        if ours == seen.hits && our_delivered == seen.delivered && our_left == seen.left {
            tally.agree += 1;
            tally
                .rules_hit
                .extend(ours.into_keys().filter(|k| k.2 != POLICY));
        } else {
            let show = |s: &BTreeMap<Key, u64>, other: &BTreeMap<Key, u64>, only: bool| {
                s.iter()
                    .filter(|(k, n)| !only || other.get(*k) != Some(*n))
                    .map(|((t, c, i), n)| {
                        let times = if *n > 1 {
                            format!("x{n}")
                        } else {
                            String::new()
                        };
                        if *i == POLICY {
                            format!("{t}:{c}:policy{times}")
                        } else {
                            format!("{t}:{c}:{}{times}", i + 1)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let dir = opts
                .direction
                .map(|d| format!(" ({d:?})"))
                .unwrap_or_default();
            report.disagreements.push(format!(
                "{}: {kind:?}{dir} {pkt}\n    kernel: {} delivered={} left={}\n    trace:  {} delivered={our_delivered} left={our_left} route={:?} verdict={}\n    only kernel: {}\n    only trace:  {}",
                self.name,
                show(&seen.hits, &ours, false),
                seen.delivered,
                seen.left,
                show(&ours, &seen.hits, false),
                tr.route,
                tr.verdict,
                show(&seen.hits, &ours, true),
                show(&ours, &seen.hits, true),
            ));
        }
        tr
    }
}

/// The trace's description of a test packet.
fn trace_packet(p: &TestPacket, lab: &Lab, arriving: bool) -> Packet {
    let mut pkt = Packet::new(p.proto, p.src, p.dst);
    pkt.sport = p.sport;
    pkt.dport = p.dport;
    pkt.icmp = p.icmp;
    pkt.ttl = p.ttl;
    if arriving {
        pkt.in_iface = Some(lab.ifaces[p.in_if].as_str().into());
    } else {
        pkt.uid = Some(p.uid);
        pkt.gid = Some(0);
    }
    pkt.out_iface = Some(lab.ifaces[p.out_if].as_str().into());
    pkt.state = lone_packet_state(p);
    pkt
}

fn options(lab: &Lab, direction: Option<Direction>) -> TraceOptions {
    TraceOptions {
        local: lab.locals.clone(),
        ipsets: lab.ipsets.clone(),
        direction,
        iface_addrs: lab
            .ifaces
            .iter()
            .enumerate()
            .map(|(k, name)| (name.clone(), vec![lab.family.link(k).0]))
            .chain([("lo".to_string(), lab.loopback_addresses())])
            .collect(),
        ..Default::default()
    }
}

/// For a first TCP or UDP packet the kernel let through after a NAT
/// target: the connection the trace says it leaves must be the kernel's.
fn check_binding(
    ctx: &Ctx<'_>,
    lab: &Lab,
    p: &TestPacket,
    first: &Trace,
    seen: &Seen,
    report: &mut CaseReport,
) -> Result<(), String> {
    let nat = first.steps.iter().filter(|s| s.matched).any(
        |s| matches!(&s.action, Action::Nat { change, .. } if !change.contains("one of the range")),
    );
    if !nat || !matches!(p.proto, 6 | 17) || !(seen.delivered > 0 || seen.left > 0) {
        return Ok(());
    }
    let Some(kernel) = p.kernel_connection(lab)? else {
        report.disagreements.push(format!(
            "{}: the kernel let {} -> {}:{} through a NAT rule but has no connection for it",
            ctx.name, p.src, p.dst, p.dport
        ));
        return Ok(());
    };
    report.bindings.0 += 1;
    if first.connection() == kernel {
        report.bindings.1 += 1;
    } else {
        report.disagreements.push(format!(
            "{}: connection of {} -> {}:{}\n    kernel: {kernel:?}\n    trace:  {:?}",
            ctx.name,
            p.src,
            p.dst,
            p.dport,
            first.connection()
        ));
    }
    Ok(())
}

/// Initial sequence numbers of the TCP packets sent, distinct per packet.
static SEQ: AtomicUsize = AtomicUsize::new(1000);

fn next_seq() -> u32 {
    SEQ.fetch_add(100_000, Ordering::SeqCst) as u32
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// The rest of the TCP handshake begun by the SYN `p` (sequence number
/// `seq`), which the kernel accepted: the SYN-ACK back from the other end
/// (from the peer when the SYN was forwarded, from the host's own stack
/// when it was delivered to it), then the client's ACK. Both are
/// ESTABLISHED; the trace gets the connection as the kernel's conntrack
/// table shows it, and must apply its NAT bindings instead of walking the
/// nat table.
fn handshake(
    ctx: &Ctx<'_>,
    lab: &mut Lab,
    p: &TestPacket,
    seq: u32,
    forwarded: bool,
    report: &mut CaseReport,
) -> Result<(), String> {
    let Some(conn) = p.kernel_connection(lab)? else {
        report.disagreements.push(format!(
            "{}: the kernel accepted {} -> {}:{} but has no connection for it",
            ctx.name, p.src, p.dst, p.dport
        ));
        return Ok(());
    };
    let opts = |lab: &Lab, direction| TraceOptions {
        connection: Some(conn),
        ..options(lab, direction)
    };

    let their_seq = next_seq();
    let back = TestPacket {
        src: conn.reply.src,
        dst: conn.reply.dst,
        sport: conn.reply.sport,
        dport: conn.reply.dport,
        in_if: p.out_if,
        out_if: p.in_if,
        ttl: 64,
        ..p.clone()
    };
    lab.route_via(p.in_if)?;
    let fields = back.fields(SYN | ACK, their_seq, seq.wrapping_add(1));
    if forwarded {
        lab.send_wire(p.out_if, &fields)?;
    } else {
        lab.send_local(back.src, &fields)?;
        // Nothing else may leave from that address (the RST the host's own
        // stack sends when the ACK finds no socket).
        lab.clear_source()?;
    }
    let seen = lab.observe()?;
    let mut pkt = trace_packet(&back, lab, forwarded);
    pkt.tcp_flags = SYN | ACK;
    pkt.state = CtState::Established;
    let direction = if forwarded {
        None
    } else {
        Some(Direction::Out)
    };
    ctx.check(Kind::Established, &pkt, opts(lab, direction), &seen, report);

    lab.route_via(p.out_if)?;
    let forth = TestPacket {
        ttl: 64,
        ..p.clone()
    };
    lab.send_wire(
        p.in_if,
        &forth.fields(ACK, seq.wrapping_add(1), their_seq.wrapping_add(1)),
    )?;
    let seen = lab.observe()?;
    let mut pkt = trace_packet(&forth, lab, true);
    pkt.tcp_flags = ACK;
    pkt.state = CtState::Established;
    ctx.check(Kind::Established, &pkt, opts(lab, None), &seen, report);
    Ok(())
}

fn run_case(case: &Case) -> Result<CaseReport, String> {
    let text = load_text(case.name)?;
    let rs = parse_str(&text, &ParseOptions::lenient(case.name))
        .map_err(|e| e.to_string())?
        .ruleset;
    let family = case.family;
    let ifaces = packets::interface_names(&rs);
    // IPv6 servers name their own addresses in INPUT: the host owns one of
    // each such net (IPv4 keeps the addresses the suite always had).
    let extra = match family {
        Family::V4 => Vec::new(),
        Family::V6 => {
            packets::host_addresses(&packets::reachable_rules(&rs, &["INPUT"]), family, false, 4)
        }
    };
    let mut lab = Lab::new(family, &rs, &text, ifaces, &extra)?;
    let ctx = Ctx {
        name: case.name,
        rs: &rs,
        tracer: Tracer::new(&rs),
        stateful: stateful_rules(&rs),
    };
    let mut report = CaseReport::default();

    lab.enable_local_output()?;
    let mut handshakes = 0;
    for p in packets::arriving(&rs, family, &lab.ifaces, &lab.locals, case.arriving) {
        lab.flush_conntrack()?;
        lab.route_via(p.out_if)?;
        let flags = if p.proto == 6 { SYN } else { 0 };
        let seq = next_seq();
        lab.send_wire(p.in_if, &p.fields(flags, seq, 0))?;
        let seen = lab.observe()?;
        let pkt = trace_packet(&p, &lab, true);
        let first = ctx.check(
            Kind::Arriving,
            &pkt,
            options(&lab, None),
            &seen,
            &mut report,
        );
        check_binding(&ctx, &lab, &p, &first, &seen, &mut report)?;
        if p.proto == 6 && handshakes < case.established && (seen.delivered > 0 || seen.left > 0) {
            handshakes += 1;
            handshake(&ctx, &mut lab, &p, seq, seen.left > 0, &mut report)?;
        }
    }

    if case.local > 0 {
        // The host's own sources: the addresses OUTPUT and POSTROUTING
        // rules name as `-s` become the host's.
        let out_rules = packets::reachable_rules(&rs, &["OUTPUT", "POSTROUTING"]);
        lab.add_locals(&packets::host_addresses(&out_rules, family, true, 6))?;
        let locals = lab.locals.clone();
        for p in packets::local(&rs, family, &lab.ifaces, &locals, case.local) {
            lab.flush_conntrack()?;
            lab.route_via(p.out_if)?;
            let flags = if p.proto == 6 { SYN } else { 0 };
            lab.send_local(p.src, &p.fields(flags, next_seq(), 0))?;
            let seen = lab.observe()?;
            let pkt = trace_packet(&p, &lab, false);
            let first = ctx.check(
                Kind::Local,
                &pkt,
                options(&lab, Some(Direction::Out)),
                &seen,
                &mut report,
            );
            check_binding(&ctx, &lab, &p, &first, &seen, &mut report)?;
        }
    }
    Ok(report)
}

/// Runs the cases on a few threads (most of the time goes to waiting for
/// `ip netns exec`), returning reports in case order.
fn run_all(cases: &[&Case]) -> Vec<Result<CaseReport, String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<CaseReport, String>>>> =
        Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let r = run_case(case);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not run".into())))
        .collect()
}

#[test]
fn kernel_counters_agree_with_trace() {
    let required = std::env::var("IPTVIZ_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1");
    if let Some(why) = lab::missing_prerequisite(&[
        "ip",
        "iptables-restore",
        "iptables-save",
        "ip6tables-restore",
        "ip6tables-save",
        "conntrack",
        "ipset",
        "python3",
    ]) {
        if required {
            panic!("kernel oracle suite required but cannot run: {why}");
        }
        eprintln!(
            "kernel oracle suite NOT RUN: {why} (set IPTVIZ_REQUIRE_KERNEL_TESTS=1 to fail instead)"
        );
        return;
    }
    assert!(
        corpus_dir().is_dir(),
        "corpus not found at {} (the suite reads ../shared/corpus)",
        corpus_dir().display()
    );
    let only = std::env::var("IPTVIZ_KERNEL_CASE").ok();
    let cases: Vec<&Case> = CASES
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o)))
        .collect();
    let started = std::time::Instant::now();
    let results = run_all(&cases);
    let mut totals: Vec<(Kind, Family, usize, usize, usize)> = Vec::new();
    let mut problems = Vec::new();
    let mut bindings = (0, 0);
    for (case, result) in cases.iter().zip(results) {
        match result {
            Ok(r) => {
                for (kind, t) in &r.tallies {
                    eprintln!(
                        "{}: {}: {}/{} packets agree, {} distinct rules hit \
                         (kernel: {} delivered, {} out, {} stopped)",
                        case.name,
                        kind.name(case.family),
                        t.agree,
                        t.packets,
                        t.rules_hit.len(),
                        t.outcomes[0],
                        t.outcomes[1],
                        t.outcomes[2]
                    );
                    match totals
                        .iter_mut()
                        .find(|x| x.0 == *kind && x.1 == case.family)
                    {
                        Some(x) => {
                            x.2 += t.agree;
                            x.3 += t.packets;
                            x.4 += t.rules_hit.len();
                        }
                        None => {
                            totals.push((*kind, case.family, t.agree, t.packets, t.rules_hit.len()))
                        }
                    }
                }
                if r.bindings.0 > 0 {
                    eprintln!(
                        "{}: NAT bindings: {}/{} as in the kernel's conntrack table",
                        case.name, r.bindings.1, r.bindings.0
                    );
                }
                bindings.0 += r.bindings.0;
                bindings.1 += r.bindings.1;
                problems.extend(r.disagreements);
            }
            Err(e) => problems.push(format!("{}: setup failed: {e}", case.name)),
        }
    }
    totals.sort_by_key(|t| (t.1 == Family::V6, t.0));
    let (mut agree, mut packets) = (0, 0);
    for (kind, family, a, p, rules) in &totals {
        eprintln!(
            "kernel oracle, {}: {a}/{p} packets agree, {rules} distinct rules hit",
            kind.name(*family)
        );
        agree += a;
        packets += p;
    }
    eprintln!(
        "kernel oracle: {agree}/{packets} packets agree, {}/{} NAT bindings agree, in {:.1} s",
        bindings.1,
        bindings.0,
        started.elapsed().as_secs_f64()
    );
    for p in &problems {
        eprintln!("DISAGREE {p}");
    }
    assert!(
        problems.is_empty(),
        "{} disagreements (see above)",
        problems.len()
    );
    assert!(packets > 0, "no packet was sent");
    // Every kind was exercised (unless the run was narrowed to one case).
    if only.is_none() {
        for kind in [Kind::Arriving, Kind::Local, Kind::Established] {
            for family in [Family::V4, Family::V6] {
                assert!(
                    totals
                        .iter()
                        .any(|t| t.0 == kind && t.1 == family && t.3 > 0),
                    "no {} packet was checked",
                    kind.name(family)
                );
            }
        }
    }
}
