//! The strips around a graph canvas: a bar with the zoom and two toggles,
//! the legend under it, and the minimap along the bottom. They take their
//! room from the graph instead of lying over it, and each can be folded
//! away (the choice is remembered between runs).

use egui::{
    Align, Color32, Context, FontId, Id, Layout, Pos2, Rect, Sense, Stroke, StrokeKind, Ui,
    UiBuilder, Vec2, pos2, vec2,
};
use iptviz::render::style;
use serde::{Deserialize, Serialize};

use super::canvas::{Camera, legend_entry};
use crate::palette;
use crate::scene::Scene;

/// Which strips are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DockPrefs {
    /// Show the legend under the bar.
    pub legend: bool,
    /// Show the minimap when the graph is not all in sight.
    pub minimap: bool,
}

impl Default for DockPrefs {
    fn default() -> Self {
        DockPrefs {
            legend: true,
            minimap: true,
        }
    }
}

impl DockPrefs {
    fn id() -> Id {
        Id::unique("iptviz-canvas-dock-prefs")
    }

    /// The remembered choice (both open at first).
    pub fn load(ctx: &Context) -> DockPrefs {
        ctx.data_mut(|d| *d.get_persisted_mut_or_default::<DockPrefs>(Self::id()))
    }

    /// Remembers the choice.
    pub fn store(self, ctx: &Context) {
        ctx.data_mut(|d| d.insert_persisted(Self::id(), self));
    }
}

/// Height of the bar.
pub const BAR: f32 = 24.0;
/// Height of a legend row.
const ROW: f32 = 18.0;
/// Height of the minimap strip.
pub const MAP_HEIGHT: f32 = 110.0;

/// Where the strips and the graph are this frame (screen points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dock {
    /// Which canvas (its own memory of the last graph area).
    pub key: &'static str,
    /// All of the canvas.
    pub full: Rect,
    /// The bar along the top.
    pub bar: Rect,
    /// The legend strip, when shown.
    pub legend: Option<Rect>,
    /// The minimap strip, when shown.
    pub minimap: Option<Rect>,
    /// What is left for the graph.
    pub graph: Rect,
}

impl Dock {
    fn memory(key: &str) -> Id {
        Id::unique(("iptviz-canvas-dock", key))
    }

    /// The dock canvas `key` used last (tests and the app map world points
    /// to the screen through its graph area).
    pub fn last(ctx: &Context, key: &str) -> Option<Dock> {
        ctx.data(|d| d.get_temp::<Dock>(Self::memory(key).with("dock")))
    }

    /// Divides `full` between the strips and the graph. The camera looks at
    /// the centre of the graph area, so when that area changes (a strip
    /// opens or closes) the camera moves with it and the picture stays
    /// where it was on screen. `fit` fits `bounds` into the area first.
    pub fn layout(
        ctx: &Context,
        key: &'static str,
        full: Rect,
        entries: &[style::LegendEntry],
        bounds: Option<Rect>,
        cam: &mut Camera,
        fit: bool,
    ) -> Dock {
        let prefs = DockPrefs::load(ctx);
        let bar = Rect::from_min_size(full.min, vec2(full.width(), BAR));
        let legend = (prefs.legend && !entries.is_empty()).then(|| {
            let rows = legend_rows(entries, full.width() - 16.0).len();
            Rect::from_min_size(
                pos2(full.left(), bar.bottom()),
                vec2(full.width(), rows as f32 * ROW + 6.0),
            )
        });
        let top = legend
            .map_or(bar.bottom(), |l| l.bottom())
            .min(full.bottom());
        let rest = Rect::from_min_max(pos2(full.left(), top), full.max);
        let memory = Self::memory(key);
        let mut area: Rect = ctx.data(|d| d.get_temp(memory)).unwrap_or(rest);
        let move_to = |cam: &mut Camera, area: &mut Rect, to: Rect| {
            if cam.zoom > 0.0 {
                cam.center += (to.center() - area.center()) / cam.zoom;
            }
            *area = to;
        };
        let mut minimap = None;
        match bounds {
            Some(b) if fit => {
                cam.fit(b, rest);
                area = rest;
            }
            _ => move_to(cam, &mut area, rest),
        }
        if let Some(b) = bounds
            && prefs.minimap
            && rest.height() >= MAP_HEIGHT * 2.5
            && rest.width() >= 300.0
            && !cam.visible(rest).contains_rect(b)
        {
            let graph =
                Rect::from_min_max(rest.min, pos2(rest.right(), rest.bottom() - MAP_HEIGHT));
            move_to(cam, &mut area, graph);
            minimap = Some(Rect::from_min_max(
                pos2(rest.left(), graph.bottom()),
                rest.max,
            ));
        }
        let dock = Dock {
            key,
            full,
            bar,
            legend,
            minimap,
            graph: area,
        };
        ctx.data_mut(|d| {
            d.insert_temp(memory, area);
            d.insert_temp(memory.with("dock"), dock);
        });
        dock
    }

