//! A shortcut through long runs of rules that each test one exact
//! destination address (kube-proxy's `KUBE-SERVICES`: one rule per service
//! VIP, ten thousand of them on a big cluster). Within such a run only the
//! rules naming the packet's destination can match, so a walk that does
//! not list the rules that missed (`matched_only`) jumps straight to them.

use rustc_hash::FxHashMap;

use super::compile::{CRule, Test};

/// Runs shorter than this are scanned rule by rule.
const MIN_RUN: usize = 16;

/// One run: rules `start..end` each require an exact destination.
#[derive(Debug)]
struct Run {
    start: usize,
    end: usize,
    /// Destination (bits, IPv6) to the rule indices naming it, ascending.
    by_dst: FxHashMap<(u128, bool), Vec<usize>>,
}

/// The runs of one chain.
#[derive(Debug, Default)]
pub(crate) struct DstIndex {
    runs: Vec<Run>,
    /// Rule index to its run, `u32::MAX` outside any.
    run_of: Vec<u32>,
}

/// The exact destination a rule requires, if it requires one.
fn exact_dst(r: &CRule) -> Option<(u128, bool)> {
    r.conds.iter().find_map(|c| match &c.test {
        Test::Dst(n) if !c.negated => n.exact(),
        _ => None,
    })
}

impl DstIndex {
    /// Indexes a chain; `None` when it has no run worth it.
    pub(crate) fn build(rules: &[CRule]) -> Option<DstIndex> {
        let dsts: Vec<Option<(u128, bool)>> = rules.iter().map(exact_dst).collect();
        let mut idx = DstIndex {
            runs: Vec::new(),
            run_of: vec![u32::MAX; rules.len()],
        };
        let mut i = 0;
        while i < rules.len() {
            if dsts[i].is_none() {
                i += 1;
                continue;
            }
            let start = i;
            while i < rules.len() && dsts[i].is_some() {
                i += 1;
            }
            if i - start < MIN_RUN {
                continue;
            }
            let mut by_dst: FxHashMap<(u128, bool), Vec<usize>> = FxHashMap::default();
            for (k, d) in dsts[start..i].iter().enumerate() {
                if let Some(d) = d {
                    by_dst.entry(*d).or_default().push(start + k);
                }
            }
            let id = idx.runs.len() as u32;
            idx.run_of[start..i].fill(id);
            idx.runs.push(Run {
                start,
                end: i,
                by_dst,
            });
        }
        (!idx.runs.is_empty()).then_some(idx)
    }

    /// The next rule at or after `at` that can match a packet to `dst`
    /// (`at` itself when it is outside a run, or when it names `dst`).
    pub(crate) fn next(&self, at: usize, dst: std::net::IpAddr) -> usize {
        let Some(&r) = self.run_of.get(at) else {
            return at;
        };
        if r == u32::MAX {
            return at;
        }
        let run = &self.runs[r as usize];
        debug_assert!(run.start <= at && at < run.end);
        let key = match dst {
            std::net::IpAddr::V4(a) => (u32::from(a) as u128, false),
            std::net::IpAddr::V6(a) => (u128::from(a), true),
        };
        match run.by_dst.get(&key) {
            Some(list) => {
                let k = list.partition_point(|&x| x < at);
                list.get(k).copied().unwrap_or(run.end)
            }
            None => run.end,
        }
    }
}
