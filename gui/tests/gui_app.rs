//! Drives the whole app like a person would, without a window
//! (egui_kittest): load, search, select, follow a jump, paste garbage.

mod common;
use common::app_harness;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz_gui::{IptvizApp, Options, settings::Settings};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/small-host.rules"
);

/// The app with the small test dump loaded.
fn small_host() -> Harness<'static, IptvizApp> {
    harness(Options {
        file: Some(FIXTURE.into()),
        ..Default::default()
    })
}

fn harness(opts: Options) -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(Settings::default(), Options { sync: true, ..opts });
    app_harness(app, 1280.0, 800.0)
}

fn selected(h: &Harness<'_, IptvizApp>) -> Option<String> {
    h.state()
        .state
        .selected_chain()
        .map(|(t, c)| format!("{}/{}", t.name, c.name))
}

#[test]
fn first_start_shows_the_sample_and_says_how_to_load_more() {
    let mut h = harness(Options::default());
    h.run();
    h.get_by_label("DOCKER-USER");
    assert!(h.query_by_label_contains("bundled sample").is_some());
    assert!(h.query_by_label_contains("filter  (").is_some());
}

#[test]
fn search_select_follow_and_go_back() {
    let mut h = small_host();
    h.run();
    h.get_by_label("Search").click();
    h.run();
    h.get_by_label("Search").type_text("ssh");
    h.run();
    h.get_by_label("Results");
    h.get_by_label("filter ssh-allow").click();
    h.run();
    assert_eq!(selected(&h).as_deref(), Some("filter/ssh-allow"));
    h.get_by_label("filter / ssh-allow");
    // The rules of the chain, with the comment of the second one.
    h.get_by_label("backup host");
    h.get_by_label("-> log-drop").click();
    h.run();
    assert_eq!(selected(&h).as_deref(), Some("filter/log-drop"));
    h.get_by_label("filter / log-drop");
    h.get_by_label("< Back").click();
    h.run();
    assert_eq!(selected(&h).as_deref(), Some("filter/ssh-allow"));
    h.get_by_label("Forward >").click();
    h.run();
    assert_eq!(selected(&h).as_deref(), Some("filter/log-drop"));
}

#[test]
fn search_finds_ports_and_switching_table_shows_nat() {
    let mut h = small_host();
    h.run();
    h.get_by_label("Search").click();
    h.run();
    h.get_by_label("Search").type_text("8080");
    h.run();
    let hit = h.get_by_label_contains("nat DOCKER #2");
    hit.click();
    h.run();
    assert_eq!(selected(&h).as_deref(), Some("nat/DOCKER"));
    assert_eq!(h.state().state.table, 0, "canvas shows the nat table");
    h.get_by_label("nat / DOCKER");
}

#[test]
fn pasting_garbage_shows_what_parsed_and_the_problems() {
    let mut h = harness(Options::default());
    h.run();
    h.event(egui::Event::Paste(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nhello world\n-A INPUT --bogus\nCOMMIT\n"
            .into(),
    ));
    h.run();
    let doc = h.state().state.doc.clone().expect("pasted text loaded");
    assert_eq!(doc.name, "pasted text");
    assert_eq!(
        doc.parsed.ruleset.rule_count(),
        2,
        "the good rules are kept"
    );
    assert!(!doc.parsed.problems.is_empty());
    // The problems panel opens by itself; click the first problem.
    h.get_by_label_contains("Problems (");
    h.get_by_label_contains("line 4, column").click();
    h.run();
    h.get_by_label_contains("hello world\n^");
}

#[test]
fn paste_box_and_flow_view() {
    let mut h = harness(Options::default());
    h.run();
    h.get_by_label("Paste").click();
    h.run();
    h.get_by_label("Paste the output of iptables-save, ip6tables-save or iptables -S:");
    h.get_by_label("Paste the output of iptables-save, ip6tables-save or iptables -S:")
        .click();
    h.run();
    h.get_by_role(Role::MultilineTextInput).click();
    h.run();
    h.get_by_role(Role::MultilineTextInput).type_text("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n");
    h.run();
    h.get_by_label("Show these rules").click();
    h.run();
    let doc = h.state().state.doc.clone().expect("loaded");
    assert_eq!(doc.parsed.ruleset.tables[0].name, "nat");
    h.get_by_label("Flow").click();
    h.run();
    assert_eq!(h.state().state.view, iptviz_gui::state::View::Flow);
    // The library's hook picture: click the nat box in the PREROUTING
    // frame and its chain is selected.
    let (p, want) = {
        let app = h.state();
        let flow = &app.state.doc.as_ref().expect("loaded").flow;
        let frame = flow
            .scene
            .clusters
            .iter()
            .find(|c| c.label == "PREROUTING")
            .expect("PREROUTING frame");
        let n = (0..flow.scene.nodes.len())
            .find(|&i| {
                flow.chains[i].is_some() && frame.rect.contains_rect(flow.scene.nodes[i].rect)
            })
            .expect("a chain box in the PREROUTING frame");
        assert_eq!(flow.scene.nodes[n].title, "nat");
        let view = app.last_canvas_rect.expect("flow drawn");
        let (table, chain) = flow.chains[n].unwrap();
        (
            app.flow_camera
                .to_screen(view, flow.scene.nodes[n].rect.center()),
            iptviz_gui::state::ChainRef { table, chain },
        )
    };
    assert!(h.state().state.selected != Some(want));
    h.hover_at(p);
    h.run();
    h.event(egui::Event::PointerButton {
        pos: p,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Default::default(),
    });
    h.event(egui::Event::PointerButton {
        pos: p,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Default::default(),
    });
    h.run();
    assert_eq!(h.state().state.selected, Some(want));
    assert_eq!(want.chain, 0, "PREROUTING is the nat table's first chain");
}

