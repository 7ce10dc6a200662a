//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/corpus` beside the repository; panics with a clear message
/// when it is missing, so that no corpus test passes by reading nothing.
pub fn corpus_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(
        dir.is_dir(),
        "the shared corpus is missing: expected {} (it sits beside the repository)",
        dir.display()
    );
    dir
}

/// All files in a corpus subfolder with the given extension, sorted.
pub fn corpus_files(sub: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join(sub))
        .unwrap_or_else(|e| panic!("cannot list corpus/{sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no *.{ext} files in corpus/{sub}");
    v
}

/// Whether this process is root (kernel tests need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// For tests that need root and system tools: returns false (after saying
/// why) when they cannot run, and panics instead when CI demands them.
pub fn kernel_tests_can_run(tools: &[&str]) -> bool {
    let required = std::env::var("IPTVIZ_REQUIRE_KERNEL_TESTS").is_ok_and(|v| v == "1");
    let mut why = Vec::new();
    if !is_root() {
        why.push("not running as root".to_string());
    }
    for t in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
        if !found {
            why.push(format!("`{t}` is not installed"));
        }
    }
    if why.is_empty() {
        return true;
    }
    let msg = format!("kernel test cannot run: {}", why.join(", "));
    if required {
        panic!("{msg} (IPTVIZ_REQUIRE_KERNEL_TESTS=1)");
    }
    eprintln!("SKIPPED: {msg}; set up root + tools to run it");
    false
}

/// Whether graphviz `dot` can be run; panics when it is missing unless
/// IPTVIZ_SKIP_GRAPHVIZ is set.
pub fn graphviz_available() -> bool {
    match std::process::Command::new("dot").arg("-V").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            if std::env::var_os("IPTVIZ_SKIP_GRAPHVIZ").is_some() {
                eprintln!("graphviz `dot` not found; skipped because IPTVIZ_SKIP_GRAPHVIZ is set");
                false
            } else {
                panic!(
                    "graphviz `dot` is needed to check DOT output but was not found on PATH; \
                     install graphviz, or set IPTVIZ_SKIP_GRAPHVIZ=1 to skip this check"
                );
            }
        }
    }
}

/// Runs `dot -Tsvg` on `text`; panics with graphviz's message if it fails.
pub fn assert_dot_accepts(text: &str, what: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("timeout")
        .args(["120", "dot", "-Tsvg", "-o", "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dot runs");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(text.as_bytes())
        .expect("write to dot");
    let out = child.wait_with_output().expect("dot finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("syntax error"),
        "{what}: dot -Tsvg rejected our DOT: {stderr}"
    );
}

/// A network namespace made for one test, deleted when dropped.
pub struct Netns(pub String);

impl Netns {
    /// Creates `iptviz-TAG-PID`.
    pub fn new(tag: &str) -> Netns {
        let name = format!("iptviz-{tag}-{}", std::process::id());
        let st = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name} failed");
        Netns(name)
    }

    /// Runs `cmd args` in the namespace with `input` on stdin: (ok, stdout, stderr).
    pub fn run(&self, cmd: &str, args: &[&str], input: &[u8]) -> (bool, String, String) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, cmd])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}
