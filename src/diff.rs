//! What changed between two rulesets, rule by rule.
//!
//! Tables are matched by name, chains by name and then, for the chains left
//! over on each side, by what they hold: a chain whose rules are the same
//! once the names of other renamed chains are set aside (kube-proxy and CNI
//! chains whose hash names moved), or a kube-proxy chain serving the same
//! `namespace/service:port`, is reported as renamed, and jumps into it are
//! compared through the new name. Inside a pair of chains the rules are
//! aligned (Myers diff on their canonical text, counters left out) and the
//! differences sorted into added, removed, changed (same place and target,
//! other matches) and moved.
//!
//! The semantic diff (which packets change fate) is a separate step, see
//! [`semantic`].

pub(crate) mod nft;
pub mod semantic;
mod text;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use similar::{Algorithm, DiffOp, capture_diff_slices_deadline};

use crate::graph::kube::{is_kube_chain, service_label};
use crate::model::{Chain, Counters, Family, Rule, Ruleset, Table};
use crate::save::push_rule_body;

pub use crate::diagram::{mark_view, with_ghosts};
pub(crate) use text::summary_line;
pub use text::write_text;

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Also report rules and policies whose `[packets:bytes]` changed.
    pub counters: bool,
}

/// The rule diff of two rulesets.
#[derive(Debug, Clone, Serialize)]
pub struct RuleDiff {
    /// Name of the old side (file, `<stdin>`, `live: ...`).
    pub old: String,
    /// Name of the new side.
    pub new: String,
    /// The address families, when they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_changed: Option<(Family, Family)>,
    /// Whether `[packets:bytes]` were compared.
    pub counters_compared: bool,
    /// Tables with at least one difference, old order first.
    pub tables: Vec<TableDiff>,
    /// Counts over everything.
    pub summary: Summary,
    /// Which packets change fate; `None` until a semantic diff is run
    /// (see [`semantic::semantic_diff`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic: Option<semantic::SemanticDiff>,
}

impl RuleDiff {
    /// True when nothing differs.
    pub fn is_same(&self) -> bool {
        self.family_changed.is_none() && self.tables.is_empty()
    }
}

/// Whether a table or chain is on one side only, renamed, or on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Only in the new ruleset.
    Added,
    /// Only in the old ruleset.
    Removed,
    /// On both sides under another name (chains only).
    Renamed,
    /// On both sides, with differences.
    Changed,
}

/// The differences in one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableDiff {
    /// Table name.
    pub name: String,
    /// Added, removed or changed.
    pub status: Status,
    /// Chains with differences, in the new table's order, then removed ones
    /// in the old table's order.
    pub chains: Vec<ChainDiff>,
}

/// The differences in one chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainDiff {
    /// The chain's name (the new one when renamed).
    pub name: String,
    /// The old name, when renamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_name: Option<String>,
    /// Added, removed, renamed (with or without rule changes) or changed.
    pub status: Status,
    /// The kube-proxy service the chain serves (`ns/name:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// `(old, new)` policy of a built-in chain whose policy changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<(String, String)>,
    /// `(old, new)` policy counters (only with [`DiffOptions::counters`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_counters: Option<(Option<Counters>, Option<Counters>)>,
    /// Rule differences in new-chain order (removed rules where they were).
    pub rules: Vec<RuleChange>,
}

/// What happened to one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Only in the new chain.
    Added,
    /// Only in the old chain.
    Removed,
    /// Same place and target, other matches.
    Changed,
    /// The same rule at another place.
    Moved,
    /// The same rule with other counters (only with `--counters`).
    Counters,
}

/// One side of a rule change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// 1-based position in its chain.
    pub index: usize,
    /// 1-based line in its input (0 when unknown).
    pub line: u32,
    /// The rule as `-A CHAIN ...`, counters left out.
    pub text: String,
    /// `[packets:bytes]`, when the input has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<Counters>,
}

