//! The kernel as the oracle for tracing through nftables.
//!
//! Each ruleset of `../shared/corpus/nftables` (and two written here) is
//! loaded with `nft -f` into the host namespace of the lab of
//! `kernel/lab.rs` (a host and a peer namespace joined by one veth pair per
//! interface name the rules use). A table of the test's own,
//! `inet iptviz_oracle`, sets `meta nftrace` on every packet at priority
//! -1000 of PREROUTING and OUTPUT, and `nft monitor trace` reports every
//! rule the packet matched (by handle) and every policy applied. That is
//! the kernel's own account of "the rules that moved": a rule is reported
//! when all its matches passed, exactly as a counter placed after its
//! matches would count it, and a verdict map that finds no element is not
//! reported, as it does not match. (Counters put into each rule by the test
//! would have needed the rules rewritten; nft 1.0.6 cannot reload its own
//! JSON for four of these rulesets.)
//!
//! One packet per case: arriving from the peer (for the host or forwarded)
//! or sent by the host itself; the packets are made from the ruleset's own
//! literals (addresses, ports, protocols, interfaces, the elements of its
//! sets and maps, concatenations included) and random ones, with a fixed
//! seed. The trace (`Tracer::with_nft` on the kernel's `nft -j list
//! ruleset`) must match the same rules, as many times, and agree with the
//! kernel on delivery: to the host (`InDelivers`), out of it (the peer's
//! `InReceives`) or neither.
//!
//! The mixed host loads iptables rules with `iptables-restore` (nf_tables
//! backend) next to a native nft table: the trace walks both, in priority
//! order, and the iptables rules are named by their position as in
//! `iptables-save`.
//!
//! Needs root, `ip`, `nft`, `stdbuf`, `iptables-restore` and `python3`.
//! `IPTVIZ_KERNEL_CASE=TEXT` runs only the cases whose name contains TEXT.

#[allow(dead_code)]
#[path = "kernel/lab.rs"]
mod lab;
#[allow(dead_code)]
#[path = "kernel/packets.rs"]
mod packets;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::nft::NftRules;
use iptviz::trace::{
    Action, Connection, CtState, Direction, Packet, RandomChoice, Route, RuleRef, TraceOptions,
    Tracer, Verdict,
};

use lab::{Family, Lab, ns_sh};
use packets::{Lcg, TestPacket, unusable};

/// A rule or policy as the kernel names it: (family, table, chain, index
/// in the chain or `POLICY`).
type Key = (String, String, String, usize);
const POLICY: usize = usize::MAX;

/// One ruleset and its packets.
struct Case {
    name: &'static str,
    /// File in the corpus (or `here/NAME` under tests/kernel/nft).
    file: &'static str,
    families: &'static [Family],
    arriving: usize,
    local: usize,
    /// iptables rules loaded first (mixed host), from tests/kernel/nft.
    iptables: Option<&'static str>,
}

const V4: &[Family] = &[Family::V4];
const V6: &[Family] = &[Family::V6];
const BOTH: &[Family] = &[Family::V4, Family::V6];

const CASES: &[Case] = &[
    Case {
        name: "firewalld",
        file: "firewalld-debian12-default.nft",
        families: BOTH,
        arriving: 40,
        local: 15,
        iptables: None,
    },
    Case {
        name: "docker",
        file: "docker-nftables-portmap.fixed.nft",
        families: V4,
        arriving: 50,
        local: 20,
        iptables: None,
    },
    Case {
        name: "kube-proxy",
        file: "kube-proxy-nftables-ipv6.nft",
        families: V6,
        arriving: 50,
        local: 20,
        iptables: None,
    },
    Case {
        name: "fw4-redirect",
        file: "fw4-redirect-dnat.nft",
        families: BOTH,
        arriving: 35,
        local: 10,
        iptables: None,
    },
    Case {
        name: "fw4-ipsets",
        file: "fw4-ipsets.nft",
        families: BOTH,
        arriving: 30,
        local: 10,
        iptables: None,
    },
    Case {
        name: "libvirt",
        file: "libvirt-nat-default.nft",
        families: BOTH,
        arriving: 25,
        local: 10,
        iptables: None,
    },
    Case {
        name: "nixos",
        file: "nixos-nnf-zones-nat.nft",
        families: BOTH,
        arriving: 25,
        local: 10,
        iptables: None,
    },
    Case {
        name: "sets-and-maps",
        file: "nft-example-sets-and-maps.fixed.nft",
        families: V4,
        arriving: 30,
        local: 10,
        iptables: None,
    },
    Case {
        name: "workstation",
        file: "debian12-workstation.nft",
        families: BOTH,
        arriving: 20,
        local: 5,
        iptables: None,
    },
    Case {
        name: "fail2ban",
        file: "fail2ban-nftables-multiport.nft",
        families: BOTH,
        arriving: 20,
        local: 5,
        iptables: None,
    },
    Case {
        name: "sshguard",
        file: "sshguard-nft-sets.nft",
        families: BOTH,
        arriving: 15,
        local: 5,
        iptables: None,
    },
    Case {
        name: "nat-maps",
        file: "nft-upstream-nat-maps.nft",
        families: BOTH,
        arriving: 25,
        local: 10,
        iptables: None,
    },
    Case {
        name: "handwritten-inet",
        file: "here/handwritten-inet.nft",
        families: BOTH,
        arriving: 45,
        local: 15,
        iptables: None,
    },
    Case {
        name: "mixed",
        file: "here/mixed-native.nft",
        families: V4,
        arriving: 40,
        local: 15,
        iptables: Some("mixed-iptables.rules"),
    },
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/nftables")
}

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel/nft")
}

