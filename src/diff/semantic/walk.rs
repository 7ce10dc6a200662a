//! One built-in chain of one table, walked with sets of packets: every
//! packet ends in exactly one leaf, a box with one outcome (a verdict or a
//! NAT rewrite) and the rule (or policy) that decided it.
//!
//! Tests the box engine cannot see through (marks, rate limits, random
//! choices, `addrtype` ...) are free yes/no variables named by their text:
//! a leaf records the answers it assumed, so one written alike on both
//! sides is taken alike and a pure refactoring compares equal. A rule that
//! changes the packet or connection mark forgets the answers about marks.

use std::collections::HashMap;

use crate::analysis::boxes::{Meaning, PBox, meaning, set_minus};
use crate::model::Table;
use crate::trace::compile::{Act, CRule, NatPorts, compile_rule};

/// Names of unknown tests, shared by both sides of a diff so that the same
/// text gets the same number.
#[derive(Debug, Default)]
pub(crate) struct Unknowns {
    ids: HashMap<String, u32>,
    pub names: Vec<String>,
}

impl Unknowns {
    fn id(&mut self, k: String) -> u32 {
        if let Some(i) = self.ids.get(&k) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(k.clone(), i);
        self.names.push(k);
        i
    }
}

/// Answers assumed for unknown tests, sorted by test.
pub(crate) type Asm = Vec<(u32, bool)>;

fn asm_get(a: &Asm, k: u32) -> Option<bool> {
    a.binary_search_by_key(&k, |x| x.0).ok().map(|i| a[i].1)
}

fn asm_with(a: &Asm, k: u32, v: bool) -> Asm {
    let mut out = a.clone();
    match out.binary_search_by_key(&k, |x| x.0) {
        Ok(i) => out[i].1 = v,
        Err(i) => out.insert(i, (k, v)),
    }
    out
}

/// Both assumption lists at once, or `None` when they contradict.
pub(crate) fn asm_merge(a: &Asm, b: &Asm) -> Option<Asm> {
    let mut out = a.clone();
    for &(k, v) in b {
        match out.binary_search_by_key(&k, |x| x.0) {
            Ok(i) if out[i].1 != v => return None,
            Ok(_) => {}
            Err(i) => out.insert(i, (k, v)),
        }
    }
    Some(out)
}

/// What happens to the packets of a leaf in this chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Outcome {
    /// ACCEPT, DROP, REJECT, QUEUE or a terminating extension by name.
    Verdict(String),
    /// A NAT target with what it rewrites to (the packet is accepted in
    /// the nat table).
    Nat(String),
    /// The walk went round in circles or too deep (the kernel refuses such
    /// rules).
    Loop,
}

impl Outcome {
    pub(crate) fn text(&self) -> String {
        match self {
            Outcome::Verdict(v) => v.clone(),
            Outcome::Nat(n) => n.clone(),
            Outcome::Loop => "LOOP (jumps go round)".into(),
        }
    }
}

/// Where an outcome was decided: a rule (chain, index) or the policy.
pub(crate) type By = Option<(usize, usize)>;

/// A box of packets with one outcome.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub b: PBox,
    pub asm: Asm,
    pub out: Outcome,
    pub by: By,
}

struct Piece {
    b: PBox,
    asm: Asm,
}

struct Prep {
    /// Disjoint boxes where the known tests hold (empty: never matches).
    boxes: Vec<PBox>,
    /// Unknown tests and the answer each needs for the rule to match.
    needs: Vec<(u32, bool)>,
    act: Act,
}

/// Why a chain could not be walked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalkError {
    /// Too many pieces: the rules cut the packets finer than allowed.
    #[error("the rules cut the packets into more than {limit} pieces")]
    TooMany {
        /// Table.
        table: String,
        /// Chain.
        chain: String,
        /// The limit.
        limit: usize,
    },
    /// Too much work: many pieces met by many rules.
    #[error("more than {0} tests of pieces against rules")]
    TooLong(u64),
}

/// Pieces a chain walk may make before giving up.
pub(crate) const LIMIT: usize = 150_000;
/// Piece-against-rule tests a chain walk may make before giving up (a few
/// seconds).
const WORK: u64 = 150_000_000;
/// Pieces one subtraction may make.
const CAP: usize = 100_000;

fn nat_text(name: &str, addr: Option<std::net::IpAddr>, port: Option<NatPorts>) -> String {
    let mut s = name.to_string();
    if let Some(a) = addr {
        s.push(' ');
        if a.is_ipv6() && port.is_some() {
            s.push_str(&format!("[{a}]"));
        } else {
            s.push_str(&a.to_string());
        }
    }
    if let Some(p) = port {
        s.push_str(if addr.is_some() { ":" } else { " to port " });
        if p.lo == p.hi {
            s.push_str(&p.lo.to_string());
        } else {
            s.push_str(&format!("{}-{}", p.lo, p.hi));
        }
    }
    s
}

