//! `iptviz render` from the outside: output, errors, exit codes.

use assert_cmd::Command;
use predicates::prelude::*;

const RULES: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:SSH - [0:0]\n\
    -A INPUT -p tcp -m tcp --dport 22 -j SSH\n-A SSH -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n";

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").expect("binary built")
}

#[test]
fn svg_from_stdin() {
    iptviz()
        .args(["render", "-"])
        .write_stdin(RULES)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("<?xml"))
        .stdout(predicate::str::contains("tcp dpt:22"))
        .stdout(predicate::str::contains("class=\"legend\""));
}

#[test]
fn dot_and_json() {
    iptviz()
        .args(["render", "-", "-f", "dot"])
        .write_stdin(RULES)
        .assert()
        .success()
        .stdout(predicate::str::starts_with("digraph iptviz {"));
    iptviz()
        .args(["render", "-", "-f", "json", "--layout", "layered"])
        .write_stdin(RULES)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"engine\": \"layered\""));
}

#[test]
fn flow_view() {
    iptviz()
        .args(["render", "-", "--flow"])
        .write_stdin(RULES)
        .assert()
        .success()
        // The INPUT hook's frame, and the routing decision's first line.
        .stdout(predicate::str::contains(">INPUT</text></g>"))
        .stdout(predicate::str::contains(">routing</text>"));
    // The hook picture whatever engine is asked for.
    iptviz()
        .args(["render", "-", "--flow", "-f", "json", "--layout", "layered"])
        .write_stdin(RULES)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"engine\": \"flow\""))
        .stdout(predicate::str::contains("\"label\": \"FORWARD\""));
}

#[test]
fn from_unknown_chain_is_an_error() {
    iptviz()
        .args(["render", "-", "--from", "NOPE"])
        .write_stdin(RULES)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("NOPE"));
}

#[test]
fn table_and_depth_filters() {
    iptviz()
        .args([
            "render", "-", "-f", "dot", "-t", "filter", "--from", "INPUT", "--depth", "1",
        ])
        .write_stdin(RULES)
        .assert()
        .success()
        .stdout(predicate::str::contains("SSH"));
}

#[test]
fn empty_selection_still_draws() {
    for layout in ["auto", "layout-rs", "layered"] {
        iptviz()
            .args(["render", "-", "--chain", "^NOMATCH$", "--layout", layout])
            .write_stdin(RULES)
            .assert()
            .success()
            .stdout(predicate::str::contains("nothing to show"));
    }
}

#[test]
fn missing_file_exits_2() {
    iptviz()
        .args(["render", "/nonexistent/rules"])
        .assert()
        .code(2);
}

#[test]
fn output_file() {
    let dir = std::env::temp_dir().join(format!("iptviz-render-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.svg");
    iptviz()
        .args(["render", "-", "-o"])
        .arg(&out)
        .write_stdin(RULES)
        .assert()
        .success()
        .stdout("");
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.ends_with("</svg>\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A dump with thousands of bad lines (an anonymised one, say) used to print
/// every problem before the drawing's own messages; commands other than
/// `check` now print the first 20 and count the rest.
#[test]
fn render_of_a_dump_with_many_bad_lines_does_not_print_every_problem() {
    let mut text =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for n in 0..35 {
        text.push_str(&format!(
            "-A INPUT -s 10.0.0.{n}/32 -m mac --mac-source XX:XX:XX:XX:XX:XX -j ACCEPT\n"
        ));
    }
    text.push_str("COMMIT\n");
    let stderr_of = |args: &[&str]| {
        let out = iptviz()
            .args(args)
            .write_stdin(text.clone())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?} exits 1 on errors");
        String::from_utf8(out.stderr).unwrap()
    };
    let render = stderr_of(&["render", "-", "-o", "/dev/null"]);
    assert_eq!(
        render.matches("error: -m mac --mac-source").count(),
        20,
        "{render}"
    );
    assert!(
        render.contains("<stdin>: 15 more errors not shown; `iptviz check FILE` lists them all"),
        "{render}"
    );
    let lint = stderr_of(&["lint", "-"]);
    assert_eq!(
        lint.matches("error: -m mac --mac-source").count(),
        20,
        "{lint}"
    );
    let check = stderr_of(&["check", "-"]);
    assert_eq!(
        check.matches("is not a MAC address").count(),
        35,
        "check lists all: {check}"
    );
    assert!(!check.contains("not shown"), "{check}");
}
