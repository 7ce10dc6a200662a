//! The graph canvas: the library's layout of the current table, painted
//! with the library's shapes, colours, fonts and legend, as `iptviz render`
//! draws it. Pan, zoom, select, hover, expand groups, minimap.
//!
//! Speed: only boxes and edges that intersect the visible area are painted;
//! when zoomed out or crowded, text, arrowheads, dashes and curves are
//! dropped, and boxes smaller than a pixel become one dot per pixel.

use std::collections::HashSet;

use egui::{
    Align2, Color32, CornerRadius, FontId, Pos2, Rect, Sense, Shape, Stroke, StrokeKind, Ui, Vec2,
    pos2, vec2,
};
use iptviz::graph::DiffMark;
use iptviz::render::style;

use super::Action;
use super::dock::Dock;
use crate::palette;
use crate::scene::{NodeKind, NodeStyle, Scene, SceneCluster, SceneEdge, SceneNode};
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
/// Below this zoom, no edge labels are drawn.
const TEXT_ZOOM: f32 = 0.4;
/// Boxes show all their lines once the name is at least this tall (screen
/// points); smaller, only the names of the most important boxes show, at
/// [`LABEL_PX`].
const FULL_TEXT_PX: f32 = 8.0;
/// Size of the names of boxes too small for their own text.
const LABEL_PX: f32 = 10.0;
/// Most names drawn that way in one frame.
const MAX_LABELS: usize = 250;
/// Most boxes in sight considered for them in one frame.
const MAX_LABEL_TRIES: usize = 4000;
/// Fewest characters (the ellipsis among them) of a name cut to fit its
/// box when the whole name has no room.
const CUT_NAME_CHARS: usize = 5;

/// `name` in `fit` characters, an ellipsis standing for its middle: the
/// ends tell chains apart (`ufw-a…input` from `ufw-a…utput`, kube-proxy's
/// hashes).
fn cut_name(name: &str, fit: usize) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= fit {
        return name.to_string();
    }
    let keep = fit.saturating_sub(1);
    let head = keep.div_ceil(2);
    let tail = keep - head;
    chars[..head]
        .iter()
        .chain(['…'].iter())
        .chain(chars[chars.len() - tail..].iter())
        .collect()
}

