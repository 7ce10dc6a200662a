//! NAT source-port pressure: how many source ports each translated address
//! uses towards one destination, against the ports it may use.
//!
//! After SNAT or MASQUERADE the kernel needs the reply tuple
//! `destination:port -> translated:port` to be unique, so a translated
//! address has at most one connection per source port towards each
//! (destination address, destination port, protocol). Those are the tuples
//! counted here: the entries whose reply goes to the translated address,
//! translated or not (a connection the host opens itself from that address
//! takes a port from the same pool), and the entries that came in from the
//! destination's port to that address.
//!
//! The ports available come from the rule that translated the entries
//! (`--to-ports` of MASQUERADE, `:P-Q` of SNAT `--to-source`) when the rules
//! are given and name a range; otherwise from the kernel's default for a rule
//! without ports (`nf_nat_core`): the original port is kept when that tuple is
//! free, else a port is chosen in the original port's class: 1-511 for ports
//! below 512, 600-1023 for 512-1023, and 1024-65535 for the rest.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::nat::{NatRules, RuleRef};
use super::{Entry, has_ports, proto_name};

/// Ports of one tuple that are in use, above these shares, are marked.
pub const WARN_PERCENT: f64 = 50.0;
/// The second, more urgent mark.
pub const ALERT_PERCENT: f64 = 80.0;

/// How close a tuple is to running out of source ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PressureLevel {
    /// At most 50% in use.
    Ok,
    /// Above 50%.
    Over50,
    /// Above 80%.
    Over80,
    /// Every port in use: new connections to this destination fail.
    Full,
}

impl PressureLevel {
    /// The level of `used` ports out of `size`.
    pub fn of(used: u64, size: u64) -> PressureLevel {
        let p = percent(used, size);
        if size > 0 && used >= size {
            PressureLevel::Full
        } else if p > ALERT_PERCENT {
            PressureLevel::Over80
        } else if p > WARN_PERCENT {
            PressureLevel::Over50
        } else {
            PressureLevel::Ok
        }
    }

    /// A short mark for text output (`""`, `>50%`, `>80%`, `FULL`).
    pub fn mark(self) -> &'static str {
        match self {
            PressureLevel::Ok => "",
            PressureLevel::Over50 => ">50%",
            PressureLevel::Over80 => ">80%",
            PressureLevel::Full => "FULL",
        }
    }
}

fn percent(used: u64, size: u64) -> f64 {
    if size == 0 {
        0.0
    } else {
        used as f64 * 100.0 / size as f64
    }
}

/// Where the port range of a tuple comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RangeFrom {
    /// The translating rule names the ports.
    Rule,
    /// The kernel's default for a rule without ports.
    KernelDefault,
}

/// The kernel's source-port range for SNAT/MASQUERADE without ports, for a
/// connection whose original source port is `port`, and why.
pub fn default_range(port: u16) -> ((u16, u16), &'static str) {
    if port < 512 {
        (
            (1, 511),
            "kernel default without --to-ports: the port is kept when free, else one of 1-511 (clients use ports below 512)",
        )
    } else if port < 1024 {
        (
            (600, 1023),
            "kernel default without --to-ports: the port is kept when free, else one of 600-1023 (clients use ports 512-1023)",
        )
    } else {
        (
            (1024, 65535),
            "kernel default without --to-ports: the port is kept when free, else one of 1024-65535 (clients use ports 1024 and above)",
        )
    }
}

/// One client address and the ports it holds in a tuple.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientUse {
    /// The original source address (a pod, a VM).
    pub client: IpAddr,
    /// Ports of the tuple it holds.
    pub ports: u64,
    /// Share of the tuple's range.
    pub percent: f64,
    /// Share of `--limit-per-dest`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_percent: Option<f64>,
    /// The tuple, as [`TupleUse::label`] prints it.
    pub tuple: String,
}

/// Source ports in use by one translated address towards one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TupleUse {
    /// Protocol name.
    pub proto: String,
    /// The address sources were translated to.
    pub translated: IpAddr,
    /// Destination address (after DNAT: the backend).
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// Distinct source ports of the translated address in use towards it.
    pub ports: u64,
    /// How many of those connections were translated (the rest started
    /// from the translated address itself).
    pub translated_entries: u64,
    /// First and last port of the range.
    pub range: (u16, u16),
    /// Number of ports in the range.
    pub range_size: u64,
    /// Where the range comes from.
    pub range_from: RangeFrom,
    /// Why this range applies, in words.
    pub range_why: String,
    /// `ports` as a share of the range.
    pub percent: f64,
    /// Mark for `percent`.
    pub level: PressureLevel,
    /// `ports` as a share of `--limit-per-dest`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_percent: Option<f64>,
    /// Mark for `limit_percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_level: Option<PressureLevel>,
    /// The destination the clients asked for, when DNAT changed it
    /// (a kube-proxy service VIP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_dst: Option<String>,
    /// The SNAT/MASQUERADE rule that translated the entries, when rules were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
    /// The clients holding most of its ports, most first.
    #[serde(default)]
    pub clients: Vec<ClientUse>,
}

