//! Wiring: panels, dialogs, shortcuts, background jobs, and applying the
//! actions that views return to the state.

use std::sync::Arc;
use std::time::Instant;

use egui::{Key, KeyboardShortcut, Modifiers, Ui};

use crate::bench::Bench;
use crate::compare_state::CompareAction;
use crate::jobs::{self, Job};
use crate::settings::{Settings, ThemeChoice};
use crate::state::{AppState, Document, View};
use crate::views::canvas::{self, Camera};
use crate::views::dialogs::{self, Dialogs};
use crate::views::dock::Dock;
use crate::views::{self, Action, Dialog};

/// The dump shown at first start.
pub const SAMPLE: &str = include_str!("../../samples/docker-host.rules");
const SAMPLE_NAME: &str = "bundled sample (samples/docker-host.rules)";

/// How the app was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// File to open.
    pub file: Option<String>,
    /// Parse on the UI thread (tests).
    pub sync: bool,
    /// Measure this many frames of scripted panning and zooming, then exit.
    pub bench_frames: Option<u64>,
    /// Close after this many frames.
    pub exit_after_frames: Option<u64>,
    /// Table to show first.
    pub table: Option<String>,
    /// Chain to select first.
    pub select: Option<String>,
    /// Start in the flow view.
    pub flow: bool,
    /// Open every group of the shown table.
    pub expand_all: bool,
    /// Colour theme for this run (overrides the remembered one).
    pub theme: Option<ThemeChoice>,
    /// Search for this at start.
    pub search: Option<String>,
    /// Conntrack file to open in the Conntrack tab.
    pub conntrack: Option<String>,
    /// Read that file again every this many seconds, as a live table.
    pub conntrack_live: Option<f64>,
    /// Compare the loaded rules with this file (the old side).
    pub compare: Option<String>,
    /// A capture to replay through the rules once they are loaded.
    pub capture: Option<String>,
}

/// A line in the status bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// Shown in red and kept until dismissed.
    pub error: bool,
}

/// The desktop app.
pub struct IptvizApp {
    /// What is loaded and looked at.
    pub state: AppState,
    /// Where the canvas looks.
    pub camera: Camera,
    /// Where the Flow tab looks.
    pub flow_camera: Camera,
    /// The document the Flow tab's camera was last fitted to (held weakly,
    /// so that a new document can never look like this one).
    flow_fitted: Option<std::sync::Weak<Document>>,
    /// Remembered between runs.
    pub settings: Settings,
    /// Open dialog and its fields.
    pub dialogs: Dialogs,
    /// Search field text.
    pub search: String,
    /// Chain list filter text.
    pub chain_filter: String,
    /// Status line.
    pub message: Option<Message>,
    /// Where the canvas was drawn last frame (tests map world to screen).
    pub last_canvas_rect: Option<egui::Rect>,
    /// Fields of the Conntrack tab.
    pub ct_form: views::conntrack::Form,
    /// Fields of the trace form.
    pub trace_form: crate::trace_state::TraceForm,
    /// Fields of the Reach view's form.
    pub reach_form: crate::reach_state::ReachForm,
    /// Where the Reach view's graph looks.
    pub reach_camera: Camera,
    job: Option<Job>,
    export: Option<std::sync::mpsc::Receiver<Result<String, String>>>,
    opts: Options,
    frames: u64,
    bench: Option<Bench>,
    started_options_applied: bool,
    closing: bool,
    pending: Vec<Action>,
}

