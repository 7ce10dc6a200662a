//! Trace one packet through a large kube-proxy dump.
//!
//! Input: see `common/input.rs` (`IPTVIZ_BENCH_RULES=FILE`, or made with
//! `../shared/tools/kube-scale.py --services 10000` from the corpus).
//! Prints the time of the first trace (which compiles the chains it
//! visits) and of repeated traces; the target is under 10 ms. Then draws
//! the walk as `iptviz trace -f svg` does, on the whole (default, grouped)
//! chain graph and with `--path-only`, and prints time and size of each.

use std::time::Instant;

use iptviz::graph::ViewOptions;
use iptviz::layout::Choice;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::render::{Format, render};
use iptviz::trace::{Packet, TraceOptions, Tracer, path_only_view, trace_view};

#[path = "common/input.rs"]
mod input;

fn main() {
    let (bytes, path) = input::kube_dump();
    let text = String::from_utf8_lossy(&bytes);
    let t0 = Instant::now();
    let rs = parse_str(&text, &ParseOptions::lenient(&path))
        .expect("bench input parses")
        .ruleset;
    println!("parse {:>10.2?}  ({} rules)", t0.elapsed(), rs.rule_count());

    // The last service of KUBE-SERVICES: the worst case for a linear scan.
    let last = rs
        .table("nat")
        .and_then(|t| t.chain("KUBE-SERVICES"))
        .and_then(|c| c.rules.iter().rev().find(|r| r.destination().is_some()))
        .expect("a kube-proxy dump");
    let dst = last.destination().expect("checked").value;
    let dst = dst
        .split('/')
        .next()
        .unwrap_or(dst)
        .parse()
        .expect("address");
    let dport = last
        .matches()
        .find_map(|m| m.opt("--dport"))
        .and_then(|o| o.arg().parse().ok())
        .unwrap_or(80);
    let mut pkt = Packet::new(6, "10.244.1.7".parse().expect("addr"), dst);
    pkt.sport = 43210;
    pkt.dport = dport;
    pkt.in_iface = Some("cali123".into());
    pkt.out_iface = Some("eth0".into());
    let opts = TraceOptions {
        local: vec!["192.168.1.10".parse().expect("addr")],
        ..Default::default()
    };

    let t1 = Instant::now();
    let tracer = Tracer::new(&rs);
    let first = tracer.trace(&pkt, &opts);
    let cold = t1.elapsed();
    let n = 50;
    let t2 = Instant::now();
    for _ in 0..n {
        std::hint::black_box(tracer.trace(&pkt, &opts));
    }
    let warm = t2.elapsed() / n;
    let t3 = Instant::now();
    let quick = TraceOptions {
        matched_only: true,
        ..opts.clone()
    };
    for _ in 0..n {
        std::hint::black_box(tracer.trace(&pkt, &quick));
    }
    let warm_matched = t3.elapsed() / n;
    println!(
        "trace {pkt}: {} steps, verdict {}, leaves {}",
        first.steps.len(),
        first.verdict,
        first.output
    );
    println!("first trace (compiles visited chains) {cold:>10.2?}");
    println!("repeated trace, all steps             {warm:>10.2?}");
    println!("repeated trace, matched steps only    {warm_matched:>10.2?}");

    let t4 = Instant::now();
    let v = trace_view(&rs, &first, &ViewOptions::default()).expect("trace view");
    let whole = render(&v, Format::Svg, Choice::Auto).expect("svg");
    let whole_t = t4.elapsed();
    let t5 = Instant::now();
    let v = path_only_view(&rs, &first, "bench");
    let path = render(&v, Format::Svg, Choice::Auto).expect("svg");
    let path_t = t5.elapsed();
    println!(
        "SVG, path on the grouped chain graph   {whole_t:>10.2?}  {:>8} bytes",
        whole.len()
    );
    println!(
        "SVG, --path-only                       {path_t:>10.2?}  {:>8} bytes, {} boxes",
        path.len(),
        v.nodes.len()
    );
}
