//! The diff drawn on the new ruleset's chain graph (`iptviz render
//! --diff`): added chains and rules green, changed ones orange, removed
//! ones as red ghosts.

use std::collections::HashMap;

use super::{DiffMark, DiffMarks, View, ViewRow};
use crate::diff::{ChangeKind, RuleDiff, Status};
use crate::model::Ruleset;

/// The new ruleset with every removed chain (and removed table) put back,
/// so that the chain graph has a node to draw it as a ghost.
pub fn with_ghosts(old: &Ruleset, new: &Ruleset, d: &RuleDiff) -> Ruleset {
    let mut rs = new.clone();
    for td in &d.tables {
        let Some(ot) = old.table(&td.name) else {
            continue;
        };
        if td.status == Status::Removed {
            rs.tables.push(ot.clone());
            continue;
        }
        let Some(nt) = rs.tables.iter_mut().find(|t| t.name == td.name) else {
            continue;
        };
        for cd in td.chains.iter().filter(|c| c.status == Status::Removed) {
            if let Some(c) = ot.chain(&cd.name)
                && nt.chain(&cd.name).is_none()
            {
                let mut ghost = c.clone();
                ghost.builtin = false;
                nt.push_chain(ghost);
            }
        }
    }
    rs
}

fn chain_mark(status: Status, rules_changed: bool) -> Option<DiffMark> {
    match status {
        Status::Added => Some(DiffMark::Added),
        Status::Removed => Some(DiffMark::Removed),
        Status::Renamed => Some(DiffMark::Changed),
        Status::Changed => rules_changed.then_some(DiffMark::Changed),
    }
}

/// Marks the nodes and rule rows of a view of [`with_ghosts`]`(old, new,
/// d)`; in `--rules` views a removed rule is put back as a struck-out row
/// where it was. `new` is the new ruleset (to know how many rows a chain
/// shows).
pub fn mark_view(v: &mut View, d: &RuleDiff, new: &Ruleset) {
    let mut marks = DiffMarks::default();
    // (table, chain) -> its diff
    let mut chains = HashMap::new();
    for td in &d.tables {
        for cd in &td.chains {
            chains.insert((td.name.as_str(), cd.name.as_str()), cd);
        }
    }
    for i in 0..v.nodes.len() {
        let n = &v.nodes[i];
        let table = n.table.to_string();
        let name =
            n.id.strip_prefix(&format!("{table}/"))
                .unwrap_or(&n.id)
                .to_string();
        let name = name.as_str();
        if !n.members.is_empty() {
            // A folded group changed when any of its chains did.
            let any = n.members.iter().any(|m| {
                chains
                    .get(&(table.as_str(), m.as_str()))
                    .is_some_and(|c| chain_mark(c.status, true).is_some())
            });
            if any {
                marks.nodes.push((i, DiffMark::Changed));
            }
            continue;
        }
        let Some(cd) = chains.get(&(table.as_str(), name)) else {
            continue;
        };
        let rules_changed =
            cd.policy.is_some() || cd.rules.iter().any(|r| r.kind != ChangeKind::Counters);
        if let Some(m) = chain_mark(cd.status, rules_changed) {
            marks.nodes.push((i, m));
        }
        if v.nodes[i].rows.is_empty() {
            continue;
        }
        let shown = new
            .table(&table)
            .and_then(|t| t.chain(name))
            .map_or(v.nodes[i].rows.len(), |c| {
                c.rules.len().min(v.nodes[i].rows.len())
            });
        match cd.status {
            Status::Added | Status::Removed => {
                let m = chain_mark(cd.status, true).unwrap_or(DiffMark::Changed);
                for r in 0..v.nodes[i].rows.len() {
                    marks.rows.push((i, r, m));
                }
                continue;
            }
            _ => {}
        }
        // Rows of the new chain, with removed rules put back before the
        // row they stood before.
        let old_rows = std::mem::take(&mut v.nodes[i].rows);
        let mut rows = Vec::with_capacity(old_rows.len());
        let mut moved_to = Vec::with_capacity(old_rows.len());
        let mut row_marks = Vec::new();
        for (k, row) in old_rows.into_iter().enumerate() {
            if k < shown {
                for rc in cd
                    .rules
                    .iter()
                    .filter(|rc| rc.kind == ChangeKind::Removed && rc.at == k)
                {
                    if let Some(o) = &rc.old {
                        row_marks.push((rows.len(), DiffMark::Removed));
                        rows.push(ViewRow {
                            text: format!("removed: {}", short(&o.text, 56)),
                            title: format!("removed (old line {}): {}", o.line, o.text),
                            highlight: false,
                        });
                    }
                }
                if let Some(rc) = cd
                    .rules
                    .iter()
                    .find(|rc| rc.kind != ChangeKind::Removed && rc.at == k)
                {
                    let m = match rc.kind {
                        ChangeKind::Added => Some(DiffMark::Added),
                        ChangeKind::Changed | ChangeKind::Moved => Some(DiffMark::Changed),
                        _ => None,
                    };
                    if let Some(m) = m {
                        row_marks.push((rows.len(), m));
                    }
                }
            }
            moved_to.push(rows.len());
            rows.push(row);
        }
        // Removed rules after the last shown rule of a chain shown whole.
        if shown == moved_to.len() {
            for rc in cd
                .rules
                .iter()
                .filter(|rc| rc.kind == ChangeKind::Removed && rc.at >= shown)
            {
                if let Some(o) = &rc.old {
                    row_marks.push((rows.len(), DiffMark::Removed));
                    rows.push(ViewRow {
                        text: format!("removed: {}", short(&o.text, 56)),
                        title: format!("removed (old line {}): {}", o.line, o.text),
                        highlight: false,
                    });
                }
            }
        }
        v.nodes[i].rows = rows;
        for e in v.edges.iter_mut().filter(|e| e.from == i) {
            if let Some(r) = e.from_row.as_mut()
                && let Some(&to) = moved_to.get(*r)
            {
                *r = to;
            }
        }
        marks
            .rows
            .extend(row_marks.into_iter().map(|(r, m)| (i, r, m)));
    }
    let s = &d.summary;
    v.title = format!(
        "{} | diff against {}: {}",
        v.title,
        d.old,
        if d.is_same() {
            "no differences".to_string()
        } else {
            crate::diff::summary_line(s)
        }
    );
    v.diff = Some(marks);
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
