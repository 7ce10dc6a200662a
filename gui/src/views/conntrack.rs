//! Conntrack tab: load (file, paste, live, a recording), the summary as bar
//! charts, charts over time (entries, insert_failed, drop, early_drop per
//! second), NAT source-port pressure with the rules that translate, the
//! counters with their meaning, and the entries as a sortable, filterable
//! table that only lays out the rows in sight, with the NAT entries and the
//! rules that made them.

use egui::{Align2, Color32, FontId, Key, Pos2, Rect, RichText, Sense, Shape, Stroke, Ui, vec2};
use egui_extras::{Column, TableBuilder};
use iptviz::conntrack::history::TupleSample;
use iptviz::conntrack::pressure::PressureLevel;
use iptviz::conntrack::{Entry, Flags, Level, NatLink, RuleRef, Severity};

use super::Action;
use crate::conntrack_state::{ConntrackState, CtAction, FilterForm, SortKey};
use crate::palette;
use crate::state::AppState;

/// Text fields of the tab.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// Path to open.
    pub path: String,
    /// Text in the paste box.
    pub paste: String,
    /// The paste box is open.
    pub paste_open: bool,
    /// Filter fields being edited.
    pub filter: FilterForm,
}

fn ct(a: CtAction) -> Action {
    Action::Conntrack(a)
}

/// Files dropped and text pasted while the tab is shown.
pub fn global_input(
    ctx: &egui::Context,
    dropped: &[egui::DroppedFileHandle],
    typing: bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for f in dropped {
        if f.path().as_os_str().is_empty() {
            if let Ok(b) = f.bytes() {
                actions.push(ct(CtAction::LoadText {
                    name: "dropped file".into(),
                    text: b,
                }));
            }
        } else {
            actions.push(ct(CtAction::OpenPath(f.path().display().to_string())));
        }
    }
    if !typing {
        ctx.input(|i| {
            for ev in &i.events {
                if let egui::Event::Paste(text) = ev {
                    actions.push(ct(CtAction::LoadText {
                        name: "pasted text".into(),
                        text: text.clone().into_bytes(),
                    }));
                }
            }
        });
    }
    actions
}

/// Draws the tab.
pub fn show(ui: &mut Ui, state: &AppState, form: &mut Form) -> Vec<Action> {
    let mut actions = Vec::new();
    let ct_state = &state.conntrack;
    egui::Panel::top("ct-load")
        .frame(super::bare_panel(ui))
        .show(ui, |ui| {
            load_bar(ui, ct_state, form, &mut actions);
            status(ui, ct_state);
        });
    paste_box(ui.ctx(), form, &mut actions);
    if !ct_state.history.is_empty() {
        egui::Panel::top("ct-history")
            .frame(super::bare_panel(ui))
            .show(ui, |ui| history_charts(ui, ct_state, &mut actions));
    }
    if !ct_state.is_loaded() {
        egui::CentralPanel::default()
            .frame(super::bare_central(ui))
            .show(ui, |ui| {
            ui.add_space(20.0);
            ui.heading("No conntrack table loaded");
            ui.label(
                "Open a saved table (/proc/net/nf_conntrack, `conntrack -L`, `conntrack -S` or \
                 /proc/net/stat/nf_conntrack: the format is detected), paste one with Ctrl+V, \
                 drop a file here, or press Live to read this machine's table (needs root).",
            );
            ui.label(
                "With rules loaded too (Graph tab), NAT entries name the DNAT/SNAT rule that made them.",
            );
            ui.label(
                "A recording of `iptviz conntrack --watch --record FILE` opens the same way: \
                 its readings are drawn over time.",
            );
        });
        return actions;
    }
    egui::Panel::right("ct-side")
        .frame(super::bare_panel(ui))
        .resizable(true)
        .default_size(330.0)
        .min_size(240.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("ct-side-scroll")
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    nat_ports(ui, state, &mut actions);
                    summary(ui, ct_state, form, &mut actions);
                    health(ui, ct_state);
                    race(ui, state, &mut actions);
                });
        });
    if ct_state.table.is_some() {
        egui::Panel::bottom("ct-nat")
            .frame(super::bare_panel(ui))
            .resizable(true)
            .default_size(220.0)
            .min_size(80.0)
            .show(ui, |ui| nat_panel(ui, state, &mut actions));
    }
    egui::CentralPanel::default()
        .frame(super::bare_central(ui))
        .show(ui, |ui| {
        if ct_state.table.is_some() {
            filter_bar(ui, ct_state, form, &mut actions);
            // The columns do not all fit a narrow window: scroll sideways.
            egui::ScrollArea::horizontal()
                .id_salt("ct-entries-x")
                .show(ui, |ui| entries_table(ui, ct_state, &mut actions));
        } else if !ct_state.history.is_empty() || ct_state.stats.is_none() {
            recorded_tuples(ui, ct_state);
        } else {
            ui.weak("Only counters were loaded: see the panel on the right. Open or paste a table for the entries.");
        }
    });
    actions
}