/// Whether boxes at zoom `z` are large enough for all their lines.
fn full_text(z: f32) -> bool {
    style::NAME_SIZE as f32 * z >= FULL_TEXT_PX
}
/// Below this zoom, the graph canvas draws edges and boxes as one picture
/// (see [`Paint::far_picture`]).
const FAR_ZOOM: f32 = 0.3;
/// Below this zoom, boxes are plain fills.
const BOX_ZOOM: f32 = 0.15;

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

    /// Shows all of `bounds` with a margin; never zooms in past 1:1. However
    /// small that makes the boxes, the most important chains keep their
    /// names (see `Paint::name_labels`).
    pub fn fit(&mut self, bounds: Rect, view: Rect) {
        let margin = 40.0;
        let sx = (view.width() - margin).max(10.0) / bounds.width().max(1.0);
        let sy = (view.height() - margin).max(10.0) / bounds.height().max(1.0);
        self.zoom = sx.min(sy).clamp(MIN_ZOOM, 1.0);
        self.center = bounds.center();
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
    ui.ctx()
        .data_mut(|d| d.insert_temp::<Option<Rect>>(legend_rect_id(), None));
    let full = ui.available_rect_before_wrap();
    ui.allocate_rect(full, Sense::hover());
    let dark = ui.visuals().dark_mode;
    let background = ui.visuals().extreme_bg_color;

    // A trace drawn alone stands in for the table while it is asked for.
    let path_only = state.trace.path_scene(state.doc.as_ref());
    let scene = path_only.or(state.scene.as_deref().filter(|s| s.table == state.table));
    let mut entries = scene.map(|s| s.legend.clone()).unwrap_or_default();
    if path_only.is_none()
        && state
            .compare
            .marks(state.doc.as_ref(), state.table)
            .is_some()
    {
        entries.extend(compare_legend());
    }
    let dock = Dock::layout(
        ui.ctx(),
        GRAPH_DOCK,
        full,
        &entries,
        scene.map(|s| s.bounds),
        cam,
        state.fit_requested,
    );
    let view = dock.graph;
    let response = ui.interact(
        view,
        ui.scope_id().with("graph-canvas"),
        Sense::click_and_drag(),
    );
    let painter = ui.painter_at(view);
    // The background goes under the graph area only (the dock's strips
    // show the panel colour), and is left out when the far picture covers
    // that area with opaque pixels: on the software renderer each pixel a
    // shape covers costs, however plain the shape.
    let background_at = painter.add(Shape::Noop);
    let Some(scene) = scene else {
        painter.set(background_at, Shape::rect_filled(view, 0.0, background));
        let text = if state.laying_out() {
            "Laying out …"
        } else if let Some(e) = &state.scene_error {
            e.as_str()
        } else {
            "Nothing loaded"
        };
        painter.text(
            view.center(),
            Align2::CENTER_CENTER,
            text,
            FontId::proportional(16.0),
            ui.visuals().weak_text_color(),
        );
        dock.paint(ui, None, &entries, cam, state.laying_out());
        return actions;
    };

    pan_and_zoom(ui, &response, cam, view);

    let visible = cam.visible(view).expand(4.0 / cam.zoom);
    let hovered = response
        .hover_pos()
        .and_then(|p| scene.node_at(cam.to_world(view, p)));
    let selected = state
        .selected
        .filter(|s| s.table == state.table)
        .and_then(|s| scene.node_for_chain(s.chain));
    let far = cam.zoom < FAR_ZOOM;
    // Far out the picture picks its own edges (see `Paint::far_picture`);
    // labels and tooltips of edges need a closer look.
    let edges = if far {
        Vec::new()
    } else {
        sampled_edges(scene, visible, EDGE_CAP)
    };
    let ctx = Paint {
        painter: &painter,
        cam,
        view,
        dark,
        background,
    };

    for c in &scene.clusters {
        ctx.cluster(c);
    }
    if far {
        // Far out: one picture instead of thousands of tiny shapes.
        if !ctx.far_picture(scene, state) {
            painter.set(background_at, Shape::rect_filled(view, 0.0, background));
        }
        ctx.name_labels(scene, visible);
        if let Some(n) = selected {
            let r = ctx.screen(scene.nodes[n].rect).expand(3.0);
            painter.rect_stroke(
                r,
                2.0,
                Stroke::new(2.0, palette::selected_colour(dark)),
                StrokeKind::Outside,
            );
        }
    } else {
        painter.set(background_at, Shape::rect_filled(view, 0.0, background));
        ctx.edges(scene, &edges, selected);
        ctx.nodes(scene, state, visible, selected, hovered);
    }
    if full_text(cam.zoom) && edges.len() <= FINE_EDGES {
        ctx.edge_labels(scene, &edges);
    }
    if path_only.is_none() {
        super::trace::paint_path(&painter, scene, state, cam, view, visible, dark);
    }

    if let Some(n) = hovered {
        let node = &scene.nodes[n];
        response.clone().on_hover_ui_at_pointer(|ui| {
            node_tooltip(ui, state, scene, node);
        });
    }
    if hovered.is_none()
        && edges.len() <= FINE_EDGES
        && let Some(p) = response.hover_pos()
        && let Some(e) = edge_at(scene, cam, view, &edges, p)
    {
        let edge = &scene.edges[e];
        response.clone().on_hover_ui_at_pointer(|ui| {
            edge_tooltip(ui, scene, edge);
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
            NodeKind::Group(g) => {
                if let Some(grp) = scene.groups.get(g as usize) {
                    actions.push(Action::ToggleGroup(grp.id.clone()));
                }
            }
            NodeKind::Chain(ci) => {
                // Double-click on a member of an open group folds it again.
                if let Some(id) = state.open_group_of(ci as usize) {
                    actions.push(Action::ToggleGroup(id));
                }
            }
        }
    }

    dock.paint(ui, Some(scene), &entries, cam, state.laying_out());
    actions
}

/// The graph canvas's key for its [`Dock`].
pub const GRAPH_DOCK: &str = "graph";

/// Where the legend was drawn last (screen), kept in egui's memory: a
/// chain under it is out of sight.
pub fn legend_rect_id() -> egui::Id {
    egui::Id::unique("iptviz-canvas-legend")
}

/// The legend entries of the Compare view's marks: chains outlined as
/// `iptviz render --diff` outlines them.
pub fn compare_legend() -> Vec<style::LegendEntry> {
    let user = style::node_style(iptviz::graph::ViewNodeKind::User, "filter");
    [
        ("chain added (compare)", DiffMark::Added),
        ("rules or policy changed (compare)", DiffMark::Changed),
    ]
    .into_iter()
    .map(|(label, m)| style::LegendEntry {
        label: label.into(),
        item: style::LegendItem::Node(style::diff_node_style(user, m)),
    })
    .collect()
}

/// The Compare view's mark of box `i` of the scene: its chain's, or for a
/// folded group, changed when any member is marked.
pub fn compare_mark(
    scene: &Scene,
    marks: &std::collections::HashMap<usize, DiffMark>,
    i: usize,
) -> Option<DiffMark> {
    match scene.nodes.get(i)?.kind {
        NodeKind::Chain(ci) => marks.get(&(ci as usize)).copied(),
        NodeKind::Group(g) => scene
            .groups
            .get(g as usize)?
            .members
            .iter()
            .any(|m| marks.contains_key(&(*m as usize)))
            .then_some(DiffMark::Changed),
        NodeKind::Target => None,
    }
}

/// Drag pans, wheel and pinch zoom around the pointer.
pub(crate) fn pan_and_zoom(ui: &Ui, response: &egui::Response, cam: &mut Camera, view: Rect) {
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
}

/// Segments per cubic Bézier piece: enough for the gentle curves of a
/// layered drawing, few enough to keep tessellation cheap.
const BEZIER_STEPS: usize = 8;

/// Screen points along an edge as drawn: curves flattened to a few
/// segments; with `coarse`, only the points the path passes through.
pub(crate) fn edge_polyline(e: &SceneEdge, cam: &Camera, view: Rect, coarse: bool) -> Vec<Pos2> {
    let sp = |p: Pos2| cam.to_screen(view, p);
    if !e.curved || e.points.len() < 4 {
        return e.points.iter().map(|&p| sp(p)).collect();
    }
    if coarse {
        return e.points.iter().step_by(3).map(|&p| sp(p)).collect();
    }
    let mut out = Vec::with_capacity(e.points.len() / 3 * BEZIER_STEPS + 1);
    out.push(sp(e.points[0]));
    for s in e.points.windows(4).step_by(3) {
        let [a, b, c, d] = [sp(s[0]), sp(s[1]), sp(s[2]), sp(s[3])];
        for i in 1..=BEZIER_STEPS {
            let t = i as f32 / BEZIER_STEPS as f32;
            let u = 1.0 - t;
            out.push(
                (a.to_vec2() * (u * u * u)
                    + b.to_vec2() * (3.0 * u * u * t)
                    + c.to_vec2() * (3.0 * u * t * t)
                    + d.to_vec2() * (t * t * t))
                    .to_pos2(),
            );
        }
    }
    out
}

/// The arrow head at the end of a path, as the SVG draws it: a triangle
/// 9 units long and 8 wide, along the last segment (screen points).
pub(crate) fn arrow_head(e: &SceneEdge, cam: &Camera, view: Rect) -> Option<[Pos2; 3]> {
    let tip = *e.points.last()?;
    let from = e
        .points
        .iter()
        .rev()
        .skip(1)
        .find(|p| (p.x - tip.x).abs() + (p.y - tip.y).abs() > 0.5)?;
    let dir = (tip - *from).normalized();
    let (l, w) = (9.0, 4.0);
    let base = tip - dir * l;
    let side = vec2(-dir.y, dir.x) * w;
    Some([tip, base + side, base - side].map(|p| cam.to_screen(view, p)))
}

/// The edge under the pointer (within 5 points).
pub(crate) fn edge_at(
    scene: &Scene,
    cam: &Camera,
    view: Rect,
    visible: &[usize],
    p: Pos2,
) -> Option<usize> {
    if cam.zoom < TEXT_ZOOM {
        return None;
    }
    let world = cam.to_world(view, p);
    let slack = 6.0 / cam.zoom;
    let mut best: Option<(f32, usize)> = None;
    for &i in visible {
        let e = &scene.edges[i];
        if !e.bounds.expand(slack).contains(world) {
            continue;
        }
        let line = edge_polyline(e, cam, view, false);
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

/// What a box is: the library's hover text, and for a chain its first
/// rules (an nft chain's as nft writes them, with its declaration), for a
/// group its members.
fn node_tooltip(ui: &mut Ui, state: &AppState, scene: &Scene, node: &SceneNode) {
    ui.strong(&node.title);
    if !node.subtitle.is_empty() {
        ui.label(&node.subtitle);
    }
    let Some(doc) = &state.doc else { return };
    let Some(table) = doc.parsed.ruleset.tables.get(state.table) else {
        return;
    };
    match node.kind {
        NodeKind::Chain(ci) => {
            let Some(c) = table.chains.get(ci as usize) else {
                return;
            };
            if table.nft_chain(&c.name).is_some() {
                ui.label(&node.hover);
            }
            if let Some(g) = doc.graphs.get(state.table) {
                let refs = g.referenced.get(ci as usize).copied().unwrap_or(0);
                ui.label(format!("jumped to from {refs} rule(s)"));
            }
            for ri in 0..c.rules.len().min(6) {
                let text = table.rule_text(ci as usize, ri).unwrap_or_default();
                ui.monospace(crate::state::short(text, 100));
            }
            if c.rules.len() > 6 {
                ui.weak(format!("… {} more", c.rules.len() - 6));
            }
            if state.open_group_of(ci as usize).is_some() {
                ui.weak("double-click to fold its group again");
            }
        }
        NodeKind::Group(g) => {
            let Some(grp) = scene.groups.get(g as usize) else {
                return;
            };
            for &m in grp.members.iter().take(8) {
                if let Some(c) = table.chains.get(m as usize) {
                    ui.monospace(c.name.as_str());
                }
            }
            if grp.members.len() > 8 {
                ui.weak(format!("… {} more", grp.members.len() - 8));
            }
            ui.weak("double-click to expand");
        }
        NodeKind::Target => {
            ui.weak(&node.hover);
        }
    }
}

/// The rules behind an edge, as the SVG's hover text lists them.
pub(crate) fn edge_tooltip(ui: &mut Ui, scene: &Scene, edge: &SceneEdge) {
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
    for line in edge.hover.lines() {
        ui.monospace(crate::state::short(line, 110));
    }
}

/// Font size on screen for a library size: scaled, and rounded down to a
/// half point so that text never outgrows the box the library sized for
/// it, and zooming does not fill the glyph atlas with a new size a frame.
fn font_size(world: f64, zoom: f32) -> f32 {
    ((world as f32 * zoom * 2.0).floor() / 2.0).clamp(3.0, 64.0)
}

/// Too many visible edges to draw curves, dashes and heads: straight lines.
const FINE_EDGES: usize = 400;
/// Most edges drawn in a frame when crowded (a sample beyond).
const EDGE_CAP: usize = 1500;
/// More edges in sight than this: those passing through are drawn thin.
const PASSING_THIN: usize = 100;

/// The edges to draw in `area`. Crowded (a wide layer of a cluster-sized
/// table): long lines that only cross the view cost the software renderer
/// most and say least, so keep the edges with an end in sight, and a
/// sample of those past `cap`.
fn sampled_edges(scene: &Scene, area: Rect, cap: usize) -> Vec<usize> {
    let edges = scene.visible_edges(area, FINE_EDGES);
    let step = edges.len().div_ceil(cap.max(1)).max(1);
    if edges.len() > FINE_EDGES && step > 1 {
        edges.into_iter().step_by(step).collect()
    } else {
        edges
    }
}

fn radius(r: f32) -> CornerRadius {
    CornerRadius::same(r.round().clamp(0.0, 255.0) as u8)
}

/// What the far picture was drawn from: the same key, the same picture
/// (wherever the camera's centre is, as long as the picture covers the
/// view; at another zoom only while zooming, see [`Paint::far_picture`]).
#[derive(Debug, Clone, PartialEq)]
struct FarKey {
    scene: usize,
    nodes: usize,
    ppp: u32,
    /// Size of the view (bits of its width and height).
    view: (u32, u32),
    dark: bool,
    background: Color32,
    /// Count and an order-free fingerprint of the hit chains.
    hits: (usize, u64),
}

/// The far picture in the GPU's memory, and where it lies.
#[derive(Clone)]
struct FarPicture {
    key: FarKey,
    /// The zoom it was drawn at.
    zoom: f32,
    /// World point at the picture's top left corner.
    origin: Pos2,
    /// World area the picture covers.
    covers: Rect,
    /// Whether its pixels are all opaque (no table frame under it).
    opaque: bool,
    /// Its size in pixels.
    size: (usize, usize),
    texture: egui::TextureHandle,
}

/// How many times the canvas images were made (drawn on the CPU and sent
/// to the GPU) since the start: tests check they are kept between frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PicturesMade {
    /// The far picture of the graph.
    pub far: u64,
    /// Frames that showed the far picture stretched to another zoom than
    /// the one it was drawn at (while zooming).
    pub far_scaled: u64,
    /// The minimap's dots.
    pub minimap: u64,
}

impl PicturesMade {
    fn id() -> egui::Id {
        egui::Id::unique("iptviz-pictures-made")
    }

    /// The counts so far.
    pub fn get(ctx: &egui::Context) -> PicturesMade {
        ctx.data(|d| d.get_temp(Self::id())).unwrap_or_default()
    }

    pub(crate) fn count(ctx: &egui::Context, f: impl FnOnce(&mut PicturesMade)) {
        ctx.data_mut(|d| f(d.get_temp_mut_or_default(Self::id())));
    }
}

/// How far the far picture reaches past each side of the view, as a
/// share of the view's size: panning reuses it until the view leaves it.
const FAR_MARGIN: f32 = 0.25;
/// While zooming, the far picture is shown stretched as long as the zoom
/// stays within these factors of the zoom it was drawn at.
const FAR_STRETCH: (f32, f32) = (2.0 / 3.0, 1.5);

/// The runs of `line` whose segments meet `area`, each as a slice of
/// whole segments (so that a run's joins are drawn as before).
fn runs_in(line: &[Pos2], area: Rect) -> Vec<&[Pos2]> {
    let mut runs = Vec::new();
    let mut start: Option<usize> = None;
    for i in 0..line.len().saturating_sub(1) {
        let seen = Rect::from_two_pos(line[i], line[i + 1]).intersects(area);
        match (seen, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push(&line[s..=i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(&line[s..]);
    }
    runs
}

/// A one-point-wide line through `points` added to `mesh` as one quad per
/// segment, without the anti-aliasing fringe the tessellator gives a line
/// (two more thin quads per segment, each a row of partly covered 4x4
/// blocks for the software renderer). For the crowded edges only: a
/// bundle of hundreds of lines, where smooth sides are not what one sees.
fn thin_line(mesh: &mut egui::Mesh, points: &[Pos2], colour: Color32) {
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = b - a;
        let len = d.length();
        if len < 1e-3 {
            continue;
        }
        let n = vec2(-d.y, d.x) * (0.5 / len);
        let base = mesh.vertices.len() as u32;
        for p in [a + n, a - n, b + n, b - n] {
            mesh.colored_vertex(p, colour);
        }
        mesh.add_triangle(base, base + 1, base + 2);
        mesh.add_triangle(base + 2, base + 1, base + 3);
    }
}

/// `x.round()` for the far picture's pixel loops: without SSE4.1 in the
/// baseline x86-64 target, `round` is a call into libm for every pixel.
/// Same result (halves away from zero) within ±2^31.
#[inline]
fn fast_round(x: f32) -> f32 {
    if x >= 0.0 {
        (x + 0.5) as i32 as f32
    } else {
        -((0.5 - x) as i32 as f32)
    }
}

/// A one-pixel line from `a` to `b` (pixel coordinates) into an image of
/// `w` by `h`, clipped to it.
fn pixel_line(px: &mut [Color32], w: usize, h: usize, a: Vec2, b: Vec2, colour: Color32) {
    // Clip the segment to the image (Liang-Barsky) so that a long edge
    // mostly out of sight costs only its visible pixels.
    let d = b - a;
    let (mut t0, mut t1) = (0.0f32, 1.0f32);
    let (xmax, ymax) = (w as f32 - 0.5, h as f32 - 0.5);
    for (p, q) in [
        (-d.x, a.x),
        (d.x, xmax - a.x),
        (-d.y, a.y),
        (d.y, ymax - a.y),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return;
    }
    let (a, b) = (a + d * t0, a + d * t1);
    let steps = (b - a).abs().max_elem().ceil().max(1.0);
    let inc = (b - a) / steps;
    // Walked in 16.16 fixed point from the first pixel's corner: the
    // clipped line lies within half a pixel of the image, so the sums stay
    // at or above zero and `>> 16` rounds as `round` would, one shift and
    // one clamp a pixel (float rounding and a bounds test per pixel made
    // the far picture of the 10,000-service table 8 ms of line drawing).
    const ONE: f32 = 65536.0;
    let fixed = |v: f32| ((v + 0.5).max(0.0) * ONE) as i64;
    let (mut x, mut y) = (fixed(a.x), fixed(a.y));
    let (dx, dy) = ((inc.x * ONE) as i64, (inc.y * ONE) as i64);
    let (xm, ym) = (w as i64 - 1, h as i64 - 1);
    for _ in 0..=steps as usize {
        let (ix, iy) = ((x >> 16).clamp(0, xm), (y >> 16).clamp(0, ym));
        px[iy as usize * w + ix as usize] = colour;
        x += dx;
        y += dy;
    }
}

/// What the painting functions share for one frame.
pub(crate) struct Paint<'a> {
    pub painter: &'a egui::Painter,
    pub cam: &'a Camera,
    pub view: Rect,
    pub dark: bool,
    pub background: Color32,
}

impl Paint<'_> {
    fn screen(&self, r: Rect) -> Rect {
        Rect::from_min_max(
            self.cam.to_screen(self.view, r.min),
            self.cam.to_screen(self.view, r.max),
        )
    }

    /// A table's frame with its caption.
    pub(crate) fn cluster(&self, c: &SceneCluster) {
        let r = self.screen(c.rect);
        if !r.intersects(self.view) {
            return;
        }
        let z = self.cam.zoom;
        // On dark, half of the near-white frame tone is a bright grey that
        // outshines the boxes: a faint wash of the table's colour instead.
        let fill = if self.dark {
            palette::fill(style::table_fill(&c.table), true).gamma_multiply(0.3)
        } else {
            palette::fill(style::cluster_fill(&c.table), false)
        };
        self.painter.rect(
            r,
            radius(8.0 * z),
            fill,
            Stroke::new(1.0, palette::ink(style::table_stroke(&c.table), self.dark)),
            StrokeKind::Middle,
        );
        if z >= TEXT_ZOOM {
            self.painter.text(
                self.cam.to_screen(self.view, c.caption),
                Align2::LEFT_BOTTOM,
                &c.label,
                FontId::monospace(font_size(13.0, z)),
                palette::ink(style::table_stroke(&c.table), self.dark),
            );
        }
    }

    pub(crate) fn edges(&self, scene: &Scene, visible: &[usize], selected: Option<usize>) {
        let z = self.cam.zoom;
        let fine = visible.len() <= FINE_EDGES && z >= BOX_ZOOM;
        let mut shapes: Vec<Shape> = Vec::with_capacity(visible.len() * if fine { 2 } else { 1 });
        let mut on_top: Vec<Shape> = Vec::new();
        let mut thin = egui::Mesh::default();
        // Many in sight: the edges that only pass through the view (no end
        // in it) are the long ones, which cost the software renderer most
        // (hundreds of anti-aliased lines across the whole view were the
        // slowest frames at 1:1) and say least: drawn thin, on their path.
        let thin_passing = visible.len() > PASSING_THIN;
        // Also those with an end in sight while the boxes are too small for
        // their own text: a hundred anti-aliased lines there cost the
        // software renderer as much as the rest of the frame, and at that
        // size their smooth sides are not what one sees (heads stay).
        let thin_all = thin_passing && z < TEXT_ZOOM;
        let in_sight = self.cam.visible(self.view);
        for &i in visible {
            let e = &scene.edges[i];
            if e.points.len() < 2 {
                continue;
            }
            let touches = selected.is_some_and(|s| s == e.from as usize || s == e.to as usize);
            let colour = if touches {
                palette::selected_colour(self.dark)
            } else {
                palette::ink(e.look.colour, self.dark)
            };
            let out = if touches { &mut on_top } else { &mut shapes };
            if !fine && !touches {
                // Zoomed out or crowded: one thin straight run per edge.
                thin_line(
                    &mut thin,
                    &edge_polyline(e, self.cam, self.view, true),
                    colour,
                );
                continue;
            }
            let passing = !e.points.first().is_some_and(|p| in_sight.contains(*p))
                && !e.points.last().is_some_and(|p| in_sight.contains(*p));
            if thin_passing
                && !touches
                && e.look.dash == style::Dash::Solid
                && (passing || thin_all)
            {
                let line = edge_polyline(e, self.cam, self.view, false);
                for run in runs_in(&line, self.view.expand(2.0)) {
                    thin_line(&mut thin, run, colour);
                }
                if !passing && let Some(head) = arrow_head(e, self.cam, self.view) {
                    out.push(Shape::convex_polygon(head.to_vec(), colour, Stroke::NONE));
                }
                continue;
            }
            let width =
                (e.look.width as f32 * e.weight * z).max(1.0) + if touches { 1.0 } else { 0.0 };
            let stroke = Stroke::new(width, colour);
            let line = edge_polyline(e, self.cam, self.view, false);
            match e.look.dash {
                // Only the runs in sight: a long edge through the view is
                // mostly outside it, and the tessellator would make
                // thousands of triangles of it that are all clipped away.
                // (A dashed line is a shape per dash, and those out of
                // sight are left out already.)
                style::Dash::Solid => {
                    let area = self.view.expand(width + 2.0);
                    for run in runs_in(&line, area) {
                        out.push(Shape::line(run.to_vec(), stroke));
                    }
                }
                dash => {
                    let (d, g) = if dash == style::Dash::Dashed {
                        (7.0, 4.0)
                    } else {
                        (2.0, 3.0)
                    };
                    out.extend(Shape::dashed_line(
                        &line,
                        stroke,
                        (d * z).max(1.5),
                        (g * z).max(1.5),
                    ));
                }
            }
            if let Some(head) = arrow_head(e, self.cam, self.view) {
                out.push(Shape::convex_polygon(head.to_vec(), colour, Stroke::NONE));
            }
        }
        if !thin.is_empty() {
            self.painter.add(Shape::mesh(thin));
        }
        self.painter.extend(shapes);
        self.painter.extend(on_top);
    }

    /// Edge labels on a halo of the canvas colour, as the SVG draws them.
    pub(crate) fn edge_labels(&self, scene: &Scene, visible: &[usize]) {
        let size = font_size(style::TEXT_SIZE, self.cam.zoom);
        let colour = palette::ink(style::INK, self.dark);
        let ppp = self.painter.ctx().pixels_per_point();
        for &i in visible {
            let e = &scene.edges[i];
            let Some(at) = e.label_at else { continue };
            if e.label.is_empty() {
                continue;
            }
            let galley =
                self.painter
                    .layout_no_wrap(e.label.clone(), FontId::monospace(size), colour);
            let centre = self.cam.to_screen(self.view, at);
            let rect = Rect::from_center_size(centre, galley.size());
            self.painter
                .add(flat_rects([rect.expand(1.5)], self.background, ppp));
            self.painter.galley(rect.min, galley, colour);
        }
    }

    /// Far out, where boxes are a few pixels or less: the edges (as
    /// one-pixel lines) and the boxes (solid, in the colour of their
    /// outline; built-ins in their fill, search hits in the hit colour)
    /// drawn into one image on the CPU and shown as a single texture. The
    /// software renderer then draws one rectangle instead of tens of
    /// thousands of small shapes.
    ///
    /// The image is kept while it can serve:
    /// - panning moves it; after the first pan it is drawn reaching a
    ///   quarter of the view past each side, and drawn again only when the
    ///   view leaves it;
    /// - while the zoom changes from frame to frame, it is shown stretched
    ///   (smoothly sampled) as long as the zoom stays within
    ///   [`FAR_STRETCH`] of the one it was drawn at and it still covers the
    ///   view; zooming out draws it with the margin, so that it covers the
    ///   wider view of the next frames;
    /// - once the zoom rests for a frame, it is drawn again at that zoom,
    ///   pixel for pixel (a stretched frame asks for the next one, so that
    ///   this happens without waiting for input);
    /// - the canvas, the scene or the hits changing draw it again.
    ///
    /// Where no table frame lies under it, it is painted on the canvas
    /// colour: true when its pixels are all opaque, and the canvas needs no
    /// background of its own.
    pub(crate) fn far_picture(&self, scene: &Scene, state: &AppState) -> bool {
        let ctx = self.painter.ctx();
        let ppp = ctx.pixels_per_point();
        let id = egui::Id::unique("iptviz-canvas-far-picture");
        let zoom_id = egui::Id::unique("iptviz-canvas-far-last-zoom");
        let cached = ctx.data(|d| d.get_temp::<FarPicture>(id));
        let zoom = self.cam.zoom;
        // The zoom of the last far frame: unlike it, this frame is zooming.
        let last_zoom = ctx.data(|d| d.get_temp::<f32>(zoom_id)).unwrap_or(zoom);
        ctx.data_mut(|d| d.insert_temp(zoom_id, zoom));
        let key = FarKey {
            scene: scene as *const Scene as usize,
            nodes: scene.nodes.len(),
            ppp: ppp.to_bits(),
            view: (self.view.width().to_bits(), self.view.height().to_bits()),
            dark: self.dark,
            background: self.background,
            hits: state
                .hit_chains
                .iter()
                .fold((state.hit_chains.len(), 0u64), |(n, h), &c| {
                    (
                        n,
                        h.wrapping_add((c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                    )
                }),
        };
        let zooming = zoom != last_zoom;
        let in_sight = self.cam.visible(self.view);
        let serves = |p: &FarPicture| {
            p.key == key
                && p.covers.contains_rect(in_sight)
                && (p.zoom == zoom
                    || (zooming && (FAR_STRETCH.0..=FAR_STRETCH.1).contains(&(zoom / p.zoom))))
        };
        let picture = match cached {
            Some(p) if serves(&p) => p,
            cached => {
                // Room around the view when the next frames will want it: the
                // view left a picture of this zoom (panning), or the view grows
                // (zooming out).
                let panning = cached
                    .as_ref()
                    .is_some_and(|p| p.key == key && p.zoom == zoom);
                let widening = zooming && zoom < last_zoom;
                let share = if panning || widening { FAR_MARGIN } else { 0.0 };
                let margin = self.view.size() * share;
                let w = ((self.view.width() + 2.0 * margin.x) * ppp)
                    .round()
                    .max(1.0) as usize;
                let h = ((self.view.height() + 2.0 * margin.y) * ppp)
                    .round()
                    .max(1.0) as usize;
                // The picture's pixels on whole screen pixels.
                let origin_px = ((self.view.min - margin).to_vec2() * ppp).round();
                let origin = self.cam.to_world(self.view, (origin_px / ppp).to_pos2());
                let covers = Rect::from_min_size(origin, vec2(w as f32, h as f32) / (ppp * zoom));
                let opaque = !scene.clusters.iter().any(|c| c.rect.intersects(covers));
                let image = self.far_image(scene, state, origin, covers, ppp, (w, h), opaque);
                PicturesMade::count(ctx, |c| c.far += 1);
                // Smooth sampling for the stretched frames; drawn at its own
                // zoom, each texel falls on one pixel and is shown as it is.
                let texture = match cached {
                    Some(mut p) => {
                        p.texture.set(image, egui::TextureOptions::LINEAR);
                        p.texture
                    }
                    None => ctx.load_texture("iptviz-far", image, egui::TextureOptions::LINEAR),
                };
                let p = FarPicture {
                    key,
                    zoom,
                    origin,
                    covers,
                    opaque,
                    size: (w, h),
                    texture,
                };
                ctx.data_mut(|d| d.insert_temp(id, p.clone()));
                p
            }
        };
        let at = self.cam.to_screen(self.view, picture.origin);
        let rect = if picture.zoom == zoom {
            // On whole pixels, so that each texel lands on one screen pixel.
            let (w, h) = picture.size;
            Rect::from_min_size(
                ((at.to_vec2() * ppp).round() / ppp).to_pos2(),
                vec2(w as f32, h as f32) / ppp,
            )
        } else {
            PicturesMade::count(ctx, |c| c.far_scaled += 1);
            // Drawn again at the zoom it rests at.
            ctx.request_repaint();
            Rect::from_min_size(at, picture.covers.size() * zoom)
        };
        self.painter.image(
            picture.texture.id(),
            rect,
            Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0)),
            Color32::WHITE,
        );
        picture.opaque
    }

    /// The far picture of the world area `covers`, `origin` at its top
    /// left, at `ppp` pixels per screen point.
    #[allow(clippy::too_many_arguments)]
    fn far_image(
        &self,
        scene: &Scene,
        state: &AppState,
        origin: Pos2,
        covers: Rect,
        ppp: f32,
        (w, h): (usize, usize),
        opaque: bool,
    ) -> egui::ColorImage {
        let blank = if opaque {
            self.background
        } else {
            Color32::TRANSPARENT
        };
        let mut px = vec![blank; w * h];
        let scale = self.cam.zoom * ppp;
        let to_px = |p: Pos2| (p - origin) * scale;
        // As many edges per pixel as the view alone would draw.
        let share = (w * h) as f32 / (self.view.area() * ppp * ppp).max(1.0);
        let cap = (EDGE_CAP as f32 * share).round() as usize;
        let edges = sampled_edges(scene, covers.expand(4.0 / self.cam.zoom), cap);
        for i in edges {
            let e = &scene.edges[i];
            let colour = palette::ink(e.look.colour, self.dark);
            let step = if e.curved && e.points.len() >= 4 {
                3
            } else {
                1
            };
            let mut last: Option<Vec2> = None;
            for &p in e.points.iter().step_by(step).chain(e.points.last()) {
                let b = to_px(p);
                if let Some(a) = last {
                    pixel_line(&mut px, w, h, a, b, colour);
                }
                last = Some(b);
            }
        }
        let hits: HashSet<usize> = state
            .hit_chains
            .iter()
            .filter_map(|&c| scene.node_for_chain(c))
            .collect();
        for i in scene.visible_nodes(covers) {
            let n = &scene.nodes[i];
            // (Hashing every box of a big table for an empty set of hits
            // was a millisecond of the picture.)
            let hit = !hits.is_empty() && hits.contains(&i);
            let outline = if hit {
                palette::hit_colour()
            } else {
                palette::ink(n.look.stroke, self.dark)
            };
            let (a, b) = (to_px(n.rect.min), to_px(n.rect.max));
            let (ax, ay) = (fast_round(a.x), fast_round(a.y));
            let x0 = (ax.max(0.0) as usize).min(w);
            let y0 = (ay.max(0.0) as usize).min(h);
            // At least one pixel, however small the box.
            let x1 = (fast_round(b.x).max(ax + 1.0).max(0.0) as usize).min(w);
            let y1 = (fast_round(b.y).max(ay + 1.0).max(0.0) as usize).min(h);
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            // Big enough to tell inside from outline: filled and outlined
            // as the shapes draw it closer in; smaller, a solid dot in the
            // colour that stands out (the fill of a built-in, the outline
            // of the rest).
            let framed = x1 - x0 >= 4 && y1 - y0 >= 4;
            let solid = if hit {
                outline
            } else if framed || n.style == NodeStyle::Builtin {
                palette::fill(n.look.fill, self.dark)
            } else {
                outline
            };
            for y in y0..y1 {
                px[y * w + x0..y * w + x1].fill(solid);
            }
            if framed {
                px[y0 * w + x0..y0 * w + x1].fill(outline);
                px[(y1 - 1) * w + x0..(y1 - 1) * w + x1].fill(outline);
                for y in y0..y1 {
                    px[y * w + x0] = outline;
                    px[y * w + x1 - 1] = outline;
                }
            }
        }
        egui::ColorImage::new([w, h], px)
    }

    pub(crate) fn nodes(
        &self,
        scene: &Scene,
        state: &AppState,
        visible: Rect,
        selected: Option<usize>,
        hovered: Option<usize>,
    ) {
        let z = self.cam.zoom;
        let hits: HashSet<usize> = state
            .hit_chains
            .iter()
            .filter_map(|&c| scene.node_for_chain(c))
            .collect();
        let mut shapes: Vec<Shape> = Vec::new();
        if z < BOX_ZOOM {
            // Far out, thousands of boxes shrink below a pixel: one dot per
            // covered pixel, the first box's colour wins.
            let (w, h) = (
                self.view.width() as usize + 1,
                self.view.height() as usize + 1,
            );
            let mut taken = vec![false; w * h];
            for i in scene.visible_nodes(visible) {
                let n = &scene.nodes[i];
                let r = self.screen(n.rect);
                let small = r.width() < 2.0 && r.height() < 2.0;
                let fill = if hits.contains(&i) {
                    palette::hit_colour()
                } else if n.style == NodeStyle::Builtin {
                    palette::fill(n.look.fill, self.dark)
                } else {
                    palette::ink(n.look.stroke, self.dark)
                };
                if small {
                    let (x, y) = (r.min.x - self.view.min.x, r.min.y - self.view.min.y);
                    if x < 0.0 || y < 0.0 || x as usize >= w || y as usize >= h {
                        continue;
                    }
                    let k = y as usize * w + x as usize;
                    if std::mem::replace(&mut taken[k], true) {
                        continue;
                    }
                }
                let r = Rect::from_min_size(r.min, r.size().max(vec2(1.0, 1.0)));
                shapes.push(Shape::rect_filled(r, 0.0, fill));
            }
            self.painter.extend(shapes);
            self.name_labels(scene, visible);
            return;
        }
        let text = full_text(z);
        let marks = state.compare.marks(state.doc.as_ref(), state.table);
        let mut labels: Vec<usize> = Vec::new();
        for i in scene.visible_nodes(visible) {
            let n = &scene.nodes[i];
            let r = self.screen(n.rect);
            if hits.contains(&i) {
                shapes.push(Shape::rect_filled(
                    r.expand(5.0),
                    radius(6.0 * z),
                    palette::hit_colour(),
                ));
            }
            match marks.and_then(|m| compare_mark(scene, m, i)) {
                Some(m) => {
                    let look = style::diff_node_style(n.look, m);
                    self.node_shape_with(&mut shapes, &look, r);
                }
                None => self.node_shape(&mut shapes, n, r),
            }
            let mark = if Some(i) == selected {
                Some(Stroke::new(2.5, palette::selected_colour(self.dark)))
            } else if Some(i) == hovered {
                Some(Stroke::new(
                    1.5,
                    palette::selected_colour(self.dark).gamma_multiply(0.6),
                ))
            } else {
                None
            };
            if let Some(s) = mark {
                shapes.push(Shape::rect_stroke(
                    r.expand(3.0),
                    radius(6.0 * z),
                    s,
                    StrokeKind::Outside,
                ));
            }
            if text {
                labels.push(i);
            }
        }
        self.painter.extend(shapes);
        if text {
            for i in labels {
                self.node_text(&scene.nodes[i]);
            }
        } else {
            self.name_labels(scene, visible);
        }
    }

    /// Names of boxes too small for their own text, at a size one can
    /// read, centred on the box on a halo of the canvas colour. The most
    /// important boxes come first ([`Scene::label_order`]: built-in chains,
    /// then the chains with most rules and callers). A name wider than its
    /// box is cut, with an ellipsis, to the box's width when at least
    /// [`CUT_NAME_CHARS`] characters fit there, and drawn whole over its
    /// neighbours only when its box is smaller than that. A name that would
    /// overlap one already placed, or run out of the canvas, is left out.
    pub(crate) fn name_labels(&self, scene: &Scene, visible: Rect) {
        let px = LABEL_PX;
        let h = (px * 1.3).ceil();
        let char_w = px * style::CHAR_EM as f32;
        let area = self.view.shrink(2.0);
        // Placed labels by row of the canvas, for a cheap overlap test.
        let rows = (area.height() / h) as usize + 2;
        let mut placed: Vec<Vec<Rect>> = vec![Vec::new(); rows];
        let row_of = |y: f32| (((y - area.top()) / h).max(0.0) as usize).min(rows - 1);
        // Whether a name at `rect` stays on the canvas, clear of those placed.
        let free = |rect: Rect, placed: &[Vec<Rect>]| {
            area.contains_rect(rect)
                && !placed[row_of(rect.top())..=row_of(rect.bottom())]
                    .iter()
                    .flatten()
                    .any(|p| p.intersects(rect))
        };
        let mut chosen: Vec<(usize, Rect, Option<String>)> = Vec::new();
        let mut tries = 0;
        for &i in &scene.label_order {
            if chosen.len() >= MAX_LABELS || tries >= MAX_LABEL_TRIES {
                break;
            }
            if !scene.node_rects[i as usize].intersects(visible) {
                continue;
            }
            let n = &scene.nodes[i as usize];
            if n.title.is_empty() {
                continue;
            }
            tries += 1;
            let r = self.screen(n.rect);
            let chars = if n.title.is_ascii() {
                n.title.len()
            } else {
                n.title.chars().count()
            };
            let whole = Rect::from_center_size(r.center(), vec2(chars as f32 * char_w + 4.0, h));
            let fit = ((r.width() - 4.0) / char_w).floor().max(0.0) as usize;
            // A name wider than its box would cover its neighbours' boxes
            // (and leave them unnamed), so it is cut to its own box where
            // that leaves enough of it to read. Not a verdict's: its colour
            // says it, and a cut "ACCE…" reads worse than none.
            let cuttable = fit >= CUT_NAME_CHARS && n.kind != NodeKind::Target;
            let (rect, cut) = if (fit >= chars || !cuttable) && free(whole, &placed) {
                (whole, None)
            } else if cuttable && fit < chars {
                let cut = Rect::from_center_size(r.center(), vec2(fit as f32 * char_w + 4.0, h));
                if !free(cut, &placed) {
                    continue;
                }
                (cut, Some(cut_name(&n.title, fit)))
            } else {
                continue;
            };
            for row in &mut placed[row_of(rect.top())..=row_of(rect.bottom())] {
                row.push(rect);
            }
            chosen.push((i as usize, rect, cut));
        }
        let halo = self.background.gamma_multiply(0.8);
        let colour = palette::ink(style::INK, self.dark);
        let font = FontId::monospace(px);
        let ppp = self.painter.ctx().pixels_per_point();
        self.painter
            .add(flat_rects(chosen.iter().map(|&(_, r, _)| r), halo, ppp));
        for (i, rect, cut) in chosen {
            let text = cut.unwrap_or_else(|| scene.nodes[i].title.clone());
            let galley = self.painter.layout_no_wrap(text, font.clone(), colour);
            let at = rect.center() - galley.size() / 2.0;
            self.painter.galley(at, galley, colour);
        }
    }

    /// The library's shape for a box: square built-ins, rounded user
    /// chains, stacked groups, pill targets.
    fn node_shape(&self, out: &mut Vec<Shape>, n: &SceneNode, r: Rect) {
        self.node_shape_with(out, &n.look, r);
    }

    /// [`Paint::node_shape`] with another look (a Compare mark).
    fn node_shape_with(&self, out: &mut Vec<Shape>, look: &style::NodeStyle, r: Rect) {
        let ppp = self.painter.ctx().pixels_per_point();
        box_shapes(out, look, r, self.cam.zoom, self.dark, ppp);
    }

    /// Label lines placed as the SVG places them: centred on the front box,
    /// baselines at the library's line heights.
    fn node_text(&self, n: &SceneNode) {
        let z = self.cam.zoom;
        let look = &n.look;
        let inner_w = if look.shape == style::Shape::Stack {
            n.rect.width() - 4.0
        } else {
            n.rect.width()
        };
        let cx = n.rect.left() + inner_w / 2.0;
        let mut top = n.rect.top() + style::PAD as f32;
        if look.shape == style::Shape::Ellipse {
            top += 3.0;
        }
        let secondary = if look.text == style::PAPER {
            style::PAPER
        } else {
            style::MUTED
        };
        for (li, line) in n.lines.iter().enumerate() {
            let (size, colour, bold) = if li == 0 {
                (style::NAME_SIZE, look.text, look.bold)
            } else {
                (style::TEXT_SIZE, secondary, false)
            };
            let px = font_size(size, z);
            let colour = palette::ink(colour, self.dark);
            // egui puts the baseline about 0.93 em below the top of a row
            // of its monospace font (Hack).
            let baseline = top + size as f32 * 1.02;
            let at = self
                .cam
                .to_screen(self.view, pos2(cx, baseline - 0.93 * size as f32));
            let galley = self
                .painter
                .layout_no_wrap(line.clone(), FontId::monospace(px), colour);
            let min = at - vec2(galley.size().x / 2.0, 0.0);
            if bold {
                // No bold monospace face in egui's default fonts: a second
                // pass a fraction of a pixel to the right thickens strokes.
                self.painter.galley(
                    min + vec2((px / 20.0).max(0.4), 0.0),
                    galley.clone(),
                    colour,
                );
            }
            self.painter.galley(min, galley, colour);
            top += (size * style::LINE_FACTOR) as f32;
        }
    }
}

/// The library's shape for a box in screen rect `r` at zoom `z`: square
/// built-ins, rounded user chains, stacked groups, pill targets. `ppp` is
/// the screen's pixels per point.
///
/// The fill is a mesh of its own ([`rounded_fill`]) and the outline an
/// unfilled shape over it: egui would fill a rounded box as one fan of
/// long slivers from a corner, with an anti-aliased fringe that the
/// outline covers anyway, and on the software renderer those slivers cost
/// several times the box's own area (a fifth of a zoomed-out frame of the
/// cluster-sized nat table).
fn box_shapes(
    out: &mut Vec<Shape>,
    look: &style::NodeStyle,
    r: Rect,
    z: f32,
    dark: bool,
    ppp: f32,
) {
    let fill = palette::fill(look.fill, dark);
    let stroke = Stroke::new(
        (look.stroke_width as f32 * z).max(1.0),
        palette::ink(look.stroke, dark),
    );
    let mut boxed = |r: Rect, rad: CornerRadius| {
        let r = snap_rect(r, ppp, stroke.width);
        let mut mesh = egui::Mesh::default();
        rounded_fill(&mut mesh, r, rad.nw as f32, fill);
        out.push(Shape::mesh(mesh));
        if look.dashed {
            let c = [
                r.left_top(),
                r.right_top(),
                r.right_bottom(),
                r.left_bottom(),
                r.left_top(),
            ];
            out.extend(Shape::dashed_line(&c, stroke, 5.0 * z, 3.0 * z));
        } else {
            out.push(Shape::Rect(egui::epaint::RectShape::new(
                r,
                rad,
                Color32::TRANSPARENT,
                stroke,
                StrokeKind::Middle,
            )));
        }
    };
    match look.shape {
        style::Shape::Box => boxed(r, CornerRadius::ZERO),
        style::Shape::Rounded => boxed(r, radius(6.0 * z)),
        style::Shape::Pill => boxed(r, radius(r.height() / 2.0)),
        style::Shape::Stack => {
            let off = 4.0 * z;
            let front = Rect::from_min_max(r.min, r.max - vec2(off, off));
            boxed(front.translate(vec2(off, off)), radius(6.0 * z));
            boxed(front, radius(6.0 * z));
        }
        style::Shape::Ellipse => {
            out.push(Shape::ellipse_filled(r.center(), r.size() / 2.0, fill));
            out.push(Shape::ellipse_stroke(r.center(), r.size() / 2.0, stroke));
        }
    }
}

/// `r` placed as egui's tessellator places a rectangle outlined `stroke`
/// points wide: corners on pixel centres for an outline an odd number of
/// pixels wide (so that it is sharp), on whole pixels otherwise. A fill
/// made here then meets the outline egui draws round the same rectangle.
fn snap_rect(r: Rect, ppp: f32, stroke: f32) -> Rect {
    let px = stroke * ppp;
    let centre = stroke > 0.0 && (px <= 1.0 || px.round() as i64 % 2 == 1);
    let snap = |v: f32| {
        if centre {
            ((v * ppp - 0.5).round() + 0.5) / ppp
        } else {
            (v * ppp).round() / ppp
        }
    };
    Rect::from_min_max(
        pos2(snap(r.min.x), snap(r.min.y)),
        pos2(snap(r.max.x), snap(r.max.y)),
    )
}

/// The inside of `r` with corners rounded by `rad`, added to `mesh` as
/// compact triangles without an anti-aliased fringe: a band across the
/// middle, a band above and below it between the corners, and a small fan
/// in each corner.
fn rounded_fill(mesh: &mut egui::Mesh, r: Rect, rad: f32, colour: Color32) {
    if colour == Color32::TRANSPARENT || !r.is_positive() {
        return;
    }
    let rad = rad.min(r.width() / 2.0).min(r.height() / 2.0).max(0.0);
    if rad < 0.5 {
        mesh.add_colored_rect(r, colour);
        return;
    }
    let (l, t, rr, b) = (r.left(), r.top(), r.right(), r.bottom());
    mesh.add_colored_rect(
        Rect::from_min_max(pos2(l, t + rad), pos2(rr, b - rad)),
        colour,
    );
    mesh.add_colored_rect(
        Rect::from_min_max(pos2(l + rad, t), pos2(rr - rad, t + rad)),
        colour,
    );
    mesh.add_colored_rect(
        Rect::from_min_max(pos2(l + rad, b - rad), pos2(rr - rad, b)),
        colour,
    );
    let steps = ((rad * 0.5).ceil() as u32).clamp(2, 8);
    let quarter = std::f32::consts::FRAC_PI_2;
    for (centre, start) in [
        (pos2(rr - rad, t + rad), -quarter),
        (pos2(rr - rad, b - rad), 0.0),
        (pos2(l + rad, b - rad), quarter),
        (pos2(l + rad, t + rad), 2.0 * quarter),
    ] {
        let base = mesh.vertices.len() as u32;
        mesh.colored_vertex(centre, colour);
        for k in 0..=steps {
            let a = start + quarter * k as f32 / steps as f32;
            mesh.colored_vertex(centre + rad * vec2(a.cos(), a.sin()), colour);
        }
        for k in 0..steps {
            mesh.add_triangle(base, base + 1 + k, base + 2 + k);
        }
    }
}

/// Flat rectangles (the halos under labels) as one mesh of plain quads on
/// whole pixels: drawn as shapes, each would get an anti-aliased fringe
/// of thin slivers, which cost the software renderer more than the
/// rectangle itself (1.7 ms a frame for the names shown far out).
fn flat_rects(rects: impl IntoIterator<Item = Rect>, colour: Color32, ppp: f32) -> Shape {
    let mut mesh = egui::Mesh::default();
    for r in rects {
        mesh.add_colored_rect(snap_rect(r, ppp, 0.0), colour);
    }
    Shape::mesh(mesh)
}

/// The library's legend for this scene ([`style::legend_for`]), in a
/// corner of the canvas.
pub(crate) fn legend(ui: &Ui, painter: &egui::Painter, scene: &Scene, view: Rect, dark: bool) {
    legend_entries(ui, painter, &scene.legend, view, dark);
}

/// The sample of one legend entry, 28 by 16 points from `at`: a box in
/// the entry's look, or an edge with its arrow head.
pub(crate) fn legend_item(
    out: &mut Vec<Shape>,
    item: &style::LegendItem,
    at: Pos2,
    dark: bool,
    ppp: f32,
) {
    let (x, y) = (at.x, at.y);
    match item {
        style::LegendItem::Node(look) => {
            let r = Rect::from_min_size(pos2(x, y + 1.0), vec2(28.0, 14.0));
            box_shapes(out, look, r, 1.0, dark, ppp);
        }
        style::LegendItem::Edge(look) => {
            let c = palette::ink(look.colour, dark);
            let stroke = Stroke::new(look.width as f32, c);
            let (a, b) = (pos2(x, y + 8.0), pos2(x + 22.0, y + 8.0));
            match look.dash {
                style::Dash::Solid => out.push(Shape::line_segment([a, b], stroke)),
                style::Dash::Dashed => out.extend(Shape::dashed_line(&[a, b], stroke, 7.0, 4.0)),
                style::Dash::Dotted => out.extend(Shape::dashed_line(&[a, b], stroke, 2.0, 3.0)),
            }
            out.push(Shape::convex_polygon(
                vec![
                    pos2(x + 28.0, y + 8.0),
                    pos2(x + 19.0, y + 4.0),
                    pos2(x + 19.0, y + 12.0),
                ],
                c,
                Stroke::NONE,
            ));
        }
    }
}

/// A legend of `entries` in a corner of the canvas.
pub(crate) fn legend_entries(
    ui: &Ui,
    painter: &egui::Painter,
    entries: &[style::LegendEntry],
    view: Rect,
    dark: bool,
) {
    if entries.is_empty() || view.height() < 300.0 {
        return;
    }
    let font = FontId::monospace(style::TEXT_SIZE as f32);
    let colour = ui.visuals().text_color();
    let row = 18.0;
    let (x, mut y) = (view.left() + 10.0, view.top() + 10.0);
    let width = entries
        .iter()
        .map(|e| style::text_width(&e.label, style::TEXT_SIZE) as f32)
        .fold(0.0, f32::max)
        + 46.0;
    let bg = Rect::from_min_size(
        pos2(x - 6.0, y - 6.0),
        vec2(width, row * entries.len() as f32 + 8.0),
    );
    painter.rect_filled(bg, 4.0, ui.visuals().panel_fill.gamma_multiply(0.9));
    ui.ctx()
        .data_mut(|d| d.insert_temp(legend_rect_id(), Some(bg)));
    let mut shapes = Vec::new();
    for e in entries {
        legend_entry(&mut shapes, painter, e, pos2(x, y), dark, &font, colour);
        y += row;
    }
    painter.extend(shapes);
}

/// One legend entry at `at`: its sample ([`legend_item`]) into `shapes`,
/// its label beside it.
pub(crate) fn legend_entry(
    shapes: &mut Vec<Shape>,
    painter: &egui::Painter,
    e: &style::LegendEntry,
    at: Pos2,
    dark: bool,
    font: &FontId,
    colour: Color32,
) {
    legend_item(shapes, &e.item, at, dark, painter.ctx().pixels_per_point());
    painter.text(
        at + vec2(36.0, 8.0),
        Align2::LEFT_CENTER,
        &e.label,
        font.clone(),
        colour,
    );
}

pub(crate) fn zoom_label(painter: &egui::Painter, view: Rect, cam: &Camera, ui: &Ui, busy: bool) {
    painter.text(
        view.left_bottom() + vec2(10.0, -8.0),
        Align2::LEFT_BOTTOM,
        format!(
            "{:.0}%  ·  drag to pan, wheel to zoom, F to fit{}",
            cam.zoom * 100.0,
            if busy { "  ·  laying out …" } else { "" }
        ),
        FontId::proportional(11.0),
        ui.visuals().weak_text_color(),
    );
}

/// A small overview in the corner; click or drag in it to move the view.
pub(crate) fn minimap(ui: &mut Ui, scene: &Scene, cam: &mut Camera, view: Rect, dark: bool) {
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
    super::dock::minimap_marks(&painter, scene, cam.visible(view), &to_map, area, dark);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Area of each triangle of `mesh`, and the area of its bounding box
    /// (what the software renderer walks to find the triangle's pixels).
    fn triangle_areas(mesh: &egui::Mesh) -> (f32, f32) {
        let (mut area, mut boxes) = (0.0, 0.0);
        for t in mesh.indices.chunks(3) {
            let [a, b, c] = [0, 1, 2].map(|k| mesh.vertices[t[k] as usize].pos);
            area += ((b - a).x * (c - a).y - (b - a).y * (c - a).x).abs() / 2.0;
            boxes += Rect::from_points(&[a, b, c]).area();
        }
        (area, boxes)
    }

    #[test]
    fn rounded_fill_covers_the_rounded_box_without_slivers() {
        let r = Rect::from_min_max(pos2(10.0, 20.0), pos2(170.0, 34.0));
        for rad in [0.0, 2.0, 7.0] {
            let mut mesh = egui::Mesh::default();
            rounded_fill(&mut mesh, r, rad, Color32::RED);
            let (area, boxes) = triangle_areas(&mesh);
            let want = r.area() - (4.0 - std::f32::consts::PI) * rad * rad;
            assert!(
                (area - want).abs() < 0.02 * r.area(),
                "radius {rad}: area {area}, want {want}"
            );
            // A triangle's box is at least twice its area: these walk
            // little more than that.
            assert!(boxes < 2.5 * r.area(), "radius {rad}: boxes {boxes}");
            // egui's own fill of the same box: one fan from a corner, and a
            // fringe of slivers.
            let mut egui_mesh = egui::Mesh::default();
            let mut t = egui::epaint::Tessellator::new(
                1.0,
                egui::epaint::TessellationOptions::default(),
                [1, 1],
                vec![],
            );
            t.tessellate_shape(
                Shape::rect_filled(r, radius(rad), Color32::RED),
                &mut egui_mesh,
            );
            let (_, egui_boxes) = triangle_areas(&egui_mesh);
            if rad > 0.0 {
                assert!(
                    boxes * 2.0 < egui_boxes,
                    "radius {rad}: {boxes} against egui's {egui_boxes}"
                );
            }
            assert!(
                mesh.vertices.iter().all(|v| r.expand(0.01).contains(v.pos)),
                "radius {rad}: a vertex outside the box"
            );
        }
    }

    #[test]
    fn rounded_fill_of_a_pill_and_of_nothing() {
        // A pill: the radius is half the height, the middle band empty.
        let r = Rect::from_min_max(pos2(0.0, 0.0), pos2(40.0, 14.0));
        let mut mesh = egui::Mesh::default();
        rounded_fill(&mut mesh, r, 7.0, Color32::RED);
        let (area, _) = triangle_areas(&mesh);
        let want = 26.0 * 14.0 + std::f32::consts::PI * 49.0;
        assert!((area - want).abs() < 0.03 * want, "pill area {area}");
        let mut empty = egui::Mesh::default();
        rounded_fill(&mut empty, Rect::NOTHING, 3.0, Color32::RED);
        rounded_fill(&mut empty, r, 3.0, Color32::TRANSPARENT);
        assert!(empty.is_empty());
    }

    #[test]
    fn snap_rect_puts_odd_outlines_on_pixel_centres() {
        let r = Rect::from_min_max(pos2(10.3, 20.6), pos2(50.2, 40.4));
        let odd = snap_rect(r, 1.0, 1.0);
        assert_eq!(odd, Rect::from_min_max(pos2(10.5, 20.5), pos2(50.5, 40.5)));
        let even = snap_rect(r, 1.0, 2.0);
        assert_eq!(even, Rect::from_min_max(pos2(10.0, 21.0), pos2(50.0, 40.0)));
        assert_eq!(snap_rect(r, 1.0, 0.0), even);
        // At two pixels a point a one-point outline is two pixels wide.
        let hidpi = snap_rect(r, 2.0, 1.0);
        assert_eq!(
            hidpi,
            Rect::from_min_max(pos2(10.5, 20.5), pos2(50.0, 40.5))
        );
    }

    #[test]
    fn cut_name_keeps_both_ends_of_a_long_name() {
        assert_eq!(cut_name("ufw-after-logging-input", 11), "ufw-a…input");
        assert_eq!(cut_name("ufw-after-logging-input", 10), "ufw-a…nput");
        assert_eq!(cut_name("INPUT", 5), "INPUT");
        assert_eq!(cut_name("KUBE-SVC-ABCDEFGH", 5), "KU…GH");
        assert_eq!(cut_name("é-chaîne-longue", 6).chars().count(), 6);
    }

    #[test]
    fn label_halos_are_two_triangles_each() {
        let rects = [
            Rect::from_min_size(pos2(0.2, 0.2), vec2(30.0, 13.0)),
            Rect::from_min_size(pos2(40.0, 5.7), vec2(22.4, 13.0)),
        ];
        let Shape::Mesh(mesh) = flat_rects(rects, Color32::BLACK, 1.0) else {
            panic!("not a mesh");
        };
        assert_eq!(mesh.vertices.len(), 8);
        assert_eq!(mesh.indices.len(), 12);
        assert!(
            mesh.vertices
                .iter()
                .all(|v| v.pos.x.fract() == 0.0 && v.pos.y.fract() == 0.0)
        );
    }

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
    fn thin_line_is_a_quad_a_point_wide_per_segment() {
        let mut mesh = egui::Mesh::default();
        let red = Color32::RED;
        thin_line(
            &mut mesh,
            &[
                pos2(0.0, 0.0),
                pos2(10.0, 0.0),
                pos2(10.0, 0.0),
                pos2(10.0, 5.0),
            ],
            red,
        );
        assert_eq!(
            mesh.indices.len(),
            2 * 2 * 3,
            "two segments, the empty one left out"
        );
        let r = mesh.calc_bounds();
        assert_eq!(r, Rect::from_min_max(pos2(0.0, -0.5), pos2(10.5, 5.0)));
        assert!(mesh.vertices.iter().all(|v| v.color == red));
    }

    #[test]
    fn runs_in_keeps_the_segments_in_sight() {
        let area = Rect::from_min_max(pos2(0.0, 0.0), pos2(100.0, 100.0));
        let line = [
            pos2(-500.0, 50.0),
            pos2(-200.0, 50.0),
            pos2(10.0, 50.0),
            pos2(50.0, 50.0),
            pos2(300.0, 50.0),
            pos2(600.0, 50.0),
            pos2(600.0, 60.0),
            pos2(50.0, 60.0),
            pos2(50.0, 300.0),
        ];
        let runs = runs_in(&line, area);
        assert_eq!(
            runs,
            vec![&line[1..=4], &line[6..]],
            "whole segments that meet the area, split where the line leaves it"
        );
        assert!(runs_in(&line[..2], area).is_empty());
        assert!(runs_in(&line[..1], area).is_empty());
    }

    #[test]
    fn pixel_line_marks_the_pixels_along_the_segment() {
        let (w, h) = (64usize, 48usize);
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32
        };
        for _ in 0..500 {
            // Ends inside, outside and far outside the image.
            let a = vec2(next() * 120.0 - 30.0, next() * 90.0 - 20.0);
            let b = vec2(next() * 120.0 - 30.0, next() * 90.0 - 20.0);
            let mut px = vec![Color32::TRANSPARENT; w * h];
            pixel_line(&mut px, w, h, a, b, Color32::RED);
            let d = b - a;
            for (k, c) in px.iter().enumerate() {
                if *c != Color32::RED {
                    continue;
                }
                let p = vec2((k % w) as f32, (k / w) as f32);
                let t = ((p - a).dot(d) / d.length_sq().max(1e-6)).clamp(0.0, 1.0);
                let off = (a + d * t - p).length();
                assert!(off <= 0.75, "{a:?}-{b:?}: pixel {p:?} is {off} away");
            }
            // No gap: every column (or row, for a steep line) the segment
            // crosses inside the image has a pixel of it.
            let steep = d.y.abs() > d.x.abs();
            let (lo, hi) = if steep {
                (a.y.min(b.y), a.y.max(b.y))
            } else {
                (a.x.min(b.x), a.x.max(b.x))
            };
            let (n, m) = if steep { (h, w) } else { (w, h) };
            if hi < 0.0 || lo > n as f32 - 1.0 {
                continue;
            }
            for i in (lo.ceil().max(0.0) as usize)..=(hi.floor().min(n as f32 - 1.0) as usize) {
                // Only where the line at that column is inside the image.
                let t = (i as f32 - if steep { a.y } else { a.x }) / if steep { d.y } else { d.x };
                let other = if steep { a.x + d.x * t } else { a.y + d.y * t };
                if !(0.5..m as f32 - 1.5).contains(&other) {
                    continue;
                }
                let any = (0..m).any(|j| {
                    let k = if steep { i * w + j } else { j * w + i };
                    px[k] == Color32::RED
                });
                assert!(any, "{a:?}-{b:?}: nothing at {i}");
            }
        }
    }

    #[test]
    fn fast_round_rounds_as_round_does() {
        for x in [
            0.0f32, 0.49, 0.5, 0.51, 1.5, 2.5, 1234.4999, -0.4, -0.5, -0.6, -2.5, -1e6, 3e9,
        ] {
            let want = x.round().clamp(i32::MIN as f32, i32::MAX as f32);
            assert_eq!(fast_round(x), want, "{x}");
        }
    }

    #[test]
    fn distance_to_a_segment() {
        let (a, b) = (pos2(0.0, 0.0), pos2(10.0, 0.0));
        assert_eq!(segment_distance(pos2(5.0, 3.0), a, b), 3.0);
        assert_eq!(segment_distance(pos2(-4.0, 3.0), a, b), 5.0);
        assert_eq!(segment_distance(pos2(1.0, 1.0), a, a), 2f32.sqrt());
    }

    #[test]
    fn fit_shows_all_of_a_long_flat_graph() {
        let view = Rect::from_min_size(Pos2::ZERO, vec2(800.0, 600.0));
        let bounds = Rect::from_min_size(pos2(0.0, 0.0), vec2(5000.0, 300.0));
        let mut cam = Camera::default();
        cam.fit(bounds, view);
        assert!(cam.visible(view).contains_rect(bounds));
        assert!(cam.zoom > 0.15, "as large as the width allows");
    }
}
