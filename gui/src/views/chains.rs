//! Left panel: tables, then either search results or the chain list.

use egui::{RichText, ScrollArea, Ui};

use super::Action;
use crate::state::{AppState, ChainRef};

/// Draws the left panel. `filter` is the panel's own chain filter text.
pub fn show(ui: &mut Ui, state: &AppState, filter: &mut String) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(doc) = &state.doc else {
        ui.weak("Nothing loaded.");
        return actions;
    };
    ui.heading("Tables");
    for (i, t) in doc.parsed.ruleset.tables.iter().enumerate() {
        let text = format!(
            "{}  ({} chains, {} rules)",
            t.name,
            t.chains.len(),
            doc.graphs
                .get(i)
                .map_or_else(|| t.rule_count(), |g| g.rules)
        );
        if ui.selectable_label(i == state.table, text).clicked() {
            actions.push(Action::SetTable(i));
        }
    }
    ui.separator();

    if !state.query.trim().is_empty() {
        ui.horizontal(|ui| {
            ui.heading("Results");
            ui.weak(format!("{} hit(s)", state.hit_total));
        });
        if state.hits.is_empty() {
            ui.weak("No chain, comment, address or port matches.");
        }
        let row = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
        ScrollArea::vertical()
            .id_salt("hits")
            .auto_shrink([false, false])
            .show_rows(ui, row, state.hits.len(), |ui, range| {
                for hit in &state.hits[range] {
                    let sel = state.selected == Some(hit.at);
                    if ui
                        .selectable_label(sel, RichText::new(&hit.text).small())
                        .clicked()
                    {
                        actions.push(Action::Select(hit.at));
                    }
                }
            });
        return actions;
    }

    let table = &doc.parsed.ruleset.tables[state.table];
    ui.horizontal(|ui| {
        let label = ui.heading("Chains");
        ui.add(
            egui::TextEdit::singleline(filter)
                .hint_text("filter")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    });
    let needle = filter.trim().to_ascii_lowercase();
    let shown: Vec<usize> = table
        .chains
        .iter()
        .enumerate()
        .filter(|(_, c)| needle.is_empty() || crate::state::contains_ci(&c.name, &needle))
        .map(|(i, _)| i)
        .collect();
    let row = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    ScrollArea::vertical()
        .id_salt("chains")
        .auto_shrink([false, false])
        .show_rows(ui, row, shown.len(), |ui, range| {
            for &ci in &shown[range] {
                let c = &table.chains[ci];
                let at = ChainRef {
                    table: state.table,
                    chain: ci,
                };
                let mut text = RichText::new(c.name.as_str());
                if c.builtin {
                    text = text.strong();
                }
                let r = ui.selectable_label(state.selected == Some(at), text);
                if r.clicked() {
                    actions.push(Action::Select(at));
                }
                r.on_hover_text(crate::scene::plural(c.rules.len(), "rule"));
            }
        });
    actions
}
