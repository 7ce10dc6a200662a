//! Rules that no packet reaches or that change nothing: per chain, over
//! packet sets of every header field (see `boxes`), with tests the engine
//! cannot see through compared by their text.

use serde::Serialize;

use super::boxes::{PBox, RuleSet, rule_set, rule_set_keyed, set_minus, sets_intersect};
use crate::Ruleset;
use crate::trace::compile::{Act, CRule, compile_rule};

/// What kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Earlier rules match every packet this one could.
    Shadowed,
    /// The rule's own tests contradict each other.
    EmptyMatch,
    /// Every packet it takes would get the same verdict without it.
    Redundant,
    /// No built-in chain leads here.
    UnreachableChain,
    /// After a rule that stops every packet.
    AfterUnconditional,
    /// No packet any caller sends here can match it (or earlier rules take
    /// all of them).
    DeadInContext,
}

impl Kind {
    /// Its name in text output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Shadowed => "shadowed",
            Kind::EmptyMatch => "empty match",
            Kind::Redundant => "redundant",
            Kind::UnreachableChain => "unreachable chain",
            Kind::AfterUnconditional => "after unconditional rule",
            Kind::DeadInContext => "dead in every calling context",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What it is.
    pub kind: Kind,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// 0-based index of the rule in its chain (`None` for a chain finding).
    pub rule: Option<usize>,
    /// 1-based line of the rule (or the chain's declaration).
    pub line: u32,
    /// Why, in words.
    pub reason: String,
    /// Lines of the rules that cover or decide instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<u32>,
    /// For shadowed rules: whether a covering rule's action differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_differs: Option<bool>,
}

/// The result of `lint`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every finding, by table, chain and rule order.
    pub findings: Vec<Finding>,
}

/// How a rule ends a packet's walk of its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// ACCEPT, DROP, REJECT, ... by name: the packet leaves the chain.
    Verdict(String),
    /// RETURN or goto: the packet leaves this chain.
    Leave(String),
    /// Jumps, marks, logs: the packet goes on (maybe changed).
    Continues,
}

fn end_of(a: &Act, names: &[crate::Chain]) -> End {
    match a {
        Act::Accept => End::Verdict("ACCEPT".into()),
        Act::Drop => End::Verdict("DROP".into()),
        Act::Reject => End::Verdict("REJECT".into()),
        Act::Queue { bypass: false } => End::Verdict("QUEUE".into()),
        Act::OtherVerdict(n) => End::Verdict(n.clone()),
        Act::Dnat { .. } | Act::Snat { .. } | Act::Redirect { .. } | Act::Masquerade { .. } => {
            End::Verdict("NAT".into())
        }
        Act::Return => End::Leave("RETURN".into()),
        Act::Goto(c) => End::Leave(format!("goto {}", names[*c].name)),
        _ => End::Continues,
    }
}

/// Non-terminating targets that change nothing later rules or the verdict
/// can see.
fn harmless(a: &Act) -> bool {
    match a {
        Act::None => true,
        Act::Continue(n) => matches!(
            n.as_str(),
            "LOG" | "NFLOG" | "ULOG" | "TRACE" | "AUDIT" | "NFACCT" | "IDLETIMER" | "LED"
        ),
        _ => false,
    }
}

/// Box pieces allowed while subtracting before giving up on a rule.
const CAP: usize = 2048;

struct Prepared {
    set: RuleSet,
    end: End,
    /// Index of the last rule at or before this one that may change what
    /// opaque tests see (MARK, CONNMARK, a jump ...).
    last_change: Option<usize>,
}

/// Modules whose tests keep state (a token bucket, a list, a counter):
/// two such tests never answer alike, even written alike.
const STATEFUL: [&str; 8] = [
    "limit",
    "hashlimit",
    "recent",
    "statistic",
    "connlimit",
    "quota",
    "nth",
    "random",
];

/// Names an opaque test so that equal names mean equal answers: its
/// match's full text, or (stateful modules) a name of its own.
fn opaque_key(
    rule: &crate::Rule,
    idx: usize,
    c: &crate::trace::compile::Cond,
    k: String,
) -> String {
    let crate::trace::Part::Match(m) = c.part else {
        return k;
    };
    match rule.matches().nth(m as usize) {
        Some(mm) if STATEFUL.contains(&mm.module) => format!("#{idx} {k}"),
        Some(mm) => format!("{}{:?}", if c.negated { "!" } else { "" }, mm),
        None => k,
    }
}

