//! Hostile input fed to the desktop app through paste and file open, as
//! the command line gets it (issue 14): a jump loop, a walk of 2^61 rule
//! evaluations, binary data, a million chains one chain jumps to. The app
//! loads, lays out and traces in the background, so no frame of the UI
//! thread may take a second (each `step` is timed), and nothing may crash.

mod common;
use common::app_harness;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz_gui::{IptvizApp, Options, settings::Settings};

const HEAD: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n";

/// The app as a person runs it: loading and layout on worker threads.
fn harness(opts: Options) -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            sync: false,
            ..opts
        },
    );
    app_harness(app, 1280.0, 800.0)
}

/// One frame, which must take less than a second.
fn frame(h: &mut Harness<'static, IptvizApp>, what: &str) {
    let t = Instant::now();
    h.step();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "{what}: a frame of the UI thread took {took:?}"
    );
}

/// Frames until nothing runs in the background any more.
fn settle(h: &mut Harness<'static, IptvizApp>, what: &str) {
    let start = Instant::now();
    loop {
        frame(h, what);
        let idle = {
            let app = h.state();
            !app.busy() && !app.state.laying_out()
        };
        if idle {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{what}: still busy after ten minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        frame(h, what);
    }
}

fn paste(h: &mut Harness<'static, IptvizApp>, text: String, what: &str) {
    h.event(egui::Event::Paste(text));
    frame(h, what);
    settle(h, what);
}

fn type_into(h: &mut Harness<'static, IptvizApp>, label: &str, text: &str) {
    h.get_by_label(label).click();
    frame(h, label);
    h.get_by_label(label).type_text(text);
    frame(h, label);
}

/// Traces a packet through the trace form, timing every frame until the
/// trace (on its worker thread) is done.
fn run_trace(h: &mut Harness<'static, IptvizApp>, what: &str) {
    h.get_by_label("Trace").click();
    for _ in 0..3 {
        frame(h, what);
    }
    type_into(h, "Source", "10.0.0.1");
    type_into(h, "Destination", "10.0.0.2");
    type_into(h, "Destination port", "80");
    h.get_by_label("Run trace").click();
    frame(h, what);
    settle(h, what);
}

/// The app started on `text` written to a file, as `iptviz-gui FILE` and
/// File > Open read it; the file is removed once loaded.
fn opened(text: &str, what: &str) -> Harness<'static, IptvizApp> {
    let path = std::env::temp_dir().join(format!(
        "iptviz-hostile-{}-{}.rules",
        std::process::id(),
        what.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    ));
    std::fs::write(&path, text).expect("write the dump");
    let mut h = harness(Options {
        file: Some(path.display().to_string()),
        ..Default::default()
    });
    settle(&mut h, what);
    std::fs::remove_file(&path).expect("remove the dump");
    h
}

const LOOP: &str = ":A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\n-A B -g A\nCOMMIT\n";

