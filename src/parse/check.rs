//! After parsing: decide what each target names, and report what
//! `iptables-restore` (or the kernel) would refuse.

use crate::matches::{self, Kind, hook};
use crate::model::{Chain, Family, Rule, Ruleset, TargetKind, builtin_chains};

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
///
/// [`lint`]'s warnings are found in the same walk and appended to
/// `suspicious`, in line order.
pub fn resolve_and_check(
    rs: &mut Ruleset,
    src: &str,
    threads: usize,
    problems: &mut Vec<Problem>,
    suspicious: &mut Vec<Problem>,
) {
    let mut lines = Lines { src, starts: None };
    let family = rs.family;
    let certain = family_certain(rs);
    // Per table: the chain jumps of every chain, and the rules whose
    // placement needs a second look once every chain's hooks are known.
    let mut calls_of: Vec<Calls> = Vec::with_capacity(rs.tables.len());
    let mut restricted_of: Vec<Vec<Restricted>> = Vec::with_capacity(rs.tables.len());
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
        let ctx = Ctx {
            index,
            tname: &tname,
            family,
            certain,
        };
        let mut done = Resolved::default();
        if parts == 1 {
            resolve(chains, 0, &ctx, &mut done);
        } else {
            // Cut the chains into pieces of about the same number of rules,
            // several per thread: rules differ in cost (a DNAT rule has
            // more to check than a jump), so threads take the next piece
            // when done with one instead of each owning a fixed half.
            let mut pieces = Vec::new();
            let mut rest = chains;
            let mut first = 0;
            let share = rules.div_ceil(parts * PIECES_PER_THREAD).max(1);
            while !rest.is_empty() {
                let mut n = 0;
                let mut acc = 0;
                while n < rest.len() && (acc < share || n == 0) {
                    acc += rest[n].rules.len();
                    n += 1;
                }
                let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n);
                pieces.push(std::sync::Mutex::new(Some((first, piece))));
                first += n;
                rest = tail;
            }
            let results: Vec<std::sync::Mutex<Option<Resolved>>> =
                pieces.iter().map(|_| std::sync::Mutex::new(None)).collect();
            let next = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..parts)
                    .map(|_| {
                        s.spawn(|| {
                            loop {
                                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(slot) = pieces.get(k) else { break };
                                let taken = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                                let Some((first, piece)) = taken else {
                                    continue;
                                };
                                let mut out = Resolved::default();
                                resolve(piece, first, &ctx, &mut out);
                                *results[k].lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                }
            });
            let found = results
                .into_iter()
                .filter_map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner()));
            for f in found {
                done.problems.extend(f.problems);
                done.calls.extend(f.calls);
                done.restricted.extend(f.restricted);
                done.suspicious.extend(f.suspicious);
            }
        }
        problems.extend(done.problems);
        suspicious.extend(done.suspicious);
        calls_of.push(done.calls);
        restricted_of.push(done.restricted);
    }
    for ((t, calls), restricted) in rs.tables.iter().zip(&calls_of).zip(&restricted_of) {
        check_placement(t, calls, restricted, family, certain, problems);
    }
    for (t, calls) in rs.tables.iter().zip(&calls_of) {
        super::loops::check_table_loops(t, calls, problems);
        let mut jumped = vec![false; t.chains.len()];
        for &(_, to) in calls.iter().flatten() {
            if let Some(j) = jumped.get_mut(to as usize) {
                *j = true;
            }
        }
        lint_unjumped(t, &jumped, suspicious);
    }
    suspicious.sort_by_key(|p| (p.line, p.column));
}

/// Tables with at least this many rules are resolved on several threads.
const PARALLEL_RULES: usize = 20_000;

/// Pieces of a table per resolving thread (see `resolve_and_check`).
const PIECES_PER_THREAD: usize = 16;

/// The chains each chain of a table jumps or goes to: `(rule index,
/// target chain index)` per chain, as `resolve` found them.
type Calls = Vec<Vec<(u32, u32)>>;

/// A rule whose placement limits may be broken: checked again once the
/// hooks of every chain are known.
#[derive(Debug, Clone, Copy)]
struct Restricted {
    chain: u32,
    rule: u32,
    /// The hooks every limit that applies allows together.
    hooks: u8,
    /// A limit names other tables than this one.
    wrong_table: bool,
}

