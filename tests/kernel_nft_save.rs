//! `iptviz save` of every loadable nft corpus ruleset is accepted by the
//! real nft, and what the kernel then lists is what the corpus lists; a
//! mixed host saved with `--nft-out` loads again with iptables-restore and
//! nft. Runs in network namespaces made here.

mod common;

use std::path::{Path, PathBuf};

use iptviz::nft::normal::normalised;
use iptviz::nft::parse::parse_text;
use iptviz::parse::{ParseOptions, parse_str};

/// Corpus files that load with `nft -f` per SOURCES.tsv (the fixed copy
/// where one exists), with their `.listed.nft` twin.
fn loadable() -> Vec<(PathBuf, PathBuf)> {
    let dir = common::corpus_dir().join("nftables");
    let tsv = std::fs::read_to_string(dir.join("SOURCES.tsv")).expect("SOURCES.tsv");
    let mut out = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, loads) = (cols[0], cols.get(3).copied().unwrap_or(""));
        if !loads.starts_with("yes") {
            continue;
        }
        let stem = file.trim_end_matches(".nft");
        let fixed = dir.join(format!("{stem}.fixed.nft"));
        let src = if fixed.is_file() {
            fixed
        } else {
            dir.join(file)
        };
        out.push((src, dir.join(format!("{stem}.listed.nft"))));
    }
    assert!(out.len() >= 15, "only {} loadable rulesets", out.len());
    out
}