fn covers(earlier: &Prepared, j: usize, r: &Prepared) -> bool {
    matches!(earlier.end, End::Verdict(_) | End::Leave(_))
        && (earlier.set.opaque.is_empty()
            || (r.last_change.is_none_or(|c| c < j)
                && earlier.set.opaque.iter().all(|k| r.set.opaque.contains(k))))
}

/// Earlier rules of `rules[..i]` that together take every packet of
/// `want`: their indices, or `None`. `stops` lists, in order, the rules
/// that end a packet's walk of the chain (only they can cover): a chain of
/// a million jumps is then no million-squared walk.
fn covered_by(rules: &[Prepared], stops: &[usize], i: usize, want: &[PBox]) -> Option<Vec<usize>> {
    let mut rest: Vec<PBox> = want.to_vec();
    let mut by = Vec::new();
    for &j in stops.iter().take_while(|&&j| j < i) {
        let e = &rules[j];
        if !covers(e, j, &rules[i]) || !sets_intersect(&rest, &e.set.boxes) {
            continue;
        }
        rest = set_minus(&rest, &e.set.boxes, CAP)?;
        by.push(j);
        if rest.is_empty() {
            return Some(by);
        }
    }
    None
}

/// Lints every table.
pub fn lint(rs: &Ruleset) -> Report {
    // Never cancelled, so there is always a report.
    lint_until(rs, &|| false).unwrap_or_default()
}

/// Lints every table, asking `cancel` now and then (between chains and
/// every few thousand rules) whether to give up; `None` when it did. For
/// callers that may no longer want the answer (an app whose user loaded
/// other rules).
pub fn lint_until(rs: &Ruleset, cancel: &dyn Fn() -> bool) -> Option<Report> {
    let v6 = rs.family == crate::model::Family::Ipv6;
    let mut out = Report::default();
    for table in &rs.tables {
        lint_table(table, v6, &mut out.findings, cancel)?;
    }
    Some(out)
}

/// Rules between two questions to the cancel callback.
const CANCEL_EVERY: usize = 4096;

