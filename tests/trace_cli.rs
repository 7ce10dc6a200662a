//! `iptviz trace` from the command line.

use assert_cmd::Command;

const RULES: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 198.51.100.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d 10.0.0.5/32 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
";

#[test]
fn text_output_shows_steps_verdict_and_nat() {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args([
            "trace",
            "-",
            "--proto",
            "tcp",
            "--src",
            "203.0.113.9",
            "--dst",
            "198.51.100.1",
            "--dport",
            "8080",
            "--in",
            "eth0",
            "--out",
            "eth1",
            "--local",
            "198.51.100.1",
        ])
        .write_stdin(RULES)
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("DNAT: dst 10.0.0.5:80"), "{text}");
    assert!(text.contains("verdict ACCEPT: forwarded"), "{text}");
    assert!(
        text.contains("leaves  tcp 203.0.113.9:40000 -> 10.0.0.5:80"),
        "{text}"
    );
}

#[test]
fn json_output_lists_steps() {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args([
            "trace",
            "-",
            "-p",
            "udp",
            "-s",
            "203.0.113.9",
            "-d",
            "198.51.100.1",
            "--dport",
            "53",
            "--local",
            "198.51.100.1",
            "--json",
        ])
        .write_stdin(RULES)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["verdict"], "DROP");
    assert_eq!(v["route"], "local");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["action"], "policy DROP");
}

#[test]
fn bad_packet_description_is_an_error() {
    Command::cargo_bin("iptviz")
        .unwrap()
        .args(["trace", "-", "-s", "1.2.3.4", "-d", "::1"])
        .write_stdin(RULES)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("same address family"));
}

fn trace_text(dport: &str, extra: &[&str]) -> (bool, String, String) {
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args([
            "trace",
            "-",
            "--proto",
            "tcp",
            "--src",
            "203.0.113.9",
            "--dst",
            "198.51.100.1",
            "--dport",
            dport,
            "--in",
            "eth0",
            "--out",
            "eth1",
            "--local",
            "198.51.100.1",
        ])
        .args(extra)
        .write_stdin(RULES)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A later packet of a DNAT'd connection skips the nat table but is still
/// sent to the backend; the reply comes back from the backend and leaves
/// with the address the client asked for.
#[test]
fn established_and_reply_follow_the_connection() {
    let (ok, text, err) = trace_text("8080", &["--established"]);
    assert!(ok, "{err}");
    assert!(!text.contains("PREROUTING / nat"), "{text}");
    assert!(text.contains("ESTABLISHED"), "{text}");
    assert!(
        text.contains("leaves  tcp 203.0.113.9:40000 -> 10.0.0.5:80"),
        "{text}"
    );
    assert!(
        text.contains("replies come from 10.0.0.5:80 to 203.0.113.9:40000"),
        "{text}"
    );

    let (ok, text, err) = trace_text("8080", &["--reply"]);
    assert!(ok, "{err}");
    assert!(
        text.contains("packet  tcp 10.0.0.5:80 -> 203.0.113.9:40000 in eth1 out eth0"),
        "{text}"
    );
    // FORWARD only lets the way in through: the reply is dropped there.
    assert!(text.contains("verdict DROP in FORWARD"), "{text}");

    // No connection when the first packet does not get through.
    let (ok, _, err) = trace_text("9999", &["--reply"]);
    assert!(!ok);
    assert!(err.contains("no connection to follow"), "{err}");
}