    /// Draws the bar (with its toggles), the legend and the minimap; a
    /// click or drag in the minimap moves the camera.
    pub fn paint(
        &self,
        ui: &mut Ui,
        scene: Option<&Scene>,
        entries: &[style::LegendEntry],
        cam: &mut Camera,
        busy: bool,
    ) {
        let dark = ui.visuals().dark_mode;
        let painter = ui.painter_at(self.full);
        // The strips are not filled: the canvases paint their background
        // on the graph area only, and around it the window is cleared to
        // the panel colour (see `IptvizApp::clear_color`). On the software
        // renderer every pixel a shape covers costs, however plain.
        let line = Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color);
        painter.hline(self.bar.x_range(), self.bar.bottom(), line);
        let mut prefs = DockPrefs::load(ui.ctx());
        let before = prefs;
        ui.scope_builder(
            UiBuilder::new()
                .max_rect(self.bar.shrink2(vec2(6.0, 1.0)))
                .layout(Layout::left_to_right(Align::Center)),
            |ui| {
                ui.spacing_mut().button_padding = vec2(4.0, 0.0);
                ui.toggle_value(&mut prefs.legend, "Legend")
                    .on_hover_text("Show or hide the legend");
                ui.toggle_value(&mut prefs.minimap, "Minimap")
                    .on_hover_text("Show the overview while the graph is not all in sight");
                ui.add_space(6.0);
                ui.weak(format!(
                    "{:.0}%  ·  drag to pan, wheel to zoom, F to fit{}",
                    cam.zoom * 100.0,
                    if busy { "  ·  laying out …" } else { "" }
                ));
            },
        );
        if prefs != before {
            prefs.store(ui.ctx());
            ui.ctx().request_repaint();
        }
        if let Some(r) = self.legend {
            painter.hline(r.x_range(), r.bottom(), line);
            paint_legend(ui, &painter, entries, r, dark);
        }
        if let (Some(r), Some(scene)) = (self.minimap, scene) {
            painter.hline(r.x_range(), r.top(), line);
            minimap(ui, scene, cam, r.shrink(4.0), self.graph, dark);
        }
    }
}

/// Width of one legend entry: the sample, a gap, the text, a gap.
fn entry_width(e: &style::LegendEntry) -> f32 {
    36.0 + style::text_width(&e.label, style::TEXT_SIZE) as f32 + 14.0
}

/// The entries flowed into rows no wider than `width`: per row, the
/// entries' indices.
fn legend_rows(entries: &[style::LegendEntry], width: f32) -> Vec<Vec<usize>> {
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut x = f32::MAX;
    for (i, e) in entries.iter().enumerate() {
        let w = entry_width(e);
        if x + w > width && !rows.last().is_some_and(|r| r.is_empty()) {
            rows.push(Vec::new());
            x = 0.0;
        }
        rows.last_mut().expect("a row").push(i);
        x += w;
    }
    rows
}