fn load_bar(ui: &mut Ui, s: &ConntrackState, form: &mut Form, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        let l = ui.label("Conntrack file");
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut form.path)
                    .hint_text("/path/to/nf_conntrack.txt")
                    .desired_width(260.0),
            )
            .labelled_by(l.id);
        let enter = r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
        if (ui.button("Load file").clicked() || enter) && !form.path.trim().is_empty() {
            actions.push(ct(CtAction::OpenPath(form.path.trim().to_string())));
        }
        if ui
            .button("Paste…")
            .on_hover_text("Paste conntrack text (or press Ctrl+V anywhere on this tab)")
            .clicked()
        {
            form.paste_open = true;
        }
        ui.separator();
        if ui
            .selectable_label(s.live, "Live")
            .on_hover_text(
                "Read /proc/net/nf_conntrack and the counters of this machine (needs root)",
            )
            .clicked()
        {
            actions.push(ct(CtAction::Live));
        }
        if s.live {
            let mut on = s.auto_refresh;
            if ui
                .checkbox(&mut on, format!("refresh every {} s", s.interval.as_secs()))
                .changed()
            {
                actions.push(ct(CtAction::AutoRefresh(on)));
            }
        }
        if s.loading.is_some() || s.computing {
            if !s.refreshing_quietly() {
                ui.spinner();
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(100));
            }
            ui.weak(s.loading.as_deref().unwrap_or("filtering and sorting …"));
        }
        if s.is_loaded() && ui.button("Clear").clicked() {
            actions.push(ct(CtAction::Clear));
        }
    });
}

fn status(ui: &mut Ui, s: &ConntrackState) {
    let dark = ui.visuals().dark_mode;
    if let Some(e) = &s.error {
        ui.label(RichText::new(e).color(palette::verdict_colour("DROP", dark)));
    }
    if let Some(n) = &s.notice {
        ui.weak(n);
    }
    let Some(t) = &s.table else {
        if let Some(st) = &s.stats {
            ui.label(format!("{}: counters of {} CPU(s)", st.name, st.cpus.len()));
        }
        return;
    };
    ui.horizontal(|ui| {
        let mut text = format!("{}: {} entries", s.source, group(t.entries.len() as u64));
        if let Some(took) = s.took {
            text.push_str(&format!(", read in {:.2} s", took.as_secs_f64()));
        }
        if let Some(st) = &s.stats {
            text.push_str(&format!(
                "; counters of {} CPU(s) from {}",
                st.cpus.len(),
                st.name
            ));
        }
        ui.label(text);
        let bad = t.problems.len() as u64 + t.problems_dropped;
        if bad > 0 {
            let r = ui.label(
                RichText::new(format!("{bad} line(s) skipped"))
                    .color(palette::verdict_colour("LOG", dark)),
            );
            r.on_hover_ui(|ui| {
                for p in t.problems.iter().take(20) {
                    let what = if p.severity == Severity::Error {
                        "error"
                    } else {
                        "warning"
                    };
                    ui.label(format!(
                        "line {}, column {}: {what}: {}",
                        p.line, p.column, p.message
                    ));
                }
                if t.problems.len() > 20 {
                    ui.weak(format!("… {} more", bad - 20));
                }
            });
        }
        if let Some(n) = t.trailer_count
            && n != t.entries.len() as u64
        {
            ui.weak(format!("(the trailer says {n} entries)"));
        }
    });
}

fn paste_box(ctx: &egui::Context, form: &mut Form, actions: &mut Vec<Action>) {
    if !form.paste_open {
        return;
    }
    let mut open = true;
    egui::Window::new("Paste conntrack text")
        .open(&mut open)
        .default_size(vec2(640.0, 360.0))
        .show(ctx, |ui| {
            ui.label("Paste /proc/net/nf_conntrack, conntrack -L or conntrack -S output:");
            egui::ScrollArea::vertical()
                .max_height(280.0)
                .show(ui, |ui| {
                    ui.add(
                        egui::TextEdit::multiline(&mut form.paste)
                            .code_editor()
                            .desired_rows(12)
                            .desired_width(f32::INFINITY),
                    );
                });
            if ui.button("Show this table").clicked() {
                actions.push(ct(CtAction::LoadText {
                    name: "pasted text".into(),
                    text: std::mem::take(&mut form.paste).into_bytes(),
                }));
                form.paste_open = false;
            }
        });
    if !open {
        form.paste_open = false;
    }
}

