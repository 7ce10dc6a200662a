//! Limits of a walk: jump loops stop it, and so does a budget of rule
//! evaluations.
//!
//! A loop-free ruleset can still make a walk of 2^60 steps (60 chains,
//! each jumping to the next two): the kernel would grind through it, a
//! trace that records every step cannot. When the budget runs out, the
//! walk stops and says how many rules the kernel would evaluate, counted
//! over the chain graph (each chain's cost once, saturating) instead of
//! walked.

use std::fmt;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::compile::Act;
use super::{Frame, Tracer, Walk};

/// Rule evaluations a trace makes before it stops, unless raised.
pub const DEFAULT_MAX_STEPS: u64 = 1_000_000;

/// Why a walk stopped before a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Stopped {
    /// The packet was sent into a chain it was already in.
    Loop {
        /// Table name.
        table: String,
        /// `A -> B -> A`.
        chains: String,
        /// Line of the rule that closed the loop.
        line: u32,
    },
    /// The budget of rule evaluations ran out.
    Budget {
        /// Table name.
        table: String,
        /// Rules evaluated before stopping (the budget).
        evaluated: u64,
        /// Rules the kernel would evaluate for this packet in this table,
        /// from the hook's chain to its verdict (`u64::MAX` when more).
        kernel_evaluations: u64,
    },
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stopped::Loop {
                table,
                chains,
                line,
            } => write!(
                f,
                "stopped at a jump loop in table '{table}': {chains} (closed by the rule at \
                 line {line}); the kernel refuses to load a ruleset with it (ELOOP)"
            ),
            Stopped::Budget {
                table,
                evaluated,
                kernel_evaluations,
            } => {
                let kernel = if *kernel_evaluations == u64::MAX {
                    format!("more than {}", u64::MAX)
                } else {
                    format!("about {kernel_evaluations}")
                };
                write!(
                    f,
                    "stopped after {evaluated} rule evaluations in table '{table}' (the limit; \
                     --max-steps raises it): the kernel would evaluate {kernel} rules for this \
                     packet in this table"
                )
            }
        }
    }
}

/// The chains the walk is in, across jumps and gotos, to notice a loop
/// when it is entered; memory proportional to the call depth.
pub(super) struct CallPath {
    path: Vec<usize>,
    /// Length of `path` at each jump, to cut it back on return.
    marks: Vec<usize>,
    on: FxHashSet<usize>,
}

impl CallPath {
    pub(super) fn new(start: usize) -> Self {
        CallPath {
            path: vec![start],
            marks: Vec::new(),
            on: FxHashSet::from_iter([start]),
        }
    }

    /// Enters `c` by a jump (`push`) or a goto; `Err` with the loop's
    /// chains when `c` is already entered.
    pub(super) fn enter(&mut self, c: usize, push: bool) -> Result<(), Vec<usize>> {
        if self.on.contains(&c) {
            let from = self.path.iter().rposition(|&x| x == c).unwrap_or(0);
            return Err(self.path[from..].to_vec());
        }
        if push {
            self.marks.push(self.path.len());
        }
        self.path.push(c);
        self.on.insert(c);
        Ok(())
    }

    /// Back to the chain of the last jump.
    pub(super) fn back(&mut self) {
        let Some(m) = self.marks.pop() else { return };
        for c in self.path.drain(m..) {
            self.on.remove(&c);
        }
    }
}

/// What walking part of a chain costs: rule evaluations, and whether the
/// walk ends there with a verdict (rather than coming back).
#[derive(Debug, Clone, Copy)]
struct Cost {
    evals: u64,
    ends: bool,
}

/// A chain being costed: where it is and what it has cost so far.
struct Pending {
    chain: usize,
    idx: usize,
    evals: u64,
    /// A matched jump or goto whose target is being costed first.
    waiting: Option<(usize, bool)>,
}

