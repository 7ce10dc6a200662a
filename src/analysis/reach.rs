//! The service matrix: for one chain, protocol TCP, a source and a
//! destination port and conntrack state NEW, which addresses may reach
//! which, as equivalence classes of addresses and the accepted pairs.
//!
//! Addresses are cut into *atoms* at every boundary a rule names; atoms
//! with the same membership in every rule's source sets behave alike as
//! sources (likewise for destinations), so the chain is walked once per
//! group of sources with sets of destination groups as bit sets. Jumps,
//! gotos and returns are followed as in the kernel; unknown tests are
//! decided by the closure as if the chains had been unfolded into one list
//! first (fffuu's semantics): a rule's unknown tests, and those of the
//! jumps that led to it, count as true or false by the rule's own action.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::ifaces::{IfaceMap, bits_addr, max_addr};
use super::lits::{RuleLits, Template};
use super::sets::IntervalSet;
use super::{AnalysisError, Closure, find_chain};
use crate::Ruleset;
use crate::trace::Packet;
use crate::trace::compile::{Act, compile_rule};

/// What to compute.
#[derive(Debug, Clone)]
pub struct ReachOptions {
    /// Table (`filter`).
    pub table: String,
    /// Chain (`FORWARD`; `INPUT` for a host firewall).
    pub chain: String,
    /// TCP source port (10000).
    pub sport: u16,
    /// TCP destination port.
    pub dport: u16,
    /// IPv6 addresses.
    pub v6: bool,
    /// How unknown tests are taken.
    pub closure: Closure,
    /// `-i` decided by the source address.
    pub ipassmt: Option<IfaceMap>,
    /// `-o` decided by the destination address.
    pub routes: Option<IfaceMap>,
}

impl Default for ReachOptions {
    fn default() -> Self {
        ReachOptions {
            table: "filter".into(),
            chain: "FORWARD".into(),
            sport: 10000,
            dport: 22,
            v6: false,
            closure: Closure::Upper,
            ipassmt: None,
            routes: None,
        }
    }
}

/// One class of equivalent addresses.
#[derive(Debug, Clone, Serialize)]
pub struct Class {
    /// `everything else` for the largest class (when there are several),
    /// else its first range.
    pub label: String,
    /// True for the class printed as "everything else".
    pub everything_else: bool,
    /// Its ranges and prefixes, biggest first.
    pub ranges: Vec<String>,
    /// How many addresses (decimal; IPv6 counts do not fit JSON numbers).
    pub addresses: String,
    /// An address of the class to try packets with.
    pub representative: IpAddr,
    /// The addresses.
    #[serde(skip)]
    pub set: IntervalSet,
}

/// The answer: classes and which pairs are accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// Table walked.
    pub table: String,
    /// Chain walked.
    pub chain: String,
    /// Always `tcp`.
    pub proto: &'static str,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IPv6.
    pub ipv6: bool,
    /// Closure used.
    pub closure: Closure,
    /// Classes, largest first.
    pub classes: Vec<Class>,
    /// Accepted (from class, to class) pairs, sorted.
    pub edges: Vec<(usize, usize)>,
    /// What was abstracted and how.
    pub notes: Vec<String>,
    #[serde(skip)]
    accept: Vec<Vec<bool>>,
}

impl Matrix {
    /// True when packets from class `a` to class `b` are accepted.
    pub fn accepts(&self, a: usize, b: usize) -> bool {
        self.accept[a][b]
    }

    /// The class holding an address (of the matrix's family).
    pub fn class_of(&self, a: IpAddr) -> Option<usize> {
        let (b, v6) = super::ifaces::addr_bits(a);
        if v6 != self.ipv6 {
            return None;
        }
        self.classes.iter().position(|c| c.set.contains(b))
    }

    /// The packet the matrix speaks of, between two addresses.
    pub fn packet(&self, src: IpAddr, dst: IpAddr) -> Packet {
        service_packet(src, dst, self.sport, self.dport)
    }
}