impl TupleUse {
    /// `udp 192.168.49.2 -> 10.96.0.10:53`
    pub fn label(&self) -> String {
        let dst = match self.dst {
            IpAddr::V4(a) => format!("{a}:{}", self.dport),
            IpAddr::V6(a) => format!("[{a}]:{}", self.dport),
        };
        format!("{} {} -> {dst}", self.proto, self.translated)
    }

    /// The larger of the two shares (range, limit).
    pub fn worst_percent(&self) -> f64 {
        self.limit_percent
            .map_or(self.percent, |l| l.max(self.percent))
    }
}

/// What [`pressure`] should compute.
#[derive(Debug, Clone, Copy, Default)]
pub struct PressureOptions {
    /// Tuples (and clients) to keep, most pressed first.
    pub top: usize,
    /// Clients kept per tuple.
    pub clients_per_tuple: usize,
    /// A per-destination port budget (cloud NAT "ports per VM").
    pub limit_per_dest: Option<u64>,
}

/// The port pressure of a table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pressure {
    /// Tuples with translated connections.
    pub tuples_total: u64,
    /// Entries that were source-translated.
    pub translated_entries: u64,
    /// Tuples above 50% of their range or limit.
    pub over_50: u64,
    /// Tuples above 80%.
    pub over_80: u64,
    /// Tuples with every port in use.
    pub full: u64,
    /// `--limit-per-dest`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_per_dest: Option<u64>,
    /// The most pressed tuples, most first.
    pub tuples: Vec<TupleUse>,
    /// The clients holding most ports of one of those tuples, most first.
    pub clients: Vec<ClientUse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    translated: IpAddr,
    dst: IpAddr,
    dport: u16,
}

#[derive(Debug, Clone, Copy, Default)]
struct Group {
    /// First translated entry (for the rule and the original destination).
    first: u32,
    /// Translated entries whose original port is below 512, 512-1023, above.
    classes: [u32; 3],
}

fn class(port: u16) -> usize {
    match port {
        0..512 => 0,
        512..1024 => 1,
        _ => 2,
    }
}

/// A port of the class most translated entries came from.
fn class_port(c: [u32; 3]) -> u16 {
    match (0..3).max_by_key(|&k| (c[k], k)).unwrap_or(2) {
        0 => 1,
        1 => 600,
        _ => 1024,
    }
}

