//! The Conntrack tab and the trace form, driven like a person would
//! (egui_kittest, no window): open a real conntrack table, see rows and a
//! NAT entry, filter and sort; fill the trace form, run it, see the
//! verdict and the steps, click a step.

mod common;
use common::app_harness;

use std::path::PathBuf;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz_gui::state::View;
use iptviz_gui::{IptvizApp, Options, settings::Settings};

/// A sample of the shared corpus; fails clearly when the corpus is absent.
fn corpus(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/conntrack")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: these tests read the shared corpus (../shared/corpus next to the repository)",
        p.display()
    );
    p.display().to_string()
}

fn harness() -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            sync: true,
            ..Default::default()
        },
    );
    app_harness(app, 1280.0, 800.0)
}

fn type_into(h: &mut Harness<'static, IptvizApp>, label: &str, text: &str) {
    h.get_by_label(label).click();
    h.run();
    h.get_by_label(label).type_text(text);
    h.run();
}

fn open_conntrack(h: &mut Harness<'static, IptvizApp>, file: &str) {
    h.get_by_label("Conntrack").click();
    h.run();
    assert_eq!(h.state().state.view, View::Conntrack);
    h.get_by_label_contains("No conntrack table loaded");
    type_into(h, "Conntrack file", &corpus(file));
    h.get_by_label("Load file").click();
    h.run();
}

#[test]
fn conntrack_tab_shows_rows_summary_and_nat() {
    let mut h = harness();
    h.run();
    open_conntrack(&mut h, "proc-nf_conntrack-acct-home-router.txt");
    let n = h
        .state()
        .state
        .conntrack
        .table
        .as_ref()
        .map(|t| t.entries.len());
    let bytes = std::fs::read(corpus("proc-nf_conntrack-acct-home-router.txt")).expect("read");
    let want = match iptviz::conntrack::parse_bytes(&bytes, "x").expect("parses") {
        iptviz::conntrack::Parsed::Entries(t) => t.entries.len(),
        _ => panic!("entries expected"),
    };
    assert_eq!(n, Some(want));
    // Rows of the table, the status line and the charts.
    assert!(
        h.query_all_by_label_contains(&format!("{want} entries"))
            .next()
            .is_some()
    );
    assert!(
        !h.get_all_by_label("8.8.8.8:53")
            .collect::<Vec<_>>()
            .is_empty()
    );
    h.get_by_label("By protocol");
    h.get_by_label("Top destination ports");
    // The masqueraded connection of line 3, as a NAT entry.
    h.get_by_label_contains(
        "tcp 172.25.9.60:53884 -> 59.110.71.120:443 (source as 42.191.180.28:53884)",
    );

    // Filter to tcp, then sort by bytes.
    type_into(&mut h, "Protocol", "tcp\n");
    h.get_by_label("Filter").click();
    h.run();
    let app = h.state();
    let ct = &app.state.conntrack;
    let table = ct.table.as_ref().expect("table");
    assert!(!ct.rows.is_empty());
    assert!(
        ct.rows
            .iter()
            .all(|&i| table.entries[i as usize].proto_name() == "tcp")
    );
    h.get_by_label("Source").click();
    h.run();
    h.get_by_label("Source ^").click();
    h.run();
    let app = h.state();
    let ct = &app.state.conntrack;
    let table = ct.table.as_ref().expect("table");
    let src = |i: u32| table.entries[i as usize].orig.src;
    assert!(ct.sort.descending);
    assert!(
        ct.rows.windows(2).all(|w| src(w[0]) >= src(w[1])),
        "sorted by source, largest first"
    );
}

#[test]
fn conntrack_counters_show_the_explanations() {
    let mut h = harness();
    h.run();
    open_conntrack(&mut h, "conntrack-S-k8s-node.txt");
    h.get_by_label("Counters (health)");
    h.get_by_label("insert_failed");
    h.get_by_label_contains("5-second DNS timeouts");
}