/// A TCP SYN of a new connection between the given ports.
pub fn service_packet(src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Packet {
    let mut p = Packet::new(6, src, dst);
    p.sport = sport;
    p.dport = dport;
    p
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Accept,
    Drop,
    Jump(usize),
    Goto(usize),
    Return,
    Skip,
    /// QUEUE, NFQUEUE and other terminating extensions: accepted by the
    /// upper closure, dropped by the lower.
    Unsure,
}

fn kind(a: &Act) -> Kind {
    match a {
        Act::Accept => Kind::Accept,
        Act::Drop | Act::Reject => Kind::Drop,
        Act::Jump(c) => Kind::Jump(*c),
        Act::Goto(c) => Kind::Goto(*c),
        Act::Return => Kind::Return,
        Act::Queue { .. } | Act::OtherVerdict(_) => Kind::Unsure,
        _ => Kind::Skip,
    }
}

/// Bit sets over destination groups.
type Bits = Vec<u64>;

fn and(a: &Bits, b: &Bits) -> Bits {
    a.iter().zip(b).map(|(x, y)| x & y).collect()
}

fn none(a: &Bits) -> bool {
    a.iter().all(|w| *w == 0)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A random-looking 128-bit key per (rule, side): sums of keys name the
/// set of rules an atom belongs to.
fn key(i: usize, side: u64) -> u128 {
    let a = splitmix((i as u64) << 2 | side);
    let b = splitmix(a ^ 0x5555_5555_5555_5555);
    (a as u128) << 64 | b as u128
}

struct Rule {
    kind: Kind,
    lits: RuleLits,
    /// Destination groups the rule's destinations cover.
    dst: Option<Bits>,
}

/// The prepared walk of one chain for one service.
struct Engine {
    chains: Vec<Vec<Rule>>,
    start: usize,
    policy_accept: bool,
    closure: Closure,
    words: usize,
    ndg: usize,
}

impl Engine {
    /// Accepted destination groups for sources like `src`.
    fn row(&self, src: u128) -> Bits {
        let full = self.full();
        let mut live = full.clone();
        let mut acc = vec![0u64; self.words];
        let mut stack = Vec::new();
        self.walk(
            src, self.start, &full, &full, &mut live, &mut acc, &mut stack,
        );
        if self.policy_accept {
            for (a, l) in acc.iter_mut().zip(&live) {
                *a |= l;
            }
        }
        acc
    }

    fn full(&self) -> Bits {
        let mut v = vec![u64::MAX; self.words];
        if !self.ndg.is_multiple_of(64) {
            v[self.words - 1] = (1u64 << (self.ndg % 64)) - 1;
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        src: u128,
        chain: usize,
        ca: &Bits,
        cd: &Bits,
        live: &mut Bits,
        acc: &mut Bits,
        stack: &mut Vec<usize>,
    ) {
        // A loop in the jumps (the kernel refuses those) or absurd depth.
        if stack.contains(&chain) || stack.len() > 200 {
            return;
        }
        stack.push(chain);
        let (va, vd) = self.closure.values();
        let mut ca = ca.clone();
        let mut cd = cd.clone();
        let empty = vec![0u64; self.words];
        for r in &self.chains[chain] {
            if none(live) || (none(&ca) && none(&cd)) {
                break;
            }
            let Some(dst) = &r.dst else { continue };
            if !r.lits.src.contains(src) {
                continue;
            }
            // The rule's match with unknown tests taken as the closure
            // says, in accepting and in dropping rules; under a `!` (what
            // RETURN and goto leave behind) the same value goes in, so the
            // packets that leave are those of the opposite substitution.
            let (ka, kd, la, ld) = if r.lits.unknown {
                let pick = |v: bool| if v { dst } else { &empty };
                (pick(va), pick(vd), pick(!va), pick(!vd))
            } else {
                (dst, dst, dst, dst)
            };
            let kind = match r.kind {
                Kind::Unsure if va => Kind::Accept,
                Kind::Unsure => Kind::Drop,
                k => k,
            };
            match kind {
                Kind::Accept => {
                    for i in 0..self.words {
                        let m = ca[i] & ka[i] & live[i];
                        acc[i] |= m;
                        live[i] &= !m;
                    }
                }
                Kind::Drop => {
                    for i in 0..self.words {
                        live[i] &= !(cd[i] & kd[i]);
                    }
                }
                Kind::Jump(c) | Kind::Goto(c) => {
                    let (na, nd) = (and(&ca, ka), and(&cd, kd));
                    self.walk(src, c, &na, &nd, live, acc, stack);
                    if matches!(kind, Kind::Goto(_)) {
                        for i in 0..self.words {
                            ca[i] &= !la[i];
                            cd[i] &= !ld[i];
                        }
                    }
                }
                Kind::Return => {
                    for i in 0..self.words {
                        ca[i] &= !la[i];
                        cd[i] &= !ld[i];
                    }
                }
                Kind::Skip | Kind::Unsure => {}
            }
        }
        stack.pop();
    }
}

/// Chains reachable from `start` by jumps and gotos, in discovery order.
fn reachable(rules: &[Vec<crate::trace::compile::CRule>], start: usize) -> Vec<bool> {
    let mut seen = vec![false; rules.len()];
    let mut todo = vec![start];
    seen[start] = true;
    while let Some(c) = todo.pop() {
        for r in &rules[c] {
            if let Act::Jump(n) | Act::Goto(n) = r.act
                && !seen[n]
            {
                seen[n] = true;
                todo.push(n);
            }
        }
    }
    seen
}

/// Computes the service matrix.
pub fn service_matrix(rs: &Ruleset, o: &ReachOptions) -> Result<Matrix, AnalysisError> {
    let (t, start) = find_chain(rs, &o.table, &o.chain)?;
    let table = &rs.tables[t];
    let v6 = o.v6;
    let max = max_addr(v6);
    let mut notes = Vec::new();
    let any = IpAddr::from([0u8; 4]);
    let tpl = Template {
        pkt: service_packet(any, any, o.sport, o.dport),
        v6,
        ipassmt: o.ipassmt.as_ref(),
        routes: o.routes.as_ref(),
        no_in: o.chain == "OUTPUT",
        no_out: o.chain == "INPUT",
    };
    for (m, what) in [(&o.ipassmt, "--ipassmt"), (&o.routes, "--routes")] {
        if let Some(m) = m {
            if m.v6 != v6 {
                notes.push(format!(
                    "{what} lists {} addresses, the matrix is over {}",
                    fam(m.v6),
                    fam(v6)
                ));
            }
            let (gaps, twice) = m.gaps_and_overlaps();
            if !gaps.is_empty() {
                notes.push(format!(
                    "{what}: {} addresses are behind no interface (they match only `+`)",
                    gaps.count()
                ));
            }
            if !twice.is_empty() {
                notes.push(format!(
                    "{what}: {} addresses are claimed by two interfaces (they match both)",
                    twice.count()
                ));
            }
        }
    }
    let compiled: Vec<Vec<_>> = table
        .chains
        .iter()
        .map(|c| c.rules.iter().map(|r| compile_rule(table, r)).collect())
        .collect();
    let reach = reachable(&compiled, start);
    let mut unknown_counts: HashMap<String, usize> = HashMap::new();
    let mut chains: Vec<Vec<Rule>> = Vec::with_capacity(compiled.len());
    for (ci, rules) in compiled.iter().enumerate() {
        if !reach[ci] {
            chains.push(Vec::new());
            continue;
        }
        chains.push(
            rules
                .iter()
                .map(|r| {
                    let lits = tpl.rule(r);
                    for w in &lits.unknown_what {
                        *unknown_counts.entry(w.clone()).or_default() += 1;
                    }
                    if let Act::Undefined(n) = &r.act {
                        notes.push(format!("target {n} is not defined: its rules are skipped"));
                    }
                    Rule {
                        kind: kind(&r.act),
                        lits,
                        dst: None,
                    }
                })
                .collect(),
        );
    }
    if !unknown_counts.is_empty() {
        let mut v: Vec<_> = unknown_counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let list: Vec<String> = v.iter().map(|(w, n)| format!("{w} ({n})")).collect();
        notes.push(format!(
            "tests that depend on more than addresses, ports, protocol and state, taken by the {} closure: {}",
            match o.closure {
                Closure::Upper => "upper",
                Closure::Lower => "lower",
            },
            list.join(", ")
        ));
    }

    // Atoms: address ranges no rule boundary cuts.
    let mut cuts: Vec<u128> = vec![0];
    let live_rules = || chains.iter().flatten().filter(|r| !r.lits.never());
    for r in live_rules() {
        for s in [&r.lits.src, &r.lits.dst] {
            for &(a, b) in s.ranges() {
                cuts.push(a);
                if b < max {
                    cuts.push(b + 1);
                }
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let na = cuts.len();
    let atom = |v: u128| cuts.partition_point(|c| *c <= v) - 1;
    let group = |side: u64, pick: &dyn Fn(&RuleLits) -> &IntervalSet| {
        let mut diff = vec![0u128; na + 1];
        for (i, r) in live_rules().enumerate() {
            let k = key(i, side);
            for &(a, b) in pick(&r.lits).ranges() {
                diff[atom(a)] = diff[atom(a)].wrapping_add(k);
                let end = atom(b) + 1;
                diff[end] = diff[end].wrapping_sub(k);
            }
        }
        let mut ids: HashMap<u128, usize> = HashMap::new();
        let mut of = Vec::with_capacity(na);
        let mut sum = 0u128;
        for d in &diff[..na] {
            sum = sum.wrapping_add(*d);
            let n = ids.len();
            of.push(*ids.entry(sum).or_insert(n));
        }
        (of, ids.len())
    };
    let (sg, nsg) = group(0, &|l| &l.src);
    let (dg, ndg) = group(1, &|l| &l.dst);
    let words = ndg.div_ceil(64).max(1);
    for r in chains.iter_mut().flatten() {
        if r.lits.never() {
            continue;
        }
        let mut bits = vec![0u64; words];
        for &(a, b) in r.lits.dst.ranges() {
            for &g in &dg[atom(a)..=atom(b)] {
                bits[g / 64] |= 1 << (g % 64);
            }
        }
        r.dst = Some(bits);
    }
    let chain = &table.chains[start];
    let engine = Engine {
        chains,
        start,
        policy_accept: chain.builtin && chain.policy.as_deref() == Some("ACCEPT"),
        closure: o.closure,
        words,
        ndg,
    };
    if !chain.builtin {
        notes.push(format!(
            "{} is a user chain: packets that return from it count as not accepted",
            o.chain
        ));
    }
    let mut sg_rep = vec![usize::MAX; nsg];
    for (a, g) in sg.iter().enumerate() {
        if sg_rep[*g] == usize::MAX {
            sg_rep[*g] = a;
        }
    }
    let rows: Vec<Bits> = sg_rep.iter().map(|&a| engine.row(cuts[a])).collect();

    // Classes: same row as a source, same column as a destination.
    let mut row_id: HashMap<&Bits, usize> = HashMap::new();
    let rid: Vec<usize> = rows
        .iter()
        .map(|r| {
            let n = row_id.len();
            *row_id.entry(r).or_insert(n)
        })
        .collect();
    let sw = nsg.div_ceil(64).max(1);
    let mut col_id: HashMap<Bits, usize> = HashMap::new();
    let cid: Vec<usize> = (0..ndg)
        .map(|d| {
            let mut col = vec![0u64; sw];
            for (g, r) in rows.iter().enumerate() {
                if r[d / 64] >> (d % 64) & 1 == 1 {
                    col[g / 64] |= 1 << (g % 64);
                }
            }
            let n = col_id.len();
            *col_id.entry(col).or_insert(n)
        })
        .collect();
    let mut class_of_key: HashMap<(usize, usize), usize> = HashMap::new();
    let mut members: Vec<Vec<(u128, u128)>> = Vec::new();
    let mut rep_atom: Vec<usize> = Vec::new();
    for a in 0..na {
        let k = (rid[sg[a]], cid[dg[a]]);
        let n = members.len();
        let c = *class_of_key.entry(k).or_insert(n);
        if c == n {
            members.push(Vec::new());
            rep_atom.push(a);
        }
        let hi = if a + 1 < na { cuts[a + 1] - 1 } else { max };
        members[c].push((cuts[a], hi));
    }
    let mut classes: Vec<(IntervalSet, usize)> = members
        .into_iter()
        .zip(rep_atom)
        .map(|(m, a)| (IntervalSet::from_ranges(m), a))
        .collect();
    classes.sort_by(|a, b| {
        b.0.count()
            .cmp(&a.0.count())
            .then(a.0.first().cmp(&b.0.first()))
    });
    let n = classes.len();
    let accept: Vec<Vec<bool>> = classes
        .iter()
        .map(|(_, a)| {
            let row = &rows[sg[*a]];
            classes
                .iter()
                .map(|(_, b)| {
                    let d = dg[*b];
                    row[d / 64] >> (d % 64) & 1 == 1
                })
                .collect()
        })
        .collect();
    let mut edges = Vec::new();
    for (i, row) in accept.iter().enumerate() {
        for (j, ok) in row.iter().enumerate() {
            if *ok {
                edges.push((i, j));
            }
        }
    }
    let classes = classes
        .into_iter()
        .enumerate()
        .map(|(i, (set, _))| {
            let ranges = ranges_biggest_first(&set, v6);
            let everything_else = i == 0 && n > 1;
            Class {
                label: if everything_else {
                    "everything else".into()
                } else if n == 1 {
                    "all addresses".into()
                } else {
                    ranges[0].clone()
                },
                everything_else,
                addresses: set.count().to_string(),
                representative: representative(&set, v6),
                ranges,
                set,
            }
        })
        .collect();
    Ok(Matrix {
        table: o.table.clone(),
        chain: o.chain.clone(),
        proto: "tcp",
        sport: o.sport,
        dport: o.dport,
        ipv6: v6,
        closure: o.closure,
        classes,
        edges,
        notes,
        accept,
    })
}

/// Ranges written in a class's box before "+N more".
const BOX_RANGES: usize = 3;

/// The matrix as a drawable graph: one node per class, labelled with its
/// ranges (shortened with a count), an edge per accepted pair between two
/// classes; a class whose members may reach each other says so in its box.
pub fn matrix_view(m: &Matrix, name: &str) -> crate::graph::View {
    use crate::graph::{EdgeKind, View, ViewEdge, ViewNode, ViewNodeKind};
    let nodes = m
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut lines = vec![if c.everything_else {
                format!("c{i}: everything else")
            } else {
                format!("c{i}")
            }];
            for r in c.ranges.iter().take(BOX_RANGES) {
                lines.push(r.clone());
            }
            if c.ranges.len() > BOX_RANGES {
                lines.push(format!("(+{} more)", c.ranges.len() - BOX_RANGES));
            }
            if m.accepts(i, i) {
                lines.push("reach each other".into());
            }
            let mut title: Vec<String> = c.ranges.iter().take(200).cloned().collect();
            if c.ranges.len() > 200 {
                title.push(format!("... {} ranges in all", c.ranges.len()));
            }
            ViewNode {
                id: format!("class/c{i}"),
                kind: if c.everything_else {
                    ViewNodeKind::Builtin
                } else {
                    ViewNodeKind::User
                },
                table: m.table.as_str().into(),
                lines,
                rows: Vec::new(),
                title: format!("{} addresses: {}", c.addresses, title.join(", ")),
                members: Vec::new(),
                highlight: false,
                chain: None,
                group: None,
            }
        })
        .collect();
    let edges = m
        .edges
        .iter()
        .filter(|(a, b)| a != b)
        .map(|&(a, b)| ViewEdge {
            from: a,
            to: b,
            kind: EdgeKind::Jump,
            from_row: None,
            label: String::new(),
            title: format!("c{a} -> c{b}: tcp dport {} accepted", m.dport),
            rules: 1,
            packets: None,
            weight: 1.0,
            highlight: false,
        })
        .collect();
    View {
        title: format!(
            "{name}: {} {} tcp {} -> {} NEW, {} classes ({} closure)",
            m.table,
            m.chain,
            m.sport,
            m.dport,
            m.classes.len(),
            match m.closure {
                Closure::Upper => "upper",
                Closure::Lower => "lower",
            }
        ),
        nodes,
        edges,
        legend: Some(matrix_legend(m.dport, m.table.as_str())),
        ..Default::default()
    }
}

/// What the matrix drawing's boxes and arrows mean: address classes, the
/// class of every address no rule singles out, and accepted packets.
fn matrix_legend(dport: u16, table: &str) -> Vec<crate::render::style::LegendEntry> {
    use crate::graph::{EdgeKind, ViewNodeKind};
    use crate::render::style::{LegendEntry, LegendItem, edge_style, node_style};
    vec![
        LegendEntry {
            label: "address class".into(),
            item: LegendItem::Node(node_style(ViewNodeKind::User, table)),
        },
        LegendEntry {
            label: "everything else".into(),
            item: LegendItem::Node(node_style(ViewNodeKind::Builtin, table)),
        },
        LegendEntry {
            label: format!("accepted (dport {dport})"),
            item: LegendItem::Edge(edge_style(EdgeKind::Jump, ViewNodeKind::User)),
        },
    ]
}

fn fam(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// `10.0.0.0/8`, `10.0.0.1`, or `10.0.0.1-10.0.0.9` when no prefix fits.
pub fn format_range(lo: u128, hi: u128, v6: bool) -> String {
    let width = if v6 { 128 } else { 32 };
    let size = hi.wrapping_sub(lo).wrapping_add(1);
    if lo == hi {
        return bits_addr(lo, v6).to_string();
    }
    let full = lo == 0 && hi == max_addr(v6);
    if full {
        return format!("{}/0", bits_addr(0, v6));
    }
    if size.is_power_of_two() && lo & (size - 1) == 0 {
        let len = width - size.trailing_zeros();
        return format!("{}/{len}", bits_addr(lo, v6));
    }
    format!("{}-{}", bits_addr(lo, v6), bits_addr(hi, v6))
}

/// The ranges of a set as text, the biggest first.
pub fn ranges_biggest_first(s: &IntervalSet, v6: bool) -> Vec<String> {
    let mut r: Vec<(u128, u128)> = s.ranges().to_vec();
    r.sort_by(|a, b| (b.1 - b.0).cmp(&(a.1 - a.0)).then(a.0.cmp(&b.0)));
    r.into_iter().map(|(a, b)| format_range(a, b, v6)).collect()
}

/// Addresses a test packet should avoid: the kernel treats them apart
/// (unspecified, loopback, multicast, reserved, link-local IPv6).
fn special(v6: bool) -> IntervalSet {
    let v: Vec<(u128, u128)> = if v6 {
        vec![
            (0, 1),
            (
                0xfe80u128 << 112,
                (0xfe80u128 << 112) | ((1u128 << 118) - 1),
            ),
            (0xffu128 << 120, u128::MAX),
            (0xffffu128 << 32, (0xffffu128 << 32) | 0xffff_ffff),
        ]
    } else {
        vec![
            (0, 0x00ff_ffff),
            (0x7f00_0000, 0x7fff_ffff),
            (0xe000_0000, 0xffff_ffff),
        ]
    };
    IntervalSet::from_ranges(v)
}

/// An ordinary address of the set (its first one if it has none).
pub fn representative(s: &IntervalSet, v6: bool) -> IpAddr {
    let ok = s.minus(&special(v6));
    let pick = ok
        .ranges()
        .iter()
        .map(|&(a, b)| if a < b && a & 0xff == 0 { a + 1 } else { a })
        .next()
        .or(s.first())
        .unwrap_or(0);
    bits_addr(pick, v6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(text: &str, o: ReachOptions) -> Matrix {
        let rs = crate::parse_str(text, &crate::ParseOptions::strict("t"))
            .unwrap()
            .ruleset;
        service_matrix(&rs, &o).unwrap()
    }

    #[test]
    fn ranges_print_as_prefixes_when_they_can() {
        assert_eq!(format_range(0x0a00_0000, 0x0aff_ffff, false), "10.0.0.0/8");
        assert_eq!(format_range(1, 2, false), "0.0.0.1-0.0.0.2");
        assert_eq!(format_range(0, u32::MAX as u128, false), "0.0.0.0/0");
        assert_eq!(format_range(0, u128::MAX, true), "::/0");
    }

    #[test]
    fn jump_return_and_closures() {
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:C - [0:0]\n\
                 -A FORWARD -d 10.0.0.0/8 -j C\n\
                 -A FORWARD -s 192.168.0.0/16 -m limit --limit 1/s -j ACCEPT\n\
                 -A C -s 10.0.0.0/8 -j RETURN\n-A C -j ACCEPT\nCOMMIT\n";
        let up = matrix(t, ReachOptions::default());
        let a = |m: &Matrix, s: &str, d: &str| {
            m.accepts(
                m.class_of(s.parse().unwrap()).unwrap(),
                m.class_of(d.parse().unwrap()).unwrap(),
            )
        };
        assert!(a(&up, "8.8.8.8", "10.1.1.1"));
        assert!(!a(&up, "10.2.2.2", "10.1.1.1"));
        assert!(a(&up, "192.168.1.1", "8.8.8.8"));
        assert!(!a(&up, "8.8.8.8", "8.8.4.4"));
        let low = matrix(
            t,
            ReachOptions {
                closure: Closure::Lower,
                ..Default::default()
            },
        );
        assert!(!a(&low, "192.168.1.1", "8.8.8.8"));
        assert!(a(&low, "8.8.8.8", "10.1.1.1"));
        // 10/8, 192.168/16 and the rest are three classes.
        assert_eq!(up.classes.len(), 3);
        assert_eq!(up.classes[0].label, "everything else");
    }

    #[test]
    fn unknown_return_is_a_return_only_for_what_the_closure_drops() {
        // ufw's not-local chain: RETURN when the destination is local,
        // else DROP; whether it is local is unknown here.
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:X - [0:0]\n\
                 -A FORWARD -j X\n-A FORWARD -j ACCEPT\n\
                 -A X -m addrtype --dst-type LOCAL -j RETURN\n-A X -j DROP\nCOMMIT\n";
        let up = matrix(t, ReachOptions::default());
        assert_eq!(up.edges, vec![(0, 0)]);
        let low = matrix(
            t,
            ReachOptions {
                closure: Closure::Lower,
                ..Default::default()
            },
        );
        assert!(low.edges.is_empty());
    }

    #[test]
    fn drop_with_unknown_is_ignored_by_the_upper_closure_only() {
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A FORWARD -s 1.0.0.0/8 -m mark --mark 0x1 -j DROP\nCOMMIT\n";
        let up = matrix(t, ReachOptions::default());
        assert_eq!(up.classes.len(), 1);
        assert_eq!(up.edges, vec![(0, 0)]);
        let low = matrix(
            t,
            ReachOptions {
                closure: Closure::Lower,
                ..Default::default()
            },
        );
        assert_eq!(low.classes.len(), 2);
        let one = low.class_of("1.2.3.4".parse().unwrap()).unwrap();
        assert!(!low.accepts(one, 1 - one) && low.accepts(1 - one, one));
    }
    #[test]
    fn long_class_labels_are_shortened_with_a_count_and_fit_their_boxes() {
        // Ten separate /24s treated alike: one class of ten ranges.
        let mut text = String::from(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        );
        for i in 0..10 {
            text.push_str(&format!(
                "-A FORWARD -s 10.0.{}.0/24 -p tcp -m tcp --dport 22 -j ACCEPT\n",
                i * 2
            ));
        }
        text.push_str("COMMIT\n");
        let m = matrix(&text, ReachOptions::default());
        let c = m.class_of("10.0.4.9".parse().unwrap()).unwrap();
        assert_eq!(m.classes[c].ranges.len(), 10);
        let v = matrix_view(&m, "t");
        let lines = &v.nodes[c].lines;
        assert_eq!(lines.len(), 1 + BOX_RANGES + 2, "{lines:?}");
        assert_eq!(lines[1 + BOX_RANGES], "(+7 more)");
        assert_eq!(lines[2 + BOX_RANGES], "reach each other");
        assert!(
            v.nodes[c].title.contains("10.0.18.0/24"),
            "all ranges on hover"
        );
        // Every line inside its box, as laid out.
        use crate::render::style::{NAME_SIZE, PAD, TEXT_SIZE, text_width};
        let l = crate::layout::layout(&v, crate::layout::Choice::Auto);
        for (n, b) in v.nodes.iter().zip(&l.nodes) {
            for (i, line) in n.lines.iter().enumerate() {
                let size = if i == 0 { NAME_SIZE } else { TEXT_SIZE };
                assert!(
                    text_width(line, size) + PAD <= b.w,
                    "{line:?} wider than its box ({} px)",
                    b.w
                );
            }
        }
    }
}
