//! Reading an input on several threads gives exactly what one thread gives:
//! the same model, the same problems in the same order, and in strict mode
//! the same first error. Chunks are made tiny here so that every dump is cut
//! in many places, including inside tables and between a chain and its rules.

mod common;

use std::path::PathBuf;

use iptviz::parse::{ParseOptions, Parsed, parse_bytes};
use iptviz::save::to_save_text;

fn inputs() -> Vec<PathBuf> {
    let mut v = common::corpus_files("iptables", "rules");
    for dir in ["samples", "tests/bad"] {
        let mut more: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "rules" || x == "txt" || x == "v4" || x == "v6")
            })
            .collect();
        more.sort();
        v.extend(more);
    }
    assert!(v.len() > 40, "expected the corpus, samples and bad inputs");
    v
}

fn summary(p: &Parsed) -> (String, String, Vec<String>) {
    (
        to_save_text(&p.ruleset),
        serde_json::to_string(&p.ruleset).unwrap(),
        p.problems
            .iter()
            .chain(&p.suspicious)
            .map(|x| x.render("in"))
            .collect(),
    )
}

fn opts(strict: bool, threads: usize, chunk: usize) -> ParseOptions {
    ParseOptions {
        source_name: "in".into(),
        strict,
        threads: Some(threads),
        chunk_bytes: Some(chunk),
        ..Default::default()
    }
}

#[test]
fn threads_give_the_same_result_as_one_thread() {
    let mut compared = 0;
    for path in inputs() {
        let bytes = std::fs::read(&path).unwrap();
        for strict in [false, true] {
            let one = parse_bytes(&bytes, &opts(strict, 1, 0));
            for (threads, chunk) in [(2, 1), (2, 97), (3, 4096), (4, 1 << 20)] {
                let many = parse_bytes(&bytes, &opts(strict, threads, chunk));
                match (&one, &many) {
                    (Ok(a), Ok(b)) => assert_eq!(
                        summary(a),
                        summary(b),
                        "{} strict={strict} threads={threads} chunk={chunk}",
                        path.display()
                    ),
                    (Err(a), Err(b)) => assert_eq!(
                        a.to_string(),
                        b.to_string(),
                        "{} strict={strict} threads={threads} chunk={chunk}",
                        path.display()
                    ),
                    (a, b) => panic!(
                        "{} strict={strict} threads={threads} chunk={chunk}: one thread {:?}, several {:?}",
                        path.display(),
                        a.as_ref().map(|p| p.ruleset.rule_count()),
                        b.as_ref().map(|p| p.ruleset.rule_count())
                    ),
                }
                compared += 1;
            }
        }
    }
    println!("{compared} comparisons");
}

#[test]
fn a_large_input_is_read_in_parallel_by_default_with_the_same_result() {
    // Over the parallel threshold: the corpus concatenated as `-S` style is
    // not valid, so repeat one dump under renamed tables instead.
    let base = std::fs::read_to_string("samples/kube-proxy.rules").unwrap();
    let mut big = String::new();
    let mut k = 0;
    while big.len() < 3 << 20 {
        big.push_str(
            &base
                .replace("*nat", &format!("*nat{k}"))
                .replace("*filter", &format!("*filter{k}")),
        );
        k += 1;
    }
    let auto = parse_bytes(big.as_bytes(), &ParseOptions::lenient("in")).unwrap();
    let one = parse_bytes(big.as_bytes(), &opts(false, 1, 0)).unwrap();
    assert!(auto.ruleset.rule_count() > 1000);
    assert_eq!(summary(&auto), summary(&one));
}
