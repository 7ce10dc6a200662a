//! The far-out picture and the minimap are images made on the CPU and kept
//! between frames (the software renderer draws one textured rectangle
//! instead of thousands of small shapes): panning reuses the far picture
//! until the view leaves it, zooming shows it stretched until the zoom rests,
//! the picture is opaque so the canvas paints no background under it, and
//! the minimap's dots are made once.

mod common;
use common::app_harness;

use egui::epaint::Shape;
use egui::{Rect, TextureId};
use egui_kittest::Harness;
use iptviz_gui::views::canvas::{GRAPH_DOCK, PicturesMade};
use iptviz_gui::views::dock::Dock;
use iptviz_gui::{IptvizApp, Options, settings::Settings};

/// A filter table of 300 user chains under the three built-in chains.
fn wide_table(cross: bool) -> String {
    let mut text =
        String::from("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..300 {
        text.push_str(&format!(":chain-{i:03} - [0:0]\n"));
    }
    for i in 0..300 {
        let from = ["INPUT", "FORWARD", "OUTPUT"][i / 100];
        text.push_str(&format!(
            "-A {from} -p tcp --dport {} -j chain-{i:03}\n",
            1000 + i
        ));
        text.push_str(&format!(
            "-A chain-{i:03} -s 10.0.{}.0/24 -j ACCEPT\n",
            i % 250
        ));
        if cross && i % 3 == 0 {
            // Long edges across the picture.
            text.push_str(&format!(
                "-A chain-{i:03} -p udp -j chain-{:03}\n",
                (i + 151) % 300
            ));
        }
    }
    text.push_str("COMMIT\n");
    text
}

fn harness() -> Harness<'static, IptvizApp> {
    harness_with(false)
}

/// With `expand_all`, every group of like chains open (`--expand-all`).
fn harness_with(expand_all: bool) -> Harness<'static, IptvizApp> {
    let path = std::env::temp_dir().join(format!(
        "iptviz-gui-far-{}-{expand_all}.rules",
        std::process::id()
    ));
    std::fs::write(&path, wide_table(expand_all)).expect("temp file");
    let app = IptvizApp::new(
        Settings::default(),
        Options {
            file: Some(path.display().to_string()),
            sync: true,
            expand_all,
            ..Default::default()
        },
    );
    let mut h = app_harness(app, 1280.0, 800.0);
    h.run();
    let _ = std::fs::remove_file(&path);
    h
}

fn graph(h: &Harness<'_, IptvizApp>) -> Rect {
    Dock::last(&h.ctx, GRAPH_DOCK)
        .expect("the graph canvas was drawn")
        .graph
}

/// Images painted in the last frame: texture and screen rectangle.
fn images(h: &Harness<'_, IptvizApp>) -> Vec<(TextureId, Rect)> {
    let mut out = Vec::new();
    for c in &h.output().shapes {
        if let Shape::Mesh(m) = &c.shape
            && m.texture_id != TextureId::default()
        {
            out.push((m.texture_id, m.calc_bounds()));
        }
    }
    out
}

fn made(h: &Harness<'_, IptvizApp>) -> PicturesMade {
    PicturesMade::get(&h.ctx)
}

/// The image painted over the whole graph area `view` in the last frame.
fn picture_over(h: &Harness<'_, IptvizApp>, view: Rect) -> Option<(TextureId, Rect)> {
    images(h).into_iter().find(|(_, r)| r.contains_rect(view))
}

/// The camera at `zoom` on the point `centre` picks in the scene, settled
/// (two frames drawn).
fn look_at(
    h: &mut Harness<'_, IptvizApp>,
    zoom: f32,
    centre: impl FnOnce(&iptviz_gui::scene::Scene) -> egui::Pos2,
) {
    let app = h.state_mut();
    let at = centre(app.state.scene.as_ref().expect("scene"));
    app.camera.zoom = zoom;
    app.camera.center = at;
    h.step();
    h.step();
}