/// One rule difference.
#[derive(Debug, Clone, Serialize)]
pub struct RuleChange {
    /// What happened.
    pub kind: ChangeKind,
    /// The old rule (all kinds but added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<RuleRef>,
    /// The new rule (all kinds but removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<RuleRef>,
    /// 0-based place in the new chain: the new rule's, or for a removed
    /// rule that of the rule it now stands before.
    #[serde(skip)]
    pub at: usize,
}

/// Counts of differences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Rules in the old ruleset.
    pub old_rules: usize,
    /// Rules in the new ruleset.
    pub new_rules: usize,
    /// Tables only in the new ruleset.
    pub tables_added: usize,
    /// Tables only in the old ruleset.
    pub tables_removed: usize,
    /// Chains only in the new ruleset.
    pub chains_added: usize,
    /// Chains only in the old ruleset.
    pub chains_removed: usize,
    /// Chains recognised under a new name.
    pub chains_renamed: usize,
    /// Built-in chains whose policy changed.
    pub policies_changed: usize,
    /// Rules added (in added chains too).
    pub rules_added: usize,
    /// Rules removed (in removed chains too).
    pub rules_removed: usize,
    /// Rules changed in place.
    pub rules_changed: usize,
    /// Rules moved.
    pub rules_moved: usize,
    /// Rules and policies whose counters changed (with `--counters`).
    pub counters_changed: usize,
}

/// Compares two rulesets.
pub fn diff(
    old: &Ruleset,
    new: &Ruleset,
    old_name: &str,
    new_name: &str,
    opts: &DiffOptions,
) -> RuleDiff {
    let mut summary = Summary {
        old_rules: old.rule_count() + old.nft.rule_count(),
        new_rules: new.rule_count() + new.nft.rule_count(),
        ..Default::default()
    };
    let mut tables = Vec::new();
    let mut seen = HashSet::new();
    for ot in &old.tables {
        seen.insert(ot.name.as_str());
        let nt = new.table(&ot.name);
        if let Some(td) = diff_table(Some(ot), nt, opts, &mut summary) {
            tables.push(td);
        }
    }
    for nt in new
        .tables
        .iter()
        .filter(|t| !seen.contains(t.name.as_str()))
    {
        if let Some(td) = diff_table(None, Some(nt), opts, &mut summary) {
            tables.push(td);
        }
    }
    nft::diff_nft(&old.nft, &new.nft, opts, &mut summary, &mut tables);
    RuleDiff {
        old: old_name.to_string(),
        new: new_name.to_string(),
        family_changed: (old.family != new.family).then_some((old.family, new.family)),
        counters_compared: opts.counters,
        tables,
        summary,
        semantic: None,
    }
}

/// The canonical text of a rule's words after `-A CHAIN` (counters left
/// out), with a jump into a user chain named through `rename`.
fn rule_key(r: &Rule, rename: &dyn Fn(&str) -> Option<String>) -> String {
    let mut body = String::with_capacity(r.text.len());
    push_rule_body(&mut body, r);
    if let Some(t) = r.target()
        && t.is_chain()
        && let Some(to) = rename(t.name)
    {
        // A jump into a user chain has no target options, so the target is
        // the last word.
        let mut suffix = String::from(if t.goto { " -g " } else { " -j " });
        crate::parse::lexer::push_word(&mut suffix, t.name, false);
        if body.ends_with(&suffix) {
            body.truncate(body.len() - suffix.len());
            body.push_str(if t.goto { " -g " } else { " -j " });
            crate::parse::lexer::push_word(&mut body, &to, false);
        }
    }
    body
}

/// `-j NAME` / `-g NAME` of a canonical rule text, without the target's
/// options: a DNAT whose address changed is the same target, changed.
fn target_text(key: &str) -> &str {
    // The target comes last in canonical text; " -j " inside a quoted
    // comment would come before it, so the last one is the target.
    let at = match (key.rfind(" -j "), key.rfind(" -g ")) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return "",
    };
    let rest = &key[at..];
    match rest[4..].find(' ') {
        Some(end) => &rest[..4 + end],
        None => rest,
    }
}

