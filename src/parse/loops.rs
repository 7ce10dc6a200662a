//! Jump loops: a chain that can reach itself through `-j` and `-g`.
//!
//! The kernel refuses a ruleset in which a built-in chain reaches such a
//! loop (`iptables-restore` fails with ELOOP, "Too many links"), since a
//! packet entering it would never leave. A loop no built-in chain reaches
//! is accepted as it stands, and refused as soon as one does: a warning.
//!
//! The search is an iterative depth-first walk (a 100,000-deep chain of
//! jumps must not overflow the stack), linear in chains plus rules, and
//! reports one loop per strongly connected group of chains.

use crate::model::{Ruleset, Table, TargetKind};

use super::{Problem, Severity};

/// Longest loop spelled out in full; longer ones are shortened.
const SHOWN_CHAINS: usize = 8;

/// A loop found in one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpLoop {
    /// Table index in [`Ruleset::tables`].
    pub table: usize,
    /// The chains of the loop in walk order; the last one jumps back to the first.
    pub chains: Vec<usize>,
    /// Chain and rule index of the jump that closes the loop.
    pub closing: (usize, usize),
    /// Whether a built-in chain reaches the loop (the kernel refuses it).
    pub reachable: bool,
}

/// Chain targets of every rule of every chain: `(rule index, target chain)`.
fn edges(t: &Table) -> Vec<Vec<(u32, u32)>> {
    t.chains
        .iter()
        .map(|c| {
            c.rules
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let tg = r.target()?;
                    if tg.kind != TargetKind::Chain {
                        return None;
                    }
                    let to = t.chain_position(tg.name)?;
                    Some((i as u32, to as u32))
                })
                .collect()
        })
        .collect()
}

/// Every jump loop of every table, built-in reachable ones first within a table.
pub fn find_loops(rs: &Ruleset) -> Vec<JumpLoop> {
    let mut out = Vec::new();
    for (ti, t) in rs.tables.iter().enumerate() {
        loops_in(ti, t, &edges(t), &mut out);
    }
    out
}