fn lint_table(
    table: &crate::Table,
    v6: bool,
    out: &mut Vec<Finding>,
    cancel: &dyn Fn() -> bool,
) -> Option<()> {
    let n = table.chains.len();
    // Callers of each chain: (chain, rule).
    let mut callers: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut acts: Vec<Vec<CRule>> = Vec::with_capacity(n);
    for (ci, c) in table.chains.iter().enumerate() {
        let rules: Vec<CRule> = c.rules.iter().map(|r| compile_rule(table, r)).collect();
        for (ri, r) in rules.iter().enumerate() {
            if let Act::Jump(t) | Act::Goto(t) = r.act {
                callers[t].push((ci, ri));
            }
        }
        acts.push(rules);
    }
    // Chains built-in chains lead to.
    let mut reach = vec![false; n];
    let mut todo: Vec<usize> = (0..n).filter(|&c| table.chains[c].builtin).collect();
    for &c in &todo {
        reach[c] = true;
    }
    while let Some(c) = todo.pop() {
        for r in &acts[c] {
            if let Act::Jump(t) | Act::Goto(t) = r.act
                && !reach[t]
            {
                reach[t] = true;
                todo.push(t);
            }
        }
    }
    let finding = |kind, ci: usize, ri: Option<usize>, reason: String| Finding {
        kind,
        table: table.name.to_string(),
        chain: table.chains[ci].name.to_string(),
        rule: ri,
        line: ri.map_or(table.chains[ci].line, |r| table.chains[ci].rules[r].line),
        reason,
        by: Vec::new(),
        action_differs: None,
    };
    for (ci, chain) in table.chains.iter().enumerate() {
        if ci % CANCEL_EVERY == 0 && cancel() {
            return None;
        }
        if !reach[ci] {
            out.push(finding(
                Kind::UnreachableChain,
                ci,
                None,
                if callers[ci].is_empty() {
                    "no rule jumps to it".into()
                } else {
                    "only chains that no built-in chain leads to jump to it".into()
                },
            ));
        }
        let mut last_change = None;
        let rules: Vec<Prepared> = acts[ci]
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let end = end_of(&r.act, &table.chains);
                if end == End::Continues && !harmless(&r.act) {
                    last_change = Some(i);
                }
                Prepared {
                    set: rule_set_keyed(&r.conds, v6, |c, k| opaque_key(&chain.rules[i], i, c, k)),
                    end,
                    last_change,
                }
            })
            .collect();
        let line = |i: usize| chain.rules[i].line;
        let stops: Vec<usize> = (0..rules.len())
            .filter(|&j| matches!(rules[j].end, End::Verdict(_) | End::Leave(_)))
            .collect();
        let uncond: Vec<bool> = rules
            .iter()
            .map(|r| {
                r.set.opaque.is_empty()
                    && r.set.boxes.iter().any(|b| b.is_full(v6))
                    && !matches!(r.end, End::Continues)
            })
            .collect();
        // Rules after the first unconditional one are dead: later checks
        // look no further than it.
        let horizon = uncond
            .iter()
            .position(|u| *u)
            .map_or(rules.len(), |u| u + 1);
        let mut stop: Option<usize> = None;
        for (i, r) in rules.iter().enumerate() {
            if i % CANCEL_EVERY == CANCEL_EVERY - 1 && cancel() {
                return None;
            }
            if let Some(s) = stop {
                let mut f = finding(
                    Kind::AfterUnconditional,
                    ci,
                    Some(i),
                    format!(
                        "line {} ({}) stops every packet before this rule",
                        line(s),
                        end_name(&rules[s].end)
                    ),
                );
                f.by = vec![line(s)];
                out.push(f);
                continue;
            }
            if r.set.boxes.is_empty() {
                out.push(finding(
                    Kind::EmptyMatch,
                    ci,
                    Some(i),
                    "its tests contradict each other: no packet matches".into(),
                ));
                continue;
            }
            let unconditional = uncond[i];
            if let Some(by) = covered_by(&rules, &stops, i, &r.set.boxes) {
                let differs = by.iter().any(|&j| rules[j].end != r.end);
                let mut f = finding(
                    Kind::Shadowed,
                    ci,
                    Some(i),
                    format!(
                        "every packet it matches is taken earlier by line{} {} ({})",
                        if by.len() > 1 { "s" } else { "" },
                        join_lines(by.iter().map(|&j| line(j))),
                        if differs {
                            "a different action"
                        } else {
                            "the same action"
                        }
                    ),
                );
                f.by = by.iter().map(|&j| line(j)).collect();
                f.action_differs = Some(differs);
                out.push(f);
            } else if let Some(f) =
                dead_in_context(table, &acts, &callers, ci, (&rules, &stops), i, v6)
            {
                out.push(f);
            } else if let Some((by, policy)) = redundant(chain, &rules[..horizon], i) {
                let mut f = finding(
                    Kind::Redundant,
                    ci,
                    Some(i),
                    format!(
                        "without it, the packets it takes get {} anyway from {}",
                        end_name(&r.end),
                        match (by.is_empty(), policy) {
                            (true, _) => "the chain's policy".to_string(),
                            (false, false) =>
                                format!("line {}", join_lines(by.iter().map(|&j| line(j)))),
                            (false, true) => format!(
                                "line {} and the chain's policy",
                                join_lines(by.iter().map(|&j| line(j)))
                            ),
                        }
                    ),
                );
                f.by = by.iter().map(|&j| line(j)).collect();
                out.push(f);
            }
            if unconditional {
                stop = Some(i);
            }
        }
    }
    Some(())
}