#[test]
fn opening_a_missing_file_says_so_and_keeps_the_sample() {
    let mut h = harness(Options {
        file: Some("/nonexistent/rules.txt".into()),
        ..Default::default()
    });
    h.run();
    let m = h.state().message.clone().expect("message");
    assert!(
        m.error && m.text.contains("/nonexistent/rules.txt"),
        "{m:?}"
    );
    assert!(h.state().state.doc.is_some());
}

#[test]
fn double_click_expands_a_group() {
    let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n");
    for i in 0..8 {
        text.push_str(&format!(":KUBE-SEP-ABCDEFGH{i:04} - [0:0]\n"));
        text.push_str(&format!("-A PREROUTING -j KUBE-SEP-ABCDEFGH{i:04}\n"));
    }
    text.push_str("COMMIT\n");
    let path = std::env::temp_dir().join(format!("iptviz-gui-test-{}.rules", std::process::id()));
    std::fs::write(&path, text).expect("temp file");
    let mut h = harness(Options {
        file: Some(path.display().to_string()),
        ..Default::default()
    });
    h.run();
    let _ = std::fs::remove_file(&path);
    // PREROUTING, its policy ACCEPT, and the folded endpoints.
    assert_eq!(
        h.state().state.scene.as_ref().map(|s| s.nodes.len()),
        Some(3)
    );
    // Find the group box on screen from the camera and double-click it.
    let (center, cam) = {
        let app = h.state();
        let scene = app.state.scene.as_ref().expect("scene");
        let group = scene
            .nodes
            .iter()
            .find(|n| matches!(n.kind, iptviz_gui::scene::NodeKind::Group(_)))
            .expect("a group box");
        (group.rect.center(), app.camera)
    };
    let view = h.state().last_canvas_rect.expect("canvas drawn");
    let p = cam.to_screen(view, center);
    h.hover_at(p);
    h.run();
    for _ in 0..2 {
        h.event(egui::Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed: true,
            modifiers: Default::default(),
        });
        h.event(egui::Event::PointerButton {
            pos: p,
            button: egui::PointerButton::Primary,
            pressed: false,
            modifiers: Default::default(),
        });
        h.step();
    }
    h.hover_at(p);
    h.run();
    assert_eq!(
        h.state().state.scene.as_ref().map(|s| s.nodes.len()),
        Some(10)
    );
}

#[test]
fn live_ipv4_and_ipv6_rules_switch_from_the_toolbar() {
    use iptviz_gui::state::Document;
    use std::sync::Arc;
    let v4 = std::fs::read(FIXTURE).unwrap();
    let v6 = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../samples/server-ipv6.rules"
    ))
    .unwrap();
    let dumps = Arc::new(vec![
        ("live: iptables-save -c".to_string(), v4),
        ("live: ip6tables-save -c".to_string(), v6),
    ]);
    let mut h = small_host();
    h.run();
    // A single dump offers no family switch.
    assert!(h.query_by_label("IPv6").is_none());
    let doc = Document::from_siblings(dumps, 0).unwrap();
    h.state_mut().state.set_document(Arc::new(doc));
    h.run();
    h.get_by_label("IPv6").click();
    h.run();
    let doc = h.state().state.doc.clone().unwrap();
    assert_eq!(doc.name, "live: ip6tables-save -c");
    assert_eq!(doc.parsed.ruleset.family, iptviz::model::Family::Ipv6);
    assert_eq!(doc.siblings.shown, 1);
    h.get_by_label("IPv4").click();
    h.run();
    let doc = h.state().state.doc.clone().unwrap();
    assert_eq!(doc.name, "live: iptables-save -c");
    assert_eq!(doc.siblings.shown, 0);
}
