//! A compiled rule seen over the packets of one service: protocol, ports
//! and conntrack state fixed, addresses free. Each test becomes a set of
//! sources, a set of destinations, a constant, or unknown.

use std::collections::HashMap;
use std::net::IpAddr;

use super::ifaces::{IfaceMap, max_addr};
use super::sets::IntervalSet;
use crate::trace::Packet;
use crate::trace::compile::{CRule, Env, Net, Outcome, Test, eval};

/// What the fixed part of the packets is, and what decides interfaces.
pub(crate) struct Template<'a> {
    /// The packet: protocol, ports, flags, state (addresses ignored).
    pub pkt: Packet,
    /// IPv6 addresses when true.
    pub v6: bool,
    /// `-i` by source address.
    pub ipassmt: Option<&'a IfaceMap>,
    /// `-o` by destination address.
    pub routes: Option<&'a IfaceMap>,
    /// The packets have no input interface (OUTPUT) / no output one (INPUT).
    pub no_in: bool,
    pub no_out: bool,
}

/// One rule over the free addresses: it matches `src x dst` when `known`
/// (empty sets: never), and `unknown` says whether tests remain that the
/// closure decides.
#[derive(Debug, Clone)]
pub(crate) struct RuleLits {
    pub src: IntervalSet,
    pub dst: IntervalSet,
    pub unknown: bool,
    /// Short names of the unknown tests, for notes.
    pub unknown_what: Vec<String>,
}

impl RuleLits {
    pub(crate) fn never(&self) -> bool {
        self.src.is_empty() || self.dst.is_empty()
    }
}

/// A prefix or range of the family as a set (empty for the other family);
/// `None` for a mask that is not a prefix.
pub(crate) fn net_set(n: &Net, v6: bool) -> Option<IntervalSet> {
    let (lo, hi, nv6) = n.bounds()?;
    Some(if nv6 == v6 {
        IntervalSet::range(lo, hi)
    } else {
        IntervalSet::empty()
    })
}

pub(crate) fn range_set(r: &crate::trace::compile::Range, v6: bool) -> IntervalSet {
    let (lo, hi, rv6) = r.bounds();
    if rv6 == v6 {
        IntervalSet::range(lo, hi)
    } else {
        IntervalSet::empty()
    }
}

enum Lit {
    Const(bool),
    Src(IntervalSet),
    Dst(IntervalSet),
    Unknown(String),
}

fn unknown_name(t: &Test) -> String {
    let s: &str = match t {
        Test::Assume { what, .. } => {
            // "-m mac assumed to match", "limit: assumed under the rate"
            let w = what.split([':', ' ']).find(|w| !w.is_empty() && *w != "-m");
            return match w {
                Some(w) if what.starts_with("-m ") => format!("-m {w}"),
                Some(w) => w.to_string(),
                None => "other match".into(),
            };
        }
        Test::InIface(_) => "-i (no --ipassmt)",
        Test::OutIface(_) => "-o (no --routes)",
        Test::Mark(_) => "mark",
        Test::Connmark(_) => "connmark",
        Test::Set { .. } => "ipset",
        Test::Random(_) => "statistic",
        Test::Length(_) => "length",
        Test::Ttl(..) => "ttl/hl",
        Test::SrcType { .. } | Test::DstType { .. } => "addrtype",
        Test::PktType(_) => "pkttype",
        Test::RpFilter { .. } => "rpfilter",
        Test::CtStatus(_) => "ctstatus",
        Test::Field(f) => f.name(),
        Test::OwnerUid(..) | Test::OwnerGid(..) | Test::SocketExists => "owner",
        Test::Src(_) | Test::Dst(_) | Test::CtOrigSrc(_) | Test::CtOrigDst(_) => {
            "address with a non-prefix mask"
        }
        _ => "other match",
    };
    s.to_string()
}

