//! The graph canvas: pan, zoom, select, hover, expand groups, minimap.
//!
//! Speed: only boxes and edges that intersect the visible area are painted;
//! when zoomed out, text, arrowheads and curves are dropped, and tiny boxes
//! become plain rectangles.

use egui::{
    Align2, Color32, CornerRadius, FontId, Pos2, Rect, Sense, Shape, Stroke, StrokeKind, Ui, Vec2,
    pos2, vec2,
};

use super::Action;
use crate::palette;
use crate::scene::{NodeKind, NodeStyle, Scene};
use crate::state::{AppState, ChainRef};

/// Where the canvas looks: world point at the centre, and pixels per unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// World position shown at the centre of the canvas.
    pub center: Pos2,
    /// Screen points per world unit.
    pub zoom: f32,
}

impl Default for Camera {
    fn default() -> Self {
        Camera {
            center: Pos2::ZERO,
            zoom: 1.0,
        }
    }
}

/// Zoom limits.
pub const MIN_ZOOM: f32 = 0.002;
/// Zoom limits.
pub const MAX_ZOOM: f32 = 4.0;
/// Fitting never goes below this when the graph's height allows it.
const READABLE_ZOOM: f32 = 0.6;
/// Below this zoom, no text is drawn.
const TEXT_ZOOM: f32 = 0.4;
/// Below this zoom, boxes are plain fills.
const BOX_ZOOM: f32 = 0.15;
/// More visible edges than this are drawn as bundles ([`crate::scene::Fan`]).
const EDGE_BUDGET: usize = 600;

impl Camera {
    /// World to screen.
    pub fn to_screen(&self, view: Rect, p: Pos2) -> Pos2 {
        view.center() + (p - self.center) * self.zoom
    }

    /// Screen to world.
    pub fn to_world(&self, view: Rect, p: Pos2) -> Pos2 {
        self.center + (p - view.center()) / self.zoom
    }

    /// The world rectangle visible in `view`.
    pub fn visible(&self, view: Rect) -> Rect {
        Rect::from_min_max(self.to_world(view, view.min), self.to_world(view, view.max))
    }

    /// Shows all of `bounds` with a margin; never zooms in past 1:1.
    pub fn fit(&mut self, bounds: Rect, view: Rect) {
        let margin = 40.0;
        let sx = (view.width() - margin).max(10.0) / bounds.width().max(1.0);
        let sy = (view.height() - margin).max(10.0) / bounds.height().max(1.0);
        self.zoom = sx.min(sy).clamp(MIN_ZOOM, 1.0);
        self.center = bounds.center();
        // A long, flat graph (kube-proxy with its groups folded) would
        // shrink below readable text: keep it readable, show its start
        // (the built-in chains) and leave the rest to panning.
        if self.zoom < READABLE_ZOOM && sy >= READABLE_ZOOM {
            self.zoom = READABLE_ZOOM;
            self.center.x = bounds.left() + (view.width() - margin) / 2.0 / self.zoom;
        }
    }

    /// Zooms by `factor` keeping the world point under `anchor` in place.
    pub fn zoom_at(&mut self, view: Rect, anchor: Pos2, factor: f32) {
        let before = self.to_world(view, anchor);
        self.zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        let after = self.to_world(view, anchor);
        self.center += before - after;
    }
}

