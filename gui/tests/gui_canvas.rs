//! The graph canvas's first picture and the strips around it, driven
//! through the whole app without a window (egui_kittest): after fitting a
//! wide table the built-in chains are named, names never overlap, and the
//! legend and minimap take room beside the graph instead of covering it.

mod common;
use common::app_harness;

use egui::{Pos2, Rect, Shape};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use iptviz_gui::views::canvas::GRAPH_DOCK;
use iptviz_gui::views::dock::Dock;
use iptviz_gui::{IptvizApp, Options, settings::Settings};

/// A filter table of 66 user chains, a third under each built-in chain:
/// wide enough that the fitted picture is far too small for box text.
fn wide_table() -> String {
    let mut text =
        String::from("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..66 {
        text.push_str(&format!(":chain-{i:02} - [0:0]\n"));
    }
    for i in 0..66 {
        let from = ["INPUT", "FORWARD", "OUTPUT"][i / 22];
        text.push_str(&format!(
            "-A {from} -p tcp --dport {} -j chain-{i:02}\n",
            1000 + i
        ));
        text.push_str(&format!("-A chain-{i:02} -s 10.0.{i}.0/24 -j ACCEPT\n"));
        text.push_str(&format!("-A chain-{i:02} -j DROP\n"));
    }
    text.push_str("COMMIT\n");
    text
}

fn harness_with(text: &str, name: &str) -> Harness<'static, IptvizApp> {
    let path = std::env::temp_dir().join(format!(
        "iptviz-gui-canvas-{name}-{}.rules",
        std::process::id()
    ));
    std::fs::write(&path, text).expect("temp file");
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            file: Some(path.display().to_string()),
            sync: true,
            ..Default::default()
        },
    );
    let mut h = app_harness(app, 1280.0, 800.0);
    h.run();
    let _ = std::fs::remove_file(&path);
    h
}

/// Text painted inside `area` in the last frame: its string and where.
fn texts_in(h: &Harness<'_, IptvizApp>, area: Rect) -> Vec<(String, Rect)> {
    let mut out = Vec::new();
    for clipped in &h.output().shapes {
        collect_text(&clipped.shape, area, &mut out);
    }
    out
}

fn collect_text(shape: &Shape, area: Rect, out: &mut Vec<(String, Rect)>) {
    match shape {
        Shape::Text(t) => {
            let r = t.galley.rect.translate(t.pos.to_vec2());
            if area.contains_rect(r) && !t.galley.text().trim().is_empty() {
                out.push((t.galley.text().to_string(), r));
            }
        }
        Shape::Vec(v) => v.iter().for_each(|s| collect_text(s, area, out)),
        _ => {}
    }
}

fn dock(h: &Harness<'_, IptvizApp>) -> Dock {
    Dock::last(&h.ctx, GRAPH_DOCK).expect("the graph canvas was drawn")
}

#[test]
fn fitted_wide_table_names_its_builtin_chains_without_overlap() {
    let mut h = harness_with(&wide_table(), "names");
    h.run();
    let app = h.state();
    let scene = app.state.scene.as_ref().expect("scene");
    let view = dock(&h).graph;
    assert_eq!(app.last_canvas_rect, Some(view));
    // Fitted: every box in sight, and far too small for its own text.
    for n in &scene.nodes {
        let r = Rect::from_min_max(
            app.camera.to_screen(view, n.rect.min),
            app.camera.to_screen(view, n.rect.max),
        );
        assert!(
            view.contains_rect(r),
            "{} at {r:?} outside {view:?}",
            n.title
        );
    }
    assert!(
        app.camera.zoom * 13.0 < 8.0,
        "zoom {} is not a small picture",
        app.camera.zoom
    );
    let texts = texts_in(&h, view);
    for name in ["INPUT", "FORWARD", "OUTPUT"] {
        assert!(
            texts.iter().any(|(t, _)| t == name),
            "{name} not named on the canvas: {texts:?}"
        );
    }
    assert!(
        texts
            .iter()
            .filter(|(t, _)| t.starts_with("chain-"))
            .count()
            >= 3,
        "some user chains named too: {texts:?}"
    );
    for (i, (a, ra)) in texts.iter().enumerate() {
        for (b, rb) in &texts[i + 1..] {
            assert!(
                !ra.shrink(0.5).intersects(rb.shrink(0.5)),
                "{a} at {ra:?} overlaps {b} at {rb:?}"
            );
        }
    }
}