impl IptvizApp {
    /// A new app; loads the file of `opts` (on the first frame) or the
    /// sample.
    pub fn new(settings: Settings, opts: Options) -> Self {
        let mut state = AppState::default();
        // Tests and benchmarks want the layout before the next frame.
        state.sync = opts.sync || opts.bench_frames.is_some();
        let mut app = IptvizApp {
            state,
            camera: Camera::default(),
            flow_camera: Camera::default(),
            flow_fitted: None,
            settings,
            dialogs: Dialogs::default(),
            search: String::new(),
            chain_filter: String::new(),
            message: None,
            last_canvas_rect: None,
            ct_form: Default::default(),
            trace_form: Default::default(),
            reach_form: Default::default(),
            reach_camera: Camera::default(),
            job: None,
            export: None,
            frames: 0,
            bench: None,
            started_options_applied: false,
            closing: false,
            pending: Vec::new(),
            opts,
        };
        app.state.conntrack.sync = app.opts.sync;
        app.state.reach.sync = app.opts.sync;
        app.state.lint.sync = app.opts.sync;
        app.state.compare.sync = app.opts.sync;
        if let Some(p) = app.opts.conntrack.clone() {
            app.state.view = View::Conntrack;
            app.ct_form.path = p.clone();
            if let Some(secs) = app.opts.conntrack_live {
                let ct = &mut app.state.conntrack;
                ct.live_file = Some(p.clone());
                ct.interval = std::time::Duration::from_secs_f64(secs);
                let a = crate::conntrack_state::CtAction::Live;
                app.pending.push(Action::Conntrack(a));
            } else if app.opts.bench_frames.is_some() {
                app.state.conntrack.load_path_now(&p);
            } else {
                let a = crate::conntrack_state::CtAction::OpenPath(p);
                app.pending.push(Action::Conntrack(a));
            }
        }
        match app.opts.file.clone() {
            Some(path) if app.opts.bench_frames.is_some() => {
                // Benchmarks measure drawing, so load before the first frame.
                match jobs::load_file(&path) {
                    Ok(doc) => app.finish_load(Ok(Arc::new(doc)), Some(path)),
                    Err(e) => app.error(e),
                }
            }
            Some(path) => app.pending.push(Action::OpenPath(path)),
            None => app.load_sample(),
        }
        if let Some(p) = app.opts.compare.clone() {
            app.pending
                .push(Action::Compare(CompareAction::OpenPath(p)));
        }
        if let Some(t) = app.opts.theme {
            app.settings.theme = t;
        }
        app.pending
            .push(Action::Theme(app.settings.theme.preference()));
        if let Some(n) = app.opts.bench_frames {
            let mut b = Bench::new(n);
            if app.opts.conntrack_live.is_some() {
                b.wait_for_reading();
            }
            app.bench = Some(b);
        }
        app
    }