fn case_path(file: &str) -> PathBuf {
    match file.strip_prefix("here/") {
        Some(f) => here().join(f),
        None => corpus().join(file),
    }
}

/// `nft monitor trace` running in the host namespace; killed on drop.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(ns: &str) -> Result<Monitor, String> {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", ns, "stdbuf", "-oL", "nft", "-a", "monitor", "trace",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nft monitor: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                sink.lock().unwrap().push(l);
            }
        });
        // Let it subscribe before the first packet.
        std::thread::sleep(std::time::Duration::from_millis(400));
        Ok(Monitor { child, lines })
    }

    /// The events since the last call, once they stop coming.
    fn take(&self) -> Vec<String> {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut n = self.lines.lock().unwrap().len();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(40));
            let now = self.lines.lock().unwrap().len();
            if now == n {
                break;
            }
            n = now;
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ORACLE: &str = "table inet iptviz_oracle {\n\
    chain oracle_pre { type filter hook prerouting priority -1000; meta nftrace set 1; }\n\
    chain oracle_out { type filter hook output priority -1000; meta nftrace set 1; }\n\
}\n";

/// Rule positions by handle, from `nft -a -j list ruleset`.
fn handles(listing: &Value) -> HashMap<(String, String, String, u64), usize> {
    let mut next: HashMap<(String, String, String), usize> = HashMap::new();
    let mut m = HashMap::new();
    for it in listing["nftables"].as_array().into_iter().flatten() {
        let Some(r) = it.get("rule") else { continue };
        let k = (
            r["family"].as_str().unwrap_or("").to_string(),
            r["table"].as_str().unwrap_or("").to_string(),
            r["chain"].as_str().unwrap_or("").to_string(),
        );
        let n = next.entry(k.clone()).or_default();
        m.insert((k.0, k.1, k.2, r["handle"].as_u64().unwrap_or(0)), *n);
        *n += 1;
    }
    m
}

/// Source and destination in a trace event's `packet:` line.
fn packet_addresses(line: &str) -> Option<(IpAddr, IpAddr)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let after = |k: &str| {
        w.windows(2)
            .find(|p| p[0] == k)
            .and_then(|p| p[1].parse::<IpAddr>().ok())
    };
    Some((after("saddr")?, after("daddr")?))
}

/// The rules and policies the kernel's trace events report for the packet
/// sent from `src`, and whether the host answered it (a REJECT's error or
/// reset, back to `src`: its events are not the packet's).
fn kernel_hits(
    events: &[String],
    handles: &HashMap<(String, String, String, u64), usize>,
    src: IpAddr,
) -> (BTreeMap<Key, u64>, bool) {
    let mut hits = BTreeMap::new();
    let mut replies: BTreeSet<&str> = BTreeSet::new();
    for l in events {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() > 7
            && w[6] == "packet:"
            && let Some((s, d)) = packet_addresses(l)
            && d == src
            && (s != src || l.contains("destination-unreachable") || l.contains("rst"))
        {
            replies.insert(w[2]);
        }
    }
    for l in events {
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() < 7 || w[0] != "trace" || replies.contains(w[2]) {
            continue;
        }
        let (fam, table, chain) = (w[3], w[4], w[5]);
        if table == "iptviz_oracle" {
            continue;
        }
        let idx = match w[6] {
            "policy" => POLICY,
            "rule" => {
                let Some(h) = l
                    .rsplit_once("# handle ")
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .and_then(|h| h.parse::<u64>().ok())
                else {
                    continue;
                };
                match handles.get(&(fam.into(), table.into(), chain.into(), h)) {
                    Some(i) => *i,
                    None => continue,
                }
            }
            _ => continue,
        };
        *hits
            .entry((fam.to_string(), table.to_string(), chain.to_string(), idx))
            .or_default() += 1;
    }
    (hits, !replies.is_empty())
}

// ---------------------------------------------------------------------
// Packets from the ruleset's literals

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Saddr,
    Daddr,
    Sport,
    Dport,
    Proto,
    Iif,
    Oif,
    Icmp,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Lit {
    Addr(IpAddr),
    Num(u64),
    Name(String),
}

type Hint = Vec<(Field, Lit)>;

