//! The Compare view, driven like a person would (egui_kittest): the
//! Docker host sample is loaded, an older copy of it (a rule the sample
//! no longer has, a rule it lacked, FORWARD's policy ACCEPT instead of
//! DROP) is opened as the comparison; the differences are listed, clicking
//! one selects its rule, a box of packets that change fate is listed with
//! its example, which can be traced. Identical rulesets, a refactoring
//! pasted in, and an unreadable file each get their own answer.

mod common;
use common::app_harness;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz_gui::compare_state::{Pick, RowKind};
use iptviz_gui::{IptvizApp, Options, settings::Settings};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../samples/docker-host.rules");
const BEFORE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/docker-host-before.rules"
);

fn harness() -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            file: Some(SAMPLE.into()),
            sync: true,
            ..Default::default()
        },
    );
    let mut h = app_harness(app, 1280.0, 900.0);
    h.run();
    h
}

/// Clicks "Compare…" in the toolbar and asks for `path` in its dialog.
fn compare_with(h: &mut Harness<'static, IptvizApp>, path: &str) {
    h.get_by_label("Compare…").click();
    h.run();
    assert!(h.state().state.compare.open, "the panel opens");
    let field = "Path of the ruleset to compare with";
    h.get_by_label_contains(field).click();
    h.run();
    h.get_by_label_contains(field).type_text(path);
    h.run();
    assert_eq!(h.state().dialogs.compare, path);
    h.get_by_label("Compare with the loaded rules").click();
    h.run();
    h.run();
}

fn row_index(h: &Harness<'static, IptvizApp>, kind: RowKind, chain: &str) -> usize {
    let app = h.state();
    let r = app
        .state
        .compare
        .current(app.state.doc.as_ref())
        .expect("compared");
    r.rows
        .iter()
        .position(|d| d.kind == kind && d.chain == chain)
        .unwrap_or_else(|| panic!("no {kind:?} row in {chain}: {:#?}", r.rows))
}

fn selected(h: &Harness<'static, IptvizApp>) -> (String, String) {
    let (t, c) = h.state().state.selected_chain().expect("a chain selected");
    (t.name.to_string(), c.name.to_string())
}

