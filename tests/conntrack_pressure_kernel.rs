//! NAT port pressure against the real kernel: three namespaces (pods, a
//! node that forwards and masquerades, a server), a MASQUERADE with a small
//! `--to-ports` range, and more UDP flows from the pods to one server port
//! than the range has ports. The kernel's own table (read with the
//! `conntrack` tool, not our parser) must hold exactly the tuples the
//! pressure report counts, and the tuple must be reported full.
//!
//! A second rule without ports checks the kernel default the report states:
//! a source port is kept when free, else a port of the same class is chosen
//! (1-511, 600-1023, 1024-65535). The same namespaces serve the live fill
//! (procfs of the node namespace) and a `--watch --record` session that
//! `--replay` must print again figure for figure.
//!
//! Needs root, `ip`, `iptables-restore`, `conntrack`, `python3`. Only the
//! namespaces made here are touched; they are deleted even on failure.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use iptviz::conntrack::nat::NatRules;
use iptviz::conntrack::pressure::{PressureLevel, PressureOptions, RangeFrom};
use iptviz::conntrack::{self, Parsed};
use iptviz::parse::{ParseOptions, parse_bytes};

const SERVER: &str = "10.99.0.2";
const NODE_OUT: &str = "10.99.0.1";
const PODS: [&str; 3] = ["10.88.0.2", "10.88.0.3", "10.88.0.4"];
/// The small range: 8 ports.
const LO: u16 = 20000;
const HI: u16 = 20007;
/// Flows each pod opens to the small-range port, one after the other.
const PER_POD: usize = 6;

fn rules(out_if: &str) -> String {
    format!(
        "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o {out_if} -p udp -m udp --dport 5000 -j MASQUERADE --to-ports {LO}-{HI}
-A POSTROUTING -o {out_if} -p udp -m udp --dport 6000 -j MASQUERADE
COMMIT
"
    )
}

fn run(args: &[&str]) -> Result<Output, String> {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", args.join(" ")))
}

fn ok(args: &[&str]) -> Result<Output, String> {
    let o = run(args)?;
    if o.status.success() {
        Ok(o)
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim(),
            String::from_utf8_lossy(&o.stdout).trim()
        ))
    }
}

fn sh(ns: &str, script: &str) -> Result<Output, String> {
    ok(&["ip", "netns", "exec", ns, "sh", "-c", script])
}

struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

/// Sends one UDP datagram per (source address, source port or 0) from its
/// own socket, in order, keeping the sockets open until all are sent.
const SENDER: &str = r#"
import socket, sys, time
dst = sys.argv[1]
keep = []
for spec in sys.argv[2:]:
    addr, sport, dport = spec.split(",")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(sport)))
    s.sendto(b"x", (dst, int(dport)))
    keep.append(s)
    time.sleep(0.01)
time.sleep(0.3)
"#;

#[test]
fn masquerade_port_range_runs_out_and_the_report_says_full() {
    if !common::kernel_tests_can_run(&["ip", "iptables-restore", "conntrack", "python3"]) {
        return;
    }
    if let Err(e) = scenario() {
        panic!("{e}");
    }
}