/// `1234567` as `1 234 567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One bar chart: a label, a bar against the largest value, the count.
fn bars(ui: &mut Ui, title: &str, items: &[(String, u64)], colour: Color32) -> Option<usize> {
    ui.add_space(6.0);
    ui.strong(title);
    if items.is_empty() {
        ui.weak("none");
        return None;
    }
    let max = items.iter().map(|x| x.1).max().unwrap_or(1).max(1);
    // Room for the scroll bar on the right.
    let width = (ui.available_width() - 14.0).max(200.0);
    let label_w = (width * 0.42).min(170.0);
    let count_w = 64.0;
    let font = FontId::proportional(12.0);
    let text = ui.visuals().text_color();
    let track = ui.visuals().faint_bg_color;
    let mut clicked = None;
    for (i, (label, n)) in items.iter().enumerate() {
        let (rect, resp) = ui.allocate_exact_size(vec2(width, 17.0), Sense::click());
        let p = ui.painter_at(rect);
        let short = crate::state::short(label, 24);
        p.text(
            rect.left_center(),
            Align2::LEFT_CENTER,
            &short,
            font.clone(),
            text,
        );
        let bar_area = egui::Rect::from_min_max(
            rect.left_top() + vec2(label_w, 2.0),
            rect.right_bottom() - vec2(count_w, 2.0),
        );
        p.rect_filled(bar_area, 2.0, track);
        let frac = *n as f32 / max as f32;
        let bar = egui::Rect::from_min_size(
            bar_area.min,
            vec2((bar_area.width() * frac).max(1.0), bar_area.height()),
        );
        p.rect_filled(bar, 2.0, colour);
        p.text(
            rect.right_center(),
            Align2::RIGHT_CENTER,
            group(*n),
            font.clone(),
            text,
        );
        if resp.on_hover_text(format!("{label}: {n}")).clicked() {
            clicked = Some(i);
        }
    }
    clicked
}

fn summary(ui: &mut Ui, s: &ConntrackState, form: &mut Form, actions: &mut Vec<Action>) {
    let Some(sum) = &s.summary else {
        return;
    };
    let dark = ui.visuals().dark_mode;
    ui.heading("Summary");
    if !s.filter.is_empty() {
        ui.weak("of the filtered entries");
    }
    ui.label(format!(
        "{} entries · {} unreplied · {} assured · {} NAT · {} IPv6",
        group(sum.total),
        group(sum.unreplied),
        group(sum.assured),
        group(sum.nat),
        group(sum.ipv6)
    ));
    if let Some(f) = s.fill.or(sum.fill).filter(|f| f.max > 0) {
        let frac = if f.max == 0 {
            0.0
        } else {
            f.count as f32 / f.max as f32
        };
        ui.add(
            egui::ProgressBar::new(frac)
                .text(format!(
                    "table fill {} of {} ({:.1}%)",
                    group(f.count),
                    group(f.max),
                    f.percent()
                ))
                .fill(if frac > 0.9 {
                    palette::verdict_colour("DROP", dark)
                } else {
                    palette::selected_colour(dark)
                }),
        );
    }
    ui.weak("Click a bar to filter by it.");
    let proto: Vec<(String, u64)> = sum
        .by_proto
        .iter()
        .map(|c| (c.key.to_string(), c.count))
        .collect();
    if let Some(i) = bars(
        ui,
        "By protocol",
        &proto,
        palette::table_colour("filter", false),
    ) {
        let mut f = form.filter.clone();
        f.proto = proto[i].0.clone();
        form.filter = f.clone();
        actions.push(ct(CtAction::Filter(f)));
    }
    let states: Vec<(String, u64)> = sum
        .by_state
        .iter()
        .take(12)
        .map(|c| (c.key.clone(), c.count))
        .collect();
    if let Some(i) = bars(ui, "By state", &states, palette::table_colour("nat", false)) {
        let mut f = form.filter.clone();
        if let Some((p, st)) = states[i].0.split_once(' ') {
            f.proto = p.to_string();
            f.state = st.to_string();
        }
        form.filter = f.clone();
        actions.push(ct(CtAction::Filter(f)));
    }
    let dsts: Vec<(String, u64)> = sum
        .top_destinations
        .iter()
        .map(|c| (c.key.to_string(), c.count))
        .collect();
    if let Some(i) = bars(
        ui,
        "Top destinations",
        &dsts,
        palette::table_colour("mangle", false),
    ) {
        let mut f = form.filter.clone();
        f.addr = dsts[i].0.clone();
        form.filter = f.clone();
        actions.push(ct(CtAction::Filter(f)));
    }
    let ports: Vec<(String, u64)> = sum
        .top_ports
        .iter()
        .map(|c| (format!("{}/{}", c.key.port, c.key.proto), c.count))
        .collect();
    if let Some(i) = bars(
        ui,
        "Top destination ports",
        &ports,
        palette::table_colour("raw", false),
    ) {
        let mut f = form.filter.clone();
        f.port = sum.top_ports[i].key.port.to_string();
        form.filter = f.clone();
        actions.push(ct(CtAction::Filter(f)));
    }
    let srcs: Vec<(String, u64)> = sum
        .top_sources
        .iter()
        .map(|c| (c.key.to_string(), c.count))
        .collect();
    if let Some(i) = bars(
        ui,
        "Top sources",
        &srcs,
        palette::table_colour("security", false),
    ) {
        let mut f = form.filter.clone();
        f.addr = srcs[i].0.clone();
        form.filter = f.clone();
        actions.push(ct(CtAction::Filter(f)));
    }
}

