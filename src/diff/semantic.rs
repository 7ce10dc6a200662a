//! The semantic diff: which packets a change treats differently.
//!
//! Each built-in chain of each table (the stage of a hook path where that
//! table's rules run) is walked on both sides with sets of packets (see
//! [`walk`]): the walk splits all packets into boxes with one outcome each
//! (ACCEPT, DROP, REJECT, a NAT rewrite ...). The two partitions are then
//! intersected and the boxes whose outcome differs are kept, each with an
//! example packet and the deciding rule on each side. Boxes the two walks
//! cut alike are matched first by their exact value, so a change of one
//! service in a cluster-sized dump costs about two walks.
//!
//! Chains are compared one by one: a change in the nat table is reported
//! for the packets that reach it, whatever the other tables do to them.
//! Mark changes (MARK, CONNMARK) are not outcomes; the tests that read
//! marks are unknown tests. Unknown tests (marks, rate limits, random
//! choices, `addrtype`, ipsets ...) are free yes/no answers named by their
//! text: equal text on both sides is taken as the same answer, and a box
//! that depends on one says which answer it assumed.
//!
//! ```
//! use iptviz::diff::semantic::semantic_diff;
//! let a = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
//!          -A INPUT -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n";
//! let b = a.replace("--dport 22", "--dport 23");
//! let p = |t: &str| iptviz::parse_str(t, &iptviz::ParseOptions::strict("doc")).unwrap().ruleset;
//! let d = semantic_diff(&p(a), &p(&b)).unwrap();
//! assert_eq!(d.paths.len(), 1);
//! let ports: Vec<_> = d.paths[0].boxes.iter().map(|b| b.dport.clone().unwrap()).collect();
//! assert_eq!(ports, ["22", "23"]);
//! assert!(semantic_diff(&p(a), &p(a)).unwrap().same);
//! ```

mod region;
pub(crate) mod walk;

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use serde::Serialize;

use crate::analysis::boxes::{PBox, dim, dim_max};
use crate::analysis::ifaces::addr_bits;
use crate::analysis::reach::{format_range, representative};
use crate::analysis::sets::IntervalSet;
use crate::model::{Family, Ruleset, Table};
use crate::trace::{CtState, Packet, protocol_name};

pub use walk::WalkError;
use walk::{Asm, By, Leaf, Outcome, Unknowns, Walker, asm_merge};

/// Which packets change fate between two rulesets.
#[derive(Debug, Clone, Serialize)]
pub struct SemanticDiff {
    /// True when no packet changes fate (in every chain compared).
    pub same: bool,
    /// Chains with packets that change fate, table by table in hook order.
    pub paths: Vec<PathDiff>,
    /// Every chain compared, as `table CHAIN`.
    pub compared: Vec<String>,
    /// Chains that could not be compared, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// One table's built-in chain and the packets whose outcome there differs.
#[derive(Debug, Clone, Serialize)]
pub struct PathDiff {
    /// Table name.
    pub table: String,
    /// Built-in chain name (the hook).
    pub chain: String,
    /// Which packets pass this chain, in words.
    pub what: String,
    /// Boxes of packets with another outcome (at most [`MAX_BOXES`]).
    pub boxes: Vec<FateBox>,
    /// How many boxes there were in all.
    pub total: usize,
}

/// Boxes kept per chain.
pub const MAX_BOXES: usize = 2000;

/// A box of packets whose outcome differs. A field is `None` when the box
/// takes every value of it.
#[derive(Debug, Clone, Serialize)]
pub struct FateBox {
    /// Protocols.
    pub proto: Option<String>,
    /// Source addresses.
    pub src: Option<String>,
    /// Destination addresses.
    pub dst: Option<String>,
    /// Source ports.
    pub sport: Option<String>,
    /// Destination ports.
    pub dport: Option<String>,
    /// Interface the packets came in on.
    pub in_iface: Option<String>,
    /// Interface they leave by.
    pub out_iface: Option<String>,
    /// Conntrack states.
    pub state: Option<String>,
    /// Fragments.
    pub fragment: Option<String>,
    /// TCP flags (flag bytes).
    pub tcp_flags: Option<String>,
    /// ICMP type/code.
    pub icmp: Option<String>,
    /// Answers of unknown tests the box assumes (`test = yes|no`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
    /// One packet of the box.
    pub example: Packet,
    /// That packet in words.
    pub example_text: String,
    /// Its fate in OLD.
    pub old: Fate,
    /// Its fate in NEW.
    pub new: Fate,
    #[serde(skip)]
    set: PBox,
}

impl FateBox {
    /// True when `p`'s header fields are in the box (its unknown answers
    /// aside).
    pub fn contains(&self, p: &Packet) -> bool {
        let v = packet_values(p);
        self.set.0.iter().zip(v).all(|(s, v)| s.contains(v))
    }
}

/// An outcome and what decided it.
#[derive(Debug, Clone, Serialize)]
pub struct Fate {
    /// ACCEPT, DROP, REJECT, QUEUE, `DNAT 10.0.0.5:80`, `MASQUERADE` ...
    pub outcome: String,
    /// `rule #3 of INPUT (line 12)`, `policy of INPUT`, `no such chain`.
    pub by: String,
    /// The deciding rule as `-A CHAIN ...`, when a rule decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Its 1-based line in the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// Why no semantic diff was computed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SemanticUnavailable {
    /// The two sides are of different address families.
    #[error("the two rulesets are of different address families; no packet is in both")]
    Family,
}

fn what(chain: &str) -> &'static str {
    match chain {
        "PREROUTING" => "arriving packets, before routing",
        "INPUT" => "packets for this host",
        "FORWARD" => "packets routed through",
        "OUTPUT" => "packets this host sends",
        "POSTROUTING" => "leaving packets, after routing",
        _ => "",
    }
}

