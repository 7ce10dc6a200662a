//! Packet sets over every header field the tracer knows as a union of
//! boxes: each box is one interval set per field.

use super::sets::IntervalSet;
use crate::trace::compile::{Cond, Test};

/// Fields of a box.
pub(crate) mod dim {
    pub const PROTO: usize = 0;
    pub const SRC: usize = 1;
    pub const DST: usize = 2;
    pub const SPORT: usize = 3;
    pub const DPORT: usize = 4;
    pub const IN: usize = 5;
    pub const OUT: usize = 6;
    /// Conntrack state index (0 INVALID, 1 NEW, 2 ESTABLISHED, 3 RELATED,
    /// 4 UNTRACKED) + 5 when DNAT'd + 10 when SNAT'd.
    pub const CT: usize = 7;
    pub const FRAG: usize = 8;
    pub const FLAGS: usize = 9;
    /// ICMP type * 256 + code.
    pub const ICMP: usize = 10;
    pub const N: usize = 11;
}

/// The largest value of each field.
pub(crate) fn dim_max(d: usize, v6: bool) -> u128 {
    match d {
        dim::PROTO | dim::FLAGS => 255,
        dim::SRC | dim::DST => super::ifaces::max_addr(v6),
        dim::SPORT | dim::DPORT | dim::ICMP => 65535,
        dim::IN | dim::OUT => u128::MAX,
        dim::CT => 19,
        dim::FRAG => 1,
        _ => 0,
    }
}

/// One box: a set per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PBox(pub [IntervalSet; dim::N]);

impl PBox {
    pub(crate) fn full(v6: bool) -> PBox {
        PBox(std::array::from_fn(|d| IntervalSet::full(dim_max(d, v6))))
    }

    pub(crate) fn with(v6: bool, d: usize, s: IntervalSet) -> PBox {
        let mut b = PBox::full(v6);
        b.0[d] = s;
        b
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().any(IntervalSet::is_empty)
    }

    pub(crate) fn is_full(&self, v6: bool) -> bool {
        self.0
            .iter()
            .enumerate()
            .all(|(d, s)| s.is_full(dim_max(d, v6)))
    }

    pub(crate) fn intersect(&self, o: &PBox) -> PBox {
        PBox(std::array::from_fn(|d| self.0[d].intersect(&o.0[d])))
    }

    pub(crate) fn intersects(&self, o: &PBox) -> bool {
        self.0.iter().zip(&o.0).all(|(a, b)| a.intersects(b))
    }

    #[cfg(test)]
    pub(crate) fn is_subset(&self, o: &PBox) -> bool {
        self.0.iter().zip(&o.0).all(|(a, b)| a.is_subset(b))
    }

    /// `self` minus `o`, as disjoint boxes.
    pub(crate) fn minus(&self, o: &PBox, out: &mut Vec<PBox>) {
        if !self.intersects(o) {
            out.push(self.clone());
            return;
        }
        let mut cur = self.clone();
        for d in 0..dim::N {
            let outside = cur.0[d].minus(&o.0[d]);
            if !outside.is_empty() {
                let mut piece = cur.clone();
                piece.0[d] = outside;
                out.push(piece);
                cur.0[d] = cur.0[d].intersect(&o.0[d]);
            }
        }
    }
}

/// A set of packets: boxes (possibly overlapping).
pub(crate) type PSet = Vec<PBox>;

/// `a` minus `b`; `None` when the pieces grow past `cap`.
pub(crate) fn set_minus(a: &[PBox], b: &[PBox], cap: usize) -> Option<PSet> {
    let mut cur: PSet = a.to_vec();
    for o in b {
        let mut next = Vec::with_capacity(cur.len());
        for x in &cur {
            x.minus(o, &mut next);
        }
        if next.len() > cap {
            return None;
        }
        cur = next;
    }
    Some(cur)
}

pub(crate) fn set_intersect(a: &[PBox], b: &[PBox]) -> PSet {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let z = x.intersect(y);
            if !z.is_empty() {
                out.push(z);
            }
        }
    }
    out
}

pub(crate) fn sets_intersect(a: &[PBox], b: &[PBox]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.intersects(y)))
}

