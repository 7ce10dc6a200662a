//! nft parse and draw benchmark: a kube-proxy-nftables-style ruleset of
//! 10,000 services (about 100,000 rules), made here in both forms (nft
//! text and `nft -j` JSON), against our iptables parser on the kube-proxy
//! iptables dump grown to 10,000 services (`common/input.rs`).
//!
//! Prints: text parse time per rule (nft and iptables, one thread), JSON
//! parse throughput in MB/s, and the time to draw the default view of the
//! nft ruleset (nft model to drawn tables, graph, view, layout, SVG), each
//! the median of several runs (the machine may be shared).
//!
//! `IPTVIZ_BENCH_ONLY=text|json|render` runs one part (for a profiler;
//! `nft-text` runs the nft text parse alone);
//! `IPTVIZ_BENCH_WRITE=DIR` also writes `kube10k.nft` and `kube10k.json`
//! there, for timing `iptviz render DIR/kube10k.nft -o out.svg`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use iptviz::graph::{ChainGraph, ViewOptions, view};
use iptviz::layout::{Choice, layout};
use iptviz::parse::{ParseOptions, parse_owned, parse_str};
use iptviz::render::svg::svg;
use serde_json::{Value, json};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "common/input.rs"]
mod input;

const SERVICES: usize = 10_000;
const ENDPOINTS: usize = 3;

fn ep_addr(s: usize, e: usize) -> String {
    format!("10.{}.{}.{}", 64 + s / 250 % 64, s % 250, e + 1)
}

fn svc_addr(s: usize) -> String {
    format!(
        "172.{}.{}.{}",
        16 + s / 62500 % 16,
        s / 250 % 250,
        s % 250 + 1
    )
}

/// The ruleset as nft text (block form, as `nft list ruleset` prints it).
fn text() -> String {
    let mut t = String::with_capacity(24 << 20);
    t.push_str("table ip kube-proxy {\n\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\telements = { ");
    for s in 0..SERVICES {
        if s > 0 {
            t.push_str(",\n\t\t\t     ");
        }
        let _ = write!(t, "{} . tcp . 80 : goto service-{s}", svc_addr(s));
    }
    t.push_str(" }\n\t}\n\n");
    t.push_str("\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n\n");
    t.push_str(
        "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n\n",
    );
    t.push_str("\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark | 0x00004000\n\t}\n\n");
    for s in 0..SERVICES {
        let _ = writeln!(t, "\tchain service-{s} {{");
        let _ = writeln!(
            t,
            "\t\tip daddr {} tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
            svc_addr(s)
        );
        let _ = writeln!(
            t,
            "\t\tnumgen random mod {ENDPOINTS} vmap {{ 0 : goto endpoint-{s}-0, 1 : goto endpoint-{s}-1, 2 : goto endpoint-{s}-2 }}"
        );
        t.push_str("\t}\n\n");
        for e in 0..ENDPOINTS {
            let _ = writeln!(t, "\tchain endpoint-{s}-{e} {{");
            let _ = writeln!(t, "\t\tip saddr {} jump mark-for-masquerade", ep_addr(s, e));
            let _ = writeln!(
                t,
                "\t\tmeta l4proto tcp counter packets 0 bytes 0 dnat to {}:8080 comment \"ns{s}/svc{s}:http\"",
                ep_addr(s, e)
            );
            t.push_str("\t}\n\n");
        }
    }
    t.push_str("}\n");
    t
}

