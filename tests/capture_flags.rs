//! Flags of `iptviz trace` that disagreed with the kernel on real rulesets
//! (issue 11): each test is named after what broke.

use assert_cmd::Command;
use iptviz::parse::{ParseOptions, parse_str};
use iptviz::trace::{Packet, TraceOptions, Tracer, Verdict};

fn trace(rules: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["trace", "-"])
        .args(args)
        .write_stdin(rules)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FILTER: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m addrtype --dst-type MULTICAST -j ACCEPT
COMMIT
";

#[test]
fn direction_in_is_not_overridden_by_local_addresses() {
    // A multicast packet for a group the host joined goes to INPUT, even
    // though the group is not one of the host's addresses.
    let (code, out, err) = trace(
        FILTER,
        &[
            "-p",
            "udp",
            "-s",
            "192.0.2.9",
            "-d",
            "239.1.2.3",
            "--dport",
            "5000",
            "--in",
            "eth0",
            "--local",
            "192.0.2.1",
            "--direction",
            "in",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ACCEPT, delivered locally") || out.contains("path    PREROUTING -> INPUT"),
        "{out}"
    );
    assert!(!out.contains("FORWARD"), "{out}");
    assert!(out.contains("not among its --local addresses"), "{out}");
}

#[test]
fn contradictory_direction_flags_are_an_error() {
    let (code, _, err) = trace(
        FILTER,
        &[
            "-s",
            "192.0.2.9",
            "-d",
            "192.0.2.1",
            "--local",
            "192.0.2.1",
            "--direction",
            "forward",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--direction forward, but the destination 192.0.2.1"),
        "{err}"
    );
    let (code, _, err) = trace(
        FILTER,
        &[
            "-s",
            "192.0.2.1",
            "-d",
            "192.0.2.9",
            "--in",
            "eth0",
            "--direction",
            "out",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("drop --in"), "{err}");
    let (code, _, err) = trace(
        FILTER,
        &[
            "-s",
            "192.0.2.9",
            "-d",
            "192.0.2.1",
            "--out",
            "eth0",
            "--direction",
            "in",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("drop --out"), "{err}");
}

#[test]
fn rpfilter_invert_is_not_a_reverse_path_failure_by_default() {
    // Calico's raw PREROUTING drops what fails the reverse-path check on
    // its interfaces: without routes the path is taken as valid, so a
    // packet on cali+ is not dropped.
    let rules = "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i cali+ -m rpfilter --validmark --invert -j DROP
COMMIT
";
    let rs = parse_str(rules, &ParseOptions::strict("t"))
        .unwrap()
        .ruleset;
    let mut p = Packet::new(
        6,
        "10.244.1.7".parse().unwrap(),
        "10.96.0.10".parse().unwrap(),
    );
    p.in_iface = Some("cali1234".into());
    let t = Tracer::new(&rs).trace(
        &p,
        &TraceOptions {
            local: vec!["192.168.1.10".parse().unwrap()],
            ..Default::default()
        },
    );
    assert_eq!(t.verdict, Verdict::Accept, "{:#?}", t.steps);
    assert!(
        t.steps[0]
            .notes
            .iter()
            .any(|n| n.contains("reverse path is assumed valid")),
        "{:#?}",
        t.steps
    );
    // Without --invert the same assumption makes the rule match.
    let rs = parse_str(&rules.replace(" --invert", ""), &ParseOptions::strict("t"))
        .unwrap()
        .ruleset;
    let t = Tracer::new(&rs).trace(
        &p,
        &TraceOptions {
            local: vec!["192.168.1.10".parse().unwrap()],
            ..Default::default()
        },
    );
    assert_eq!(t.verdict, Verdict::Drop);
}

#[test]
fn proto_ipv4_is_ip_in_ip() {
    let rules = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p ipv4 -j ACCEPT
COMMIT
";
    let (code, out, err) = trace(
        rules,
        &[
            "-p",
            "ipv4",
            "-s",
            "192.0.2.9",
            "-d",
            "192.0.2.1",
            "--local",
            "192.0.2.1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ACCEPT, delivered locally") || out.contains("verdict ACCEPT"),
        "{out}"
    );
    assert!(!out.contains("unknown protocol"), "{out}");
}

#[test]
fn long_runs_of_exact_destination_rules_are_skipped_to_the_same_path() {
    // 40 service rules, two naming the same VIP: the shortcut a walk that
    // lists only matches takes must find both, in order.
    let mut rules = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:SVC - [0:0]\n:MARK - [0:0]\n",
    );
    rules.push_str("-A PREROUTING -j SVC\n");
    for i in 0..40 {
        let port = if i == 31 { 80 } else { 443 };
        rules.push_str(&format!(
            "-A SVC -d 10.96.0.{}/32 -p tcp -m tcp --dport {port} -j {}\n",
            if i == 7 || i == 31 { 7 } else { i + 20 },
            if i == 7 {
                "MARK"
            } else {
                "DNAT --to-destination 10.244.0.2:80"
            }
        ));
    }
    rules.push_str("-A SVC -j MARK\nCOMMIT\n");
    let rs = parse_str(&rules, &ParseOptions::strict("t"))
        .unwrap()
        .ruleset;
    let tracer = Tracer::new(&rs);
    for (dst, dport) in [
        ("10.96.0.7", 80),
        ("10.96.0.7", 443),
        ("10.96.0.50", 443),
        ("10.96.0.99", 1),
    ] {
        let mut p = Packet::new(6, "10.244.1.7".parse().unwrap(), dst.parse().unwrap());
        p.dport = dport;
        p.in_iface = Some("eth0".into());
        let all = TraceOptions {
            local: vec!["192.168.1.10".parse().unwrap()],
            ..Default::default()
        };
        let only = TraceOptions {
            matched_only: true,
            ..all.clone()
        };
        let a = tracer.trace(&p, &all);
        let b = tracer.trace(&p, &only);
        assert_eq!(a.path(), b.path(), "{dst}:{dport}");
        assert_eq!(a.output, b.output);
    }
}

#[test]
fn mac_source_is_matched_from_the_given_mac() {
    let rules = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m mac --mac-source 02:00:5E:10:00:01 -j ACCEPT
COMMIT
";
    let base = [
        "-s",
        "192.0.2.9",
        "-d",
        "192.0.2.1",
        "--local",
        "192.0.2.1",
        "--in",
        "eth0",
    ];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        trace(rules, &a)
    };
    let (code, out, err) = run(&["--src-mac", "02:00:5e:10:00:01"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ACCEPT, delivered locally") || out.contains("verdict ACCEPT"),
        "{out}"
    );
    let (_, out, _) = run(&["--src-mac", "02:00:5e:10:00:02"]);
    assert!(out.contains("verdict DROP"), "{out}");
    let (_, out, _) = run(&[]);
    assert!(out.contains("source MAC is unknown"), "{out}");
    let (code, _, err) = run(&["--src-mac", "02:00:5e:10:00"]);
    assert_eq!(code, 2);
    assert!(err.contains("--src-mac: not a MAC address"), "{err}");
}