/// An interface name as a number: its bytes, zero-padded to 16, big
/// endian, so that a prefix `eth+` is one interval.
pub(crate) fn iface_range(name: &str, prefix: bool) -> IntervalSet {
    let mut b = [0u8; 16];
    for (i, c) in name.bytes().take(16).enumerate() {
        b[i] = c;
    }
    let lo = u128::from_be_bytes(b);
    if !prefix {
        return IntervalSet::range(lo, lo);
    }
    let n = name.len().min(16);
    let hi = if n == 16 {
        lo
    } else {
        lo | (u128::MAX >> (n * 8))
    };
    IntervalSet::range(lo, hi)
}

const PORT_PROTOS: [(u128, u128); 4] = [(6, 6), (17, 17), (132, 132), (136, 136)];

fn ports_set(p: &crate::trace::compile::Ports) -> IntervalSet {
    IntervalSet::from_ranges(
        p.ranges()
            .iter()
            .map(|r| (r.lo as u128, r.hi as u128))
            .collect(),
    )
}

/// What a test means as packet sets: boxes, or an opaque test the set
/// engine cannot see through.
pub(crate) enum Meaning {
    /// Boxes where the test (with its `!`) holds.
    Boxes(PSet),
    /// Unknown to the engine; the key names it (equal keys, equal tests).
    Opaque(String),
}

/// The meaning of one condition, `!` included.
pub(crate) fn meaning(c: &Cond, v6: bool) -> Meaning {
    let one = |d: usize, s: IntervalSet| -> Meaning {
        let s = if c.negated {
            s.complement(dim_max(d, v6))
        } else {
            s
        };
        Meaning::Boxes(vec![PBox::with(v6, d, s)])
    };
    // A test on two fields, `proto in P and field in S`.
    let two = |pd: IntervalSet, d: usize, s: IntervalSet| -> Meaning {
        if !c.negated {
            let mut b = PBox::with(v6, dim::PROTO, pd);
            b.0[d] = s;
            return Meaning::Boxes(vec![b]);
        }
        let other = PBox::with(v6, dim::PROTO, pd.complement(255));
        let mut b = PBox::with(v6, dim::PROTO, pd);
        b.0[d] = s.complement(dim_max(d, v6));
        Meaning::Boxes(vec![other, b])
    };
    let opaque = || Meaning::Opaque(format!("{}{:?}", if c.negated { "!" } else { "" }, c.test));
    let has_ports = || IntervalSet::from_ranges(PORT_PROTOS.to_vec());
    match &c.test {
        Test::Proto(n) => one(dim::PROTO, IntervalSet::range(*n as u128, *n as u128)),
        Test::Src(n) => match super::lits::net_set(n, v6) {
            Some(s) => one(dim::SRC, s),
            None => opaque(),
        },
        Test::Dst(n) => match super::lits::net_set(n, v6) {
            Some(s) => one(dim::DST, s),
            None => opaque(),
        },
        Test::SrcRange(r) => one(dim::SRC, super::lits::range_set(r, v6)),
        Test::DstRange(r) => one(dim::DST, super::lits::range_set(r, v6)),
        Test::InIface(i) => {
            let (n, p) = i.pattern();
            one(dim::IN, iface_range(n, p))
        }
        Test::OutIface(i) => {
            let (n, p) = i.pattern();
            one(dim::OUT, iface_range(n, p))
        }
        Test::Fragment => one(dim::FRAG, IntervalSet::range(1, 1)),
        Test::Field(crate::trace::fields::FieldTest::NotLaterFragment) => {
            one(dim::FRAG, IntervalSet::range(0, 0))
        }
        Test::Sport(p) => two(has_ports(), dim::SPORT, ports_set(p)),
        Test::Dport(p) => two(has_ports(), dim::DPORT, ports_set(p)),
        Test::AnyPort(p) => {
            let s = ports_set(p);
            if !c.negated {
                let a = PBox::with(v6, dim::PROTO, has_ports());
                let mut b = a.clone();
                let mut a = a;
                a.0[dim::SPORT] = s.clone();
                b.0[dim::DPORT] = s;
                return Meaning::Boxes(vec![a, b]);
            }
            let other = PBox::with(v6, dim::PROTO, has_ports().complement(255));
            let mut b = PBox::with(v6, dim::PROTO, has_ports());
            b.0[dim::SPORT] = s.complement(65535);
            b.0[dim::DPORT] = s.complement(65535);
            Meaning::Boxes(vec![other, b])
        }
        Test::TcpFlags { mask, comp } => {
            let f: Vec<(u128, u128)> = (0u16..=255)
                .filter(|f| (*f as u8) & mask == *comp)
                .map(|f| (f as u128, f as u128))
                .collect();
            two(
                IntervalSet::range(6, 6),
                dim::FLAGS,
                IntervalSet::from_ranges(f),
            )
        }
        Test::Icmp(ty) => match ty {
            None => one(dim::ICMP, IntervalSet::full(65535)),
            Some((t, None)) => one(
                dim::ICMP,
                IntervalSet::range((*t as u128) << 8, (*t as u128) << 8 | 255),
            ),
            Some((t, Some(code))) => {
                let v = (*t as u128) << 8 | *code as u128;
                one(dim::ICMP, IntervalSet::range(v, v))
            }
        },
        Test::CtState(bits) => {
            use crate::trace::compile::ct_bits::*;
            let state_bits = [INVALID, NEW, ESTABLISHED, RELATED, UNTRACKED];
            let v: Vec<(u128, u128)> = (0u8..20)
                .filter(|v| {
                    let mut have = state_bits[(v % 5) as usize];
                    if (v / 5) & 1 == 1 {
                        have |= DNAT;
                    }
                    if v / 10 == 1 {
                        have |= SNAT;
                    }
                    have & bits != 0
                })
                .map(|v| (v as u128, v as u128))
                .collect();
            one(dim::CT, IntervalSet::from_ranges(v))
        }
        _ => opaque(),
    }
}

