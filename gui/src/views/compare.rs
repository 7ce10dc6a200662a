//! Compare panel (bottom): the loaded rules against another ruleset, as
//! `iptviz diff` compares them. Rule differences on the left (per table
//! and chain, with their text and lines in each file), packets that change
//! fate on the right (with an example packet and the deciding rule on each
//! side). A click selects the rule; an example can be traced.

use egui::{Color32, RichText, ScrollArea, Ui};
use iptviz::graph::DiffMark;
use iptviz::render::style;

use super::{Action, Dialog};
use crate::compare_state::{CompareAction, CompareResult, Pick, RowKind, describe_box};
use crate::palette;
use crate::state::AppState;

fn act(a: CompareAction) -> Action {
    Action::Compare(a)
}

/// The colour of a mark, as the graph and `iptviz render --diff` draw it.
pub fn mark_colour(m: DiffMark, dark: bool) -> Color32 {
    palette::ink(style::diff_colour(m), dark)
}

/// Draws the Compare panel.
pub fn show(ui: &mut Ui, state: &AppState) -> Vec<Action> {
    let mut actions = Vec::new();
    // Keep the panel's size while there is little to show (before the
    // first result): egui remembers a panel as big as what it drew.
    ui.set_min_height(ui.available_height());
    let c = &state.compare;
    let doc = state.doc.as_ref();
    ui.horizontal(|ui| {
        ui.strong("Compare");
        match (&c.other, doc) {
            (Some(o), Some(d)) => {
                ui.label(format!("old: {}  ->  new (loaded): {}", o.name, d.name));
            }
            _ => {
                ui.weak("the loaded rules (new) with another ruleset (old)");
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .button("Close")
                .on_hover_text("Hide the comparison")
                .clicked()
            {
                actions.push(act(CompareAction::Toggle));
            }
            if ui
                .add_enabled(c.other.is_some(), egui::Button::new("Swap sides"))
                .on_hover_text("Show the other ruleset and compare the loaded one against it")
                .clicked()
            {
                actions.push(act(CompareAction::Swap));
            }
            if ui
                .button("Other file…")
                .on_hover_text(
                    "Choose the ruleset to compare with (or drop a file, or paste with Ctrl+V)",
                )
                .clicked()
            {
                actions.push(Action::Open(Dialog::Compare));
            }
        });
    });
    if let Some(label) = c.reading() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!("{label} …"));
        });
    }
    if let Some(t) = c.busy() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(format!(
                "comparing: rule diff, then which packets change fate … {:.1} s",
                t.as_secs_f32()
            ));
            if ui.button("Cancel").clicked() {
                actions.push(act(CompareAction::Cancel));
            }
        });
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(100));
    }
    let dark = ui.visuals().dark_mode;
    if let Some(e) = &c.error {
        ui.colored_label(palette::verdict_colour("DROP", dark), e);
    }
    let Some(r) = c.current(doc) else {
        if c.other.is_none() && c.reading().is_none() {
            ui.weak(
                "Choose the ruleset to compare with: Other file… (a path), drop a file on the \
                 window, or paste its text with Ctrl+V while this panel is open. The loaded \
                 rules are the new side.",
            );
        } else if c.cancelled && c.busy().is_none() {
            ui.weak(
                "Comparison stopped. Choose another file, or load other rules, to compare again.",
            );
        }
        return actions;
    };
    if r.same() {
        ui.label(RichText::new(r.verdict()).strong());
        return actions;
    }
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(r.verdict()).strong());
        ui.weak(format!(
            "{} · compared in {:.2} s",
            r.summary(),
            r.took.as_secs_f64()
        ));
    });
    ui.columns(2, |cols| {
        rule_list(&mut cols[0], state, r, dark, &mut actions);
        fate_list(&mut cols[1], state, r, dark, &mut actions);
    });
    actions
}

fn row_colour(kind: RowKind, ui: &Ui, dark: bool) -> Color32 {
    match kind {
        RowKind::Added => mark_colour(DiffMark::Added, dark),
        RowKind::Removed => mark_colour(DiffMark::Removed, dark),
        RowKind::Changed | RowKind::Moved | RowKind::Policy => mark_colour(DiffMark::Changed, dark),
        RowKind::Was => ui.visuals().weak_text_color(),
        RowKind::Table | RowKind::Chain => ui.visuals().strong_text_color(),
    }
}

