//! `iptables -L` pastes as people post them (headers, line numbers, several
//! tables, names, rounded counts), read into the model iptables-save text
//! gives; broken pastes give `FILE:LINE:COL` messages. Also the `-c P,B`
//! counter form. The kernel round trip is in `tests/kernel_listing.rs`.

use assert_cmd::Command;
use iptviz::model::{Family, InputFormat, TargetKind};
use iptviz::parse::{ParseOptions, Parsed, Severity, parse_str};
use predicates::prelude::*;

fn read(text: &str) -> Parsed {
    parse_str(text, &ParseOptions::lenient("paste")).expect("reads")
}

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").unwrap()
}

/// The rules of one table as iptviz saves them, without the header lines.
fn saved(p: &Parsed) -> Vec<String> {
    iptviz::save::to_save_text(&p.ruleset)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A help-forum post: the prompt, `-L -n -v --line-numbers` of filter, then
/// the nat table with its own command; counts rounded with K and M.
const FORUM_POST: &str = "\
root@vps:~# iptables -L -n -v --line-numbers
Chain INPUT (policy DROP 1234 packets, 98K bytes)
num   pkts bytes target     prot opt in     out     source               destination
1     5961K 5213M ACCEPT     all  --  lo     *       0.0.0.0/0            0.0.0.0/0
2      120  7200 ACCEPT     tcp  --  eth0   *       0.0.0.0/0            0.0.0.0/0            tcp dpt:22 state NEW
3       14   840 f2b-sshd   tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            multiport dports 22,2222
4        9   540            udp  --  *      *       0.0.0.0/0            192.168.1.10
5        0     0 DROP       all  --  !eth1  *       10.0.0.0/8           0.0.0.0/0            /* no  spoofing */

Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
num   pkts bytes target     prot opt in     out     source               destination

Chain f2b-sshd (1 references)
num   pkts bytes target     prot opt in     out     source               destination
1        3   180 REJECT     all  --  *      *       203.0.113.5          0.0.0.0/0            reject-with icmp-port-unreachable
2     1042 80316 RETURN     all  --  *      *       0.0.0.0/0            0.0.0.0/0

root@vps:~# iptables -t nat -L -n -v
Chain PREROUTING (policy ACCEPT 10 packets, 600 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 DNAT       tcp  --  eth0   *       0.0.0.0/0            0.0.0.0/0            tcp dpt:8080 to:10.0.0.2:80

Chain POSTROUTING (policy ACCEPT 10 packets, 600 bytes)
 pkts bytes target     prot opt in     out     source               destination
   33  2013 MASQUERADE  all  --  *      eth0    10.0.0.0/24          0.0.0.0/0
";

#[test]
fn a_forum_post_with_two_tables_is_rebuilt() {
    let p = read(FORUM_POST);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let rs = &p.ruleset;
    assert_eq!(rs.format, InputFormat::Listing);
    assert_eq!(rs.family, Family::Ipv4);
    let names: Vec<&str> = rs.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["filter", "nat"]);
    assert_eq!(
        saved(&p),
        [
            "*filter",
            ":INPUT DROP [1234:98000]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            ":f2b-sshd -",
            "[5961000:5213000000] -A INPUT -i lo -j ACCEPT",
            "[120:7200] -A INPUT -i eth0 -p tcp -m tcp --dport 22 -m state --state NEW -j ACCEPT",
            "[14:840] -A INPUT -p tcp -m multiport --dports 22,2222 -j f2b-sshd",
            "[9:540] -A INPUT -d 192.168.1.10/32 -p udp",
            "[0:0] -A INPUT -s 10.0.0.0/8 ! -i eth1 -m comment --comment \"no  spoofing\" -j DROP",
            "[3:180] -A f2b-sshd -s 203.0.113.5/32 -j REJECT --reject-with icmp-port-unreachable",
            "[1042:80316] -A f2b-sshd -j RETURN",
            "COMMIT",
            "*nat",
            ":PREROUTING ACCEPT [10:600]",
            ":POSTROUTING ACCEPT [10:600]",
            "[0:0] -A PREROUTING -i eth0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80",
            "[33:2013] -A POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE",
            "COMMIT",
        ]
    );
    let input = rs.table("filter").unwrap().chain("INPUT").unwrap();
    // The jump resolves to the user chain; each rule keeps the pasted line.
    assert_eq!(input.rules[2].target().unwrap().kind, TargetKind::Chain);
    assert_eq!(input.rules[2].line, 6);
    assert!(input.rules[2].text.contains("multiport dports 22,2222"));
    assert!(
        rs.notes.iter().any(|n| n.contains("rounded")),
        "rounded counts are said: {:?}",
        rs.notes
    );
}

/// `iptables -L` with neither -n nor -v: names, no interfaces, no counts.
const NAMES_POST: &str = "\
Chain INPUT (policy ACCEPT)
target     prot opt source               destination
ACCEPT     tcp  --  anywhere             anywhere             tcp dpt:ssh
ACCEPT     all  --  gw.example.org       anywhere
ACCEPT     icmp --  anywhere             anywhere             icmp echo-request
LOG        all  --  anywhere             anywhere             LOG level warning prefix \"in: \"
";

#[test]
fn names_are_kept_and_what_is_missing_is_said_once() {
    let p = read(NAMES_POST);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        &saved(&p)[2..6],
        [
            "-A INPUT -p tcp -m tcp --dport ssh -j ACCEPT",
            "-A INPUT -s gw.example.org -j ACCEPT",
            "-A INPUT -p icmp -m icmp --icmp-type echo-request -j ACCEPT",
            "-A INPUT -j LOG --log-prefix \"in: \"",
        ]
    );
    let notes = &p.ruleset.notes;
    let names = notes
        .iter()
        .find(|n| n.contains("names"))
        .expect("a note on names");
    for n in ["ssh", "gw.example.org", "echo-request"] {
        assert!(names.contains(n), "{names}");
    }
    assert!(
        notes.iter().any(|n| n.contains("no interfaces")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("no packet and byte counts")),
        "{notes:?}"
    );
    assert_eq!(notes.iter().filter(|n| n.contains("interfaces")).count(), 1);
}