/// The outcome of a terminating action, `None` for one that goes on.
fn terminal(a: &Act) -> Option<Outcome> {
    let v = |s: &str| Some(Outcome::Verdict(s.into()));
    match a {
        Act::Accept => v("ACCEPT"),
        Act::Drop => v("DROP"),
        Act::Reject => v("REJECT"),
        Act::Queue { .. } => v("QUEUE"),
        Act::OtherVerdict(n) => v(n),
        Act::Dnat { addr, port } => Some(Outcome::Nat(nat_text("DNAT", *addr, *port))),
        Act::Snat { addr, port } => Some(Outcome::Nat(nat_text("SNAT", *addr, *port))),
        Act::Redirect { port } => Some(Outcome::Nat(nat_text("REDIRECT", None, *port))),
        Act::Masquerade { port } => Some(Outcome::Nat(nat_text("MASQUERADE", None, *port))),
        _ => None,
    }
}

/// Boxes made disjoint: each keeps what earlier ones did not cover.
fn disjoint(v: Vec<PBox>) -> Vec<PBox> {
    let mut out: Vec<PBox> = Vec::with_capacity(v.len());
    for b in v {
        match set_minus(&[b], &out, CAP) {
            Some(rest) => out.extend(rest),
            None => return out,
        }
    }
    out
}

/// Where a compiled rule's known tests hold (its unknown tests left out,
/// so a superset of what it matches).
pub(crate) fn known_boxes(cr: &CRule, v6: bool) -> Vec<PBox> {
    let mut boxes = vec![PBox::full(v6)];
    for cond in &cr.conds {
        if let Meaning::Boxes(alts) = meaning(cond, v6) {
            let mut next = Vec::new();
            for a in &boxes {
                for b in &alts {
                    let z = a.intersect(b);
                    if !z.is_empty() {
                        next.push(z);
                    }
                }
            }
            boxes = next;
            if boxes.is_empty() {
                break;
            }
        }
    }
    boxes
}

/// An unknown test by the text of its match as written (`-m mark --mark
/// 0x1`), so that equal text means the same answer.
fn unknown_name(r: &crate::Rule, c: &crate::trace::compile::Cond, k: String) -> String {
    let crate::trace::Part::Match(m) = c.part else {
        return k;
    };
    match r.matches().nth(m as usize) {
        Some(mm) => {
            let mut s = String::new();
            crate::save::push_match(&mut s, &mm);
            s.trim().to_string()
        }
        None => k,
    }
}

/// Boxes made disjoint, `None` when that takes too many pieces.
pub(crate) fn disjoint_capped(v: Vec<PBox>) -> Option<Vec<PBox>> {
    let mut out: Vec<PBox> = Vec::with_capacity(v.len());
    for b in v {
        let rest = set_minus(&[b], &out, CAP)?;
        out.extend(rest);
        if out.len() > CAP {
            return None;
        }
    }
    Some(out)
}

/// A table's chains, compiled and turned into boxes.
pub(crate) struct Walker<'t> {
    table: &'t Table,
    rules: Vec<Vec<Prep>>,
    made: usize,
    work: u64,
    mark_keys: Vec<bool>,
}