const BUILTIN_ORDER: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// How to compute the semantic diff.
#[derive(Debug, Clone, Default)]
pub struct SemanticOptions {
    /// Walk every packet of every chain, not only those the rules that
    /// differ can match (slower; the answer is the same).
    pub whole: bool,
}

/// Computes the semantic diff of two rulesets.
pub fn semantic_diff(old: &Ruleset, new: &Ruleset) -> Result<SemanticDiff, SemanticUnavailable> {
    semantic_diff_with(old, new, &SemanticOptions::default())
}

/// Computes the semantic diff of two rulesets, as `o` says.
pub fn semantic_diff_with(
    old: &Ruleset,
    new: &Ruleset,
    o: &SemanticOptions,
) -> Result<SemanticDiff, SemanticUnavailable> {
    let go_on = || false;
    semantic_diff_until(old, new, o, &go_on).expect("never stopped: the stop test always says no")
}

/// [`semantic_diff_with`] that gives up (`None`) once `stop` says so; it
/// is asked before each chain is walked (a GUI whose input changed).
pub fn semantic_diff_until(
    old: &Ruleset,
    new: &Ruleset,
    o: &SemanticOptions,
    stop: &dyn Fn() -> bool,
) -> Option<Result<SemanticDiff, SemanticUnavailable>> {
    if old.family != new.family {
        return Some(Err(SemanticUnavailable::Family));
    }
    if stop() {
        return None;
    }
    semantic_diff_inner(old, new, o, stop).map(Ok)
}

