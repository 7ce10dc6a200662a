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

/// A bad statement is reported at its line and column with a caret, and
/// the rules after it are still read (through the CLI, from stdin).
#[test]
fn check_reports_bad_nft_text_at_its_place_and_reads_the_rest() {
    let text = "table inet t {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 acept\n\t\tudp dport 53 accept\n\t\tjump nowhere\n\t}\n}\n";
    let out = assert_cmd::Command::cargo_bin("iptviz")
        .unwrap()
        .args(["check", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("nft text, inet, 1 tables, 1 chains, 2 rules"),
        "{stdout}"
    );
    assert!(
        stderr.contains("<stdin>:4:16: error: unknown statement or expression `acept`"),
        "{stderr}"
    );
    assert!(stderr.contains("  tcp dport 22 acept\n"), "{stderr}");
    assert!(
        stderr.contains("<stdin>:6:3: error: jump to chain `nowhere`"),
        "{stderr}"
    );
}

/// nft text, nft JSON and iptables-save text are told apart by content.
#[test]
fn formats_are_detected_from_the_content() {
    use iptviz::model::InputFormat;
    let dir = common::corpus_dir().join("nftables");
    for (file, want) in [
        ("fw4-ipsets.nft", InputFormat::Nft),
        ("kube-proxy-nftables-ipv6.nft", InputFormat::Nft),
        ("debian12-nftables-conf.nft", InputFormat::Nft),
        ("fw4-ipsets.json", InputFormat::NftJson),
    ] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let p = iptviz::parse_bytes(&bytes, &iptviz::ParseOptions::lenient(file)).unwrap();
        assert_eq!(p.ruleset.format, want, "{file}");
        assert!(!p.ruleset.nft.tables.is_empty(), "{file}");
        assert!(p.ruleset.tables.is_empty(), "{file}");
    }
    let ipt = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n";
    let p = iptviz::parse_str(ipt, &iptviz::ParseOptions::strict("x")).unwrap();
    assert_eq!(p.ruleset.format, InputFormat::Save);
    assert!(p.ruleset.nft.is_empty());
}

/// Strict mode (what `save` uses) stops at the first nft error.
#[test]
fn strict_nft_parse_fails_on_the_first_error() {
    let e = iptviz::parse_str(
        "table ip t {\n chain c {\n  ip saddr 1.2.3.4 bogus\n }\n}\n",
        &iptviz::ParseOptions::strict("f.nft"),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("f.nft:3:20: error:"), "{e}");
}

/// Every corpus ruleset draws to SVG and DOT (graphviz accepts the DOT):
/// base chains are entry points labelled with hook and priority, jumps,
/// gotos and verdict-map verdicts are edges.
#[test]
fn every_corpus_ruleset_renders_to_svg_and_dot() {
    let dot_ok = common::graphviz_available();
    let mut files = common::corpus_files("nftables", "nft");
    files.extend(common::corpus_files("nftables", "json"));
    for p in files {
        for fmt in ["svg", "dot"] {
            let out = assert_cmd::Command::cargo_bin("iptviz")
                .unwrap()
                .args(["render", "-f", fmt])
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{} {fmt}: {}",
                name(&p),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            if fmt == "svg" {
                assert!(
                    text.starts_with("<svg") || text.starts_with("<?xml"),
                    "{}",
                    name(&p)
                );
            } else if dot_ok {
                common::assert_dot_accepts(&text, &name(&p));
            }
        }
    }
}