fn paint_legend(
    ui: &Ui,
    painter: &egui::Painter,
    entries: &[style::LegendEntry],
    area: Rect,
    dark: bool,
) {
    let font = FontId::monospace(style::TEXT_SIZE as f32);
    let colour = ui.visuals().text_color();
    let mut shapes = Vec::new();
    for (ri, row) in legend_rows(entries, area.width() - 16.0).iter().enumerate() {
        let y = area.top() + 3.0 + ri as f32 * ROW;
        let mut x = area.left() + 8.0;
        for &i in row {
            let e = &entries[i];
            legend_entry(&mut shapes, painter, e, pos2(x, y), dark, &font, colour);
            x += entry_width(e);
        }
    }
    painter.extend(shapes);
}

/// The whole graph small, in `area`, with the part in sight outlined;
/// click or drag to look elsewhere.
fn minimap(ui: &mut Ui, scene: &Scene, cam: &mut Camera, area: Rect, graph: Rect, dark: bool) {
    let response = ui.interact(area, ui.scope_id().with("minimap"), Sense::click_and_drag());
    let b = scene.bounds;
    let scale = (area.width() / b.width().max(1.0)).min(area.height() / b.height().max(1.0));
    let origin = area.center() - b.center().to_vec2() * scale;
    let to_map = |p: Pos2| origin + p.to_vec2() * scale;
    if let Some(p) = response.interact_pointer_pos() {
        cam.center = ((p - origin) / scale).to_pos2();
    }
    let painter = ui.painter_at(area);
    painter.rect_stroke(
        Rect::from_min_max(to_map(b.min), to_map(b.max)).expand(2.0),
        2.0,
        Stroke::new(1.0, ui.visuals().weak_text_color().gamma_multiply(0.5)),
        StrokeKind::Outside,
    );
    minimap_marks(&painter, scene, cam.visible(graph), &to_map, area, dark);
}

