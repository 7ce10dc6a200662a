//! `iptviz trace -f svg|dot`: the chain graph with the packet's path
//! highlighted. The highlighted elements are read back from the SVG (as
//! XML) and must be exactly what the walk went through.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::Command;
use common::{assert_dot_accepts, graphviz_available};
use xml::reader::{EventReader, XmlEvent};

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
        .display()
        .to_string()
}

fn run(args: &[&str]) -> String {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(args)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).expect("UTF-8 output")
}

/// Forwarded to a published container port (DNAT in nat PREROUTING, the
/// DOCKER-USER and isolation chains return, filter DOCKER accepts).
fn docker_args(extra: &[&'static str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "trace",
        "--proto",
        "tcp",
        "--src",
        "198.51.100.7",
        "--dst",
        "192.168.1.10",
        "--dport",
        "8080",
        "--in",
        "eth0",
        "--out",
        "docker0",
        "--local",
        "192.168.1.10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.insert(1, sample("docker-host.rules"));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn kube_args(extra: &[&'static str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "trace",
        "--proto",
        "udp",
        "--src",
        "10.244.1.7",
        "--sport",
        "41000",
        "--dst",
        "10.96.0.10",
        "--dport",
        "53",
        "--local",
        "192.168.49.2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.insert(1, sample("kube-proxy.rules"));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_owned(args: &[String]) -> String {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&a)
}

/// The `<title>` of every `<g>` whose class is `{kind} path`, and the
/// number of `<g class="{kind}...">` groups that are dimmed.
struct Lit {
    nodes: BTreeSet<String>,
    edges: Vec<String>,
    dimmed: usize,
    legend_has_path: bool,
}

fn lit(svg: &str) -> Lit {
    let mut out = Lit {
        nodes: BTreeSet::new(),
        edges: Vec::new(),
        dimmed: 0,
        legend_has_path: false,
    };
    // Which highlighted group the next <title> belongs to.
    let mut pending: Option<&str> = None;
    let mut in_title = false;
    let mut in_legend = false;
    let mut text = String::new();
    for ev in EventReader::new(svg.as_bytes()) {
        match ev.expect("SVG is well-formed XML") {
            XmlEvent::StartElement {
                name, attributes, ..
            } => {
                let attr = |k: &str| {
                    attributes
                        .iter()
                        .find(|a| a.name.local_name == k)
                        .map(|a| a.value.clone())
                };
                match (name.local_name.as_str(), attr("class").as_deref()) {
                    ("g", Some("node path")) => pending = Some("node"),
                    ("g", Some("edge path")) => pending = Some("edge"),
                    ("g", Some("node" | "edge")) if attr("opacity").is_some() => out.dimmed += 1,
                    ("g", Some("legend")) => in_legend = true,
                    ("title", _) => {
                        in_title = true;
                        text.clear();
                    }
                    _ => {}
                }
            }
            XmlEvent::Characters(s) => {
                if in_title {
                    text.push_str(&s);
                } else if in_legend && s == "packet path" {
                    out.legend_has_path = true;
                }
            }
            XmlEvent::EndElement { name } => match name.local_name.as_str() {
                "title" => {
                    in_title = false;
                    match pending.take() {
                        Some("node") => {
                            out.nodes.insert(text.clone());
                        }
                        Some(_) => out.edges.push(text.clone()),
                        None => {}
                    }
                }
                "g" if in_legend => in_legend = false,
                _ => {}
            },
            _ => {}
        }
    }
    out
}

/// `chain NAME in table T` / `target NAME in table T` -> `T/NAME`.
fn node_id(title: &str) -> String {
    let words: Vec<&str> = title.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "chain" || *w == "target")
        .expect("chain or target title");
    format!("{}/{}", words[at + 4], words[at + 1])
}