fn rule_line(chain: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + chain.len() + 4);
    s.push_str("-A ");
    crate::parse::lexer::push_word(&mut s, chain, false);
    s.push_str(body);
    s
}

fn rule_ref(chain: &str, i: usize, r: &Rule) -> RuleRef {
    let mut body = String::new();
    push_rule_body(&mut body, r);
    RuleRef {
        index: i + 1,
        line: r.line,
        text: rule_line(chain, &body),
        counters: r.counters,
    }
}

/// The family a chain name belongs to for rename matching: kube-proxy's
/// prefix (a service chain is never renamed into an endpoint chain), or
/// nothing (any other chain may be renamed to any name).
fn rename_class(name: &str) -> &str {
    if is_kube_chain(name) {
        let second = name[5..].find('-').map_or(name.len(), |i| i + 6);
        return &name[..second];
    }
    ""
}

/// Pairs the chains that only one side has by content: `(old index, new
/// index)` into the tables' chain lists.
fn match_renames(ot: &Table, nt: &Table, gone: &[usize], fresh: &[usize]) -> Vec<(usize, usize)> {
    if gone.is_empty() || fresh.is_empty() {
        return Vec::new();
    }
    let gone_names: HashSet<&str> = gone.iter().map(|&i| ot.chains[i].name.as_str()).collect();
    let fresh_names: HashSet<&str> = fresh.iter().map(|&i| nt.chains[i].name.as_str()).collect();
    // Jumps into chains that are themselves unmatched are masked, so that a
    // service chain whose endpoint chains were renamed too still matches.
    let signature = |c: &Chain, unmatched: &HashSet<&str>| -> String {
        let mask = |n: &str| {
            unmatched
                .contains(n)
                .then(|| format!("@{}", rename_class(n)))
        };
        let mut s = String::from(rename_class(&c.name));
        for r in &c.rules {
            s.push('\n');
            s.push_str(&rule_key(r, &mask));
        }
        s
    };
    let mut by_sig: HashMap<String, Vec<usize>> = HashMap::new();
    for &i in gone.iter().rev() {
        let c = &ot.chains[i];
        if !c.rules.is_empty() && !c.builtin {
            by_sig.entry(signature(c, &gone_names)).or_default().push(i);
        }
    }
    let mut pairs = Vec::new();
    let mut paired_new = HashSet::new();
    for &j in fresh {
        let c = &nt.chains[j];
        if c.rules.is_empty() || c.builtin {
            continue;
        }
        if let Some(v) = by_sig.get_mut(&signature(c, &fresh_names))
            && let Some(i) = v.pop()
        {
            pairs.push((i, j));
            paired_new.insert(j);
        }
    }
    // kube-proxy chains whose rules changed as well: the service they serve
    // names them, when exactly one chain of the class serves it on each side.
    let paired_old: HashSet<usize> = pairs.iter().map(|p| p.0).collect();
    let label_map = |t: &Table, idx: &[usize], skip: &HashSet<usize>| {
        let mut m: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for &i in idx.iter().filter(|i| !skip.contains(i)) {
            let c = &t.chains[i];
            if !is_kube_chain(&c.name) {
                continue;
            }
            if let Some(l) = service_label(c.rules.iter()) {
                m.entry((rename_class(&c.name).to_string(), l))
                    .or_default()
                    .push(i);
            }
        }
        m
    };
    let old_labels = label_map(ot, gone, &paired_old);
    let new_labels = label_map(nt, fresh, &paired_new);
    let mut extra: Vec<(usize, usize)> = old_labels
        .iter()
        .filter_map(
            |(k, o)| match (o.as_slice(), new_labels.get(k).map(Vec::as_slice)) {
                ([i], Some([j])) => Some((*i, *j)),
                _ => None,
            },
        )
        .collect();
    extra.sort_unstable();
    pairs.extend(extra);
    pairs
}

