//! The rule diff of nftables tables: tables by family and name, chains
//! (a base chain's type, hook, priority and policy), rules by their nft
//! text, and the elements of named sets and maps. A table is named
//! `FAMILY NAME` (`inet filter`), a set or map `@NAME` among the chains,
//! as nft refers to it.

use std::collections::HashSet;

use similar::{Algorithm, DiffOp, capture_diff_slices};

use super::{ChainDiff, ChangeKind, DiffOptions, RuleChange, RuleRef, Status, Summary, TableDiff};
use crate::nft::model::{Chain, NftRuleset, Rule, Set, Stmt, Table};
use crate::nft::normal::normalised;

/// Appends the differences of the nft tables of two rulesets to `out`.
pub(super) fn diff_nft(
    old: &NftRuleset,
    new: &NftRuleset,
    opts: &DiffOptions,
    summary: &mut Summary,
    out: &mut Vec<TableDiff>,
) {
    if old.is_empty() && new.is_empty() {
        return;
    }
    // Rules are compared in their normalised form (text and JSON, `==`
    // and an implicit match, element order ...) and shown as written.
    // Normalising keeps every table, chain, rule and set in its place.
    let (old_n, new_n) = (normalised(old), normalised(new));
    let mut seen = HashSet::new();
    for ot in &old.tables {
        seen.insert(key(ot));
        let o = side(old, &old_n, ot);
        let n = side(new, &new_n, ot);
        if let Some(td) = diff_table(o, n, opts, summary) {
            out.push(td);
        }
    }
    for nt in new.tables.iter().filter(|t| !seen.contains(&key(t))) {
        let n = side(new, &new_n, nt);
        if let Some(td) = diff_table(None, n, opts, summary) {
            out.push(td);
        }
    }
}

fn key(t: &Table) -> (crate::nft::model::Family, &str) {
    (t.family, &t.name)
}

/// The table of `rs` that `t` names, with its normalised copy from `n`.
fn side<'a>(rs: &'a NftRuleset, n: &'a NftRuleset, t: &Table) -> Option<Side<'a>> {
    let i = rs.tables.iter().position(|x| key(x) == key(t))?;
    Some(Side {
        shown: &rs.tables[i],
        normal: &n.tables[i],
    })
}

/// Every item of the nft tables as compared, in order: `(table, chain or
/// @set, text)`, with a base chain's or set's head first (`:` + head, or
/// `:regular`). Counter values are left out. For fingerprints of whole
/// rulesets (fleet).
pub(crate) fn items_of(rs: &NftRuleset, mut f: impl FnMut(&str, &str, &str)) {
    if rs.is_empty() {
        return;
    }
    let n = normalised(rs);
    for (t, nt) in rs.tables.iter().zip(&n.tables) {
        let tname = format!("{} {}", t.family.as_str(), t.name);
        for it in items(
            Side {
                shown: t,
                normal: nt,
            },
            false,
        ) {
            let head = format!(":{}", it.head.as_deref().unwrap_or("regular"));
            f(&tname, &it.name, &head);
            for l in &it.lines {
                f(&tname, &it.name, &l.key);
            }
        }
    }
}

/// A table as written and its normalised copy.
#[derive(Clone, Copy)]
struct Side<'a> {
    shown: &'a Table,
    normal: &'a Table,
}

/// One rule or element: what is compared, what is shown, where it was.
#[derive(Clone)]
struct Line {
    key: String,
    shown: String,
    line: u32,
}

/// A rule as the diff compares it: its nft text, counter values left out
/// unless counters are compared.
fn rule_text(r: &Rule, counters: bool) -> String {
    if counters
        || !r.stmts.iter().any(|s| {
            matches!(
                s,
                Stmt::Counter {
                    packets: Some(_),
                    ..
                }
            )
        })
    {
        return r.to_string();
    }
    let mut bare = r.clone();
    for s in &mut bare.stmts {
        if let Stmt::Counter { packets, bytes, .. } = s {
            *packets = None;
            *bytes = None;
        }
    }
    bare.to_string()
}

/// What makes a base chain one, in nft's words; `None` for a regular chain.
fn base_text(c: &Chain) -> Option<String> {
    let b = c.base.as_ref()?;
    let mut s = format!(
        "type {} hook {} priority {}",
        b.kind.as_str(),
        b.hook.as_str(),
        b.priority.value
    );
    if !b.devices.is_empty() {
        s.push_str(&format!(" devices {}", b.devices.join(",")));
    }
    s.push_str(&format!(
        "; policy {}",
        c.policy().map_or("", |p| p.as_str())
    ));
    Some(s)
}

/// A set's declaration (without its elements), and each element as text.
fn set_lines(s: &Set) -> (String, Vec<String>) {
    let mut head = format!(
        "{} {}",
        if s.is_map { "map" } else { "set" },
        s.key_type.join(" . ")
    );
    if !s.data_type.is_empty() {
        head.push_str(&format!(" : {}", s.data_type.join(" . ")));
    }
    if !s.flags.is_empty() {
        head.push_str(&format!(" flags {}", s.flags.join(",")));
    }
    let mut elems: Vec<String> = s.elements.iter().map(|e| e.to_string()).collect();
    // Elements have no order of their own: nft lists them sorted.
    elems.sort_unstable();
    (head, elems)
}

fn rule_ref(i: usize, line: u32, text: String) -> RuleRef {
    RuleRef {
        index: i + 1,
        line,
        text,
        counters: None,
    }
}