#[test]
fn docker_svg_highlights_exactly_the_walk() {
    let svg = run_owned(&docker_args(&["-f", "svg"]));
    let l = lit(&svg);
    let nodes: BTreeSet<String> = l.nodes.iter().map(|t| node_id(t)).collect();
    let expected: BTreeSet<String> = [
        "nat/PREROUTING",
        "nat/DOCKER",
        "nat/DNAT",
        "nat/POSTROUTING",
        "nat/ACCEPT",
        "filter/FORWARD",
        "filter/DOCKER-USER",
        "filter/DOCKER-ISOLATION-STAGE-1",
        "filter/DOCKER",
        "filter/RETURN",
        "filter/ACCEPT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(nodes, expected);
    // Each edge's hover text lists its rules; one per rule taken, plus the
    // policy and the two returns to FORWARD.
    let mut edges = l.edges.clone();
    edges.sort();
    let expected_edges = [
        "DOCKER-ISOLATION-STAGE-1 returns to FORWARD",
        "DOCKER-USER returns to FORWARD",
        "line 16: [0:0] -A FORWARD -j DOCKER-USER",
        "line 17: [0:0] -A FORWARD -j DOCKER-ISOLATION-STAGE-1",
        "line 19: [0:0] -A FORWARD -o docker0 -j DOCKER",
        "line 26: [0:0] -A DOCKER -d 172.17.0.2/32",
        "line 30: [0:0] -A DOCKER-ISOLATION-STAGE-1 -j RETURN",
        "line 35: [0:0] -A DOCKER-USER -j RETURN",
        "line 43: :POSTROUTING ACCEPT",
        "line 45: [0:0] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "line 53: [0:0] -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT",
    ];
    assert_eq!(edges.len(), expected_edges.len(), "{edges:#?}");
    for want in expected_edges {
        assert!(
            edges.iter().any(|e| e.lines().any(|l| l.starts_with(want))),
            "no highlighted edge for {want:?} in {edges:#?}"
        );
    }
    assert!(l.dimmed > 0, "nothing off the path is dimmed");
    assert!(l.legend_has_path, "legend lacks the packet path entry");
}

#[test]
fn kube_groups_light_up_and_collapse_none_shows_the_endpoint() {
    let grouped = lit(&run_owned(&kube_args(&["-f", "svg"])));
    let ids: BTreeSet<String> = grouped.nodes.iter().map(|t| t.to_string()).collect();
    assert!(
        ids.iter().any(
            |t| t.starts_with("2 chains in table nat collapsed: KUBE-SEP-")
                && t.contains("KUBE-SEP-5PWRBKWLCBPZMFKE")
        ),
        "{ids:#?}"
    );
    let flat = lit(&run_owned(&kube_args(&["-f", "svg", "--collapse", "none"])));
    let ids: BTreeSet<String> = flat.nodes.iter().map(|t| node_id(t)).collect();
    assert!(ids.contains("nat/KUBE-SEP-5PWRBKWLCBPZMFKE"), "{ids:#?}");
    assert!(ids.contains("nat/KUBE-SVC-TCOU7JCQXEZGVUNU"), "{ids:#?}");
    assert!(ids.contains("nat/DNAT"), "{ids:#?}");
    // The other DNS endpoint was not chosen, nor any other service.
    assert_eq!(
        ids.iter()
            .filter(|i| i.starts_with("nat/KUBE-SEP-"))
            .count(),
        1
    );
    assert_eq!(
        ids.iter()
            .filter(|i| i.starts_with("nat/KUBE-SVC-"))
            .count(),
        1
    );
}

#[test]
fn output_is_deterministic() {
    for f in ["svg", "dot"] {
        let a = run_owned(&kube_args(&["-f", f]));
        let b = run_owned(&kube_args(&["-f", f]));
        assert_eq!(a, b, "{f} output differs between runs");
    }
}

#[test]
fn dot_is_accepted_by_graphviz() {
    let d = run_owned(&docker_args(&["-f", "dot"]));
    assert!(d.contains("color=\"#f06a00\", penwidth=3.5"), "{d}");
    if graphviz_available() {
        assert_dot_accepts(&d, "docker trace");
        assert_dot_accepts(&run_owned(&kube_args(&["-f", "dot", "--rules"])), "kube");
    }
}

#[test]
fn json_flag_is_format_json() {
    assert_eq!(
        run_owned(&docker_args(&["--json"])),
        run_owned(&docker_args(&["-f", "json"]))
    );
}

#[test]
fn rules_mode_marks_the_rule_taken() {
    let svg = run_owned(&docker_args(&["-f", "svg", "--rules"]));
    assert!(
        svg.contains("font-weight=\"bold\">→ DOCKER-USER</text>"),
        "row of FORWARD's first rule not bold"
    );
    // After DOCKER-USER returns, FORWARD#2 jumps to the isolation chain.
    assert!(svg.contains("font-weight=\"bold\">→ DOCKER-ISOLATION-STAGE-1</text>"));
    // FORWARD#3 (RELATED,ESTABLISHED) did not match a NEW packet.
    assert!(!svg.contains("font-weight=\"bold\">state:RELATED,ESTABLISHED -o docker0"));
}

/// Labels of the highlighted edges (drawn bold in the labels layer).
fn lit_labels(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth_in_labels: Option<usize> = None;
    let mut depth = 0usize;
    let mut bold_text = false;
    for ev in EventReader::new(svg.as_bytes()) {
        match ev.expect("SVG is well-formed XML") {
            XmlEvent::StartElement {
                name, attributes, ..
            } => {
                depth += 1;
                let attr = |k: &str| {
                    attributes
                        .iter()
                        .find(|a| a.name.local_name == k)
                        .map(|a| a.value.as_str())
                };
                if name.local_name == "g" && attr("class") == Some("labels") {
                    depth_in_labels = Some(depth);
                }
                bold_text = depth_in_labels.is_some()
                    && name.local_name == "text"
                    && attr("font-weight") == Some("bold");
            }
            XmlEvent::Characters(s) if bold_text => out.push(s),
            XmlEvent::EndElement { .. } => {
                if depth_in_labels == Some(depth) {
                    depth_in_labels = None;
                }
                depth -= 1;
                bold_text = false;
            }
            _ => {}
        }
    }
    out
}

/// Edges merged from several rules used to be labelled after the first of
/// them, so a packet sent to the second DNS endpoint showed the first
/// endpoint's address on its path.
#[test]
fn merged_edges_on_the_path_name_the_rule_taken() {
    let svg = run_owned(&kube_args(&["-f", "svg", "--skip-random"]));
    let labels = lit_labels(&svg);
    // Both endpoints' DNAT rules are one edge out of the endpoint group.
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("#2 -j DNAT") && l.contains("to:10.244.0.3:53")),
        "{labels:#?}"
    );
    assert!(
        !labels.iter().any(|l| l.contains("10.244.0.2")),
        "the endpoint not taken is named on the path: {labels:#?}"
    );
    // The service's jump into the endpoint group names the endpoint taken:
    // with no random rule matching, its last rule.
    let text = run_owned(&kube_args(&["--skip-random"]));
    let sep = text
        .lines()
        .find(|l| l.contains("=> KUBE-SVC-TCOU7JCQXEZGVUNU#") && l.contains("-j KUBE-SEP-"))
        .expect("the service jumps to an endpoint");
    let chosen = sep.rsplit("-j ").next().expect("a target").trim();
    assert!(
        labels.iter().any(|l| l.contains(&format!("-j {chosen}"))),
        "no lit label names {chosen}: {labels:#?}"
    );
}