fn semantic_diff_inner(
    old: &Ruleset,
    new: &Ruleset,
    o: &SemanticOptions,
    stop: &dyn Fn() -> bool,
) -> Option<SemanticDiff> {
    let v6 = old.family == Family::Ipv6;
    let regions = if o.whole {
        None
    } else {
        let rd = super::diff(old, new, "", "", &super::DiffOptions::default());
        Some(region::regions(&rd, old, new, v6))
    };
    let full = vec![PBox::full(v6)];
    let mut tables: Vec<&str> = old.tables.iter().map(|t| t.name.as_str()).collect();
    for t in &new.tables {
        if !tables.contains(&t.name.as_str()) {
            tables.push(t.name.as_str());
        }
    }
    let mut unknowns = Unknowns::default();
    let mut out = SemanticDiff {
        same: true,
        paths: Vec::new(),
        compared: Vec::new(),
        skipped: Vec::new(),
    };
    for tname in tables {
        let ot = old.table(tname);
        let nt = new.table(tname);
        let region: &[PBox] = match &regions {
            None => &full,
            Some(m) => match m.get(tname) {
                None => &[],
                Some(None) => &full,
                Some(Some(r)) => r,
            },
        };
        let (mut ow, mut nw) = if region.is_empty() {
            (None, None)
        } else {
            (
                ot.map(|t| Walker::new(t, v6, &mut unknowns)),
                nt.map(|t| Walker::new(t, v6, &mut unknowns)),
            )
        };
        let mut chains: Vec<&str> = Vec::new();
        for t in [ot, nt].into_iter().flatten() {
            for c in t.chains.iter().filter(|c| c.builtin) {
                if !chains.contains(&c.name.as_str()) {
                    chains.push(c.name.as_str());
                }
            }
        }
        chains.sort_by_key(|c| BUILTIN_ORDER.iter().position(|b| b == c));
        for cname in chains {
            out.compared.push(format!("{tname} {cname}"));
            if region.is_empty() {
                continue;
            }
            if stop() {
                return None;
            }
            // Packets sent by this host come in on no interface; those
            // for it leave by none.
            let mut here: Vec<PBox> = region.to_vec();
            let none = IntervalSet::range(0, 0);
            for b in &mut here {
                match cname {
                    "OUTPUT" => b.0[dim::IN] = b.0[dim::IN].intersect(&none),
                    "INPUT" | "PREROUTING" => b.0[dim::OUT] = b.0[dim::OUT].intersect(&none),
                    _ => {}
                }
            }
            here.retain(|b| !b.is_empty());
            let region: &[PBox] = &here;
            let side = |t: Option<&Table>, w: &mut Option<Walker<'_>>, u: &Unknowns| {
                let start = t.and_then(|t| t.chain_position(cname));
                match (start, w.as_mut()) {
                    (Some(s), Some(w)) => w.leaves(s, u, region),
                    _ => Ok(region
                        .iter()
                        .map(|b| Leaf {
                            b: b.clone(),
                            asm: Vec::new(),
                            out: Outcome::Verdict("ACCEPT".into()),
                            by: Some((usize::MAX, 0)),
                        })
                        .collect()),
                }
            };
            let lo = side(ot, &mut ow, &unknowns);
            let ln = side(nt, &mut nw, &unknowns);
            let (lo, ln) = match (lo, ln) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    out.skipped
                        .push(format!("{tname} {cname}: {e}; not compared"));
                    out.same = false;
                    continue;
                }
            };
            let pairs = differing(&lo, &ln);
            if pairs.is_empty() {
                continue;
            }
            out.same = false;
            let total = pairs.len();
            let boxes = pairs
                .into_iter()
                .take(MAX_BOXES)
                .map(|(b, asm, i, j)| {
                    let example = example(&b, v6);
                    FateBox {
                        proto: show_proto(&b.0[dim::PROTO]),
                        src: show_addrs(&b.0[dim::SRC], v6),
                        dst: show_addrs(&b.0[dim::DST], v6),
                        sport: show_ports(&b.0[dim::SPORT]),
                        dport: show_ports(&b.0[dim::DPORT]),
                        in_iface: show_ifaces(&b.0[dim::IN]),
                        out_iface: show_ifaces(&b.0[dim::OUT]),
                        state: show_state(&b.0[dim::CT]),
                        fragment: show_frag(&b.0[dim::FRAG]),
                        tcp_flags: show_flags(&b.0[dim::FLAGS]),
                        icmp: show_icmp(&b.0[dim::ICMP]),
                        unknown: asm
                            .iter()
                            .map(|(k, v)| {
                                format!(
                                    "{} = {}",
                                    unknowns.names[*k as usize],
                                    if *v { "yes" } else { "no" }
                                )
                            })
                            .collect(),
                        example_text: format!("{} {}", example.addresses(), example.context()),
                        example,
                        old: fate(ot, cname, &lo[i]),
                        new: fate(nt, cname, &ln[j]),
                        set: b,
                    }
                })
                .collect();
            out.paths.push(PathDiff {
                table: tname.to_string(),
                chain: cname.to_string(),
                what: what(cname).to_string(),
                boxes,
                total,
            });
        }
    }
    // The walk above reads iptables tables only: nft tables that differ are
    // named, so that "no packet changes fate" is never said of them.
    let mut nft_diff = Vec::new();
    let mut ignored = super::Summary::default();
    super::nft::diff_nft(
        &old.nft,
        &new.nft,
        &super::DiffOptions::default(),
        &mut ignored,
        &mut nft_diff,
    );
    for td in nft_diff {
        out.same = false;
        out.skipped.push(format!(
            "nftables table {}: differs; which packets change fate is worked out for iptables tables only, its rule changes are listed above",
            td.name
        ));
    }
    Some(out)
}

