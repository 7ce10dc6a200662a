//! The hook-order view: the library's netfilter picture, the one
//! `iptviz render --flow` writes, painted like the graph canvas. Drag to
//! pan, wheel to zoom, F to fit; click a table's box to open its chain.

use egui::{Align2, FontId, Sense, Ui};

use super::Action;
use super::canvas::{self, Camera, Paint};
use super::dock::Dock;
use crate::scene::FlowScene;
use crate::state::{AppState, ChainRef};

/// The flow canvas's key for its [`Dock`].
pub const FLOW_DOCK: &str = "flow";

/// Draws the flow view; `fit` frames the whole picture first (a new
/// document, or the user asked).
pub fn show(ui: &mut Ui, state: &AppState, cam: &mut Camera, fit: bool) -> Vec<Action> {
    let mut actions = Vec::new();
    let full = ui.available_rect_before_wrap();
    ui.allocate_rect(full, Sense::hover());
    let dark = ui.visuals().dark_mode;
    let background = ui.visuals().extreme_bg_color;
    let flow = state.doc.as_ref().map(|d| &d.flow);
    let entries = flow.map(|f| f.scene.legend.clone()).unwrap_or_default();
    let bounds = flow.map(|f| f.scene.bounds);
    let dock = Dock::layout(ui.ctx(), FLOW_DOCK, full, &entries, bounds, cam, fit);
    let view = dock.graph;
    // Only the graph area: the dock's strips show the panel colour.
    ui.painter_at(view).rect_filled(view, 0.0, background);
    let response = ui.interact(
        view,
        ui.scope_id().with("flow-canvas"),
        Sense::click_and_drag(),
    );
    let painter = ui.painter_at(view);
    let Some(doc) = &state.doc else {
        painter.text(
            view.center(),
            Align2::CENTER_CENTER,
            "Nothing loaded",
            FontId::proportional(16.0),
            ui.visuals().weak_text_color(),
        );
        dock.paint(ui, None, &entries, cam, false);
        return actions;
    };
    let flow: &FlowScene = &doc.flow;
    let scene = &flow.scene;
    canvas::pan_and_zoom(ui, &response, cam, view);

    let visible = cam.visible(view).expand(4.0 / cam.zoom);
    let hovered = response
        .hover_pos()
        .and_then(|p| scene.node_at(cam.to_world(view, p)));
    let selected = state.selected.and_then(|s| flow.node_of(s.table, s.chain));
    let edges: Vec<usize> = (0..scene.edges.len())
        .filter(|&i| scene.edges[i].bounds.intersects(visible))
        .collect();
    let paint = Paint {
        painter: &painter,
        cam,
        view,
        dark,
        background,
    };
    for c in &scene.clusters {
        paint.cluster(c);
    }
    paint.edges(scene, &edges, None);
    paint.nodes(scene, state, visible, selected, hovered);
    paint.edge_labels(scene, &edges);

    if let Some(n) = hovered {
        let node = &scene.nodes[n];
        response.clone().on_hover_ui_at_pointer(|ui| {
            ui.strong(&node.title);
            ui.label(&node.hover);
            let chain = flow.chains[n].and_then(|(t, c)| {
                let table = doc.parsed.ruleset.tables.get(t)?;
                Some((table, c, table.chains.get(c)?))
            });
            if let Some((table, ci, c)) = chain {
                // An nft chain's rules as nft writes them.
                for ri in 0..c.rules.len().min(6) {
                    let text = table.rule_text(ci, ri).unwrap_or_default();
                    ui.monospace(crate::state::short(text, 100));
                }
                if c.rules.len() > 6 {
                    ui.weak(format!("… {} more", c.rules.len() - 6));
                }
                ui.weak("click to open the chain");
            }
        });
    }
    if response.clicked()
        && let Some(n) = hovered
        && let Some((table, chain)) = flow.chains[n]
    {
        actions.push(Action::Select(ChainRef { table, chain }));
    }

    dock.paint(ui, Some(scene), &entries, cam, false);
    actions
}
