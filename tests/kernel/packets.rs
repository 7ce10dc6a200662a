//! Test packets made from a ruleset's own protocols, addresses, ports and
//! interfaces, spread over the whole ruleset, so that most rules are met by
//! some packet that matches them and some that nearly does.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use iptviz::model::{Negatable, Rule, Ruleset};

use super::lab::Family;

/// One test packet and the interfaces it uses.
#[derive(Debug, Clone)]
pub struct TestPacket {
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub icmp: (u8, u8),
    /// Interface it arrives on (arriving packets).
    pub in_if: usize,
    /// Interface the host routes it out of when it is not for the host.
    pub out_if: usize,
    /// TTL or hop limit.
    pub ttl: u8,
    /// User owning the socket of a packet the host sends.
    pub uid: u32,
}

impl TestPacket {
    /// The kernel's conntrack entry of the connection this packet started
    /// in `lab`, if any.
    #[allow(dead_code)] // kernel_trace and kernel_nft_trace
    pub fn kernel_connection(
        &self,
        lab: &super::lab::Lab,
    ) -> Result<Option<iptviz::trace::Connection>, String> {
        let text = lab.conntrack()?;
        let entries = match iptviz::conntrack::parse_bytes(text.as_bytes(), "conntrack -L") {
            Ok(iptviz::conntrack::Parsed::Entries(t)) => t.entries,
            _ => Vec::new(),
        };
        Ok(entries
            .iter()
            .find(|e| {
                e.proto == self.proto
                    && e.orig.src == self.src
                    && e.orig.dst == self.dst
                    && e.orig.sport == self.sport
                    && e.orig.dport == self.dport
            })
            .map(iptviz::trace::Connection::from_entry))
    }

    /// The sender's fields from PROTO on (see tests/kernel/sender.py).
    pub fn fields(&self, flags: u8, seq: u32, ack: u32) -> String {
        format!(
            "{} {} {} {} {} {} {} {flags} {seq} {ack} {} {}",
            self.proto,
            self.src,
            self.dst,
            self.sport,
            self.dport,
            self.icmp.0,
            self.icmp.1,
            self.ttl,
            self.uid
        )
    }
}

/// Interface names the rules use, most used first, as real names
/// (`eth+` becomes `eth0`); `lo` and names the kernel refuses are left out.
pub fn interface_names(rs: &Ruleset) -> Vec<String> {
    let mut count: HashMap<String, usize> = HashMap::new();
    for r in all_rules(rs) {
        for i in [r.in_iface(), r.out_iface()].into_iter().flatten() {
            let name = match i.value.strip_suffix('+') {
                Some("") => continue,
                Some(p) => format!("{p}0"),
                None => i.value.to_string(),
            };
            if name != "lo" && name.len() <= 15 && !name.contains('/') {
                *count.entry(name).or_default() += 1;
            }
        }
    }
    let mut v: Vec<(String, usize)> = count.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut names: Vec<String> = v.into_iter().map(|(n, _)| n).take(8).collect();
    for extra in ["eth0", "eth1"] {
        if names.len() < 2 && !names.iter().any(|n| n == extra) {
            names.push(extra.into());
        }
    }
    names
}

fn all_rules(rs: &Ruleset) -> impl Iterator<Item = &Rule> {
    rs.tables
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
}

/// Rules of the chains reachable from the built-in chains of `hooks`, in
/// every table, in file order.
pub fn reachable_rules<'r>(rs: &'r Ruleset, hooks: &[&str]) -> Vec<&'r Rule> {
    let mut out = Vec::new();
    for t in &rs.tables {
        let mut seen: HashSet<usize> = HashSet::new();
        let mut todo: Vec<usize> = hooks.iter().filter_map(|h| t.chain_position(h)).collect();
        while let Some(c) = todo.pop() {
            if !seen.insert(c) {
                continue;
            }
            for r in &t.chains[c].rules {
                if let Some(next) = r.target().and_then(|tg| t.chain_position(tg.name)) {
                    todo.push(next);
                }
            }
        }
        for (i, c) in t.chains.iter().enumerate() {
            if seen.contains(&i) {
                out.extend(c.rules.iter());
            }
        }
    }
    out
}