/// The boxes of `scene` as dots and the part in sight (`vis`, graph
/// coordinates) outlined, drawn through `to_map` into `area` of a minimap.
/// The dots are one image, made again only when the scene, the map's
/// place in `area` or the theme change: hundreds of tiny rectangles cost
/// the software renderer far more than one textured one.
pub(crate) fn minimap_marks(
    painter: &egui::Painter,
    scene: &Scene,
    vis: Rect,
    to_map: &dyn Fn(Pos2) -> Pos2,
    area: Rect,
    dark: bool,
) {
    let ctx = painter.ctx();
    let ppp = ctx.pixels_per_point();
    let w = (area.width() * ppp).round().max(1.0) as usize;
    let h = (area.height() * ppp).round().max(1.0) as usize;
    let (a, b) = (
        to_map(scene.bounds.min) - area.min,
        to_map(scene.bounds.max) - area.min,
    );
    let key = MapKey {
        scene: scene as *const Scene as usize,
        nodes: scene.nodes.len(),
        size: (w, h),
        place: [a.x, a.y, b.x, b.y].map(f32::to_bits),
        ppp: ppp.to_bits(),
        dark,
    };
    let id = egui::Id::unique("iptviz-minimap-dots");
    let cached = ctx.data(|d| d.get_temp::<(MapKey, egui::TextureHandle)>(id));
    let texture = match cached {
        Some((k, t)) if k == key => t,
        cached => {
            let image = minimap_image(scene, to_map, area.min, ppp, (w, h), dark);
            super::canvas::PicturesMade::count(ctx, |c| c.minimap += 1);
            let texture = match cached {
                Some((_, mut t)) => {
                    t.set(image, egui::TextureOptions::NEAREST);
                    t
                }
                None => ctx.load_texture("iptviz-minimap", image, egui::TextureOptions::NEAREST),
            };
            ctx.data_mut(|d| d.insert_temp(id, (key, texture.clone())));
            texture
        }
    };
    let shown = Rect::from_min_size(area.min, vec2(w as f32, h as f32) / ppp);
    painter.image(
        texture.id(),
        shown,
        Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    let vr = Rect::from_min_max(to_map(vis.min), to_map(vis.max)).intersect(area);
    painter.rect_stroke(
        vr,
        0.0,
        Stroke::new(1.5, palette::selected_colour(dark)),
        StrokeKind::Inside,
    );
}

/// What the minimap's image was drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
struct MapKey {
    scene: usize,
    nodes: usize,
    size: (usize, usize),
    /// The scene's corners on the map, from the map's corner (bits).
    place: [u32; 4],
    ppp: u32,
    dark: bool,
}

/// The minimap's dots in an image of `w` by `h` pixels whose top left is
/// `origin` (screen points): a sample of the boxes when there are
/// thousands, each at least one and a half points wide and tall, as the
/// shapes it replaces drew them.
fn minimap_image(
    scene: &Scene,
    to_map: &dyn Fn(Pos2) -> Pos2,
    origin: Pos2,
    ppp: f32,
    (w, h): (usize, usize),
    dark: bool,
) -> egui::ColorImage {
    let dot = if dark {
        Color32::from_gray(150)
    } else {
        Color32::from_gray(110)
    };
    let mut px = vec![Color32::TRANSPARENT; w * h];
    let step = (scene.nodes.len() / 800).max(1);
    for n in scene.nodes.iter().step_by(step) {
        let r = Rect::from_min_max(to_map(n.rect.min), to_map(n.rect.max));
        let r = Rect::from_center_size(r.center(), r.size().max(Vec2::splat(1.5)));
        let (a, b) = ((r.min - origin) * ppp, (r.max - origin) * ppp);
        let x0 = (a.x.round().max(0.0) as usize).min(w);
        let y0 = (a.y.round().max(0.0) as usize).min(h);
        let x1 = (b.x.round().max(a.x.round() + 1.0).max(0.0) as usize).min(w);
        let y1 = (b.y.round().max(a.y.round() + 1.0).max(0.0) as usize).min(h);
        for y in y0..y1 {
            px[y * w + x0..y * w + x1].fill(dot);
        }
    }
    egui::ColorImage::new([w, h], px)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(label: &str) -> style::LegendEntry {
        style::LegendEntry {
            label: label.into(),
            item: style::LegendItem::Node(style::node_style(
                iptviz::graph::ViewNodeKind::User,
                "filter",
            )),
        }
    }

    #[test]
    fn legend_rows_wrap_and_keep_every_entry() {
        let entries: Vec<_> = (0..9).map(|i| entry(&format!("entry {i}"))).collect();
        let w = entry_width(&entries[0]);
        let rows = legend_rows(&entries, w * 4.0 + 1.0);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.concat(), (0..9).collect::<Vec<_>>());
        // Narrower than one entry: one a row, none dropped.
        assert_eq!(legend_rows(&entries, 10.0).len(), 9);
    }

    #[test]
    fn a_strip_opening_keeps_the_picture_in_place() {
        let ctx = Context::default();
        let full = Rect::from_min_size(Pos2::ZERO, vec2(800.0, 600.0));
        let bounds = Rect::from_min_size(Pos2::ZERO, vec2(4000.0, 3000.0));
        let mut cam = Camera::default();
        let first = Dock::layout(&ctx, "t", full, &[], Some(bounds), &mut cam, true);
        assert!(first.minimap.is_none(), "fitted: all in sight");
        assert!(cam.visible(first.graph).contains_rect(bounds));
        // Zoom in: the minimap opens, the graph area shrinks, and a point
        // on screen shows the same world point as before.
        cam.zoom_at(first.graph, first.graph.center(), 4.0);
        let probe = first.graph.left_top() + vec2(100.0, 100.0);
        let world = cam.to_world(first.graph, probe);
        let second = Dock::layout(&ctx, "t", full, &[], Some(bounds), &mut cam, false);
        let map = second.minimap.expect("minimap when zoomed in");
        assert!(!map.intersects(second.graph.shrink(0.5)));
        assert!((cam.to_world(second.graph, probe) - world).length() < 1e-3);
        // Folded away: no minimap, the graph gets the room back.
        DockPrefs {
            legend: true,
            minimap: false,
        }
        .store(&ctx);
        let third = Dock::layout(&ctx, "t", full, &[], Some(bounds), &mut cam, false);
        assert!(third.minimap.is_none());
        assert!(third.graph.height() > second.graph.height());
        assert!((cam.to_world(third.graph, probe) - world).length() < 1e-3);
    }
}
