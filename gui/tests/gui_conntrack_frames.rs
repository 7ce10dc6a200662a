//! What a frame of a live Conntrack tab costs the renderer: the window is
//! cleared to the panel colour and the tab's panels do not paint it again
//! (with Mesa's software renderer every filled panel is one more pass over
//! its pixels in every frame), its edges are not feathered, while the rows,
//! the charts and the side panel still show.

mod common;
use common::app_harness;

use std::path::PathBuf;

use egui::epaint::{RectShape, Shape};
use egui::{Color32, Rect};
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

/// The app as `--conntrack FILE --conntrack-live 1` starts it, with the
/// work on the test's thread.
fn live_harness(file: &str) -> Harness<'static, IptvizApp> {
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            sync: true,
            conntrack: Some(corpus(file)),
            conntrack_live: Some(1.0),
            ..Default::default()
        },
    );
    app_harness(app, 1280.0, 800.0)
}

/// Filled rectangles among `shape`, with the clip rectangle they are drawn in.
fn filled_rects<'a>(shape: &'a Shape, clip: Rect, out: &mut Vec<(&'a RectShape, Rect)>) {
    match shape {
        Shape::Rect(r) if r.fill != Color32::TRANSPARENT => out.push((r, clip)),
        Shape::Vec(v) => v.iter().for_each(|s| filled_rects(s, clip, out)),
        _ => {}
    }
}

#[test]
fn conntrack_panels_do_not_paint_the_window_over_again() {
    let mut h = live_harness("proc-nf_conntrack-acct-home-router.txt");
    h.run();
    h.run();
    assert_eq!(h.state().state.view, View::Conntrack);
    assert_eq!(h.state().state.conntrack.readings, 1, "one live reading");

    // The content is still there: rows, the chart of the live reading,
    // the side panel's bars and the NAT list.
    assert!(h.get_all_by_label("8.8.8.8:53").next().is_some(), "a row");
    h.get_by_label_contains("entries: ");
    h.get_by_label("Over time");
    h.get_by_label("By protocol");
    h.get_by_label_contains(
        "tcp 172.25.9.60:53884 -> 59.110.71.120:443 (source as 42.191.180.28:53884)",
    );

    // The panels leave their background to the clear colour ...
    let visuals = h.ctx.global_style().visuals.clone();
    let clear = eframe::App::clear_color(h.state(), &visuals);
    assert_eq!(clear, visuals.panel_fill.to_normalized_gamma_f32());

    // ... so what the frame fills is the widgets, not the window again.
    let screen = Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1280.0, 800.0));
    // The test harness draws the app inside a filled frame of its own,
    // 8 points in from the edges: that one is not the app's.
    let harness_frame = screen.shrink(8.0);
    let mut rects = Vec::new();
    for c in &h.output().shapes {
        filled_rects(&c.shape, c.clip_rect, &mut rects);
    }
    rects.retain(|(r, _)| r.rect != harness_frame);
    let area: f32 = rects
        .iter()
        .map(|(r, clip)| r.rect.intersect(*clip).intersect(screen))
        .filter(|r| r.is_positive())
        .map(|r| r.area())
        .sum();
    let share = area / screen.area();
    assert!(
        share < 0.35,
        "filled rectangles cover {:.0}% of the window (the panels' backgrounds \
         alone covered all of it)",
        share * 100.0
    );
    // No single rectangle the size of a panel.
    let biggest = rects
        .iter()
        .map(|(r, clip)| r.rect.intersect(*clip).intersect(screen))
        .filter(|r| r.is_positive())
        .map(|r| r.area())
        .fold(0.0f32, f32::max);
    assert!(
        biggest < 0.05 * screen.area(),
        "a filled rectangle of {biggest} square points"
    );

    // Nor the anti-aliasing seams along every edge; the graph keeps them.
    assert!(!h.ctx.tessellation_options(|o| o.feathering));
    h.get_by_label("Graph").click();
    h.run();
    assert_eq!(h.state().state.view, View::Graph);
    assert!(h.ctx.tessellation_options(|o| o.feathering));
}

/// Text shapes among `shape`, with the clip rectangle they are drawn in.
fn texts<'a>(shape: &'a Shape, clip: Rect, out: &mut Vec<(&'a egui::epaint::TextShape, Rect)>) {
    match shape {
        Shape::Text(t) => out.push((t, clip)),
        Shape::Vec(v) => v.iter().for_each(|s| texts(s, clip, out)),
        _ => {}
    }
}

#[test]
fn entries_table_rows_share_one_clip_and_cut_long_text() {
    // A row with IPv6 addresses too long for their columns.
    let mut text = std::fs::read_to_string(corpus("proc-nf_conntrack-acct-home-router.txt"))
        .expect("corpus sample");
    text.insert_str(
        0,
        "ipv6     10 tcp      6 431999 ESTABLISHED src=2001:0db8:1234:5678:9abc:def0:1234:5678 \
         dst=2001:0db8:aaaa:bbbb:cccc:dddd:eeee:ffff sport=51234 dport=443 packets=3 bytes=180 \
         src=2001:0db8:aaaa:bbbb:cccc:dddd:eeee:ffff dst=2001:0db8:1234:5678:9abc:def0:1234:5678 \
         sport=443 dport=51234 packets=2 bytes=120 [ASSURED] mark=0 zone=0 use=2\n",
    );
    let path = std::env::temp_dir().join(format!("iptviz-ct-cells-{}.txt", std::process::id()));
    std::fs::write(&path, text).expect("temp file");
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            sync: true,
            conntrack: Some(path.display().to_string()),
            conntrack_live: Some(1.0),
            ..Default::default()
        },
    );
    let mut h = app_harness(app, 1280.0, 800.0);
    h.run();
    h.run();
    let _ = std::fs::remove_file(&path);
    assert_eq!(h.state().state.conntrack.readings, 1, "one live reading");

    let mut all = Vec::new();
    for c in &h.output().shapes {
        texts(&c.shape, c.clip_rect, &mut all);
    }
    // The endpoints in the rows: one clip rectangle for all of them (a
    // clip per cell made a draw call per cell).
    let cells: Vec<_> = all
        .iter()
        .filter(|(t, _)| {
            let s = t.galley.text();
            !s.contains(' ') && (s.ends_with(":443") || s == "8.8.8.8:53")
        })
        .collect();
    assert!(cells.len() >= 10, "rows drawn: {}", cells.len());
    let clips: std::collections::HashSet<[u32; 4]> = cells
        .iter()
        .map(|(_, c)| [c.min.x, c.min.y, c.max.x, c.max.y].map(f32::to_bits))
        .collect();
    assert_eq!(clips.len(), 1, "cells clipped one by one: {clips:?}");

    // The long IPv6 endpoints are cut with an ellipsis inside their
    // column instead of running into the next one.
    let v6: Vec<_> = all
        .iter()
        .filter(|(t, _)| {
            t.galley.text().starts_with("[2001:db8") || t.galley.text().starts_with("2001:db8")
        })
        .collect();
    assert!(!v6.is_empty(), "the IPv6 row is shown");
    for (t, _) in v6 {
        assert!(
            t.galley
                .rows
                .iter()
                .flat_map(|r| r.glyphs.iter())
                .any(|g| g.chr == '…'),
            "{:?} at {:?} width {} not cut",
            t.galley.text(),
            t.pos,
            t.galley.rect.width()
        );
        assert!(t.galley.rect.width() <= 136.0 + 0.5, "{:?}", t.galley.rect);
    }
}
