//! The kernel as the oracle for `iptviz trace --pcap`: packets are sent
//! into a namespace holding a real ruleset while `tcpdump` records them on
//! the interface they arrive by; `iptviz trace --pcap` of that recording
//! (`-f counters`) must predict exactly how far the kernel's counter of
//! every rule and policy moved.
//!
//! Unlike `kernel_trace.rs`, conntrack is not flushed between packets:
//! the kernel's connection table carries over from packet to packet as it
//! does for real traffic, and each TCP packet is sent a second time as a
//! bare ACK (a later packet of its connection when the first was let
//! through: NEW until a reply is seen, the nat table not walked again).
//!
//! Needs root, `ip`, `iptables-restore`, `iptables-save`, their IPv6
//! twins, `ipset`, `conntrack`, `python3` and `tcpdump`; without them the
//! test says why and passes, unless `IPTVIZ_REQUIRE_KERNEL_TESTS=1`.

#[path = "kernel/lab.rs"]
#[allow(dead_code)]
mod lab;
#[path = "kernel/packets.rs"]
#[allow(dead_code)]
mod packets;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use iptviz::parse::{ParseOptions, parse_str};

use lab::{Family, Key, Lab, POLICY};

/// Rulesets without rules whose outcome the capture cannot tell
/// (random, rate limits, recent lists).
const CASES: &[(&str, Family, usize)] = &[
    ("ferm-dmz-router.rules", Family::V4, 60),
    ("libvirt-duplicated-rules.rules", Family::V4, 50),
    ("ipv6-mailserver.rules", Family::V6, 50),
    ("firewalld-fedora27-ipv6-counters.rules", Family::V6, 50),
    ("mac", Family::V4, 40),
];

/// `-m mac`: the test's frames come from 02:00:00:00:0f:ff (sender.py),
/// so the first rule matches them and the last never does.
const MAC_RULES: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i eth0 -m mac --mac-source 02:00:00:00:0F:FF -p tcp -j ACCEPT
-A INPUT -m mac --mac-source 02:00:00:00:0f:fe -j DROP
-A INPUT -m mac ! --mac-source 02:00:00:00:0f:ff -j DROP
-A INPUT -p udp -j ACCEPT
-A FORWARD -m mac ! --mac-source 02:00:00:00:0f:fe -p udp -j DROP
COMMIT
";

fn corpus(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/iptables")
        .join(name)
}

/// Packet counters of every rule and built-in policy of an
/// `iptables-save -c` text.
fn counters(text: &str) -> BTreeMap<Key, u64> {
    let rs = parse_str(text, &ParseOptions::lenient("counters"))
        .expect("counters parse")
        .ruleset;
    let mut m = BTreeMap::new();
    for t in &rs.tables {
        for c in &t.chains {
            if c.builtin
                && let Some(k) = c.counters
            {
                m.insert((t.name.to_string(), c.name.to_string(), POLICY), k.packets);
            }
            for (i, r) in c.rules.iter().enumerate() {
                m.insert(
                    (t.name.to_string(), c.name.to_string(), i),
                    r.counters.map(|k| k.packets).unwrap_or(0),
                );
            }
        }
    }
    m
}

/// Marks an error after which the case is worth running again: the
/// capture itself was incomplete.
const INCOMPLETE: &str = "incomplete capture: ";

/// The "N packets dropped by kernel" figure from tcpdump's closing words.
fn dropped_by_kernel(stats: &str) -> Option<u64> {
    stats.lines().find_map(|l| {
        l.trim()
            .strip_suffix("packets dropped by kernel")
            .and_then(|n| n.trim().parse().ok())
    })
}

/// Runs one case until its capture is complete (three tries at most).
fn run_case_complete(
    name: &str,
    family: Family,
    max: usize,
) -> Result<(usize, Vec<String>), String> {
    let mut tries = 0;
    loop {
        tries += 1;
        match run_case(name, family, max) {
            Err(e) if e.starts_with(INCOMPLETE) && tries < 3 => {
                eprintln!("{e}; capturing again (try {})", tries + 1);
            }
            r => return r,
        }
    }
}

#[test]
fn capture_with_packets_dropped_by_kernel_is_taken_again() {
    let stats = "58 packets captured\n69 packets received by filter\n11 packets dropped by kernel";
    assert_eq!(dropped_by_kernel(stats), Some(11));
    assert_eq!(dropped_by_kernel("tcpdump: listening"), None);
}