/// The jump loops of table `ti`, given the chain jumps of each of its
/// chains (`(rule index, target chain)`, jumps to built-in chains
/// included: they are an error of their own and skipped here).
fn loops_in(ti: usize, t: &Table, adj: &[Vec<(u32, u32)>], out: &mut Vec<JumpLoop>) {
    let n = t.chains.len();
    // 0 unseen, 1 on the walk's stack, 2 done.
    let mut state = vec![0u8; n];
    // Position on the stack of a chain while it is on it.
    let mut depth = vec![usize::MAX; n];
    // Which loop group a finished chain belongs to, to report each once.
    let mut reported = vec![false; n];
    let builtins = (0..n).filter(|&c| t.chains[c].builtin);
    let others = (0..n).filter(|&c| !t.chains[c].builtin);
    for (root, reachable) in builtins
        .map(|c| (c, true))
        .chain(others.map(|c| (c, false)))
    {
        if state[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        depth[root] = 0;
        while let Some(top) = stack.len().checked_sub(1) {
            let (c, next) = stack[top];
            let Some(&(rule, to)) = adj[c].get(next) else {
                state[c] = 2;
                depth[c] = usize::MAX;
                stack.pop();
                continue;
            };
            stack[top].1 += 1;
            let (rule, to) = (rule as usize, to as usize);
            if t.chains[to].builtin {
                continue;
            }
            match state[to] {
                0 => {
                    state[to] = 1;
                    depth[to] = stack.len();
                    stack.push((to, 0));
                }
                1 => {
                    let chains: Vec<usize> = stack[depth[to]..].iter().map(|f| f.0).collect();
                    if chains.iter().any(|&x| reported[x]) {
                        continue;
                    }
                    for &x in &chains {
                        reported[x] = true;
                    }
                    out.push(JumpLoop {
                        table: ti,
                        chains,
                        closing: (c, rule),
                        reachable,
                    });
                }
                _ => {}
            }
        }
    }
}

/// `A -> B -> A`, shortened in the middle when long.
pub fn loop_names(t: &Table, chains: &[usize]) -> String {
    let name = |c: usize| t.chains[c].name.as_str();
    let mut parts: Vec<String> = Vec::new();
    if chains.len() <= SHOWN_CHAINS {
        parts.extend(chains.iter().map(|&c| name(c).to_string()));
    } else {
        let head = SHOWN_CHAINS / 2;
        parts.extend(chains[..head].iter().map(|&c| name(c).to_string()));
        parts.push(format!(
            "... ({} more chains) ...",
            chains.len() - SHOWN_CHAINS
        ));
        parts.extend(
            chains[chains.len() - head..]
                .iter()
                .map(|&c| name(c).to_string()),
        );
    }
    if let Some(&first) = chains.first() {
        parts.push(name(first).to_string());
    }
    parts.join(" -> ")
}

/// Appends an error for every loop a built-in chain reaches (a warning for
/// the others), at the jump that closes it.
pub fn check_loops(rs: &Ruleset, problems: &mut Vec<Problem>) {
    report(rs.tables.as_slice(), find_loops(rs), problems);
}

/// [`check_loops`] for one table, with its chain jumps as the target
/// check found them (no second lookup of every target).
pub(crate) fn check_table_loops(t: &Table, calls: &[Vec<(u32, u32)>], problems: &mut Vec<Problem>) {
    let mut found = Vec::new();
    loops_in(0, t, calls, &mut found);
    report(std::slice::from_ref(t), found, problems);
}

/// Each loop as a problem at the jump that closes it; `l.table` indexes
/// `tables`.
fn report(tables: &[Table], loops: Vec<JumpLoop>, problems: &mut Vec<Problem>) {
    for l in loops {
        let t = &tables[l.table];
        let (c, ri) = l.closing;
        let r = &t.chains[c].rules[ri];
        let Some(tg) = r.target() else { continue };
        let flag = if tg.goto { "-g" } else { "-j" };
        let needle = format!("{flag} {}", tg.name);
        let col = r.text.find(&needle).unwrap_or(0);
        let names = loop_names(t, &l.chains);
        let (severity, message) = if l.reachable {
            (
                Severity::Error,
                format!(
                    "jump loop in table '{}': {names}; the kernel refuses it (ELOOP, \"Too many links\")",
                    t.name
                ),
            )
        } else {
            (
                Severity::Warning,
                format!(
                    "jump loop in table '{}': {names}; no built-in chain reaches it yet, the kernel refuses it once one does",
                    t.name
                ),
            )
        };
        problems.push(Problem::at(r.line, &r.text, col, severity, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_str};

    fn loops(body: &str) -> Vec<Problem> {
        let text = format!(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             :A - [0:0]\n:B - [0:0]\n:C - [0:0]\n{body}COMMIT\n"
        );
        let parsed = parse_str(&text, &ParseOptions::lenient("t")).unwrap();
        parsed
            .problems
            .into_iter()
            .filter(|p| p.message.contains("jump loop"))
            .collect()
    }

    #[test]
    fn a_chain_jumping_to_itself_is_a_loop_at_its_jump() {
        let p = loops("-A INPUT -j A\n-A A -j A\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].line, p[0].column), (9, 6));
        assert_eq!(p[0].severity, Severity::Error);
        assert!(p[0].message.contains("A -> A"), "{}", p[0].message);
    }

    #[test]
    fn goto_loops_and_two_chain_loops_are_found() {
        let p = loops("-A INPUT -j A\n-A A -g B\n-A B -g A\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, 10);
        assert!(p[0].message.contains("A -> B -> A"), "{}", p[0].message);
    }

    #[test]
    fn a_loop_no_builtin_reaches_is_a_warning() {
        let p = loops("-A A -j B\n-A B -j A\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].severity, Severity::Warning);
    }

    #[test]
    fn diamonds_are_not_loops() {
        assert!(loops("-A INPUT -j A\n-A INPUT -j B\n-A A -j C\n-A B -j C\n").is_empty());
    }

    #[test]
    fn a_deep_chain_of_jumps_does_not_overflow_the_stack() {
        let n = 200_000;
        let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
        for i in 0..n {
            text.push_str(&format!(":C{i} - [0:0]\n"));
        }
        text.push_str("-A INPUT -j C0\n");
        for i in 0..n - 1 {
            text.push_str(&format!("-A C{i} -j C{}\n", i + 1));
        }
        text.push_str(&format!("-A C{} -j C0\nCOMMIT\n", n - 1));
        let parsed = parse_str(&text, &ParseOptions::lenient("t")).unwrap();
        let found = find_loops(&parsed.ruleset);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].chains.len(), n);
        let names = loop_names(&parsed.ruleset.tables[0], &found[0].chains);
        assert!(names.starts_with("C0 -> C1"), "{names}");
        assert!(names.contains("199992 more chains"), "{names}");
    }
}