/// Draws the canvas for the current table and returns what was asked.
pub fn show(ui: &mut Ui, state: &AppState, cam: &mut Camera) -> Vec<Action> {
    let mut actions = Vec::new();
    let (view, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let dark = ui.visuals().dark_mode;
    let painter = ui.painter_at(view);
    painter.rect_filled(view, 0.0, ui.visuals().extreme_bg_color);

    let Some(scene) = state.scene.as_deref() else {
        painter.text(
            view.center(),
            Align2::CENTER_CENTER,
            "Nothing loaded",
            FontId::proportional(16.0),
            ui.visuals().weak_text_color(),
        );
        return actions;
    };
    if state.fit_requested {
        cam.fit(scene.bounds, view);
    }

    // Input: drag pans, wheel and pinch zoom around the pointer.
    if response.dragged() {
        cam.center -= response.drag_delta() / cam.zoom;
    }
    if response.hovered() {
        let (scroll, pinch, pointer) =
            ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta(), i.pointer.hover_pos()));
        let factor = pinch * (scroll.y * 0.002).exp();
        if let Some(p) = pointer
            && (factor - 1.0).abs() > 1e-4
        {
            cam.zoom_at(view, p, factor);
        }
        if scroll.x != 0.0 {
            cam.center.x -= scroll.x / cam.zoom;
        }
    }

    let visible = cam.visible(view).expand(4.0 / cam.zoom);
    let hovered = response
        .hover_pos()
        .and_then(|p| scene.node_at(cam.to_world(view, p)));
    let selected = state
        .selected
        .filter(|s| s.table == state.table)
        .and_then(|s| scene.node_for_chain(s.chain));
    let table_name = state
        .doc
        .as_ref()
        .and_then(|d| d.parsed.ruleset.tables.get(state.table))
        .map(|t| t.name.to_string())
        .unwrap_or_default();

    paint_edges(&painter, scene, cam, view, visible, dark, selected);
    paint_nodes(
        &painter,
        scene,
        state,
        cam,
        view,
        visible,
        dark,
        &table_name,
        selected,
        hovered,
    );
    super::trace::paint_path(&painter, scene, state, cam, view, visible, dark);

    if let Some(n) = hovered {
        let node = &scene.nodes[n];
        response.clone().on_hover_ui_at_pointer(|ui| {
            ui.strong(&node.title);
            ui.label(&node.subtitle);
            if let NodeKind::Chain(ci) = node.kind
                && let Some(doc) = &state.doc
                && let Some(t) = doc.parsed.ruleset.tables.get(state.table)
                && let Some(c) = t.chains.get(ci as usize)
            {
                let refs = doc.graphs[state.table].referenced[ci as usize];
                ui.label(format!("jumped to from {refs} rule(s)"));
                for r in c.rules.iter().take(6) {
                    ui.monospace(crate::state::short(&r.text, 100));
                }
                if c.rules.len() > 6 {
                    ui.weak(format!("… {} more", c.rules.len() - 6));
                }
            }
        });
    }
    if hovered.is_none()
        && let Some(p) = response.hover_pos()
        && let Some(e) = edge_at(scene, cam, view, visible, p)
    {
        let edge = &scene.edges[e];
        response.clone().on_hover_ui_at_pointer(|ui| {
            edge_tooltip(ui, state, scene, edge);
        });
    }
    if response.clicked()
        && let Some(n) = hovered
        && let NodeKind::Chain(ci) = scene.nodes[n].kind
    {
        actions.push(Action::Select(ChainRef {
            table: state.table,
            chain: ci as usize,
        }));
    }
    if response.double_clicked()
        && let Some(n) = hovered
    {
        match scene.nodes[n].kind {
            NodeKind::Target => {}
            NodeKind::Group(g) => actions.push(Action::ToggleGroup(g)),
            NodeKind::Chain(ci) => {
                // Double-click on a member of an open group folds it again.
                if let Some(doc) = &state.doc
                    && let Some(Some(g)) = doc.graphs[state.table].group_of.get(ci as usize)
                {
                    actions.push(Action::ToggleGroup(*g));
                }
            }
        }
    }

    legend(ui, &painter, view, dark);
    minimap(ui, scene, cam, view, dark);
    zoom_label(&painter, view, cam, ui);
    actions
}

/// Control points of a layered-layout edge (screen space). An edge that
/// skips columns and stays on its row would run through the boxes between:
/// it dips into the gap between rows instead.
fn layered_curve(a: Pos2, b: Pos2, zoom: f32, dip: bool) -> [Pos2; 4] {
    let dx = (b.x - a.x) * 0.5;
    let dip = if dip {
        // Bézier midpoint sits at 3/4 of the control offset: 28 units,
        // inside the 16-unit gap below a 40-unit box.
        vec2(0.0, 37.0 * zoom)
    } else {
        Vec2::ZERO
    };
    [a, a + vec2(dx, 0.0) + dip, b - vec2(dx, 0.0) + dip, b]
}