/// Addresses a test packet must not carry: ours, loopback, multicast ...
pub fn unusable(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => {
            let o = a.octets();
            o[0] == 0
                || o[0] == 127
                || o[0] >= 224
                || (o[0] == 100 && (64..=67).contains(&o[1]))
                || o[3] == 255
                || o[3] == 0
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || s[0] == 0xfd64
                || s[0] == 0xfd66
                || a.to_ipv4_mapped().is_some()
        }
    }
}

/// A link-local IPv6 address: fine as a source, but not a destination a
/// peer could send to through this host.
fn link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

/// A tiny deterministic generator (no dependency needed).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.next() as usize % v.len()]
    }
}

fn net_of(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// The `n`th address of `net` (wrapping inside it).
fn nth(net: &ipnet::IpNet, n: u64) -> IpAddr {
    match net {
        ipnet::IpNet::V4(v) => {
            let base = u32::from(v.network()) as u64;
            Ipv4Addr::from((base + n) as u32).into()
        }
        ipnet::IpNet::V6(v) => {
            let base = u128::from(v.network());
            Ipv6Addr::from(base.wrapping_add(n as u128)).into()
        }
    }
}

/// An address inside `spec` (not when negated), else one from the pool.
/// A host address in the net is taken half of the time.
fn address_for(
    spec: Option<Negatable<&str>>,
    pool: &[IpAddr],
    hosts: &[IpAddr],
    rng: &mut Lcg,
) -> IpAddr {
    if let Some(n) = spec
        && !n.negated
        && let Some(net) = net_of(n.value)
    {
        let inside: Vec<IpAddr> = hosts.iter().copied().filter(|h| net.contains(h)).collect();
        if !inside.is_empty() && rng.next().is_multiple_of(2) {
            return *rng.pick(&inside);
        }
        let host_bits = net.max_prefix_len() - net.prefix_len();
        let size = if host_bits >= 64 {
            u64::MAX
        } else {
            1u64 << host_bits
        };
        for _ in 0..8 {
            let off = if size <= 2 {
                0
            } else {
                1 + rng.next() % (size - 2).min(250)
            };
            let a = nth(&net, off);
            if !unusable(a) {
                return a;
            }
        }
    }
    *rng.pick(pool)
}

fn first_port(r: &Rule, names: &[&str]) -> Option<u16> {
    r.matches()
        .flat_map(|m| m.opts.iter())
        .find(|o| !o.negated && names.contains(&o.name))
        .and_then(|o| o.arg().split([',', ':']).next()?.parse().ok())
}

const DPORT: &[&str] = &["--dport", "--dports", "--destination-port"];
const SPORT: &[&str] = &["--sport", "--sports", "--source-port"];

/// Host addresses the rules name, plus a few of our own.
fn address_pool(rs: &Ruleset, family: Family) -> Vec<IpAddr> {
    let mut pool: Vec<IpAddr> = all_rules(rs)
        .flat_map(|r| [r.source(), r.destination()])
        .flatten()
        .filter_map(|n| n.value.split('/').next()?.parse::<IpAddr>().ok())
        .filter(|a| a.is_ipv6() == (family == Family::V6) && !unusable(*a))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let extra: &[&str] = match family {
        Family::V4 => &["203.0.113.7", "198.51.100.20", "10.1.2.3", "192.168.1.50"],
        Family::V6 => &["2001:db8:77::7", "2001:db8:99::20", "fd00:1::3", "fe80::5"],
    };
    pool.extend(extra.iter().map(|a| a.parse::<IpAddr>().unwrap()));
    pool
}

/// Addresses the host should own so that the rules' own `-d` (or `-s`)
/// nets point at it: one per net, at most `max`.
pub fn host_addresses(rules: &[&Rule], family: Family, source: bool, max: usize) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for r in rules {
        let spec = if source { r.source() } else { r.destination() };
        let Some(net) = spec.filter(|n| !n.negated).and_then(|n| net_of(n.value)) else {
            continue;
        };
        let a = if net.prefix_len() == net.max_prefix_len() {
            net.addr()
        } else {
            nth(&net, 1)
        };
        if a.is_ipv6() == (family == Family::V6)
            && !unusable(a)
            && !link_local(a)
            && net.prefix_len() > 0
            && !out.iter().any(|o| net.contains(o))
        {
            out.push(a);
            if out.len() >= max {
                break;
            }
        }
    }
    out
}

