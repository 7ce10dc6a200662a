//! Peak memory of each command against the size of its input (issue 14's
//! goal: every command under 4x the input). Runs the built `iptviz` under
//! `/usr/bin/time -f %M` (maximum resident size) for `check`, `render`
//! (SVG and DOT, default options) and `trace` of one packet.
//!
//! Input: see `common/input.rs`. The figure is for the 168 MB dump:
//! `python3 ../shared/tools/kube-scale.py --services 100000 <
//! ../shared/corpus/iptables/k8s-calico-kubeproxy-iptables-mode.rules >
//! /tmp/kube100k.rules`, then `IPTVIZ_BENCH_RULES=/tmp/kube100k.rules cargo
//! bench --bench memory`.

use std::process::Command;

#[path = "common/input.rs"]
mod input;

fn main() {
    let (bytes, name) = input::kube_dump();
    let dir = std::env::temp_dir().join(format!("iptviz-bench-memory-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot make {}: {e}", dir.display());
        std::process::exit(2);
    }
    let rules = dir.join("input.rules");
    if let Err(e) = std::fs::write(&rules, &bytes) {
        eprintln!("cannot write {}: {e}", rules.display());
        std::process::exit(2);
    }
    let input_kb = bytes.len() as f64 / 1024.0;
    drop(bytes);
    println!("input {name}: {input_kb:.0} KB");
    let f = rules.display().to_string();
    let out = |ext: &str| dir.join(format!("out.{ext}")).display().to_string();
    let (svg, dot) = (out("svg"), out("dot"));
    let packet = [
        "--proto",
        "tcp",
        "--src",
        "10.0.0.1",
        "--dst",
        "10.96.0.1",
        "--dport",
        "443",
    ];
    let mut trace = vec!["trace", f.as_str()];
    trace.extend(packet);
    let runs: [(&str, Vec<&str>); 4] = [
        ("check", vec!["check", &f]),
        ("render (svg)", vec!["render", &f, "-o", &svg]),
        ("render (dot)", vec!["render", &f, "-f", "dot", "-o", &dot]),
        ("trace", trace),
    ];
    for (what, args) in runs {
        let o = Command::new("/usr/bin/time")
            .args(["-f", "%M %e"])
            .arg(env!("CARGO_BIN_EXE_iptviz"))
            .args(&args)
            .output();
        let Ok(o) = o else {
            eprintln!("/usr/bin/time is needed (apt-get install time)");
            std::process::exit(2);
        };
        let err = String::from_utf8_lossy(&o.stderr);
        let last = err.lines().last().unwrap_or("");
        let mut words = last.split_whitespace();
        let (Some(Ok(kb)), Some(secs)) = (words.next().map(str::parse::<f64>), words.next()) else {
            eprintln!("{what}: no figure from /usr/bin/time: {err}");
            continue;
        };
        println!(
            "{what:<14} peak {:>8.0} KB  {:>4.2}x the input  {secs} s{}",
            kb,
            kb / input_kb,
            if kb / input_kb < 4.0 {
                ""
            } else {
                "  (goal: under 4x)"
            }
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