fn fate(t: Option<&Table>, start: &str, l: &Leaf) -> Fate {
    let outcome = l.out.text();
    let by: By = l.by;
    match (t, by) {
        (Some(t), Some((c, r))) if c < t.chains.len() => {
            let chain = &t.chains[c];
            let rule = &chain.rules[r];
            Fate {
                outcome,
                by: format!("rule #{} of {} (line {})", r + 1, chain.name, rule.line),
                rule: Some(crate::save::rule_line(&chain.name, rule)),
                line: Some(rule.line),
            }
        }
        (Some(t), None) => Fate {
            outcome,
            by: format!("policy of {start}"),
            rule: None,
            line: t.chain(start).map(|c| c.line).filter(|l| *l > 0),
        },
        _ => Fate {
            outcome,
            by: "no such chain (nothing filters here)".into(),
            rule: None,
            line: None,
        },
    }
}

type Pair = (PBox, Asm, usize, usize);

/// Boxes where the two partitions give different outcomes, with the leaf
/// of each side.
fn differing(old: &[Leaf], new: &[Leaf]) -> Vec<Pair> {
    let mut exact: HashMap<(&[IntervalSet; dim::N], &Asm), usize> =
        HashMap::with_capacity(new.len());
    for (j, l) in new.iter().enumerate() {
        exact.insert((&l.b.0, &l.asm), j);
    }
    let mut used = vec![false; new.len()];
    let mut out = Vec::new();
    let mut rest_old = Vec::new();
    for (i, l) in old.iter().enumerate() {
        match exact.get(&(&l.b.0, &l.asm)) {
            Some(&j) => {
                used[j] = true;
                if l.out != new[j].out {
                    out.push((l.b.clone(), l.asm.clone(), i, j));
                }
            }
            None => rest_old.push(i),
        }
    }
    let rest_new: Vec<usize> = (0..new.len()).filter(|j| !used[*j]).collect();
    for &i in &rest_old {
        let a = &old[i];
        for &j in &rest_new {
            let b = &new[j];
            if a.out == b.out || !a.b.intersects(&b.b) {
                continue;
            }
            let Some(asm) = asm_merge(&a.asm, &b.asm) else {
                continue;
            };
            let z = a.b.intersect(&b.b);
            if !z.is_empty() {
                out.push((z, asm, i, j));
            }
        }
    }
    merge(out, old, new)
}

/// Joins boxes with the same fates and assumptions that differ in one field
/// only, until none do.
fn merge(mut v: Vec<Pair>, old: &[Leaf], new: &[Leaf]) -> Vec<Pair> {
    if v.len() > 5000 {
        return v;
    }
    let same_fate_but_asm = |a: &Pair, b: &Pair| {
        old[a.2].out == old[b.2].out
            && old[a.2].by == old[b.2].by
            && new[a.3].out == new[b.3].out
            && new[a.3].by == new[b.3].by
    };
    let same_fate = |a: &Pair, b: &Pair| {
        a.1 == b.1
            && old[a.2].out == old[b.2].out
            && old[a.2].by == old[b.2].by
            && new[a.3].out == new[b.3].out
            && new[a.3].by == new[b.3].by
    };
    loop {
        let mut changed = false;
        let mut i = 0;
        while i < v.len() {
            let mut j = i + 1;
            while j < v.len() {
                // The same box both ways of one unknown answer.
                if v[i].0 == v[j].0
                    && v[i].1.len() == v[j].1.len()
                    && same_fate_but_asm(&v[i], &v[j])
                {
                    let (a, b) = (&v[i].1, &v[j].1);
                    let d: Vec<usize> = (0..a.len()).filter(|&k| a[k] != b[k]).collect();
                    if d.len() == 1 && a[d[0]].0 == b[d[0]].0 {
                        v[i].1.remove(d[0]);
                        v.remove(j);
                        changed = true;
                        continue;
                    }
                }
                if same_fate(&v[i], &v[j]) {
                    let diff: Vec<usize> = (0..dim::N)
                        .filter(|&d| v[i].0.0[d] != v[j].0.0[d])
                        .collect();
                    if diff.len() == 1 {
                        let d = diff[0];
                        let u = v[i].0.0[d].union(&v[j].0.0[d]);
                        v[i].0.0[d] = u;
                        v.remove(j);
                        changed = true;
                        continue;
                    }
                }
                j += 1;
            }
            i += 1;
        }
        if !changed {
            return v;
        }
    }
}