fn health(ui: &mut Ui, s: &ConntrackState) {
    let Some(stats) = &s.stats else {
        ui.add_space(10.0);
        ui.heading("Counters");
        ui.weak(
            "No per-CPU counters loaded. Open or paste `conntrack -S` or \
             /proc/net/stat/nf_conntrack output, or use Live.",
        );
        return;
    };
    let dark = ui.visuals().dark_mode;
    ui.add_space(10.0);
    ui.heading("Counters (health)");
    ui.weak(format!(
        "{} CPU(s){}",
        stats.cpus.len(),
        if s.health.iter().any(|h| h.per_second.is_some()) {
            ", rates since the last reading"
        } else {
            ", totals since boot"
        }
    ));
    for h in s.health.iter().filter(|h| h.highlighted) {
        let colour = match h.level {
            Level::Warning => palette::verdict_colour("DROP", dark),
            Level::Notice => palette::verdict_colour("LOG", dark),
            Level::Ok => palette::verdict_colour("ACCEPT", dark),
        };
        ui.horizontal(|ui| {
            let mark = match h.level {
                Level::Warning => "!!",
                Level::Notice => "!",
                Level::Ok => "ok",
            };
            ui.label(RichText::new(mark).color(colour));
            ui.label(RichText::new(&h.counter).strong().color(colour));
            ui.label(group(h.total));
            if let Some(r) = h.per_second {
                ui.label(format!("{r:.1}/s"));
            }
            if let Some(c) = h.worst_cpu {
                ui.weak(format!("most on CPU {c}"));
            }
        });
        ui.indent(("health", &h.counter), |ui| {
            ui.weak(h.explanation);
        });
    }
    egui::CollapsingHeader::new("Other counters")
        .id_salt("ct-other-counters")
        .show(ui, |ui| {
            egui::Grid::new("ct-counters").striped(true).show(ui, |ui| {
                for h in s.health.iter().filter(|h| !h.highlighted) {
                    ui.label(&h.counter);
                    ui.label(group(h.total));
                    ui.weak(h.explanation);
                    ui.end_row();
                }
            });
        });
    egui::CollapsingHeader::new("Per CPU")
        .id_salt("ct-per-cpu")
        .show(ui, |ui| {
            let fields: Vec<(usize, &String)> = stats
                .fields
                .iter()
                .enumerate()
                .filter(|(_, f)| {
                    iptviz::conntrack::stats::HIGHLIGHTED.contains(&f.as_str())
                        || f.as_str() == "found"
                })
                .collect();
            egui::ScrollArea::horizontal().show(ui, |ui| {
                egui::Grid::new("ct-cpus").striped(true).show(ui, |ui| {
                    ui.strong("CPU");
                    for (_, f) in &fields {
                        ui.strong(f.as_str());
                    }
                    ui.end_row();
                    for c in &stats.cpus {
                        ui.label(c.cpu.to_string());
                        for (i, _) in &fields {
                            let v = c.values.get(*i).copied().flatten();
                            ui.label(v.map_or("-".into(), group));
                        }
                        ui.end_row();
                    }
                });
            });
        });
}

fn filter_bar(ui: &mut Ui, s: &ConntrackState, form: &mut Form, actions: &mut Vec<Action>) {
    let mut apply = false;
    ui.horizontal_wrapped(|ui| {
        let mut text = |ui: &mut Ui, label: &str, v: &mut String, w: f32, hint: &str| {
            let l = ui.label(label);
            let r = ui
                .add(
                    egui::TextEdit::singleline(v)
                        .desired_width(w)
                        .hint_text(hint),
                )
                .labelled_by(l.id);
            if r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                apply = true;
            }
        };
        text(ui, "Address", &mut form.filter.addr, 130.0, "10.0.0.0/8");
        text(ui, "Port", &mut form.filter.port, 50.0, "443");
        text(ui, "Protocol", &mut form.filter.proto, 50.0, "tcp");
        text(ui, "State", &mut form.filter.state, 90.0, "ESTABLISHED");
        apply |= ui.checkbox(&mut form.filter.nat_only, "NAT only").changed();
        apply |= ui
            .checkbox(&mut form.filter.unreplied_only, "Unreplied only")
            .changed();
        if ui.button("Filter").on_hover_text("Apply (Enter)").clicked() {
            apply = true;
        }
        if form.filter != FilterForm::default() && ui.button("Reset").clicked() {
            form.filter = FilterForm::default();
            apply = true;
        }
    });
    if apply {
        actions.push(ct(CtAction::Filter(form.filter.clone())));
    }
    let total = s.table.as_ref().map_or(0, |t| t.entries.len());
    ui.horizontal(|ui| {
        if let Some(e) = &s.filter_error {
            ui.colored_label(palette::verdict_colour("DROP", ui.visuals().dark_mode), e);
        }
        ui.weak(format!(
            "showing {} of {} entries, {} with NAT",
            group(s.rows.len() as u64),
            group(total as u64),
            group(s.nat_rows.len() as u64)
        ));
    });
}

fn endpoint(e: &Entry, addr: std::net::IpAddr, port: u16) -> String {
    e.endpoint(addr, port)
}

fn flags(e: &Entry) -> String {
    let mut v = Vec::new();
    if e.has(Flags::ASSURED) {
        v.push("ASSURED");
    }
    if e.has(Flags::UNREPLIED) {
        v.push("UNREPLIED");
    }
    if e.has(Flags::OFFLOAD) {
        v.push("OFFLOAD");
    }
    v.join(" ")
}