/// Up to `n` concrete packets from the match space of one rule (its tests
/// the engine sees through; the others are left to chance), for checking
/// a finding with the tracer: the first, last and scattered values of
/// each box. Empty when the rule matches nothing.
pub fn sample_packets(
    rs: &Ruleset,
    table: &str,
    chain: &str,
    rule: usize,
    n: usize,
) -> Vec<crate::trace::Packet> {
    use super::boxes::dim;
    let v6 = rs.family == crate::model::Family::Ipv6;
    let Some(t) = rs.table(table) else {
        return Vec::new();
    };
    let Some(r) = t.chain(chain).and_then(|c| c.rules.get(rule)) else {
        return Vec::new();
    };
    let set = rule_set(&compile_rule(t, r).conds, v6);
    let mut out = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ rule as u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Values a real first packet has, tried first when the set allows.
    let prefer = |d: usize| match d {
        dim::PROTO => Some(6),
        dim::FLAGS => Some(crate::trace::tcp_flags::SYN as u128),
        dim::CT => Some(1),
        dim::FRAG => Some(0),
        dim::ICMP => Some(8 << 8),
        dim::SPORT => Some(40000),
        _ => None,
    };
    // A value of the set: a preferred one, its first, its last, or one in
    // between.
    let mut pick = |s: &super::sets::IntervalSet, k: usize, d: usize| -> Option<u128> {
        if let Some(p) = prefer(d).filter(|p| s.contains(*p) && k % 4 != 3) {
            return Some(p);
        }
        let rs = s.ranges();
        let (lo, hi) = *rs.get(next() as usize % rs.len().max(1))?;
        Some(match k % 3 {
            0 => lo,
            1 => hi,
            _ => {
                lo + ((next() as u128) << 64 | next() as u128) % (hi - lo).saturating_add(1).max(1)
            }
        })
    };
    let name = |v: u128| -> Option<Option<crate::model::Str>> {
        let b = v.to_be_bytes();
        let end = b.iter().position(|c| *c == 0).unwrap_or(16);
        if b[end..].iter().any(|c| *c != 0) {
            return None;
        }
        let s = std::str::from_utf8(&b[..end]).ok()?;
        if !s.chars().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        Some((!s.is_empty()).then(|| s.into()))
    };
    'samples: for k in 0..n * 4 {
        if out.len() >= n || set.boxes.is_empty() {
            break;
        }
        let b = &set.boxes[k % set.boxes.len()];
        let ct = b.0[dim::CT].intersect(&super::sets::IntervalSet::range(0, 4));
        let mut v = [0u128; dim::N];
        for (d, slot) in v.iter_mut().enumerate() {
            let s = if d == dim::CT { &ct } else { &b.0[d] };
            // Interfaces: the start of a range is a name, its inside not.
            let val = if d == dim::IN || d == dim::OUT {
                s.first()
            } else {
                pick(s, k + d, d)
            };
            match val {
                Some(x) => *slot = x,
                None => continue 'samples,
            }
        }
        let (Some(i), Some(o)) = (name(v[dim::IN]), name(v[dim::OUT])) else {
            continue;
        };
        let addr = |x: u128| super::ifaces::bits_addr(x, v6);
        let mut p =
            crate::trace::Packet::new(v[dim::PROTO] as u8, addr(v[dim::SRC]), addr(v[dim::DST]));
        p.sport = v[dim::SPORT] as u16;
        p.dport = v[dim::DPORT] as u16;
        p.in_iface = i;
        p.out_iface = o;
        p.state = match v[dim::CT] {
            0 => crate::trace::CtState::Invalid,
            1 => crate::trace::CtState::New,
            2 => crate::trace::CtState::Established,
            3 => crate::trace::CtState::Related,
            _ => crate::trace::CtState::Untracked,
        };
        p.fragment = v[dim::FRAG] == 1;
        if p.proto == 6 {
            p.tcp_flags = v[dim::FLAGS] as u8;
        }
        p.icmp = ((v[dim::ICMP] >> 8) as u8, v[dim::ICMP] as u8);
        out.push(p);
    }
    out
}

fn end_name(e: &End) -> String {
    match e {
        End::Verdict(n) | End::Leave(n) => n.clone(),
        End::Continues => "continue".into(),
    }
}

fn join_lines(v: impl Iterator<Item = u32>) -> String {
    v.map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
}

/// A rule of a user chain none of whose callers' packets can match it
/// (given its chain's earlier rules).
fn dead_in_context(
    table: &crate::Table,
    acts: &[Vec<CRule>],
    callers: &[Vec<(usize, usize)>],
    ci: usize,
    (rules, stops): (&[Prepared], &[usize]),
    i: usize,
    v6: bool,
) -> Option<Finding> {
    let calls = &callers[ci];
    if calls.is_empty() || calls.len() > 16 || table.chains[ci].builtin {
        return None;
    }
    for &(cc, cr) in calls {
        let ctx = rule_set(&acts[cc][cr].conds, v6);
        let want = super::boxes::set_intersect(&rules[i].set.boxes, &ctx.boxes);
        if want.is_empty() {
            continue;
        }
        covered_by(rules, stops, i, &want)?;
    }
    let lines: Vec<u32> = calls
        .iter()
        .map(|&(cc, cr)| table.chains[cc].rules[cr].line)
        .collect();
    Some(Finding {
        kind: Kind::DeadInContext,
        table: table.name.to_string(),
        chain: table.chains[ci].name.to_string(),
        rule: Some(i),
        line: table.chains[ci].rules[i].line,
        reason: format!(
            "no packet sent here by line{} {} can match it (or earlier rules of the chain take them)",
            if lines.len() > 1 { "s" } else { "" },
            join_lines(lines.iter().copied())
        ),
        by: lines,
        action_differs: None,
    })
}