#[test]
fn far_picture_is_kept_while_panning_and_covers_the_canvas() {
    let mut h = harness();
    look_at(&mut h, 0.25, |s| s.bounds.left_center());
    let view = graph(&h);
    assert!(
        h.state().camera.visible(view).width()
            < h.state().state.scene.as_ref().unwrap().bounds.width(),
        "part of the graph in sight"
    );
    let (far, _) = picture_over(&h, view).expect("one picture covers the graph area");
    // No background rectangle of its own under the (opaque) picture.
    let background = h.ctx.style_of(h.ctx.theme()).visuals.extreme_bg_color;
    let under = |h: &Harness<'_, IptvizApp>| {
        h.output().shapes.iter().any(|c| match &c.shape {
            Shape::Rect(r) => r.fill == background && r.rect.intersects(view.shrink(1.0)),
            _ => false,
        })
    };
    assert!(!under(&h), "no background painted under the far picture");

    // The first pan makes it once more with room around the view; the
    // next ones move it without making it again.
    h.state_mut().camera.center.x += 30.0 / 0.25;
    h.step();
    let (_, before) = picture_over(&h, view).expect("still one picture over the graph area");
    let n = made(&h).far;
    for _ in 0..5 {
        h.state_mut().camera.center.x += 20.0 / 0.25;
        h.step();
    }
    assert_eq!(made(&h).far, n, "small pans do not make the picture again");
    let (id, after) = picture_over(&h, view).expect("still one picture over the graph area");
    assert_eq!(id, far);
    assert!(
        (after.min.x - (before.min.x - 100.0)).abs() < 0.01 && after.min.y == before.min.y,
        "moved with the camera: {before:?} -> {after:?}"
    );
    // Far enough, and it is made again, still covering the view.
    h.state_mut().camera.center.x += 400.0 / 0.25;
    h.step();
    assert_eq!(made(&h).far, n + 1, "the view left the picture");
    assert!(picture_over(&h, view).is_some());

    // A new zoom shows it stretched for a frame, then makes it again at
    // that zoom.
    let scaled = made(&h).far_scaled;
    h.state_mut().camera.zoom = 0.2;
    h.step();
    assert_eq!(made(&h).far, n + 1, "zooming stretches the picture");
    assert_eq!(made(&h).far_scaled, scaled + 1);
    h.step();
    assert_eq!(
        made(&h).far,
        n + 2,
        "a resting zoom makes the picture again"
    );
    assert_eq!(made(&h).far_scaled, scaled + 1);
    assert!(!under(&h));

    // Closer in there is no far picture, and the background is painted.
    h.state_mut().camera.zoom = 0.5;
    h.step();
    assert!(under(&h), "background under the boxes");
}

#[test]
fn zooming_scales_the_far_picture_and_a_settled_zoom_draws_it_sharp() {
    let mut h = harness_with(true);
    look_at(&mut h, 0.28, |s| s.bounds.center());
    let view = graph(&h);
    let start = made(&h);
    // Zooming out, then in, 4% a frame as a wheel does, around the centre.
    let mut frames = 0;
    for factor in [0.96f32; 20].into_iter().chain([1.04f32; 20]) {
        h.state_mut().camera.zoom *= factor;
        h.step();
        frames += 1;
        let covering = images(&h)
            .into_iter()
            .filter(|(_, r)| r.contains_rect(view))
            .count();
        assert_eq!(covering, 1, "frame {frames}: one picture covers the graph");
    }
    let during = made(&h);
    let drawn = during.far - start.far;
    assert!(
        drawn * 3 <= frames,
        "{drawn} pictures drawn in {frames} frames of zooming"
    );
    assert!(
        during.far_scaled - start.far_scaled + drawn >= frames,
        "every other frame stretched a kept picture: {during:?}"
    );
    // At rest: drawn once more at the zoom it rests at, texel for pixel.
    h.step();
    let rest = made(&h);
    assert_eq!(rest.far_scaled, during.far_scaled, "no stretch at rest");
    assert!(rest.far <= during.far + 1);
    let (_, r) = picture_over(&h, view).expect("one picture over the graph area");
    let ppp = h.ctx.pixels_per_point();
    for v in [r.min.x, r.min.y, r.width(), r.height()] {
        assert!(
            ((v * ppp) - (v * ppp).round()).abs() < 0.01,
            "sharp picture on whole pixels: {r:?}"
        );
    }
    // And kept while nothing moves.
    h.step();
    h.step();
    assert_eq!(made(&h), rest);
}

#[test]
fn minimap_dots_are_one_image_made_once() {
    let mut h = harness();
    look_at(&mut h, 1.0, |s| s.bounds.center());
    let map = Dock::last(&h.ctx, GRAPH_DOCK)
        .and_then(|d| d.minimap)
        .expect("minimap when zoomed in");
    assert!(
        images(&h).iter().any(|(_, r)| map.contains_rect(*r)),
        "the minimap's dots are an image"
    );
    let small_rects = h
        .output()
        .shapes
        .iter()
        .filter(|c| {
            matches!(&c.shape, Shape::Rect(r) if map.contains_rect(r.rect) && r.rect.width() < 10.0)
        })
        .count();
    assert_eq!(small_rects, 0, "no dot drawn as a shape of its own");
    // Panning moves the outline, not the dots.
    let n = made(&h).minimap;
    assert!(n >= 1);
    for _ in 0..3 {
        h.state_mut().camera.center.x += 200.0;
        h.step();
    }
    assert_eq!(made(&h).minimap, n, "the dots are kept");
}