/// Counts the source ports each translated address uses per destination.
///
/// `rules` (the nat table) names the translating rule and its port range;
/// without it the kernel's default range applies.
pub fn pressure(entries: &[Entry], rules: Option<&NatRules>, opt: PressureOptions) -> Pressure {
    let mut groups: FxHashMap<Key, u32> = FxHashMap::default();
    let mut info: Vec<Group> = Vec::new();
    // (group, port, entry) for every connection holding a port of a group.
    let mut uses: Vec<(u32, u16, u32)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if !has_ports(e.proto) || !e.nat().snat {
            continue;
        }
        let key = Key {
            proto: e.proto,
            translated: e.reply.dst,
            dst: e.reply.src,
            dport: e.reply.sport,
        };
        let g = *groups.entry(key).or_insert_with(|| {
            info.push(Group {
                first: i as u32,
                classes: [0; 3],
            });
            info.len() as u32 - 1
        });
        info[g as usize].classes[class(e.orig.sport)] += 1;
        uses.push((g, e.reply.dport, i as u32));
    }
    let translated_entries = uses.len() as u64;
    if !groups.is_empty() {
        // Connections that were not translated but hold a port of the same
        // pool: started from the translated address (reply tuple), or came
        // in from the destination's port (original tuple).
        for e in entries
            .iter()
            .filter(|e| has_ports(e.proto) && !e.nat().snat)
        {
            let from_here = Key {
                proto: e.proto,
                translated: e.reply.dst,
                dst: e.reply.src,
                dport: e.reply.sport,
            };
            if let Some(&g) = groups.get(&from_here) {
                uses.push((g, e.reply.dport, u32::MAX));
                continue;
            }
            let from_there = Key {
                proto: e.proto,
                translated: e.orig.dst,
                dst: e.orig.src,
                dport: e.orig.sport,
            };
            if let Some(&g) = groups.get(&from_there) {
                uses.push((g, e.orig.dport, u32::MAX));
            }
        }
    }
    uses.sort_unstable_by_key(|u| (u.0, u.1));
    // Distinct ports and translated entries per group.
    let mut ports = vec![0u64; info.len()];
    let mut translated = vec![0u64; info.len()];
    let mut starts = vec![0usize; info.len() + 1];
    let mut prev: Option<(u32, u16)> = None;
    for (k, &(g, p, e)) in uses.iter().enumerate() {
        if prev.is_none_or(|x| x.0 != g) {
            starts[g as usize] = k;
        }
        if prev != Some((g, p)) {
            ports[g as usize] += 1;
        }
        translated[g as usize] += (e != u32::MAX) as u64;
        prev = Some((g, p));
    }
    starts[info.len()] = uses.len();

    let mut keys: Vec<(Key, u32)> = groups.into_iter().collect();
    keys.sort_unstable_by_key(|k| k.1);
    let range_of = |g: usize| -> ((u16, u16), RangeFrom, String, Option<RuleRef>) {
        let first = &entries[info[g].first as usize];
        let rule = rules.and_then(|r| r.find(first).1.map(|i| &r.rules[i]));
        if let Some(r) = rule
            && let Some((lo, hi)) = r.port_range()
        {
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let why = format!(
                "{} rule {} #{} (line {}) translates to ports {lo}-{hi}",
                r.rule.target, r.rule.chain, r.rule.index, r.rule.line
            );
            return ((lo, hi), RangeFrom::Rule, why, Some(r.rule.clone()));
        }
        // The class most translated entries came from.
        let (range, why) = default_range(class_port(info[g].classes));
        let why = match rule {
            Some(r) => format!(
                "{} rule {} #{} (line {}) names no ports: {why}",
                r.rule.target, r.rule.chain, r.rule.index, r.rule.line
            ),
            None => why.to_string(),
        };
        (
            range,
            RangeFrom::KernelDefault,
            why,
            rule.map(|r| r.rule.clone()),
        )
    };

    let level_of = |used: u64, size: u64| PressureLevel::of(used, size);
    // Pick the top groups first: only those get rules, clients and text.
    let mut order: Vec<(f64, u64, usize)> = Vec::with_capacity(keys.len());
    let (mut over_50, mut over_80, mut full) = (0, 0, 0);
    for (_, g) in &keys {
        let g = *g as usize;
        // Without rules the range depends only on the class; with rules it
        // needs the rule, so the share is computed for every group either way.
        let size = match rules {
            Some(_) => {
                let ((lo, hi), ..) = range_of(g);
                hi as u64 - lo as u64 + 1
            }
            None => {
                let ((lo, hi), _) = default_range(class_port(info[g].classes));
                hi as u64 - lo as u64 + 1
            }
        };
        let mut worst = percent(ports[g], size);
        let mut level = level_of(ports[g], size);
        if let Some(l) = opt.limit_per_dest {
            worst = worst.max(percent(ports[g], l));
            level = level.max(level_of(ports[g], l));
        }
        match level {
            PressureLevel::Full => full += 1,
            PressureLevel::Over80 => over_80 += 1,
            PressureLevel::Over50 => over_50 += 1,
            PressureLevel::Ok => {}
        }
        order.push((worst, ports[g], g));
    }
    // Most pressed first; ties by more ports, then by group (input order).
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut tuples = Vec::new();
    let mut clients = Vec::new();
    for &(_, used, g) in order.iter().take(opt.top) {
        let key = keys[g].0;
        let (range, range_from, range_why, rule) = range_of(g);
        let range_size = range.1 as u64 - range.0 as u64 + 1;
        let first = &entries[info[g].first as usize];
        let mut t = TupleUse {
            proto: proto_name(key.proto).to_string(),
            translated: key.translated,
            dst: key.dst,
            dport: key.dport,
            ports: used,
            translated_entries: translated[g],
            range,
            range_size,
            range_from,
            range_why,
            percent: percent(used, range_size),
            level: level_of(used, range_size),
            limit_percent: opt.limit_per_dest.map(|l| percent(used, l)),
            limit_level: opt.limit_per_dest.map(|l| level_of(used, l)),
            original_dst: first
                .nat()
                .dnat
                .then(|| first.endpoint(first.orig.dst, first.orig.dport)),
            rule,
            clients: Vec::new(),
        };
        // Clients of this group: their translated entries, counted.
        let mut addrs: Vec<IpAddr> = uses[starts[g]..starts[g + 1]]
            .iter()
            .filter(|u| u.2 != u32::MAX)
            .map(|u| entries[u.2 as usize].orig.src)
            .collect();
        addrs.sort_unstable();
        let label = t.label();
        let mut per: Vec<ClientUse> = addrs
            .chunk_by(|a, b| a == b)
            .map(|run| ClientUse {
                client: run[0],
                ports: run.len() as u64,
                percent: percent(run.len() as u64, range_size),
                limit_percent: opt.limit_per_dest.map(|l| percent(run.len() as u64, l)),
                tuple: label.clone(),
            })
            .collect();
        per.sort_by(|a, b| b.ports.cmp(&a.ports).then(a.client.cmp(&b.client)));
        clients.extend(per.iter().take(opt.top).cloned());
        per.truncate(opt.clients_per_tuple);
        t.clients = per;
        tuples.push(t);
    }
    clients.sort_by(|a, b| {
        b.ports
            .cmp(&a.ports)
            .then(a.client.cmp(&b.client))
            .then(a.tuple.cmp(&b.tuple))
    });
    // One line per client: its busiest tuple.
    let mut seen = rustc_hash::FxHashSet::default();
    clients.retain(|c| seen.insert(c.client));
    clients.truncate(opt.top);
    Pressure {
        tuples_total: keys.len() as u64,
        translated_entries,
        over_50,
        over_80,
        full,
        limit_per_dest: opt.limit_per_dest,
        tuples,
        clients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::parse_entries;

    fn line(client: &str, sport: u16, dst: &str, dport: u16, xport: u16) -> String {
        format!(
            "ipv4 2 udp 17 30 src={client} dst={dst} sport={sport} dport={dport} src={dst} dst=192.0.2.1 sport={dport} dport={xport} mark=0 zone=0 use=2\n"
        )
    }

    #[test]
    fn default_range_follows_the_original_port_class() {
        assert_eq!(default_range(80).0, (1, 511));
        assert_eq!(default_range(700).0, (600, 1023));
        assert_eq!(default_range(40000).0, (1024, 65535));
    }

    #[test]
    fn counts_ports_per_translated_address_and_destination() {
        let mut text = String::new();
        for p in 0..6 {
            text.push_str(&line("10.0.0.2", 40000 + p, "198.51.100.7", 443, 20000 + p));
        }
        for p in 0..3 {
            text.push_str(&line("10.0.0.3", 40000 + p, "198.51.100.7", 443, 20010 + p));
        }
        text.push_str(&line("10.0.0.3", 40000, "198.51.100.8", 53, 20000));
        // Not translated: the host's own connection from the same address
        // holds a port of the same pool.
        text.push_str("ipv4 2 udp 17 30 src=192.0.2.1 dst=198.51.100.7 sport=30000 dport=443 src=198.51.100.7 dst=192.0.2.1 sport=443 dport=30000 mark=0 zone=0 use=2\n");
        let t = parse_entries(text.as_bytes(), "t");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        let p = pressure(
            &t.entries,
            None,
            PressureOptions {
                top: 10,
                clients_per_tuple: 3,
                limit_per_dest: Some(16),
            },
        );
        assert_eq!(p.tuples_total, 2);
        assert_eq!(p.translated_entries, 10);
        let top = &p.tuples[0];
        assert_eq!(top.label(), "udp 192.0.2.1 -> 198.51.100.7:443");
        assert_eq!((top.ports, top.translated_entries), (10, 9));
        assert_eq!(top.range, (1024, 65535));
        assert_eq!(top.range_from, RangeFrom::KernelDefault);
        assert_eq!(top.limit_percent, Some(62.5));
        assert_eq!(top.limit_level, Some(PressureLevel::Over50));
        assert_eq!(top.level, PressureLevel::Ok);
        assert_eq!(top.clients[0].client.to_string(), "10.0.0.2");
        assert_eq!(top.clients[0].ports, 6);
        assert_eq!(p.clients[0].client.to_string(), "10.0.0.2");
        assert_eq!(p.over_50, 1);
    }

    #[test]
    fn levels() {
        assert_eq!(PressureLevel::of(5, 10), PressureLevel::Ok);
        assert_eq!(PressureLevel::of(6, 10), PressureLevel::Over50);
        assert_eq!(PressureLevel::of(9, 10), PressureLevel::Over80);
        assert_eq!(PressureLevel::of(10, 10), PressureLevel::Full);
    }
}