fn diff_table(
    ot: Option<&Table>,
    nt: Option<&Table>,
    opts: &DiffOptions,
    sum: &mut Summary,
) -> Option<TableDiff> {
    let empty = Table::default();
    let status = match (ot, nt) {
        (Some(_), Some(_)) => Status::Changed,
        (None, Some(_)) => {
            sum.tables_added += 1;
            Status::Added
        }
        (Some(_), None) => {
            sum.tables_removed += 1;
            Status::Removed
        }
        (None, None) => return None,
    };
    let ot = ot.unwrap_or(&empty);
    let nt = nt.unwrap_or(&empty);
    let name = if status == Status::Added {
        &nt.name
    } else {
        &ot.name
    };

    let gone: Vec<usize> = (0..ot.chains.len())
        .filter(|&i| nt.chain_position(&ot.chains[i].name).is_none())
        .collect();
    let fresh: Vec<usize> = (0..nt.chains.len())
        .filter(|&j| ot.chain_position(&nt.chains[j].name).is_none())
        .collect();
    let renames = match_renames(ot, nt, &gone, &fresh);
    let old_to_new: HashMap<&str, &str> = renames
        .iter()
        .map(|&(i, j)| (ot.chains[i].name.as_str(), nt.chains[j].name.as_str()))
        .collect();
    let renamed_from: HashMap<usize, usize> = renames.iter().map(|&(i, j)| (j, i)).collect();
    let renamed_old: HashSet<usize> = renames.iter().map(|p| p.0).collect();
    let rename = |n: &str| old_to_new.get(n).map(|s| s.to_string());
    let deadline = Instant::now() + Duration::from_secs(2);

    let mut chains = Vec::new();
    for (j, nc) in nt.chains.iter().enumerate() {
        let oc = match ot.chain_position(&nc.name) {
            Some(i) => Some(&ot.chains[i]),
            None => renamed_from.get(&j).map(|&i| &ot.chains[i]),
        };
        let cd = match oc {
            Some(oc) => diff_chain(oc, nc, &rename, opts, deadline, sum),
            None => {
                sum.chains_added += 1;
                sum.rules_added += nc.rules.len();
                Some(one_sided(nc, Status::Added))
            }
        };
        chains.extend(cd);
    }
    for &i in &gone {
        if !renamed_old.contains(&i) {
            let oc = &ot.chains[i];
            sum.chains_removed += 1;
            sum.rules_removed += oc.rules.len();
            chains.push(one_sided(oc, Status::Removed));
        }
    }
    (!chains.is_empty() || status != Status::Changed).then(|| TableDiff {
        name: name.to_string(),
        status,
        chains,
    })
}

fn chain_service(c: &Chain) -> Option<String> {
    if is_kube_chain(&c.name) {
        service_label(c.rules.iter())
    } else {
        None
    }
}

fn one_sided(c: &Chain, status: Status) -> ChainDiff {
    let kind = if status == Status::Added {
        ChangeKind::Added
    } else {
        ChangeKind::Removed
    };
    let rules = c
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rr = Some(rule_ref(&c.name, i, r));
            RuleChange {
                kind,
                old: if status == Status::Removed {
                    rr.clone()
                } else {
                    None
                },
                new: if status == Status::Added { rr } else { None },
                at: i,
            }
        })
        .collect();
    ChainDiff {
        name: c.name.to_string(),
        old_name: None,
        status,
        service: chain_service(c),
        policy: None,
        policy_counters: None,
        rules,
    }
}

/// The line of a rule as written, without `[packets:bytes]`.
fn without_counters(text: &str) -> &str {
    if text.starts_with('[')
        && let Some(end) = text.find(']')
    {
        return text[end + 1..].trim_start();
    }
    text
}