/// 61 chains, each jumping twice to the next: 2^61 - 1 evaluations.
fn walk_2_pow_61() -> String {
    let mut text = String::from(HEAD);
    for i in 0..=60 {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    text.push_str("-A INPUT -j C0\n");
    for i in 0..60 {
        text.push_str(&format!("-A C{i} -j C{n}\n-A C{i} -j C{n}\n", n = i + 1));
    }
    text.push_str("COMMIT\n");
    text
}

fn stopped_at_the_budget(h: &Harness<'static, IptvizApp>) {
    let want = format!(
        "Stopped: stopped after {} rule evaluations in table 'filter'",
        iptviz_gui::trace_state::MAX_STEPS
    );
    h.get_by_label_contains(&want);
}

fn message(h: &Harness<'static, IptvizApp>) -> String {
    h.state()
        .message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

#[test]
fn a_pasted_jump_loop_is_listed_and_a_trace_into_it_stops_naming_it() {
    let mut h = harness(Options::default());
    settle(&mut h, "start");
    paste(&mut h, format!("{HEAD}{LOOP}"), "jump loop");
    {
        let app = h.state();
        let doc = app.state.doc.as_ref().expect("loaded");
        assert!(
            doc.parsed
                .problems
                .iter()
                .any(|p| p.line == 9 && p.message.contains("A -> B -> A")),
            "{:?}",
            doc.parsed.problems
        );
    }
    run_trace(&mut h, "trace into the loop");
    h.get_by_label_contains("Stopped: stopped at a jump loop in table 'filter': A -> B -> A");
}

#[test]
fn an_opened_jump_loop_is_listed_and_a_trace_into_it_stops_naming_it() {
    let mut h = opened(&format!("{HEAD}{LOOP}"), "jump loop file");
    {
        let app = h.state();
        let doc = app.state.doc.as_ref().expect("loaded");
        assert!(
            doc.parsed
                .problems
                .iter()
                .any(|p| p.message.contains("A -> B -> A")),
            "{:?}",
            doc.parsed.problems
        );
    }
    run_trace(&mut h, "trace into the opened loop");
    h.get_by_label_contains("Stopped: stopped at a jump loop in table 'filter': A -> B -> A");
}

#[test]
fn a_pasted_walk_of_2_pow_61_evaluations_stops_at_the_budget_and_stays_responsive() {
    let mut h = harness(Options::default());
    settle(&mut h, "start");
    paste(&mut h, walk_2_pow_61(), "2^61 walk");
    run_trace(&mut h, "trace of the 2^61 walk");
    stopped_at_the_budget(&h);
    h.get_by_label_contains("the kernel would evaluate about 2305843009213693951 rules");
}

#[test]
fn an_opened_walk_of_2_pow_61_evaluations_stops_at_the_budget_and_stays_responsive() {
    let mut h = opened(&walk_2_pow_61(), "2^61 walk file");
    run_trace(&mut h, "trace of the opened 2^61 walk");
    stopped_at_the_budget(&h);
    h.get_by_label_contains("the kernel would evaluate about 2305843009213693951 rules");
}

#[test]
fn binary_data_pasted_or_opened_gives_a_message_and_keeps_the_rules_shown() {
    let mut h = harness(Options::default());
    settle(&mut h, "start");
    let before = h.state().state.doc.clone().expect("the sample");
    // Random bytes as a clipboard would hand them over: lossily as text.
    let mut x = 0x2545_f491_u32;
    let bytes: Vec<u8> = (0..50_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let noise = String::from_utf8_lossy(&bytes).into_owned();
    for (what, text) in [
        ("NUL bytes", "\0".repeat(4096)),
        ("control characters", "\u{1}\u{2}\u{3}\u{7f}".repeat(1000)),
        ("random bytes", noise),
    ] {
        paste(&mut h, text, what);
        let m = message(&h);
        assert!(m.contains("binary data"), "{what}: {m}");
        let app = h.state();
        let doc = app.state.doc.as_ref().expect("still a document");
        assert!(std::sync::Arc::ptr_eq(doc, &before), "{what}");
    }
    for dev in ["/dev/zero", "/dev/urandom"] {
        let mut h = harness(Options {
            file: Some(dev.into()),
            ..Default::default()
        });
        settle(&mut h, dev);
        let m = message(&h);
        assert!(m.contains(&format!("{dev}: this is binary data")), "{m}");
        assert!(h.state().state.doc.is_some(), "the sample is shown instead");
    }
}

#[test]
fn a_million_chains_one_chain_jumps_to_load_as_one_group_through_paste_and_file() {
    let n = 1_000_000;
    let mut text = String::with_capacity(40 << 20);
    text.push_str(HEAD);
    for i in 0..n {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    for i in 0..n {
        text.push_str(&format!("-A INPUT -j C{i}\n"));
    }
    text.push_str("COMMIT\n");
    let path = std::env::temp_dir().join(format!("iptviz-hostile-{}.rules", std::process::id()));
    std::fs::write(&path, &text).expect("write the dump");
    let check = |h: &Harness<'static, IptvizApp>, what: &str| {
        let app = h.state();
        let doc = app.state.doc.as_ref().expect("loaded");
        assert_eq!(doc.parsed.ruleset.chain_count(), n + 3, "{what}");
        let scene = app.state.scene.as_ref().expect("drawn");
        assert!(
            scene.nodes.len() < 50,
            "{what}: the fan-out is one group, {} boxes",
            scene.nodes.len()
        );
    };
    let mut h = harness(Options::default());
    settle(&mut h, "start");
    paste(&mut h, text, "paste of a million chains");
    check(&h, "paste");
    // A million calls and returns: the trace stops at its budget, on the
    // worker thread.
    run_trace(&mut h, "trace through a million chains");
    stopped_at_the_budget(&h);
    let mut h = harness(Options {
        file: Some(path.display().to_string()),
        ..Default::default()
    });
    settle(&mut h, "open of a million chains");
    check(&h, "file open");
    std::fs::remove_file(&path).expect("remove the dump");
}