/// The addresses DNAT rules send packets to.
pub fn dnat_targets(rs: &Ruleset) -> Vec<IpAddr> {
    all_rules(rs)
        .filter_map(|r| r.target())
        .filter(|t| t.name == "DNAT")
        .filter_map(|t| t.opt("--to-destination"))
        .filter_map(|o| {
            let a = o.arg();
            let host = match a.strip_prefix('[') {
                Some(v6) => v6.split(']').next()?,
                None if a.matches(':').count() > 1 => a,
                None => a.split(':').next()?,
            };
            host.split('-').next()?.parse().ok()
        })
        .collect()
}

/// Protocol number for a rule's `-p`, or a random pick; `None` for
/// protocols the sender does not build.
fn protocol(r: &Rule, family: Family, rng: &mut Lcg) -> Option<u8> {
    let icmp = if family == Family::V6 { 58 } else { 1 };
    match r.protocol().filter(|p| !p.negated).map(|p| p.value) {
        Some("tcp") | Some("6") => Some(6),
        Some("udp") | Some("17") => Some(17),
        Some("icmp") if family == Family::V4 => Some(1),
        Some("ipv6-icmp" | "icmpv6" | "icmp6" | "58") if family == Family::V6 => Some(58),
        Some(_) => None,
        None => Some(*rng.pick(&[6u8, 17, icmp])),
    }
}

fn icmp_type(r: &Rule, family: Family) -> (u8, u8) {
    let option = if family == Family::V6 {
        "--icmpv6-type"
    } else {
        "--icmp-type"
    };
    r.matches()
        .find_map(|m| m.opt(option))
        .filter(|o| !o.negated)
        .and_then(|o| iptviz::trace::parse_icmp_type(o.arg()))
        .map(|(t, c)| (t, c.unwrap_or(0)))
        .unwrap_or(if family == Family::V6 {
            (128, 0)
        } else {
            (8, 0)
        })
}

/// The user the host's own packets are sent as, unless a rule asks for one.
pub const SENDER_UID: u32 = 4242;

/// The user an owner rule names with `--uid-owner`, when `take`.
fn uid(r: &Rule, take: bool) -> u32 {
    r.matches()
        .flat_map(|m| m.opts.iter())
        .find(|o| take && !o.negated && o.name == "--uid-owner")
        .and_then(|o| o.arg().split('-').next()?.parse().ok())
        .unwrap_or(SENDER_UID)
}

/// The TTL (hop limit) a rule asks for with `--ttl-eq` or `--hl-eq` when
/// `take`, else 64 (the usual value, which such rules are written to miss).
fn ttl(r: &Rule, take: bool) -> u8 {
    r.matches()
        .flat_map(|m| m.opts.iter())
        .find(|o| take && !o.negated && matches!(o.name, "--ttl-eq" | "--hl-eq"))
        .and_then(|o| o.arg().parse().ok())
        .unwrap_or(64)
}

fn iface_index(ifaces: &[String], r: Option<Negatable<&str>>) -> Option<usize> {
    r.filter(|n| !n.negated).and_then(|n| {
        let want = match n.value.strip_suffix('+') {
            Some(p) => format!("{p}0"),
            None => n.value.to_string(),
        };
        ifaces.iter().position(|i| *i == want)
    })
}

