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

/// One tuple: a translated address towards a destination port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    proto: u8,
    translated: IpAddr,
    dst: IpAddr,
    dport: u16,
}

impl Key {
    /// The tuple an entry holds a port of through its reply direction
    /// (translated, or started from the translated address itself).
    fn reply(e: &Entry) -> Key {
        Key {
            proto: e.proto,
            translated: e.reply.dst,
            dst: e.reply.src,
            dport: e.reply.sport,
        }
    }

    /// The tuple an entry that came in from the destination's port holds.
    fn orig(e: &Entry) -> Key {
        Key {
            proto: e.proto,
            translated: e.orig.dst,
            dst: e.orig.src,
            dport: e.orig.sport,
        }
    }

    /// A 64-bit hash; equal hashes are checked against the keys, so a
    /// collision costs time, never a wrong count.
    fn hash(&self) -> u64 {
        fn mix(mut x: u64) -> u64 {
            x ^= x >> 30;
            x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x ^= x >> 27;
            x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        }
        fn bits(a: IpAddr) -> u128 {
            match a {
                IpAddr::V4(a) => u32::from(a) as u128,
                IpAddr::V6(a) => u128::from(a) ^ (1 << 127),
            }
        }
        let (t, d) = (bits(self.translated), bits(self.dst));
        let mut h = (self.proto as u64) << 16 | self.dport as u64;
        for w in [t as u64, (t >> 64) as u64, d as u64, (d >> 64) as u64] {
            h = mix(h ^ w).wrapping_add(0x9e37_79b9_7f4a_7c15);
        }
        h
    }
}

/// How a connection holds a port of a tuple.
const TRANSLATED: u64 = 0;
/// Not translated, started from the translated address.
const FROM_HERE: u64 = 1;
/// Not translated, came in from the destination's port.
const FROM_THERE: u64 = 2;

/// One connection holding a port of a tuple, packed into one number so that
/// sorting the numbers puts each tuple's connections together in port
/// order: key hash (bits 64-127), port (48-63), how it holds the port
/// (46-47), the class of its original port (44-45), the translating rule
/// plus one when known (32-43) and the entry (0-31).
fn pack(hash: u64, port: u16, how: u64, class: usize, rule: u16, entry: usize) -> u128 {
    (hash as u128) << 64
        | (port as u128) << 48
        | (how as u128) << 46
        | (class as u128) << 44
        | ((rule & RULE_BITS) as u128) << 32
        | entry as u32 as u128
}

/// Room for the rule in a use.
const RULE_BITS: u16 = 0xfff;

fn hash_of(u: u128) -> u64 {
    (u >> 64) as u64
}

fn port_of(u: u128) -> u16 {
    (u >> 48) as u16
}

fn how_of(u: u128) -> u64 {
    (u >> 46) as u64 & 3
}

fn class_of(u: u128) -> usize {
    (u >> 44) as usize & 3
}

fn rule_of_use(u: u128) -> u16 {
    (u >> 32) as u16 & RULE_BITS
}

fn entry_of(u: u128) -> usize {
    u as u32 as usize
}

fn key_of(entries: &[Entry], u: u128) -> Key {
    let e = &entries[entry_of(u)];
    if how_of(u) == FROM_THERE {
        Key::orig(e)
    } else {
        Key::reply(e)
    }
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

/// A tuple in the running for the top list. Smaller is more pressed:
/// higher share, then more ports, then the tuple seen first in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    /// The share as f64 bits (shares are never negative, so the bits sort
    /// like the numbers), inverted.
    worst: std::cmp::Reverse<u64>,
    ports: std::cmp::Reverse<u64>,
    /// The tuple's first translated entry.
    first: u32,
    /// Its connections: `uses[start..end]`.
    start: u32,
    end: u32,
    classes: [u32; 3],
    translated: u64,
}

/// Counts the source ports each translated address uses per destination.
///
/// `rules` (the nat table) names the translating rule and its port range;
/// without it the kernel's default range applies.
pub fn pressure(entries: &[Entry], rules: Option<&NatRules>, opt: PressureOptions) -> Pressure {
    pressure_where(entries, |_| true, rules, opt)
}

/// [`pressure`] over the entries `keep` accepts, without copying them.
pub fn pressure_where(
    entries: &[Entry],
    keep: impl Fn(&Entry) -> bool,
    rules: Option<&NatRules>,
    opt: PressureOptions,
) -> Pressure {
    pressure_hashed(entries, keep, rules, opt, Key::hash)
}

