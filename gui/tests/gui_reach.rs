//! The Reach view and lint in the app, driven like a person would
//! (egui_kittest): pick a port, see the classes, click a class or an arrow
//! to get a packet traced; lint findings in the Problems panel, the
//! shadowed rule greyed on the rules panel.

mod common;
use common::app_harness;

use egui::Pos2;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz_gui::reach_state::Pick;
use iptviz_gui::state::{ChainRef, View};
use iptviz_gui::{IptvizApp, Options, settings::Settings};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reach-lint.rules"
);

fn harness() -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            file: Some(FIXTURE.into()),
            sync: true,
            ..Default::default()
        },
    );
    app_harness(app, 1280.0, 800.0)
}

fn click_at(h: &mut Harness<'static, IptvizApp>, p: Pos2) {
    h.hover_at(p);
    h.run();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: Default::default(),
        });
    }
    h.run();
}

/// Points the graph's camera at a world point (so that it is clear of
/// the minimap in the corner) and gives where it is on screen.
fn look_at(h: &mut Harness<'static, IptvizApp>, world: Pos2) -> Pos2 {
    h.state_mut().reach_camera.center = world;
    h.run();
    let app = h.state();
    let view = app.last_canvas_rect.expect("graph drawn");
    app.reach_camera.to_screen(view, world)
}

/// The centre of class `c`'s box on screen.
fn box_on_screen(h: &mut Harness<'static, IptvizApp>, c: usize) -> Pos2 {
    let world = {
        let app = h.state();
        let doc = app.state.doc.clone();
        let r = app.state.reach.current(doc.as_ref()).expect("computed");
        r.scene.nodes[c].rect.center()
    };
    look_at(h, world)
}

/// The middle of the arrow `a -> b` on screen.
fn arrow_on_screen(h: &mut Harness<'static, IptvizApp>, a: u32, b: u32) -> Pos2 {
    let app = h.state();
    let doc = app.state.doc.clone();
    let r = app.state.reach.current(doc.as_ref()).expect("computed");
    let e = r
        .scene
        .edges
        .iter()
        .find(|e| (e.from, e.to) == (a, b))
        .expect("the arrow is drawn");
    let pts = &e.points;
    let mid = if e.curved && pts.len() >= 4 {
        // A cubic piece at t = 1/2.
        let k = (pts.len() / 3 / 2) * 3;
        let (p0, p1, p2, p3) = (pts[k], pts[k + 1], pts[k + 2], pts[k + 3]);
        ((p0.to_vec2() + p1.to_vec2() * 3.0 + p2.to_vec2() * 3.0 + p3.to_vec2()) / 8.0).to_pos2()
    } else {
        let k = pts.len() / 2;
        pts[k - 1] + (pts[k] - pts[k - 1]) / 2.0
    };
    look_at(h, mid)
}

/// Opens Reach and computes the FORWARD matrix of port 80.
fn reach_port_80(h: &mut Harness<'static, IptvizApp>) {
    h.run();
    h.get_by_label("Reach").click();
    h.run();
    assert_eq!(h.state().state.view, View::Reach);
    h.get_by_label_contains("then Compute");
    // Replace the default port (22) with 80, as typed.
    h.get_by_label("Port").click();
    h.run();
    h.key_press(egui::Key::End);
    h.key_press(egui::Key::Backspace);
    h.key_press(egui::Key::Backspace);
    h.get_by_label("Port").type_text("80");
    h.run();
    assert_eq!(h.state().reach_form.dport, "80");
    h.get_by_label("Compute").click();
    h.run();
}