#[test]
fn tables_without_command_lines_are_told_apart_by_their_chains() {
    let text = "\
Chain INPUT (policy ACCEPT)
target     prot opt source               destination
DROP       all  --  10.0.0.0/8           0.0.0.0/0

Chain FORWARD (policy ACCEPT)
target     prot opt source               destination

Chain OUTPUT (policy ACCEPT)
target     prot opt source               destination

Chain PREROUTING (policy ACCEPT)
target     prot opt source               destination
DNAT       6    --  0.0.0.0/0            0.0.0.0/0            tcp dpt:80 to:10.0.0.2

Chain INPUT (policy ACCEPT)
target     prot opt source               destination

Chain OUTPUT (policy ACCEPT)
target     prot opt source               destination

Chain POSTROUTING (policy ACCEPT)
target     prot opt source               destination
";
    let p = read(text);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    let names: Vec<&str> = p.ruleset.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["filter", "nat"]);
    let nat = p.ruleset.table("nat").unwrap();
    assert!(nat.chain("PREROUTING").unwrap().builtin);
    assert!(
        p.ruleset
            .notes
            .iter()
            .any(|n| n.contains("guessed") && n.contains("nat (line 11)")),
        "{:?}",
        p.ruleset.notes
    );
}

#[test]
fn ip6tables_legacy_output_without_an_opt_column_is_read() {
    let text = "\
# ip6tables -L -n
Chain INPUT (policy DROP)
target     prot opt source               destination
ACCEPT     all      ::/0                 ::/0                 state RELATED,ESTABLISHED
ACCEPT     ipv6-icmp    ::/0                 ::/0                 ipv6-icmptype 135
           tcp      2001:db8::/32        ::/0                 tcp dpt:22
ACCEPT     tcp      2001:db8::1          ::/0                 tcp dpt:22
";
    let p = read(text);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(p.ruleset.family, Family::Ipv6);
    assert_eq!(
        &saved(&p)[2..6],
        [
            "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT",
            "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT",
            "-A INPUT -s 2001:db8::/32 -p tcp -m tcp --dport 22",
            "-A INPUT -s 2001:db8::1/128 -p tcp -m tcp --dport 22 -j ACCEPT",
        ]
    );
}