/// Runs one case: (packets captured, disagreements).
fn run_case(name: &str, family: Family, max: usize) -> Result<(usize, Vec<String>), String> {
    let text = if name == "mac" {
        MAC_RULES.to_string()
    } else {
        std::fs::read_to_string(corpus(name)).map_err(|e| format!("{name}: {e}"))?
    };
    let rs = parse_str(&text, &ParseOptions::lenient(name))
        .map_err(|e| e.to_string())?
        .ruleset;
    let mut ifaces = packets::interface_names(&rs);
    if ifaces.is_empty() {
        ifaces.push("eth0".into());
    }
    let extra = match family {
        Family::V4 => Vec::new(),
        Family::V6 => {
            packets::host_addresses(&packets::reachable_rules(&rs, &["INPUT"]), family, false, 4)
        }
    };
    let mut lab = Lab::new(family, &rs, &text, ifaces, &extra)?;
    // Everything arrives on the first interface and what is not for the
    // host leaves by the last.
    let out_if = lab.ifaces.len() - 1;
    lab.route_via(out_if)?;
    let dir = std::env::temp_dir().join(format!("iptviz-kcap-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let cap = dir.join("in.pcap");
    let rules_file = dir.join("rules");
    std::fs::write(&rules_file, &text).map_err(|e| e.to_string())?;
    let mut dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.host,
            "tcpdump",
            "-p",
            "-n",
            "-U",
            "--immediate-mode",
            // A roomy capture buffer: on a loaded machine tcpdump may not
            // be scheduled while the burst arrives (the kernel then drops
            // from a small buffer, and the capture misses packets).
            "-B",
            "32768",
            "-i",
        ])
        .arg(&lab.ifaces[0])
        .arg("-w")
        .arg(&cap)
        // What arrives: frames to the host's own address on link 0 (what
        // it forwards back out of that link goes to the peer's).
        .args(["ether", "dst", "02:00:00:00:00:00"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("tcpdump: {e}"))?;
    let mut err = BufReader::new(dump.stderr.take().ok_or("tcpdump stderr")?);
    let mut line = String::new();
    while err.read_line(&mut line).map_err(|e| e.to_string())? > 0 && !line.contains("listening") {
        line.clear();
    }
    // tcpdump says it listens a moment before packets reach it.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let sent = (|| -> Result<usize, String> {
        lab.observe()?;
        let mut sent = 0;
        for mut p in packets::arriving(&rs, family, &lab.ifaces, &lab.locals, max) {
            p.in_if = 0;
            p.out_if = out_if;
            let syn = if p.proto == 6 { 0x02 } else { 0 };
            lab.send_wire(0, &p.fields(syn, 1000, 0))?;
            sent += 1;
            if p.proto == 6 {
                lab.send_wire(0, &p.fields(0x10, 1001, 1))?;
                sent += 1;
            }
        }
        Ok(sent)
    })();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status();
    let _ = dump.wait();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    eprintln!("{name}: tcpdump: {}", rest.trim().replace('\n', "; "));
    let sent = sent?;
    if let Some(dropped) = dropped_by_kernel(&rest)
        && dropped > 0
    {
        // The recording is not the traffic the kernel saw: nothing to
        // compare. The caller runs the case again.
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "{INCOMPLETE}{name}: tcpdump lost {dropped} packets (dropped by kernel)"
        ));
    }
    let seen = lab.observe()?;

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iptviz"));
    cmd.arg("trace")
        .arg(&rules_file)
        .arg("--pcap")
        .arg(&cap)
        .args(["-f", "counters", "--in", &lab.ifaces[0], "--out"])
        .arg(&lab.ifaces[out_if]);
    if family == Family::V6 {
        cmd.arg("-6");
    }
    let locals: Vec<String> = lab.locals.iter().map(|a| a.to_string()).collect();
    cmd.arg("--local").arg(locals.join(","));
    for (k, n) in lab.ifaces.iter().enumerate() {
        cmd.arg("--iface-addr")
            .arg(format!("{n}={}", family.link(k).0));
    }
    for a in lab.loopback_addresses() {
        cmd.arg("--iface-addr").arg(format!("lo={a}"));
    }
    for s in lab.ipsets.keys() {
        cmd.arg("--ipset").arg(format!("{s}="));
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    let size = std::fs::metadata(&cap).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("{name}: iptviz says: {stderr}");
    }
    if !out.status.success() {
        return Err(format!(
            "{name}: iptviz trace --pcap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let predicted = counters(&String::from_utf8_lossy(&out.stdout));
    let mut problems = Vec::new();
    for (k, p) in &predicted {
        let kernel = seen.hits.get(k).copied().unwrap_or(0);
        if kernel != *p {
            problems.push(format!(
                "{name} ({size} bytes captured): {} {} {}: kernel {kernel}, iptviz {p}",
                k.0,
                k.1,
                if k.2 == POLICY {
                    "policy".to_string()
                } else {
                    format!("#{}", k.2 + 1)
                }
            ));
        }
    }
    for (k, v) in &seen.hits {
        if !predicted.contains_key(k) {
            problems.push(format!(
                "{name}: kernel counted {k:?} {v} times, iptviz has no such rule"
            ));
        }
    }
    Ok((sent, problems))
}

#[test]
fn capture_replay_predicts_the_kernels_counters() {
    let required = std::env::var("IPTVIZ_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1");
    if let Some(why) = lab::missing_prerequisite(&[
        "ip",
        "iptables-restore",
        "iptables-save",
        "ip6tables-restore",
        "ip6tables-save",
        "ipset",
        "conntrack",
        "python3",
        "tcpdump",
    ]) {
        if required {
            panic!("kernel capture test required but cannot run: {why}");
        }
        eprintln!(
            "kernel capture test NOT RUN: {why} (set IPTVIZ_REQUIRE_KERNEL_TESTS=1 to fail instead)"
        );
        return;
    }
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = CASES
            .iter()
            .map(|(n, f, m)| s.spawn(move || run_case_complete(n, *f, *m)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("case thread"))
            .collect()
    });
    let mut all = Vec::new();
    let mut total = 0;
    for ((name, _, _), r) in CASES.iter().zip(results) {
        match r {
            Ok((sent, problems)) => {
                eprintln!(
                    "{name}: {sent} packets captured and replayed, {} counters differ",
                    problems.len()
                );
                total += sent;
                all.extend(problems);
            }
            Err(e) => all.push(e),
        }
    }
    eprintln!(
        "capture replay: {total} packets over {} rulesets",
        CASES.len()
    );
    assert!(all.is_empty(), "{}", all.join("\n"));
}
