//! Bottom panel: what could not be parsed, with the source line of the
//! chosen problem and a caret under the column; and what lint found
//! (rules that can never match or change nothing), each as FILE:LINE with
//! the reason, a click selecting the rule.

use egui::{RichText, ScrollArea, Ui};
use iptviz::parse::Severity;

use super::Action;
use crate::palette;
use crate::state::AppState;

/// Draws the problems list.
pub fn show(ui: &mut Ui, state: &AppState) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(doc) = &state.doc else {
        return actions;
    };
    lint_findings(ui, state, &mut actions);
    let problems = &doc.parsed.problems;
    let dark = ui.visuals().dark_mode;
    ui.horizontal(|ui| {
        ui.strong(format!("Problems ({})", problems.len()));
        if problems.is_empty() {
            ui.weak("none: every line parsed");
        } else {
            ui.weak("lines that did not parse were skipped; everything else is shown. Click one to see its line.");
        }
    });
    if problems.is_empty() {
        return actions;
    }
    ui.columns(2, |cols| {
        let row = cols[0].text_style_height(&egui::TextStyle::Body) + 4.0;
        ScrollArea::vertical()
            .id_salt("problems")
            .auto_shrink([false, false])
            .max_height(140.0)
            .show_rows(&mut cols[0], row, problems.len(), |ui, range| {
                for i in range {
                    let p = &problems[i];
                    let colour = match p.severity {
                        Severity::Error => palette::verdict_colour("DROP", dark),
                        _ => palette::verdict_colour("LOG", dark),
                    };
                    let text = RichText::new(format!(
                        "line {}, column {}: {}",
                        p.line, p.column, p.message
                    ))
                    .color(colour);
                    if ui
                        .selectable_label(state.problem == Some(i), text)
                        .clicked()
                    {
                        actions.push(Action::ShowProblem(i));
                    }
                }
            });
        let ui = &mut cols[1];
        match state.problem.and_then(|i| problems.get(i)) {
            Some(p) => {
                ui.label(format!("{}:{}:{}", doc.name, p.line, p.column));
                let shown: String = p
                    .source
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                // No-break spaces: egui drops ordinary leading spaces.
                let pad = "\u{a0}".repeat(
                    (p.column as usize)
                        .saturating_sub(1)
                        .min(shown.chars().count()),
                );
                ScrollArea::horizontal()
                    .id_salt("problem-src")
                    .show(ui, |ui| {
                        ui.add(
                            egui::Label::new(
                                RichText::new(format!("{shown}\n{pad}^ {}", p.message)).monospace(),
                            )
                            .extend(),
                        );
                    });
            }
            None => {
                ui.weak("Select a problem to see its source line.");
            }
        }
    });
    actions
}

/// Lint findings (or that lint is running), above the parse problems.
fn lint_findings(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let Some(report) = state.lint.current(state.doc.as_ref()) else {
        if state.lint.busy().is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.weak("lint is looking for rules that can never match …");
            });
        }
        return;
    };
    let n = report.findings.len();
    ui.horizontal(|ui| {
        ui.strong(format!("Lint ({n})"));
        if n == 0 {
            ui.weak("no shadowed, dead or redundant rules");
        } else {
            ui.weak("rules that can never match or change nothing. Click one to select its rule.");
        }
    });
    if n == 0 {
        return;
    }
    let dark = ui.visuals().dark_mode;
    let row = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    ScrollArea::vertical()
        .id_salt("lint")
        .auto_shrink([false, true])
        .max_height(110.0)
        .show_rows(ui, row, n, |ui, range| {
            for i in range {
                let f = &report.findings[i];
                let text = RichText::new(&f.text).color(palette::verdict_colour("LOG", dark));
                let r = ui
                    .add(egui::Button::selectable(state.lint.picked == Some(i), text).truncate())
                    .on_hover_text(&f.text);
                if r.clicked() {
                    actions.push(Action::ShowFinding(i));
                }
            }
        });
    ui.separator();
}