/// Whether two chains hold the same rules written the same way (the common
/// case, decided without building canonical text). Any difference, even
/// only in spelling, leaves it to the full comparison.
fn same_text(oc: &Chain, nc: &Chain) -> bool {
    oc.name == nc.name
        && oc.rules.len() == nc.rules.len()
        && oc
            .rules
            .iter()
            .zip(&nc.rules)
            .all(|(a, b)| without_counters(&a.text) == without_counters(&b.text))
}

fn diff_chain(
    oc: &Chain,
    nc: &Chain,
    rename: &dyn Fn(&str) -> Option<String>,
    opts: &DiffOptions,
    deadline: Instant,
    sum: &mut Summary,
) -> Option<ChainDiff> {
    let renamed = oc.name != nc.name;
    let mut cd = ChainDiff {
        name: nc.name.to_string(),
        old_name: renamed.then(|| oc.name.to_string()),
        status: if renamed {
            Status::Renamed
        } else {
            Status::Changed
        },
        service: chain_service(nc),
        policy: None,
        policy_counters: None,
        rules: Vec::new(),
    };
    if renamed {
        sum.chains_renamed += 1;
    }
    let op = oc.policy.as_deref().unwrap_or("-");
    let np = nc.policy.as_deref().unwrap_or("-");
    if op != np {
        sum.policies_changed += 1;
        cd.policy = Some((op.to_string(), np.to_string()));
    }
    if opts.counters && oc.counters != nc.counters {
        sum.counters_changed += 1;
        cd.policy_counters = Some((oc.counters, nc.counters));
    }

    if !opts.counters && same_text(oc, nc) {
        let changed = renamed || cd.policy.is_some() || cd.policy_counters.is_some();
        return changed.then_some(cd);
    }
    let no_rename = |_: &str| None;
    let old_keys: Vec<String> = oc.rules.iter().map(|r| rule_key(r, rename)).collect();
    let new_keys: Vec<String> = nc.rules.iter().map(|r| rule_key(r, &no_rename)).collect();
    let ops = if old_keys == new_keys {
        vec![DiffOp::Equal {
            old_index: 0,
            new_index: 0,
            len: old_keys.len(),
        }]
    } else {
        capture_diff_slices_deadline(Algorithm::Myers, &old_keys, &new_keys, Some(deadline))
    };

    // Every rule that left one place and came back at another is a move.
    let mut removed: Vec<usize> = Vec::new();
    let mut added: Vec<usize> = Vec::new();
    for op in &ops {
        let (_, o, n) = op.as_tag_tuple();
        if !matches!(op, DiffOp::Equal { .. }) {
            removed.extend(o);
            added.extend(n);
        }
    }
    let mut waiting: HashMap<&str, Vec<usize>> = HashMap::new();
    for &i in removed.iter().rev() {
        waiting.entry(old_keys[i].as_str()).or_default().push(i);
    }
    let mut moved_old: HashMap<usize, usize> = HashMap::new();
    let mut moved_new: HashSet<usize> = HashSet::new();
    for &j in &added {
        if let Some(i) = waiting.get_mut(new_keys[j].as_str()).and_then(Vec::pop) {
            moved_old.insert(i, j);
            moved_new.insert(j);
        }
    }

    let oref = |i: usize| rule_ref(&oc.name, i, &oc.rules[i]);
    let nref = |j: usize| rule_ref(&nc.name, j, &nc.rules[j]);
    // Changes in new-chain order; a removed rule sits where it was.
    let mut out: BTreeMap<(usize, usize), RuleChange> = BTreeMap::new();
    let mut seq = 0usize;
    let mut put = |at: usize, mut c: RuleChange, out: &mut BTreeMap<(usize, usize), RuleChange>| {
        seq += 1;
        c.at = at;
        out.insert((at, seq), c);
    };
    for op in &ops {
        let (_, o, n) = op.as_tag_tuple();
        if let DiffOp::Equal { .. } = op {
            if opts.counters {
                for (i, j) in o.zip(n) {
                    if oc.rules[i].counters != nc.rules[j].counters {
                        sum.counters_changed += 1;
                        let c = RuleChange {
                            kind: ChangeKind::Counters,
                            old: Some(oref(i)),
                            new: Some(nref(j)),
                            at: 0,
                        };
                        put(j, c, &mut out);
                    }
                }
            }
            continue;
        }
        let olds: Vec<usize> = o.clone().filter(|i| !moved_old.contains_key(i)).collect();
        let news: Vec<usize> = n.clone().filter(|j| !moved_new.contains(j)).collect();
        let mut used_new = vec![false; news.len()];
        for (k, &i) in olds.iter().enumerate() {
            // The k-th rule left in a hunk replaced by the k-th new one with
            // the same target was changed in place.
            match news.get(k) {
                Some(&j) if target_text(&old_keys[i]) == target_text(&new_keys[j]) => {
                    used_new[k] = true;
                    sum.rules_changed += 1;
                    let c = RuleChange {
                        kind: ChangeKind::Changed,
                        old: Some(oref(i)),
                        new: Some(nref(j)),
                        at: 0,
                    };
                    put(j, c, &mut out);
                }
                _ => {
                    sum.rules_removed += 1;
                    let c = RuleChange {
                        kind: ChangeKind::Removed,
                        old: Some(oref(i)),
                        new: None,
                        at: 0,
                    };
                    put(n.start, c, &mut out);
                }
            }
        }
        for (k, &j) in news.iter().enumerate() {
            if !used_new[k] {
                sum.rules_added += 1;
                let c = RuleChange {
                    kind: ChangeKind::Added,
                    old: None,
                    new: Some(nref(j)),
                    at: 0,
                };
                put(j, c, &mut out);
            }
        }
    }
    let mut moves: Vec<(usize, usize)> = moved_old.into_iter().collect();
    moves.sort_unstable_by_key(|m| m.1);
    for (i, j) in moves {
        sum.rules_moved += 1;
        let c = RuleChange {
            kind: ChangeKind::Moved,
            old: Some(oref(i)),
            new: Some(nref(j)),
            at: 0,
        };
        put(j, c, &mut out);
    }
    cd.rules = out.into_values().collect();
    let changed =
        renamed || cd.policy.is_some() || cd.policy_counters.is_some() || !cd.rules.is_empty();
    changed.then_some(cd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_str};

    fn rs(text: &str) -> Ruleset {
        parse_str(text, &ParseOptions::strict("t")).unwrap().ruleset
    }

    #[test]
    fn rename_classes() {
        assert_eq!(rename_class("KUBE-SVC-ABCDEF"), "KUBE-SVC-");
        assert_eq!(rename_class("KUBE-SEP-X"), "KUBE-SEP-");
        assert_eq!(rename_class("cali-fw-cali1234"), "");
        assert_eq!(rename_class("SSH"), "");
    }

    #[test]
    fn target_text_is_the_last_jump() {
        let k = " -m comment --comment \"a -j X\" -j DROP";
        assert_eq!(target_text(k), " -j DROP");
        assert_eq!(
            target_text(" -p tcp -j DNAT --to-destination 1.2.3.4"),
            " -j DNAT"
        );
    }

    #[test]
    fn a_swap_is_one_move() {
        let a = rs(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 1.1.1.1/32 -j DROP\n\
                    -A INPUT -s 2.2.2.2/32 -j DROP\n-A INPUT -j ACCEPT\nCOMMIT\n",
        );
        let b = rs(
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 2.2.2.2/32 -j DROP\n\
                    -A INPUT -s 1.1.1.1/32 -j DROP\n-A INPUT -j ACCEPT\nCOMMIT\n",
        );
        let d = diff(&a, &b, "a", "b", &DiffOptions::default());
        assert_eq!(d.summary.rules_moved, 1, "{d:#?}");
        assert_eq!(d.summary.rules_added + d.summary.rules_removed, 0);
    }
}