fn entries_table(ui: &mut Ui, s: &ConntrackState, actions: &mut Vec<Action>) {
    let row_h = ui.text_style_height(&egui::TextStyle::Body) + 2.0;
    let rows = s.rows.clone();
    let sort = s.sort;
    let header =
        |ui: &mut Ui, name: &str, key: Option<SortKey>, actions: &mut Vec<Action>| match key {
            Some(k) => {
                let arrow = if sort.key == k {
                    if sort.descending { " v" } else { " ^" }
                } else {
                    ""
                };
                if ui
                    .selectable_label(
                        sort.key == k,
                        RichText::new(format!("{name}{arrow}")).strong(),
                    )
                    .on_hover_text("Sort by this column (again: reverse)")
                    .clicked()
                {
                    actions.push(ct(CtAction::Sort(k)));
                }
            }
            None => {
                ui.strong(name);
            }
        };
    let dark = ui.visuals().dark_mode;
    let cols: [(&str, Option<SortKey>, Column); 12] = [
        ("#", Some(SortKey::Input), Column::exact(44.0)),
        ("Proto", Some(SortKey::Proto), Column::exact(58.0)),
        ("State", Some(SortKey::State), Column::initial(88.0)),
        ("Source", Some(SortKey::Source), Column::initial(136.0)),
        (
            "Destination",
            Some(SortKey::Destination),
            Column::initial(136.0),
        ),
        ("Reply from", Some(SortKey::Reply), Column::initial(136.0)),
        ("NAT", None, Column::exact(60.0)),
        ("Timeout", Some(SortKey::Timeout), Column::exact(68.0)),
        ("Packets", Some(SortKey::Packets), Column::exact(60.0)),
        ("Bytes", Some(SortKey::Bytes), Column::exact(66.0)),
        ("Mark", Some(SortKey::Mark), Column::exact(44.0)),
        ("Flags", None, Column::remainder().at_least(70.0)),
    ];
    // Text selection would swallow the clicks that select a row.
    ui.style_mut().interaction.selectable_labels = false;
    let mut tb = TableBuilder::new(ui)
        .id_salt("ct-entries")
        // No stripes: with the software renderer the striped rows took a
        // fifth of each frame while the table scrolls; the hovered and
        // selected rows are still marked.
        .striped(false)
        .resizable(true)
        .sense(Sense::click())
        .auto_shrink([false, false])
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center));
    for (_, _, c) in &cols {
        // Cells cut their own text (see `cell`).
        tb = tb.column(c.clip(false));
    }
    if let Some(y) = s.scroll_offset {
        tb = tb.vertical_scroll_offset(y);
    }
    let mut header_actions = Vec::new();
    let mut body_actions = Vec::new();
    tb.header(row_h + 4.0, |mut h| {
        for (name, key, _) in &cols {
            h.col(|ui| {
                // One row: its cells may keep their own clip.
                ui.set_clip_rect(ui.max_rect().intersect(ui.clip_rect()));
                header(ui, name, *key, &mut header_actions)
            });
        }
    })
    .body(|body| {
        body.rows(row_h, rows.len(), |mut row| {
            let idx = rows[row.index()];
            let Some(e) = s.entry(idx) else { return };
            row.set_selected(s.selected == Some(idx));
            let nat = e.nat();
            row.col(|ui| {
                cell(ui, RichText::new(e.line.to_string()).weak());
            });
            row.col(|ui| {
                cell(ui, e.proto_name());
            });
            row.col(|ui| {
                cell(
                    ui,
                    if e.state.is_none() {
                        ""
                    } else {
                        e.state.name()
                    },
                );
            });
            row.col(|ui| {
                cell(ui, endpoint(e, e.orig.src, e.orig.sport));
            });
            row.col(|ui| {
                cell(ui, endpoint(e, e.orig.dst, e.orig.dport));
            });
            row.col(|ui| {
                let t = RichText::new(endpoint(e, e.reply.src, e.reply.sport));
                cell(
                    ui,
                    if nat.dnat {
                        t.color(palette::verdict_colour("DNAT", dark))
                    } else {
                        t
                    },
                );
            });
            row.col(|ui| {
                let kind = match (nat.dnat, nat.snat) {
                    (true, true) => "DNAT+SNAT",
                    (true, false) => "DNAT",
                    (false, true) => "SNAT",
                    _ => "",
                };
                cell(
                    ui,
                    RichText::new(kind).color(palette::verdict_colour("DNAT", dark)),
                );
            });
            row.col(|ui| {
                cell(ui, e.timeout.to_string());
            });
            row.col(|ui| {
                if e.has(Flags::COUNTERS) {
                    cell(
                        ui,
                        group(e.orig_counters.packets + e.reply_counters.packets),
                    );
                }
            });
            row.col(|ui| {
                if e.has(Flags::COUNTERS) {
                    cell(ui, group(e.orig_counters.bytes + e.reply_counters.bytes));
                }
            });
            row.col(|ui| {
                if e.mark != 0 {
                    cell(ui, format!("{:#x}", e.mark));
                }
            });
            row.col(|ui| {
                cell(ui, RichText::new(flags(e)).weak());
            });
            if row.response().clicked() {
                body_actions.push(ct(CtAction::SelectEntry(idx)));
            }
        });
    });
    actions.extend(header_actions);
    actions.extend(body_actions);
}