fn field_of(left: &Value) -> Option<(Field, Option<u8>)> {
    if let Some(p) = left.get("payload") {
        let proto = p["protocol"].as_str().unwrap_or("");
        let l4 = match proto {
            "tcp" => Some(6),
            "udp" => Some(17),
            _ => None,
        };
        return Some(match (proto, p["field"].as_str().unwrap_or("")) {
            ("ip" | "ip6", "saddr") => (Field::Saddr, None),
            ("ip" | "ip6", "daddr") => (Field::Daddr, None),
            ("ip", "protocol") | ("ip6", "nexthdr") => (Field::Proto, None),
            (_, "sport") => (Field::Sport, l4),
            (_, "dport") => (Field::Dport, l4),
            ("icmp" | "icmpv6", "type") => (Field::Icmp, None),
            _ => return None,
        });
    }
    if let Some(m) = left.get("meta") {
        return Some(match m["key"].as_str().unwrap_or("") {
            "l4proto" => (Field::Proto, None),
            "iifname" | "iif" => (Field::Iif, None),
            "oifname" | "oif" => (Field::Oif, None),
            _ => return None,
        });
    }
    None
}

fn lits(v: &Value, sets: &HashMap<String, Vec<Value>>, out: &mut Vec<Value>) {
    match v {
        Value::String(s) if s.starts_with('@') => {
            if let Some(e) = sets.get(&s[1..]) {
                for x in e {
                    lits(x, sets, out);
                }
            }
        }
        Value::Object(o) if o.contains_key("set") => {
            for x in o["set"].as_array().into_iter().flatten() {
                lits(x, sets, out);
            }
        }
        Value::Object(o) if o.contains_key("elem") => lits(&o["elem"]["val"], sets, out),
        Value::Array(kd) if kd.len() == 2 && !kd[0].is_string() => lits(&kd[0], sets, out),
        v => out.push(v.clone()),
    }
}

fn lit_of(v: &Value, rng: &mut Lcg) -> Option<Lit> {
    Some(match v {
        Value::Number(n) => Lit::Num(n.as_u64()?),
        Value::String(s) => match s.parse::<IpAddr>() {
            Ok(a) => Lit::Addr(a),
            Err(_) => Lit::Name(s.clone()),
        },
        Value::Object(o) if o.contains_key("prefix") => {
            let p = &o["prefix"];
            let net: ipnet::IpNet = format!("{}/{}", p["addr"].as_str()?, p["len"])
                .parse()
                .ok()?;
            let bits = net.max_prefix_len() - net.prefix_len();
            let off = if bits == 0 {
                0
            } else {
                1 + rng.next() % ((1u64 << bits.min(16)) - 1).max(1)
            };
            Lit::Addr(match net {
                ipnet::IpNet::V4(n) => IpAddr::V4((u32::from(n.network()) + off as u32).into()),
                ipnet::IpNet::V6(n) => IpAddr::V6((u128::from(n.network()) + off as u128).into()),
            })
        }
        Value::Object(o) if o.contains_key("range") => lit_of(&o["range"][0], rng)?,
        _ => return None,
    })
}

/// Field-value hints from every match, set, map and vmap of the rules.
fn hints(listing: &Value, rng: &mut Lcg) -> Vec<Hint> {
    let items = listing["nftables"].as_array().cloned().unwrap_or_default();
    let mut sets: HashMap<String, Vec<Value>> = HashMap::new();
    for it in &items {
        if let Some(s) = it.get("set").or_else(|| it.get("map")) {
            sets.insert(
                s["name"].as_str().unwrap_or("").into(),
                s["elem"].as_array().cloned().unwrap_or_default(),
            );
        }
    }
    let mut out: BTreeSet<Hint> = BTreeSet::new();
    for it in &items {
        let Some(r) = it.get("rule") else { continue };
        for e in r["expr"].as_array().into_iter().flatten() {
            let (left, right) = if let Some(m) = e.get("match") {
                (&m["left"], &m["right"])
            } else if let Some(m) = e.get("vmap") {
                (&m["key"], &m["data"])
            } else {
                continue;
            };
            let fields: Vec<Option<(Field, Option<u8>)>> = match left.get("concat") {
                Some(c) => c.as_array().into_iter().flatten().map(field_of).collect(),
                None => vec![field_of(left)],
            };
            if fields.iter().all(Option::is_none) {
                continue;
            }
            let mut vals = Vec::new();
            lits(right, &sets, &mut vals);
            for v in vals {
                let parts: Vec<Value> = match v.get("concat") {
                    Some(c) => c.as_array().cloned().unwrap_or_default(),
                    None => vec![v],
                };
                let mut h = Hint::new();
                for (f, p) in fields.iter().zip(&parts) {
                    let Some((f, l4)) = f else { continue };
                    if let Some(l) = lit_of(p, rng) {
                        h.push((*f, l));
                    }
                    if let Some(l4) = l4 {
                        h.push((Field::Proto, Lit::Num(*l4 as u64)));
                    }
                }
                if !h.is_empty() {
                    out.insert(h);
                }
            }
        }
    }
    out.into_iter().collect()
}