/// A list of ranges, at most four, then how many more.
fn list(ranges: &[(u128, u128)], f: &dyn Fn(u128, u128) -> String) -> String {
    let mut parts: Vec<String> = ranges.iter().take(4).map(|&(a, b)| f(a, b)).collect();
    if ranges.len() > 4 {
        parts.push(format!("+{} more", ranges.len() - 4));
    }
    parts.join(",")
}

/// `None` for every value; else the values, or `not` and those missing
/// when that is shorter.
fn show(s: &IntervalSet, max: u128, f: &dyn Fn(u128, u128) -> String) -> Option<String> {
    if s.is_full(max) {
        return None;
    }
    let c = s.complement(max);
    if !c.is_empty() && c.ranges().len() < s.ranges().len() {
        return Some(format!("not {}", list(c.ranges(), f)));
    }
    Some(list(s.ranges(), f))
}

fn show_proto(s: &IntervalSet) -> Option<String> {
    show(s, 255, &|a, b| {
        if a == b {
            protocol_name(a as u8)
        } else {
            format!("{a}-{b}")
        }
    })
}

fn show_addrs(s: &IntervalSet, v6: bool) -> Option<String> {
    let max = dim_max(dim::SRC, v6);
    if s.is_full(max) {
        return None;
    }
    let f = |a, b| format_range(a, b, v6);
    let c = s.complement(max);
    if !c.is_empty() && c.ranges().len() < s.ranges().len() {
        return Some(format!("not {}", list(c.ranges(), &f)));
    }
    Some(list(s.ranges(), &f))
}

fn show_ports(s: &IntervalSet) -> Option<String> {
    show(s, 65535, &|a, b| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    })
}