/// The drawing of fw4 shows its base chains with hook and priority, the
/// policy, and a goto drawn apart from a jump.
#[test]
fn drawing_labels_base_chains_and_marks_gotos() {
    let dir = common::corpus_dir().join("nftables");
    let text = read(&dir.join("fw4-ipsets.listed.nft"));
    let p = iptviz::parse_str(&text, &iptviz::ParseOptions::lenient("fw4")).unwrap();
    let rs = iptviz::nft::project::with_drawn_tables(p.ruleset);
    let t = rs.table("inet fw4").expect("drawn table");
    let input = t
        .chain("input [hook input priority filter]")
        .expect("base chain");
    assert!(input.builtin);
    assert_eq!(input.policy.as_deref(), Some("DROP"));
    // `ct state vmap { established : accept, related : accept }` is one
    // rule leading to accept: one edge (two made its edge read "2 rules").
    assert_eq!(input.rules.len(), 2);
    assert_eq!(input.rules[1].target().unwrap().name, "ACCEPT");
    let text = "table ip t {\n chain a {\n  type filter hook input priority 0;\n  tcp dport 22 goto b\n  jump b\n }\n chain b {\n  accept\n }\n}\n";
    let p = iptviz::parse_str(text, &iptviz::ParseOptions::strict("t")).unwrap();
    let rs = iptviz::nft::project::with_drawn_tables(p.ruleset);
    let a = rs
        .table("ip t")
        .unwrap()
        .chain("a [hook input priority 0]")
        .unwrap();
    assert!(a.rules[0].target().unwrap().goto);
    assert!(!a.rules[1].target().unwrap().goto);
    assert_eq!(a.rules[0].line, 4);
}

/// NAT edges of a drawn nft table named the address 0.0.0.0 for every
/// `dnat`/`snat` (a stand-in the drawing made up); they name the
/// statement's own address and port, and nothing when that is a map.
#[test]
fn nat_edges_name_the_statement_address_not_a_stand_in() {
    let text = "table inet t {\n map m {\n  type inet_service : ipv4_addr\n  elements = { 80 : 10.0.0.9 }\n }\n chain pre {\n  type nat hook prerouting priority dstnat;\n  tcp dport 22 dnat ip to 192.168.26.100:22\n  tcp dport 80 dnat ip to tcp dport map @m\n }\n chain post {\n  type nat hook postrouting priority srcnat;\n  ip saddr 10.0.0.0/8 snat ip to 203.0.113.7\n }\n}\n";
    let p = iptviz::parse_str(text, &iptviz::ParseOptions::strict("t")).unwrap();
    let rs = iptviz::nft::project::with_drawn_tables(p.ruleset);
    let t = rs.table("inet t").unwrap();
    let pre = t.chain("pre [hook prerouting priority dstnat]").unwrap();
    let to = |r: &iptviz::Rule| {
        r.target()
            .and_then(|t| t.opt("--to-destination").map(|o| o.arg().to_string()))
    };
    assert_eq!(to(&pre.rules[0]).as_deref(), Some("192.168.26.100:22"));
    assert_eq!(pre.rules[1].target().unwrap().name, "DNAT");
    assert_eq!(to(&pre.rules[1]), None, "a map lookup names no address");
    let post = t.chain("post [hook postrouting priority srcnat]").unwrap();
    let src = post.rules[0].target().unwrap();
    assert_eq!(src.opt("--to-source").unwrap().arg(), "203.0.113.7");
    // The fw4 port forwards, drawn.
    let fw4 = common::corpus_dir().join("nftables/fw4-redirect-dnat.nft");
    let out = assert_cmd::Command::cargo_bin("iptviz")
        .unwrap()
        .args(["render", "-f", "svg"])
        .arg(&fw4)
        .output()
        .unwrap();
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(
        svg.contains("192.168.26.100:22"),
        "the forward's address is drawn"
    );
    for stand_in in [
        "to:0.0.0.0",
        "--to-destination 0.0.0.0",
        "--to-source 0.0.0.0",
    ] {
        assert!(!svg.contains(stand_in), "a made-up address is drawn");
    }
}