impl Tracer<'_> {
    /// A [`Stopped::Loop`] for the chains of `chains`, closed at rule `rule` of the last.
    pub(super) fn loop_stop(&self, t: usize, chains: &[usize], rule: usize) -> Stopped {
        let table = &self.rs.tables[t];
        let line = chains
            .last()
            .and_then(|&c| table.chains[c].rules.get(rule))
            .map_or(0, |r| r.line);
        Stopped::Loop {
            table: table.name.to_string(),
            chains: crate::parse::loops::loop_names(table, chains),
            line,
        }
    }

    /// A [`Stopped::Budget`] for a walk of table `t` that is at rule `idx`
    /// of `chain` under the callers `stack`, `evaluated_here` rules into it.
    pub(super) fn budget_stop(
        &self,
        t: usize,
        (chain, idx): Frame,
        stack: &[Frame],
        w: &Walk<'_>,
        before_ct: bool,
        evaluated_here: u64,
    ) -> Stopped {
        let mut memo = FxHashMap::default();
        let mut total = evaluated_here;
        let mut here = self.cost_from(t, chain, idx, w, before_ct, &mut memo);
        total = total.saturating_add(here.evals);
        for &(c, i) in stack.iter().rev() {
            if here.ends {
                break;
            }
            here = self.cost_from(t, c, i, w, before_ct, &mut memo);
            total = total.saturating_add(here.evals);
        }
        Stopped::Budget {
            table: self.rs.tables[t].name.to_string(),
            evaluated: w.evals,
            kernel_evaluations: total,
        }
    }

    /// The cost of walking `chain` from rule `idx` with the packet as it is
    /// now, every chain it reaches costed once (`memo`), without recursion.
    fn cost_from(
        &self,
        t: usize,
        chain: usize,
        idx: usize,
        w: &Walk<'_>,
        before_ct: bool,
        memo: &mut FxHashMap<usize, Cost>,
    ) -> Cost {
        let mut stack = vec![Pending {
            chain,
            idx,
            evals: 0,
            waiting: None,
        }];
        let mut on_stack = FxHashSet::from_iter([chain]);
        // What the frame below receives when the top one is done.
        let mut done: Option<Cost> = None;
        loop {
            let Some(top) = stack.last_mut() else {
                return done.unwrap_or(Cost {
                    evals: 0,
                    ends: false,
                });
            };
            let finish = |evals, ends| Some(Cost { evals, ends });
            let mut result = None;
            if let Some((target, goto)) = top.waiting.take() {
                let sub = done.take().or_else(|| memo.get(&target).copied());
                let sub = sub.unwrap_or(Cost {
                    evals: u64::MAX,
                    ends: true,
                });
                top.evals = top.evals.saturating_add(sub.evals);
                if goto || sub.ends {
                    result = finish(top.evals, sub.ends);
                } else {
                    top.idx += 1;
                }
            }
            if result.is_none() {
                let rules = self.chain(t, top.chain);
                while top.idx < rules.len() {
                    let r = &rules[top.idx];
                    top.evals = top.evals.saturating_add(1);
                    if !self.test(t, top.chain, top.idx, r, w, before_ct).0 {
                        top.idx += 1;
                        continue;
                    }
                    match &r.act {
                        Act::Jump(d) | Act::Goto(d) => {
                            top.waiting = Some((*d, matches!(r.act, Act::Goto(_))));
                            break;
                        }
                        Act::Return => {
                            result = finish(top.evals, false);
                            break;
                        }
                        Act::None
                        | Act::Mark(_)
                        | Act::Notrack
                        | Act::Continue(_)
                        | Act::Undefined(_) => top.idx += 1,
                        _ => {
                            result = finish(top.evals, true);
                            break;
                        }
                    }
                }
                if result.is_none() && top.waiting.is_none() {
                    result = finish(top.evals, false);
                }
            }
            if let Some(cost) = result {
                let f = stack.pop().map(|p| (p.chain, p.idx));
                if let Some((c, _)) = f {
                    on_stack.remove(&c);
                    // Only a chain costed from its first rule is memoised.
                    if !stack.is_empty() {
                        memo.insert(c, cost);
                    }
                }
                done = Some(cost);
                continue;
            }
            // A jump or goto: cost its target first, unless known or looping.
            let (target, _) = top.waiting.unwrap_or((0, false));
            if memo.contains_key(&target) || on_stack.contains(&target) {
                done = None;
                continue;
            }
            on_stack.insert(target);
            stack.push(Pending {
                chain: target,
                idx: 0,
                evals: 0,
                waiting: None,
            });
            done = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_path_finds_a_goto_loop_and_forgets_returned_chains() {
        let mut p = CallPath::new(0);
        assert!(p.enter(1, true).is_ok());
        assert!(p.enter(2, false).is_ok());
        assert_eq!(p.enter(1, false), Err(vec![1, 2]));
        p.back();
        // 1 and 2 were left by the return: entering them again is no loop.
        assert!(p.enter(2, true).is_ok());
        assert!(p.enter(1, true).is_ok());
        assert_eq!(p.enter(0, true), Err(vec![0, 2, 1]));
    }
}
