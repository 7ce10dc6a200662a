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