    fn load_sample(&mut self) {
        match Document::from_bytes(SAMPLE_NAME, SAMPLE.as_bytes()) {
            Ok(doc) => {
                self.state.set_document(Arc::new(doc));
                self.info("This is a bundled sample. Open your own rules with File > Open, drop a file here, or paste with Ctrl+V.");
            }
            Err(e) => self.error(e),
        }
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
        });
    }

    /// Shows what the Compare view said in the status bar; a ruleset read
    /// for it closes its dialog.
    fn compare_message(&mut self, m: Option<Result<String, String>>) {
        match m {
            Some(Ok(text)) => {
                if self.dialogs.open == Some(Dialog::Compare) {
                    self.dialogs.open = None;
                }
                self.info(text);
            }
            Some(Err(e)) => self.error(e),
            None => {}
        }
    }

    /// Whether a background job is running.
    pub fn busy(&self) -> bool {
        self.job.is_some() || self.state.trace.running()
    }

    fn finish_load(&mut self, out: jobs::Outcome, path: Option<String>) {
        match out {
            Ok(doc) => {
                let errors = doc.error_count();
                let text = format!(
                    "{}{}: {} tables, {} chains, {} rules, {} problem(s); read in {:.2} s",
                    doc.name,
                    match doc.parsed.ruleset.format {
                        iptviz::model::InputFormat::Listing => " (iptables -L text)",
                        iptviz::model::InputFormat::Nft => " (nft text)",
                        iptviz::model::InputFormat::NftJson => " (nft JSON)",
                        _ => "",
                    },
                    doc.parsed.ruleset.tables.len(),
                    doc.parsed.ruleset.chain_count(),
                    doc.parsed.ruleset.rule_count(),
                    doc.parsed.problems.len(),
                    doc.took.as_secs_f64()
                );
                if errors > 0 {
                    self.settings.show_problems = true;
                }
                if let Some(p) = path {
                    self.settings.remember(&p);
                }
                self.state.set_document(doc);
                self.info(text);
                self.dialogs.open = None;
                self.started_options_applied = false;
            }
            Err(e) => {
                // Something to look at rather than an empty window.
                if self.state.doc.is_none() {
                    self.load_sample();
                }
                self.error(e);
            }
        }
    }

    fn start(
        &mut self,
        ctx: &egui::Context,
        label: String,
        path: Option<String>,
        work: impl FnOnce() -> Result<Document, String> + Send + 'static,
    ) {
        if self.opts.sync {
            let out = work().map(Arc::new);
            self.finish_load(out, path);
        } else {
            self.job = Some(Job::spawn(ctx, label, path, work));
        }
    }

    /// Applies one user request.
    pub fn apply(&mut self, ctx: &egui::Context, action: Action) {
        match action {
            Action::Select(at) => self.state.select(at),
            Action::Follow(name) => {
                self.state.follow(&name);
            }
            Action::SetTable(t) => self.state.set_table(t),
            Action::ToggleGroup(g) => self.state.toggle_group(&g),
            Action::Back => self.state.back(),
            Action::Forward => self.state.forward(),
            Action::Search(q) => {
                self.search = q.clone();
                self.state.search(&q);
            }
            Action::ShowProblem(i) => self.state.problem = Some(i),
            Action::OpenPath(p) if crate::capture_state::is_capture_file(&p) => {
                // A capture is replayed through the rules already loaded.
                self.dialogs.open = None;
                crate::capture_state::apply(
                    &mut self.state,
                    &mut self.trace_form,
                    crate::capture_state::CaptureAction::Open(
                        crate::capture_state::CaptureSource::Path(p),
                    ),
                );
            }
            Action::LoadText { name, text } if crate::capture_state::is_capture(&text) => {
                crate::capture_state::apply(
                    &mut self.state,
                    &mut self.trace_form,
                    crate::capture_state::CaptureAction::Open(
                        crate::capture_state::CaptureSource::Bytes(name, text),
                    ),
                );
            }
            Action::OpenPath(p) => {
                let path = p.clone();
                self.start(ctx, format!("reading {p}"), Some(p), move || {
                    jobs::load_file(&path)
                });
            }
            Action::LoadText { name, text } => {
                let label = format!("parsing {name}");
                self.start(ctx, label, None, move || Document::from_bytes(&name, &text));
            }
            Action::LoadLive => {
                self.start(
                    ctx,
                    "running iptables-save -c".into(),
                    None,
                    jobs::load_live,
                );
            }
            Action::ShowSibling(i) => {
                if let Some(doc) = &self.state.doc {
                    let dumps = doc.siblings.dumps.clone();
                    let label = dumps
                        .get(i)
                        .map_or_else(String::new, |(name, _)| format!("parsing {name}"));
                    self.start(ctx, label, None, move || Document::from_siblings(dumps, i));
                }
            }
            Action::LoadSample => self.load_sample(),
            Action::Export(path) => {
                let table = self
                    .state
                    .doc
                    .as_ref()
                    .and_then(|d| d.parsed.ruleset.tables.get(self.state.table))
                    .map(|t| t.name.to_string());
                match (self.state.doc.clone(), table) {
                    (Some(doc), Some(table)) => {
                        self.info(format!("exporting {table} to {path} …"));
                        let req = self.state.scene_request();
                        self.export = Some(crate::export::spawn(
                            ctx,
                            doc,
                            self.state.heat.clone(),
                            req,
                            path,
                        ));
                        self.dialogs.open = None;
                    }
                    _ => self.error("nothing to export"),
                }
            }
            Action::CopyRules => {
                if let Some(text) = self.state.selected_rules_text() {
                    let n = text.lines().count();
                    ctx.copy_text(text);
                    self.info(format!("copied {n} rule(s)"));
                }
            }
            Action::Fit => self.state.fit_requested = true,
            Action::SetView(v) => self.state.view = v,
            Action::Open(d) => {
                if d == Dialog::Export && self.dialogs.export.is_empty() {
                    let t = self
                        .state
                        .doc
                        .as_ref()
                        .and_then(|doc| doc.parsed.ruleset.tables.get(self.state.table))
                        .map(|t| t.name.to_string())
                        .unwrap_or_else(|| "view".into());
                    self.dialogs.export = format!("iptviz-{t}.svg");
                }
                self.dialogs.open = Some(d);
            }
            Action::Theme(t) => {
                self.settings.theme = ThemeChoice::from_preference(t);
                ctx.set_theme(t);
            }
            Action::Conntrack(a) => self.state.conntrack.apply(ctx, a),
            Action::Trace(a) => crate::trace_state::apply(&mut self.state, a),
            Action::Reach(a) => {
                crate::reach_state::apply(&mut self.state, &mut self.trace_form, a);
            }
            Action::Compare(a) => {
                if a == CompareAction::Choose {
                    self.dialogs.open = Some(Dialog::Compare);
                }
                let m = crate::compare_state::apply(&mut self.state, &mut self.trace_form, ctx, a);
                self.compare_message(m);
            }
            Action::Capture(a) => {
                crate::capture_state::apply(&mut self.state, &mut self.trace_form, a);
            }
            Action::ShowFinding(i) => {
                let doc = self.state.doc.clone();
                let at = self
                    .state
                    .lint
                    .current(doc.as_ref())
                    .and_then(|r| r.findings.get(i))
                    .and_then(|f| f.at);
                self.state.lint.picked = Some(i);
                if let Some(at) = at {
                    self.state.select(at);
                }
            }
        }
    }

    /// Keyboard shortcuts, paste anywhere, and dropped files.
    fn global_input(&mut self, ctx: &egui::Context) -> Vec<Action> {
        let mut actions = Vec::new();
        let typing = ctx.memory(|m| m.focused().is_some());
        let mut dropped = ctx.input(|i| i.raw.dropped_files.clone());
        let conntrack = self.state.view == View::Conntrack;
        // With the Compare view open, rules dropped or pasted are the
        // other side of the comparison.
        let comparing = self.state.compare.open && !conntrack;
        // A capture dropped then is still replayed through the rules.
        let to_compare = |a: Action| match a {
            Action::OpenPath(p) if comparing && !crate::capture_state::is_capture_file(&p) => {
                Action::Compare(CompareAction::OpenPath(p))
            }
            Action::LoadText { name, text }
                if comparing && !crate::capture_state::is_capture(&text) =>
            {
                Action::Compare(CompareAction::LoadText { name, text })
            }
            a => a,
        };
        if conntrack {
            // Text dropped or pasted on the Conntrack tab is conntrack text.
            actions.extend(views::conntrack::global_input(ctx, &dropped, typing));
            dropped.clear();
        }
        for f in dropped {
            let path = f.path().display().to_string();
            if f.path().as_os_str().is_empty() {
                match f.bytes() {
                    Ok(b) => actions.push(to_compare(Action::LoadText {
                        name: "dropped file".into(),
                        text: b,
                    })),
                    Err(e) => self.error(format!("dropped file: {e}")),
                }
            } else {
                actions.push(to_compare(Action::OpenPath(path)));
            }
        }
        let cmd = |k| KeyboardShortcut::new(Modifiers::COMMAND, k);
        ctx.input_mut(|i| {
            if i.consume_shortcut(&cmd(Key::O)) {
                actions.push(Action::Open(Dialog::Open));
            }
            if i.consume_shortcut(&cmd(Key::E)) {
                actions.push(Action::Open(Dialog::Export));
            }
            if i.consume_shortcut(&KeyboardShortcut::new(
                Modifiers::COMMAND | Modifiers::SHIFT,
                Key::C,
            )) {
                actions.push(Action::CopyRules);
            }
            if i.consume_shortcut(&KeyboardShortcut::new(Modifiers::ALT, Key::ArrowLeft)) {
                actions.push(Action::Back);
            }
            if i.consume_shortcut(&KeyboardShortcut::new(Modifiers::ALT, Key::ArrowRight)) {
                actions.push(Action::Forward);
            }
            if !typing {
                if i.consume_key(Modifiers::NONE, Key::F) {
                    actions.push(Action::Fit);
                }
                if i.consume_key(Modifiers::NONE, Key::G) {
                    actions.push(Action::SetView(View::Graph));
                }
                if i.consume_key(Modifiers::NONE, Key::W) {
                    actions.push(Action::SetView(View::Flow));
                }
                for ev in &i.events {
                    if let egui::Event::Paste(text) = ev
                        && self.dialogs.open != Some(Dialog::Paste)
                        && !conntrack
                    {
                        actions.push(to_compare(Action::LoadText {
                            name: "pasted text".into(),
                            text: text.clone().into_bytes(),
                        }));
                    }
                }
            }
            if i.key_pressed(Key::Escape) {
                if self.dialogs.open.is_some() {
                    self.dialogs.open = None;
                } else if !self.search.is_empty() {
                    actions.push(Action::Search(String::new()));
                }
            }
        });
        if ctx.input_mut(|i| i.consume_shortcut(&cmd(Key::F))) {
            ctx.memory_mut(|m| m.request_focus(views::toolbar::search_id()));
        }
        actions
    }

    /// Applies the start options (`--table`, `--select`, ...) once a
    /// document is there.
    fn apply_start_options(&mut self) {
        if self.started_options_applied || self.state.doc.is_none() {
            return;
        }
        self.started_options_applied = true;
        if let Some(doc) = self.state.doc.clone() {
            if let Some(t) = &self.opts.table
                && let Some(i) = doc.parsed.ruleset.tables.iter().position(|x| x.name == *t)
            {
                self.state.set_table(i);
            }
            // Open groups first: selecting computes where to look.
            if self.opts.expand_all {
                self.state.expand_all();
            }
            if let Some(c) = self.opts.select.clone() {
                let t = doc.parsed.ruleset.tables[self.state.table].name.to_string();
                self.state.select_named(&t, &c);
            }
        }
        if let Some(q) = self.opts.search.clone() {
            self.search = q.clone();
            self.state.search(&q);
        }
        if self.opts.flow {
            self.state.view = View::Flow;
        }
        if let Some(p) = self.opts.capture.clone() {
            use crate::capture_state::{CaptureAction, CaptureSource};
            let open = CaptureAction::Open(CaptureSource::Path(p));
            crate::capture_state::apply(&mut self.state, &mut self.trace_form, open);
        }
    }

    /// Draws one frame (the whole window) into `ui`.
    pub fn show(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        let frame_start = Instant::now();
        // The Conntrack tab is boxes, text and straight lines on whole
        // pixels: without the anti-aliasing seams along every edge (thin
        // triangles that the software renderer shades in 4x4 blocks) its
        // frames take a tenth less time. The graph keeps them for its curves.
        let smooth = self.state.view != View::Conntrack;
        if ctx.tessellation_options(|o| o.feathering) != smooth {
            ctx.tessellation_options_mut(|o| o.feathering = smooth);
        }
        if self.state.waker.is_none() {
            self.state.waker = Some(ctx.clone());
        }
        self.state.poll_scene();
        crate::trace_state::poll(&mut self.state);
        crate::capture_state::poll(&mut self.state);
        if let Some(job) = &self.job
            && let Some(out) = job.poll()
        {
            let path = job.path.clone();
            self.job = None;
            self.finish_load(out, path);
        }
        if let Some(rx) = &self.export
            && let Ok(out) = rx.try_recv()
        {
            self.export = None;
            match out {
                Ok(m) => self.info(m),
                Err(e) => self.error(e),
            }
        }
        self.apply_start_options();
        self.state.conntrack.poll(&ctx, self.state.doc.as_ref());
        self.state.lint.poll(self.state.doc.as_ref(), Some(&ctx));
        self.state.reach.poll();
        let m = self.state.compare.poll(self.state.doc.as_ref(), Some(&ctx));
        self.compare_message(m);
        let mut actions = std::mem::take(&mut self.pending);
        actions.extend(self.global_input(&ctx));

        egui::Panel::top("toolbar")
            .frame(views::bare_panel(ui))
            .show(ui, |ui| {
                actions.extend(views::toolbar::show(
                    ui,
                    &self.state,
                    &mut self.search,
                    &self.settings.recent,
                    self.settings.theme.preference(),
                ));
            });
        egui::Panel::bottom("status")
            .frame(views::bare_panel(ui))
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    if let Some(job) = &self.job {
                        ui.spinner();
                        ui.label(format!(
                            "{} … {:.1} s",
                            job.label,
                            job.elapsed().as_secs_f32()
                        ));
                        ctx.request_repaint_after(std::time::Duration::from_millis(100));
                    } else if let Some(job) = &self.state.scene_job {
                        ui.spinner();
                        ui.label(format!("laying out … {:.1} s", job.elapsed().as_secs_f32()));
                        ctx.request_repaint_after(std::time::Duration::from_millis(100));
                    }
                    if let Some(t) = self.state.lint.busy() {
                        ui.spinner();
                        ui.label(format!("lint … {:.1} s", t.as_secs_f32()));
                        ctx.request_repaint_after(std::time::Duration::from_millis(100));
                    }
                    if let Some(t) = self.state.compare.busy() {
                        ui.spinner();
                        ui.label(format!("comparing … {:.1} s", t.as_secs_f32()));
                        ctx.request_repaint_after(std::time::Duration::from_millis(100));
                    }
                    if let Some(e) = &self.state.scene_error {
                        ui.colored_label(
                            crate::palette::verdict_colour("DROP", ui.visuals().dark_mode),
                            format!("layout failed: {e}"),
                        );
                    }
                    if let Some(doc) = &self.state.doc {
                        let n = doc.parsed.problems.len();
                        let mut label = if n == 0 {
                            "no problems".to_string()
                        } else {
                            format!("{n} problem(s)")
                        };
                        let lint = self.state.lint.current(Some(doc));
                        if let Some(k) = lint.map(|r| r.findings.len()).filter(|&k| k > 0) {
                            label.push_str(&format!(", {k} lint finding(s)"));
                        }
                        if ui
                            .selectable_label(self.settings.show_problems, label)
                            .on_hover_text("Show or hide the problems panel")
                            .clicked()
                        {
                            self.settings.show_problems = !self.settings.show_problems;
                        }
                        // What the input format could not carry (`iptables -L`
                        // prints no interfaces without -v ...), said by the parser.
                        let notes = &doc.parsed.ruleset.notes;
                        if !notes.is_empty() {
                            let all: Vec<String> =
                                notes.iter().map(|n| format!("note: {n}")).collect();
                            ui.label(format!(
                                "{} note{} on what the text does not show",
                                notes.len(),
                                if notes.len() == 1 { "" } else { "s" }
                            ))
                            .on_hover_text(all.join("\n"));
                        }
                    }
                    if let Some(m) = &self.message {
                        let colour = if m.error {
                            crate::palette::verdict_colour("DROP", ui.visuals().dark_mode)
                        } else {
                            ui.visuals().text_color()
                        };
                        ui.label(egui::RichText::new(first_line(&m.text)).color(colour))
                            .on_hover_text(&m.text);
                    }
                });
            });
        if self.settings.show_problems && self.state.doc.is_some() {
            egui::Panel::bottom("problems")
                .frame(views::bare_panel(ui))
                .resizable(true)
                .default_size(170.0)
                .show(ui, |ui| {
                    actions.extend(views::problems::show(ui, &self.state));
                });
        }
        let conntrack = self.state.view == View::Conntrack;
        if self.state.capture.open && !conntrack {
            egui::Panel::bottom("capture")
                .frame(views::bare_panel(ui))
                .resizable(true)
                .default_size(220.0)
                .min_size(120.0)
                .show(ui, |ui| {
                    actions.extend(views::capture::show(ui, &self.state));
                });
        }
        if self.state.trace.open && !conntrack {
            egui::Panel::bottom("trace")
                .frame(views::bare_panel(ui))
                .resizable(true)
                .default_size(300.0)
                .min_size(160.0)
                .show(ui, |ui| {
                    actions.extend(views::trace::show(ui, &self.state, &mut self.trace_form));
                });
        }
        if self.state.compare.open && !conntrack {
            // With the trace panel open too, keep half the height for the
            // graph and the panels beside it.
            let room = (ui.available_height() * 0.5).max(140.0);
            egui::Panel::bottom("compare")
                .frame(views::bare_panel(ui))
                .resizable(true)
                .default_size(330.0)
                .min_size(120.0)
                .max_size(room)
                .show(ui, |ui| {
                    actions.extend(views::compare::show(ui, &self.state));
                });
        }
        if !conntrack {
            // The Reach view needs the width more than the chain list.
            if self.state.view != View::Reach {
                egui::Panel::left("chains")
                    .frame(views::bare_panel(ui))
                    .resizable(true)
                    .default_size(260.0)
                    .min_size(200.0)
                    .show(ui, |ui| {
                        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Truncate);
                        actions.extend(views::chains::show(
                            ui,
                            &self.state,
                            &mut self.chain_filter,
                        ));
                    });
            }
            egui::Panel::right("rules")
                .frame(views::bare_panel(ui))
                .resizable(true)
                .default_size(430.0)
                .min_size(280.0)
                .show(ui, |ui| {
                    actions.extend(views::rules::show(ui, &self.state));
                });
        }
        egui::CentralPanel::no_frame().show(ui, |ui| {
            match self.state.view {
                View::Graph => {
                    actions.extend(canvas::show(ui, &self.state, &mut self.camera));
                    self.last_canvas_rect = Dock::last(&ctx, canvas::GRAPH_DOCK)
                        .map(|d| d.graph)
                        .or(Some(ui.max_rect()));
                }
                View::Flow => {
                    let same = match (&self.flow_fitted, &self.state.doc) {
                        (Some(w), Some(d)) => std::sync::Weak::ptr_eq(w, &Arc::downgrade(d)),
                        _ => false,
                    };
                    let fit = self.state.fit_requested || !same;
                    self.flow_fitted = self.state.doc.as_ref().map(Arc::downgrade);
                    actions.extend(views::flow::show(
                        ui,
                        &self.state,
                        &mut self.flow_camera,
                        fit,
                    ));
                    self.last_canvas_rect = Dock::last(&ctx, views::flow::FLOW_DOCK)
                        .map(|d| d.graph)
                        .or(Some(ui.max_rect()));
                }
                View::Conntrack => {
                    actions.extend(views::conntrack::show(ui, &self.state, &mut self.ct_form))
                }
                View::Reach => {
                    self.last_canvas_rect = None;
                    actions.extend(views::reach::show(
                        ui,
                        &self.state,
                        &mut self.reach_form,
                        &mut self.reach_camera,
                        &mut self.last_canvas_rect,
                    ));
                }
            }
            if let Some(m) = &self.message
                && m.error
                && m.text.contains('\n')
            {
                let mut open = true;
                egui::Window::new("Could not load")
                    .open(&mut open)
                    .collapsible(false)
                    .show(&ctx, |ui| {
                        ui.label(&m.text);
                    });
                if !open {
                    self.message = None;
                }
            }
        });
        self.state.fit_requested = false;
        if let Some(p) = self.state.focus.take() {
            // Move only when the chain is out of sight (or under the
            // legend) or too small to read.
            let legend = ctx
                .data(|d| d.get_temp::<Option<egui::Rect>>(canvas::legend_rect_id()))
                .flatten();
            let seen = self
                .last_canvas_rect
                .map(|r| {
                    self.camera.visible(r.shrink(60.0)).contains(p)
                        && !legend
                            .is_some_and(|l| l.expand(30.0).contains(self.camera.to_screen(r, p)))
                })
                .unwrap_or(false);
            if !seen || self.camera.zoom < 0.6 {
                self.camera.center = p;
                self.camera.zoom = self.camera.zoom.max(0.6);
            }
        }
        actions.extend(dialogs::show(
            &ctx,
            &mut self.dialogs,
            &self.settings.recent,
        ));
        for a in actions {
            self.apply(&ctx, a);
        }

        self.frames += 1;
        if let Some(b) = &mut self.bench {
            // On the Conntrack tab the script scrolls the table instead.
            self.state.conntrack.scroll_offset =
                (self.state.view == View::Conntrack).then_some((self.frames % 400) as f32 * 3000.0);
            b.readings(self.state.conntrack.readings);
            b.reading_in_progress(self.state.conntrack.loading.is_some());
            let bounds = self.state.scene.as_ref().map(|s| s.bounds);
            let view = self.last_canvas_rect.unwrap_or(ui.max_rect());
            let done = b.frame(frame_start, &mut self.camera, bounds, view);
            if done {
                b.report(self.state.scene.as_ref().map_or(0, |s| s.nodes.len()));
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            ctx.request_repaint();
        }
        if let Some(n) = self.opts.exit_after_frames {
            if self.frames >= n && self.job.is_none() && !self.state.laying_out() && !self.closing {
                self.closing = true;
                if let Some(doc) = &self.state.doc {
                    println!(
                        "iptviz-gui: {} frames, {}: {} tables, {} chains, {} rules, {} problems",
                        self.frames,
                        doc.name,
                        doc.parsed.ruleset.tables.len(),
                        doc.parsed.ruleset.chain_count(),
                        doc.parsed.ruleset.rule_count(),
                        doc.parsed.problems.len()
                    );
                }
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            ctx.request_repaint();
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl eframe::App for IptvizApp {
    fn ui(&mut self, ui: &mut Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    /// The panel colour: the panels leave their background to it (see
    /// [`views::bare_panel`]).
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, Settings::KEY, &self.settings);
    }
}
