//! Spoofing protection: with an interface assignment, an interface is
//! protected when every first packet (state NEW, as fffuu assumes: later
//! packets need a connection a first one opened) arriving on it with a
//! source outside its assigned addresses is dropped. Computed over every header field with
//! the upper closure (unknown tests accept, never drop), so "protected"
//! is never said of an interface that is not.

use std::net::IpAddr;

use serde::Serialize;

use super::boxes::{PBox, PSet, dim, iface_range, rule_set, set_intersect, set_minus};
use super::ifaces::{IfaceMap, bits_addr, max_addr};
use super::{AnalysisError, Closure, find_chain};
use crate::Ruleset;
use crate::trace::compile::{Act, compile_rule};

/// The answer for one interface.
#[derive(Debug, Clone, Serialize)]
pub struct IfaceResult {
    /// Interface name.
    pub iface: String,
    /// `protected`, `not protected`, or `unknown` (too many pieces).
    pub status: &'static str,
    /// A spoofed packet that gets through, as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// Its source address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example_src: Option<IpAddr>,
    /// 1-based line of the rule that accepted it (`None`: the policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_by: Option<u32>,
    /// The chain's policy accepted it.
    pub by_policy: bool,
}

/// Box pieces allowed before an interface is given up as unknown.
const CAP: usize = 20_000;

struct Walk<'a> {
    rules: &'a [Vec<(Act, super::boxes::RuleSet, u32)>],
    live: PSet,
    acc: Option<(PBox, Option<u32>)>,
    overflow: bool,
}

impl Walk<'_> {
    fn chain(&mut self, c: usize, ca: PSet, cd: PSet, stack: &mut Vec<usize>) {
        if stack.contains(&c) || stack.len() > 200 {
            return;
        }
        stack.push(c);
        let (va, vd) = Closure::Upper.values();
        let (mut ca, mut cd) = (ca, cd);
        for (act, set, line) in &self.rules[c] {
            if self.live.is_empty() || self.acc.is_some() || self.overflow {
                break;
            }
            if ca.is_empty() && cd.is_empty() {
                break;
            }
            let unknown = !set.opaque.is_empty();
            let none: PSet = Vec::new();
            let pick = |v: bool| if unknown && !v { &none } else { &set.boxes };
            // Under the `!` that RETURN and goto leave, the opposite.
            let (ka, kd, la, ld) = (pick(va), pick(vd), pick(!va), pick(!vd));
            match act {
                Act::Accept | Act::Queue { .. } | Act::OtherVerdict(_) => {
                    let m = set_intersect(&set_intersect(&self.live, &ca), ka);
                    if let Some(b) = m.into_iter().next() {
                        self.acc = Some((b, Some(*line)));
                    }
                }
                Act::Drop | Act::Reject => {
                    let m = set_intersect(&cd, kd);
                    match set_minus(&self.live, &m, CAP) {
                        Some(l) => self.live = l,
                        None => self.overflow = true,
                    }
                }
                Act::Jump(t) | Act::Goto(t) => {
                    let (na, nd) = (set_intersect(&ca, ka), set_intersect(&cd, kd));
                    self.chain(*t, na, nd, stack);
                    if matches!(act, Act::Goto(_)) {
                        self.leave(&mut ca, &mut cd, la, ld);
                    }
                }
                Act::Return => self.leave(&mut ca, &mut cd, la, ld),
                _ => {}
            }
            if ca.len() > CAP || cd.len() > CAP {
                self.overflow = true;
            }
        }
        stack.pop();
    }

    fn leave(&mut self, ca: &mut PSet, cd: &mut PSet, ka: &PSet, kd: &PSet) {
        match (set_minus(ca, ka, CAP), set_minus(cd, kd, CAP)) {
            (Some(a), Some(d)) => (*ca, *cd) = (a, d),
            _ => self.overflow = true,
        }
    }
}