/// What a `--path-only` SVG shows: every node's `<title>` (in drawing
/// order), how many nodes and edges are on the path or dimmed, and the
/// frame captions in order.
#[derive(Default)]
struct Drawn {
    titles: Vec<String>,
    on_path: usize,
    dimmed: usize,
    edges: usize,
    frames: Vec<String>,
}

fn drawn(svg: &str) -> Drawn {
    let mut out = Drawn::default();
    let mut node_title = false;
    let mut in_title = false;
    let mut in_cluster = false;
    let mut text = String::new();
    for ev in EventReader::new(svg.as_bytes()) {
        match ev.expect("SVG is well-formed XML") {
            XmlEvent::StartElement {
                name, attributes, ..
            } => {
                let attr = |k: &str| {
                    attributes
                        .iter()
                        .find(|a| a.name.local_name == k)
                        .map(|a| a.value.clone())
                };
                let class = attr("class").unwrap_or_default();
                let kind = class.split(' ').next().unwrap_or("");
                match name.local_name.as_str() {
                    "g" if kind == "node" || kind == "edge" => {
                        if class.ends_with(" path") {
                            out.on_path += 1;
                        }
                        if attr("opacity").is_some() {
                            out.dimmed += 1;
                        }
                        if kind == "edge" {
                            out.edges += 1;
                        }
                        node_title = kind == "node";
                    }
                    "g" if class == "cluster" => in_cluster = true,
                    "title" | "text" => {
                        in_title = name.local_name == "title";
                        text.clear();
                    }
                    _ => {}
                }
            }
            XmlEvent::Characters(s) => text.push_str(&s),
            XmlEvent::EndElement { name } => match name.local_name.as_str() {
                "title" if in_title && node_title => {
                    out.titles.push(text.clone());
                    node_title = false;
                }
                "text" if in_cluster => {
                    out.frames.push(text.clone());
                    in_cluster = false;
                }
                _ => {}
            },
            _ => {}
        }
    }
    out
}