/// Screen points along an edge as drawn (curves sampled).
fn edge_polyline(e: &crate::scene::SceneEdge, cam: &Camera, view: Rect) -> Vec<Pos2> {
    let sp: Vec<Pos2> = e.points.iter().map(|&p| cam.to_screen(view, p)).collect();
    let bezier = |a: Pos2, b: Pos2, c: Pos2, d: Pos2| {
        (0..=16).map(move |i| {
            let t = i as f32 / 16.0;
            let u = 1.0 - t;
            (a.to_vec2() * (u * u * u)
                + b.to_vec2() * (3.0 * u * u * t)
                + c.to_vec2() * (3.0 * u * t * t)
                + d.to_vec2() * (t * t * t))
                .to_pos2()
        })
    };
    if e.curved && sp.len() >= 4 {
        sp.windows(4)
            .step_by(3)
            .flat_map(|s| bezier(s[0], s[1], s[2], s[3]))
            .collect()
    } else if sp.len() == 2 && sp[1].x - sp[0].x > 20.0 {
        let [a, c1, c2, b] = layered_curve(sp[0], sp[1], cam.zoom, e.dip);
        bezier(a, c1, c2, b).collect()
    } else {
        sp
    }
}

/// The edge under the pointer (within 5 points), when edges are drawn one
/// by one.
fn edge_at(scene: &Scene, cam: &Camera, view: Rect, visible: Rect, p: Pos2) -> Option<usize> {
    if cam.zoom < TEXT_ZOOM {
        return None;
    }
    let world = cam.to_world(view, p);
    let slack = 6.0 / cam.zoom;
    let mut best: Option<(f32, usize)> = None;
    let mut seen = 0;
    for (i, e) in scene.edges.iter().enumerate() {
        let bbox = e
            .points
            .iter()
            .fold(Rect::NOTHING, |r, &q| r.union(Rect::from_min_max(q, q)));
        if !bbox.intersects(visible) {
            continue;
        }
        seen += 1;
        if seen > EDGE_BUDGET {
            return None;
        }
        if !bbox.expand(slack).contains(world) {
            continue;
        }
        let line = edge_polyline(e, cam, view);
        let d = line
            .windows(2)
            .map(|w| segment_distance(p, w[0], w[1]))
            .fold(f32::MAX, f32::min);
        if d <= 5.0 && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, i));
        }
    }
    best.map(|(_, i)| i)
}