#[test]
fn differences_are_listed_and_clicking_one_selects_its_rule() {
    let mut h = harness();
    compare_with(&mut h, BEFORE);
    assert!(
        h.state().message.as_ref().is_some_and(|m| !m.error),
        "{:?}",
        h.state().message
    );
    // The rule the sample no longer has, with its text and old line; the
    // policy change; the rule only the sample has, with its line.
    h.get_by_label_contains(
        "- was #4 old line 13: -A INPUT -p tcp -m tcp --dport 8443 -m comment --comment \"old admin console\" -j ACCEPT",
    );
    h.get_by_label("filter FORWARD");
    h.get_by_label_contains("policy ACCEPT -> DROP");
    let added = "+ #1 line 34: -A DOCKER-USER -s 203.0.113.0/24 -m comment --comment \"blocked partner range\" -j DROP";
    h.get_by_label_contains(added);
    h.get_by_label_contains("1 rule(s) added, 1 removed, 1 policy change(s)");

    // The legend lies in its strip beside the graph, with the compare
    // marks; a chain can be out of sight but never under it.
    let dock = iptviz_gui::views::dock::Dock::last(&h.ctx, iptviz_gui::views::canvas::GRAPH_DOCK)
        .expect("canvas drawn");
    let legend = dock.legend.expect("a legend is drawn");
    assert!(!legend.intersects(dock.graph.shrink(0.5)));
    let where_is = |h: &Harness<'static, IptvizApp>| {
        let app = h.state();
        let scene = app.state.scene.clone().expect("scene");
        let t = &app.state.doc.as_ref().unwrap().parsed.ruleset.tables[app.state.table];
        let n = scene
            .node_for_chain(t.chain_position("DOCKER-USER").unwrap())
            .expect("DOCKER-USER drawn");
        let c = scene.nodes[n].rect.center();
        let view = app.last_canvas_rect.expect("canvas drawn");
        (c, view, app.camera)
    };
    // Look well away from DOCKER-USER.
    let (world, view, cam) = where_is(&h);
    h.state_mut().camera.center = world + egui::vec2(view.width() * 2.0 / cam.zoom, 0.0);
    h.run();
    let (world, view, cam) = where_is(&h);
    assert!(!view.contains(cam.to_screen(view, world)));

    // Clicking the added rule selects it: DOCKER-USER, rule #1.
    h.get_by_label_contains(added).click();
    h.run();
    assert_eq!(
        selected(&h),
        ("filter".to_string(), "DOCKER-USER".to_string())
    );
    let i = row_index(&h, RowKind::Added, "DOCKER-USER");
    assert_eq!(h.state().state.compare.pick, Some(Pick::Row(i)));
    let at = h.state().state.selected.expect("selected");
    let focus = h
        .state()
        .state
        .compare
        .focus_in(h.state().state.doc.as_ref(), at)
        .expect("the pick is in the selected chain")
        .clone();
    assert_eq!((focus.rule, focus.removed), (Some(0), None));
    h.get_by_label("filter / DOCKER-USER");
    // The camera brought the chain into sight, clear of the legend.
    h.run();
    let (world, view, cam) = where_is(&h);
    let screen = cam.to_screen(view, world);
    assert!(
        !legend.contains(screen) && view.contains(screen),
        "DOCKER-USER at {screen:?}, legend {legend:?}, canvas {view:?}"
    );

    // The removed rule selects its chain and shows its old text there.
    h.get_by_label_contains("- was #4 old line 13").click();
    h.run();
    assert_eq!(selected(&h), ("filter".to_string(), "INPUT".to_string()));
    h.get_by_label_contains("Removed from this chain (was #4, line 13 of");
    assert!(
        h.query_all_by_label_contains("--dport 8443 -m comment --comment \"old admin console\"")
            .count()
            >= 2,
        "listed, and shown on the rules panel"
    );

    // The graph marks the chains whose rules or policy changed.
    let app = h.state();
    let doc = app.state.doc.clone();
    let filter = app.state.table;
    let marks = app
        .state
        .compare
        .marks(doc.as_ref(), filter)
        .expect("marks on filter");
    let t = &doc.as_ref().unwrap().parsed.ruleset.tables[filter];
    let mut marked: Vec<&str> = marks.keys().map(|&c| t.chains[c].name.as_str()).collect();
    marked.sort();
    assert_eq!(marked, ["DOCKER-USER", "FORWARD", "INPUT"]);
    let scene = app.state.scene.clone().expect("scene");
    let input = scene
        .node_for_chain(t.chain_position("INPUT").unwrap())
        .expect("INPUT drawn");
    assert_eq!(
        iptviz_gui::views::canvas::compare_mark(&scene, marks, input),
        Some(iptviz::graph::DiffMark::Changed)
    );
    let docker = scene
        .node_for_chain(t.chain_position("DOCKER").unwrap())
        .expect("DOCKER drawn");
    assert_eq!(
        iptviz_gui::views::canvas::compare_mark(&scene, marks, docker),
        None
    );
}

#[test]
fn packets_that_change_fate_are_listed_with_an_example_that_traces() {
    let mut h = harness();
    compare_with(&mut h, BEFORE);
    h.get_by_label_contains("Packets change fate:");
    // tcp to port 8443 was accepted by the removed rule; now INPUT's last
    // rule drops it.
    h.get_by_label(
        "filter INPUT: tcp  dpt 8443  in not lo  out (none)  INVALID,NEW,UNTRACKED  ACCEPT -> DROP",
    );
    h.get_by_label("example: tcp 1.0.0.1:40000 -> 1.0.0.1:8443 in eth0 NEW");
    h.get_by_label_contains(
        "before: rule #4 of INPUT (line 13)  ·  now: rule #6 of INPUT (line 15)",
    );
    // Clicking it selects the rule that decides now: INPUT #6, -j DROP.
    h.get_by_label_contains("filter INPUT: tcp  dpt 8443")
        .click();
    h.run();
    assert_eq!(h.state().state.compare.pick, Some(Pick::Fate(0)));
    assert_eq!(selected(&h), ("filter".to_string(), "INPUT".to_string()));
    let at = h.state().state.selected.unwrap();
    let focus = h
        .state()
        .state
        .compare
        .focus_in(h.state().state.doc.as_ref(), at)
        .cloned()
        .expect("focus");
    assert_eq!(focus.rule, Some(5));
    // Its example packet, traced in the trace panel through the loaded rules.
    h.query_all_by_label("Trace example")
        .next()
        .expect("a trace button per box")
        .click();
    h.run();
    assert!(h.state().state.trace.open);
    let form = &h.state().trace_form;
    assert_eq!(
        (
            form.dst.as_str(),
            form.dport.as_str(),
            form.direction.as_str()
        ),
        ("1.0.0.1", "8443", "in")
    );
    h.get_by_label("Verdict: DROP");
}