impl Template<'_> {
    fn lit(&self, t: &Test, env: &Env<'_>) -> Lit {
        let v6 = self.v6;
        let addr = |n: &Net| net_set(n, v6);
        match t {
            Test::Src(n) | Test::CtOrigSrc(n) | Test::CtReplDst(n) => {
                addr(n).map_or(Lit::Unknown(unknown_name(t)), Lit::Src)
            }
            Test::Dst(n) | Test::CtOrigDst(n) | Test::CtReplSrc(n) => {
                addr(n).map_or(Lit::Unknown(unknown_name(t)), Lit::Dst)
            }
            Test::SrcRange(r) => Lit::Src(range_set(r, v6)),
            Test::DstRange(r) => Lit::Dst(range_set(r, v6)),
            Test::InIface(i) if self.no_in => match eval(t, &self.pkt, env) {
                Outcome::Known(b) => Lit::Const(b),
                _ => Lit::Unknown(unknown_name(t)),
            },
            Test::OutIface(i) if self.no_out => match eval(t, &self.pkt, env) {
                Outcome::Known(b) => Lit::Const(b),
                _ => Lit::Unknown(unknown_name(t)),
            },
            Test::InIface(i) => match self.ipassmt {
                Some(m) => {
                    let (n, p) = i.pattern();
                    Lit::Src(m.matching(n, p))
                }
                None => Lit::Unknown(unknown_name(t)),
            },
            Test::OutIface(i) => match self.routes {
                Some(m) => {
                    let (n, p) = i.pattern();
                    Lit::Dst(m.matching(n, p))
                }
                None => Lit::Unknown(unknown_name(t)),
            },
            Test::Proto(_)
            | Test::Fragment
            | Test::Sport(_)
            | Test::Dport(_)
            | Test::AnyPort(_)
            | Test::TcpFlags { .. }
            | Test::Icmp(_)
            | Test::CtState(_)
            | Test::CtProto(_)
            | Test::CtDir(_)
            | Test::CtOrigDstPort(_)
            | Test::CtOrigSrcPort(_)
            | Test::CtReplSrcPort(_)
            | Test::CtReplDstPort(_)
            | Test::Header(_)
            | Test::Field(crate::trace::fields::FieldTest::NotLaterFragment) => {
                match eval(t, &self.pkt, env) {
                    Outcome::Known(b) => Lit::Const(b),
                    _ => Lit::Unknown(unknown_name(t)),
                }
            }
            _ => Lit::Unknown(unknown_name(t)),
        }
    }

    /// The rule over the free addresses.
    pub(crate) fn rule(&self, r: &CRule) -> RuleLits {
        let max = max_addr(self.v6);
        let sets = HashMap::new();
        let env = Env {
            local: &[],
            ipsets: &sets,
            orig_src: IpAddr::from([0u8; 4]),
            orig_dst: IpAddr::from([0u8; 4]),
            orig_dport: self.pkt.dport,
            orig_sport: self.pkt.sport,
            dnat_done: false,
            snat_done: false,
            reply_dir: false,
            socket: false,
            reply: None,
            routing: None,
        };
        let mut out = RuleLits {
            src: IntervalSet::full(max),
            dst: IntervalSet::full(max),
            unknown: false,
            unknown_what: Vec::new(),
        };
        for c in &r.conds {
            match self.lit(&c.test, &env) {
                Lit::Const(b) => {
                    if b == c.negated {
                        out.src = IntervalSet::empty();
                        out.dst = IntervalSet::empty();
                        out.unknown = false;
                        out.unknown_what.clear();
                        return out;
                    }
                }
                Lit::Src(s) => {
                    let s = if c.negated { s.complement(max) } else { s };
                    out.src = out.src.intersect(&s);
                }
                Lit::Dst(s) => {
                    let s = if c.negated { s.complement(max) } else { s };
                    out.dst = out.dst.intersect(&s);
                }
                Lit::Unknown(what) => {
                    out.unknown = true;
                    if !out.unknown_what.contains(&what) {
                        out.unknown_what.push(what);
                    }
                }
            }
        }
        out
    }
}