fn segment_distance(p: Pos2, a: Pos2, b: Pos2) -> f32 {
    let ab = b - a;
    let t = if ab.length_sq() > 0.0 {
        ((p - a).dot(ab) / ab.length_sq()).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (a + ab * t - p).length()
}

/// The rules behind an edge: who jumps where, with counters.
fn edge_tooltip(ui: &mut Ui, state: &AppState, scene: &Scene, edge: &crate::scene::SceneEdge) {
    let name = |i: u32| scene.nodes.get(i as usize).map_or("", |n| n.title.as_str());
    let kind = if edge.ret {
        "returns to"
    } else if edge.goto {
        "goes to (-g)"
    } else {
        "jumps to"
    };
    ui.strong(format!("{} {kind} {}", name(edge.from), name(edge.to)));
    ui.label(format!("{} rule(s), {} packets", edge.rules, edge.packets));
    let (Some(doc), Some(from)) = (&state.doc, scene.nodes.get(edge.from as usize)) else {
        return;
    };
    let NodeKind::Chain(ci) = from.kind else {
        return;
    };
    let Some(table) = doc.parsed.ruleset.tables.get(state.table) else {
        return;
    };
    let Some(chain) = table.chains.get(ci as usize) else {
        return;
    };
    let targets: Vec<&str> = match scene.nodes.get(edge.to as usize).map(|n| n.kind) {
        Some(NodeKind::Chain(t)) => table
            .chains
            .get(t as usize)
            .map(|c| vec![c.name.as_str()])
            .unwrap_or_default(),
        Some(NodeKind::Group(g)) => doc.graphs[state.table]
            .groups
            .get(g as usize)
            .map(|grp| {
                grp.members
                    .iter()
                    .filter_map(|&m| table.chains.get(m as usize).map(|c| c.name.as_str()))
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![name(edge.to)],
    };
    let rules: Vec<_> = chain
        .rules
        .iter()
        .filter(|r| {
            r.target
                .as_ref()
                .is_some_and(|t| targets.contains(&t.name.as_str()))
        })
        .collect();
    for r in rules.iter().take(6) {
        ui.monospace(crate::state::short(&r.text, 110));
    }
    if rules.len() > 6 {
        ui.weak(format!("… {} more", rules.len() - 6));
    }
}

fn paint_edges(
    painter: &egui::Painter,
    scene: &Scene,
    cam: &Camera,
    view: Rect,
    visible: Rect,
    dark: bool,
    selected: Option<usize>,
) {
    let detailed = cam.zoom >= TEXT_ZOOM;
    let in_view = |e: &&crate::scene::SceneEdge| match (e.points.first(), e.points.last()) {
        (Some(&a), Some(&b)) => Rect::from_two_pos(a, b).intersects(visible),
        _ => false,
    };
    if scene
        .edges
        .iter()
        .filter(in_view)
        .nth(EDGE_BUDGET)
        .is_some()
    {
        paint_fans(painter, scene, cam, view, visible, dark);
        return;
    }
    // Curves cost tessellation time; past a couple of hundred, draw lines.
    let few_edges = scene.edges.iter().filter(in_view).nth(200).is_none();
    let mut lines: Vec<Shape> = Vec::new();
    for e in &scene.edges {
        if e.points.len() < 2 {
            continue;
        }
        let bbox = e
            .points
            .iter()
            .fold(Rect::NOTHING, |r, &p| r.union(Rect::from_min_max(p, p)));
        if !bbox.intersects(visible) {
            continue;
        }
        let touches_selected = selected.is_some_and(|s| s == e.from as usize || s == e.to as usize);
        let mut colour = palette::edge_colour(e.heat, dark);
        if touches_selected {
            colour = palette::selected_colour(dark);
        }
        let width = if cam.zoom < BOX_ZOOM {
            1.0
        } else {
            1.0 + 3.0 * e.heat + if touches_selected { 1.0 } else { 0.0 }
        };
        let stroke = Stroke::new(width, colour);
        let sp: Vec<Pos2> = e.points.iter().map(|&p| cam.to_screen(view, p)).collect();
        let (sa, sb) = (sp[0], sp[sp.len() - 1]);
        let dir;
        if e.curved && sp.len() >= 4 {
            // The library's Bézier chain: p0 c1 c2 p1 c1 c2 p2 ...
            let mut flat: Vec<Pos2> = Vec::new();
            for seg in sp.windows(4).step_by(3) {
                let curve = egui::epaint::CubicBezierShape::from_points_stroke(
                    [seg[0], seg[1], seg[2], seg[3]],
                    false,
                    Color32::TRANSPARENT,
                    stroke,
                );
                if (e.goto || e.ret) && detailed {
                    flat.extend(curve.flatten(Some(0.5)));
                } else {
                    lines.push(Shape::CubicBezier(curve));
                }
            }
            if !flat.is_empty() {
                let (dash, gap) = if e.ret { (2.0, 3.0) } else { (6.0, 4.0) };
                lines.extend(Shape::dashed_line(&flat, stroke, dash, gap));
            }
            dir = (sb - sp[sp.len() - 2]).normalized();
        } else if sp.len() > 2 {
            if (e.goto || e.ret) && detailed {
                let (dash, gap) = if e.ret { (2.0, 3.0) } else { (6.0, 4.0) };
                lines.extend(Shape::dashed_line(&sp, stroke, dash, gap));
            } else {
                lines.push(Shape::line(sp.clone(), stroke));
            }
            dir = (sb - sp[sp.len() - 2]).normalized();
        } else if e.goto && detailed {
            lines.extend(Shape::dashed_line(&[sa, sb], stroke, 6.0, 4.0));
            dir = (sb - sa).normalized();
        } else if detailed && few_edges && (sb.x - sa.x) > 20.0 {
            lines.push(Shape::CubicBezier(
                egui::epaint::CubicBezierShape::from_points_stroke(
                    layered_curve(sa, sb, cam.zoom, e.dip),
                    false,
                    Color32::TRANSPARENT,
                    stroke,
                ),
            ));
            dir = vec2(1.0, 0.0);
        } else {
            lines.push(Shape::line_segment([sa, sb], stroke));
            dir = (sb - sa).normalized();
        }
        if detailed && dir.is_finite() {
            let size = 6.0 + width;
            let back = sb - dir * size;
            let side = vec2(-dir.y, dir.x) * size * 0.5;
            lines.push(Shape::convex_polygon(
                vec![sb, back + side, back - side],
                colour,
                Stroke::NONE,
            ));
        }
    }
    painter.extend(lines);
}

/// Too many edges to draw one by one: one wedge per source box and target
/// column instead.
fn paint_fans(
    painter: &egui::Painter,
    scene: &Scene,
    cam: &Camera,
    view: Rect,
    visible: Rect,
    dark: bool,
) {
    let fan_box = |f: &crate::scene::Fan| {
        Rect::from_min_max(
            pos2(f.from.x, f.from.y.min(f.y0)),
            pos2(f.x, f.from.y.max(f.y1)),
        )
    };
    if scene
        .fans
        .iter()
        .filter(|f| fan_box(f).intersects(visible))
        .nth(EDGE_BUDGET)
        .is_some()
    {
        paint_bundles(painter, scene, cam, view, visible, dark);
        return;
    }
    let mut shapes = Vec::new();
    let mut labels: Vec<(Pos2, String)> = Vec::new();
    let few = scene
        .fans
        .iter()
        .filter(|f| fan_box(f).intersects(visible))
        .nth(100)
        .is_none();
    for f in &scene.fans {
        let bbox = Rect::from_min_max(
            pos2(f.from.x, f.from.y.min(f.y0)),
            pos2(f.x, f.from.y.max(f.y1)),
        );
        if !bbox.intersects(visible) {
            continue;
        }
        let colour = palette::edge_colour(f.heat, dark);
        let a = cam.to_screen(view, f.from);
        let top = cam.to_screen(view, pos2(f.x, f.y0));
        let bottom = cam.to_screen(view, pos2(f.x, f.y1));
        let stroke = Stroke::new(1.0, colour);
        if f.count == 1 || (bottom.y - top.y) < 1.0 {
            shapes.push(Shape::line_segment([a, top], stroke));
        } else {
            // Two boundary lines and a count; no fill (see paint_bundles).
            shapes.push(Shape::line_segment([a, top], stroke));
            shapes.push(Shape::line_segment([a, bottom], stroke));
            if few && cam.zoom >= TEXT_ZOOM {
                labels.push((a + vec2(8.0, -14.0), format!("{} jumps", f.count)));
            }
        }
    }
    painter.extend(std::mem::take(&mut shapes));
    for (at, text) in labels {
        painter.text(
            at,
            Align2::LEFT_TOP,
            text,
            FontId::proportional(11.0),
            palette::edge_colour(0.0, dark),
        );
    }
    painter.extend(shapes);
}

/// Even the fans are too many: one band per pair of columns.
fn paint_bundles(
    painter: &egui::Painter,
    scene: &Scene,
    cam: &Camera,
    view: Rect,
    visible: Rect,
    dark: bool,
) {
    let bbox_of = |b: &crate::scene::Bundle| {
        Rect::from_min_max(
            pos2(b.x0.min(b.x1), b.from.0.min(b.to.0)),
            pos2(b.x0.max(b.x1), b.from.1.max(b.to.1)),
        )
    };
    // Long lines cost fill time on a software renderer: past a few
    // hundred column pairs, fall back to one band per pair of layers.
    let list = if scene
        .bundles
        .iter()
        .filter(|b| bbox_of(b).intersects(visible))
        .nth(EDGE_BUDGET / 5)
        .is_some()
    {
        &scene.bands
    } else {
        &scene.bundles
    };
    let mut shapes = Vec::new();
    for b in list {
        let bbox = Rect::from_min_max(
            pos2(b.x0.min(b.x1), b.from.0.min(b.to.0)),
            pos2(b.x0.max(b.x1), b.from.1.max(b.to.1)),
        );
        if !bbox.intersects(visible) {
            continue;
        }
        let colour = palette::edge_colour(b.heat, dark);
        let p = |x: f32, y: f32| cam.to_screen(view, pos2(x, y));
        // Outlines only: on a software renderer, translucent fills that
        // overlap across the whole canvas cost more than everything else.
        let stroke = Stroke::new(1.0, colour);
        shapes.push(Shape::line_segment(
            [p(b.x0, b.from.0), p(b.x1, b.to.0)],
            stroke,
        ));
        shapes.push(Shape::line_segment(
            [p(b.x0, b.from.1), p(b.x1, b.to.1)],
            stroke,
        ));
    }
    painter.extend(shapes);
}

#[allow(clippy::too_many_arguments)]
fn paint_nodes(
    painter: &egui::Painter,
    scene: &Scene,
    state: &AppState,
    cam: &Camera,
    view: Rect,
    visible: Rect,
    dark: bool,
    table: &str,
    selected: Option<usize>,
    hovered: Option<usize>,
) {
    let text_colour = if dark {
        Color32::from_gray(230)
    } else {
        Color32::from_gray(20)
    };
    let weak = if dark {
        Color32::from_gray(170)
    } else {
        Color32::from_gray(80)
    };
    let fill_builtin = palette::table_colour(table, dark);
    let fill_user = if dark {
        Color32::from_gray(38)
    } else {
        Color32::WHITE
    };
    let outline = if dark {
        Color32::from_gray(150)
    } else {
        Color32::from_gray(90)
    };
    // Font sizes snap to whole points so that zooming does not fill the
    // glyph atlas with a new size every frame.
    let title_size = (13.0 * cam.zoom).round().clamp(6.0, 40.0);
    let sub_size = (11.0 * cam.zoom).round().clamp(6.0, 34.0);
    let text = cam.zoom >= TEXT_ZOOM;
    let simple = cam.zoom < BOX_ZOOM;
    let hit_groups: std::collections::HashSet<usize> = if state.hit_chains.is_empty() {
        Default::default()
    } else {
        state
            .hit_chains
            .iter()
            .filter_map(|&c| scene.node_for_chain(c))
            .collect()
    };
    let mut shapes: Vec<Shape> = Vec::new();
    let mut labels: Vec<(Pos2, &str, &str)> = Vec::new();
    // Zoomed far out, boxes closer than a pixel merge into one run.
    let mut run: Option<(Rect, Color32)> = None;
    for i in scene.visible_nodes(visible) {
        let n = &scene.nodes[i];
        let r = Rect::from_min_max(
            cam.to_screen(view, n.rect.min),
            cam.to_screen(view, n.rect.max),
        );
        let is_hit = hit_groups.contains(&i);
        if simple {
            let fill = if is_hit {
                palette::hit_colour()
            } else if n.style == NodeStyle::Builtin {
                fill_builtin
            } else {
                outline
            };
            let r = Rect::from_min_max(r.min, r.max.max(r.min + vec2(1.0, 1.0)));
            run = match run {
                Some((acc, c))
                    if c == fill
                        && (acc.left() - r.left()).abs() < 0.5
                        && r.top() - acc.bottom() < 1.5 =>
                {
                    Some((acc.union(r), c))
                }
                Some((acc, c)) => {
                    shapes.push(Shape::rect_filled(acc, 0.0, c));
                    Some((r, fill))
                }
                None => Some((r, fill)),
            };
            continue;
        }
        let radius = CornerRadius::same((4.0 * cam.zoom).clamp(0.0, 8.0) as u8);
        if is_hit {
            shapes.push(Shape::rect_filled(
                r.expand(5.0),
                radius,
                palette::hit_colour(),
            ));
        }
        let (fill, stroke) = match n.style {
            NodeStyle::Builtin => (
                fill_builtin,
                Stroke::new(2.0, palette::table_stroke(table, dark)),
            ),
            NodeStyle::User => (fill_user, Stroke::new(1.0, outline)),
            NodeStyle::Target => (
                fill_user,
                Stroke::new(1.5, palette::verdict_colour(&n.title, dark)),
            ),
            NodeStyle::Group => {
                for k in [2.0, 1.0] {
                    let off = vec2(5.0, 5.0) * k * cam.zoom.min(1.0);
                    shapes.push(Shape::rect_filled(r.translate(off), radius, fill_user));
                    shapes.push(Shape::rect_stroke(
                        r.translate(off),
                        radius,
                        Stroke::new(1.0, outline),
                        StrokeKind::Inside,
                    ));
                }
                (fill_user, Stroke::new(1.5, outline))
            }
        };
        shapes.push(Shape::rect_filled(r, radius, fill));
        shapes.push(Shape::rect_stroke(r, radius, stroke, StrokeKind::Inside));
        if Some(i) == selected {
            shapes.push(Shape::rect_stroke(
                r.expand(3.0),
                radius,
                Stroke::new(2.5, palette::selected_colour(dark)),
                StrokeKind::Outside,
            ));
        } else if Some(i) == hovered {
            shapes.push(Shape::rect_stroke(
                r.expand(2.0),
                radius,
                Stroke::new(1.5, palette::selected_colour(dark).gamma_multiply(0.6)),
                StrokeKind::Outside,
            ));
        }
        if text {
            labels.push((r.left_top(), &n.title, &n.subtitle));
        }
    }
    if let Some((acc, c)) = run {
        shapes.push(Shape::rect_filled(acc, 0.0, c));
    }
    painter.extend(shapes);
    // Library layouts size boxes for monospace text (render::style).
    let library = scene.columns.is_empty();
    let font = |size: f32| {
        if library {
            FontId::monospace(size)
        } else {
            FontId::proportional(size)
        }
    };
    let pad = vec2(8.0, 5.0) * cam.zoom;
    for (at, title, sub) in labels {
        painter.text(
            at + pad,
            Align2::LEFT_TOP,
            title,
            font(title_size),
            text_colour,
        );
        painter.text(
            at + pad + vec2(0.0, 17.0 * cam.zoom),
            Align2::LEFT_TOP,
            sub,
            font(sub_size),
            weak,
        );
    }
}

fn legend(ui: &Ui, painter: &egui::Painter, view: Rect, dark: bool) {
    let font = FontId::proportional(11.0);
    let colour = ui.visuals().text_color();
    let mut y = view.top() + 10.0;
    let x = view.left() + 10.0;
    let bg = Rect::from_min_size(pos2(x - 6.0, y - 6.0), vec2(170.0, 98.0));
    painter.rect_filled(bg, 4.0, ui.visuals().panel_fill.gamma_multiply(0.9));
    let sample = |y: f32| Rect::from_min_size(pos2(x, y), vec2(22.0, 12.0));
    painter.rect_filled(sample(y), 2.0, palette::table_colour("filter", dark));
    painter.text(
        pos2(x + 30.0, y),
        Align2::LEFT_TOP,
        "built-in chain",
        font.clone(),
        colour,
    );
    y += 18.0;
    painter.rect_stroke(sample(y), 2.0, Stroke::new(1.0, colour), StrokeKind::Inside);
    painter.text(
        pos2(x + 30.0, y),
        Align2::LEFT_TOP,
        "user chain",
        font.clone(),
        colour,
    );
    y += 18.0;
    painter.rect_stroke(
        sample(y).translate(vec2(3.0, 3.0)),
        2.0,
        Stroke::new(1.0, colour),
        StrokeKind::Inside,
    );
    painter.rect_stroke(sample(y), 2.0, Stroke::new(1.0, colour), StrokeKind::Inside);
    painter.text(
        pos2(x + 30.0, y),
        Align2::LEFT_TOP,
        "group (double-click)",
        font.clone(),
        colour,
    );
    y += 20.0;
    let grey = palette::edge_colour(0.0, dark);
    painter.line_segment(
        [pos2(x, y + 6.0), pos2(x + 22.0, y + 6.0)],
        Stroke::new(1.5, grey),
    );
    painter.text(
        pos2(x + 30.0, y),
        Align2::LEFT_TOP,
        "-j jump",
        font.clone(),
        colour,
    );
    painter.add(Shape::dashed_line(
        &[pos2(x + 85.0, y + 6.0), pos2(x + 107.0, y + 6.0)],
        Stroke::new(1.5, grey),
        4.0,
        3.0,
    ));
    painter.text(
        pos2(x + 112.0, y),
        Align2::LEFT_TOP,
        "-g goto",
        font.clone(),
        colour,
    );
    y += 18.0;
    painter.line_segment(
        [pos2(x, y + 6.0), pos2(x + 22.0, y + 6.0)],
        Stroke::new(4.0, palette::edge_colour(1.0, dark)),
    );
    painter.text(
        pos2(x + 30.0, y),
        Align2::LEFT_TOP,
        "busy (packet counters)",
        font,
        colour,
    );
}

fn zoom_label(painter: &egui::Painter, view: Rect, cam: &Camera, ui: &Ui) {
    painter.text(
        view.left_bottom() + vec2(10.0, -8.0),
        Align2::LEFT_BOTTOM,
        format!(
            "{:.0}%  ·  drag to pan, wheel to zoom, F to fit",
            cam.zoom * 100.0
        ),
        FontId::proportional(11.0),
        ui.visuals().weak_text_color(),
    );
}

/// A small overview in the corner; click or drag in it to move the view.
fn minimap(ui: &mut Ui, scene: &Scene, cam: &mut Camera, view: Rect, dark: bool) {
    let size = vec2(200.0, 130.0);
    let area = Rect::from_min_size(view.right_bottom() - size - vec2(10.0, 10.0), size);
    // Not needed when everything is in sight.
    if view.width() < 400.0
        || view.height() < 300.0
        || cam.visible(view).contains_rect(scene.bounds)
    {
        return;
    }
    let response = ui.interact(area, ui.scope_id().with("minimap"), Sense::click_and_drag());
    let b = scene.bounds;
    let scale = ((size.x - 8.0) / b.width().max(1.0)).min((size.y - 8.0) / b.height().max(1.0));
    let origin = area.center() - (b.center().to_vec2()) * scale;
    let to_map = |p: Pos2| origin + p.to_vec2() * scale;
    if let Some(p) = response.interact_pointer_pos() {
        cam.center = ((p - origin) / scale).to_pos2();
    }
    let painter = ui.painter_at(area);
    painter.rect_filled(area, 4.0, ui.visuals().panel_fill);
    painter.rect_stroke(
        area,
        4.0,
        Stroke::new(1.0, ui.visuals().weak_text_color()),
        StrokeKind::Inside,
    );
    let dot = if dark {
        Color32::from_gray(150)
    } else {
        Color32::from_gray(110)
    };
    // Thousands of boxes shrink to sub-pixel dots: draw a sample.
    let step = (scene.nodes.len() / 800).max(1);
    let mut shapes = Vec::with_capacity(scene.nodes.len() / step + 1);
    for n in scene.nodes.iter().step_by(step) {
        let r = Rect::from_min_max(to_map(n.rect.min), to_map(n.rect.max));
        let r = Rect::from_center_size(r.center(), r.size().max(Vec2::splat(1.5)));
        shapes.push(Shape::rect_filled(r, 0.0, dot));
    }
    painter.extend(shapes);
    let vis = cam.visible(view);
    let vr = Rect::from_min_max(to_map(vis.min), to_map(vis.max)).intersect(area);
    painter.rect_stroke(
        vr,
        0.0,
        Stroke::new(1.5, palette::selected_colour(dark)),
        StrokeKind::Inside,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_keeps_the_anchor_in_place() {
        let view = Rect::from_min_size(Pos2::ZERO, vec2(800.0, 600.0));
        let mut cam = Camera::default();
        let anchor = pos2(100.0, 100.0);
        let before = cam.to_world(view, anchor);
        cam.zoom_at(view, anchor, 2.0);
        let after = cam.to_world(view, anchor);
        assert!((before - after).length() < 1e-3);
        assert_eq!(cam.zoom, 2.0);
    }

    #[test]
    fn fit_shows_everything() {
        let view = Rect::from_min_size(Pos2::ZERO, vec2(800.0, 600.0));
        let bounds = Rect::from_min_size(pos2(0.0, 0.0), vec2(4000.0, 1000.0));
        let mut cam = Camera::default();
        cam.fit(bounds, view);
        let vis = cam.visible(view);
        assert!(vis.contains_rect(bounds));
    }

    #[test]
    fn distance_to_a_segment() {
        let (a, b) = (pos2(0.0, 0.0), pos2(10.0, 0.0));
        assert_eq!(segment_distance(pos2(5.0, 3.0), a, b), 3.0);
        assert_eq!(segment_distance(pos2(-4.0, 3.0), a, b), 5.0);
        assert_eq!(segment_distance(pos2(1.0, 1.0), a, a), 2f32.sqrt());
    }

    #[test]
    fn fit_keeps_a_long_flat_graph_readable() {
        let view = Rect::from_min_size(Pos2::ZERO, vec2(800.0, 600.0));
        let bounds = Rect::from_min_size(pos2(0.0, 0.0), vec2(5000.0, 300.0));
        let mut cam = Camera::default();
        cam.fit(bounds, view);
        assert_eq!(cam.zoom, READABLE_ZOOM);
        assert!(
            cam.visible(view)
                .contains(bounds.left_top() + vec2(10.0, 10.0))
        );
    }
}
