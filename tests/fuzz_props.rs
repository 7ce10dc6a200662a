//! Property tests: no input makes the parser panic, and every problem
//! points inside the input.

mod common;

use iptviz::parse::{ParseOptions, parse_bytes};
use proptest::prelude::*;

fn corpus_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for p in common::corpus_files("iptables", "rules") {
        let text = String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
        lines.extend(text.lines().take(400).map(str::to_string));
    }
    lines
}

fn check_points_inside(input: &[u8], lenient: bool) {
    let opts = if lenient {
        ParseOptions::lenient("prop")
    } else {
        ParseOptions::strict("prop")
    };
    let text = String::from_utf8_lossy(input);
    let lines: Vec<&str> = text.split('\n').collect();
    let problems = match parse_bytes(input, &opts) {
        Ok(p) => p.problems,
        Err(iptviz::ParseError::Syntax { problem, .. }) => vec![*problem],
        Err(_) => return,
    };
    for p in problems {
        assert!(p.line >= 1 && (p.line as usize) <= lines.len(), "{p:?}");
        let width = lines[p.line as usize - 1].trim_end().chars().count() as u32;
        assert!(
            p.column >= 1 && p.column <= width + 1,
            "{p:?} width {width}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_points_inside(&bytes, true);
        check_points_inside(&bytes, false);
    }

    #[test]
    fn random_rule_words_never_panic(words in proptest::collection::vec(
        prop_oneof![
            Just("-A".to_string()), Just("INPUT".to_string()), Just("!".to_string()),
            Just("-m".to_string()), Just("-j".to_string()), Just("-g".to_string()),
            Just("\"".to_string()), Just("\\".to_string()), Just("[1:2]".to_string()),
            Just("*filter".to_string()), Just(":X -".to_string()), Just("COMMIT\n".to_string()),
            "[-a-z0-9:/.,\"!]{0,12}",
        ], 0..30)) {
        let text = words.join(" ");
        check_points_inside(text.as_bytes(), true);
        check_points_inside(format!("*filter\n:INPUT ACCEPT\n-A INPUT {text}\nCOMMIT\n").as_bytes(), true);
    }

    #[test]
    fn mutated_corpus_lines_never_panic(seed in 0usize..100_000, cut in 0usize..200,
                                        insert in "[ !\"\\\\a-]{0,3}") {
        let lines = corpus_lines();
        let line = &lines[seed % lines.len()];
        let mut chars: Vec<char> = line.chars().collect();
        let at = cut.min(chars.len());
        chars.truncate(at + (seed % 7));
        let mutated: String = chars.into_iter().collect::<String>() + &insert;
        let text = format!("*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n{mutated}\nCOMMIT\n");
        check_points_inside(text.as_bytes(), true);
        check_points_inside(text.as_bytes(), false);
        check_points_inside(mutated.as_bytes(), true);
    }
}