fn rule_list(
    ui: &mut Ui,
    state: &AppState,
    r: &CompareResult,
    dark: bool,
    actions: &mut Vec<Action>,
) {
    ui.horizontal(|ui| {
        ui.strong(format!("Rule differences ({} lines)", r.rows.len()));
        ui.weak("+ added  - removed  ~ changed  > moved; click to select");
    });
    let row = ui.text_style_height(&egui::TextStyle::Monospace) + 6.0;
    ScrollArea::vertical()
        .id_salt("compare-rules")
        .auto_shrink([false, false])
        .show_rows(ui, row, r.rows.len(), |ui, range| {
            for i in range {
                let d = &r.rows[i];
                let mut text = RichText::new(&d.text)
                    .monospace()
                    .color(row_colour(d.kind, ui, dark));
                if matches!(d.kind, RowKind::Table | RowKind::Chain) {
                    text = text.strong();
                }
                let picked = state.compare.pick == Some(Pick::Row(i));
                let mut hover = d.text.trim().to_string();
                if let Some(o) = &d.old {
                    hover.push_str(&format!(
                        "\nold (#{}, line {} of {}): {}",
                        o.index, o.line, r.old_name, o.text
                    ));
                }
                if let Some(n) = &d.new {
                    hover.push_str(&format!(
                        "\nnew (#{}, line {} of {}): {}",
                        n.index, n.line, r.new_name, n.text
                    ));
                }
                let resp = ui
                    .add(egui::Button::selectable(picked, text).truncate())
                    .on_hover_text(hover);
                if resp.clicked() {
                    actions.push(act(CompareAction::Pick(Pick::Row(i))));
                }
            }
        });
}

fn fate_list(
    ui: &mut Ui,
    state: &AppState,
    r: &CompareResult,
    dark: bool,
    actions: &mut Vec<Action>,
) {
    let s = match &r.semantic {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            ui.strong("Packets that change fate");
            ui.label(format!("not compared: {e}"));
            return;
        }
        None => return,
    };
    let total: usize = s.paths.iter().map(|p| p.total).sum();
    ui.horizontal(|ui| {
        ui.strong(format!("Packets that change fate ({total})"));
        if !s.same {
            ui.weak("old -> new outcome; click to select the rule deciding now");
        }
    });
    if s.same {
        ui.label(format!(
            "No packet changes fate in the {} chains compared: the rules differ, the \
             firewall does the same.",
            s.compared.len()
        ));
    }
    for k in &s.skipped {
        ui.colored_label(palette::verdict_colour("LOG", dark), k);
    }
    if r.fates.len() < total {
        ui.weak(format!(
            "the first {} of each chain's boxes are listed ({} in all)",
            iptviz::diff::semantic::MAX_BOXES,
            total
        ));
    }
    if r.fates.is_empty() {
        return;
    }
    let line = ui.text_style_height(&egui::TextStyle::Body);
    let row = line * 3.0 + 14.0;
    ScrollArea::vertical()
        .id_salt("compare-fates")
        .auto_shrink([false, false])
        .show_rows(ui, row, r.fates.len(), |ui, range| {
            for i in range {
                let Some((table, chain, b)) = r.fate(i) else {
                    continue;
                };
                ui.allocate_ui(egui::vec2(ui.available_width(), row), |ui| {
                    ui.set_min_height(row);
                    ui.spacing_mut().item_spacing.y = 1.0;
                    let head = format!(
                        "{table} {chain}: {}  {} -> {}",
                        describe_box(b),
                        b.old.outcome,
                        b.new.outcome
                    );
                    let picked = state.compare.pick == Some(Pick::Fate(i));
                    let resp = ui
                        .add(
                            egui::Button::selectable(
                                picked,
                                RichText::new(&head)
                                    .strong()
                                    .color(mark_colour(DiffMark::Changed, dark)),
                            )
                            .truncate(),
                        )
                        .on_hover_text(&head);
                    if resp.clicked() {
                        actions.push(act(CompareAction::Pick(Pick::Fate(i))));
                    }
                    ui.horizontal(|ui| {
                        if ui
                            .small_button("Trace example")
                            .on_hover_text("Trace this packet through the loaded rules")
                            .clicked()
                        {
                            actions.push(act(CompareAction::TraceExample(i)));
                        }
                        ui.add(
                            egui::Label::new(
                                RichText::new(format!("example: {}", b.example_text)).monospace(),
                            )
                            .truncate(),
                        );
                    });
                    let decided = format!("before: {}  ·  now: {}", b.old.by, b.new.by);
                    let mut hover =
                        format!("before ({}): {} by {}", r.old_name, b.old.outcome, b.old.by);
                    if let Some(t) = &b.old.rule {
                        hover.push_str(&format!("\n    {t}"));
                    }
                    hover.push_str(&format!(
                        "\nnow ({}): {} by {}",
                        r.new_name, b.new.outcome, b.new.by
                    ));
                    if let Some(t) = &b.new.rule {
                        hover.push_str(&format!("\n    {t}"));
                    }
                    ui.add(egui::Label::new(RichText::new(decided).weak()).truncate())
                        .on_hover_text(hover);
                });
            }
        });
}