#[test]
fn goto_negations_and_targets_with_options_are_rebuilt() {
    let text = "\
# iptables -t raw -L -n
Chain PREROUTING (policy ACCEPT)
target     prot opt source               destination
MARK       0    --  0.0.0.0/0            0.0.0.0/0            mark match ! 0x1/0xff MARK and 0xffffff00
X          0    -f  0.0.0.0/0           !10.0.0.0/8           [goto]  ! ctstate INVALID
CT         17   --  0.0.0.0/0            0.0.0.0/0            udp dpt:!53 NOTRACK
ACCEPT    !6    --  0.0.0.0/0            0.0.0.0/0            limit: avg 3/min burst 5 PKTTYPE != multicast

Chain X (1 references)
target     prot opt source               destination
";
    let p = read(text);
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        &saved(&p)[3..7],
        [
            "-A PREROUTING -m mark ! --mark 0x1/0xff -j MARK --set-xmark 0x0/0xff",
            "-A PREROUTING ! -d 10.0.0.0/8 -f -m conntrack ! --ctstate INVALID -g X",
            "-A PREROUTING -p udp -m udp ! --dport 53 -j NOTRACK",
            "-A PREROUTING ! -p tcp -m limit --limit 3/min -m pkttype ! --pkt-type multicast -j ACCEPT",
        ]
    );
}

#[test]
fn text_no_form_explains_is_kept_as_an_assumed_match_and_reported() {
    let text = "\
Chain INPUT (policy ACCEPT)
target     prot opt source               destination
ACCEPT     6    --  0.0.0.0/0            0.0.0.0/0            tcp dpt:22 frobnicate level 9 ctstate NEW
";
    let p = read(text);
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    let w = &p.problems[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!((w.line, w.column), (3, 74));
    assert!(w.message.contains("'frobnicate level 9'"), "{}", w.message);
    let r = &p.ruleset.tables[0].chains[0].rules[0];
    let modules: Vec<&str> = r.matches().map(|m| m.module).collect();
    assert_eq!(modules, ["tcp", "unmapped", "conntrack"]);
    // Shown on the graph: the edge label carries the text.
    let label = iptviz::graph::rule_summary(r);
    assert!(label.contains("frobnicate"), "{label}");
}

#[test]
fn cut_and_garbage_lines_give_file_line_column_messages() {
    let text = "\
Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 ACCEPT     tcp  --  eth0
   1x     0 ACCEPT     tcp  --  eth0   *       0.0.0.0/0            0.0.0.0/0
this is not iptables output
    5   300 DROP       all  --  *      *       0.0.0.0/0            0.0.0.0/0
";
    let p = read(text);
    let got: Vec<(u32, u32, Severity)> = p
        .problems
        .iter()
        .map(|x| (x.line, x.column, x.severity))
        .collect();
    assert_eq!(
        got,
        [
            (3, 37, Severity::Error),
            (4, 4, Severity::Error),
            (5, 1, Severity::Error)
        ],
        "{:?}",
        p.problems
    );
    assert!(
        p.problems[0].message.contains("cut short"),
        "{}",
        p.problems[0].message
    );
    assert!(
        p.problems[1].message.contains("'1x'"),
        "{}",
        p.problems[1].message
    );
    // The good line is kept.
    assert_eq!(p.ruleset.tables[0].chains[0].rules.len(), 1);
    let shown = p.problems[1].render("paste.txt");
    assert!(
        shown.starts_with("paste.txt:4:4: error: expected a packet count, found '1x'"),
        "{shown}"
    );
    assert!(shown.ends_with("\n       ^"), "{shown:?}");
}

#[test]
fn check_reads_a_listing_from_stdin_and_prints_its_notes() {
    iptviz()
        .args(["check", "-"])
        .write_stdin(NAMES_POST)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "<stdin>: iptables -L text, IPv4, 1 tables, 1 chains, 4 rules",
        ))
        .stdout(predicate::str::contains(
            "  note: iptables -L without -v prints no interfaces",
        ));
}

