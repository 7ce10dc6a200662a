//! `--assume RULE=match|nomatch`: settles a rule whose outcome the packet
//! cannot tell (`statistic`, `limit`, `recent`, an ipset without contents
//! ...). RULE is `CHAIN#N`, `TABLE:CHAIN#N` (N counted from 1, as the
//! trace numbers rules) or `line:N` (the line of the rules file).

use crate::model::Ruleset;

use super::{RuleRef, TraceError};

/// Reads one `RULE=match|nomatch` against the rules it is about.
pub fn parse_assumption(rs: &Ruleset, spec: &str) -> Result<(RuleRef, bool), TraceError> {
    let bad = |why: String| TraceError::Missing(format!("--assume {spec}: {why}"));
    let Some((rule, value)) = spec.rsplit_once('=') else {
        return Err(bad(
            "expected RULE=match or RULE=nomatch (RULE as CHAIN#N, TABLE:CHAIN#N or line:N)".into(),
        ));
    };
    let matched = match value.to_ascii_lowercase().as_str() {
        "match" | "matches" | "yes" | "true" => true,
        "nomatch" | "no-match" | "no" | "false" => false,
        _ => return Err(bad(format!("{value:?} is neither match nor nomatch"))),
    };
    find_rule(rs, rule.trim())
        .map(|r| (r, matched))
        .map_err(bad)
}

/// The rule a `CHAIN#N`, `TABLE:CHAIN#N` or `line:N` names, or what was
/// looked for and not found.
pub fn find_rule(rs: &Ruleset, what: &str) -> Result<RuleRef, String> {
    if let Some(n) = what.strip_prefix("line:") {
        let line: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("line:{n}: not a line number"))?;
        for t in &rs.tables {
            for c in &t.chains {
                if let Some(i) = c.rules.iter().position(|r| r.line == line) {
                    return Ok(RuleRef {
                        table: t.name.to_string(),
                        chain: c.name.to_string(),
                        rule: i,
                    });
                }
            }
        }
        return Err(format!("no rule is on line {line} of the rules"));
    }
    let Some((chain_part, n)) = what.rsplit_once('#') else {
        return Err(format!(
            "{what:?} names no rule: write CHAIN#N, TABLE:CHAIN#N or line:N"
        ));
    };
    let number: usize = n
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("#{n}: rules are numbered from 1"))?;
    let (table, chain) = match chain_part.split_once(':') {
        Some((t, c)) => (Some(t), c),
        None => (None, chain_part),
    };
    let holders: Vec<_> = rs
        .tables
        .iter()
        .filter(|t| table.is_none_or(|n| t.name == n))
        .filter_map(|t| t.chain(chain).map(|c| (t, c)))
        .collect();
    let (t, c) = match holders.as_slice() {
        [] => {
            return Err(match table {
                Some(tn) if rs.table(tn).is_none() => format!("no table {tn} in the rules"),
                Some(tn) => format!("no chain {chain} in table {tn}"),
                None => format!("no chain {chain} in any table"),
            });
        }
        [one] => *one,
        many => {
            let names: Vec<&str> = many.iter().map(|(t, _)| t.name.as_str()).collect();
            return Err(format!(
                "chain {chain} is in tables {}: write TABLE:{chain}#{number}",
                names.join(", ")
            ));
        }
    };
    if number > c.rules.len() {
        return Err(format!(
            "{} {chain} has {} rule{}, no #{number}",
            t.name,
            c.rules.len(),
            if c.rules.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(RuleRef {
        table: t.name.to_string(),
        chain: c.name.to_string(),
        rule: number - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Ruleset {
        let text = "*mangle\n:INPUT ACCEPT [0:0]\n-A INPUT -m statistic --mode random --probability 0.5\nCOMMIT\n\
                    *filter\n:INPUT ACCEPT [0:0]\n:LIMITS - [0:0]\n-A INPUT -j LIMITS\n-A LIMITS -m limit --limit 1/s -j ACCEPT\nCOMMIT\n";
        crate::parse_str(text, &crate::ParseOptions::strict("t"))
            .unwrap()
            .ruleset
    }

    #[test]
    fn rules_are_named_by_chain_table_or_line() {
        let rs = rules();
        let (r, m) = parse_assumption(&rs, "LIMITS#1=nomatch").unwrap();
        assert_eq!(
            (r.table.as_str(), r.chain.as_str(), r.rule, m),
            ("filter", "LIMITS", 0, false)
        );
        let (r, _) = parse_assumption(&rs, "mangle:INPUT#1=match").unwrap();
        assert_eq!(r.table, "mangle");
        let (r, _) = parse_assumption(&rs, "line:9=match").unwrap();
        assert_eq!((r.chain.as_str(), r.rule), ("LIMITS", 0));
    }

    #[test]
    fn an_assumption_that_names_no_rule_says_what_was_looked_for() {
        let rs = rules();
        let e = parse_assumption(&rs, "INPUT#1=match")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mangle, filter") && e.contains("TABLE:INPUT#1"),
            "{e}"
        );
        let e = parse_assumption(&rs, "LIMITS#3=match")
            .unwrap_err()
            .to_string();
        assert!(e.contains("filter LIMITS has 1 rule, no #3"), "{e}");
        let e = parse_assumption(&rs, "NOPE#1=match")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no chain NOPE in any table"), "{e}");
        let e = parse_assumption(&rs, "line:99=match")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no rule is on line 99"), "{e}");
        let e = parse_assumption(&rs, "LIMITS#1=maybe")
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither match nor nomatch"), "{e}");
    }
}
