//! What a packaged command line tool installs beside its binary: shell
//! completions, man pages, and a version that names the commit.

use assert_cmd::Command;

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").unwrap()
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let out = iptviz().arg("--version").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let re =
        regex::Regex::new(r"^iptviz \d+\.\d+\.\d+ \((commit [0-9a-f]{12}|unknown commit)\)\n$")
            .unwrap();
    assert!(re.is_match(&text), "{text:?}");
    // This test runs from a git checkout, so the commit is known.
    if std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.git")).exists() {
        assert!(text.contains("(commit "), "{text:?}");
    }
}

#[test]
fn completions_for_every_shell_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = iptviz().args(["completions", shell]).assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        for sub in ["diff", "fleet", "trace", "ignore-endpoints"] {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    iptviz()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("possible values"));
}

#[test]
fn manpages_one_per_subcommand() {
    let dir = std::env::temp_dir().join(format!("iptviz-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    iptviz().arg("manpages").arg(&dir).assert().success();
    for page in [
        "iptviz",
        "iptviz-check",
        "iptviz-save",
        "iptviz-render",
        "iptviz-trace",
        "iptviz-conntrack",
        "iptviz-diff",
        "iptviz-fleet",
        "iptviz-completions",
        "iptviz-manpages",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(
            text.starts_with(".ie \\n(.g") || text.contains(".TH"),
            "{page}: {text:.200}"
        );
        assert!(text.contains(&format!(".TH {page}")), "{page}: {text:.300}");
    }
    let diff = std::fs::read_to_string(dir.join("iptviz-diff.1")).unwrap();
    assert!(
        diff.contains("counters"),
        "the diff page documents its options"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