fn interface_names(listing: &Value) -> Vec<String> {
    let mut rng = Lcg(1);
    let mut names: BTreeSet<String> = BTreeSet::new();
    for h in hints(listing, &mut rng) {
        for (f, l) in h {
            if let (Field::Iif | Field::Oif, Lit::Name(n)) = (f, l) {
                let n = match n.strip_suffix('*') {
                    Some("") => continue,
                    Some(p) => format!("{p}0"),
                    None => n,
                };
                if n != "lo" && n.len() <= 15 && !n.contains(['/', ' ', '"']) {
                    names.insert(n);
                }
            }
        }
    }
    let mut v: Vec<String> = names.into_iter().take(8).collect();
    for extra in ["eth0", "eth1"] {
        if v.len() < 2 && !v.iter().any(|n| n == extra) {
            v.push(extra.into());
        }
    }
    v
}

fn proto_num(l: &Lit, v6: bool) -> Option<u8> {
    match l {
        Lit::Num(n) => u8::try_from(*n).ok(),
        Lit::Name(s) => match s.as_str() {
            "icmp" if !v6 => Some(1),
            "icmpv6" | "ipv6-icmp" if v6 => Some(58),
            "tcp" => Some(6),
            "udp" => Some(17),
            _ => None,
        },
        _ => None,
    }
}