/// Packets arriving from the peer: for the host or to be forwarded.
pub fn arriving(
    rs: &Ruleset,
    family: Family,
    ifaces: &[String],
    locals: &[IpAddr],
    max: usize,
) -> Vec<TestPacket> {
    let rules: Vec<&Rule> = all_rules(rs).collect();
    let pool = address_pool(rs, family);
    let ports: Vec<u16> = rules
        .iter()
        .filter_map(|r| first_port(r, DPORT))
        .chain([22, 53, 80, 443, 12345])
        .collect();
    let mut rng = Lcg(0x1f2e3d4c);
    let mut out = Vec::new();
    let step = (rules.len() / max.max(1)).max(1);
    let mut i = 0;
    while out.len() < max && i < rules.len() * 2 {
        let r = rules[(i * step + i / rules.len()) % rules.len()];
        i += 1;
        let Some(proto) = protocol(r, family, &mut rng) else {
            continue;
        };
        let src = address_for(r.source(), &pool, &[], &mut rng);
        let dst = if r.destination().is_none() && rng.next().is_multiple_of(2) {
            *rng.pick(locals)
        } else {
            address_for(r.destination(), &pool, locals, &mut rng)
        };
        if src == dst || locals.contains(&src) || link_local(dst) {
            continue;
        }
        let dport = first_port(r, DPORT).unwrap_or_else(|| *rng.pick(&ports));
        let sport = first_port(r, SPORT).unwrap_or(1024 + (rng.next() % 60000) as u16);
        let icmp = icmp_type(r, family);
        let in_if =
            iface_index(ifaces, r.in_iface()).unwrap_or_else(|| rng.next() as usize % ifaces.len());
        let mut out_if = iface_index(ifaces, r.out_iface())
            .unwrap_or_else(|| rng.next() as usize % ifaces.len());
        if out_if == in_if {
            out_if = (in_if + 1) % ifaces.len();
        }
        let ports = !matches!(proto, 1 | 58);
        out.push(TestPacket {
            proto,
            src,
            dst,
            sport: if ports { sport } else { 0 },
            dport: if ports { dport } else { 0 },
            icmp,
            in_if,
            out_if,
            // Now and then one whose TTL runs out here.
            ttl: if out.len() % 10 == 9 {
                1
            } else {
                ttl(r, out.len() % 2 == 0)
            },
            uid: SENDER_UID,
        });
    }
    out
}

/// Packets the host sends itself: from one of its addresses that no DNAT
/// rule sends to (one a rule names when it names one), to others or to
/// itself. Rules of the chains that OUTPUT and POSTROUTING reach come
/// first, every other rule second.
pub fn local(
    rs: &Ruleset,
    family: Family,
    ifaces: &[String],
    locals: &[IpAddr],
    max: usize,
) -> Vec<TestPacket> {
    let targets = dnat_targets(rs);
    let sources: Vec<IpAddr> = locals
        .iter()
        .copied()
        .filter(|a| !targets.contains(a))
        .collect();
    let out_rules = reachable_rules(rs, &["OUTPUT", "POSTROUTING"]);
    let rules: Vec<&Rule> = all_rules(rs).collect();
    let pool = address_pool(rs, family);
    let ports: Vec<u16> = rules
        .iter()
        .filter_map(|r| first_port(r, DPORT))
        .chain([22, 53, 80, 443, 12345])
        .collect();
    let mut rng = Lcg(0x5eed0u64);
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < max && i < 4 * max {
        let r = if i % 2 == 0 && !out_rules.is_empty() {
            out_rules[(i / 2 * 7 + i / 5) % out_rules.len()]
        } else {
            rules[(i * 13 + i / 3) % rules.len()]
        };
        i += 1;
        let Some(proto) = protocol(r, family, &mut rng) else {
            continue;
        };
        let src = match r
            .source()
            .filter(|s| !s.negated)
            .and_then(|s| net_of(s.value))
        {
            Some(net) => match sources.iter().find(|l| net.contains(*l)) {
                Some(l) => *l,
                None => continue,
            },
            None => *rng.pick(&sources),
        };
        let dst = if r.destination().is_none() && rng.next().is_multiple_of(3) {
            *rng.pick(locals)
        } else {
            address_for(r.destination(), &pool, locals, &mut rng)
        };
        if src == dst || link_local(dst) || link_local(src) {
            continue;
        }
        let dport = first_port(r, DPORT).unwrap_or_else(|| *rng.pick(&ports));
        let sport = first_port(r, SPORT).unwrap_or(1024 + (rng.next() % 60000) as u16);
        let out_if = iface_index(ifaces, r.out_iface())
            .unwrap_or_else(|| rng.next() as usize % ifaces.len());
        let ports = !matches!(proto, 1 | 58);
        out.push(TestPacket {
            proto,
            src,
            dst,
            sport: if ports { sport } else { 0 },
            dport: if ports { dport } else { 0 },
            icmp: icmp_type(r, family),
            in_if: out_if,
            out_if,
            ttl: ttl(r, out.len() % 2 == 0),
            uid: uid(r, out.len() % 2 == 0),
        });
    }
    out
}
