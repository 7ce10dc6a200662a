//! The hook-order view: the library's netfilter picture, the one
//! `iptviz render --flow` writes, painted like the graph canvas. Drag to
//! pan, wheel to zoom, F to fit; click a table's box to open its chain.

use egui::{Align2, FontId, Sense, Ui};

use super::Action;
use super::canvas::{self, Camera, Paint};
use crate::scene::FlowScene;
use crate::state::{AppState, ChainRef};

/// Draws the flow view; `fit` frames the whole picture first (a new
/// document, or the user asked).
pub fn show(ui: &mut Ui, state: &AppState, cam: &mut Camera, fit: bool) -> Vec<Action> {
    let mut actions = Vec::new();
    let (view, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    let dark = ui.visuals().dark_mode;
    let painter = ui.painter_at(view);
    let background = ui.visuals().extreme_bg_color;
    painter.rect_filled(view, 0.0, background);
    let Some(doc) = &state.doc else {
        painter.text(
            view.center(),
            Align2::CENTER_CENTER,
            "Nothing loaded",
            FontId::proportional(16.0),
            ui.visuals().weak_text_color(),
        );
        return actions;
    };
    let flow: &FlowScene = &doc.flow;
    let scene = &flow.scene;
    if fit {
        cam.fit(scene.bounds, view);
    }
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
                table.chains.get(c)
            });
            if let Some(c) = chain {
                for r in c.rules.iter().take(6) {
                    ui.monospace(crate::state::short(&r.text, 100));
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

    canvas::legend(ui, &painter, scene, view, dark);
    canvas::minimap(ui, scene, cam, view, dark);
    canvas::zoom_label(&painter, view, cam, ui, false);
    actions
}