#[test]
fn legend_and_minimap_sit_beside_the_graph_and_fold_away() {
    let mut h = harness_with(&wide_table(), "dock");
    h.run();
    let fitted = dock(&h);
    let legend = fitted.legend.expect("legend shown");
    assert!(!legend.intersects(fitted.graph.shrink(0.5)));
    assert!(fitted.minimap.is_none(), "all in sight: no minimap");
    // The legend's text is in the legend strip, not on the graph.
    let in_legend = texts_in(&h, legend);
    assert!(
        in_legend.iter().any(|(t, _)| t == "user chain"),
        "{in_legend:?}"
    );

    // Zoomed in on the middle: the minimap opens below the graph, and no
    // box drawn on the graph reaches into it or the legend.
    {
        let app = h.state_mut();
        let b = app.state.scene.as_ref().unwrap().bounds;
        app.camera.zoom = 1.0;
        app.camera.center = b.center();
    }
    h.run();
    let zoomed = dock(&h);
    let map = zoomed.minimap.expect("minimap when zoomed in");
    assert!(!map.intersects(zoomed.graph.shrink(0.5)));
    let app = h.state();
    let scene = app.state.scene.as_ref().unwrap();
    let mut drawn = 0;
    for n in &scene.nodes {
        let r = Rect::from_min_max(
            app.camera.to_screen(zoomed.graph, n.rect.min),
            app.camera.to_screen(zoomed.graph, n.rect.max),
        )
        .intersect(zoomed.graph);
        if r.is_positive() {
            drawn += 1;
            assert!(!r.shrink(0.5).intersects(map) && !r.shrink(0.5).intersects(legend));
        }
    }
    assert!(drawn > 0, "some boxes in sight");
    // Clicking in the minimap moves the view there.
    let before = app.camera.center;
    let target = Pos2::new(map.left() + 12.0, map.center().y);
    h.hover_at(target);
    h.run();
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos: target,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: Default::default(),
        });
    }
    h.run();
    assert!(
        h.state().camera.center != before,
        "minimap click moves the camera"
    );

    // Fold the minimap: the graph takes its room back.
    h.get_by_label("Minimap").click();
    h.run();
    let folded = dock(&h);
    assert!(folded.minimap.is_none());
    assert!(folded.graph.height() > zoomed.graph.height());
    // And the legend.
    h.get_by_label("Legend").click();
    h.run();
    let bare = dock(&h);
    assert!(bare.legend.is_none());
    assert!(bare.graph.top() < folded.graph.top());
    assert_eq!(
        h.state().last_canvas_rect,
        Some(bare.graph),
        "tests and the app map the screen through the graph area"
    );
}

/// Zoomed out until chain names are wider than their boxes (ufw's
/// `ufw-after-logging-input` at half size), the names used to overflow onto
/// the neighbouring boxes and leave a third of them unnamed. Now every
/// chain box in sight is named: whole where the name fits its box, else
/// cut to the box with an ellipsis for its middle; no two names overlap.
#[test]
fn zoomed_out_every_chain_box_in_sight_is_named_within_its_box() {
    let mut text =
        String::from("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..12 {
        text.push_str(&format!(":a-rather-long-chain-name-{i:02} - [0:0]\n"));
    }
    for i in 0..12 {
        text.push_str(&format!(
            "-A INPUT -p tcp --dport {} -j a-rather-long-chain-name-{i:02}\n",
            2000 + i
        ));
        text.push_str(&format!(
            "-A a-rather-long-chain-name-{i:02} -s 10.1.{i}.0/24 -j ACCEPT\n"
        ));
    }
    text.push_str("COMMIT\n");
    let mut h = harness_with(&text, "cut-names");
    {
        let app = h.state_mut();
        let b = app.state.scene.as_ref().unwrap().bounds;
        app.camera.zoom = 0.5;
        app.camera.center = b.center();
    }
    h.run();
    let app = h.state();
    let scene = app.state.scene.as_ref().expect("scene");
    let view = dock(&h).graph;
    let texts = texts_in(&h, view);
    let mut named = 0;
    let mut cut = 0;
    for n in &scene.nodes {
        if !n.title.starts_with("a-rather-long") {
            continue;
        }
        let r = Rect::from_min_max(
            app.camera.to_screen(view, n.rect.min),
            app.camera.to_screen(view, n.rect.max),
        );
        if !view.contains_rect(r) {
            continue;
        }
        let label = texts
            .iter()
            .find(|(_, t)| r.contains(t.center()))
            .unwrap_or_else(|| panic!("{} at {r:?} is not named: {texts:?}", n.title));
        named += 1;
        if label.0 != n.title {
            cut += 1;
            let (head, tail) = label.0.split_once('…').expect("a cut name has an ellipsis");
            assert!(
                n.title.starts_with(head) && n.title.ends_with(tail) && !head.is_empty(),
                "{:?} is not a cut of {}",
                label.0,
                n.title
            );
            assert!(
                label.1.width() <= r.width() + 1.0,
                "{:?} ({:?}) is wider than its box {r:?}",
                label.0,
                label.1
            );
        }
    }
    assert!(named >= 6, "only {named} long-named boxes in sight");
    assert!(cut >= 6, "names wider than their boxes are cut: {texts:?}");
    for (i, (a, ra)) in texts.iter().enumerate() {
        for (b, rb) in &texts[i + 1..] {
            assert!(
                !ra.shrink(0.5).intersects(rb.shrink(0.5)),
                "{a} at {ra:?} overlaps {b} at {rb:?}"
            );
        }
    }
}