/// A verdict rule whose packets would get the same verdict from later
/// rules or the policy: the deciding lines and whether the policy is one.
fn redundant(chain: &crate::Chain, rules: &[Prepared], i: usize) -> Option<(Vec<usize>, bool)> {
    let r = &rules[i];
    let End::Verdict(v) = &r.end else { return None };
    let mut rest = r.set.boxes.clone();
    let mut by = Vec::new();
    for (j, s) in rules.iter().enumerate().skip(i + 1) {
        if !sets_intersect(&rest, &s.set.boxes) {
            continue;
        }
        match &s.end {
            End::Verdict(w) if w == v => {
                if s.set.opaque.is_empty() {
                    rest = set_minus(&rest, &s.set.boxes, CAP)?;
                    by.push(j);
                    if rest.is_empty() {
                        return Some((by, false));
                    }
                }
            }
            End::Continues if harmless(&chain_act(chain, j)) => {}
            _ => return None,
        }
    }
    (chain.builtin && chain.policy.as_deref() == Some(v.as_str())).then_some((by, true))
}

fn chain_act(chain: &crate::Chain, j: usize) -> Act {
    // Only the target's name matters here, not its chain index.
    match chain.rules[j].target() {
        None => Act::None,
        Some(t) => Act::Continue(t.name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str) -> Vec<(Kind, u32, Vec<u32>)> {
        let rs = crate::parse_str(text, &crate::ParseOptions::strict("t"))
            .unwrap()
            .ruleset;
        lint(&rs)
            .findings
            .into_iter()
            .map(|f| (f.kind, f.line, f.by))
            .collect()
    }

    #[test]
    fn lint_until_gives_up_when_asked() {
        let rs = crate::parse_str(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n",
            &crate::ParseOptions::strict("t"),
        )
        .unwrap()
        .ruleset;
        assert!(lint_until(&rs, &|| true).is_none());
        let r = lint_until(&rs, &|| false).expect("not cancelled");
        assert_eq!(r.findings.len(), lint(&rs).findings.len());
        assert!(!r.findings.is_empty());
    }

    #[test]
    fn shadowed_by_two_rules_together() {
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A INPUT -p tcp -m tcp --dport 1:100 -j DROP\n\
                 -A INPUT -p tcp -m tcp --dport 101:200 -j ACCEPT\n\
                 -A INPUT -p tcp -m multiport --dports 50,150 -j ACCEPT\n\
                 -A INPUT -p udp -j ACCEPT\nCOMMIT\n";
        let f = findings(t);
        assert!(f.contains(&(Kind::Shadowed, 7, vec![5, 6])), "{f:?}");
        assert!(f.contains(&(Kind::Redundant, 8, vec![])), "{f:?}");
    }

    #[test]
    fn contradiction_unreachable_chain_and_after_unconditional() {
        let t = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:LOST - [0:0]\n\
                 -A INPUT -s 10.0.0.0/8 -m iprange --src-range 11.0.0.1-11.0.0.9 -j ACCEPT\n\
                 -A INPUT -j DROP\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n";
        let f = findings(t);
        assert!(f.contains(&(Kind::EmptyMatch, 6, vec![])), "{f:?}");
        assert!(f.contains(&(Kind::AfterUnconditional, 8, vec![7])), "{f:?}");
        assert!(f.contains(&(Kind::UnreachableChain, 5, vec![])), "{f:?}");
        assert!(f.contains(&(Kind::Redundant, 7, vec![])), "{f:?}");
    }

    #[test]
    fn rate_limited_rules_do_not_cover() {
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A INPUT -p icmp -m limit --limit 1/s -j ACCEPT\n\
                 -A INPUT -p icmp -j DROP\nCOMMIT\n";
        assert!(findings(t).is_empty());
    }

    #[test]
    fn mark_set_between_keeps_a_mark_test_alive() {
        // Line 6 changes the mark, so line 7 is not covered by line 5.
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                 -A INPUT -m mark --mark 0x1 -j RETURN\n-A INPUT -j MARK --set-xmark 0x1/0xffffffff\n\
                 -A INPUT -m mark --mark 0x1 -j DROP\n-A INPUT -m mac --mac-source 00:11:22:33:44:55 -j DROP\n\
                 -A INPUT -m mac --mac-source 00:11:22:33:44:66 -j DROP\nCOMMIT\n";
        let f = findings(t);
        assert!(!f.iter().any(|x| x.0 == Kind::Shadowed), "{f:?}");
    }

    #[test]
    fn dead_for_every_caller() {
        let t = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:UDP - [0:0]\n\
                 -A INPUT -p udp -j UDP\n-A UDP -p tcp -j DROP\n-A UDP -j RETURN\nCOMMIT\n";
        let f = findings(t);
        assert!(f.contains(&(Kind::DeadInContext, 7, vec![6])), "{f:?}");
    }
}