/// A packet for the lab: from hint `h` where it says, random elsewhere.
fn make_packet(
    h: &Hint,
    family: Family,
    lab: &Lab,
    pool: &[IpAddr],
    ports: &[u16],
    rng: &mut Lcg,
    local: bool,
) -> Option<TestPacket> {
    let v6 = family == Family::V6;
    let fam_ok = |a: &IpAddr| a.is_ipv6() == v6 && !unusable(*a);
    let mut proto = *rng.pick(&[6u8, 6, 17, 17, if v6 { 58 } else { 1 }]);
    let mut src = *rng.pick(pool);
    let mut dst = if rng.next().is_multiple_of(3) {
        *rng.pick(&lab.locals)
    } else {
        *rng.pick(pool)
    };
    let mut sport = 1024 + (rng.next() % 60000) as u16;
    let mut dport = *rng.pick(ports);
    let mut icmp = if v6 { (128, 0) } else { (8, 0) };
    let mut in_if = (rng.next() as usize) % lab.ifaces.len();
    let mut out_if = (rng.next() as usize) % lab.ifaces.len();
    let iface = |n: &str| {
        lab.ifaces
            .iter()
            .position(|i| i == n || n.strip_suffix('*').is_some_and(|p| i.starts_with(p)))
    };
    for (f, l) in h {
        match (f, l) {
            (Field::Saddr, Lit::Addr(a)) if fam_ok(a) => src = *a,
            (Field::Daddr, Lit::Addr(a)) if fam_ok(a) => dst = *a,
            (Field::Saddr | Field::Daddr, Lit::Addr(_)) => return None,
            (Field::Sport, Lit::Num(n)) => sport = *n as u16,
            (Field::Dport, Lit::Num(n)) => dport = *n as u16,
            (Field::Proto, l) => match proto_num(l, v6) {
                Some(p @ (6 | 17 | 1 | 58)) => proto = p,
                _ => return None,
            },
            (Field::Iif, Lit::Name(n)) => in_if = iface(n)?,
            (Field::Oif, Lit::Name(n)) => out_if = iface(n)?,
            (Field::Icmp, Lit::Num(n)) => icmp = (*n as u8, 0),
            (Field::Icmp, Lit::Name(n)) => icmp = (icmp_type(n, v6)?, 0),
            _ => {}
        }
    }
    if proto == 1 && v6 || proto == 58 && !v6 {
        return None;
    }
    if local {
        src = *rng.pick(&lab.locals);
    }
    let own = lab.locals.contains(&dst);
    if src == dst
        || !(fam_ok(&dst) || own)
        || matches!(dst, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
    {
        return None;
    }
    // A link-local source is not forwarded: the host would answer it.
    if !local
        && (lab.locals.contains(&src)
            || matches!(src, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80))
    {
        return None;
    }
    if !matches!(proto, 6 | 17) {
        sport = 0;
        dport = 0;
    }
    Some(TestPacket {
        proto,
        src,
        dst,
        sport,
        dport,
        icmp: if matches!(proto, 1 | 58) {
            icmp
        } else {
            (0, 0)
        },
        in_if,
        out_if,
        ttl: 64,
        uid: 0,
    })
}

fn icmp_type(n: &str, v6: bool) -> Option<u8> {
    Some(match (n, v6) {
        ("echo-request", false) => 8,
        ("echo-reply", false) => 0,
        ("destination-unreachable", false) => 3,
        ("time-exceeded", false) => 11,
        ("echo-request", true) => 128,
        ("echo-reply", true) => 129,
        ("destination-unreachable", true) => 1,
        ("packet-too-big", true) => 2,
        ("time-exceeded", true) => 3,
        _ => return None,
    })
}

/// Addresses of the host: a few the rules name as destinations.
fn host_addresses(hints: &[Hint], family: Family, max: usize) -> Vec<IpAddr> {
    let mut v = Vec::new();
    for h in hints {
        for (f, l) in h {
            if let (Field::Daddr, Lit::Addr(a)) = (f, l)
                && a.is_ipv6() == (family == Family::V6)
                && !unusable(*a)
                && !v.contains(a)
                && v.len() < max
                && !matches!(a, IpAddr::V6(x) if x.segments()[0] & 0xffc0 == 0xfe80)
            {
                v.push(*a);
            }
        }
    }
    v
}

fn lone_packet_state(p: &TestPacket) -> CtState {
    match (p.proto, p.icmp.0) {
        (1, 8 | 13 | 15 | 17) => CtState::New,
        (1, _) => CtState::Invalid,
        (58, 128 | 139) => CtState::New,
        (58, 130..=136 | 143) => CtState::Untracked,
        (58, _) => CtState::Invalid,
        _ => CtState::New,
    }
}

// ---------------------------------------------------------------------
// One case

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
/// Accepted TCP SYNs per case followed by the rest of their handshake.
const MAX_HANDSHAKES: usize = 8;

/// The rules and policies the trace matched, named as the kernel names them.
fn matched_rules(
    tr: &iptviz::trace::Trace,
    rs: &Ruleset,
    nft: &NftRules,
    fam: &str,
) -> BTreeMap<Key, u64> {
    let mut ours: BTreeMap<Key, u64> = BTreeMap::new();
    for s in tr
        .steps
        .iter()
        .filter(|s| s.matched && !matches!(s.action, Action::FallOff))
    {
        let key = if s.table < rs.tables.len() {
            let t = &rs.tables[s.table];
            (
                fam.to_string(),
                t.name.to_string(),
                t.chains[s.chain].name.to_string(),
                s.rule.unwrap_or(POLICY),
            )
        } else {
            let t = &nft.tables[s.table - rs.tables.len()];
            (
                t.family.name().to_string(),
                t.name.clone(),
                t.chains[s.chain].name.clone(),
                s.rule.unwrap_or(POLICY),
            )
        };
        *ours.entry(key).or_default() += 1;
    }
    ours
}

#[derive(Default)]
struct Report {
    packets: usize,
    /// Packets by kind: arriving, sent by the host, later packets of a
    /// TCP handshake.
    kinds: BTreeMap<String, usize>,
    agree: usize,
    rules_hit: BTreeSet<Key>,
    outcomes: [usize; 3],
    disagreements: Vec<String>,
}

/// Rules whose outcome depends on state the trace does not have (limit,
/// quota, meters), and the reverse-path lookups of `fib`, which the lab's
/// policy routing (`ip rule ... lookup 100`) decides and the trace's route
/// model does not read: the kernel's outcome is given as an override
/// (`--assume`), and the rest of the walk is checked.
fn stateful_rules(listing: &Value) -> Vec<(String, String, String, usize)> {
    let mut v = Vec::new();
    let mut next: HashMap<(String, String, String), usize> = HashMap::new();
    for it in listing["nftables"].as_array().into_iter().flatten() {
        let Some(r) = it.get("rule") else { continue };
        let k = (
            r["family"].as_str().unwrap_or("").to_string(),
            r["table"].as_str().unwrap_or("").to_string(),
            r["chain"].as_str().unwrap_or("").to_string(),
        );
        let n = next.entry(k.clone()).or_default();
        let text = r["expr"].to_string();
        if [
            "\"limit\"",
            "\"quota\"",
            "\"meter\"",
            "\"connlimit\"",
            "\"result\":\"oif\"",
        ]
        .iter()
        .any(|s| text.contains(s))
        {
            v.push((k.0, k.1, k.2, *n));
        }
        *n += 1;
    }
    v
}

fn run_family(case: &Case, family: Family, seed: u64) -> Result<Report, String> {
    let path = case_path(case.file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The corpus listing (or a first load) tells the interfaces to create.
    let json_path = corpus().join(format!(
        "{}.json",
        case.file
            .trim_end_matches(".nft")
            .trim_end_matches(".fixed")
    ));
    let pre: Value = match std::fs::read_to_string(&json_path) {
        Ok(j) => serde_json::from_str(&j).map_err(|e| e.to_string())?,
        Err(_) => {
            let here = here().join(format!(
                "{}.ifaces",
                case.file
                    .trim_start_matches("here/")
                    .trim_end_matches(".nft")
            ));
            let names = std::fs::read_to_string(&here).unwrap_or_default();
            serde_json::json!({"nftables": [{"rule": {"family": "inet", "table": "x", "chain": "x", "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                 "right": {"set": names.split_whitespace().collect::<Vec<_>>()}}}]}}]})
        }
    };
    let ifaces = interface_names(&pre);
    let mut rng = Lcg(seed);
    let pre_hints = hints(&pre, &mut rng);
    let extra = host_addresses(&pre_hints, family, 3);
    let mut lab = Lab::bare(family, ifaces, &extra)?;
    let ipt: Option<Ruleset> = match case.iptables {
        Some(f) => {
            let t = std::fs::read_to_string(here().join(f)).map_err(|e| e.to_string())?;
            lab.restore(&t)?;
            Some(
                parse_str(&t, &ParseOptions::lenient(f))
                    .map_err(|e| e.to_string())?
                    .ruleset,
            )
        }
        None => None,
    };
    let tmp = std::env::temp_dir().join(format!("{}-{}.nft", lab.host, case.name));
    std::fs::write(&tmp, format!("{text}\n{ORACLE}")).map_err(|e| e.to_string())?;
    let loaded = ns_sh(&lab.host, &format!("nft -f {}", tmp.display()));
    let _ = std::fs::remove_file(&tmp);
    loaded?;
    let listing_text = ns_sh(&lab.host, "nft -a -j list ruleset")?;
    let listing: Value = serde_json::from_str(&listing_text).map_err(|e| e.to_string())?;
    let handles = handles(&listing);
    let mut nft = NftRules::from_json(&listing_text).map_err(|e| e.to_string())?;
    // The oracle's own table is not traced; the iptables tables are
    // traced from iptables-save's model.
    let ipt_tables: Vec<String> = ipt
        .as_ref()
        .map(|r| r.tables.iter().map(|t| t.name.to_string()).collect())
        .unwrap_or_default();
    nft.tables.retain(|t| {
        t.name != "iptviz_oracle"
            && !(matches!(t.family.name(), "ip" | "ip6") && ipt_tables.contains(&t.name))
    });
    // The same rules read from the loaded text (what `iptviz trace FILE.nft`
    // reads) must give the same walk.
    let (model, _) = iptviz::nft::parse::parse_text(&text);
    let from_text = NftRules::from_model(&model).map_err(|e| e.to_string())?;
    let empty = Ruleset::default();
    let rs = ipt.as_ref().unwrap_or(&empty);
    let tracer = Tracer::with_nft(rs, &nft);
    let text_tracer = Tracer::with_nft(rs, &from_text);
    let stateful = stateful_rules(&listing);
    let random = listing_text.contains("\"numgen\"");
    let monitor = Monitor::start(&lab.host)?;
    let hints = hints(&listing, &mut rng);
    let mut pool: Vec<IpAddr> = hints
        .iter()
        .flatten()
        .filter_map(|(f, l)| match (f, l) {
            (Field::Saddr | Field::Daddr, Lit::Addr(a))
                if a.is_ipv6() == (family == Family::V6) && !unusable(*a) =>
            {
                Some(*a)
            }
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    pool.extend(
        match family {
            Family::V4 => ["203.0.113.7", "198.51.100.20", "10.1.2.3", "192.168.1.50"],
            Family::V6 => [
                "2001:db8:77::7",
                "2001:db8:99::20",
                "fd00:1::3",
                "2001:db8:5::5",
            ],
        }
        .iter()
        .map(|a| a.parse::<IpAddr>().unwrap()),
    );
    let mut ports: Vec<u16> = hints
        .iter()
        .flatten()
        .filter_map(|(f, l)| match (f, l) {
            (Field::Dport, Lit::Num(n)) => u16::try_from(*n).ok(),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    ports.extend([22, 80, 443, 53, 8080, 31337]);

    let mut report = Report::default();
    lab.enable_local_output()?;
    let _ = monitor.take();
    let mut handshakes = 0;
    // Conntrack runs only when some rule needs it (else no handshake).
    let tracked = ipt.is_some()
        || if family == Family::V6 {
            nft.conntrack.1
        } else {
            nft.conntrack.0
        };
    let mut delivery = lab.delivery()?;
    let mut check = |lab: &mut Lab,
                     report: &mut Report,
                     kind: &str,
                     p: &TestPacket,
                     (flags, seq, ack): (u8, u32, u32),
                     local: bool,
                     state: CtState,
                     conn: Option<Connection>|
     -> Result<(u64, u64), String> {
        let delivery = &mut delivery;
        if local {
            lab.send_local(p.src, &p.fields(flags, seq, ack))?;
        } else {
            lab.send_wire(p.in_if, &p.fields(flags, seq, ack))?;
        }
        let events = monitor.take();
        let (d, r) = lab.delivery()?;
        let (kd, kr) = (d - delivery.0, r - delivery.1);
        *delivery = (d, r);
        let (seen, replied) = kernel_hits(&events, &handles, p.src);
        // The trace of the same packet.
        let mut pkt = Packet::new(p.proto, p.src, p.dst);
        pkt.sport = p.sport;
        pkt.dport = p.dport;
        pkt.icmp = p.icmp;
        pkt.ttl = p.ttl;
        pkt.tcp_flags = flags;
        pkt.state = state;
        if local {
            pkt.uid = Some(0);
            pkt.gid = Some(0);
        } else {
            pkt.in_iface = Some(lab.ifaces[p.in_if].as_str().into());
        }
        pkt.out_iface = Some(lab.ifaces[p.out_if].as_str().into());
        let mut opts = TraceOptions {
            local: lab.locals.clone(),
            direction: local.then_some(Direction::Out),
            iface_addrs: lab
                .ifaces
                .iter()
                .enumerate()
                .map(|(k, name)| (name.clone(), vec![family.link(k).0]))
                .chain([("lo".to_string(), lab.loopback_addresses())])
                .collect(),
            connection: conn,
            ..Default::default()
        };
        for (f, t, c, i) in &stateful {
            opts.overrides.insert(
                RuleRef {
                    table: format!("{f} {t}"),
                    chain: c.clone(),
                    rule: *i,
                },
                seen.contains_key(&(f.clone(), t.clone(), c.clone(), *i)),
            );
        }
        let fam = if family == Family::V6 { "ip6" } else { "ip" };
        // `numgen random`: the kernel's draw is not known; the trace
        // takes the first value, or the last (both are checked).
        let mut tries = vec![RandomChoice::Take];
        if random {
            tries.push(RandomChoice::Skip);
        }
        let mut best = None;
        for choice in tries {
            opts.random = choice;
            let tr = tracer.trace(&pkt, &opts);
            let ours = matched_rules(&tr, rs, &nft, fam);
            let accepted = tr.verdict == Verdict::Accept;
            let od = u64::from(accepted && tr.route == Route::Local);
            let ol = u64::from(accepted && matches!(tr.route, Route::Forward | Route::Output));
            // The host's answer to a REJECT is its own packet, counted
            // where it goes; the rejected packet is neither delivered
            // nor let out.
            let (kd, kr) = if replied && tr.verdict == Verdict::Reject {
                (0, 0)
            } else {
                (kd, kr)
            };
            let same = ours == seen && od == kd && ol == kr;
            if best.is_none() || same {
                best = Some((tr, ours, od, ol, kd, kr, same, choice));
            }
            if same {
                break;
            }
        }
        let (tr, ours, od, ol, kd, kr, same, choice) = best.expect("traced once");
        opts.random = choice;
        let by_text = matched_rules(&text_tracer.trace(&pkt, &opts), rs, &from_text, fam);
        if by_text != ours {
            report.disagreements.push(format!(
                "{} {family:?} {kind} {pkt}: the rules read from the text walk otherwise than those of the kernel's listing\n    listing: {ours:?}\n    text:    {by_text:?}",
                case.name
            ));
        }
        report.packets += 1;
        *report.kinds.entry(kind.to_string()).or_default() += 1;
        report.outcomes[if kd > 0 {
            0
        } else if kr > 0 {
            1
        } else {
            2
        }] += 1;
        if same {
            report.agree += 1;
            report
                .rules_hit
                .extend(ours.into_keys().filter(|k| k.3 != POLICY));
        } else {
            let show = |m: &BTreeMap<Key, u64>| {
                m.iter()
                    .map(|((f, t, c, i), n)| {
                        let at = if *i == POLICY {
                            "policy".to_string()
                        } else {
                            format!("#{}", i + 1)
                        };
                        let times = if *n > 1 {
                            format!("x{n}")
                        } else {
                            String::new()
                        };
                        format!("{f} {t} {c}{at}{times}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let view = tr.view_nft(rs, &nft);
            report.disagreements.push(format!(
                "{} {family:?} {kind} {pkt}\n    kernel: [{}] delivered={kd} left={kr}\n    trace:  [{}] delivered={od} left={ol}\n{}",
                case.name,
                show(&seen),
                show(&ours),
                iptviz::trace::render_text(&view)
                    .lines()
                    .map(|l| format!("      | {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        Ok((kd, kr))
    };
    for (kind, n) in [("arriving", case.arriving), ("local", case.local)] {
        let local = kind == "local";
        let mut made = 0;
        let mut tries = 0;
        while made < n && tries < n * 20 {
            tries += 1;
            // Half the packets follow one hint, the others two or none.
            let mut h = Hint::new();
            if !hints.is_empty() && !rng.next().is_multiple_of(4) {
                h.extend(rng.pick(&hints).iter().cloned());
                if rng.next().is_multiple_of(3) {
                    h.extend(rng.pick(&hints).iter().cloned());
                }
            }
            let Some(p) = make_packet(&h, family, &lab, &pool, &ports, &mut rng, local) else {
                continue;
            };
            if !local && lab.locals.contains(&p.src) {
                continue;
            }
            made += 1;
            lab.flush_conntrack()?;
            lab.route_via(p.out_if)?;
            let flags = if p.proto == 6 { SYN } else { 0 };
            let state = lone_packet_state(&p);
            let (kd, kr) = check(
                &mut lab,
                &mut report,
                kind,
                &p,
                (flags, 1000, 0),
                local,
                state,
                None,
            )?;
            // The rest of a TCP handshake the kernel let through:
            // ESTABLISHED packets, with the connection's NAT bindings.
            if tracked
                && !local
                && p.proto == 6
                && handshakes < MAX_HANDSHAKES
                && (kd > 0 || kr > 0)
            {
                let Some(conn) = p.kernel_connection(&lab)? else {
                    report.disagreements.push(format!(
                        "{} {family:?}: the kernel let {} -> {}:{} through but has no connection for it",
                        case.name, p.src, p.dst, p.dport
                    ));
                    continue;
                };
                handshakes += 1;
                let forwarded = kr > 0;
                let back = TestPacket {
                    src: conn.reply.src,
                    dst: conn.reply.dst,
                    sport: conn.reply.sport,
                    dport: conn.reply.dport,
                    in_if: p.out_if,
                    out_if: p.in_if,
                    ..p.clone()
                };
                lab.route_via(p.in_if)?;
                let (bd, bl) = check(
                    &mut lab,
                    &mut report,
                    "established",
                    &back,
                    (SYN | ACK, 5000, 1001),
                    !forwarded,
                    CtState::Established,
                    Some(conn),
                )?;
                if !forwarded {
                    lab.clear_source()?;
                }
                // A SYN-ACK the host stopped leaves no connection for the ACK.
                if bd == 0 && bl == 0 {
                    continue;
                }
                lab.route_via(p.out_if)?;
                check(
                    &mut lab,
                    &mut report,
                    "established",
                    &p,
                    (ACK, 1001, 5001),
                    false,
                    CtState::Established,
                    Some(conn),
                )?;
            }
        }
    }
    Ok(report)
}

#[test]
fn nft_trace_agrees_with_kernel() {
    let required = std::env::var("IPTVIZ_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1");
    if let Some(why) = lab::missing_prerequisite(&[
        "ip",
        "nft",
        "stdbuf",
        "iptables-restore",
        "conntrack",
        "python3",
    ]) {
        if required {
            panic!("nft kernel oracle required but cannot run: {why}");
        }
        eprintln!(
            "nft kernel oracle NOT RUN: {why} (set IPTVIZ_REQUIRE_KERNEL_TESTS=1 to fail instead)"
        );
        return;
    }
    assert!(
        corpus().is_dir(),
        "corpus missing at {}",
        corpus().display()
    );
    let only = std::env::var("IPTVIZ_KERNEL_CASE").ok();
    let jobs: Vec<(&Case, Family)> = CASES
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o)))
        .flat_map(|c| c.families.iter().map(move |f| (c, *f)))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Report, String>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((case, family)) = jobs.get(i) else {
                        break;
                    };
                    let r = run_family(case, *family, 0x5eed + i as u64);
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    let (mut packets, mut agree) = (0, 0);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut rulesets = BTreeSet::new();
    for ((case, family), r) in jobs.iter().zip(results.into_inner().unwrap()) {
        match r {
            Some(Ok(r)) => {
                eprintln!(
                    "{} {family:?}: {}/{} packets agree, {} distinct rules hit (kernel: {} delivered, {} out, {} stopped)",
                    case.name,
                    r.agree,
                    r.packets,
                    r.rules_hit.len(),
                    r.outcomes[0],
                    r.outcomes[1],
                    r.outcomes[2]
                );
                packets += r.packets;
                for (k, n) in &r.kinds {
                    *kinds.entry(k.clone()).or_default() += n;
                }
                agree += r.agree;
                if r.packets > 0 {
                    rulesets.insert(case.name);
                }
                problems.extend(r.disagreements);
            }
            Some(Err(e)) => problems.push(format!("{} {family:?}: setup failed: {e}", case.name)),
            None => problems.push(format!("{} {family:?}: not run", case.name)),
        }
    }
    eprintln!(
        "nft kernel oracle: {agree}/{packets} packets agree over {} rulesets, in {:.1} s",
        rulesets.len(),
        started.elapsed().as_secs_f64()
    );
    eprintln!("nft kernel oracle: packets by kind: {kinds:?}");
    for p in &problems {
        eprintln!("DISAGREE {p}");
    }
    assert!(
        problems.is_empty(),
        "{} disagreements (see above)",
        problems.len()
    );
    if only.is_none() {
        for k in ["arriving", "local", "established"] {
            assert!(
                kinds.get(k).is_some_and(|n| *n > 0),
                "no {k} packet was checked"
            );
        }
        assert!(packets >= 600, "only {packets} packets were checked");
        assert!(
            rulesets.len() >= 10,
            "only {} rulesets were checked",
            rulesets.len()
        );
    }
}