fn scenario() -> Result<(), String> {
    let pid = std::process::id();
    let [pods, node, server] = ["p", "n", "s"].map(|k| format!("iptviz-pp-{pid}-{k}"));
    let tag = pid % 100_000;
    let (pv, npv, nsv, sv) = (
        format!("ppa{tag}"),
        format!("ppb{tag}"),
        format!("ppc{tag}"),
        format!("ppd{tag}"),
    );
    let mut guard = Cleanup(Vec::new());
    for ns in [&pods, &node, &server] {
        ok(&["ip", "netns", "add", ns])?;
        guard.0.push(ns.clone());
        sh(ns, "ip link set lo up")?;
    }
    ok(&[
        "ip", "link", "add", &pv, "netns", &pods, "type", "veth", "peer", "name", &npv, "netns",
        &node,
    ])?;
    ok(&[
        "ip", "link", "add", &nsv, "netns", &node, "type", "veth", "peer", "name", &sv, "netns",
        &server,
    ])?;
    let mut pod_setup = format!("ip link set {pv} up && ");
    for a in PODS {
        pod_setup.push_str(&format!("ip addr add {a}/24 dev {pv} && "));
    }
    pod_setup.push_str("ip route add default via 10.88.0.1");
    sh(&pods, &pod_setup)?;
    sh(
        &node,
        &format!(
            "ip addr add 10.88.0.1/24 dev {npv} && ip link set {npv} up && \
             ip addr add {NODE_OUT}/24 dev {nsv} && ip link set {nsv} up && \
             sysctl -qw net.ipv4.ip_forward=1"
        ),
    )?;
    // The server drops the datagrams: the flows stay [UNREPLIED] in the
    // node's table (30 s), with no ICMP errors coming back.
    sh(
        &server,
        &format!(
            "ip addr add {SERVER}/24 dev {sv} && ip link set {sv} up && \
             iptables -A INPUT -p udp -j DROP"
        ),
    )?;
    let mut restore = Command::new("ip")
        .args(["netns", "exec", &node, "iptables-restore"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("iptables-restore: {e}"))?;
    restore
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(rules(&nsv).as_bytes())
        .map_err(|e| e.to_string())?;
    let o = restore.wait_with_output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }

    // More flows to port 5000 than the range has ports, pod after pod; then
    // pairs of pods on the same source port to port 6000 (no --to-ports).
    let mut specs: Vec<String> = Vec::new();
    for a in PODS {
        for _ in 0..PER_POD {
            specs.push(format!("{a},0,5000"));
        }
    }
    for port in [40000, 700, 300] {
        for a in &PODS[..2] {
            specs.push(format!("{a},{port},6000"));
        }
    }
    let mut args = vec![
        "ip", "netns", "exec", &pods, "python3", "-c", SENDER, SERVER,
    ];
    args.extend(specs.iter().map(String::as_str));
    ok(&args)?;

    // The kernel's table in its own tool's words.
    let listed = ok(&["ip", "netns", "exec", &node, "conntrack", "-L", "-p", "udp"])?;
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    let kernel: Vec<(String, u16, u16, u16)> = listed
        .lines()
        .filter_map(|l| {
            // orig: src= dst= sport= dport= ... reply: src= dst= sport= dport=
            let vals = |k: &str| -> Vec<&str> {
                l.split_whitespace()
                    .filter_map(|w| w.strip_prefix(k))
                    .collect()
            };
            let (src, sport, dport) = (vals("src="), vals("sport="), vals("dport="));
            if src.len() < 2 || sport.len() < 2 || dport.len() < 2 {
                return None;
            }
            Some((
                src[0].to_string(),
                sport[0].parse().ok()?,
                dport[0].parse().ok()?,
                dport[1].parse().ok()?,
            ))
        })
        .collect();
    let to_small: Vec<_> = kernel.iter().filter(|k| k.2 == 5000).collect();
    let kernel_ports: BTreeSet<u16> = to_small.iter().map(|k| k.3).collect();
    let want: BTreeSet<u16> = (LO..=HI).collect();
    if kernel_ports != want {
        return Err(format!(
            "the kernel should have used every port {LO}-{HI} once: {kernel_ports:?}\n{listed}"
        ));
    }

    // Our report over the node's table, read from procfs.
    let text = sh(&node, "cat /proc/net/nf_conntrack")?.stdout;
    let t = match conntrack::parse_bytes(&text, "node") {
        Ok(Parsed::Entries(t)) => t,
        other => return Err(format!("node table: {other:?}")),
    };
    let saved = sh(&node, "iptables-save")?.stdout;
    let rs =
        parse_bytes(&saved, &ParseOptions::lenient("node rules")).map_err(|e| e.to_string())?;
    let nat = NatRules::from_ruleset(&rs.ruleset);
    let p = conntrack::pressure(
        &t.entries,
        Some(&nat),
        PressureOptions {
            top: 10,
            clients_per_tuple: 3,
            limit_per_dest: None,
        },
    );
    let label = format!("udp {NODE_OUT} -> {SERVER}:5000");
    let small = p
        .tuples
        .iter()
        .find(|x| x.label() == label)
        .ok_or_else(|| format!("no tuple {label} in {p:#?}"))?;
    if small.ports != to_small.len() as u64 || small.ports != (HI - LO + 1) as u64 {
        return Err(format!(
            "ports in use: report {}, kernel {} entries, range {}",
            small.ports,
            to_small.len(),
            HI - LO + 1
        ));
    }
    if small.percent != 100.0 || small.level != PressureLevel::Full || p.full != 1 {
        return Err(format!("the tuple should be full: {small:#?}"));
    }
    if small.range != (LO, HI) || small.range_from != RangeFrom::Rule {
        return Err(format!("range from the rule expected: {small:#?}"));
    }
    let rule = small.rule.as_ref().ok_or("no rule named")?;
    if (rule.chain.as_str(), rule.index, rule.target.as_str()) != ("POSTROUTING", 1, "MASQUERADE") {
        return Err(format!("wrong rule: {rule:?}"));
    }
    // The first pod took six ports, the second the last two.
    let clients: Vec<(String, u64)> = small
        .clients
        .iter()
        .map(|c| (c.client.to_string(), c.ports))
        .collect();
    let kernel_clients = |a: &str| to_small.iter().filter(|k| k.0 == a).count() as u64;
    let expect = vec![
        (PODS[0].to_string(), kernel_clients(PODS[0])),
        (PODS[1].to_string(), kernel_clients(PODS[1])),
    ];
    if clients != expect || expect[0].1 != 6 || expect[1].1 != 2 {
        return Err(format!("clients {clients:?}, kernel {expect:?}"));
    }

    // Without --to-ports: the first pod on a port keeps it, the second gets
    // one of the same class, as the report's default range says.
    let to_default: Vec<_> = kernel.iter().filter(|k| k.2 == 6000).collect();
    for port in [40000u16, 700, 300] {
        let got: Vec<u16> = to_default
            .iter()
            .filter(|k| k.1 == port)
            .map(|k| k.3)
            .collect();
        let (lo, hi) = conntrack::pressure::default_range(port).0;
        let kept = got.iter().filter(|&&x| x == port).count();
        let moved: Vec<u16> = got.iter().copied().filter(|&x| x != port).collect();
        if got.len() != 2 || kept != 1 || moved.iter().any(|&x| x < lo || x > hi) {
            return Err(format!(
                "source port {port}: kernel chose {got:?}; expected one kept and one in {lo}-{hi}"
            ));
        }
    }
    let dflt = p
        .tuples
        .iter()
        .find(|x| x.label() == format!("udp {NODE_OUT} -> {SERVER}:6000"))
        .ok_or("no tuple to port 6000")?;
    if dflt.ports != 6 || dflt.range_from != RangeFrom::KernelDefault || dflt.range != (1024, 65535)
    {
        return Err(format!("default range tuple: {dflt:#?}"));
    }

    // The command line in the node namespace: live table, live rules, live fill.
    let exe = env!("CARGO_BIN_EXE_iptviz");
    let o = run(&[
        "ip",
        "netns",
        "exec",
        &node,
        exe,
        "conntrack",
        "--live",
        "--live-rules",
    ])?;
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains(&label))
        .ok_or_else(|| format!("no line for {label}:\n{out}"))?;
    if !line.contains("8 of     8 ports (100.0%)") || !line.ends_with("FULL") {
        return Err(format!("the tuple line should say full: {line}"));
    }
    if !out.contains(&format!("ports {LO}-{HI}: MASQUERADE rule POSTROUTING #1")) {
        return Err(format!("range and rule missing:\n{out}"));
    }
    let proc = |f: &str| -> Result<u64, String> {
        let o = sh(&node, &format!("cat /proc/sys/net/netfilter/{f}"))?;
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("{f}: {e}"))
    };
    let json = ok(&[
        "ip",
        "netns",
        "exec",
        &node,
        exe,
        "conntrack",
        "--live",
        "--json",
    ])?;
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).map_err(|e| e.to_string())?;
    let fill = &v["summary"]["fill"];
    let (count, max, buckets) = (
        proc("nf_conntrack_count")?,
        proc("nf_conntrack_max")?,
        proc("nf_conntrack_buckets")?,
    );
    if fill["count"] != count || fill["max"] != max || fill["buckets"] != buckets {
        return Err(format!(
            "fill {fill} but procfs says count {count}, max {max}, buckets {buckets}"
        ));
    }
    if count != (to_small.len() + to_default.len()) as u64 {
        return Err(format!(
            "nf_conntrack_count {count} vs kernel list {}",
            kernel.len()
        ));
    }

    // The flows that found no port failed to enter the table: insert_failed
    // climbs, and the report ties it to the MASQUERADE rules.
    let stat = sh(&node, "cat /proc/net/stat/nf_conntrack")?.stdout;
    let stats = conntrack::parse_stats(&stat, "node");
    let failed = stats.total("insert_failed").unwrap_or(0);
    let lost = (PODS.len() * PER_POD) as u64 - to_small.len() as u64;
    if failed != lost {
        return Err(format!(
            "insert_failed {failed}, flows without a port {lost}"
        ));
    }
    if !out.contains("insert_failed 10 since boot")
        || !out.contains("POSTROUTING #1 (line")
        || !out.contains("(without --random-fully)")
    {
        return Err(format!("insert_failed not tied to the rules:\n{out}"));
    }

    // A recorded --watch session replays to the same figures.
    let dir = std::env::temp_dir().join(format!("iptviz-pp-{pid}"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let rec = dir.join("watch.jsonl");
    let rec_s = rec.to_string_lossy().to_string();
    let watched = ok(&[
        "ip",
        "netns",
        "exec",
        &node,
        exe,
        "conntrack",
        "--live",
        "--live-rules",
        "--watch",
        "0.3",
        "--count",
        "3",
        "--record",
        &rec_s,
        "--json",
    ])?;
    let replayed = ok(&[exe, "conntrack", "--replay", &rec_s, "--json"])?;
    let _ = std::fs::remove_dir_all(&dir);
    let w = String::from_utf8_lossy(&watched.stdout).to_string();
    if w.lines().count() != 3 || w != String::from_utf8_lossy(&replayed.stdout) {
        return Err(format!(
            "replay differs from the watch:\n{w}\n---\n{}",
            String::from_utf8_lossy(&replayed.stdout)
        ));
    }
    if !w.contains(&format!(
        "\"tuple\":\"{label}\",\"ports\":8,\"range_size\":8,\"percent\":100.0"
    )) {
        return Err(format!("the recorded ticks lack the full tuple:\n{w}"));
    }
    drop(guard);
    Ok(())
}