/// The hover texts of a drawn nft table (SVG `<title>`, the desktop app's
/// tooltips) were the drawing's iptables words: `-A input -m comment
/// --comment "iifname 'lo' accept" -j ACCEPT` for a rule, `:input [hook
/// ...] DROP` for a policy, `built-in chain` with no type. They are the
/// nft rule as written, and a base chain's declaration with its family.
#[test]
fn hover_text_of_drawn_nft_chains_and_rules_is_nft_not_iptables_words() {
    use iptviz::graph::{ChainGraph, ViewOptions, view};
    let text = "table inet t {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tiifname \"lo\" accept
\t\tip saddr 10.0.0.0/8 tcp dport 22 jump ssh
\t\ttcp dport 80 jump { ip saddr 192.0.2.1 drop }
\t}
\tchain ssh {
\t\tct state new counter accept
\t}
}
";
    let p = iptviz::parse_str(text, &iptviz::ParseOptions::strict("t")).unwrap();
    let rs = iptviz::nft::project::with_drawn_tables(p.ruleset);
    let t = rs.table("inet t").expect("drawn table");
    let input = t
        .chain_position("input [hook input priority filter]")
        .unwrap();
    assert_eq!(t.rule_text(input, 0), Some("iifname \"lo\" accept"));
    // The netfilter picture (`render --flow`) says it in nft words too.
    let flow = iptviz::flow::flow_view(&rs, false, "t");
    assert!(
        flow.nodes.iter().any(|n| n.title
            == "nft table inet t, chain input: type filter hook input priority filter; policy drop;"),
        "{:?}",
        flow.nodes.iter().map(|n| &n.title).collect::<Vec<_>>()
    );
    let g = ChainGraph::build(&rs);
    let opts = ViewOptions {
        rules: true,
        collapse: Vec::new(),
        ..Default::default()
    };
    for opts in [ViewOptions::default(), opts] {
        let v = view(&rs, &g, &opts).unwrap();
        let node = |id: &str| {
            v.nodes
                .iter()
                .find(|n| n.id == id)
                .unwrap_or_else(|| panic!("no node {id}"))
        };
        assert_eq!(
            node("inet t/input [hook input priority filter]").title,
            "base chain input in table inet t (line 2): \
             type filter hook input priority filter; policy drop; 3 rules"
        );
        assert_eq!(
            node("inet t/ssh").title,
            "chain ssh in table inet t (line 8): 1 rule"
        );
        assert!(
            node("inet t/{anon_1}")
                .title
                .starts_with("anonymous chain {anon_1} in table inet t"),
            "{}",
            node("inet t/{anon_1}").title
        );
        let mut titles: Vec<&str> = v.edges.iter().map(|e| e.title.as_str()).collect();
        titles.extend(
            v.nodes
                .iter()
                .flat_map(|n| &n.rows)
                .map(|r| r.title.as_str()),
        );
        for want in [
            "line 2: type filter hook input priority filter; policy drop;",
            "line 6: ip saddr 192.0.2.1 drop",
            "line 4: iifname \"lo\" accept",
            "line 5: ip saddr 10.0.0.0/8 tcp dport 22 jump ssh",
            "line 9: ct state new counter accept",
        ] {
            assert!(titles.contains(&want), "{want:?} not in {titles:#?}");
        }
        for t in titles
            .iter()
            .copied()
            .chain(v.nodes.iter().map(|n| n.title.as_str()))
        {
            assert!(
                !t.contains("-A ") && !t.contains("--comment") && !t.contains("built-in"),
                "iptables words in {t:?}"
            );
        }
    }
}

/// No corpus ruleset, text or JSON (whose rules have no written text),
/// shows the drawing's iptables words on hover.
#[test]
fn no_corpus_nft_drawing_hovers_with_iptables_words() {
    use iptviz::graph::{ChainGraph, ViewOptions, view};
    let mut files = common::corpus_files("nftables", "nft");
    files.extend(common::corpus_files("nftables", "json"));
    let mut seen = 0;
    for p in files {
        let Ok(parsed) = iptviz::parse_str(&read(&p), &iptviz::ParseOptions::lenient(name(&p)))
        else {
            continue;
        };
        let rs = iptviz::nft::project::with_drawn_tables(parsed.ruleset);
        let g = ChainGraph::build(&rs);
        let opts = ViewOptions {
            rules: true,
            collapse: Vec::new(),
            ..Default::default()
        };
        let v = view(&rs, &g, &opts).unwrap();
        let rows = v.nodes.iter().flat_map(|n| &n.rows).map(|r| &r.title);
        for t in v.edges.iter().map(|e| &e.title).chain(rows) {
            seen += 1;
            assert!(!t.contains("--comment"), "{}: {t}", name(&p));
        }
    }
    assert!(seen > 1000, "only {seen} titles looked at");
}