/// The (hook, table) runs and the chains of a trace, from its JSON.
fn walk(args: &[String]) -> (Vec<String>, Vec<(String, String, String)>) {
    let mut a = args.to_vec();
    a.push("--json".into());
    let v: serde_json::Value = serde_json::from_str(&run_owned(&a)).expect("JSON trace");
    let mut frames: Vec<String> = Vec::new();
    let mut chains: Vec<(String, String, String)> = Vec::new();
    for s in v["steps"].as_array().expect("steps") {
        let (hook, table, chain) = (
            s["hook"].as_str().expect("hook").to_string(),
            s["table"].as_str().expect("table").to_string(),
            s["chain"].as_str().expect("chain").to_string(),
        );
        let frame = format!("{hook} · table {table}");
        if frames.last() != Some(&frame) {
            frames.push(frame);
        }
        let c = (hook, table, chain);
        if !chains.contains(&c) {
            chains.push(c);
        }
    }
    (frames, chains)
}

fn path_only_cases() -> Vec<Vec<String>> {
    let mut dropped = docker_args(&[]);
    // No container publishes this: FORWARD's policy drops it.
    for (k, v) in [("--dst", "172.17.0.9"), ("--dport", "9999")] {
        let i = dropped.iter().position(|a| a == k).expect("flag");
        dropped[i + 1] = v.to_string();
    }
    vec![
        docker_args(&[]),
        dropped,
        kube_args(&[]),
        kube_args(&["--skip-random"]),
    ]
}

#[test]
fn path_only_draws_exactly_the_chains_visited() {
    for args in path_only_cases() {
        let (frames, chains) = walk(&args);
        let mut a = args.clone();
        a.extend(["-f", "svg", "--path-only"].map(String::from));
        let d = drawn(&run_owned(&a));
        assert_eq!(d.frames, frames, "{args:?}: frames");
        // Chain boxes: one per chain entered at each hook, none other.
        let mut got: Vec<String> = d
            .titles
            .iter()
            .filter(|t| t.contains(" chain "))
            .map(|t| node_id(t))
            .collect();
        let mut want: Vec<String> = chains.iter().map(|(_, t, c)| format!("{t}/{c}")).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{args:?}: chains");
        // All of it is the path: nothing dimmed, every node and edge lit.
        assert_eq!(d.dimmed, 0, "{args:?}");
        assert_eq!(d.on_path, d.titles.len() + d.edges, "{args:?}");
        assert!(d.titles[0].starts_with("the packet as given: "), "{args:?}");
        assert!(
            d.titles.last().is_some_and(|t| t.starts_with("verdict ")),
            "{args:?}"
        );
    }
}

#[test]
fn path_only_names_rules_nat_and_verdict() {
    let svg = run_owned(&kube_args(&["-f", "svg", "--path-only"]));
    for want in [
        ">#2 -j KUBE-SVC-TCOU7JCQXEZGVUNU udp dpt:53 -d 10.96.0.10/32</text>",
        ">dst 10.244.0.2:53</text>",
        ">leaves as udp 10.244.1.7:41000 -&gt; 10.244.0.2:53</text>",
        ">routing decision</text>",
        ">PREROUTING · table nat</text>",
    ] {
        assert!(svg.contains(want), "no {want:?} in the drawing");
    }
    // Other services of the dump are not drawn.
    assert!(!svg.contains("KUBE-SVC-ERIFXISQEP7F7OF4"));
    let dropped = &path_only_cases()[1];
    let mut a = dropped.clone();
    a.extend(["-f", "svg", "--path-only"].map(String::from));
    let svg = run_owned(&a);
    assert!(svg.contains(">in FORWARD · table filter</text>"), "{svg}");
}

#[test]
fn path_only_is_deterministic_and_dot_is_accepted() {
    for args in path_only_cases() {
        for f in ["svg", "dot"] {
            let mut a = args.clone();
            a.extend(["-f", f, "--path-only"].map(String::from));
            let first = run_owned(&a);
            assert_eq!(first, run_owned(&a), "{f} differs between runs");
            if f == "dot" {
                assert!(first.contains("subgraph cluster_"), "{first}");
                if graphviz_available() {
                    assert_dot_accepts(&first, "path-only trace");
                }
            }
        }
    }
}