/// The rule changes between two lists of lines (rules or elements).
fn diff_lines(old: &[Line], new: &[Line], summary: &mut Summary) -> Vec<RuleChange> {
    let ok: Vec<&str> = old.iter().map(|l| l.key.as_str()).collect();
    let nk: Vec<&str> = new.iter().map(|l| l.key.as_str()).collect();
    let mut out = Vec::new();
    let removed = |i: usize, at: usize| RuleChange {
        kind: ChangeKind::Removed,
        old: Some(rule_ref(i, old[i].line, old[i].shown.clone())),
        new: None,
        at,
    };
    let added = |j: usize| RuleChange {
        kind: ChangeKind::Added,
        old: None,
        new: Some(rule_ref(j, new[j].line, new[j].shown.clone())),
        at: j,
    };
    for op in capture_diff_slices(Algorithm::Myers, &ok, &nk) {
        match op {
            DiffOp::Equal { .. } => {}
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => {
                for i in old_index..old_index + old_len {
                    summary.rules_removed += 1;
                    out.push(removed(i, new_index));
                }
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                for j in new_index..new_index + new_len {
                    summary.rules_added += 1;
                    out.push(added(j));
                }
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                let paired = old_len.min(new_len);
                for k in 0..paired {
                    let (i, j) = (old_index + k, new_index + k);
                    summary.rules_changed += 1;
                    out.push(RuleChange {
                        kind: ChangeKind::Changed,
                        old: Some(rule_ref(i, old[i].line, old[i].shown.clone())),
                        new: Some(rule_ref(j, new[j].line, new[j].shown.clone())),
                        at: j,
                    });
                }
                for i in old_index + paired..old_index + old_len {
                    summary.rules_removed += 1;
                    out.push(removed(i, new_index + new_len));
                }
                for j in new_index + paired..new_index + new_len {
                    summary.rules_added += 1;
                    out.push(added(j));
                }
            }
        }
    }
    out
}

/// A chain or set as the diff sees it: its head (base chain, set type)
/// and its lines.
struct Item {
    name: String,
    head: Option<String>,
    lines: Vec<Line>,
}

fn items(side: Side<'_>, counters: bool) -> Vec<Item> {
    let (t, n) = (side.shown, side.normal);
    let mut v: Vec<Item> = t
        .chains
        .iter()
        .zip(&n.chains)
        .map(|(c, nc)| Item {
            name: c.name.to_string(),
            head: base_text(nc),
            lines: c
                .rules
                .iter()
                .zip(&nc.rules)
                .map(|(r, nr)| Line {
                    key: rule_text(nr, counters),
                    shown: rule_text(r, counters),
                    line: r.line,
                })
                .collect(),
        })
        .collect();
    v.extend(t.sets.iter().zip(&n.sets).map(|(s, ns)| {
        let (head, elems) = set_lines(ns);
        Item {
            name: format!("@{}", s.name),
            head: Some(head),
            lines: elems
                .into_iter()
                .map(|e| Line {
                    key: e.clone(),
                    shown: e,
                    line: s.line,
                })
                .collect(),
        }
    }));
    v
}

fn diff_table(
    ot: Option<Side<'_>>,
    nt: Option<Side<'_>>,
    opts: &DiffOptions,
    summary: &mut Summary,
) -> Option<TableDiff> {
    let t = nt.or(ot)?.shown;
    let name = format!("{} {}", t.family.as_str(), t.name);
    let olds = ot.map(|t| items(t, opts.counters)).unwrap_or_default();
    let news = nt.map(|t| items(t, opts.counters)).unwrap_or_default();
    let mut chains = Vec::new();
    let whole = |it: &Item, status: Status, summary: &mut Summary| {
        let rules: Vec<RuleChange> = it
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let r = Some(rule_ref(i, l.line, l.shown.clone()));
                if status == Status::Added {
                    summary.rules_added += 1;
                    RuleChange {
                        kind: ChangeKind::Added,
                        old: None,
                        new: r,
                        at: i,
                    }
                } else {
                    summary.rules_removed += 1;
                    RuleChange {
                        kind: ChangeKind::Removed,
                        old: r,
                        new: None,
                        at: i,
                    }
                }
            })
            .collect();
        ChainDiff {
            name: it.name.clone(),
            old_name: None,
            status,
            service: None,
            policy: None,
            policy_counters: None,
            rules,
        }
    };
    for n in &news {
        match olds.iter().find(|o| o.name == n.name) {
            None => {
                summary.chains_added += 1;
                chains.push(whole(n, Status::Added, summary));
            }
            Some(o) => {
                let policy = (o.head != n.head).then(|| {
                    summary.policies_changed += 1;
                    (
                        o.head.clone().unwrap_or_else(|| "regular chain".into()),
                        n.head.clone().unwrap_or_else(|| "regular chain".into()),
                    )
                });
                let rules = diff_lines(&o.lines, &n.lines, summary);
                if policy.is_some() || !rules.is_empty() {
                    chains.push(ChainDiff {
                        name: n.name.clone(),
                        old_name: None,
                        status: Status::Changed,
                        service: None,
                        policy,
                        policy_counters: None,
                        rules,
                    });
                }
            }
        }
    }
    for o in olds
        .iter()
        .filter(|o| !news.iter().any(|n| n.name == o.name))
    {
        summary.chains_removed += 1;
        chains.push(whole(o, Status::Removed, summary));
    }
    let status = match (ot, nt) {
        (None, _) => {
            summary.tables_added += 1;
            Status::Added
        }
        (_, None) => {
            summary.tables_removed += 1;
            Status::Removed
        }
        _ if chains.is_empty() => return None,
        _ => Status::Changed,
    };
    Some(TableDiff {
        name,
        status,
        chains,
    })
}
