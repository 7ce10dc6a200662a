//! `iptviz check` validating like iptables-restore: messages with a
//! caret and a hint, whole-ruleset errors, warnings and exit codes.

use assert_cmd::Command;
use predicates::prelude::*;

fn check(args: &[&str], input: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("iptviz")
        .unwrap()
        .arg("check")
        .args(args)
        .arg("-")
        .write_stdin(input.to_string())
        .assert()
}

#[test]
fn dport_without_a_protocol_is_an_error_with_a_caret_and_a_hint() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
    check(&[], text)
        .code(1)
        .stderr(predicate::str::contains(
            "<stdin>:3:13: error: -m tcp needs -p tcp before it; add -p tcp to the rule",
        ))
        .stderr(predicate::str::contains("\n                ^"));
    let text =
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m multiport --dports 1,2 -j ACCEPT\nCOMMIT\n";
    check(&[], text).code(1).stderr(predicate::str::contains(
        "-m multiport needs -p tcp, -p udp, -p udplite, -p sctp or -p dccp before it",
    ));
}

#[test]
fn values_iptables_refuses_are_errors() {
    for (rule, msg) in [
        ("-p tcp --dport 99999", "port 99999 is out of range"),
        (
            "-m string --algo wrong --string x",
            "'wrong' is not one of bm, kmp",
        ),
        ("-p tcp -m tcp --sport 4:3", "reversed"),
        ("-j NFQUEUE --queue-num 65536", "not a number in 0-65535"),
        ("-m conntrack", "at least one option is required"),
        ("-j LOG --log-level bad", "log level 'bad' unknown"),
    ] {
        let text = format!("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {rule}\nCOMMIT\n");
        check(&[], &text)
            .code(1)
            .stderr(predicate::str::contains(msg));
    }
}

#[test]
fn dnat_through_a_user_chain_reached_from_input_is_an_error() {
    let text = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:WEB - [0:0]\n\
                -A PREROUTING -j WEB\n-A INPUT -j WEB\n\
                -A WEB -p tcp -j DNAT --to-destination 10.0.0.1:80\nCOMMIT\n";
    check(&[], text).code(1).stderr(predicate::str::contains(
        "<stdin>:7:18: error: -j DNAT is not allowed in chain WEB, which is reached from INPUT (INPUT -> WEB)",
    ));
    // From PREROUTING only, it is fine.
    let ok = text.replace("-A INPUT -j WEB\n", "");
    check(&[], &ok).success();
}

#[test]
fn suspicious_rules_are_warnings_that_fail_only_with_deny_warnings() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n:OLD - [0:0]\n-A INPUT -j DROP\n\
                -A INPUT -p tcp -m state --state NEW -m conntrack --ctstate NEW -j ACCEPT\nCOMMIT\n";
    check(&[], text)
        .success()
        .stdout(predicate::str::contains("0 errors, 3 warnings (3 suspicious but legal)"))
        .stderr(predicate::str::contains(
            "<stdin>:3:1: warning: chain OLD in table 'filter' is never jumped to",
        ))
        .stderr(predicate::str::contains(
            "<stdin>:5:1: warning: never reached: the rule on line 4 (-j DROP) matches every packet before it",
        ))
        .stderr(predicate::str::contains("-m state and -m conntrack on one rule"));
    check(&["--deny-warnings"], text).code(1);
    let out = Command::cargo_bin("iptviz")
        .unwrap()
        .args(["check", "--json", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["errors"], 0);
    assert_eq!(v[0]["suspicious"].as_array().unwrap().len(), 3);
    assert_eq!(v[0]["suspicious"][0]["severity"], "warning");
}