#[test]
fn path_only_needs_a_drawing() {
    let mut a = docker_args(&["--path-only"]);
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(&a)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("--path-only") && err.contains("-f svg"),
        "{err}"
    );
    a.extend(["-f", "svg", "--rules"].map(String::from));
    Command::cargo_bin("iptviz")
        .unwrap()
        .args(&a)
        .assert()
        .failure();
    // --help explains it with an example that runs.
    let help = run(&["trace", "--help"]);
    let example = help
        .lines()
        .find(|l| l.contains("--path-only --output"))
        .expect("an example with --path-only");
    assert!(example.contains("-f svg"), "{example}");
    assert!(help.contains("one frame per hook and table"), "{help}");
}

/// A packet forwarded to a kube-proxy (nftables mode) service: the
/// service map, a random endpoint's DNAT, masquerade on the way out.
fn nft_kube_args(extra: &[&'static str]) -> Vec<String> {
    let file = common::corpus_dir().join("nftables/kube-proxy-nftables-ipv6.listed.nft");
    let mut v: Vec<String> = vec!["trace".into(), file.display().to_string()];
    v.extend(
        [
            "-s",
            "fd00::5",
            "-d",
            "fd00:172:30::41",
            "--dport",
            "80",
            "--local",
            "fd00::1",
        ]
        .map(String::from),
    );
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `user chain NAME in table T (line N): ...` -> (T, NAME), a base chain
/// named without its `[hook ... priority ...]`.
fn nft_node(title: &str) -> Option<(String, String)> {
    let (_, rest) = title.split_once("chain ")?;
    let (name, rest) = rest.split_once(" in table ")?;
    let table = rest.split(" (line").next()?;
    let name = name.split(" [hook ").next()?;
    Some((table.to_string(), name.to_string()))
}

#[test]
fn nft_trace_svg_lights_exactly_the_chains_walked() {
    let (_, chains) = walk(&nft_kube_args(&[]));
    let want: BTreeSet<(String, String)> = chains.into_iter().map(|(_, t, c)| (t, c)).collect();
    assert!(want.len() > 8, "{want:?}");
    let svg = run_owned(&nft_kube_args(&["-f", "svg"]));
    let l = lit(&svg);
    let got: BTreeSet<(String, String)> = l
        .nodes
        .iter()
        .filter(|t| t.contains("chain "))
        .filter_map(|t| nft_node(t))
        .collect();
    assert_eq!(got, want);
    // The other endpoint of the service is drawn, and dimmed.
    assert!(svg.contains("endpoint-2CRNCTTE"));
    assert!(l.dimmed > 0 && l.legend_has_path);
    // The rules taken are named by their nft text, numbered in their chain.
    for want in [
        "packet took line 139: ip6 daddr . meta l4proto . th dport vmap @service-ips",
        "packet took line 55: meta l4proto tcp dnat to [fd00:10:180::1]:80",
    ] {
        assert!(
            l.edges.iter().any(|e| e.starts_with(want)),
            "no lit edge {want:?} in {:?}",
            l.edges
        );
    }
    assert!(svg.contains(">#1 ip6 daddr . meta l4proto . th dport vmap @service-ips</text>"));
}

#[test]
fn nft_trace_path_only_follows_the_walk() {
    let args = nft_kube_args(&[]);
    let (frames, chains) = walk(&args);
    let mut a = args.clone();
    a.extend(["-f", "svg", "--path-only"].map(String::from));
    let d = drawn(&run_owned(&a));
    // Two base chains of the table at PREROUTING: a frame each.
    assert_eq!(d.frames.len(), frames.len() + 1, "{:?}", d.frames);
    let mut merged = d.frames.clone();
    merged.dedup();
    assert_eq!(merged, frames);
    let got: BTreeSet<(String, String)> = d.titles.iter().filter_map(|t| nft_node(t)).collect();
    let want: BTreeSet<(String, String)> = chains.into_iter().map(|(_, t, c)| (t, c)).collect();
    assert_eq!(got, want);
    assert_eq!(d.dimmed, 0);
    assert!(
        d.titles
            .last()
            .is_some_and(|t| t.starts_with("verdict ACCEPT"))
    );
}

#[test]
fn nft_trace_drawings_are_deterministic_and_dot_is_accepted() {
    for mode in [&[][..], &["--path-only"][..], &["--rules"][..]] {
        for f in ["svg", "dot"] {
            let mut a = nft_kube_args(&["-f", f]);
            a.extend(mode.iter().map(|s| s.to_string()));
            let first = run_owned(&a);
            assert_eq!(first, run_owned(&a), "{f} {mode:?} differs between runs");
            if f == "dot" && graphviz_available() {
                assert_dot_accepts(&first, "nft trace");
            }
        }
    }
}