#[test]
fn reach_view_shows_classes_and_traces_a_clicked_class() {
    let mut h = harness();
    reach_port_80(&mut h);
    {
        let app = h.state();
        let doc = app.state.doc.clone();
        let r = app.state.reach.current(doc.as_ref()).expect("computed");
        assert_eq!(r.matrix.dport, 80);
        assert_eq!(r.matrix.chain, "FORWARD");
        assert_eq!(r.matrix.classes.len(), 4);
    }
    h.get_by_label_contains("4 classes, 5 accepted pairs");
    h.get_by_label_contains("c0  everything else: ");
    h.get_by_label("c1  10.0.0.0/8");
    h.get_by_label("c2  198.51.100.0/24");
    // Clicking a class in the list: its packet, and the trace of it.
    h.get_by_label("c2  198.51.100.0/24").click();
    h.run();
    assert_eq!(h.state().state.reach.pick, Some(Pick::Class(2)));
    h.get_by_label("Representative packet:");
    // In the Reach panel, and again as the trace panel's packet in.
    let packet = "tcp 198.51.100.1:10000 -> 198.51.100.1:80 NEW";
    assert!(h.query_all_by_label(packet).count() >= 1);
    h.get_by_label("The matrix: c2 -> c2 may be accepted");
    assert!(h.state().state.trace.open, "the trace panel opens");
    h.get_by_label("Verdict: ACCEPT");
    h.get_by_label_contains("The trace: ACCEPT");
    assert_eq!(h.state().trace_form.src, "198.51.100.1");
    assert_eq!(h.state().trace_form.direction, "forward");
    // A class that reaches nothing: its packet is traced to a drop.
    h.get_by_label_contains("c0  everything else").click();
    h.run();
    h.get_by_label("The matrix: c0 -> c0 is not accepted");
    h.get_by_label("Verdict: DROP");
}

#[test]
fn clicking_a_box_or_an_arrow_on_the_graph_picks_it() {
    let mut h = harness();
    reach_port_80(&mut h);
    let p = box_on_screen(&mut h, 3);
    click_at(&mut h, p);
    assert_eq!(h.state().state.reach.pick, Some(Pick::Class(3)));
    h.get_by_label("Class c3");
    // The trace panel opened below and moved the graph: look again.
    let p = arrow_on_screen(&mut h, 1, 3);
    click_at(&mut h, p);
    assert_eq!(h.state().state.reach.pick, Some(Pick::Pair(1, 3)));
    h.get_by_label("c1 -> c3");
    assert!(
        h.query_all_by_label("tcp 10.0.0.1:10000 -> 203.0.113.1:80 NEW")
            .count()
            >= 1
    );
    h.get_by_label("Verdict: ACCEPT");
}

#[test]
fn lint_findings_are_listed_and_the_shadowed_rule_is_greyed() {
    let mut h = harness();
    h.run();
    // Lint ran after loading; the status bar counts its finding.
    h.get_by_label("no problems, 1 lint finding(s)").click();
    h.run();
    h.get_by_label("Lint (1)");
    let text = "reach-lint.rules:10: shadowed: filter INPUT #3: every packet it matches is \
                taken earlier by lines 8, 9 (a different action)";
    h.get_by_label_contains(text).click();
    h.run();
    let app = h.state();
    let (t, c) = app.state.selected_chain().expect("a chain selected");
    assert_eq!((t.name.as_str(), c.name.as_str()), ("filter", "INPUT"));
    let at = app.state.selected.unwrap();
    assert_eq!(at, ChainRef { table: 0, chain: 0 });
    assert_eq!(
        app.state.lint.picked_rule(app.state.doc.as_ref(), at),
        Some(2)
    );
    // What the rules panel draws from: rule #3 greyed, the others not.
    let lint = app.state.lint.current(app.state.doc.as_ref());
    let grey = |i| iptviz_gui::views::rules::greyed(lint, at, i);
    assert!(grey(0).is_none() && grey(1).is_none());
    let f = grey(2).expect("rule #3 greyed");
    assert_eq!(f.finding.by, vec![8, 9]);
    let note = iptviz_gui::views::rules::never_matches_note(f);
    assert!(note.contains("lines 8, 9"), "{note}");
    assert!(note.contains("action differs"), "{note}");
    // And the panel says so next to the rule.
    h.get_by_label("shadowed");
    h.get_by_label("never reached");
}
