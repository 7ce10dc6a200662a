//! Top bar: File menu, quick load buttons, search, view switch, theme.

use egui::{Id, Ui};

use super::{Action, Dialog};
use crate::state::{AppState, Siblings, View};

/// Id of the search field, so Ctrl+F can focus it.
pub fn search_id() -> Id {
    Id::unique("iptviz-search")
}

/// Draws the top bar. `search` is the text field's buffer.
pub fn show(
    ui: &mut Ui,
    state: &AppState,
    search: &mut String,
    recent: &[String],
    theme: egui::ThemePreference,
) -> Vec<Action> {
    let mut actions = Vec::new();
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open…  (Ctrl+O)").clicked() {
                actions.push(Action::Open(Dialog::Open));
            }
            if ui.button("Paste rules…").clicked() {
                actions.push(Action::Open(Dialog::Paste));
            }
            if ui.button("Load from this system").clicked() {
                actions.push(Action::LoadLive);
            }
            if ui.button("Show the sample").clicked() {
                actions.push(Action::LoadSample);
            }
            ui.menu_button("Recent files", |ui| {
                if recent.is_empty() {
                    ui.weak("none yet");
                }
                for p in recent {
                    if ui.button(p).clicked() {
                        actions.push(Action::OpenPath(p.clone()));
                    }
                }
            });
            ui.separator();
            if ui
                .add_enabled(
                    state.scene.is_some(),
                    egui::Button::new("Export view…  (Ctrl+E)"),
                )
                .clicked()
            {
                actions.push(Action::Open(Dialog::Export));
            }
        });
        ui.separator();
        if ui
            .button("Open")
            .on_hover_text("Open a file (Ctrl+O)")
            .clicked()
        {
            actions.push(Action::Open(Dialog::Open));
        }
        if ui
            .button("Paste")
            .on_hover_text(
                "Paste iptables-save, iptables -S or iptables -L text (or press Ctrl+V anywhere)",
            )
            .clicked()
        {
            actions.push(Action::Open(Dialog::Paste));
        }
        if ui
            .button("Live")
            .on_hover_text("Read this machine's rules with iptables-save -c (needs root)")
            .clicked()
        {
            actions.push(Action::LoadLive);
        }
        if ui
            .selectable_label(state.compare.open, "Compare…")
            .on_hover_text("Compare the loaded rules with another ruleset: rules added, removed, changed, and which packets change fate")
            .clicked()
        {
            actions.push(Action::Compare(crate::compare_state::CompareAction::Choose));
        }
        // Live reading gives IPv4 and IPv6 rules: switch between them.
        if let Some(doc) = &state.doc
            && doc.siblings.dumps.len() > 1
        {
            for (i, (name, _)) in doc.siblings.dumps.iter().enumerate() {
                let shown = i == doc.siblings.shown;
                if ui
                    .selectable_label(shown, Siblings::label(name))
                    .on_hover_text(name.as_str())
                    .clicked()
                    && !shown
                {
                    actions.push(Action::ShowSibling(i));
                }
            }
        }
        ui.separator();
        let label = ui.label("Search");
        let r = ui
            .add(
                egui::TextEdit::singleline(search)
                    .id(search_id())
                    .hint_text("search chains, comments, IPs, ports (Ctrl+F)")
                    .desired_width(300.0),
            )
            .labelled_by(label.id);
        if r.changed() {
            actions.push(Action::Search(search.clone()));
        }
        if !search.is_empty() && ui.small_button("x").on_hover_text("Clear (Esc)").clicked() {
            search.clear();
            actions.push(Action::Search(String::new()));
        }
        ui.separator();
        if ui
            .selectable_label(state.view == View::Graph, "Graph")
            .clicked()
        {
            actions.push(Action::SetView(View::Graph));
        }
        if ui
            .selectable_label(state.view == View::Flow, "Flow")
            .on_hover_text("Hook order: which table sees a packet when")
            .clicked()
        {
            actions.push(Action::SetView(View::Flow));
        }
        if ui
            .selectable_label(state.view == View::Conntrack, "Conntrack")
            .on_hover_text("The connection tracking table: entries, NAT, counters")
            .clicked()
        {
            actions.push(Action::SetView(View::Conntrack));
        }
        if ui
            .selectable_label(state.view == View::Reach, "Reach")
            .on_hover_text("Who can reach whom: classes of addresses a chain treats alike, and the pairs it accepts on a port")
            .clicked()
        {
            actions.push(Action::SetView(View::Reach));
        }
        if ui
            .selectable_label(state.trace.open, "Trace")
            .on_hover_text("Where does a packet go? Simulate one through the rules")
            .clicked()
        {
            actions.push(Action::Trace(crate::trace_state::TraceAction::Toggle));
        }
        if ui
            .button("Fit")
            .on_hover_text("Show the whole graph (F)")
            .clicked()
        {
            actions.push(Action::Fit);
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let mut t = theme;
            egui::ComboBox::from_label("Theme")
                .selected_text(match t {
                    egui::ThemePreference::System => "System theme",
                    egui::ThemePreference::Light => "Light",
                    egui::ThemePreference::Dark => "Dark",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut t, egui::ThemePreference::System, "System theme");
                    ui.selectable_value(&mut t, egui::ThemePreference::Light, "Light");
                    ui.selectable_value(&mut t, egui::ThemePreference::Dark, "Dark");
                });
            if t != theme {
                actions.push(Action::Theme(t));
            }
        });
    });
    actions
}
