//! The kernel agrees: every corpus dump that `iptables-restore --test`
//! accepts in its original form is accepted again after we re-emit it.
//! Runs inside a network namespace the test creates and deletes.

mod common;

use std::process::{Command, Stdio};

use iptviz::model::Family;
use iptviz::parse::{ParseOptions, parse_bytes};

/// A network namespace that is deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("iptviz-{tag}-{}", std::process::id());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name} failed");
        Netns(name)
    }

    /// Runs `cmd args` in the namespace with `input` on stdin.
    fn run(&self, cmd: &str, args: &[&str], input: &[u8]) -> (bool, String) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, cmd])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn kernel_accepts_our_re_emitted_dumps() {
    if !common::kernel_tests_can_run(&["ip", "iptables-restore", "ip6tables-restore"]) {
        return;
    }
    let ns = Netns::new("restore");
    let (mut accepted, mut refused_original) = (0, Vec::new());
    let mut failures = Vec::new();
    for path in common::corpus_files("iptables", "rules") {
        let bytes = std::fs::read(&path).unwrap();
        let parsed = parse_bytes(&bytes, &ParseOptions::strict("x")).unwrap();
        let restore = match parsed.ruleset.family {
            Family::Ipv4 => "iptables-restore",
            Family::Ipv6 => "ip6tables-restore",
        };
        let (ok, err) = ns.run(restore, &["--test"], &bytes);
        if !ok {
            refused_original.push(format!(
                "{}: {}",
                path.file_name().unwrap().to_string_lossy(),
                err.lines().next().unwrap_or("")
            ));
            continue;
        }
        let ours = iptviz::save::to_save_text(&parsed.ruleset);
        let (ok, err) = ns.run(restore, &["--test"], ours.as_bytes());
        if ok {
            accepted += 1;
        } else {
            failures.push(format!("{}: {err}", path.display()));
        }
    }
    eprintln!(
        "kernel accepted {accepted} re-emitted dumps; {} originals it refuses itself:\n  {}",
        refused_original.len(),
        refused_original.join("\n  ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(accepted >= 10, "too few dumps were checked: {accepted}");
}
