//! The bundled samples: each parses cleanly, and the generated ones are what
//! the real iptables prints for their source rulesets.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use iptviz::parse::{ParseOptions, parse_bytes};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

#[test]
fn every_sample_parses_and_the_readme_names_it() {
    let readme = std::fs::read_to_string(samples_dir().join("README.md")).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(samples_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".rules") || name.ends_with(".txt")) {
            continue;
        }
        n += 1;
        assert!(
            readme.contains(&format!("`{name}`")),
            "samples/README.md does not list {name}"
        );
        let parsed = parse_bytes(&std::fs::read(&p).unwrap(), &ParseOptions::strict(&name))
            .unwrap_or_else(|e| panic!("{e}"));
        let errors: Vec<String> = parsed.problems.iter().map(|x| x.render(&name)).collect();
        if name == "parser-stress.rules" {
            // Hand-edited with rules the kernel refuses (the same dump is in
            // the corpus, where tests/kernel_check.rs loads it): check must
            // report exactly those.
            let refused = [
                "unknown option '--something-else' for -m multiport",
                "match module 'icmp6' exists only for ip6tables",
            ];
            assert_eq!(errors.len(), 3, "{}", errors.join("\n"));
            for p in &parsed.problems {
                assert!(
                    refused.iter().any(|r| p.message.contains(r)),
                    "{}",
                    p.message
                );
            }
        } else {
            assert!(errors.is_empty(), "{}", errors.join("\n"));
        }
        assert!(parsed.ruleset.rule_count() > 10, "{name} is nearly empty");
    }
    assert!(n >= 6, "only {n} samples");
}

/// Rules with counters and comment lines removed, for comparing two runs.
fn without_counters(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let l = if l.starts_with('[') {
                l.split_once(' ').map_or(l, |x| x.1)
            } else {
                l
            };
            match l.strip_prefix(':') {
                Some(c) => c.rsplit_once(' ').map_or(c, |x| x.0).to_string(),
                None => l.to_string(),
            }
        })
        .collect()
}

#[test]
fn generated_samples_are_what_the_kernel_prints() {
    if !common::kernel_tests_can_run(&[
        "ip",
        "iptables-restore",
        "iptables-save",
        "ip6tables-save",
        "ping",
    ]) {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("iptviz-samples-{}", std::process::id()));
    let st = Command::new("bash")
        .arg(samples_dir().join("generate.sh"))
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "samples/generate.sh failed");
    let mut compared = 0;
    for e in std::fs::read_dir(&tmp).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let fresh = std::fs::read_to_string(&p).unwrap();
        let committed = std::fs::read_to_string(samples_dir().join(&name))
            .unwrap_or_else(|_| panic!("generate.sh made {name}, which is not committed"));
        assert_eq!(
            without_counters(&fresh),
            without_counters(&committed),
            "{name}"
        );
        compared += 1;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(compared >= 5, "only {compared} generated samples");
}
