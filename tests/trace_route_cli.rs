//! `iptviz trace --routes/--sysctl/--join` from the command line: flag
//! errors, the routing decision in text and JSON, and the same options
//! applied to `--packets` and `--pcap` replays.

use std::time::Duration;

use assert_cmd::Command;
use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use serde_json::Value;

const RPFILTER: &str = "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m rpfilter --invert -j DROP
COMMIT
";

const RULES: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p udp
-A FORWARD -p udp
COMMIT
";

/// The shapes `ip route show table all` prints.
const ROUTES: &str = "default via 10.2.0.2 dev eth1 proto static metric 100
10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.1
10.2.0.0/24 dev eth1 proto kernel scope link src 10.2.0.1
unreachable 198.51.100.0/24
local 10.1.0.1 dev eth0 table local proto kernel scope host src 10.1.0.1
local 10.2.0.1 dev eth1 table local proto kernel scope host src 10.2.0.1
broadcast 10.1.0.255 dev eth0 table local proto kernel scope link src 10.1.0.1
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
";

/// A directory of the test's own, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files() -> (TempDir, String, String) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = TempDir(std::env::temp_dir().join(format!(
        "iptviz-route-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )));
    std::fs::create_dir_all(dir.path()).unwrap();
    let rules = dir.path().join("rules");
    let routes = dir.path().join("routes");
    std::fs::write(&rules, RULES).unwrap();
    std::fs::write(dir.path().join("rpfilter"), format!("{RPFILTER}{RULES}")).unwrap();
    std::fs::write(&routes, ROUTES).unwrap();
    (
        dir,
        rules.display().to_string(),
        routes.display().to_string(),
    )
}

fn iptviz(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(args)
        .write_stdin(stdin)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_sysctl_key_is_an_error_naming_the_accepted_ones() {
    let (_d, rules, _) = files();
    let (code, _, err) = iptviz(
        &[
            "trace",
            &rules,
            "-s",
            "10.1.0.2",
            "-d",
            "10.1.0.1",
            "--sysctl",
            "net.ipv4.conf.all.log_martians=1",
        ],
        b"",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("log_martians"), "{err}");
    assert!(
        err.contains("accepted keys: net.ipv4.ip_forward, net.ipv6.conf.all.forwarding"),
        "{err}"
    );
    let (code, _, err) = iptviz(
        &[
            "trace",
            &rules,
            "-s",
            "10.1.0.2",
            "-d",
            "10.1.0.1",
            "--sysctl",
            "net.ipv4.conf.eth0.rp_filter=3",
        ],
        b"",
    );
    assert_eq!(code, 2);
    assert!(err.contains("takes 0 to 2"), "{err}");
}

#[test]
fn a_sysctl_given_twice_with_two_values_is_an_error() {
    let (_d, rules, _) = files();
    let (code, _, err) = iptviz(
        &[
            "trace",
            &rules,
            "-s",
            "10.1.0.2",
            "-d",
            "10.1.0.1",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "net/ipv4/ip_forward=0",
        ],
        b"",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("net.ipv4.ip_forward given twice, as 1 and 0"),
        "{err}"
    );
}

#[test]
fn direction_in_or_forward_with_routes_is_an_error() {
    let (_d, rules, routes) = files();
    for d in ["in", "forward"] {
        let (code, _, err) = iptviz(
            &[
                "trace",
                &rules,
                "-s",
                "10.1.0.2",
                "-d",
                "10.9.0.1",
                "-i",
                "eth0",
                "--routes",
                &routes,
                "--direction",
                d,
            ],
            b"",
        );
        assert_eq!(code, 2, "{d}: {err}");
        assert!(err.contains("routing step decides"), "{err}");
    }
}

#[test]
fn join_of_a_unicast_address_is_an_error() {
    let (_d, rules, _) = files();
    let (code, _, err) = iptviz(
        &[
            "trace",
            &rules,
            "-s",
            "10.1.0.2",
            "-d",
            "239.1.1.1",
            "--join",
            "10.1.0.1",
        ],
        b"",
    );
    assert_eq!(code, 2);
    assert!(err.contains("not a multicast group"), "{err}");
}

#[test]
fn a_bad_route_line_is_named_with_line_and_column() {
    let (d, rules, _) = files();
    let bad = d.path().join("bad-routes");
    std::fs::write(
        &bad,
        "10.0.0.0/8 dev eth0\n10.1.0.0/24 via nowhere dev eth1\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    let (code, _, err) = iptviz(
        &[
            "trace", &rules, "-s", "10.1.0.2", "-d", "10.1.0.1", "--routes", &bad,
        ],
        b"",
    );
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "{bad}:2:17: error: expected an address after `via`"
        )),
        "{err}"
    );
    assert!(err.contains("^"), "{err}");
}