/// A table cell's text cut to the column with an ellipsis. The columns
/// are not clipped: a clip rectangle per cell splits the frame into a
/// draw call per cell (seven a row), which the software renderer pays for
/// in every frame.
fn cell(ui: &mut Ui, text: impl Into<egui::WidgetText>) {
    ui.add(egui::Label::new(text).truncate());
}

fn rule_link(ui: &mut Ui, state: &AppState, what: &str, r: &RuleRef, actions: &mut Vec<Action>) {
    let mut text = format!(
        "{what}: {} {} #{} (line {})",
        r.table, r.chain, r.index, r.line
    );
    if let Some(s) = &r.service {
        text.push_str(&format!(" · {s}"));
    }
    let resp = ui.link(text).on_hover_text(format!(
        "{}\n\nClick to show this chain on the graph",
        r.text
    ));
    if resp.clicked()
        && let Some(at) = state.find(&r.table, &r.chain)
    {
        actions.push(Action::Select(at));
    }
}

fn nat_panel(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let s = &state.conntrack;
    let dark = ui.visuals().dark_mode;
    if let Some(idx) = s.selected
        && let Some(e) = s.entry(idx)
    {
        ui.horizontal_wrapped(|ui| {
            ui.strong(format!("Entry on line {}:", e.line));
            let link = s.link(idx);
            match &link {
                Some(l) => {
                    ui.monospace(l.arrow());
                }
                None => {
                    ui.monospace(format!(
                        "{} {} -> {} (no NAT)",
                        e.proto_name(),
                        endpoint(e, e.orig.src, e.orig.sport),
                        endpoint(e, e.orig.dst, e.orig.dport)
                    ));
                }
            }
            if let Some(l) = link {
                nat_rules(ui, state, &l, actions);
            }
        });
        ui.separator();
    }
    ui.horizontal(|ui| {
        ui.strong(format!("NAT entries ({})", group(s.nat_rows.len() as u64)));
        if s.has_rules() {
            ui.weak("client -> service => backend, with the rule that translated it");
        } else {
            ui.weak("client -> service => backend. Load the rules (Graph tab) to see which rule translated each.");
        }
    });
    if s.nat_rows.is_empty() {
        ui.weak("No entry shows address translation.");
        return;
    }
    let row_h = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
    let nat_rows = s.nat_rows.clone();
    egui::ScrollArea::vertical()
        .id_salt("ct-nat-list")
        .auto_shrink([false, false])
        .show_rows(ui, row_h, nat_rows.len(), |ui, range| {
            for i in range {
                let idx = nat_rows[i];
                let Some(l) = s.link(idx) else { continue };
                ui.horizontal(|ui| {
                    ui.set_min_height(row_h);
                    let text = RichText::new(l.arrow()).monospace();
                    let text = if s.selected == Some(idx) {
                        text.color(palette::selected_colour(dark))
                    } else {
                        text
                    };
                    if ui.selectable_label(s.selected == Some(idx), text).clicked() {
                        actions.push(ct(CtAction::SelectEntry(idx)));
                    }
                    nat_rules(ui, state, &l, actions);
                });
            }
        });
}

fn nat_rules(ui: &mut Ui, state: &AppState, l: &NatLink, actions: &mut Vec<Action>) {
    if let Some(r) = &l.dnat_rule {
        rule_link(ui, state, "by", r, actions);
    }
    if let Some(r) = &l.snat_rule {
        rule_link(ui, state, "source by", r, actions);
    }
    if l.dnat_rule.is_none() && l.snat_rule.is_none() && state.conntrack.has_rules() {
        ui.weak("no nat rule of the loaded rules fits");
    }
}

/// `1.5k`-free number text for chart labels: integers as integers.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        group(v.abs() as u64)
    } else {
        format!("{v:.1}")
    }
}

