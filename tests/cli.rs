//! The `iptviz` command line as a user meets it: output, messages, exit codes.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").unwrap()
}

#[test]
fn check_a_clean_sample_exits_0_with_a_summary() {
    iptviz()
        .args(["check", "samples/docker-host.rules"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2 tables, 12 chains, 36 rules, with counters",
        ))
        .stdout(predicate::str::contains("no problems found"));
}

#[test]
fn check_reports_problems_with_file_line_column_and_exits_1() {
    iptviz()
        .args(["check", "tests/bad/undefined-jump.rules"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "tests/bad/undefined-jump.rules:3:17: error: jump to chain 'SSH_RULES'",
        ))
        .stderr(predicate::str::contains("                    ^"));
}

#[test]
fn unreadable_inputs_exit_2_with_a_clear_message() {
    iptviz()
        .args(["check", "no/such/file.rules"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/file.rules"));
    iptviz()
        .args(["check", "-"])
        .write_stdin(vec![0x7f, b'E', b'L', b'F', 0, 0, 1])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("binary data"));
    iptviz()
        .args(["check", "-"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty"));
}

#[test]
fn stdin_and_iptables_s_output_with_table_markers() {
    let text = std::fs::read_to_string("samples/docker-host.S.txt").unwrap();
    iptviz()
        .args(["check", "-"])
        .write_stdin(text)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "<stdin>: iptables -S text, IPv4, 2 tables",
        ));
}

#[test]
fn unmarked_iptables_s_tables_are_guessed_or_given() {
    let text = "-P PREROUTING ACCEPT\n-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-P POSTROUTING ACCEPT\n-N DOCKER\n-A PREROUTING -j DOCKER\n";
    iptviz()
        .args(["save", "-"])
        .write_stdin(text)
        .assert()
        .success()
        .stdout(predicate::str::contains("*nat\n:PREROUTING ACCEPT\n"));
    iptviz()
        .args(["check", "-"])
        .write_stdin(text)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("guessed 'nat'"));
    iptviz()
        .args(["check", "--table", "nat", "-"])
        .write_stdin(text)
        .assert()
        .success();
}

