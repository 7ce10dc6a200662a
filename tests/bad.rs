//! Broken inputs in `tests/bad/`, each with the problems we expect for it
//! (`NAME.expected`: one `FILE:LINE:COL: severity: message` per line).
//! `UPDATE_GOLDEN=1 cargo test --test bad` rewrites the expectations.

use std::path::Path;

use iptviz::parse::{ParseError, ParseOptions, parse_bytes};

fn headers(name: &str, bytes: &[u8]) -> String {
    let parsed = parse_bytes(bytes, &ParseOptions::lenient(name)).unwrap();
    let mut out = String::new();
    for p in &parsed.problems {
        let r = p.render(name);
        out.push_str(r.lines().next().unwrap());
        out.push('\n');
    }
    out
}

#[test]
fn every_bad_input_gives_its_expected_problems() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "tests/bad holds only {} cases",
        files.len()
    );
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for f in files {
        let name = format!("bad/{}", f.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(&f).unwrap();
        let got = headers(&name, &bytes);
        assert!(!got.is_empty(), "{name}: no problem reported");
        let exp_path = f.with_extension("expected");
        if update {
            std::fs::write(&exp_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&exp_path).unwrap_or_else(|_| {
            panic!("{} missing (UPDATE_GOLDEN=1 makes it)", exp_path.display())
        });
        assert_eq!(got, expected, "{name}");
        // Strict mode refuses the same input, at the first error or after.
        let strict = parse_bytes(&bytes, &ParseOptions::strict(&name));
        match strict {
            Err(ParseError::Syntax { problem, .. }) => {
                assert!(expected.contains(&format!("{name}:{}:{}:", problem.line, problem.column)))
            }
            Ok(p) => assert!(p.error_count() > 0, "{name}: strict mode saw no error"),
            Err(e) => panic!("{name}: unexpected {e}"),
        }
    }
}

#[test]
fn rendered_problem_has_source_line_and_caret_under_the_column() {
    let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp 22 -j ACCEPT\nCOMMIT\n";
    let err = iptviz::parse_str(text, &ParseOptions::strict("f.rules")).unwrap_err();
    let msg = err.to_string();
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(
        lines[0],
        "f.rules:3:17: error: unexpected '22': expected an option such as -p, -s, -m or -j"
    );
    assert_eq!(lines[1], "    -A INPUT -p tcp 22 -j ACCEPT");
    assert_eq!(lines[2].find('^'), Some(4 + 16));
}

#[test]
fn binary_and_empty_input_are_refused_clearly() {
    let e = parse_bytes(
        b"\x7fELF\x02\x01\x01\0\0\0",
        &ParseOptions::lenient("a.out"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("binary data"), "{e}");
    let e = parse_bytes(b"  \n\n", &ParseOptions::lenient("empty")).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    // Invalid UTF-8 in a comment is a warning, the rest is read.
    let p = parse_bytes(
        b"*filter\n:INPUT ACCEPT\n-A INPUT -m comment --comment \"\xff\" -j ACCEPT\nCOMMIT\n",
        &ParseOptions::lenient("latin1"),
    )
    .unwrap();
    assert_eq!(p.ruleset.rule_count(), 1);
    assert!(p.problems[0].message.contains("UTF-8"));
}

#[test]
fn a_huge_line_is_reported_not_parsed() {
    let mut text = b"*filter\n:INPUT ACCEPT\n-A INPUT ".to_vec();
    text.extend(std::iter::repeat_n(b'x', 50 << 20));
    text.extend(b"\n-A INPUT -j ACCEPT\nCOMMIT\n");
    let p = parse_bytes(&text, &ParseOptions::lenient("huge")).unwrap();
    assert_eq!(p.ruleset.rule_count(), 1);
    assert_eq!(p.problems.len(), 1);
    assert_eq!(p.problems[0].line, 3);
    assert!(p.problems[0].message.contains("bytes long"));
    assert!(p.problems[0].source.is_empty());
}
