//! After parsing: decide what each target names, and report what
//! `iptables-restore` (or the kernel) would refuse.

use std::collections::HashMap;

use crate::model::{Chain, Ruleset, Str, TargetKind, builtin_chains};
use crate::typed::is_known_target;

use super::{Problem, Severity};

/// Line text lookup for problems about lines we keep no text of.
struct Lines<'a> {
    src: &'a str,
    starts: Option<Vec<usize>>,
}

impl<'a> Lines<'a> {
    fn get(&mut self, line: u32) -> &'a str {
        let src = self.src;
        let starts = self.starts.get_or_insert_with(|| {
            std::iter::once(0)
                .chain(src.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let Some(&s) = starts.get(line.saturating_sub(1) as usize) else {
            return "";
        };
        let e = src[s..].find('\n').map_or(src.len(), |e| s + e);
        src[s..e].trim_end()
    }
}

fn problem(line: u32, text: &str, needle: Option<&str>, sev: Severity, msg: String) -> Problem {
    let col = needle.and_then(|n| text.find(n)).unwrap_or(0);
    Problem::at(line, text, col, sev, msg)
}

/// Resolves every target against its table's chains and appends problems.
pub fn resolve_and_check(rs: &mut Ruleset, src: &str, threads: usize, problems: &mut Vec<Problem>) {
    let mut lines = Lines { src, starts: None };
    for t in &mut rs.tables {
        let known_table = !builtin_chains(&t.name).is_empty();
        for c in &t.chains {
            if c.line == 0 {
                continue;
            }
            let hook = crate::model::HOOK_CHAINS.contains(&c.name.as_str());
            if c.policy.is_some() && !c.builtin && known_table {
                let msg = if hook {
                    format!(
                        "table '{}' has no built-in chain {} (it has: {})",
                        t.name,
                        c.name,
                        builtin_chains(&t.name).join(", ")
                    )
                } else {
                    format!(
                        "user chain '{}' cannot have a policy; write ':{} -'",
                        c.name, c.name
                    )
                };
                let text = lines.get(c.line);
                problems.push(problem(c.line, text, None, Severity::Error, msg));
            } else if c.policy.is_none() && c.builtin {
                problems.push(problem(
                    c.line,
                    lines.get(c.line),
                    None,
                    Severity::Error,
                    format!("built-in chain {} needs a policy (ACCEPT or DROP)", c.name),
                ));
            }
        }
        // Resolve every target against the chains of its table.
        let tname = t.name.clone();
        let (chains, index) = t.chains_and_index();
        let rules: usize = chains.iter().map(|c| c.rules.len()).sum();
        let parts = if rules >= PARALLEL_RULES {
            threads.max(1)
        } else {
            1
        };
        if parts == 1 {
            resolve(chains, index, &tname, problems);
            continue;
        }
        // Cut the chains into pieces of about the same number of rules.
        let mut pieces = Vec::new();
        let mut rest = chains;
        let share = rules.div_ceil(parts);
        while !rest.is_empty() {
            let mut n = 0;
            let mut acc = 0;
            while n < rest.len() && (acc < share || n == 0) {
                acc += rest[n].rules.len();
                n += 1;
            }
            let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n);
            pieces.push(piece);
            rest = tail;
        }
        let found: Vec<Vec<Problem>> = std::thread::scope(|s| {
            let handles: Vec<_> = pieces
                .into_iter()
                .map(|piece| {
                    let tname = &tname;
                    s.spawn(move || {
                        let mut out = Vec::new();
                        resolve(piece, index, tname, &mut out);
                        out
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        problems.extend(found.into_iter().flatten());
    }
}

/// Tables with at least this many rules are resolved on several threads.
const PARALLEL_RULES: usize = 20_000;

/// Sets the target kind of every rule in `chains` and reports bad targets.
fn resolve(
    chains: &mut [Chain],
    index: &HashMap<Str, usize, rustc_hash::FxBuildHasher>,
    tname: &str,
    problems: &mut Vec<Problem>,
) {
    for r in chains.iter_mut().flat_map(|c| c.rules.iter_mut()) {
        let Some(tg) = r.target() else { continue };
        let kind = if index.contains_key(tg.name) {
            TargetKind::Chain
        } else if matches!(tg.name, "ACCEPT" | "DROP" | "RETURN" | "QUEUE") {
            TargetKind::Standard
        } else if is_known_target(tg.name) || !tg.opts.is_empty() {
            TargetKind::Extension
        } else {
            TargetKind::Undefined
        };
        r.set_target_kind(kind);
        let Some(tg) = r.target() else { continue };
        let fine = matches!(
            kind,
            TargetKind::Chain | TargetKind::Standard | TargetKind::Extension
        ) && !(kind == TargetKind::Chain && builtin_chains(tname).contains(&tg.name))
            && !(kind != TargetKind::Chain && tg.goto);
        if fine {
            continue;
        }
        let flag = if tg.goto { "-g" } else { "-j" };
        let needle = &*format!("{flag} {}", tg.name);
        match kind {
            TargetKind::Undefined => problems.push(problem(
                r.line,
                &r.text,
                Some(needle),
                Severity::Error,
                format!(
                    "{} to chain '{}', which table '{}' does not declare",
                    if tg.goto { "goto" } else { "jump" },
                    tg.name,
                    tname
                ),
            )),
            TargetKind::Chain if builtin_chains(tname).contains(&tg.name) => {
                problems.push(problem(
                    r.line,
                    &r.text,
                    Some(needle),
                    Severity::Error,
                    format!("cannot jump to built-in chain {}", tg.name),
                ))
            }
            TargetKind::Standard | TargetKind::Extension if tg.goto => problems.push(problem(
                r.line,
                &r.text,
                Some(needle),
                Severity::Error,
                format!("-g needs a user chain; '{}' is a target (use -j)", tg.name),
            )),
            _ => {}
        }
    }
}
