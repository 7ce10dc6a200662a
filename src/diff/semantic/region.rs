//! The packets a change can touch, per table, from the rule diff.
//!
//! The rule diff aligns each pair of chains; the rules outside the common
//! sequence (added, removed, changed, moved) are the only ones whose order
//! among the rules a packet matches can differ. A packet none of them can
//! match, in a chain it can enter, meets the same rules in the same order
//! on both sides, so its fate is the same. The region is therefore the
//! union, over those rules, of where the rule's known tests hold within the
//! packets that can enter its chain (both over-approximated: unknown tests
//! are left out). A changed policy or a table on one side only makes the
//! whole table the region.

use std::collections::HashMap;

use super::walk::{disjoint_capped, known_boxes};
use crate::analysis::boxes::{PBox, set_intersect};
use crate::diff::{ChangeKind, RuleDiff, Status};
use crate::model::Table;
use crate::trace::compile::{Act, CRule, compile_rule};

/// Boxes an entry set may hold before it is taken as every packet.
const ENTRY_CAP: usize = 4096;

/// What can enter each chain of one table, worked out on demand.
struct Entries<'t> {
    table: &'t Table,
    v6: bool,
    rules: Vec<Vec<CRule>>,
    callers: Vec<Vec<(usize, usize)>>,
    memo: HashMap<usize, Vec<PBox>>,
}

impl<'t> Entries<'t> {
    fn new(table: &'t Table, v6: bool) -> Entries<'t> {
        let rules: Vec<Vec<CRule>> = table
            .chains
            .iter()
            .map(|c| c.rules.iter().map(|r| compile_rule(table, r)).collect())
            .collect();
        let mut callers = vec![Vec::new(); rules.len()];
        for (ci, rs) in rules.iter().enumerate() {
            for (ri, r) in rs.iter().enumerate() {
                if let Act::Jump(t) | Act::Goto(t) = r.act {
                    callers[t].push((ci, ri));
                }
            }
        }
        Entries {
            table,
            v6,
            rules,
            callers,
            memo: HashMap::new(),
        }
    }

    fn entry(&mut self, c: usize, depth: usize) -> Vec<PBox> {
        if self.table.chains[c].builtin || depth > 60 {
            return vec![PBox::full(self.v6)];
        }
        if let Some(e) = self.memo.get(&c) {
            return e.clone();
        }
        // A loop of jumps (refused by the kernel): everything.
        self.memo.insert(c, vec![PBox::full(self.v6)]);
        let mut acc: Vec<PBox> = Vec::new();
        for (d, r) in self.callers[c].clone() {
            let e = self.entry(d, depth + 1);
            let rb = known_boxes(&self.rules[d][r], self.v6);
            acc.extend(set_intersect(&e, &rb));
            if acc.len() > ENTRY_CAP {
                acc = vec![PBox::full(self.v6)];
                break;
            }
        }
        self.memo.insert(c, acc.clone());
        acc
    }

    /// Where rule `ri` (0-based) of chain `name` may match.
    fn rule_region(&mut self, name: &str, ri: usize) -> Vec<PBox> {
        let Some(c) = self.table.chain_position(name) else {
            return vec![PBox::full(self.v6)];
        };
        let Some(r) = self.rules[c].get(ri) else {
            return vec![PBox::full(self.v6)];
        };
        let rb = known_boxes(r, self.v6);
        if rb.is_empty() {
            return rb;
        }
        let e = self.entry(c, 0);
        set_intersect(&e, &rb)
    }
}

/// Per table name: `None` for every packet, else disjoint boxes holding
/// every packet whose fate may differ (empty: none).
pub(crate) fn regions(
    rd: &RuleDiff,
    old: &crate::Ruleset,
    new: &crate::Ruleset,
    v6: bool,
) -> HashMap<String, Option<Vec<PBox>>> {
    let mut out = HashMap::new();
    for td in &rd.tables {
        let (Some(ot), Some(nt)) = (old.table(&td.name), new.table(&td.name)) else {
            out.insert(td.name.clone(), None);
            continue;
        };
        if td.status != Status::Changed {
            out.insert(td.name.clone(), None);
            continue;
        }
        let mut eo = Entries::new(ot, v6);
        let mut en = Entries::new(nt, v6);
        let mut boxes: Vec<PBox> = Vec::new();
        let mut whole = false;
        'chains: for cd in &td.chains {
            if cd.policy.is_some() {
                whole = true;
                break;
            }
            let old_name = cd.old_name.as_deref().unwrap_or(&cd.name);
            for rc in &cd.rules {
                if rc.kind == ChangeKind::Counters {
                    continue;
                }
                if let Some(o) = &rc.old {
                    boxes.extend(eo.rule_region(old_name, o.index.saturating_sub(1)));
                }
                if let Some(n) = &rc.new {
                    boxes.extend(en.rule_region(&cd.name, n.index.saturating_sub(1)));
                }
                if boxes.len() > ENTRY_CAP * 4 {
                    whole = true;
                    break 'chains;
                }
            }
        }
        let region = if whole { None } else { disjoint_capped(boxes) };
        out.insert(td.name.clone(), region);
    }
    out
}