/// Checks every interface of `map` in a chain (FORWARD or INPUT).
pub fn spoofing(
    rs: &Ruleset,
    table: &str,
    chain: &str,
    map: &IfaceMap,
) -> Result<Vec<IfaceResult>, AnalysisError> {
    let (t, start) = find_chain(rs, table, chain)?;
    let tb = &rs.tables[t];
    let v6 = map.v6;
    let rules: Vec<Vec<(Act, super::boxes::RuleSet, u32)>> = tb
        .chains
        .iter()
        .map(|c| {
            c.rules
                .iter()
                .map(|r| {
                    let cr = compile_rule(tb, r);
                    let set = rule_set(&cr.conds, v6);
                    (cr.act, set, r.line)
                })
                .collect()
        })
        .collect();
    let policy_accept = tb.chains[start].policy.as_deref() == Some("ACCEPT");
    let mut out = Vec::new();
    for (name, assigned) in &map.ifaces {
        let mut b = PBox::with(v6, dim::IN, iface_range(name, false));
        b.0[dim::SRC] = assigned.complement(max_addr(v6));
        // First packets only, as fffuu assumes: a later packet needs a
        // connection a first one opened.
        b.0[dim::CT] = super::sets::IntervalSet::range(1, 1);
        if chain == "INPUT" {
            b.0[dim::OUT] = iface_range("", false);
        }
        if b.is_empty() {
            out.push(IfaceResult {
                iface: name.clone(),
                status: "protected",
                example: None,
                example_src: None,
                accepted_by: None,
                by_policy: false,
            });
            continue;
        }
        let mut w = Walk {
            rules: &rules,
            live: vec![b],
            acc: None,
            overflow: false,
        };
        let full = vec![PBox::full(v6)];
        w.chain(start, full.clone(), full, &mut Vec::new());
        let (status, got) = if let Some((b, line)) = w.acc {
            ("not protected", Some((b, line, false)))
        } else if w.overflow {
            ("unknown", None)
        } else if policy_accept && !w.live.is_empty() {
            ("not protected", Some((w.live[0].clone(), None, true)))
        } else {
            ("protected", None)
        };
        let (example, example_src, accepted_by, by_policy) = match got {
            Some((b, line, pol)) => {
                let (txt, src) = example(&b, v6, name);
                (Some(txt), Some(src), line, pol)
            }
            None => (None, None, None, false),
        };
        out.push(IfaceResult {
            iface: name.clone(),
            status,
            example,
            example_src,
            accepted_by,
            by_policy,
        });
    }
    Ok(out)
}

/// A packet of the box, in words, and its source.
fn example(b: &PBox, v6: bool, iface: &str) -> (String, IpAddr) {
    let first = |d: usize| b.0[d].first().unwrap_or(0);
    let port = |d: usize, like: u128| {
        let s = &b.0[d];
        if s.contains(like) {
            like
        } else {
            s.ranges()
                .iter()
                .map(|r| r.0.max(1).min(r.1))
                .next()
                .unwrap_or(0)
        }
    };
    let src = super::reach::representative(&b.0[dim::SRC], v6);
    let dst = super::reach::representative(&b.0[dim::DST], v6);
    let proto = {
        // Prefer TCP, then UDP, then ICMP, when the box allows them.
        let p = &b.0[dim::PROTO];
        [6u128, 17, 1, 58]
            .into_iter()
            .find(|x| p.contains(*x))
            .unwrap_or(first(dim::PROTO)) as u8
    };
    let mut s = format!("{} {} -> {}", crate::trace::protocol_name(proto), src, dst);
    if matches!(proto, 6 | 17 | 132 | 136) {
        s = format!(
            "{} {}:{} -> {}:{}",
            crate::trace::protocol_name(proto),
            src,
            port(dim::SPORT, 40000),
            dst,
            port(dim::DPORT, 22)
        );
    }
    s.push_str(&format!(" in {iface}"));
    let _ = bits_addr;
    (s, src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_and_not() {
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A FORWARD -i eth0 ! -s 10.0.0.0/8 -j DROP\n\
                 -A FORWARD -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        let rs = crate::parse_str(t, &crate::ParseOptions::strict("t"))
            .unwrap()
            .ruleset;
        let m = IfaceMap::parse_ipassmt(
            "a",
            "eth0 = [10.0.0.0/8]\neth1 = all_but_those_ips [10.0.0.0/8]\n",
            false,
        )
        .unwrap();
        let r = spoofing(&rs, "filter", "FORWARD", &m).unwrap();
        assert_eq!(r[0].status, "protected");
        assert_eq!(r[1].status, "not protected");
        assert_eq!(r[1].accepted_by, Some(6));
        let src = r[1].example_src.unwrap();
        let (bits, _) = super::super::ifaces::addr_bits(src);
        assert!(!m.ifaces[1].1.contains(bits));
    }
}
