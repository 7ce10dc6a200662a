//! Puts the commit being built into `iptviz --version`.
//!
//! From `git rev-parse` when the package directory is itself a git checkout
//! (or worktree); from `IPTVIZ_GIT_COMMIT` when that is set (packagers
//! building from a tarball can pass it); otherwise `unknown commit`, so a
//! tarball without `.git` still builds.

use std::path::Path;
use std::process::Command;

fn git(dir: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn from_git(dir: &str) -> Option<String> {
    // A .git of a parent directory belongs to some other project.
    if !Path::new(dir).join(".git").exists() {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    // Build again when HEAD moves: HEAD itself, the branch it names, and
    // packed refs.
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for w in watch {
        if let Some(p) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &w],
        ) && Path::new(&p).exists()
        {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    Some(format!("commit {commit}"))
}

fn main() {
    println!("cargo:rerun-if-env-changed=IPTVIZ_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let commit = std::env::var("IPTVIZ_GIT_COMMIT")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("commit {}", s.trim()))
        .or_else(|| from_git(&dir))
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=IPTVIZ_GIT_COMMIT={commit}");
}