/// A rule's match: boxes (empty: never) and the opaque tests it also needs.
#[derive(Debug, Clone)]
pub(crate) struct RuleSet {
    pub boxes: PSet,
    pub opaque: Vec<String>,
}

/// The match of a rule's conditions; opaque tests named by their `Test`.
pub(crate) fn rule_set(conds: &[Cond], v6: bool) -> RuleSet {
    rule_set_keyed(conds, v6, |_, k| k)
}

/// The same, with opaque tests named by `key(cond, default name)`.
pub(crate) fn rule_set_keyed(
    conds: &[Cond],
    v6: bool,
    key: impl Fn(&Cond, String) -> String,
) -> RuleSet {
    let mut boxes = vec![PBox::full(v6)];
    let mut opaque = Vec::new();
    for c in conds {
        match meaning(c, v6) {
            Meaning::Boxes(alts) => {
                boxes = set_intersect(&boxes, &alts);
                if boxes.is_empty() {
                    break;
                }
            }
            Meaning::Opaque(k) => opaque.push(key(c, k)),
        }
    }
    opaque.sort();
    opaque.dedup();
    RuleSet { boxes, opaque }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_prefix_is_an_interval() {
        let eth = iface_range("eth", true);
        assert!(eth.is_subset(&eth));
        assert!(iface_range("eth0", false).is_subset(&eth));
        assert!(iface_range("eth", false).is_subset(&eth));
        assert!(!iface_range("et", false).is_subset(&eth));
        assert!(!iface_range("eti0", false).is_subset(&eth));
        assert!(iface_range("", true).is_full(u128::MAX));
    }

    #[test]
    fn box_minus_covers_exactly() {
        let v6 = false;
        let a = PBox::with(v6, dim::DPORT, IntervalSet::range(0, 100));
        let b = PBox::with(v6, dim::DPORT, IntervalSet::range(50, 60));
        let rest = set_minus(std::slice::from_ref(&a), std::slice::from_ref(&b), 100).unwrap();
        assert!(!sets_intersect(&rest, std::slice::from_ref(&b)));
        let back = set_minus(&[a], &rest, 100).unwrap();
        assert!(back.iter().all(|x| x.is_subset(&b)));
    }
}