/// A line chart of `pts` (seconds, value) with its title as a real label
/// (found by tests and screen readers) and the last value.
fn chart(ui: &mut Ui, title: &str, pts: &[(f64, f64)], colour: Color32, size: egui::Vec2) {
    ui.vertical(|ui| {
        ui.set_width(size.x);
        let last = pts.last().map_or("–".to_string(), |p| num(p.1));
        ui.label(RichText::new(format!("{title}: {last}")).small().strong());
        let (rect, resp) = ui.allocate_exact_size(size, Sense::hover());
        let p = ui.painter_at(rect);
        let weak = ui.visuals().weak_text_color();
        p.rect_filled(rect, 3.0, ui.visuals().faint_bg_color);
        let font = FontId::proportional(10.0);
        if pts.len() < 2 {
            p.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "needs two readings",
                font,
                weak,
            );
            return;
        }
        let plot = Rect::from_min_max(rect.min + vec2(4.0, 12.0), rect.max - vec2(4.0, 4.0));
        let (t0, t1) = (pts[0].0, pts[pts.len() - 1].0);
        let span = (t1 - t0).max(1e-9);
        let vmax = pts.iter().map(|x| x.1).fold(0.0f64, f64::max);
        let vmin = pts.iter().map(|x| x.1).fold(0.0f64, f64::min);
        let vspan = (vmax - vmin).max(1e-9);
        // At most about one point per pixel column.
        let step = (pts.len() as f32 / plot.width().max(1.0)).ceil().max(1.0) as usize;
        let at = |t: f64, v: f64| {
            Pos2::new(
                plot.left() + ((t - t0) / span) as f32 * plot.width(),
                plot.bottom() - ((v - vmin) / vspan) as f32 * plot.height(),
            )
        };
        let mut line: Vec<Pos2> = pts.iter().step_by(step).map(|x| at(x.0, x.1)).collect();
        if let Some(l) = pts.last() {
            line.push(at(l.0, l.1));
        }
        p.add(Shape::line(line, Stroke::new(1.5, colour)));
        p.text(
            rect.right_top() + vec2(-3.0, 1.0),
            Align2::RIGHT_TOP,
            format!("max {}", num(vmax)),
            font.clone(),
            weak,
        );
        p.text(
            rect.left_top() + vec2(3.0, 1.0),
            Align2::LEFT_TOP,
            format!("{:.0} s", span),
            font,
            weak,
        );
        resp.on_hover_text(format!(
            "{title}\n{} readings over {:.0} s\nmax {}, last {}",
            pts.len(),
            span,
            num(vmax),
            num(pts[pts.len() - 1].1)
        ));
    });
}

/// The counters charted per second, with their colour.
const CHARTED: [(&str, &str); 3] = [
    ("insert_failed", "DROP"),
    ("drop", "REJECT"),
    ("early_drop", "LOG"),
];

fn history_charts(
    ui: &mut Ui,
    s: &crate::conntrack_state::ConntrackState,
    actions: &mut Vec<Action>,
) {
    let dark = ui.visuals().dark_mode;
    let Some(first) = s.history.first() else {
        return;
    };
    let t0 = first.time;
    ui.horizontal(|ui| {
        ui.strong("Over time");
        ui.weak(format!(
            "{}: {} reading(s)",
            s.history_source,
            s.history.len()
        ));
        if let Some(t) = s.ticks.last() {
            let mut text = Vec::new();
            if let Some(f) = t.fill {
                if f.max > 0 {
                    text.push(format!("fill {:.1}% of {}", f.percent(), group(f.max)));
                }
                if let Some(b) = f.per_bucket() {
                    text.push(format!("{b:.2} per bucket"));
                }
            }
            if let Some(g) = t.growth_per_second {
                text.push(format!("{g:+.1} entries/s"));
            }
            if let Some(full) = t.seconds_to_full {
                text.push(format!("full in about {:.0} s at this rate", full));
            }
            ui.label(text.join(" · "));
        }
    });
    // A recording is replayed reading by reading: the counters, fill and
    // tuples beside the charts follow the slider.
    if let Some(cur) = s.cursor.filter(|_| !s.live && s.history.len() > 1) {
        ui.horizontal(|ui| {
            let mut i = cur;
            let last = s.history.len() - 1;
            let r = ui.add(
                egui::Slider::new(&mut i, 0..=last)
                    .text("reading")
                    .custom_formatter(|v, _| format!("{}", v as usize + 1))
                    .custom_parser(|t| t.trim().parse::<f64>().ok().map(|v| v - 1.0)),
            );
            if ui
                .small_button("<")
                .on_hover_text("The reading before")
                .clicked()
            {
                i = i.saturating_sub(1);
            }
            if ui
                .small_button(">")
                .on_hover_text("The next reading")
                .clicked()
            {
                i = (i + 1).min(last);
            }
            ui.weak(format!(
                "of {}, at +{:.0} s",
                s.history.len(),
                s.history[cur].time - t0
            ));
            if i != cur || r.changed() {
                actions.push(ct(CtAction::ShowReading(i)));
            }
        });
    }
    let entries: Vec<(f64, f64)> = s
        .history
        .iter()
        .filter_map(|r| r.fill.map(|f| (r.time - t0, f.count as f64)))
        .collect();
    let w = ((ui.available_width() - 24.0) / 4.0).max(120.0);
    let size = vec2(w, 70.0);
    ui.horizontal(|ui| {
        chart(
            ui,
            "entries",
            &entries,
            palette::selected_colour(dark),
            size,
        );
        for (counter, colour) in CHARTED {
            let known = s
                .history
                .iter()
                .any(|r| r.fields.iter().any(|f| f == counter));
            let pts: Vec<(f64, f64)> = if known {
                s.ticks
                    .iter()
                    .map(|t| (t.time - t0, t.rate(counter).unwrap_or(0.0)))
                    .collect()
            } else {
                Vec::new()
            };
            chart(
                ui,
                &format!("{counter} per second"),
                &pts,
                palette::verdict_colour(colour, dark),
                size,
            );
        }
    });
}