impl<'t> Walker<'t> {
    pub(crate) fn new(table: &'t Table, v6: bool, unknowns: &mut Unknowns) -> Walker<'t> {
        let mut rules = Vec::with_capacity(table.chains.len());
        for c in &table.chains {
            let mut v = Vec::with_capacity(c.rules.len());
            for r in &c.rules {
                let cr: CRule = compile_rule(table, r);
                let mut boxes = known_boxes(&cr, v6);
                let mut needs = Vec::new();
                for cond in &cr.conds {
                    if let Meaning::Opaque(k) = meaning(cond, v6) {
                        let k = unknowns.id(unknown_name(r, cond, k));
                        needs.push((k, true));
                    }
                }
                needs.sort_unstable();
                needs.dedup();
                // `-m x --a` and `! -m x --a` in one rule: never.
                if needs.windows(2).any(|w| w[0].0 == w[1].0) {
                    boxes.clear();
                }
                v.push(Prep {
                    boxes: disjoint(boxes),
                    needs,
                    act: cr.act,
                });
            }
            rules.push(v);
        }
        Walker {
            table,
            rules,
            made: 0,
            work: 0,
            mark_keys: Vec::new(),
        }
    }

    /// Every packet of the chain `start` (a built-in chain) as leaves.
    pub(crate) fn leaves(
        &mut self,
        start: usize,
        unknowns: &Unknowns,
        region: &[PBox],
    ) -> Result<Vec<Leaf>, WalkError> {
        self.mark_keys = unknowns
            .names
            .iter()
            .map(|n| n.starts_with("Mark(") || n.starts_with("Connmark("))
            .collect();
        self.made = 0;
        self.work = 0;
        let mut leaves = Vec::new();
        let input = region
            .iter()
            .map(|b| Piece {
                b: b.clone(),
                asm: Vec::new(),
            })
            .collect();
        let mut stack = Vec::new();
        let left = self.walk(start, input, &mut stack, &mut leaves)?;
        let chain = &self.table.chains[start];
        let policy = chain.policy.as_deref().unwrap_or("ACCEPT").to_string();
        for p in left {
            leaves.push(Leaf {
                b: p.b,
                asm: p.asm,
                out: Outcome::Verdict(policy.clone()),
                by: None,
            });
        }
        Ok(leaves)
    }

    fn count(&mut self, n: usize) -> Result<(), WalkError> {
        self.made += n;
        if self.made > LIMIT {
            return Err(WalkError::TooMany {
                table: self.table.name.to_string(),
                chain: String::new(),
                limit: LIMIT,
            });
        }
        Ok(())
    }

    fn walk(
        &mut self,
        c: usize,
        input: Vec<Piece>,
        stack: &mut Vec<usize>,
        leaves: &mut Vec<Leaf>,
    ) -> Result<Vec<Piece>, WalkError> {
        if stack.contains(&c) || stack.len() > 100 {
            for p in input {
                leaves.push(Leaf {
                    b: p.b,
                    asm: p.asm,
                    out: Outcome::Loop,
                    by: stack.last().map(|&s| (s, 0)),
                });
            }
            return Ok(Vec::new());
        }
        stack.push(c);
        let mut live = input;
        let mut ret: Vec<Piece> = Vec::new();
        for ri in 0..self.rules[c].len() {
            if live.is_empty() {
                break;
            }
            let r = &self.rules[c][ri];
            if r.boxes.is_empty() {
                continue;
            }
            let before = live.len();
            self.work += before as u64;
            if self.work > WORK {
                return Err(WalkError::TooLong(WORK));
            }
            let mut rest: Vec<Piece> = Vec::with_capacity(live.len() + 4);
            let mut hit: Vec<Piece> = Vec::new();
            for p in live {
                if !r.boxes.iter().any(|rb| p.b.intersects(rb)) {
                    rest.push(p);
                    continue;
                }
                let Some(outside) = set_minus(std::slice::from_ref(&p.b), &r.boxes, CAP) else {
                    return Err(WalkError::TooMany {
                        table: self.table.name.to_string(),
                        chain: self.table.chains[c].name.to_string(),
                        limit: CAP,
                    });
                };
                for o in outside {
                    rest.push(Piece {
                        b: o,
                        asm: p.asm.clone(),
                    });
                }
                for rb in &r.boxes {
                    let m = p.b.intersect(rb);
                    if m.is_empty() {
                        continue;
                    }
                    // Unknown tests: the rule matches when each has the
                    // answer it needs.
                    if r.needs.iter().any(|&(k, v)| asm_get(&p.asm, k) == Some(!v)) {
                        rest.push(Piece {
                            b: m,
                            asm: p.asm.clone(),
                        });
                        continue;
                    }
                    let mut asm = p.asm.clone();
                    for &(k, v) in &r.needs {
                        if asm_get(&asm, k).is_none() {
                            rest.push(Piece {
                                b: m.clone(),
                                asm: asm_with(&asm, k, !v),
                            });
                            asm = asm_with(&asm, k, v);
                        }
                    }
                    hit.push(Piece { b: m, asm });
                }
            }
            self.count((rest.len() + hit.len()).saturating_sub(before))?;
            live = rest;
            if hit.is_empty() {
                continue;
            }
            let act = self.rules[c][ri].act.clone();
            if let Some(out) = terminal(&act) {
                for h in hit {
                    leaves.push(Leaf {
                        b: h.b,
                        asm: h.asm,
                        out: out.clone(),
                        by: Some((c, ri)),
                    });
                }
                continue;
            }
            match act {
                Act::Jump(t) => {
                    let back = self.walk(t, hit, stack, leaves)?;
                    live.extend(back);
                }
                Act::Goto(t) => {
                    let back = self.walk(t, hit, stack, leaves)?;
                    ret.extend(back);
                }
                Act::Return => ret.extend(hit),
                Act::Mark(_) => {
                    for mut h in hit {
                        h.asm.retain(|(k, _)| !self.mark_keys[*k as usize]);
                        live.push(h);
                    }
                }
                _ => live.extend(hit),
            }
        }
        stack.pop();
        ret.extend(live);
        Ok(ret)
    }
}