fn saved(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    let parsed = parse_str(&text, &ParseOptions::strict(p.display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    iptviz::save::to_save_text(&parsed.ruleset)
}

#[test]
fn saved_nft_text_loads_and_lists_back_the_same() {
    if !common::kernel_tests_can_run(&["nft", "ip"]) {
        return;
    }
    let ns = common::Netns::new("nftsave");
    // Interfaces the corpus rulesets bind to (see the corpus README).
    for args in [
        &["link", "add", "virbr0", "type", "bridge"][..],
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ],
        &[
            "link", "add", "eth2", "type", "veth", "peer", "name", "eth3",
        ],
    ] {
        let (ok, _, err) = ns.run("ip", args, b"");
        assert!(ok, "ip {args:?}: {err}");
    }
    let mut failures = Vec::new();
    for (src, listed) in loadable() {
        let ours = saved(&src);
        let (ok, _, err) = ns.run("nft", &["flush", "ruleset"], b"");
        assert!(ok, "flush: {err}");
        let (ok, _, err) = ns.run("nft", &["-f", "-"], ours.as_bytes());
        if !ok {
            failures.push(format!(
                "{}: nft -f refused our text:\n{err}",
                src.display()
            ));
            continue;
        }
        let (ok, out, err) = ns.run("nft", &["list", "ruleset"], b"");
        assert!(ok, "list: {err}");
        let (kernel, p1) = parse_text(&out);
        let (expected, p2) = parse_text(&std::fs::read_to_string(&listed).unwrap());
        assert!(p1.is_empty() && p2.is_empty(), "{p1:?} {p2:?}");
        if normalised(&kernel) != normalised(&expected) {
            failures.push(format!(
                "{}: the kernel lists something else after loading our text:\n{}",
                src.display(),
                similar::TextDiff::from_lines(&std::fs::read_to_string(&listed).unwrap(), &out)
                    .unified_diff()
                    .context_radius(2)
            ));
        }
    }
    let (ok, _, err) = ns.run("nft", &["flush", "ruleset"], b"");
    assert!(ok, "flush: {err}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `save` of the JSON form gives text nft accepts too, except where nft's
/// own JSON loses what the text had: `typeof` of maps (nat-maps), base
/// chain devices (prio-all-families), and the xt statements of
/// iptables-nft (docker-tailscale), which nft -f never loads.
#[test]
fn saved_json_input_is_accepted_by_nft_check() {
    if !common::kernel_tests_can_run(&["nft", "ip"]) {
        return;
    }
    let ns = common::Netns::new("nftsavej");
    for args in [
        &["link", "add", "virbr0", "type", "bridge"][..],
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ],
        &[
            "link", "add", "eth2", "type", "veth", "peer", "name", "eth3",
        ],
    ] {
        let (ok, _, err) = ns.run("ip", args, b"");
        assert!(ok, "ip {args:?}: {err}");
    }
    let lossy = [
        "nft-upstream-nat-maps.json",
        "nft-upstream-prio-all-families.json",
        "docker-tailscale-iptables-nft.json",
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for p in common::corpus_files("nftables", "json") {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let ours = saved(&p);
        let (ok, _, err) = ns.run("nft", &["-c", "-f", "-"], ours.as_bytes());
        if lossy.contains(&name.as_str()) {
            assert!(
                !ok,
                "{name}: expected nft to refuse (lossy JSON), but it accepted"
            );
            continue;
        }
        checked += 1;
        if !ok {
            failures.push(format!("{name}: {err}"));
        }
    }
    assert!(checked >= 14, "only {checked} checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `iptviz save --live --nft-out` on a mixed host (iptables-nft tables
/// beside a native nft table): iptables-restore and nft accept the two
/// files, and a namespace loaded from them saves to the same two files.
#[test]
fn saved_mixed_host_loads_again_with_iptables_restore_and_nft() {
    if !common::kernel_tests_can_run(&["nft", "ip", "iptables-restore", "iptables-save"]) {
        return;
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel/nft");
    let ipt = std::fs::read(here.join("mixed-iptables.rules")).unwrap();
    let nft = std::fs::read(here.join("mixed-native.nft")).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("iptviz");
    let bin = bin.to_str().expect("a UTF-8 path");
    let dir = std::env::temp_dir().join(format!("iptviz-nftmixed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().expect("a UTF-8 path").to_string();
    let save = |ns: &common::Netns, v4: &str, nft: &str| {
        let (ok, out, err) = ns.run(
            bin,
            &["save", "--live", "-o", &path(v4), "--nft-out", &path(nft)],
            b"",
        );
        assert!(ok, "iptviz save --live --nft-out: {out}{err}");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        (read(v4), read(nft))
    };

    let first = common::Netns::new("nftmixed");
    let (ok, _, err) = first.run("iptables-restore", &[], &ipt);
    assert!(ok, "iptables-restore: {err}");
    let (ok, _, err) = first.run("nft", &["-f", "-"], &nft);
    assert!(ok, "nft -f: {err}");
    let (v4, native) = save(&first, "a.v4", "a.nft");
    drop(first);
    assert!(
        v4.contains("*filter\n") && !v4.contains("table inet"),
        "{v4}"
    );
    assert!(native.contains("table inet native {") && !native.contains("COMMIT"));
    // The iptables-nft tables are in the nft listing too: written once.
    assert!(!native.contains("table ip filter"), "{native}");

    let second = common::Netns::new("nftmixed2");
    let (ok, _, err) = second.run("iptables-restore", &["--test", &path("a.v4")], b"");
    assert!(
        ok,
        "iptables-restore --test refused the iptables part: {err}\n{v4}"
    );
    let (ok, _, err) = second.run("nft", &["-c", "-f", &path("a.nft")], b"");
    assert!(ok, "nft -c -f refused the nft part: {err}\n{native}");
    let (ok, _, err) = second.run("iptables-restore", &[&path("a.v4")], b"");
    assert!(ok, "iptables-restore: {err}");
    let (ok, _, err) = second.run("nft", &["-f", &path("a.nft")], b"");
    assert!(ok, "nft -f: {err}");
    let again = save(&second, "b.v4", "b.nft");
    drop(second);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(again.0, v4, "the iptables part changed on the way round");
    assert_eq!(again.1, native, "the nft part changed on the way round");
}