/// The work of [`pressure`], with the key hash given (tests use a bad one
/// to check that collisions change nothing).
///
/// Memory: one 16-byte number per connection holding a translated port,
/// 12 bytes per tuple and a bit filter; no map keyed by addresses. Time:
/// two passes over the table, a sort of those numbers, one rule lookup per
/// tuple.
fn pressure_hashed(
    entries: &[Entry],
    keep: impl Fn(&Entry) -> bool,
    rules: Option<&NatRules>,
    opt: PressureOptions,
    hash: impl Fn(&Key) -> u64,
) -> Pressure {
    // Entries are numbered in 32 bits; a table of 4 billion entries
    // (600 GB parsed) is not a case to plan for, but must not panic.
    let entries = &entries[..entries.len().min(u32::MAX as usize)];
    let snat_rules = rules.map(|r| (r, r.snat_indices()));
    let rule_of = |first: usize| -> Option<usize> {
        let (r, among) = snat_rules.as_ref()?;
        r.best_snat_among(&entries[first], among)
    };
    // Without a rule that names ports, the range is the kernel's whatever
    // rule matched: the rule is then looked up for the top tuples only.
    let ranges_in_rules = snat_rules
        .as_ref()
        .is_some_and(|(r, among)| among.iter().any(|&i| r.rules[i].port_range().is_some()));
    // Else the rule is found while the table is read in order (a lookup per
    // tuple later would jump around the table), when its number fits.
    let rule_in_use = ranges_in_rules && rules.is_some_and(|r| r.rules.len() < RULE_BITS as usize);
    let mut uses: Vec<u128> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if has_ports(e.proto) && e.nat().snat && keep(e) {
            let k = Key::reply(e);
            let rule = if rule_in_use {
                rule_of(i).map_or(0, |r| r as u16 + 1)
            } else {
                0
            };
            uses.push(pack(
                hash(&k),
                e.reply.dport,
                TRANSLATED,
                class(e.orig.sport),
                rule,
                i,
            ));
        }
    }
    let translated_entries = uses.len() as u64;
    uses.sort_unstable();

    // One representative entry per tuple, by hash; tuples whose hashes
    // collide each get one.
    let mut rep_hash: Vec<u64> = Vec::new();
    let mut rep_entry: Vec<u32> = Vec::new();
    let mut collided = false;
    for run in uses.chunk_by(|a, b| hash_of(*a) == hash_of(*b)) {
        let h = hash_of(run[0]);
        // Most tuples hold one connection: nothing to compare.
        if run.len() == 1 || {
            let k0 = key_of(entries, run[0]);
            run[1..].iter().all(|&u| key_of(entries, u) == k0)
        } {
            rep_hash.push(h);
            rep_entry.push(entry_of(run[0]) as u32);
        } else {
            collided = true;
            let mut keys: Vec<(Key, u32)> = run
                .iter()
                .map(|&u| (key_of(entries, u), entry_of(u) as u32))
                .collect();
            keys.sort_unstable();
            keys.dedup_by_key(|k| k.0);
            for (_, e) in keys {
                rep_hash.push(h);
                rep_entry.push(e);
            }
        }
    }
    let tuples_total = rep_hash.len() as u64;

    // Connections that were not translated but hold a port of the same
    // pool: started from the translated address (reply tuple), or came in
    // from the destination's port (original tuple). A bit filter over the
    // hashes answers most lookups without touching the tuples.
    if !rep_hash.is_empty() {
        let bits = (rep_hash.len() * 16).next_power_of_two().max(64);
        let shift = 64 - bits.trailing_zeros();
        let mut filter = vec![0u64; bits / 64];
        for &h in &rep_hash {
            let b = (h >> shift) as usize;
            filter[b / 64] |= 1 << (b % 64);
        }
        let known = |k: &Key, h: u64| {
            let b = (h >> shift) as usize;
            if filter[b / 64] >> (b % 64) & 1 == 0 {
                return false;
            }
            let at = rep_hash.partition_point(|&x| x < h);
            rep_hash[at..]
                .iter()
                .zip(&rep_entry[at..])
                .take_while(|(x, _)| **x == h)
                .any(|(_, &e)| Key::reply(&entries[e as usize]) == *k)
        };
        let before = uses.len();
        for (i, e) in entries.iter().enumerate() {
            if !has_ports(e.proto) || e.nat().snat || !keep(e) {
                continue;
            }
            let here = Key::reply(e);
            let h = hash(&here);
            if known(&here, h) {
                uses.push(pack(h, e.reply.dport, FROM_HERE, 0, 0, i));
                continue;
            }
            let there = Key::orig(e);
            let h = hash(&there);
            if known(&there, h) {
                uses.push(pack(h, e.orig.dport, FROM_THERE, 0, 0, i));
            }
        }
        if uses.len() > before {
            uses.sort_unstable();
        }
    }
    drop(rep_entry);
    // Where hashes collide, the tuples sharing one are put apart.
    if collided {
        for run in uses.chunk_by_mut(|a, b| hash_of(*a) == hash_of(*b)) {
            let n = rep_hash.binary_search(&hash_of(run[0])).map_or(0, |at| {
                let lo = rep_hash.partition_point(|&x| x < rep_hash[at]);
                rep_hash[lo..]
                    .iter()
                    .take_while(|&&x| x == rep_hash[at])
                    .count()
            });
            if n > 1 {
                run.sort_by_cached_key(|&u| (key_of(entries, u), u));
            }
        }
    }
    drop(rep_hash);

    let size_of = |first: usize, first_rule: u16, classes: [u32; 3]| -> u64 {
        let rule = if rule_in_use {
            first_rule.checked_sub(1).map(usize::from)
        } else if ranges_in_rules {
            rule_of(first)
        } else {
            None
        };
        let (lo, hi) = rule
            .and_then(|i| snat_rules.as_ref()?.0.rules[i].port_range())
            .unwrap_or_else(|| default_range(class_port(classes)).0);
        lo.abs_diff(hi) as u64 + 1
    };

    let (mut over_50, mut over_80, mut full) = (0, 0, 0);
    let mut top: std::collections::BinaryHeap<Candidate> =
        std::collections::BinaryHeap::with_capacity(opt.top.saturating_add(1).min(4096));
    let mut visit = |start: usize, end: usize| {
        let (mut ports, mut translated) = (0u64, 0u64);
        let mut classes = [0u32; 3];
        let mut first = u32::MAX;
        let mut first_rule = 0;
        let mut prev = None;
        for &u in &uses[start..end] {
            let p = port_of(u);
            if prev != Some(p) {
                ports += 1;
                prev = Some(p);
            }
            if how_of(u) == TRANSLATED {
                translated += 1;
                classes[class_of(u)] += 1;
                if (entry_of(u) as u32) < first {
                    first = entry_of(u) as u32;
                    first_rule = rule_of_use(u);
                }
            }
        }
        let size = size_of(first as usize, first_rule, classes);
        let mut worst = percent(ports, size);
        let mut level = PressureLevel::of(ports, size);
        if let Some(l) = opt.limit_per_dest {
            worst = worst.max(percent(ports, l));
            level = level.max(PressureLevel::of(ports, l));
        }
        match level {
            PressureLevel::Full => full += 1,
            PressureLevel::Over80 => over_80 += 1,
            PressureLevel::Over50 => over_50 += 1,
            PressureLevel::Ok => {}
        }
        let c = Candidate {
            worst: std::cmp::Reverse(worst.to_bits()),
            ports: std::cmp::Reverse(ports),
            first,
            start: start as u32,
            end: end as u32,
            classes,
            translated,
        };
        if top.len() < opt.top {
            top.push(c);
        } else if top.peek().is_some_and(|w| c < *w) {
            top.pop();
            top.push(c);
        }
    };
    let mut start = 0;
    while start < uses.len() {
        let h = hash_of(uses[start]);
        let end = start + uses[start..].partition_point(|&u| hash_of(u) == h);
        if collided {
            let mut s = start;
            while s < end {
                let k = key_of(entries, uses[s]);
                let t = s + uses[s..end].partition_point(|&u| key_of(entries, u) == k);
                visit(s, t);
                s = t;
            }
        } else {
            visit(start, end);
        }
        start = end;
    }

    let range_of = |first: usize, classes: [u32; 3]| {
        let rule = rule_of(first).and_then(|i| snat_rules.as_ref().map(|r| &r.0.rules[i]));
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
        let (range, why) = default_range(class_port(classes));
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

    let mut tuples = Vec::new();
    let mut clients = Vec::new();
    for c in top.into_sorted_vec() {
        let run = &uses[c.start as usize..c.end as usize];
        let first = &entries[c.first as usize];
        let key = Key::reply(first);
        let used = c.ports.0;
        let (range, range_from, range_why, rule) = range_of(c.first as usize, c.classes);
        let range_size = range.1 as u64 - range.0 as u64 + 1;
        let mut t = TupleUse {
            proto: proto_name(key.proto).to_string(),
            translated: key.translated,
            dst: key.dst,
            dport: key.dport,
            ports: used,
            translated_entries: c.translated,
            range,
            range_size,
            range_from,
            range_why,
            percent: percent(used, range_size),
            level: PressureLevel::of(used, range_size),
            limit_percent: opt.limit_per_dest.map(|l| percent(used, l)),
            limit_level: opt.limit_per_dest.map(|l| PressureLevel::of(used, l)),
            original_dst: first
                .nat()
                .dnat
                .then(|| first.endpoint(first.orig.dst, first.orig.dport)),
            rule,
            clients: Vec::new(),
        };
        // Clients of this tuple: their translated entries, counted.
        let mut addrs: Vec<IpAddr> = run
            .iter()
            .filter(|&&u| how_of(u) == TRANSLATED)
            .map(|&u| entries[entry_of(u)].orig.src)
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
        tuples_total,
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

    /// A table of random connections over few addresses and ports, so
    /// that tuples share ports and untranslated connections hit them.
    fn random_table(seed: u64, n: usize) -> Vec<Entry> {
        let mut x = seed | 1;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut text = String::new();
        for _ in 0..n {
            let proto = ["tcp 6", "udp 17"][next(2) as usize];
            let client = format!("10.0.{}.{}", next(2), 1 + next(4));
            let snat = ["192.0.2.1", "192.0.2.2"][next(2) as usize];
            let dst = format!("198.51.100.{}", 1 + next(3));
            let dport = [53, 443, 8080][next(3) as usize];
            let sport = [80, 700, 40000, 40001, 40002][next(5) as usize];
            let xport = 1000 + next(40) as u16;
            let line = match next(4) {
                // Translated.
                0 | 1 => format!(
                    "ipv4 2 {proto} 30 src={client} dst={dst} sport={sport} dport={dport} src={dst} dst={snat} sport={dport} dport={xport} mark=0 use=1\n"
                ),
                // Started from the translated address.
                2 => format!(
                    "ipv4 2 {proto} 30 src={snat} dst={dst} sport={xport} dport={dport} src={dst} dst={snat} sport={dport} dport={xport} mark=0 use=1\n"
                ),
                // Came in from the destination's port.
                _ => format!(
                    "ipv4 2 {proto} 30 src={dst} dst={snat} sport={dport} dport={xport} src={snat} dst={dst} sport={xport} dport={dport} mark=0 use=1\n"
                ),
            };
            text.push_str(&line);
        }
        let t = parse_entries(text.as_bytes(), "random");
        assert!(t.problems.is_empty(), "{:?}", t.problems.first());
        t.entries
    }

    /// The counts the plain way: a map from each tuple to its ports.
    fn reference(entries: &[Entry]) -> Vec<(String, u64, u64)> {
        use std::collections::{BTreeMap, BTreeSet};
        let mut map: BTreeMap<Key, (BTreeSet<u16>, u64)> = BTreeMap::new();
        for e in entries
            .iter()
            .filter(|e| has_ports(e.proto) && e.nat().snat)
        {
            let g = map.entry(Key::reply(e)).or_default();
            g.0.insert(e.reply.dport);
            g.1 += 1;
        }
        for e in entries
            .iter()
            .filter(|e| has_ports(e.proto) && !e.nat().snat)
        {
            if let Some(g) = map.get_mut(&Key::reply(e)) {
                g.0.insert(e.reply.dport);
            } else if let Some(g) = map.get_mut(&Key::orig(e)) {
                g.0.insert(e.orig.dport);
            }
        }
        let mut v: Vec<_> = map
            .into_iter()
            .map(|(k, (ports, n))| {
                let dst = format!("{}:{}", k.dst, k.dport);
                let label = format!("{} {} -> {dst}", proto_name(k.proto), k.translated);
                (label, ports.len() as u64, n)
            })
            .collect();
        v.sort();
        v
    }

    fn all(p: &Pressure) -> Vec<(String, u64, u64)> {
        let mut v: Vec<_> = p
            .tuples
            .iter()
            .map(|t| (t.label(), t.ports, t.translated_entries))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn sorted_numbers_count_what_a_map_of_tuples_counts() {
        let opt = PressureOptions {
            top: usize::MAX,
            clients_per_tuple: 3,
            limit_per_dest: Some(8),
        };
        for seed in 1..40 {
            let entries = random_table(seed * 7919, 300);
            let want = reference(&entries);
            let p = pressure(&entries, None, opt);
            assert_eq!(all(&p), want, "seed {seed}");
            assert_eq!(p.tuples_total as usize, want.len());
            assert_eq!(p.translated_entries, want.iter().map(|x| x.2).sum::<u64>());
        }
    }

    #[test]
    fn colliding_hashes_change_nothing() {
        let opt = PressureOptions {
            top: 7,
            clients_per_tuple: 2,
            limit_per_dest: Some(8),
        };
        for seed in 1..20 {
            let entries = random_table(seed * 104_729, 300);
            let good = pressure(&entries, None, opt);
            // Every tuple on one hash, and a hash that only sees the port.
            let same = pressure_hashed(&entries, |_| true, None, opt, |_| 42);
            let ports = pressure_hashed(&entries, |_| true, None, opt, |k| k.dport as u64);
            assert_eq!(good, same, "seed {seed}");
            assert_eq!(good, ports, "seed {seed}");
        }
    }

    #[test]
    fn rules_that_name_ports_give_each_tuple_its_range() {
        let text = "*nat\n:POSTROUTING ACCEPT [0:0]\n\
            -A POSTROUTING -p udp -j SNAT --to-source 192.0.2.1-192.0.2.2:1000-1039\n\
            -A POSTROUTING -s 10.0.1.0/24 -p tcp -j MASQUERADE --to-ports 1000-1019\n\
            -A POSTROUTING -p tcp -j MASQUERADE\nCOMMIT\n";
        let rs = crate::parse_str(text, &crate::ParseOptions::strict("r")).expect("rules");
        let rules = NatRules::from_ruleset(&rs.ruleset);
        let opt = PressureOptions {
            top: usize::MAX,
            clients_per_tuple: 3,
            limit_per_dest: None,
        };
        for seed in 1..10 {
            let entries = random_table(seed * 31, 300);
            let p = pressure(&entries, Some(&rules), opt);
            assert_eq!(all(&p), reference(&entries), "seed {seed}");
            for t in &p.tuples {
                let want = match t.proto.as_str() {
                    "udp" => (1000, 1039),
                    // The first translated entry decides between the two
                    // MASQUERADE rules.
                    _ if t.rule.as_ref().is_some_and(|r| r.index == 2) => (1000, 1019),
                    // The last rule names no ports: the kernel's range for
                    // the class of the clients' ports.
                    _ => {
                        assert_eq!(t.range_from, RangeFrom::KernelDefault);
                        t.range
                    }
                };
                assert_eq!(t.range, want, "{}", t.label());
                assert_eq!(t.range_size, want.1 as u64 - want.0 as u64 + 1);
            }
            assert!(p.tuples.iter().any(|t| t.range == (1000, 1019)));
            let same = pressure_hashed(&entries, |_| true, Some(&rules), opt, |_| 42);
            assert_eq!(p, same, "seed {seed}");
        }
    }

    #[test]
    fn filtered_pressure_equals_pressure_of_the_chosen_entries() {
        let opt = PressureOptions {
            top: 10,
            clients_per_tuple: 3,
            limit_per_dest: None,
        };
        let entries = random_table(99, 400);
        let keep = |e: &Entry| e.proto == 17;
        let chosen: Vec<Entry> = entries.iter().filter(|e| keep(e)).copied().collect();
        let a = pressure_where(&entries, keep, None, opt);
        let b = pressure(&chosen, None, opt);
        assert_eq!(all(&a), all(&b));
        assert_eq!(a.tuples_total, b.tuples_total);
        assert!(a.tuples.iter().all(|t| t.proto == "udp"));
    }

    #[test]
    fn levels() {
        assert_eq!(PressureLevel::of(5, 10), PressureLevel::Ok);
        assert_eq!(PressureLevel::of(6, 10), PressureLevel::Over50);
        assert_eq!(PressureLevel::of(9, 10), PressureLevel::Over80);
        assert_eq!(PressureLevel::of(10, 10), PressureLevel::Full);
    }
}