#[test]
fn check_strict_stops_at_a_broken_listing_line() {
    iptviz()
        .args(["save", "-"])
        .write_stdin("Chain INPUT (policy ACCEPT)\ntarget     prot opt source               destination\nACCEPT     tcp\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "<stdin>:3:15: error: this rule line is cut short: expected a source and a destination",
        ));
}

/// Issue 10: `-c 2,3` in a rule, as iptables-restore takes it, was refused.
#[test]
fn check_accepts_counters_written_with_a_comma() {
    let dir = std::env::temp_dir().join(format!("iptviz-c23-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("c.rules");
    std::fs::write(
        &f,
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -c 2,3 -s 10.0.0.0/8 -j ACCEPT\n-A INPUT --set-counters 5,6 -p tcp --dport 22 -j DROP\nCOMMIT\n",
    )
    .unwrap();
    iptviz()
        .args(["check", f.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains("no problems found"));
    iptviz()
        .args(["save", f.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "[2:3] -A INPUT -s 10.0.0.0/8 -j ACCEPT\n",
        ))
        .stdout(predicate::str::contains(
            "[5:6] -A INPUT -p tcp --dport 22 -j DROP\n",
        ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tracer_reports_unmapped_text_as_an_assumption() {
    let text = "\
# iptables -L -n -v
Chain INPUT (policy DROP 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 ACCEPT     6    --  eth0   *       0.0.0.0/0            0.0.0.0/0            tcp dpt:22 frobnicate 7
";
    iptviz()
        .args([
            "trace", "-", "--proto", "tcp", "--src", "1.2.3.4", "--dst", "10.0.0.1",
        ])
        .args(["--dport", "22", "--local", "10.0.0.1", "--in", "eth0"])
        .write_stdin(text)
        .assert()
        .stdout(predicate::str::contains(
            "-m unmapped --text \"frobnicate 7\" -j ACCEPT",
        ))
        .stdout(predicate::str::contains(
            "assumption: -m unmapped assumed to match",
        ))
        .stdout(predicate::str::contains("verdict ACCEPT"));
}

mod damaged {
    use super::*;
    use proptest::prelude::*;

    /// Words a listing is made of, to splice into it.
    const PIECES: &[&str] = &[
        " ",
        "  ",
        "\n",
        "!",
        "/*",
        "*/",
        "\"",
        "Chain ",
        "(policy ",
        "ACCEPT",
        "--",
        "-f",
        "0.0.0.0/0",
        "tcp",
        "dpt:",
        "flags:0x",
        "/",
        "K",
        "[goto]",
        "limit: avg",
        "é",
        "\t",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Cut, spliced or garbled pastes never panic, and every problem
        /// points at a line of the input.
        #[test]
        fn damaged_pastes_never_panic(
            edits in proptest::collection::vec((0usize..4000, 0usize..PIECES.len(), 0usize..30), 1..12)
        ) {
            let mut text = FORUM_POST.to_string();
            for (at, piece, cut) in edits {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + cut).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, PIECES[piece]);
            }
            let lines = text.split('\n').count() as u32;
            if let Ok(p) = parse_str(&text, &ParseOptions::lenient("fuzz")) {
                for pr in &p.problems {
                    prop_assert!(pr.line >= 1 && pr.line <= lines, "{pr:?}");
                    let _ = pr.render("fuzz");
                }
                let _ = iptviz::save::to_save_text(&p.ruleset);
            }
        }
    }
}