fn m(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn payload(p: &str, f: &str) -> Value {
    json!({"payload": {"protocol": p, "field": f}})
}

/// The same ruleset as `nft -j list ruleset` prints it.
fn json_doc() -> String {
    let mut items = vec![
        json!({"metainfo": {"version": "1.0.6", "json_schema_version": 1}}),
        json!({"table": {"family": "ip", "name": "kube-proxy", "handle": 1}}),
    ];
    let chain =
        |name: String| json!({"chain": {"family": "ip", "table": "kube-proxy", "name": name}});
    let rule = |chain: String, expr: Vec<Value>| json!({"rule": {"family": "ip", "table": "kube-proxy", "chain": chain, "expr": expr}});
    let elems: Vec<Value> = (0..SERVICES)
        .map(|s| {
            json!([{"concat": [svc_addr(s), "tcp", 80]}, {"goto": {"target": format!("service-{s}")}}])
        })
        .collect();
    items.push(
        json!({"map": {"family": "ip", "name": "service-ips", "table": "kube-proxy",
        "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "verdict", "elem": elems}}),
    );
    items.push(
        json!({"chain": {"family": "ip", "table": "kube-proxy", "name": "nat-prerouting",
        "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}),
    );
    items.push(chain("services".into()));
    items.push(chain("mark-for-masquerade".into()));
    for s in 0..SERVICES {
        items.push(chain(format!("service-{s}")));
        for e in 0..ENDPOINTS {
            items.push(chain(format!("endpoint-{s}-{e}")));
        }
    }
    items.push(rule(
        "nat-prerouting".into(),
        vec![json!({"jump": {"target": "services"}})],
    ));
    items.push(rule(
        "services".into(),
        vec![json!({"vmap": {"key": {"concat": [payload("ip", "daddr"), {"meta": {"key": "l4proto"}}, payload("th", "dport")]}, "data": "@service-ips"}})],
    ));
    items.push(rule(
        "mark-for-masquerade".into(),
        vec![json!({"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"|": [{"meta": {"key": "mark"}}, 16384]}}})],
    ));
    for s in 0..SERVICES {
        items.push(rule(
            format!("service-{s}"),
            vec![
                m(payload("ip", "daddr"), "==", json!(svc_addr(s))),
                m(payload("tcp", "dport"), "==", json!(80)),
                m(
                    payload("ip", "saddr"),
                    "!=",
                    json!({"prefix": {"addr": "10.0.0.0", "len": 8}}),
                ),
                json!({"jump": {"target": "mark-for-masquerade"}}),
            ],
        ));
        let vm: Vec<Value> = (0..ENDPOINTS)
            .map(|e| json!([e, {"goto": {"target": format!("endpoint-{s}-{e}")}}]))
            .collect();
        items.push(rule(
            format!("service-{s}"),
            vec![json!({"vmap": {"key": {"numgen": {"mode": "random", "mod": ENDPOINTS, "offset": 0}}, "data": {"set": vm}}})],
        ));
        for e in 0..ENDPOINTS {
            let c = format!("endpoint-{s}-{e}");
            items.push(rule(
                c.clone(),
                vec![
                    m(payload("ip", "saddr"), "==", json!(ep_addr(s, e))),
                    json!({"jump": {"target": "mark-for-masquerade"}}),
                ],
            ));
            let mut r = rule(
                c,
                vec![
                    m(json!({"meta": {"key": "l4proto"}}), "==", json!("tcp")),
                    json!({"counter": {"packets": 0, "bytes": 0}}),
                    json!({"dnat": {"addr": ep_addr(s, e), "port": 8080}}),
                ],
            );
            r["rule"]["comment"] = json!(format!("ns{s}/svc{s}:http"));
            items.push(r);
        }
    }
    serde_json::to_string(&json!({"nftables": items})).expect("serialises")
}

/// This process's CPU time (all threads, user and system), from
/// `/proc/self/stat` in clock ticks (taken as 1/100 s); zero where there
/// is no /proc. Beside the wall time it shows what a run cost when other
/// builds share the machine.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// This thread's CPU time, in nanoseconds, from
/// `/proc/thread-self/schedstat` (zero where there is none). Beside the
/// wall time it shows what a run cost when other builds share the
/// machine: a run that waits for the core is not charged for the wait.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The median wall and CPU times of `runs` runs of `f`, and the last result.
fn median<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut cpus = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let c = cpu_time();
        let t = Instant::now();
        let r = f();
        times.push(t.elapsed());
        cpus.push(cpu_time().saturating_sub(c));
        drop(last.replace(r));
    }
    times.sort();
    cpus.sort();
    (
        times[runs / 2],
        cpus[runs / 2],
        last.expect("at least one run"),
    )
}

const RUNS: usize = 7;

/// nft text against iptables text, time per rule, run in turns (nft,
/// iptables, nft, ...) so that a build on the other core weighs on both
/// alike; the ratio is the median of the turns' own ratios. The iptables
/// input is copied before its clock starts (the parser takes it owned).
fn text_side_by_side(text: &str, nft_rules: usize) {
    let (bytes, name) = input::kube_dump();
    let opts = ParseOptions {
        threads: Some(1),
        ..ParseOptions::lenient("bench")
    };
    let ipt_rules = parse_owned(bytes.clone(), &opts)
        .expect("parses")
        .ruleset
        .rule_count();
    let (mut nft_t, mut ipt_t, mut ratios) = (vec![], vec![], vec![]);
    let (mut nft_cpu, mut ipt_cpu) = (vec![], vec![]);
    let mut cpu_ratios = vec![];
    for _ in 0..RUNS {
        let c = thread_cpu();
        let (t, _, parsed) = median(1, || iptviz::nft::parse::parse_text(text));
        let c = thread_cpu().saturating_sub(c);
        drop(parsed);
        let nft_ns = t.as_nanos() as f64 / nft_rules as f64;
        let nft_cpu_ns = c.as_nanos() as f64 / nft_rules as f64;
        let mut input = Some(bytes.clone());
        let c = thread_cpu();
        let (t, _, parsed) = median(1, || {
            parse_owned(input.take().expect("one run"), &opts).expect("parses")
        });
        let c = thread_cpu().saturating_sub(c);
        drop(parsed);
        let ipt_ns = t.as_nanos() as f64 / ipt_rules as f64;
        let ipt_cpu_ns = c.as_nanos() as f64 / ipt_rules as f64;
        nft_t.push(nft_ns);
        ipt_t.push(ipt_ns);
        nft_cpu.push(nft_cpu_ns);
        ipt_cpu.push(ipt_cpu_ns);
        ratios.push(nft_ns / ipt_ns);
        cpu_ratios.push(nft_cpu_ns / ipt_cpu_ns);
    }
    let mid = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "nft text: {nft_rules} rules, {:.1} MB, median of {RUNS}: {:.0} ns/rule (this thread's CPU: {:.0} ns/rule)",
        text.len() as f64 / 1e6,
        mid(&mut nft_t),
        mid(&mut nft_cpu)
    );
    println!(
        "iptables text ({name}, one thread): {ipt_rules} rules, median of {RUNS}: {:.0} ns/rule (this thread's CPU: {:.0} ns/rule)",
        mid(&mut ipt_t),
        mid(&mut ipt_cpu)
    );
    let spread = |v: &[f64]| {
        format!(
            "{:.2}..{:.2}",
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max)
        )
    };
    let (wall, cpu) = (spread(&ratios), spread(&cpu_ratios));
    println!(
        "nft/iptables time per rule, run in turns: median {:.2} ({wall}), by CPU time {:.2} ({cpu}) (goal: at most 1)",
        mid(&mut ratios),
        mid(&mut cpu_ratios)
    );
}

fn main() {
    let only = std::env::var("IPTVIZ_BENCH_ONLY").unwrap_or_default();
    let part = |p: &str| only.is_empty() || only == p || (p == "nft-text" && only == "text");
    let text = text();
    let write = std::env::var("IPTVIZ_BENCH_WRITE").ok();
    // The JSON form is made only when it is timed or written (it costs
    // more to make than to read, and would crowd a profile of the text).
    let doc = if part("json") || write.is_some() {
        json_doc()
    } else {
        String::new()
    };
    if let Some(dir) = write {
        let dir = std::path::Path::new(&dir);
        std::fs::write(dir.join("kube10k.nft"), &text).expect("writes the nft text");
        std::fs::write(dir.join("kube10k.json"), &doc).expect("writes the nft JSON");
    }
    let (rs, problems) = iptviz::nft::parse::parse_text(&text);
    assert!(
        problems.is_empty(),
        "{:?}",
        &problems[..problems.len().min(3)]
    );
    let nft_rules = rs.rule_count();
    drop(rs);
    if only == "nft-text" {
        let (t_text, c_text, _) = median(RUNS, || iptviz::nft::parse::parse_text(&text));
        println!(
            "nft text: {nft_rules} rules, {:.1} MB, median of {RUNS} {:.3} s (CPU {:.2} s) = {:.0} ns/rule",
            text.len() as f64 / 1e6,
            t_text.as_secs_f64(),
            c_text.as_secs_f64(),
            t_text.as_nanos() as f64 / nft_rules as f64
        );
    } else if part("text") {
        text_side_by_side(&text, nft_rules);
    }

    if part("json") {
        let (t_json, c_json, (from_json, jp)) =
            median(RUNS, || iptviz::nft::json::parse_json(&doc));
        assert!(jp.is_empty(), "{:?}", &jp[..jp.len().min(3)]);
        assert_eq!(
            from_json.rule_count(),
            nft_rules,
            "JSON and text hold the same rules"
        );
        println!(
            "nft JSON: {:.1} MB, median of {RUNS} {:.3} s (CPU {:.2} s) = {:.0} MB/s (goal: at least 100)",
            doc.len() as f64 / 1e6,
            t_json.as_secs_f64(),
            c_json.as_secs_f64(),
            doc.len() as f64 / 1e6 / t_json.as_secs_f64()
        );
    }

    if part("render") {
        let parsed = parse_str(&text, &ParseOptions::lenient("nft")).expect("parses");
        let mut tables = Vec::new();
        let mut rest = Vec::new();
        let mut total = Vec::new();
        let mut cpu = Vec::new();
        let mut shape = (0, 0, 0);
        for _ in 0..RUNS {
            let rs = parsed.ruleset.clone();
            let c0 = cpu_time();
            let t0 = Instant::now();
            let drawn = iptviz::nft::project::with_drawn_tables(rs);
            let t1 = Instant::now();
            let g = ChainGraph::build(&drawn);
            let v = view(&drawn, &g, &ViewOptions::default()).expect("default view");
            let l = layout(&v, Choice::Auto);
            let s = svg(&v, &l);
            let t2 = Instant::now();
            cpu.push(cpu_time().saturating_sub(c0));
            shape = (v.nodes.len(), v.edges.len(), s.len());
            tables.push(t1 - t0);
            rest.push(t2 - t1);
            total.push(t2 - t0);
        }
        let med = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2].as_secs_f64()
        };
        println!(
            "render default view: {} nodes, {} edges, {:.1} MB SVG; median of {RUNS}: drawing tables {:.3} s, graph+view+layout+svg {:.3} s, total {:.3} s (CPU {:.2} s) (goal: under 1)",
            shape.0,
            shape.1,
            shape.2 as f64 / 1e6,
            med(&mut tables),
            med(&mut rest),
            med(&mut total),
            med(&mut cpu)
        );
    }
}
