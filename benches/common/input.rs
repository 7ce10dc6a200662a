//! The benchmarks' input: the kube-proxy corpus dump grown to cluster scale.
//!
//! `IPTVIZ_BENCH_RULES=FILE` names a dump; otherwise it is made on the fly
//! with `../shared/tools/kube-scale.py --services 10000` from the corpus
//! (about 113,000 rules, 16.7 MB).

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The dump's bytes and a name for it; exits with a message when there is
/// no way to get it.
pub fn kube_dump() -> (Vec<u8>, String) {
    if let Ok(p) = std::env::var("IPTVIZ_BENCH_RULES") {
        match std::fs::read(&p) {
            Ok(b) => return (b, p),
            Err(e) => {
                eprintln!("cannot read IPTVIZ_BENCH_RULES={p}: {e}");
                std::process::exit(2);
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("../shared/tools/kube-scale.py");
    let dump = root.join("../shared/corpus/iptables/k8s-calico-kubeproxy-iptables-mode.rules");
    let (Ok(stdin), true) = (std::fs::File::open(&dump), script.is_file()) else {
        eprintln!(
            "bench input missing: set IPTVIZ_BENCH_RULES=FILE, or put the shared corpus beside \
             the repository (../shared/tools/kube-scale.py and ../shared/corpus)"
        );
        std::process::exit(2);
    };
    let out = Command::new("python3")
        .arg(&script)
        .args(["--services", "10000"])
        .stdin(stdin)
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(o) if o.status.success() => (o.stdout, "kube-scale.py --services 10000".into()),
        _ => {
            eprintln!("python3 kube-scale.py failed; set IPTVIZ_BENCH_RULES=FILE instead");
            std::process::exit(2);
        }
    }
}