/// What `resolve` found in its chains.
#[derive(Default)]
struct Resolved {
    problems: Vec<Problem>,
    /// [`lint_chain`]'s warnings.
    suspicious: Vec<Problem>,
    calls: Calls,
    restricted: Vec<Restricted>,
}

/// What `resolve` needs to know about the table.
struct Ctx<'a> {
    index: &'a crate::model::ChainIndex,
    tname: &'a str,
    family: Family,
    certain: bool,
}

/// Sets the target kind of every rule in `chains` (the table's chains from
/// index `first` on), reports bad targets, and records each chain's jumps
/// and the rules with placement limits.
fn resolve(chains: &mut [Chain], first: usize, ctx: &Ctx<'_>, out: &mut Resolved) {
    let Ctx {
        index,
        tname,
        family,
        certain,
    } = *ctx;
    let known_table = !builtin_chains(tname).is_empty();
    let problems = &mut out.problems;
    for (ci, c) in chains.iter_mut().enumerate() {
        let ci = (first + ci) as u32;
        let builtin = c.builtin;
        let mut calls = Vec::new();
        for (ri, r) in c.rules.iter_mut().enumerate() {
            let mut findings = Vec::new();
            let mut limits = matches::Limits::default();
            matches::check_rule_limits(r, family, certain, &mut findings, &mut limits);
            for f in findings {
                problems.push(finding_problem(r, f));
            }
            if known_table {
                let hooks = if builtin {
                    limits.hooks_builtin
                } else {
                    limits.hooks
                };
                let wrong_table = limits.wrong_table(tname);
                if wrong_table || hooks != hook::ALL {
                    out.restricted.push(Restricted {
                        chain: ci,
                        rule: ri as u32,
                        hooks,
                        wrong_table,
                    });
                }
            }
            let Some(tg) = r.target() else { continue };
            let to = index.get(tg.name);
            let kind = if to.is_some() {
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
            r.set_target_chain(to);
            if let Some(to) = to {
                calls.push((ri as u32, to as u32));
            }
            let Some(tg) = r.target() else { continue };
            let fine = matches!(
                kind,
                TargetKind::Chain | TargetKind::Standard | TargetKind::Extension
            ) && !(kind == TargetKind::Chain
                && builtin_chains(tname).contains(&tg.name))
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
        out.calls.push(calls);
        lint_chain(c, &mut out.suspicious);
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
fn reach_hooks(t: &crate::model::Table, calls: &Calls) -> Vec<u8> {
    let mut reach: Vec<u8> = t
        .chains
        .iter()
        .map(|c| if c.builtin { hook::of(&c.name) } else { 0 })
        .collect();
    let mut work: Vec<usize> = (0..t.chains.len()).filter(|&i| reach[i] != 0).collect();
    while let Some(i) = work.pop() {
        let from = reach[i];
        for &(_, j) in &calls[i] {
            let j = j as usize;
            if reach[j] | from != reach[j] {
                reach[j] |= from;
                work.push(j);
            }
        }
    }
    reach
}

/// How a chain is reached from a hook the mask does not allow: the chain
/// names from a built-in chain of a bad hook down to it.
fn path_from(
    t: &crate::model::Table,
    calls: &Calls,
    reach: &[u8],
    chain: usize,
    bad: u8,
) -> String {
    // Walk back from the chain to a built-in chain of a bad hook.
    let mut at = chain;
    let mut path = vec![t.chains[chain].name.to_string()];
    for _ in 0..t.chains.len() {
        if t.chains[at].builtin {
            break;
        }
        let caller = (0..t.chains.len())
            .find(|&i| reach[i] & bad != 0 && calls[i].iter().any(|&(_, to)| to as usize == at));
        match caller {
            Some(i) => {
                path.push(t.chains[i].name.to_string());
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
/// Only the rules `resolve` found limits on are looked at again.
fn check_placement(
    t: &crate::model::Table,
    calls: &Calls,
    restricted: &[Restricted],
    family: Family,
    certain: bool,
    problems: &mut Vec<Problem>,
) {
    if builtin_chains(&t.name).is_empty() || restricted.is_empty() {
        return;
    }
    let reach = reach_hooks(t, calls);
    for x in restricted {
        let ci = x.chain as usize;
        if !x.wrong_table && reach[ci] & !x.hooks == 0 {
            continue;
        }
        let c = &t.chains[ci];
        let r = &c.rules[x.rule as usize];
        for matches::Placement {
            hooks: mask,
            tables,
            what,
            builtin_only,
        } in matches::placement(r, family, certain)
        {
            if builtin_only && !c.builtin {
                continue;
            }
            let needle = what.word();
            if !tables.is_empty() && !tables.contains(&t.name.as_str()) {
                problems.push(problem(
                    r.line,
                    &r.text,
                    Some(needle),
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
                    path_from(t, calls, &reach, ci, bad)
                )
            };
            problems.push(problem(r.line, &r.text, Some(needle), Severity::Error, msg));
        }
    }
}

/// What [`lint`] needs of a rule, in one pass over its parts: whether it
/// matches every packet (no address, interface, protocol, fragment or
/// match other than a comment), and whether it has `-m state` and `-m
/// conntrack`.
fn shape(r: &Rule) -> (bool, bool, bool) {
    use crate::model::PartKind as K;
    let (mut any, mut state, mut ct) = (true, false, false);
    for p in r.parts() {
        match p.kind {
            K::Protocol | K::Source | K::Destination | K::InIface | K::OutIface | K::Fragment => {
                any = false
            }
            K::Match => {
                let m = r.word(p.word);
                any &= m == "comment";
                state |= m == "state";
                ct |= m == "conntrack";
            }
            K::Target => break,
            K::Opt | K::Arg => {}
        }
    }
    (any, state, ct)
}

/// Suspicious but legal things in a whole ruleset, as warnings: rules that
/// no packet reaches because an unconditional rule before them ends the
/// walk, user chains nothing jumps to, and rules that match on both
/// `-m state` and `-m conntrack`. `iptviz check` lists them; they are not
/// parse problems (the kernel loads such rulesets).
pub fn lint(rs: &Ruleset) -> Vec<Problem> {
    let mut out = Vec::new();
    for t in &rs.tables {
        // Chains some rule jumps or goes to, by index.
        let mut jumped = vec![false; t.chains.len()];
        for c in &t.chains {
            for r in &c.rules {
                if let Some(tg) = r.target()
                    && tg.kind == TargetKind::Chain
                    && let Some(i) = r.target_chain_in(t, tg.name)
                {
                    jumped[i] = true;
                }
            }
            lint_chain(c, &mut out);
        }
        lint_unjumped(t, &jumped, &mut out);
    }
    out.sort_by_key(|p| (p.line, p.column));
    out
}

/// [`lint`]'s findings inside one chain whose targets are resolved: rules
/// after an unconditional one that ends the walk, and `-m state` with
/// `-m conntrack`.
fn lint_chain(c: &Chain, out: &mut Vec<Problem>) {
    // The unconditional rule that ends the chain, and whether the rules
    // after it were reported (once per chain).
    let mut ender: Option<&Rule> = None;
    let mut said = false;
    for (ri, r) in c.rules.iter().enumerate() {
        let tg = r.target();
        let (any, state, ct) = shape(r);
        if state && ct {
            out.push(problem(
                r.line,
                &r.text,
                Some("conntrack"),
                Severity::Warning,
                "-m state and -m conntrack on one rule: both test the connection's state; keep one (-m conntrack --ctstate)".into(),
            ));
        }
        if let Some(e) = ender {
            if !said {
                let n = c.rules.len() - ri;
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
                said = true;
            }
            continue;
        }
        if any && let Some(tg) = tg {
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
}

/// [`lint`]'s user chains of `t` that no rule jumps or goes to
/// (`jumped` by chain index).
fn lint_unjumped(t: &crate::model::Table, jumped: &[bool], out: &mut Vec<Problem>) {
    for (ci, c) in t.chains.iter().enumerate() {
        if !c.builtin && c.line != 0 && !jumped[ci] {
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
    }
}