#[test]
fn trace_form_runs_and_lists_the_steps() {
    let mut h = harness();
    h.run();
    // The bundled sample is samples/docker-host.rules.
    h.get_by_label("Trace").click();
    h.run();
    type_into(&mut h, "Source", "198.51.100.7");
    type_into(&mut h, "Destination", "192.168.1.10");
    type_into(&mut h, "Destination port", "8080");
    type_into(&mut h, "In interface", "eth0");
    type_into(&mut h, "Local addresses", "192.168.1.10");
    h.get_by_label("Run trace").click();
    h.run();
    let (verdict, steps) = {
        let app = h.state();
        let r = app
            .state
            .trace
            .current(app.state.doc.as_ref())
            .expect("traced");
        (r.view.verdict.to_string(), r.view.steps.len())
    };
    assert!(steps > 3, "{steps} steps");
    // Without an out interface, Docker's FORWARD rules do not match.
    assert_eq!(verdict, "DROP");
    h.get_by_label("Verdict: DROP");
    h.get_by_label_contains("No out interface given");
    // The DNAT step of Docker's published port, with its rule.
    assert!(h.query_all_by_label_contains("DNAT").next().is_some());
    assert!(
        h.query_all_by_label_contains("PREROUTING / nat")
            .next()
            .is_some()
    );
    // Clicking the first step selects its chain.
    h.get_by_label("1").click();
    h.run();
    let app = h.state();
    let sel = app
        .state
        .selected_chain()
        .map(|(t, c)| format!("{}/{}", t.name, c.name));
    let want = {
        let r = app
            .state
            .trace
            .current(app.state.doc.as_ref())
            .expect("traced");
        format!("{}/{}", r.view.steps[0].table, r.view.steps[0].chain)
    };
    assert_eq!(sel, Some(want));
    // With the out interface the packet goes to the container.
    type_into(&mut h, "Out interface", "docker0");
    h.get_by_label("Run trace").click();
    h.run();
    h.get_by_label("Verdict: ACCEPT");
    h.get_by_label("  leaves as:");
    h.get_by_label_contains("-> 172.17.0.2:80 in eth0 out docker0");
}

#[test]
fn trace_form_says_what_is_wrong() {
    let mut h = harness();
    h.run();
    h.get_by_label("Trace").click();
    h.run();
    type_into(&mut h, "Source", "not-an-address");
    type_into(&mut h, "Destination", "192.168.1.10");
    h.get_by_label("Run trace").click();
    h.run();
    h.get_by_label_contains("source: `not-an-address` is not an IP address");
}

#[test]
fn trace_path_only_draws_the_walk_alone() {
    let mut h = harness();
    h.run();
    h.get_by_label("Trace").click();
    h.run();
    type_into(&mut h, "Source", "198.51.100.7");
    type_into(&mut h, "Destination", "192.168.1.10");
    type_into(&mut h, "Destination port", "8080");
    type_into(&mut h, "In interface", "eth0");
    type_into(&mut h, "Out interface", "docker0");
    type_into(&mut h, "Local addresses", "192.168.1.10");
    h.get_by_label("Run trace").click();
    h.run();
    h.get_by_label("Verdict: ACCEPT");
    {
        let app = h.state();
        assert!(!app.state.trace.path_only);
        assert!(
            app.state.trace.path_scene(app.state.doc.as_ref()).is_none(),
            "the table is drawn until Path only is ticked"
        );
    }
    h.get_by_label("Path only").click();
    h.run();
    {
        let app = h.state();
        let s = app
            .state
            .trace
            .path_scene(app.state.doc.as_ref())
            .expect("the walk drawn alone");
        let frames: Vec<&str> = s.clusters.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            frames,
            [
                "PREROUTING · table nat",
                "FORWARD · table filter",
                "POSTROUTING · table nat"
            ]
        );
        let dnat = s
            .nodes
            .iter()
            .find(|n| n.title == "DNAT")
            .expect("the DNAT target");
        assert_eq!(dnat.subtitle, "dst 172.17.0.2:80");
        assert!(
            s.edges
                .iter()
                .any(|e| e.label == "#1 -j DOCKER-USER" && !e.ret),
            "rules taken are named on their edges"
        );
        // Boxes of several tables: none selects a chain of the shown one.
        assert!(
            s.nodes
                .iter()
                .all(|n| n.kind == iptviz_gui::scene::NodeKind::Target)
        );
        // Chains the packet never entered are not drawn.
        assert!(
            !s.nodes
                .iter()
                .any(|n| n.title == "DOCKER-ISOLATION-STAGE-2")
        );
    }
    h.get_by_label("Path only").click();
    h.run();
    let app = h.state();
    assert!(app.state.trace.path_scene(app.state.doc.as_ref()).is_none());
}
