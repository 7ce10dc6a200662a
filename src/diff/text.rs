//! The rule diff as text for a terminal: one block per chain, one line per
//! rule, a summary at the end.

use std::io::{self, Write};

use super::{ChainDiff, ChangeKind, RuleChange, RuleDiff, Status, Summary};
use crate::model::Counters;

fn counters(c: Option<Counters>) -> String {
    c.map_or_else(|| "[-]".to_string(), |c| c.to_string())
}

fn chain_head(w: &mut dyn Write, table: &str, c: &ChainDiff) -> io::Result<()> {
    let service = c
        .service
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    match c.status {
        Status::Added => writeln!(
            w,
            "{table} + chain {}{service}: added, {} rule{}",
            c.name,
            c.rules.len(),
            plural(c.rules.len())
        )?,
        Status::Removed => writeln!(
            w,
            "{table} - chain {}{service}: removed, {} rule{}",
            c.name,
            c.rules.len(),
            plural(c.rules.len())
        )?,
        Status::Renamed => writeln!(
            w,
            "{table} chain {} renamed to {}{service}{}",
            c.old_name.as_deref().unwrap_or("?"),
            c.name,
            if c.rules.is_empty() && c.policy.is_none() {
                ", same rules"
            } else {
                ""
            }
        )?,
        Status::Changed => writeln!(w, "{table} chain {}{service}", c.name)?,
    }
    if let Some((o, n)) = &c.policy {
        writeln!(w, "  policy {o} -> {n}")?;
    }
    if let Some((o, n)) = &c.policy_counters {
        writeln!(w, "  policy counters {} -> {}", counters(*o), counters(*n))?;
    }
    Ok(())
}

fn rule_lines(w: &mut dyn Write, r: &RuleChange) -> io::Result<()> {
    match (r.kind, &r.old, &r.new) {
        (ChangeKind::Added, _, Some(n)) => {
            writeln!(w, "  + #{:<4} {}    (new line {})", n.index, n.text, n.line)
        }
        (ChangeKind::Removed, Some(o), _) => {
            writeln!(w, "  - #{:<4} {}    (old line {})", o.index, o.text, o.line)
        }
        (ChangeKind::Changed, Some(o), Some(n)) => {
            writeln!(w, "  ~ #{:<4} {}    (old line {})", o.index, o.text, o.line)?;
            writeln!(
                w,
                "    => #{:<2} {}    (new line {})",
                n.index, n.text, n.line
            )
        }
        (ChangeKind::Moved, Some(o), Some(n)) => writeln!(
            w,
            "  > #{} -> #{} {}    (old line {}, new line {})",
            o.index, n.index, n.text, o.line, n.line
        ),
        (ChangeKind::Counters, Some(o), Some(n)) => writeln!(
            w,
            "  c #{:<4} {} -> {} {}",
            n.index,
            counters(o.counters),
            counters(n.counters),
            n.text
        ),
        _ => Ok(()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn counted(out: &mut Vec<String>, n: usize, (one, many): (&str, &str)) {
    match n {
        0 => {}
        1 => out.push(format!("1 {one}")),
        _ => out.push(format!("{n} {many}")),
    }
}

/// One line: what differs, counted.
pub fn summary_line(s: &Summary) -> String {
    let mut parts = Vec::new();
    let c = &mut parts;
    counted(c, s.tables_added, ("table added", "tables added"));
    counted(c, s.tables_removed, ("table removed", "tables removed"));
    counted(c, s.chains_added, ("chain added", "chains added"));
    counted(c, s.chains_removed, ("chain removed", "chains removed"));
    counted(c, s.chains_renamed, ("chain renamed", "chains renamed"));
    counted(
        c,
        s.policies_changed,
        ("policy changed", "policies changed"),
    );
    counted(c, s.rules_added, ("rule added", "rules added"));
    counted(c, s.rules_removed, ("rule removed", "rules removed"));
    counted(c, s.rules_changed, ("rule changed", "rules changed"));
    counted(c, s.rules_moved, ("rule moved", "rules moved"));
    counted(
        c,
        s.counters_changed,
        ("counter changed", "counters changed"),
    );
    parts.join(", ")
}

/// Writes the diff as text.
pub fn write_text(w: &mut dyn Write, d: &RuleDiff) -> io::Result<()> {
    writeln!(w, "--- {}", d.old)?;
    writeln!(w, "+++ {}", d.new)?;
    if let Some((o, n)) = d.family_changed {
        writeln!(w, "address family {o:?} -> {n:?}")?;
    }
    for t in &d.tables {
        match t.status {
            Status::Added => writeln!(w, "+ table {}", t.name)?,
            Status::Removed => writeln!(w, "- table {}", t.name)?,
            _ => {}
        }
        for c in &t.chains {
            chain_head(w, &t.name, c)?;
            for r in &c.rules {
                rule_lines(w, r)?;
            }
        }
    }
    let s = &d.summary;
    if d.is_same() {
        writeln!(
            w,
            "same: no differences in {} rules{}",
            s.old_rules,
            if d.counters_compared {
                ", counters included"
            } else {
                " (counters ignored)"
            }
        )?;
    } else {
        writeln!(
            w,
            "different: {} (old {} rules, new {} rules)",
            summary_line(s),
            s.old_rules,
            s.new_rules
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_policy_changed_is_not_one_policie_changed() {
        let s = Summary {
            policies_changed: 1,
            rules_added: 2,
            chains_renamed: 1,
            ..Default::default()
        };
        assert_eq!(
            summary_line(&s),
            "1 chain renamed, 1 policy changed, 2 rules added"
        );
    }
}