fn iface_name(v: u128) -> String {
    let b = v.to_be_bytes();
    let n = b.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

fn show_ifaces(s: &IntervalSet) -> Option<String> {
    show(s, u128::MAX, &|a, b| {
        if a == b {
            return if a == 0 {
                "(none)".into()
            } else {
                iface_name(a)
            };
        }
        // A prefix `eth+`: the name, then zero bytes up to `a`'s end,
        // all ones in `b`.
        let x = a ^ b;
        if (x.wrapping_add(1)).is_power_of_two() && x.count_ones() % 8 == 0 && a & x == 0 {
            return format!("{}+", iface_name(a));
        }
        format!("{}..{}", iface_name(a), iface_name(b))
    })
}

const STATES: [&str; 5] = ["INVALID", "NEW", "ESTABLISHED", "RELATED", "UNTRACKED"];

fn state_name(v: u128) -> String {
    let mut s = STATES[(v % 5) as usize].to_string();
    if (v / 5) & 1 == 1 {
        s.push_str("+DNAT");
    }
    if v / 10 == 1 {
        s.push_str("+SNAT");
    }
    s
}

fn show_state(s: &IntervalSet) -> Option<String> {
    if s.is_full(19) {
        return None;
    }
    // The plain states when the box holds each with and without NAT.
    let mut names = Vec::new();
    let all: Vec<u128> = s
        .ranges()
        .iter()
        .flat_map(|&(a, b)| a..=b)
        .filter(|v| *v < 20)
        .collect();
    for st in 0..5u128 {
        let nat = [st, st + 5, st + 10, st + 15];
        if nat.iter().all(|v| all.contains(v)) {
            names.push(STATES[st as usize].to_string());
        } else {
            for v in nat {
                if all.contains(&v) {
                    names.push(state_name(v));
                }
            }
        }
    }
    Some(names.join(","))
}

fn show_frag(s: &IntervalSet) -> Option<String> {
    show(s, 1, &|a, _| {
        if a == 1 {
            "later fragments".into()
        } else {
            "not later fragments".into()
        }
    })
    .map(|t| t.replace("not not ", ""))
}

fn show_flags(s: &IntervalSet) -> Option<String> {
    show(s, 255, &|a, b| {
        if a == b {
            format!("{a:#04x}")
        } else {
            format!("{a:#04x}-{b:#04x}")
        }
    })
}

fn show_icmp(s: &IntervalSet) -> Option<String> {
    show(s, 65535, &|a, b| {
        if a == b {
            format!("{}/{}", a >> 8, a & 255)
        } else if a & 255 == 0 && b & 255 == 255 && a >> 8 == b >> 8 {
            format!("{}", a >> 8)
        } else {
            format!("{}/{}-{}/{}", a >> 8, a & 255, b >> 8, b & 255)
        }
    })
}

/// The first of the preferred values the set holds, else its first value
/// not below `min` (else its first).
fn pick(s: &IntervalSet, prefer: &[u128], min: u128) -> u128 {
    if let Some(p) = prefer.iter().find(|p| s.contains(**p)) {
        return *p;
    }
    s.ranges()
        .iter()
        .find(|r| r.1 >= min)
        .map(|r| r.0.max(min))
        .or(s.first())
        .unwrap_or(0)
}

fn name_value(n: &str) -> u128 {
    let mut b = [0u8; 16];
    for (i, c) in n.bytes().take(16).enumerate() {
        b[i] = c;
    }
    u128::from_be_bytes(b)
}

fn pick_iface(s: &IntervalSet) -> Option<String> {
    if s.is_full(u128::MAX) {
        return None;
    }
    for n in ["eth0", "eth1", "ens3", "veth0", "wlan0", "lo"] {
        if s.contains(name_value(n)) {
            return Some(n.into());
        }
    }
    if s.contains(0) {
        return None;
    }
    s.first().map(iface_name)
}

/// One packet of the box, with ordinary values where the box allows.
fn example(b: &PBox, v6: bool) -> Packet {
    let d = &b.0;
    let proto = pick(&d[dim::PROTO], &[6, 17, if v6 { 58 } else { 1 }], 1) as u8;
    let src = representative(&d[dim::SRC], v6);
    let dst = representative(&d[dim::DST], v6);
    let mut p = Packet::new(proto, src, dst);
    if p.has_ports() {
        p.sport = pick(&d[dim::SPORT], &[40000, 10000], 1024) as u16;
        p.dport = pick(&d[dim::DPORT], &[80, 443, 22], 1) as u16;
    }
    p.in_iface = pick_iface(&d[dim::IN]).map(Into::into);
    p.out_iface = pick_iface(&d[dim::OUT]).map(Into::into);
    p.state = match pick(&d[dim::CT], &[1, 2, 3, 0, 4], 0) % 5 {
        0 => CtState::Invalid,
        1 => CtState::New,
        2 => CtState::Established,
        3 => CtState::Related,
        _ => CtState::Untracked,
    };
    p.fragment = pick(&d[dim::FRAG], &[0], 0) == 1;
    if proto == 6 {
        p.tcp_flags = pick(&d[dim::FLAGS], &[0x02, 0x10, 0x12], 0) as u8;
    }
    if matches!(proto, 1 | 58) {
        let echo = if v6 { 128 << 8 } else { 8 << 8 };
        let v = pick(&d[dim::ICMP], &[echo], 0);
        p.icmp = ((v >> 8) as u8, (v & 255) as u8);
    }
    p
}

/// A packet's value in each field of a box.
fn packet_values(p: &Packet) -> [u128; dim::N] {
    let addr = |a: IpAddr| addr_bits(a).0;
    let iface = |i: &Option<crate::model::Str>| i.as_deref().map_or(0, name_value);
    let mut v = [0u128; dim::N];
    v[dim::PROTO] = p.proto as u128;
    v[dim::SRC] = addr(p.src);
    v[dim::DST] = addr(p.dst);
    v[dim::SPORT] = if p.has_ports() { p.sport as u128 } else { 0 };
    v[dim::DPORT] = if p.has_ports() { p.dport as u128 } else { 0 };
    v[dim::IN] = iface(&p.in_iface);
    v[dim::OUT] = iface(&p.out_iface);
    v[dim::CT] = match p.state {
        CtState::Invalid => 0,
        CtState::New => 1,
        CtState::Established => 2,
        CtState::Related => 3,
        CtState::Untracked => 4,
    };
    v[dim::FRAG] = p.fragment as u128;
    v[dim::FLAGS] = if p.proto == 6 { p.tcp_flags as u128 } else { 0 };
    v[dim::ICMP] = if matches!(p.proto, 1 | 58) {
        (p.icmp.0 as u128) << 8 | p.icmp.1 as u128
    } else {
        0
    };
    v
}

/// Writes the semantic diff as text.
pub fn write_text(w: &mut dyn Write, d: &SemanticDiff) -> io::Result<()> {
    if d.same {
        writeln!(
            w,
            "semantic: no packet changes fate ({} chains compared)",
            d.compared.len()
        )?;
        return Ok(());
    }
    let n: usize = d.paths.iter().map(|p| p.total).sum();
    writeln!(
        w,
        "semantic: {n} set{} of packets change fate in {} of {} chains",
        if n == 1 { "" } else { "s" },
        d.paths.len(),
        d.compared.len()
    )?;
    for s in &d.skipped {
        writeln!(w, "  not compared: {s}")?;
    }
    for p in &d.paths {
        writeln!(w, "{} {} ({}):", p.table, p.chain, p.what)?;
        for b in p.boxes.iter().take(TEXT_BOXES) {
            let mut f: Vec<String> = Vec::new();
            let mut add = |k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    f.push(if k.is_empty() {
                        v.clone()
                    } else {
                        format!("{k} {v}")
                    });
                }
            };
            add("", &b.proto);
            add("src", &b.src);
            add("dst", &b.dst);
            add("sport", &b.sport);
            add("dport", &b.dport);
            add("in", &b.in_iface);
            add("out", &b.out_iface);
            add("state", &b.state);
            add("", &b.fragment);
            add("tcp-flags", &b.tcp_flags);
            add("icmp", &b.icmp);
            if f.is_empty() {
                f.push("all packets".into());
            }
            writeln!(w, "  {}", f.join("  "))?;
            if !b.unknown.is_empty() {
                writeln!(w, "    when (unknown tests): {}", b.unknown.join(", "))?;
            }
            writeln!(w, "    e.g. {}", b.example_text)?;
            for (side, fate) in [("old", &b.old), ("new", &b.new)] {
                write!(w, "    {side}: {} by {}", fate.outcome, fate.by)?;
                match &fate.rule {
                    Some(r) => writeln!(w, ": {r}")?,
                    None => writeln!(w)?,
                }
            }
        }
        if p.total > TEXT_BOXES {
            writeln!(
                w,
                "  ... {} more (--json lists {})",
                p.total - TEXT_BOXES,
                p.boxes.len()
            )?;
        }
    }
    Ok(())
}

/// Boxes printed per chain in text.
const TEXT_BOXES: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(t: &str) -> Ruleset {
        crate::parse_str(t, &crate::ParseOptions::strict("t"))
            .unwrap()
            .ruleset
    }

    #[test]
    fn a_stop_asked_for_gives_no_answer() {
        let a = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n";
        let (old, new) = (rs(a), rs(&a.replace("22", "23")));
        let o = SemanticOptions::default();
        assert!(semantic_diff_until(&old, &new, &o, &|| true).is_none());
        // Stopped at the second chain walked: still nothing.
        let asked = std::cell::Cell::new(0);
        let second = || {
            asked.set(asked.get() + 1);
            asked.get() > 1
        };
        let two = "*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                   -A INPUT -p tcp -m tcp --dport 22 -j DROP\n-A OUTPUT -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n";
        let (old2, new2) = (rs(two), rs(&two.replace("22", "23")));
        assert!(semantic_diff_until(&old2, &new2, &o, &second).is_none());
        assert!(asked.get() >= 2);
        let d = semantic_diff_until(&old, &new, &o, &|| false)
            .expect("not stopped")
            .expect("same family");
        assert_eq!(d.paths.len(), 1);
        assert_eq!(d.paths[0].boxes.len(), 2);
    }
}
