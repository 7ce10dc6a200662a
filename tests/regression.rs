//! One test per reported bug, each named after what broke, with a comment
//! naming the report.

mod common;

use assert_cmd::Command;
use common::{assert_dot_accepts, graphviz_available};

const HEAD: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";

const PACKET: [&str; 10] = [
    "--proto", "tcp", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "80", "--in", "eth0",
];

fn iptviz() -> Command {
    Command::cargo_bin("iptviz").expect("the iptviz binary is built")
}

fn dump(body: &str) -> String {
    format!("{HEAD}:A - [0:0]\n:B - [0:0]\n{body}COMMIT\n")
}

/// Runs `iptviz ARGS` with `input` on stdin: (exit code, stdout, stderr).
fn run(args: &[&str], input: &str) -> (i32, String, String) {
    let out = iptviz()
        .args(args)
        .write_stdin(input.to_string())
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("iptviz runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn trace(input: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["trace", "-"];
    args.extend(PACKET);
    args.extend(extra);
    run(&args, input)
}

const LOOPS: [(&str, &str, &str); 3] = [
    ("self jump", "-A INPUT -j A\n-A A -j A\n", "A -> A"),
    ("self goto", "-A INPUT -j A\n-A A -g A\n", "A -> A"),
    (
        "A -> B -> A",
        "-A INPUT -j A\n-A A -j B\n-A B -j A\n",
        "A -> B -> A",
    ),
];

// Issue 14, finding 1: `check` called a jump loop clean, while the kernel
// refuses it (ELOOP).
#[test]
fn check_reports_a_jump_loop_as_an_error_at_the_jump_that_closes_it() {
    for (what, body, names) in LOOPS {
        let text = dump(body);
        let (code, _, err) = run(&["check", "-"], &text);
        assert_eq!(code, 1, "{what}: {err}");
        let last = text.lines().position(|l| l == body.lines().last().unwrap());
        let want = format!("<stdin>:{}:6: error: jump loop", last.unwrap() + 1);
        assert!(err.contains(&want), "{what}: want {want:?} in {err}");
        assert!(err.contains(names), "{what}: {err}");
    }
    // The same loop with goto from B back to A.
    let (code, _, err) = run(
        &["check", "-"],
        &dump("-A INPUT -j A\n-A A -j B\n-A B -g A\n"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("A -> B -> A"), "{err}");
}

// Issue 14, finding 1: `trace` ate all memory on any jump loop.
#[test]
fn trace_into_a_jump_loop_stops_and_names_the_loop() {
    for (what, body, names) in LOOPS {
        let (code, out, err) = trace(&dump(body), &[]);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(
            out.contains("stopped at a jump loop in table 'filter'") && out.contains(names),
            "{what}: {out}"
        );
        assert!(
            !out.contains("verdict"),
            "{what}: no verdict is made up: {out}"
        );
        // Drawn: the picture is written and the message goes to stderr.
        let (code, svg, err) = trace(&dump(body), &["-f", "svg"]);
        assert_eq!(code, 1, "{what}: {err}");
        assert!(svg.contains("</svg>"), "{what}");
        assert!(
            err.contains("jump loop") && err.contains(names),
            "{what}: {err}"
        );
    }
}

/// 61 chains, each jumping twice to the next: 2^61 - 2 rule evaluations.
fn doubling_walk(chains: usize) -> String {
    let mut text = String::from(HEAD);
    for i in 0..=chains {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    text.push_str("-A INPUT -j C0\n");
    for i in 0..chains {
        let n = i + 1;
        text.push_str(&format!("-A C{i} -j C{n}\n-A C{i} -j C{n}\n"));
    }
    text.push_str("COMMIT\n");
    text
}

// Issue 14, finding 2: a loop-free ruleset whose walk has 2^60 steps made
// `trace` count on until memory ran out.
#[test]
fn trace_of_a_walk_of_2_pow_60_steps_stops_at_its_budget_and_counts_the_kernel_walk() {
    let text = doubling_walk(60);
    let (code, _, err) = run(&["check", "-"], &text);
    assert_eq!(code, 0, "the kernel accepts it, and so does check: {err}");
    let (code, out, err) = trace(&text, &["--max-steps", "10000", "--matched-only"]);
    assert_eq!(code, 1, "{err}");
    // INPUT's jump, then 2 evaluations per chain entered, 2^61 - 2 in all.
    let kernel = (1u64 << 61) - 2 + 1;
    let want = format!(
        "stopped after 10000 rule evaluations in table 'filter' (the limit; --max-steps raises it): \
         the kernel would evaluate about {kernel} rules"
    );
    assert!(
        out.contains(&want),
        "want {want:?} in the tail of\n{}",
        tail(&out)
    );
    // What is kept is what is printed: 10,000 evaluations, each a line or two.
    let steps = out.lines().filter(|l| l.starts_with("  =>")).count();
    assert!((10_000..=20_001).contains(&steps), "{steps} steps printed");

    // The default budget (a million) stops it too, and JSON says so.
    let (code, out, _) = trace(&doubling_walk(30), &["--json", "--max-steps", "5000"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["stopped"]["kind"], "budget");
    assert_eq!(v["stopped"]["evaluated"], 5000);
    assert_eq!(
        v["stopped"]["kernel_evaluations"].as_u64(),
        Some((1u64 << 31) - 2 + 1)
    );
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Runs iptviz on a file under a memory limit and a timeout.
fn bounded(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("prlimit")
        .args(["--as=1073741824", "timeout", "60"])
        .arg(assert_cmd::cargo::cargo_bin("iptviz"))
        .args(args)
        .output()
        .expect("prlimit and timeout run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// Issue 14, finding 3: reading /dev/zero or /dev/urandom read until
// allocation failed (5.8 GB resident).
#[test]
fn reading_dev_zero_and_dev_urandom_ends_with_a_message_in_bounded_memory() {
    for dev in ["/dev/zero", "/dev/urandom"] {
        for cmd in ["check", "render", "conntrack"] {
            let (code, err) = bounded(&[cmd, dev]);
            assert_eq!(code, 2, "{cmd} {dev}: {err}");
            assert!(
                err.starts_with(&format!("iptviz: {dev}: this is binary data")),
                "{cmd} {dev}: {err}"
            );
        }
    }
    // An endless text stream ends at the size limit, which the message states.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "yes ' -A INPUT -j ACCEPT' | prlimit --as=1073741824 timeout 60 {} check - --max-input-size 50M",
            assert_cmd::cargo::cargo_bin("iptviz").display()
        ))
        .output()
        .expect("sh runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("<stdin>: the input is larger than 50 MiB (52428800 bytes), and does not end")
            && err.contains("--max-input-size"),
        "{err}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
    let dir = std::env::temp_dir().join(format!("iptviz-reg-size-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("big.rules");
    std::fs::write(&f, dump(&"-A INPUT -j ACCEPT\n".repeat(100))).unwrap();
    let f = f.to_str().unwrap();
    let (code, _, err) = run(&["check", f, "--max-input-size", "1K"], "");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than 1 KiB (1024 bytes)"), "{err}");
    let (code, _, _) = run(&["check", f, "--max-input-size", "1M"], "");
    assert_eq!(code, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

// Issue 14, finding 4: graphviz refused our DOT when a quoted string was
// longer than 16,384 characters.
#[test]
fn dot_strings_stay_within_graphviz_limits_and_svg_keeps_the_full_text() {
    let comment = "c".repeat(17_000);
    let ports: Vec<String> = (0..4_000).map(|p| (1_000 + p).to_string()).collect();
    let cases = [
        (
            "17,000-character comment",
            format!("-A INPUT -m comment --comment \"{comment}\" -j A\n"),
            comment.clone(),
        ),
        (
            "4,000-port multiport list",
            format!(
                "-A INPUT -p tcp -m multiport --dports {} -j A\n",
                ports.join(",")
            ),
            ports.join(","),
        ),
    ];
    for (what, body, long) in cases {
        let text = dump(&body);
        for extra in [&[][..], &["--rules", "--collapse", "none"][..]] {
            let mut args = vec!["render", "-", "-f", "dot"];
            args.extend(extra);
            // The kernel refuses both rules (a comment over 255 characters,
            // multiport over 15 ports), so `check` reports them and render
            // exits 1; the drawing is still made, and that is what is tested.
            let (code, dot, err) = run(&args, &text);
            assert!(code <= 1 && dot.starts_with("digraph"), "{what}: {err}");
            assert!(!dot.contains(&long), "{what}: cut in DOT");
            let longest = dot.split('"').map(str::len).max().unwrap_or(0);
            assert!(longest <= 16_384, "{what}: a string of {longest} bytes");
            if graphviz_available() {
                assert_dot_accepts(&dot, what);
            }
        }
        let (code, svg, _) = run(&["render", "-", "-f", "svg"], &text);
        assert!(code <= 1);
        assert!(svg.contains(&long), "{what}: SVG keeps the full text");
        let (_, json, _) = run(&["render", "-", "-f", "json"], &text);
        assert!(json.contains(&long), "{what}: JSON keeps the full text");
    }
}

// Issue 14, finding 5: a million chains that INPUT jumps to were drawn one
// by one (the layout grew faster than the input). Huge fan-outs are now
// grouped by default; `--collapse none` still draws every chain.
#[test]
fn a_huge_fan_out_is_drawn_as_one_group_by_default() {
    let n = 5_000;
    let mut text = String::from(HEAD);
    for i in 0..n {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    for i in 0..n {
        text.push_str(&format!("-A INPUT -j C{i}\n"));
    }
    text.push_str("COMMIT\n");
    let (code, json, err) = run(&["render", "-", "-f", "json"], &text);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let nodes = v["nodes"].as_array().expect("nodes");
    assert!(nodes.len() < 20, "{} nodes drawn", nodes.len());
    assert!(json.contains("5000 chains"), "the group counts its chains");
    let (code, json, _) = run(&["render", "-", "-f", "json", "--collapse", "none"], &text);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(v["nodes"].as_array().expect("nodes").len() > n);
}

// Issue 14, finding 5: an interrupted render left an empty `-o` file; an
// output file is now written beside its place and renamed into it.
#[test]
fn a_failed_render_leaves_no_output_file_and_no_temporary_file() {
    let dir = std::env::temp_dir().join(format!("iptviz-reg-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.svg");
    let o = out.to_str().unwrap();
    // A trace stopped by its budget still writes its picture whole.
    let (code, _, _) = trace(
        &doubling_walk(20),
        &["-f", "svg", "--max-steps", "100", "--output", o],
    );
    assert_eq!(code, 1);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.trim_end().ends_with("</svg>"));
    // A render that fails (unreadable input) leaves the old file alone.
    std::fs::write(&out, "old").unwrap();
    let (code, _, _) = run(&["render", "/dev/zero", "-o", o], "");
    assert_eq!(code, 2);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "old");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["out.svg"], "no temporary file is left");
    std::fs::remove_dir_all(&dir).unwrap();
}

// Issue 14, finding 6: write errors on `-o` did not name the file, and a
// directory given as input was "is a directory, not a file: is a
// directory, not a file".
#[test]
fn messages_name_the_file_and_say_things_once() {
    let text = dump("-A INPUT -j ACCEPT\n");
    let (code, _, err) = run(&["render", "-", "-o", "/dev/full"], &text);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot write /dev/full: No space left on device"),
        "{err}"
    );
    let dir = std::env::temp_dir();
    let d = dir.to_str().unwrap();
    let (code, _, err) = run(&["check", d], "");
    assert_eq!(code, 2);
    assert_eq!(
        err.trim_end(),
        format!("iptviz: {d}: is a directory, not a file")
    );
    assert_eq!(err.matches("directory").count(), 1, "{err}");
    let (code, _, err) = run(&["render", "-", "-o", d], &text);
    assert_eq!(code, 2);
    assert_eq!(err.matches("directory").count(), 1, "{err}");
    assert!(err.contains(&format!("cannot write {d}")), "{err}");
}

fn fan_out(n: usize) -> String {
    let mut text = String::from(HEAD);
    for i in 0..n {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    for i in 0..n {
        text.push_str(&format!("-A INPUT -j C{i}\n"));
    }
    text.push_str("COMMIT\n");
    text
}

// Issue 14, 10-minute campaign: `render --rules --collapse none` of a
// million chains ran past the 20 s limit laying out a million boxes (and
// wrote 400 MB of SVG). Views beyond the layout limit are refused with a
// message saying how to draw part of them; DOT is still written.
#[test]
fn render_of_more_boxes_than_the_layout_limit_is_refused_with_a_way_out() {
    let n = iptviz::render::MAX_LAID_OUT + 10;
    let text = fan_out(n);
    for format in ["svg", "json"] {
        let (code, out, err) = run(
            &["render", "-", "--rules", "--collapse", "none", "-f", format],
            &text,
        );
        assert_eq!(code, 2, "{format}: {err}");
        assert!(out.is_empty(), "{format}: nothing half-drawn");
        assert!(
            err.contains(&format!(
                "boxes, more than {} are not laid out",
                iptviz::render::MAX_LAID_OUT
            )) && err.contains("--collapse none")
                && err.contains("--chain"),
            "{format}: {err}"
        );
    }
    let (code, dot, err) = run(&["render", "-", "--collapse", "none", "-f", "dot"], &text);
    assert_eq!(code, 0, "{err}");
    assert!(dot.contains(&format!("C{}", n - 1)));
    // The default grouping draws the same dump at once.
    let (code, svg, err) = run(&["render", "-", "--rules"], &text);
    assert_eq!(code, 0, "{err}");
    assert!(svg.contains(&format!("{n} chains")));
}

// Issue 14, 10-minute campaign: `trace -f svg` through a fan-out of a
// million chains ran past 20 s: the one edge INPUT -> group, merged from
// every jump, was labelled with the number of every rule the packet took
// and its hover text held every one of them. Now a few are named and the
// rest counted.
#[test]
fn trace_drawing_through_a_huge_fan_out_names_a_few_taken_rules_and_counts_the_rest() {
    let n = 20_000;
    let (code, svg, err) = trace(&fan_out(n), &["-f", "svg"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        svg.contains(&format!("#1, #2, #3, #4, #5, #6, #7, #8, … {n} taken")),
        "{}",
        &svg[..svg.len().min(3000)]
    );
    assert!(svg.contains(&format!("packet took {} more of these rules", n - 8)));
    assert!(!svg.contains("#9,"), "the ninth rule is counted, not named");
    assert!(svg.len() < 2_000_000, "{} bytes of SVG", svg.len());
}
