//! After parsing: decide what each target names, and report what
//! `iptables-restore` (or the kernel) would refuse.

use std::collections::HashMap;

use crate::matches::{self, Kind, hook};
use crate::model::{Chain, Family, Rule, Ruleset, Str, TargetKind, builtin_chains};

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
    let family = rs.family;
    let certain = family_certain(rs);
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
            resolve(chains, index, &tname, (family, certain), problems);
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
                        resolve(piece, index, tname, (family, certain), &mut out);
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
    for t in &rs.tables {
        check_placement(t, family, certain, problems);
    }
}

/// Tables with at least this many rules are resolved on several threads.
const PARALLEL_RULES: usize = 20_000;

/// Sets the target kind of every rule in `chains` and reports bad targets.
fn resolve(
    chains: &mut [Chain],
    index: &HashMap<Str, usize, rustc_hash::FxBuildHasher>,
    tname: &str,
    (family, certain): (Family, bool),
    problems: &mut Vec<Problem>,
) {
    for r in chains.iter_mut().flat_map(|c| c.rules.iter_mut()) {
        let mut findings = Vec::new();
        matches::check_rule(r, family, certain, &mut findings);
        for f in findings.drain(..) {
            problems.push(finding_problem(r, f));
        }
        let Some(tg) = r.target() else { continue };
        let kind = if index.contains_key(tg.name) {
            TargetKind::Chain
        } else if matches!(tg.name, "ACCEPT" | "DROP" | "RETURN" | "QUEUE") {
            TargetKind::Standard
        } else if matches::lookup(Kind::Target, tg.name, family).is_some()
            || (!certain && matches::lookup_any(Kind::Target, tg.name).is_some())
        {
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
                undefined_message(tg.name, tg.goto, !tg.opts.is_empty(), tname, family),
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

/// Whether the ruleset's family is known: a save header names it, or a
/// rule has an address.
fn family_certain(rs: &Ruleset) -> bool {
    rs.header.iter().any(|h| h.contains("tables"))
        || rs.tables.iter().any(|t| {
            t.chains.iter().any(|c| {
                c.rules
                    .iter()
                    .any(|r| r.source().is_some() || r.destination().is_some())
            })
        })
}

/// Why a target name is not found: a target of the other family, an
/// unknown extension (it has options), or an undeclared chain.
fn undefined_message(name: &str, goto: bool, opts: bool, tname: &str, family: Family) -> String {
    let other = match family {
        Family::Ipv4 => Family::Ipv6,
        Family::Ipv6 => Family::Ipv4,
    };
    if matches::lookup(Kind::Target, name, other).is_some() {
        let cmd = match other {
            Family::Ipv4 => "iptables (IPv4)",
            Family::Ipv6 => "ip6tables (IPv6)",
        };
        format!("target {name} exists only for {cmd}")
    } else if opts {
        format!(
            "unknown target '{name}': not a target iptables ships, and table '{tname}' has no chain of that name"
        )
    } else {
        format!(
            "{} to chain '{name}', which table '{tname}' does not declare",
            if goto { "goto" } else { "jump" },
        )
    }
}

/// A table finding as a problem, with the caret under its word.
fn finding_problem(r: &Rule, f: matches::Finding<'_>) -> Problem {
    let text: &str = &r.text;
    let col = f.at.and_then(|w| {
        let base = text.as_ptr() as usize;
        let at = (w.as_ptr() as usize).wrapping_sub(base);
        if at <= text.len() && w.len() <= text.len() - at && !w.is_empty() {
            Some(at)
        } else {
            text.find(w)
        }
    });
    let message = match f.hint {
        Some(h) => format!("{}; {h}", f.message),
        None => f.message,
    };
    let sev = if f.error {
        Severity::Error
    } else {
        Severity::Warning
    };
    Problem::at(r.line, text, col.unwrap_or(0), sev, message)
}

/// Hooks from which each chain of a table can be reached (built-in chains
/// from their own hook, user chains through `-j` and `-g`).
pub(crate) fn reach_hooks(t: &crate::model::Table) -> Vec<u8> {
    // The chains each chain jumps to, looked up once.
    let calls: Vec<Vec<u32>> = t
        .chains
        .iter()
        .map(|c| {
            c.rules
                .iter()
                .filter_map(|r| {
                    let tg = r.target()?;
                    (tg.kind == TargetKind::Chain)
                        .then(|| t.chain_position(tg.name))
                        .flatten()
                        .map(|j| j as u32)
                })
                .collect()
        })
        .collect();
    let mut reach: Vec<u8> = t
        .chains
        .iter()
        .map(|c| if c.builtin { hook::of(&c.name) } else { 0 })
        .collect();
    let mut work: Vec<usize> = (0..t.chains.len()).filter(|&i| reach[i] != 0).collect();
    while let Some(i) = work.pop() {
        let from = reach[i];
        for &j in &calls[i] {
            let j = j as usize;
            if reach[j] | from != reach[j] {
                reach[j] |= from;
                work.push(j);
            }
        }
    }
    reach
}

/// One hook a chain is reached from that the mask does not allow, with
/// how: `(hook name, path)`.
fn path_from(t: &crate::model::Table, reach: &[u8], chain: usize, bad: u8) -> String {
    // Walk back from the chain to a built-in chain of a bad hook.
    let mut at = chain;
    let mut path = vec![t.chains[chain].name.to_string()];
    for _ in 0..t.chains.len() {
        if t.chains[at].builtin {
            break;
        }
        let caller = t.chains.iter().enumerate().find(|(i, c)| {
            reach[*i] & bad != 0
                && c.rules.iter().any(|r| {
                    r.target().is_some_and(|tg| {
                        tg.kind == TargetKind::Chain && tg.name == t.chains[at].name
                    })
                })
        });
        match caller {
            Some((i, c)) => {
                path.push(c.name.to_string());
                at = i;
            }
            None => break,
        }
    }
    path.reverse();
    path.join(" -> ")
}

/// Targets, matches and interfaces used in a table or hook where the kernel
/// refuses them, directly or through the user chains jumped to from there.
fn check_placement(
    t: &crate::model::Table,
    family: Family,
    certain: bool,
    problems: &mut Vec<Problem>,
) {
    if builtin_chains(&t.name).is_empty() {
        return;
    }
    let mut reach: Option<Vec<u8>> = None;
    for (ci, c) in t.chains.iter().enumerate() {
        for r in &c.rules {
            let limits = matches::placement(r, family, certain);
            if limits.is_empty() {
                continue;
            }
            let reach = reach.get_or_insert_with(|| reach_hooks(t));
            for matches::Placement {
                hooks: mask,
                tables,
                what,
                builtin_only,
            } in limits
            {
                if builtin_only && !c.builtin {
                    continue;
                }
                let needle = what.rsplit(' ').next().unwrap_or(&what).to_string();
                if !tables.is_empty() && !tables.contains(&t.name.as_str()) {
                    problems.push(problem(
                        r.line,
                        &r.text,
                        Some(&needle),
                        Severity::Error,
                        format!(
                            "{what} is valid only in the {} table{}, not in '{}'",
                            tables.join(" or "),
                            if tables.len() > 1 { "s" } else { "" },
                            t.name
                        ),
                    ));
                    continue;
                }
                let bad = reach[ci] & !mask;
                if bad == 0 {
                    continue;
                }
                let allowed = hook::names(mask).join(", ");
                let msg = if c.builtin {
                    format!("{what} is not allowed in {} (only in {allowed})", c.name)
                } else {
                    format!(
                        "{what} is not allowed in chain {}, which is reached from {} ({}); it is allowed only in {allowed}",
                        c.name,
                        hook::names(bad).join(", "),
                        path_from(t, reach, ci, bad)
                    )
                };
                problems.push(problem(
                    r.line,
                    &r.text,
                    Some(&needle),
                    Severity::Error,
                    msg,
                ));
            }
        }
    }
}

/// Whether a rule matches every packet: no address, interface, protocol,
/// fragment or match other than a comment.
fn unconditional(r: &Rule) -> bool {
    r.protocol().is_none()
        && r.source().is_none()
        && r.destination().is_none()
        && r.in_iface().is_none()
        && r.out_iface().is_none()
        && r.fragment().is_none()
        && r.matches().all(|m| m.module == "comment")
}

/// Suspicious but legal things in a whole ruleset, as warnings: rules that
/// no packet reaches because an unconditional rule before them ends the
/// walk, user chains nothing jumps to, and rules that match on both
/// `-m state` and `-m conntrack`. `iptviz check` lists them; they are not
/// parse problems (the kernel loads such rulesets).
pub fn lint(rs: &Ruleset) -> Vec<Problem> {
    let mut out = Vec::new();
    for t in &rs.tables {
        let mut jumped: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for c in &t.chains {
            for r in &c.rules {
                if let Some(tg) = r.target()
                    && tg.kind == TargetKind::Chain
                {
                    jumped.insert(tg.name);
                }
            }
        }
        for c in &t.chains {
            if !c.builtin && c.line != 0 && !jumped.contains(c.name.as_str()) {
                out.push(Problem::at(
                    c.line,
                    "",
                    0,
                    Severity::Warning,
                    format!(
                        "chain {} in table '{}' is never jumped to: its {} rule{} never run",
                        c.name,
                        t.name,
                        c.rules.len(),
                        if c.rules.len() == 1 { "" } else { "s" }
                    ),
                ));
            }
            let mut ender: Option<&Rule> = None;
            for r in &c.rules {
                if let Some(e) = ender {
                    let n = c.rules.len()
                        - c.rules
                            .iter()
                            .position(|x| std::ptr::eq(x, r))
                            .unwrap_or(c.rules.len());
                    let tg = e.target().map(|t| t.name).unwrap_or("");
                    out.push(Problem::at(
                        r.line,
                        &r.text,
                        0,
                        Severity::Warning,
                        format!(
                            "never reached: the rule on line {} (-{} {tg}) matches every packet before it ({n} rule{} of chain {} after it never run)",
                            e.line,
                            if e.target().is_some_and(|t| t.goto) { "g" } else { "j" },
                            if n == 1 { "" } else { "s" },
                            c.name
                        ),
                    ));
                    break;
                }
                if unconditional(r)
                    && let Some(tg) = r.target()
                {
                    let ends = tg.goto
                        || (tg.kind != TargetKind::Chain
                            && tg.kind != TargetKind::Undefined
                            && matches::is_terminating_target(tg.name)
                            && !(tg.name == "NFQUEUE" && tg.opt("--queue-bypass").is_some()));
                    if ends {
                        ender = Some(r);
                    }
                }
            }
            for r in &c.rules {
                let state = r.find_match("state");
                let ct = r.find_match("conntrack");
                if state.is_some() && ct.is_some() {
                    out.push(problem(
                        r.line,
                        &r.text,
                        Some("conntrack"),
                        Severity::Warning,
                        "-m state and -m conntrack on one rule: both test the connection's state; keep one (-m conntrack --ctstate)".into(),
                    ));
                }
            }
        }
    }
    out.sort_by_key(|p| (p.line, p.column));
    out
}
