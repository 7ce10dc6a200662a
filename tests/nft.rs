//! nftables input: every corpus ruleset read in both forms, the same model
//! from text and JSON, positions of errors, format detection.

mod common;

use std::path::Path;

use iptviz::nft::parse::parse_text;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every corpus text (as written, as fixed, as listed back) reads
/// without an error, except the ones nft itself refuses.
#[test]
fn every_corpus_text_reads_without_errors() {
    let mut report = Vec::new();
    for p in common::corpus_files("nftables", "nft") {
        let text = read(&p);
        let (rs, problems) = parse_text(&text);
        let errors: Vec<_> = problems
            .iter()
            .filter(|x| x.severity == iptviz::Severity::Error)
            .map(|x| x.render(&name(&p)))
            .collect();
        eprintln!(
            "{}: {} tables, {} chains, {} rules, {} problems",
            name(&p),
            rs.tables.len(),
            rs.chain_count(),
            rs.rule_count(),
            problems.len()
        );
        assert!(!rs.tables.is_empty(), "{}: no table read", name(&p));
        if !errors.is_empty() {
            report.push(errors.join("\n"));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// For every corpus ruleset, `nft list ruleset` text and `nft -j list
/// ruleset` JSON of the same load give the same (normalised) model.
#[test]
fn text_and_json_give_the_same_model() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for p in common::corpus_files("nftables", "json") {
        let listed = p.with_extension("listed.nft");
        let (from_json, jp) = iptviz::nft::json::parse_json(&read(&p));
        assert!(jp.is_empty(), "{}: {jp:?}", name(&p));
        let (from_text, tp) = parse_text(&read(&listed));
        assert!(tp.is_empty(), "{}: {tp:?}", name(&listed));
        let mut a = iptviz::nft::normal::normalised(&from_text);
        let mut b = iptviz::nft::normal::normalised(&from_json);
        let dropped = drop_xt_rules(&mut a, &mut b);
        if dropped > 0 {
            eprintln!("{}: {dropped} iptables-nft (xt) rules left out", name(&p));
        }
        compared += 1;
        if a != b {
            let ja = serde_json::to_string_pretty(&a).unwrap();
            let jb = serde_json::to_string_pretty(&b).unwrap();
            let diff = similar::TextDiff::from_lines(&ja, &jb)
                .unified_diff()
                .context_radius(3)
                .to_string();
            failures.push(format!(
                "{}:\n{}",
                name(&p),
                diff.chars().take(3000).collect::<String>()
            ));
        }
    }
    assert!(compared >= 17, "only {compared} rulesets compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// nft prints an iptables-nft rule's `xt` statement in its text as the
/// translation libxtables gives (`ct state new`), and in JSON as the raw
/// `xt match conntrack`: the two forms carry different things, so such
/// rules are left out of the comparison (in pairs, by position).
fn drop_xt_rules(a: &mut iptviz::nft::NftRuleset, b: &mut iptviz::nft::NftRuleset) -> usize {
    use iptviz::nft::Stmt;
    let mut n = 0;
    for (ta, tb) in a.tables.iter_mut().zip(&mut b.tables) {
        for (ca, cb) in ta.chains.iter_mut().zip(&mut tb.chains) {
            if ca.rules.len() != cb.rules.len() {
                continue;
            }
            let keep: Vec<bool> = cb
                .rules
                .iter()
                .map(|r| {
                    !r.stmts
                        .iter()
                        .any(|s| matches!(s, Stmt::Other(t) if t.starts_with("xt ")))
                })
                .collect();
            n += keep.iter().filter(|k| !**k).count();
            let mut i = 0;
            ca.rules.retain(|_| (keep[i], i += 1).0);
            let mut i = 0;
            cb.rules.retain(|_| (keep[i], i += 1).0);
        }
    }
    n
}
