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
