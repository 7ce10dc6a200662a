//! Rendering at kube-proxy scale: the default (collapsed) view and the full
//! chain graph of a 10,000-service dump to SVG, against `dot -Tsvg` on our
//! DOT of the same full graph. For each view it also prints the picture's
//! shape (aspect) and how many boxes overlap (none should).
//!
//! Input: see `common/input.rs` (`IPTVIZ_BENCH_RULES=FILE`, or made with
//! `../shared/tools/kube-scale.py --services 10000` from the corpus).
//! Set `IPTVIZ_BENCH_DOT=0` to skip graphviz, `IPTVIZ_BENCH_DOT_TIMEOUT` (s) to cap it.

use std::process::Command;
use std::time::{Duration, Instant};

use iptviz::graph::{ChainGraph, ViewOptions, view};
use iptviz::layout::{Choice, layout};
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::render::{dot::dot, svg::svg};

#[path = "common/input.rs"]
mod input;

/// Pairs of boxes that share area (sorted by left edge, each box against
/// those starting before it ends).
fn overlaps(boxes: &[iptviz::layout::NodeBox]) -> usize {
    let mut idx: Vec<usize> = (0..boxes.len()).collect();
    idx.sort_by(|&a, &b| boxes[a].x.total_cmp(&boxes[b].x));
    let mut count = 0;
    for (k, &i) in idx.iter().enumerate() {
        let a = &boxes[i];
        for &j in &idx[k + 1..] {
            let b = &boxes[j];
            if b.x >= a.x + a.w {
                break;
            }
            if b.y < a.y + a.h && a.y < b.y + b.h {
                count += 1;
            }
        }
    }
    count
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn main() {
    let (bytes, input) = input::kube_dump();
    let text = String::from_utf8_lossy(&bytes);
    let t = Instant::now();
    let parsed = match parse_str(&text, &ParseOptions::lenient("bench")) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot parse {input}: {e}");
            return;
        }
    };
    let rs = &parsed.ruleset;
    println!(
        "input {}: {} chains, {} rules; parse {}",
        input,
        rs.chain_count(),
        rs.rule_count(),
        secs(t.elapsed())
    );
    let t = Instant::now();
    let g = ChainGraph::build(rs);
    let graph_time = t.elapsed();
    println!(
        "chain graph: {} nodes, {} edges in {}",
        g.graph.node_count(),
        g.graph.edge_count(),
        secs(graph_time)
    );

    let mut full_svg_time = Duration::ZERO;
    let mut full_dot = String::new();
    for (name, opts) in [
        ("default (collapsed)", ViewOptions::default()),
        (
            "full (--collapse none)",
            ViewOptions {
                collapse: Vec::new(),
                ..Default::default()
            },
        ),
        (
            "full nat (--collapse none --table nat)",
            ViewOptions {
                collapse: Vec::new(),
                tables: vec!["nat".into()],
                ..Default::default()
            },
        ),
    ] {
        let t0 = Instant::now();
        let v = match view(rs, &g, &opts) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("view failed: {e}");
                return;
            }
        };
        let t1 = Instant::now();
        let l = layout(&v, Choice::Auto);
        let t2 = Instant::now();
        let s = svg(&v, &l);
        let t3 = Instant::now();
        let total = graph_time + (t3 - t0);
        println!(
            "{name}: {} nodes, {} edges; view {}, layout {}, svg {} ({:.1} MB); graph+view+layout+svg {}",
            v.nodes.len(),
            v.edges.len(),
            secs(t1 - t0),
            secs(t2 - t1),
            secs(t3 - t2),
            s.len() as f64 / 1e6,
            secs(total)
        );
        println!(
            "  picture {:.0} x {:.0} px, aspect {:.2}:1, {} box overlaps",
            l.width,
            l.height,
            l.width / l.height.max(1.0),
            overlaps(&l.nodes)
        );
        if opts.collapse.is_empty() && opts.tables.is_empty() {
            full_svg_time = total;
            full_dot = dot(&v);
        }
    }

    if std::env::var("IPTVIZ_BENCH_DOT").is_ok_and(|v| v == "0") {
        return;
    }
    let cap: u64 = std::env::var("IPTVIZ_BENCH_DOT_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let path = std::env::temp_dir().join("iptviz-bench-full.dot");
    if let Err(e) = std::fs::write(&path, &full_dot) {
        eprintln!("cannot write {}: {e}", path.display());
        return;
    }
    let t = Instant::now();
    let status = Command::new("timeout")
        .arg(cap.to_string())
        .args(["dot", "-Tsvg", "-o", "/dev/null"])
        .arg(&path)
        .status();
    let took = t.elapsed();
    match status {
        Ok(s) if s.success() => println!(
            "dot -Tsvg on the full graph: {} ({:.0}x our time)",
            secs(took),
            took.as_secs_f64() / full_svg_time.as_secs_f64().max(1e-9)
        ),
        Ok(s) if s.code() == Some(124) => println!(
            "dot -Tsvg on the full graph: did not finish within {cap} s (killed; >= {:.0}x our time)",
            took.as_secs_f64() / full_svg_time.as_secs_f64().max(1e-9)
        ),
        Ok(s) => println!("dot -Tsvg failed ({s}) after {}", secs(took)),
        Err(e) => println!("dot -Tsvg could not run: {e} (is graphviz installed?)"),
    }
}
