//! Checks of a read nft ruleset that nft itself would refuse to load:
//! jumps to chains and references to sets that the table does not have,
//! and loops between chains.

use std::collections::HashMap;

use crate::parse::{Problem, Severity};

use super::model::*;

/// What is wrong; `src` (the text that was read, if any) gives each
/// problem its source line.
pub fn problems(rs: &NftRuleset, src: Option<&str>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut loops = Vec::new();
    let lines: Vec<&str> = src.map_or(Vec::new(), |s| s.lines().collect());
    let mut push = |rule: &Rule, where_: String, message: String| {
        let source = lines
            .get((rule.line as usize).wrapping_sub(1))
            .map_or(String::new(), |l| l.chars().take(300).collect());
        out.push(Problem {
            line: rule.line.max(1),
            column: rule.col.max(1),
            severity: Severity::Error,
            message: if rule.line == 0 {
                format!("{where_}: {message}")
            } else {
                message
            },
            source,
        });
    };
    for t in &rs.tables {
        let chains: HashMap<&str, bool> = t
            .chains
            .iter()
            .map(|c| (c.name.as_str(), c.base.is_some()))
            .collect();
        for c in &t.chains {
            for_each_rule(c, &mut |rule| {
                let where_ = format!("table {} {}, chain {}", t.family, t.name, c.name);
                for v in t.rule_verdicts(rule) {
                    if let Some(target) = v.chain()
                        && !chains.contains_key(target)
                    {
                        push(
                            rule,
                            where_.clone(),
                            format!(
                                "jump to chain `{target}`, which table {} {} does not have",
                                t.family, t.name
                            ),
                        );
                    }
                    if let Some(target) = v.chain()
                        && chains.get(target) == Some(&true)
                    {
                        push(
                            rule,
                            where_.clone(),
                            format!(
                                "jump to base chain `{target}`: nft refuses jumps to base chains"
                            ),
                        );
                    }
                }
                for name in set_refs(rule) {
                    if t.set(name).is_none() {
                        push(
                            rule,
                            where_.clone(),
                            format!(
                                "`@{name}`: table {} {} has no such set or map",
                                t.family, t.name
                            ),
                        );
                    }
                }
            });
        }
        if let Some(cycle) = find_loop(t) {
            loops.push(Problem {
                line: t.line.max(1),
                column: 1,
                severity: Severity::Error,
                message: format!(
                    "table {} {}: chains jump in a loop ({}); nft refuses this",
                    t.family,
                    t.name,
                    cycle.join(" -> ")
                ),
                source: String::new(),
            });
        }
    }
    out.extend(loops);
    out.sort_by_key(|p| (p.line, p.column));
    out
}

/// Calls `f` on every rule of `c`, anonymous chains' rules included.
pub fn for_each_rule<'a>(c: &'a Chain, f: &mut impl FnMut(&'a Rule)) {
    for r in &c.rules {
        f(r);
        for a in r.anonymous_chains() {
            for_each_rule(a, f);
        }
    }
}

/// The names of the named sets and maps a rule uses (`@name`).
pub fn set_refs(rule: &Rule) -> Vec<&str> {
    fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
        match e {
            Expr::SetRef(n) => out.push(n),
            Expr::Range(a, b) => {
                walk(a, out);
                walk(b, out);
            }
            Expr::MapElem(kv) => {
                walk(&kv.0, out);
                walk(&kv.1, out);
            }
            Expr::List(v) | Expr::Set(v) | Expr::Map(v) | Expr::Concat(v) => {
                v.iter().for_each(|x| walk(x, out))
            }
            Expr::Lookup { key, map } => {
                walk(key, out);
                walk(map, out);
            }
            Expr::Binop { left, right, .. } => {
                walk(left, out);
                walk(right, out);
            }
            Expr::Elem { value, .. } => walk(value, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for s in &rule.stmts {
        match s {
            Stmt::Match(m) => {
                walk(&m.left, &mut out);
                walk(&m.right, &mut out);
            }
            Stmt::Vmap { key, map } | Stmt::Mangle { key, value: map } => {
                walk(key, &mut out);
                walk(map, &mut out);
            }
            Stmt::Nat(n) => {
                for e in [&n.addr, &n.port].into_iter().flatten() {
                    walk(e, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// A loop of jumps/gotos between the table's named chains, if any.
fn find_loop(t: &Table) -> Option<Vec<String>> {
    let index: HashMap<&str, usize> = t
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = t
        .chains
        .iter()
        .map(|c| {
            let mut v = Vec::new();
            for_each_rule(c, &mut |r| {
                for x in t.rule_verdicts(r) {
                    if let Some(i) = x.chain().and_then(|n| index.get(n)) {
                        v.push(*i);
                    }
                }
            });
            v
        })
        .collect();
    // Iterative depth-first search with colours.
    let mut colour = vec![0u8; t.chains.len()];
    for start in 0..t.chains.len() {
        if colour[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        colour[start] = 1;
        while let Some(&mut (n, ref mut k)) = stack.last_mut() {
            if let Some(&m) = edges[n].get(*k) {
                *k += 1;
                match colour[m] {
                    0 => {
                        colour[m] = 1;
                        stack.push((m, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|&(x, _)| x == m).unwrap_or(0);
                        let mut names: Vec<String> = stack[from..]
                            .iter()
                            .map(|&(x, _)| t.chains[x].name.to_string())
                            .collect();
                        names.push(t.chains[m].name.to_string());
                        return Some(names);
                    }
                    _ => {}
                }
            } else {
                colour[n] = 2;
                stack.pop();
            }
        }
    }
    None
}