#[test]
fn save_round_trips_and_refuses_broken_input_unless_lenient() {
    let out = iptviz()
        .args(["save", "samples/router-nat.rules"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let again = iptviz()
        .args(["save", "-"])
        .write_stdin(out.stdout.clone())
        .output()
        .unwrap();
    assert_eq!(out.stdout, again.stdout);
    iptviz()
        .args(["save", "tests/bad/undefined-jump.rules"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("--lenient"));
    iptviz()
        .args(["save", "--lenient", "tests/bad/undefined-jump.rules"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("-A INPUT -p tcp -j SSH_RULES"));
}

#[test]
fn json_output_is_valid_and_typed() {
    let out = iptviz()
        .args(["save", "--json", "samples/kube-proxy.rules"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nat = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "nat")
        .unwrap();
    let svc = nat["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "KUBE-SVC-TCOU7JCQXEZGVUNU")
        .unwrap();
    let first = &svc["rules"][1];
    assert_eq!(first["matches"][1]["typed"]["kind"], "statistic");
    assert_eq!(first["matches"][1]["typed"]["probability"], 0.5);
    assert_eq!(first["target"]["kind"], "chain");
    let check: serde_json::Value = serde_json::from_slice(
        &iptviz()
            .args(["check", "--json", "tests/bad/truncated.rules"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(check[0]["errors"], 2);
}

#[test]
fn live_reads_the_rules_of_the_namespace_it_runs_in() {
    if !common::kernel_tests_can_run(&["ip", "iptables-restore", "iptables-save"]) {
        return;
    }
    let ns = format!("iptviz-live-{}", std::process::id());
    let run = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap()
    };
    assert!(run(&["netns", "add", &ns]).success());
    let restore = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "iptables-restore",
            "samples/src/router-nat.rules",
        ])
        .status()
        .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("iptviz");
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(&bin)
        .args(["check", "--live"])
        .output()
        .unwrap();
    run(&["netns", "del", &ns]);
    assert!(restore.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "live: iptables-save -c: iptables-save text, IPv4, 4 tables, 18 chains, 31 rules"
        ),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `save --live` on a host with IPv4 and IPv6 rules wrote both into one
/// output, which iptables-restore cannot read: with `--output6` each
/// family goes to a file of its own and loads again; without it the IPv6
/// rules follow as comments and stderr says how to write them apart.
#[test]
fn save_live_writes_ipv6_rules_apart_for_ip6tables_restore() {
    if !common::kernel_tests_can_run(&[
        "ip",
        "iptables-restore",
        "iptables-save",
        "ip6tables-restore",
        "ip6tables-save",
    ]) {
        return;
    }
    // Deleted when dropped, also when an assertion fails.
    let (ns, back) = (common::Netns::new("v6a"), common::Netns::new("v6b"));
    let restore = |n: &common::Netns, cmd: &str, file: &str| n.run(cmd, &[file], b"").0;
    let saved = |n: &common::Netns, cmd: &str| {
        // The rules alone, without the dated comment lines.
        n.run(cmd, &[], b"")
            .1
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let dir = std::env::temp_dir().join(format!("iptviz-save-v6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let v6_rules = dir.join("in6.rules");
    std::fs::write(
        &v6_rules,
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:ICMP6 - [0:0]\n\
         -A INPUT -s 2001:db8::/32 -p tcp -m tcp --dport 22 -j ACCEPT\n\
         -A INPUT -p ipv6-icmp -j ICMP6\n-A ICMP6 -j ACCEPT\nCOMMIT\n",
    )
    .unwrap();
    let (v4, v6) = (dir.join("out.v4"), dir.join("out.v6"));
    let bin = assert_cmd::cargo::cargo_bin("iptviz");
    let bin = bin.to_str().unwrap();
    let loaded = restore(&ns, "iptables-restore", "samples/src/router-nat.rules")
        && restore(&ns, "ip6tables-restore", v6_rules.to_str().unwrap());
    assert!(loaded, "the rules did not load in the namespace");
    let (apart_ok, _, apart_err) = ns.run(
        bin,
        &[
            "save",
            "--live",
            "-o",
            v4.to_str().unwrap(),
            "--output6",
            v6.to_str().unwrap(),
        ],
        b"",
    );
    assert!(apart_ok, "{apart_err}");
    let v4_text = std::fs::read_to_string(&v4).unwrap();
    assert!(!v4_text.contains("2001:db8"), "{v4_text}");
    let reloaded = restore(&back, "iptables-restore", v4.to_str().unwrap())
        && restore(&back, "ip6tables-restore", v6.to_str().unwrap());
    assert!(reloaded, "the written files did not load again");
    let want = (saved(&ns, "iptables-save"), saved(&ns, "ip6tables-save"));
    let got = (
        saved(&back, "iptables-save"),
        saved(&back, "ip6tables-save"),
    );
    assert_eq!(got, want);
    assert!(want.1.contains("-A ICMP6 -j ACCEPT"), "{}", want.1);
    let (_, stdout, stderr) = ns.run(bin, &["save", "--live"], b"");
    assert!(
        stdout.contains("\n# [0:0] -A INPUT -s 2001:db8::/32"),
        "{stdout}"
    );
    assert!(stderr.contains("use --output6 FILE"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_teaches_with_examples() {
    iptviz()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"))
        .stdout(predicate::str::contains("--live").or(predicate::str::contains("check")));
}

/// `check --help` printed its examples run together into one paragraph
/// (clap rewraps a doc comment's lines): every command's examples stand
/// one to a line, each starting with a command.
#[test]
fn help_examples_of_every_command_stay_on_lines_of_their_own() {
    let top = iptviz().arg("--help").output().unwrap();
    let top = String::from_utf8_lossy(&top.stdout).into_owned();
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(
        commands.len() > 10,
        "commands read from --help: {commands:?}"
    );
    let mut with_examples = 0;
    for c in &commands {
        let out = iptviz().args([c.as_str(), "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let Some(at) = help.find("Examples:") else {
            continue;
        };
        with_examples += 1;
        let after = &help[at + "Examples:".len()..];
        assert!(
            after.starts_with('\n'),
            "`iptviz {c} --help`: examples run on after the heading:\n{}",
            &after[..after.len().min(200)]
        );
        let first = after.lines().nth(1).unwrap_or("").trim_start();
        assert!(
            first.starts_with("iptviz") || first.starts_with("sudo") || first.contains("| iptviz"),
            "`iptviz {c} --help`: first example is not a command: {first:?}"
        );
    }
    assert!(
        with_examples >= 8,
        "only {with_examples} commands show examples"
    );
}

/// A mixed host in one file: iptables-save output, then `nft list
/// ruleset` output (the namespace rules of tests/kernel/nft).
fn mixed_host() -> (String, String, String) {
    let ipt = std::fs::read_to_string("tests/kernel/nft/mixed-iptables.rules").unwrap();
    let nft = std::fs::read_to_string("tests/kernel/nft/mixed-native.nft").unwrap();
    (format!("{ipt}{nft}"), ipt, nft)
}

#[test]
fn save_nft_out_writes_a_mixed_host_as_two_files_that_read_back_the_same() {
    use iptviz::nft::normal::normalised;
    use iptviz::parse::{ParseOptions, parse_str};
    let (mixed, ipt, nft) = mixed_host();
    let dir = std::env::temp_dir().join(format!("iptviz-nftout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (v4, nft_file) = (dir.join("host.v4"), dir.join("host.nft"));
    iptviz()
        .args(["save", "-", "-o"])
        .arg(&v4)
        .arg("--nft-out")
        .arg(&nft_file)
        .write_stdin(mixed)
        .assert()
        .success()
        .stdout("")
        .stderr("");
    let v4_text = std::fs::read_to_string(&v4).unwrap();
    let nft_text = std::fs::read_to_string(&nft_file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let strict = |name: &str, text: &str| parse_str(text, &ParseOptions::strict(name)).unwrap();

    // The iptables part: iptables text only, the same tables as the input's.
    let back = strict("host.v4", &v4_text).ruleset;
    assert!(
        back.nft.is_empty(),
        "nft tables in the iptables file:\n{v4_text}"
    );
    assert!(!v4_text.contains("table inet"), "{v4_text}");
    let names = |rs: &iptviz::model::Ruleset| -> Vec<String> {
        rs.tables.iter().map(|t| t.name.to_string()).collect()
    };
    let want = strict("ipt", &ipt).ruleset;
    assert_eq!(names(&back), names(&want));
    assert_eq!(back.rule_count(), 16);
    assert_eq!(
        iptviz::save::to_iptables_text(&back),
        iptviz::save::to_iptables_text(&want)
    );

    // The nft part: nft text only, the same nft model as the input's.
    assert!(nft_text.starts_with("#!/usr/sbin/nft -f\n"), "{nft_text}");
    assert!(!nft_text.contains("COMMIT") && !nft_text.contains("flush ruleset"));
    let back = strict("host.nft", &nft_text).ruleset;
    assert!(back.tables.is_empty());
    let want = strict("nft", &nft).ruleset;
    assert_eq!(back.nft.tables.len(), 1);
    assert_eq!(normalised(&back.nft), normalised(&want.nft));
}

#[test]
fn save_of_a_mixed_host_without_nft_out_says_how_to_write_it_apart() {
    let (mixed, _, _) = mixed_host();
    iptviz()
        .args(["save", "-"])
        .write_stdin(mixed.clone())
        .assert()
        .success()
        .stdout(predicate::str::contains("*filter\n"))
        .stdout(predicate::str::contains("# table inet native {\n"))
        .stderr(predicate::str::contains("use --nft-out FILE"));
    // iptables or nft alone: nothing to say.
    iptviz()
        .args(["save", "tests/kernel/nft/mixed-native.nft"])
        .assert()
        .success()
        .stderr("");
    iptviz()
        .args(["save", "--nft-out", "-", "-"])
        .write_stdin(mixed.clone())
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "-o and --nft-out would all write to standard output",
        ));
    iptviz()
        .args(["save", "--output6", "-", "--nft-out", "x.nft", "-"])
        .write_stdin(mixed.clone())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "-o and --output6 would all write to standard output",
        ));
    iptviz()
        .args([
            "save",
            "--output6",
            "x.nft",
            "--nft-out",
            "x.nft",
            "-o",
            "a",
            "-",
        ])
        .write_stdin(mixed.clone())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--nft-out and --output6 both name x.nft",
        ));
    iptviz()
        .args(["save", "--nft-out", "same.txt", "-o", "same.txt", "-"])
        .write_stdin(mixed.clone())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("both name same.txt"));
    iptviz()
        .args(["save", "--json", "--nft-out", "x.nft", "-"])
        .write_stdin(mixed)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--json"));
    iptviz()
        .args(["save", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "\n  sudo iptviz save --live -o host.v4 --output6 host.v6 --nft-out host.nft\n",
        ));
}

#[test]
fn nft_then_iptables_in_one_file_reads_as_the_same_mixed_host() {
    // `nft list ruleset; iptables-save > host.txt` put the nft part first;
    // it was read as nft alone and the iptables lines came out as nft errors.
    let (mixed, ipt, nft) = mixed_host();
    let reversed = format!("{nft}{ipt}");
    let dir = std::env::temp_dir().join(format!("iptviz-nftfirst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let save = |name: &str, input: &str| -> (String, String) {
        let (v4, nft_file) = (
            dir.join(format!("{name}.v4")),
            dir.join(format!("{name}.nft")),
        );
        iptviz()
            .args(["save", "-", "-o"])
            .arg(&v4)
            .arg("--nft-out")
            .arg(&nft_file)
            .write_stdin(input.to_string())
            .assert()
            .success()
            .stderr("");
        (
            std::fs::read_to_string(&v4).unwrap(),
            std::fs::read_to_string(&nft_file).unwrap(),
        )
    };
    let forward = save("forward", &mixed);
    let backward = save("backward", &reversed);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(backward.0.contains("*filter\n"), "{}", backward.0);
    assert!(backward.1.contains("table inet native"), "{}", backward.1);
    assert_eq!(forward, backward);
    // check reads it without problems either way.
    iptviz()
        .args(["check", "-"])
        .write_stdin(reversed)
        .assert()
        .success();
}