#[test]
fn identical_rulesets_say_there_are_no_differences() {
    let mut h = harness();
    compare_with(&mut h, SAMPLE);
    h.get_by_label("No differences: the same tables, chains, policies and rules (counters aside).");
    let app = h.state();
    let r = app
        .state
        .compare
        .current(app.state.doc.as_ref())
        .expect("compared");
    assert!(r.rows.is_empty() && r.fates.is_empty());
    assert!(
        app.state
            .compare
            .marks(app.state.doc.as_ref(), app.state.table)
            .is_none()
    );
}

#[test]
fn a_refactoring_pasted_in_changes_no_packet_fate() {
    let mut h = harness();
    h.get_by_label("Compare…").click();
    h.run();
    h.key_press(egui::Key::Escape);
    h.run();
    assert!(h.state().dialogs.open.is_none());
    // The two DROPs of DOCKER-ISOLATION-STAGE-2 swapped: they match other
    // interfaces, so no packet is treated otherwise.
    let text = std::fs::read_to_string(SAMPLE).expect("sample").replace(
        "[0:0] -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP\n\
         [0:0] -A DOCKER-ISOLATION-STAGE-2 -o br-5f1e2d3c4b5a -j DROP\n",
        "[0:0] -A DOCKER-ISOLATION-STAGE-2 -o br-5f1e2d3c4b5a -j DROP\n\
         [0:0] -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP\n",
    );
    h.event(egui::Event::Paste(text));
    h.run();
    h.run();
    // The loaded rules stay; the paste is the other side.
    assert_eq!(h.state().state.doc.as_ref().unwrap().name, SAMPLE);
    assert_eq!(
        h.state().state.compare.other.as_ref().unwrap().name,
        "pasted text"
    );
    h.get_by_label("Rules differ but no packet changes fate (a refactoring).");
    h.get_by_label_contains("1 moved");
    h.get_by_label_contains("No packet changes fate in the");
}

#[test]
fn an_unreadable_file_is_an_error_in_the_status_bar() {
    let mut h = harness();
    compare_with(&mut h, "/nonexistent/old.rules");
    let m = h.state().message.clone().expect("a message");
    assert!(m.error, "{m:?}");
    assert!(m.text.starts_with("compare: "), "{}", m.text);
    assert!(m.text.contains("/nonexistent/old.rules"), "{}", m.text);
    assert!(h.state().state.compare.other.is_none());
    // The loaded rules are still there, and the panel says what to do.
    assert_eq!(h.state().state.doc.as_ref().unwrap().name, SAMPLE);
    h.get_by_label_contains("Choose the ruleset to compare with");
}

#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_file_dropped_on_the_open_view_is_compared_and_sides_swap() {
    let mut h = harness();
    h.get_by_label("Compare…").click();
    h.run();
    h.key_press(egui::Key::Escape);
    h.run();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(BEFORE.into())));
    h.run();
    h.run();
    assert_eq!(h.state().state.doc.as_ref().unwrap().name, SAMPLE);
    assert_eq!(h.state().state.compare.other.as_ref().unwrap().name, BEFORE);
    h.get_by_label_contains("- was #4 old line 13: -A INPUT -p tcp -m tcp --dport 8443");
    // Swapped, the older copy is shown and its extra rule is an addition.
    h.get_by_label("Swap sides").click();
    h.run();
    h.run();
    assert_eq!(h.state().state.doc.as_ref().unwrap().name, BEFORE);
    assert_eq!(h.state().state.compare.other.as_ref().unwrap().name, SAMPLE);
    h.get_by_label_contains("+ #4 line 13: -A INPUT -p tcp -m tcp --dport 8443");
    h.get_by_label_contains("policy DROP -> ACCEPT");
    // With the view closed, a dropped file is loaded as the rules again.
    h.get_by_label("Close").click();
    h.run();
    assert!(!h.state().state.compare.open);
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(SAMPLE.into())));
    h.run();
    assert_eq!(h.state().state.doc.as_ref().unwrap().name, SAMPLE);
}