#[test]
fn text_says_which_route_or_martian_rule_decided() {
    let (_d, rules, routes) = files();
    let (code, out, err) = iptviz(
        &[
            "trace",
            &rules,
            "-p",
            "udp",
            "-s",
            "127.0.0.5",
            "-d",
            "10.1.0.1",
            "-i",
            "eth0",
            "--routes",
            &routes,
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("verdict DROP: dropped by routing: martian source 127.0.0.5"),
        "{out}"
    );
    assert!(out.contains("route_localnet=0"), "{out}");
    let (_, out, _) = iptviz(
        &[
            "trace", &rules, "-p", "udp", "-s", "10.1.0.2", "-d", "10.2.0.9", "-i", "eth0",
            "--routes", &routes,
        ],
        b"",
    );
    assert!(
        out.contains("routing forward (FORWARD) out of eth1"),
        "{out}"
    );
    assert!(
        out.contains("route 10.2.0.0/24 dev eth1 proto kernel scope link src 10.2.0.1 (line 3)"),
        "{out}"
    );
    assert!(out.contains("verdict ACCEPT: forwarded"), "{out}");
    // Without routes the old assumption is named.
    let (_, out, _) = iptviz(
        &[
            "trace", &rules, "-p", "udp", "-s", "10.1.0.2", "-d", "10.1.0.1", "--local", "10.1.0.1",
        ],
        b"",
    );
    assert!(out.contains("routing not modelled (no --routes)"), "{out}");
}

#[test]
fn json_carries_the_routing_step_and_forwarding_off_drops() {
    let (_d, rules, routes) = files();
    let (code, out, err) = iptviz(
        &[
            "trace",
            &rules,
            "-p",
            "udp",
            "-s",
            "10.1.0.2",
            "-d",
            "10.2.0.9",
            "-i",
            "eth0",
            "--routes",
            &routes,
            "--sysctl",
            "net.ipv4.ip_forward=0",
            "--json",
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "DROP");
    assert_eq!(v["routing"]["decision"], "drop");
    assert!(
        v["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("net.ipv4.ip_forward=0"),
        "{v}"
    );
    assert_eq!(v["hooks"], serde_json::json!(["PREROUTING"]));
}

#[test]
fn rpfilter_invert_is_decided_from_the_routes() {
    let (d, _, routes) = files();
    let rules = d.path().join("rpfilter").display().to_string();
    // 8.8.8.8 comes back by the default route out of eth1: arriving on
    // eth0 it fails the strict check, and `--invert` drops it.
    let (_, out, _) = iptviz(
        &[
            "trace", &rules, "-p", "udp", "-s", "8.8.8.8", "-d", "10.1.0.1", "-i", "eth0",
            "--routes", &routes,
        ],
        b"",
    );
    assert!(out.contains("verdict DROP in PREROUTING"), "{out}");
    let (_, out, _) = iptviz(
        &[
            "trace", &rules, "-p", "udp", "-s", "8.8.8.8", "-d", "10.2.0.1", "-i", "eth1",
            "--routes", &routes,
        ],
        b"",
    );
    assert!(
        out.contains("verdict ACCEPT: delivered to this host"),
        "{out}"
    );
}

#[test]
fn multicast_is_delivered_only_to_a_joined_group() {
    let (_d, rules, routes) = files();
    let args = |extra: &[&'static str]| {
        let mut v = vec![
            "trace".to_string(),
            rules.clone(),
            "-p".into(),
            "udp".into(),
            "-s".into(),
            "10.1.0.2".into(),
            "-d".into(),
            "239.1.1.1".into(),
            "-i".into(),
            "eth0".into(),
            "--routes".into(),
            routes.clone(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a = args(&["--join", "239.1.1.1"]);
    let (_, out, _) = iptviz(&a.iter().map(String::as_str).collect::<Vec<_>>(), b"");
    assert!(
        out.contains("verdict ACCEPT: delivered to this host"),
        "{out}"
    );
    let a = args(&[]);
    let (_, out, _) = iptviz(&a.iter().map(String::as_str).collect::<Vec<_>>(), b"");
    assert!(out.contains("has not joined the group"), "{out}");
    assert!(out.contains("multicast routing is not modelled"), "{out}");
}

#[test]
fn packets_lines_get_the_routes_and_sysctls() {
    let (_d, rules, routes) = files();
    let lines = concat!(
        r#"{"proto":"udp","src":"10.1.0.2","dst":"10.1.0.1","in":"eth0"}"#,
        "\n",
        r#"{"proto":"udp","src":"240.0.0.1","dst":"10.2.0.1","in":"eth1"}"#,
        "\n",
        r#"{"proto":"udp","src":"224.0.0.7","dst":"10.1.0.1","in":"eth0"}"#,
        "\n",
        r#"{"proto":"udp","src":"10.1.0.2","dst":"198.51.100.1","in":"eth0"}"#,
        "\n",
        r#"{"proto":"ipv4","src":"10.1.0.2","dst":"10.1.0.1","in":"eth0"}"#,
        "\n",
    );
    let (code, out, err) = iptviz(
        &["trace", &rules, "--routes", &routes, "--packets", "-"],
        lines.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    let v: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdicts: Vec<&str> = v.iter().map(|l| l["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["ACCEPT", "ACCEPT", "DROP", "DROP", "ACCEPT"]);
    assert!(
        v[2]["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("martian source")
    );
    assert!(
        v[3]["routing"]["route"]
            .as_str()
            .unwrap()
            .starts_with("unreachable 198.51.100.0/24")
    );
    assert!(
        v[4]["input"].as_str().unwrap().contains("ipip")
            || v[4]["input"].as_str().unwrap().contains("4 "),
        "{}",
        v[4]
    );
    // rp_filter strict on eth0 turns the first into a drop as well.
    let (_, out, _) = iptviz(
        &[
            "trace",
            &rules,
            "--routes",
            &routes,
            "--sysctl",
            "net.ipv4.conf.eth0.rp_filter=1",
            "--packets",
            "-",
        ],
        r#"{"proto":"udp","src":"8.8.8.8","dst":"10.1.0.1","in":"eth0"}"#.as_bytes(),
    );
    let l: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(l["verdict"], "DROP", "{l}");
}

fn udp_frame(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .udp(40000, 53);
    let mut f = Vec::new();
    b.write(&mut f, &[1, 2, 3, 4]).unwrap();
    f
}

#[test]
fn pcap_replay_gets_the_routes_and_sysctls() {
    let (d, rules, routes) = files();
    let mut w = PcapWriter::with_header(
        Vec::new(),
        PcapHeader {
            datalink: DataLink::ETHERNET,
            ..Default::default()
        },
    )
    .unwrap();
    for (i, (s, t)) in [
        ([10, 1, 0, 2], [10, 1, 0, 1]),
        ([127, 0, 0, 9], [10, 1, 0, 1]),
        ([10, 1, 0, 2], [10, 2, 0, 7]),
    ]
    .iter()
    .enumerate()
    {
        let f = udp_frame(*s, *t);
        w.write_packet(&PcapPacket::new(
            Duration::from_millis(i as u64),
            f.len() as u32,
            &f,
        ))
        .unwrap();
    }
    let cap = d.path().join("c.pcap");
    std::fs::write(&cap, w.into_writer()).unwrap();
    let cap = cap.display().to_string();
    let (code, out, err) = iptviz(
        &[
            "trace",
            &rules,
            "--pcap",
            &cap,
            "--in",
            "eth0",
            "--routes",
            &routes,
            "--sysctl",
            "net.ipv4.ip_forward=0",
            "-f",
            "jsonl",
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    let v: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdicts: Vec<&str> = v.iter().map(|l| l["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["ACCEPT", "DROP", "DROP"], "{out}");
    assert!(
        v[1]["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("martian source 127.0.0.9")
    );
    assert!(
        v[2]["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("ip_forward=0")
    );
}

#[test]
fn direction_in_with_local_is_not_silently_overridden_after_dnat() {
    // `--direction in` with `--local` given used to turn into FORWARD
    // without a word when a DNAT sent the packet to another host.
    let rules = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.9.9.9:8080
COMMIT
";
    let (code, out, err) = iptviz(
        &[
            "trace",
            "-",
            "-s",
            "192.0.2.1",
            "-d",
            "10.0.0.1",
            "--dport",
            "80",
            "--direction",
            "in",
            "--local",
            "10.0.0.2",
        ],
        rules.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("path    PREROUTING -> FORWARD"), "{out}");
    assert!(
        out.contains("--direction in, but the destination was rewritten to 10.9.9.9"),
        "{out}"
    );
}

#[test]
fn the_reply_of_a_routed_packet_comes_back_on_the_interface_routing_chose() {
    let (_d, rules, routes) = files();
    let (code, out, err) = iptviz(
        &[
            "trace", &rules, "-p", "udp", "-s", "10.1.0.7", "-d", "10.2.0.9", "-i", "eth0",
            "--routes", &routes, "--reply",
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("routing forward (FORWARD) out of eth0"),
        "{out}"
    );
    assert!(
        out.contains("leaves  udp 10.2.0.9:0 -> 10.1.0.7:40000 in eth1 out eth0 ESTABLISHED"),
        "{out}"
    );
}