/// Line shapes among `shape`: their points.
fn paths<'a>(shape: &'a Shape, out: &mut Vec<&'a [egui::Pos2]>) {
    match shape {
        Shape::Path(p) => out.push(&p.points),
        Shape::Vec(v) => v.iter().for_each(|s| paths(s, out)),
        _ => {}
    }
}

#[test]
fn edges_are_drawn_only_where_they_are_in_sight() {
    let mut h = harness();
    // Close in on the built-in chains: their edges to the 300 chains fan
    // out far past the sides of the view.
    look_at(&mut h, 1.0, |scene| {
        let input = scene
            .nodes
            .iter()
            .find(|n| n.title == "INPUT")
            .expect("INPUT box");
        input.rect.center_bottom() + egui::vec2(0.0, 60.0)
    });
    let view = graph(&h);
    let mut lines = Vec::new();
    for c in &h.output().shapes {
        paths(&c.shape, &mut lines);
    }
    let near = view.expand(12.0);
    // The edges: lines that reach the graph (the rest is the window's
    // widgets).
    lines.retain(|p| {
        p.windows(2)
            .any(|w| Rect::from_two_pos(w[0], w[1]).intersects(view))
    });
    assert!(lines.len() > 10, "edges drawn: {}", lines.len());
    for points in lines {
        for w in points.windows(2) {
            assert!(
                Rect::from_two_pos(w[0], w[1]).intersects(near),
                "a segment {w:?} out of sight of {view:?} was drawn"
            );
        }
    }
}

#[test]
fn many_edges_in_sight_draw_those_passing_through_thin() {
    let mut h = harness_with(true);
    {
        // Where the most edges cross a view of 1:1 (the view's size as
        // drawn before).
        let view = graph(&h);
        let app = h.state_mut();
        let scene = app.state.scene.as_ref().expect("scene");
        let b = scene.bounds;
        let mut best = (0, b.center());
        for i in 0..=40 {
            for j in 0..=20 {
                let c =
                    b.min + egui::vec2(b.width() * i as f32 / 40.0, b.height() * j as f32 / 20.0);
                let area = Rect::from_center_size(c, view.size());
                let n = scene
                    .edges
                    .iter()
                    .filter(|e| Rect::from_points(&e.points).intersects(area))
                    .count();
                if n > best.0 {
                    best = (n, c);
                }
            }
        }
        app.camera.zoom = 1.0;
        app.camera.center = best.1;
    }
    h.step();
    h.step();
    let view = graph(&h);
    let app = h.state();
    let scene = app.state.scene.as_ref().unwrap();
    let in_sight = app.camera.visible(view);
    let crossing = |e: &iptviz_gui::scene::SceneEdge| {
        let r = Rect::from_points(&e.points);
        r.intersects(in_sight)
    };
    let shown = scene.edges.iter().filter(|e| crossing(e)).count();
    let with_end = scene
        .edges
        .iter()
        .filter(|e| crossing(e))
        .filter(|e| {
            e.points.first().is_some_and(|p| in_sight.contains(*p))
                || e.points.last().is_some_and(|p| in_sight.contains(*p))
        })
        .count();
    assert!(shown > 100, "many edges in sight: {shown}");
    assert!(
        with_end < shown,
        "some only pass through: {with_end} of {shown}"
    );
    let mut lines = Vec::new();
    for c in &h.output().shapes {
        paths(&c.shape, &mut lines);
    }
    lines.retain(|p| {
        p.windows(2)
            .any(|w| Rect::from_two_pos(w[0], w[1]).intersects(view))
    });
    assert!(
        lines.len() <= 2 * with_end,
        "{} full lines for {with_end} edges with an end in sight",
        lines.len()
    );
    // The rest are one mesh of thin quads over the graph.
    let thin = h.output().shapes.iter().any(|c| match &c.shape {
        Shape::Mesh(m) => {
            m.texture_id == egui::TextureId::default()
                && m.indices.len() >= 6 * (shown - with_end) / 2
                && m.calc_bounds().intersects(view)
        }
        _ => false,
    });
    assert!(thin, "the edges passing through are drawn thin");
}