fn level_colour(l: PressureLevel, dark: bool) -> Option<Color32> {
    match l {
        PressureLevel::Ok => None,
        PressureLevel::Over50 => Some(palette::verdict_colour("LOG", dark)),
        PressureLevel::Over80 | PressureLevel::Full => Some(palette::verdict_colour("DROP", dark)),
    }
}

/// NAT source ports in use per translated address and destination.
fn nat_ports(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let s = &state.conntrack;
    let Some(p) = &s.pressure else {
        return;
    };
    if p.tuples_total == 0 {
        return;
    }
    let dark = ui.visuals().dark_mode;
    ui.heading("NAT source ports");
    ui.weak(format!(
        "{} tuples (translated address -> destination): {} full, {} above 80%, {} above 50%",
        group(p.tuples_total),
        p.full,
        p.over_80,
        p.over_50
    ));
    for t in &p.tuples {
        let text = format!(
            "{} of {} ports ({:.1}%) {}",
            group(t.ports),
            group(t.range_size),
            t.percent,
            t.level.mark()
        );
        ui.label(RichText::new(t.label()).monospace());
        ui.indent(("ct-tuple", t.label()), |ui| {
            let frac = (t.percent / 100.0).clamp(0.0, 1.0) as f32;
            let mut bar = egui::ProgressBar::new(frac).text(text);
            if let Some(c) = level_colour(t.level, dark) {
                bar = bar.fill(c);
            }
            ui.add(bar).on_hover_text(format!(
                "ports {}-{}: {}",
                t.range.0, t.range.1, t.range_why
            ));
            if let Some(r) = &t.rule {
                rule_link(ui, state, "translated by", r, actions);
            } else if !s.has_rules() {
                ui.weak("kernel default range (load the rules to name the rule and its range)");
            }
            if !t.clients.is_empty() {
                let list: Vec<String> = t
                    .clients
                    .iter()
                    .map(|c| format!("{} {}", c.client, c.ports))
                    .collect();
                ui.weak(format!("most used by {}", list.join(", ")));
            }
        });
    }
    ui.add_space(8.0);
}

/// The most pressed tuples of the last reading of a recording.
fn recorded_tuples(ui: &mut Ui, s: &crate::conntrack_state::ConntrackState) {
    let dark = ui.visuals().dark_mode;
    let Some(last) = s.shown_reading() else {
        ui.weak("Nothing loaded.");
        return;
    };
    match s.cursor.filter(|&c| c + 1 < s.history.len()) {
        Some(c) => ui.heading(format!("Most pressed NAT tuples at reading {}", c + 1)),
        None => ui.heading("Most pressed NAT tuples at the last reading"),
    };
    if last.top.is_empty() {
        ui.weak("This recording holds no NAT tuples (the table was not readable, or nothing was translated).");
        return;
    }
    // The peak of each tuple over the whole recording, beside the last value.
    let peak = |t: &TupleSample| {
        s.history
            .iter()
            .flat_map(|r| r.top.iter())
            .filter(|x| x.tuple == t.tuple)
            .map(|x| x.ports)
            .max()
            .unwrap_or(t.ports)
    };
    egui::Grid::new("ct-recorded-tuples")
        .striped(true)
        .show(ui, |ui| {
            ui.strong("tuple");
            ui.strong("ports in use");
            ui.strong("of range");
            ui.strong("share");
            ui.strong("peak");
            ui.strong("translated by");
            ui.end_row();
            for t in &last.top {
                ui.monospace(&t.tuple);
                ui.label(group(t.ports));
                ui.label(group(t.range_size));
                let text = RichText::new(format!("{:.1}% {}", t.percent, t.level.mark()));
                ui.label(match level_colour(t.level, dark) {
                    Some(c) => text.color(c),
                    None => text,
                });
                ui.label(group(peak(t)));
                ui.label(t.rule.as_deref().unwrap_or("(rules not given)"));
                ui.end_row();
            }
        });
}

/// `insert_failed` next to the rules that translate UDP, with hints.
fn race(ui: &mut Ui, state: &AppState, actions: &mut Vec<Action>) {
    let Some(r) = &state.conntrack.race else {
        return;
    };
    let dark = ui.visuals().dark_mode;
    ui.add_space(10.0);
    ui.heading("insert_failed and the NAT rules");
    ui.label(
        RichText::new(format!(
            "insert_failed {}{}",
            group(r.insert_failed),
            r.per_second
                .map_or(" since boot".to_string(), |x| format!(", {x:.1}/s now"))
        ))
        .color(palette::verdict_colour("DROP", dark)),
    );
    ui.weak(r.explanation);
    if r.rules.is_empty() {
        ui.weak("Load the rules (Graph tab) to see the nat rules that translate UDP.");
    }
    for x in &r.rules {
        ui.horizontal_wrapped(|ui| {
            rule_link(ui, state, &x.rule.target, &x.rule, actions);
            if matches!(x.rule.target.as_str(), "SNAT" | "MASQUERADE") && !x.random_fully {
                ui.weak("without --random-fully");
            }
        });
    }
    for f in &r.flows {
        ui.monospace(f);
    }
    ui.label(RichText::new("What often helps (hints to check, not certainties):").strong());
    for h in &r.hints {
        ui.label(format!("• {h}"));
    }
}
