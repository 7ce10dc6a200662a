//! Lint findings checked against the concrete tracer: no packet sampled
//! from a shadowed (or otherwise dead) rule's own match space ever matches
//! it in a trace; and the command's output and exit codes.

mod common;

use assert_cmd::Command;
use iptviz::analysis::lint::{Kind, lint, sample_packets};
use iptviz::model::Ruleset;
use iptviz::parse::{ParseOptions, parse_bytes};
use iptviz::trace::{Direction, TraceOptions, Tracer};

fn only(rs: &Ruleset, table: &str) -> Ruleset {
    let mut r = rs.clone();
    r.tables.retain(|t| t.name == table);
    r
}

#[test]
fn dead_rules_never_match_a_packet_of_their_own_space() {
    let mut checked_rules = 0;
    let mut packets = 0;
    for path in common::corpus_files("iptables", "rules") {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(parsed) = parse_bytes(&bytes, &ParseOptions::lenient(&name)) else {
            continue;
        };
        let rs = parsed.ruleset;
        let filter = only(&rs, "filter");
        let tracer = Tracer::new(&filter);
        for f in lint(&rs).findings {
            let dead = matches!(
                f.kind,
                Kind::Shadowed | Kind::EmptyMatch | Kind::AfterUnconditional
            );
            let direction = match f.chain.as_str() {
                "INPUT" => Direction::In,
                "FORWARD" => Direction::Forward,
                "OUTPUT" => Direction::Out,
                _ => continue,
            };
            let (true, "filter", Some(rule)) = (dead, f.table.as_str(), f.rule) else {
                continue;
            };
            let opts = TraceOptions {
                direction: Some(direction),
                ..Default::default()
            };
            let chain = filter
                .table("filter")
                .and_then(|t| t.chains.iter().position(|c| c.name == f.chain))
                .unwrap();
            let samples = sample_packets(&rs, "filter", &f.chain, rule, 24);
            if f.kind != Kind::EmptyMatch {
                assert!(!samples.is_empty(), "{name}:{}: no samples", f.line);
                checked_rules += 1;
            }
            for p in samples {
                let t = tracer.trace(&p, &opts);
                let hit = t
                    .steps
                    .iter()
                    .any(|s| s.chain == chain && s.rule == Some(rule) && s.matched);
                assert!(
                    !hit,
                    "{name}:{}: {} rule matched {} ({})",
                    f.line,
                    f.kind.name(),
                    p.addresses(),
                    p.context()
                );
                packets += 1;
            }
        }
    }
    eprintln!("{checked_rules} dead rules, {packets} packets traced");
    assert!(
        checked_rules >= 50 && packets >= 1000,
        "{checked_rules} {packets}"
    );
}

#[test]
fn lint_prints_file_line_and_exits_one_on_findings() {
    let dir = std::env::temp_dir().join(format!("iptviz-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("shadow.rules");
    std::fs::write(
        &f,
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -s 10.0.0.0/8 -j ACCEPT\n-A INPUT -s 10.1.0.0/16 -p tcp -j DROP\nCOMMIT\n",
    )
    .unwrap();
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .arg("lint")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "{}:6: warning: shadowed: filter INPUT #2: every packet it matches is taken earlier by line 5 (a different action)",
        f.display()
    );
    assert!(text.contains(&want), "{text}");
    assert!(
        text.contains("  -A INPUT -s 10.1.0.0/16 -p tcp -j DROP"),
        "{text}"
    );
    let json = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["lint", "--json"])
        .arg(&f)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["findings"][0]["kind"], "shadowed");
    assert_eq!(v["findings"][0]["by"][0], 5);
    assert_eq!(v["findings"][0]["action_differs"], true);
    std::fs::write(
        &f,
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    let clean = Command::cargo_bin("iptviz")
        .unwrap()
        .arg("lint")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}
