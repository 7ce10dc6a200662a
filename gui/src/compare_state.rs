//! State of the Compare view, apart from drawing: a second ruleset (the
//! baseline, OLD) beside the loaded one (NEW), what `iptviz diff` says of
//! the two (the rule diff, then the semantic diff), computed on a worker
//! thread and flattened into rows to list, the chains to mark on the
//! graph, and the difference picked last.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use iptviz::diff::semantic::{FateBox, SemanticDiff, SemanticOptions, semantic_diff_until};
use iptviz::diff::{ChainDiff, ChangeKind, DiffOptions, RuleDiff, RuleRef, Status, diff};
use iptviz::graph::DiffMark;
use iptviz::trace::{Packet, protocol_name};

use crate::jobs::{self, Job};
use crate::state::{AppState, ChainRef, Document};
use crate::trace_state::{TraceAction, TraceForm};

/// What a row of the rule differences says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A table only one side has.
    Table,
    /// A chain heading: added, removed, renamed or changed.
    Chain,
    /// A built-in chain's policy changed.
    Policy,
    /// A rule only NEW has.
    Added,
    /// A rule only OLD has.
    Removed,
    /// A rule changed in place (NEW's text).
    Changed,
    /// The OLD text of the changed rule above.
    Was,
    /// The same rule at another place.
    Moved,
}

/// One line of the rule differences.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    /// What it says.
    pub kind: RowKind,
    /// Table name.
    pub table: String,
    /// Chain name (NEW's when renamed; empty for a table row).
    pub chain: String,
    /// The line listed.
    pub text: String,
    /// The rule in OLD (removed, changed, moved).
    pub old: Option<RuleRef>,
    /// The rule in NEW (added, changed, moved).
    pub new: Option<RuleRef>,
}

/// The comparison of two documents.
pub struct CompareResult {
    old: Weak<Document>,
    new: Weak<Document>,
    /// Name of the OLD side.
    pub old_name: String,
    /// Name of the NEW side (the loaded rules).
    pub new_name: String,
    /// The library's rule diff.
    pub diff: RuleDiff,
    /// The semantic diff, or why there is none; `None` when the rules are
    /// the same (no packet can change fate).
    pub semantic: Option<Result<SemanticDiff, String>>,
    /// The rule differences as listed.
    pub rows: Vec<DiffRow>,
    /// The boxes of packets that change fate, as (path, box) indices into
    /// the semantic diff, in its order.
    pub fates: Vec<(usize, usize)>,
    /// Per table of NEW (same order), the chains to mark on the graph.
    pub marks: Vec<HashMap<usize, DiffMark>>,
    /// Time the comparison took.
    pub took: Duration,
}

impl CompareResult {
    /// Whether nothing differs at all.
    pub fn same(&self) -> bool {
        self.diff.is_same()
    }

    /// The answer in one sentence: no differences, rules differ but no
    /// packet changes fate, or how many boxes of packets do.
    pub fn verdict(&self) -> String {
        if self.same() {
            return "No differences: the same tables, chains, policies and rules (counters aside)."
                .into();
        }
        match &self.semantic {
            None => "Rules differ.".into(),
            Some(Err(e)) => format!("Rules differ; packets not compared: {e}."),
            Some(Ok(s)) if s.same => {
                "Rules differ but no packet changes fate (a refactoring).".into()
            }
            Some(Ok(s)) => {
                let boxes: usize = s.paths.iter().map(|p| p.total).sum();
                let mut t = format!(
                    "Packets change fate: {} box{} of packets in {} chain{}.",
                    boxes,
                    if boxes == 1 { "" } else { "es" },
                    s.paths.len(),
                    if s.paths.len() == 1 { "" } else { "s" }
                );
                if !s.skipped.is_empty() {
                    t.push_str(&format!(" {} chain(s) not compared.", s.skipped.len()));
                }
                t
            }
        }
    }

    /// Counts of the rule diff in words.
    pub fn summary(&self) -> String {
        let s = &self.diff.summary;
        let mut parts = Vec::new();
        for (n, what) in [
            (s.rules_added, "rule(s) added"),
            (s.rules_removed, "removed"),
            (s.rules_changed, "changed"),
            (s.rules_moved, "moved"),
            (s.policies_changed, "policy change(s)"),
            (s.chains_added, "chain(s) added"),
            (s.chains_removed, "chain(s) removed"),
            (s.chains_renamed, "chain(s) renamed"),
            (s.tables_added, "table(s) added"),
            (s.tables_removed, "table(s) removed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if let Some((a, b)) = self.diff.family_changed {
            parts.push(format!("address family {a:?} -> {b:?}"));
        }
        if parts.is_empty() {
            "nothing differs".into()
        } else {
            parts.join(", ")
        }
    }

    /// Box `i` of [`CompareResult::fates`] with its table and chain.
    pub fn fate(&self, i: usize) -> Option<(&str, &str, &FateBox)> {
        let &(p, b) = self.fates.get(i)?;
        let s = self.semantic.as_ref()?.as_ref().ok()?;
        let path = s.paths.get(p)?;
        Some((&path.table, &path.chain, path.boxes.get(b)?))
    }
}

fn rule_row(
    kind: RowKind,
    table: &str,
    chain: &ChainDiff,
    old: Option<&RuleRef>,
    new: Option<&RuleRef>,
) -> DiffRow {
    let text = match (kind, old, new) {
        (RowKind::Added, _, Some(n)) => format!("+ #{} line {}: {}", n.index, n.line, n.text),
        (RowKind::Removed, Some(o), _) => {
            format!("- was #{} old line {}: {}", o.index, o.line, o.text)
        }
        (RowKind::Changed, _, Some(n)) => format!("~ #{} line {}: {}", n.index, n.line, n.text),
        (RowKind::Was, Some(o), _) => {
            format!("    was #{} old line {}: {}", o.index, o.line, o.text)
        }
        (RowKind::Moved, Some(o), Some(n)) => format!(
            "> #{} line {} (was #{} old line {}): {}",
            n.index, n.line, o.index, o.line, n.text
        ),
        _ => String::new(),
    };
    DiffRow {
        kind,
        table: table.to_string(),
        chain: chain.name.clone(),
        text,
        old: old.cloned(),
        new: new.cloned(),
    }
}

/// The rule diff as rows: per table, per chain a heading, its policy,
/// then its rules in NEW's order.
pub fn rows(d: &RuleDiff) -> Vec<DiffRow> {
    let mut out = Vec::new();
    for td in &d.tables {
        if td.status != Status::Changed {
            out.push(DiffRow {
                kind: RowKind::Table,
                table: td.name.clone(),
                chain: String::new(),
                text: format!(
                    "table {}: {}",
                    td.name,
                    if td.status == Status::Added {
                        "added"
                    } else {
                        "removed"
                    }
                ),
                old: None,
                new: None,
            });
        }
        for cd in &td.chains {
            let service = cd
                .service
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            let n = cd.rules.len();
            let head = match cd.status {
                Status::Added => format!(
                    "{} {}{service}: chain added, {}",
                    td.name,
                    cd.name,
                    crate::scene::plural(n, "rule")
                ),
                Status::Removed => format!(
                    "{} {}{service}: chain removed, {}",
                    td.name,
                    cd.name,
                    crate::scene::plural(n, "rule")
                ),
                Status::Renamed => format!(
                    "{} {}{service}: chain renamed from {}",
                    td.name,
                    cd.name,
                    cd.old_name.as_deref().unwrap_or("?")
                ),
                Status::Changed => format!("{} {}{service}", td.name, cd.name),
            };
            out.push(DiffRow {
                kind: RowKind::Chain,
                table: td.name.clone(),
                chain: cd.name.clone(),
                text: head,
                old: None,
                new: None,
            });
            if let Some((o, n)) = &cd.policy {
                out.push(DiffRow {
                    kind: RowKind::Policy,
                    table: td.name.clone(),
                    chain: cd.name.clone(),
                    text: format!("  policy {o} -> {n}"),
                    old: None,
                    new: None,
                });
            }
            for rc in &cd.rules {
                let (o, n) = (rc.old.as_ref(), rc.new.as_ref());
                match rc.kind {
                    ChangeKind::Added => out.push(rule_row(RowKind::Added, &td.name, cd, o, n)),
                    ChangeKind::Removed => out.push(rule_row(RowKind::Removed, &td.name, cd, o, n)),
                    ChangeKind::Changed => {
                        out.push(rule_row(RowKind::Changed, &td.name, cd, o, n));
                        out.push(rule_row(RowKind::Was, &td.name, cd, o, n));
                    }
                    ChangeKind::Moved => out.push(rule_row(RowKind::Moved, &td.name, cd, o, n)),
                    // Counters are not compared here.
                    ChangeKind::Counters => {}
                }
            }
        }
    }
    out
}

/// The chains of `new` to mark: added chains, and chains with rules
/// added, removed, changed or moved, or another policy (renamed ones too).
pub fn marks(d: &RuleDiff, new: &iptviz::Ruleset) -> Vec<HashMap<usize, DiffMark>> {
    let mut out = vec![HashMap::new(); new.tables.len()];
    for td in &d.tables {
        let Some(ti) = new.tables.iter().position(|t| t.name == td.name) else {
            continue;
        };
        for cd in &td.chains {
            let Some(ci) = new.tables[ti].chain_position(&cd.name) else {
                continue;
            };
            let m = match cd.status {
                Status::Added => DiffMark::Added,
                Status::Removed => continue,
                Status::Renamed | Status::Changed => DiffMark::Changed,
            };
            out[ti].insert(ci, m);
        }
    }
    out
}

/// Compares `old` with `new` (the slow part: run on a worker thread);
/// `None` when `cancel` was set (it is looked at after the rule diff and
/// before each chain the semantic diff walks).
pub fn compute(
    old: &Arc<Document>,
    new: &Arc<Document>,
    cancel: &AtomicBool,
) -> Option<CompareResult> {
    let start = Instant::now();
    let (o, n) = (&old.parsed.ruleset, &new.parsed.ruleset);
    let d = diff(o, n, &old.name, &new.name, &DiffOptions::default());
    if cancel.load(Ordering::Relaxed) {
        return None;
    }
    let semantic = if d.is_same() {
        None
    } else {
        let stop = || cancel.load(Ordering::Relaxed);
        let s = semantic_diff_until(o, n, &SemanticOptions::default(), &stop)?;
        Some(s.map_err(|e| e.to_string()))
    };
    let fates = match &semantic {
        Some(Ok(s)) => s
            .paths
            .iter()
            .enumerate()
            .flat_map(|(p, path)| (0..path.boxes.len()).map(move |b| (p, b)))
            .collect(),
        _ => Vec::new(),
    };
    Some(CompareResult {
        old: Arc::downgrade(old),
        new: Arc::downgrade(new),
        old_name: old.name.clone(),
        new_name: new.name.clone(),
        rows: rows(&d),
        marks: marks(&d, n),
        diff: d,
        semantic,
        fates,
        took: start.elapsed(),
    })
}

/// The packets of a box in words: `tcp  dst 10.0.0.0/8  dpt 22  NEW`.
pub fn describe_box(b: &FateBox) -> String {
    let mut parts = Vec::new();
    let fields = [
        ("", &b.proto),
        ("src ", &b.src),
        ("dst ", &b.dst),
        ("spt ", &b.sport),
        ("dpt ", &b.dport),
        ("in ", &b.in_iface),
        ("out ", &b.out_iface),
        ("", &b.state),
        ("frag ", &b.fragment),
        ("flags ", &b.tcp_flags),
        ("icmp ", &b.icmp),
    ];
    for (label, v) in fields {
        if let Some(v) = v {
            parts.push(format!("{label}{v}"));
        }
    }
    if parts.is_empty() {
        parts.push("every packet".into());
    }
    for u in &b.unknown {
        parts.push(format!("[{u}]"));
    }
    parts.join("  ")
}

/// The trace form for a box's example packet, entering where the chain
/// sees packets (INPUT for this host, FORWARD forwarded, OUTPUT sent).
pub fn example_form(chain: &str, p: &Packet) -> TraceForm {
    let direction = match chain {
        "INPUT" => "in",
        "FORWARD" => "forward",
        "OUTPUT" => "out",
        _ => "auto",
    };
    let local = match direction {
        "in" => p.dst.to_string(),
        "out" => p.src.to_string(),
        _ => String::new(),
    };
    let port = |n: u16| {
        if p.has_ports() {
            n.to_string()
        } else {
            String::new()
        }
    };
    TraceForm {
        proto: protocol_name(p.proto),
        src: p.src.to_string(),
        dst: p.dst.to_string(),
        sport: port(p.sport),
        dport: port(p.dport),
        in_iface: p.in_iface.as_deref().unwrap_or("").to_string(),
        out_iface: p.out_iface.as_deref().unwrap_or("").to_string(),
        state: p.state.name().to_string(),
        mark: if p.mark == 0 {
            String::new()
        } else {
            format!("{:#x}", p.mark)
        },
        local,
        direction: direction.into(),
    }
}

/// What was clicked in the Compare view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// A row of the rule differences.
    Row(usize),
    /// A box of packets that change fate (index in `fates`).
    Fate(usize),
}

/// Where a pick points in the loaded rules, for the rules panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Focus {
    /// The chain in NEW, when it is there.
    pub at: Option<ChainRef>,
    /// The rule of that chain (0-based), when it is there.
    pub rule: Option<usize>,
    /// A rule only OLD has, shown with its old text.
    pub removed: Option<RuleRef>,
}

/// A comparison running on a worker thread.
struct CompareJob {
    old: Weak<Document>,
    new: Weak<Document>,
    started: Instant,
    rx: Receiver<CompareResult>,
    /// Set when its answer is no longer wanted.
    cancel: Arc<AtomicBool>,
}

impl Drop for CompareJob {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The Compare view.
#[derive(Default)]
pub struct CompareState {
    /// The panel is shown (and drops and pastes go to it).
    pub open: bool,
    /// The baseline (OLD) ruleset.
    pub other: Option<Arc<Document>>,
    /// The last comparison.
    pub result: Option<Arc<CompareResult>>,
    /// Why the last comparison could not be made.
    pub error: Option<String>,
    /// Difference clicked last.
    pub pick: Option<Pick>,
    /// Where the pick points in the loaded rules.
    pub focus: Option<Focus>,
    /// Counts picks, so the rules panel scrolls once per pick.
    pub picks: u64,
    /// Read and compare on the calling thread (tests).
    pub sync: bool,
    /// The comparison was stopped by the user; not started again until
    /// an input changes.
    pub cancelled: bool,
    loading: Option<Job>,
    job: Option<CompareJob>,
}

fn is(w: &Weak<Document>, d: &Arc<Document>) -> bool {
    Weak::ptr_eq(w, &Arc::downgrade(d))
}

impl CompareState {
    /// The comparison of `doc` with the other ruleset, when it is made.
    pub fn current(&self, doc: Option<&Arc<Document>>) -> Option<&Arc<CompareResult>> {
        let (r, d, o) = (self.result.as_ref()?, doc?, self.other.as_ref()?);
        (is(&r.new, d) && is(&r.old, o)).then_some(r)
    }

    /// Whether a comparison is running, and for how long.
    pub fn busy(&self) -> Option<Duration> {
        self.job.as_ref().map(|j| j.started.elapsed())
    }

    /// The file being read as the other ruleset, if any.
    pub fn reading(&self) -> Option<&str> {
        self.loading.as_ref().map(|j| j.label.as_str())
    }

    /// The chains of table `table` to mark on the graph, while the view is
    /// open.
    pub fn marks(
        &self,
        doc: Option<&Arc<Document>>,
        table: usize,
    ) -> Option<&HashMap<usize, DiffMark>> {
        if !self.open {
            return None;
        }
        self.current(doc)?
            .marks
            .get(table)
            .filter(|m| !m.is_empty())
    }

    /// The picked difference when it is in chain `at` of the loaded rules.
    pub fn focus_in(&self, doc: Option<&Arc<Document>>, at: ChainRef) -> Option<&Focus> {
        self.current(doc)?;
        self.focus.as_ref().filter(|f| f.at == Some(at))
    }

    /// Makes `d` the other ruleset; it is compared on the next poll.
    pub fn set_other(&mut self, d: Arc<Document>) {
        self.other = Some(d);
        self.error = None;
        self.cancelled = false;
    }

    /// Stops the running comparison.
    pub fn cancel(&mut self) {
        if self.job.take().is_some() {
            self.cancelled = true;
        }
    }

    fn finished(&mut self, r: CompareResult) {
        self.result = Some(Arc::new(r));
        self.error = None;
        self.pick = None;
        self.focus = None;
    }

    /// Called every frame: takes the other ruleset once read, takes a
    /// finished comparison, and starts one when an input changed. Gives a
    /// line for the status bar (an error when the other file could not
    /// be read).
    pub fn poll(
        &mut self,
        doc: Option<&Arc<Document>>,
        waker: Option<&egui::Context>,
    ) -> Option<Result<String, String>> {
        let mut msg = None;
        if let Some(job) = &self.loading
            && let Some(out) = job.poll()
        {
            self.loading = None;
            msg = Some(self.other_read(out));
        }
        if let Some(job) = &self.job {
            match job.rx.try_recv() {
                Ok(r) => {
                    let fresh = doc.is_some_and(|d| is(&job.new, d))
                        && self.other.as_ref().is_some_and(|o| is(&job.old, o));
                    self.job = None;
                    if fresh {
                        self.finished(r);
                    }
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.job = None;
                    self.error = Some("the compare worker stopped".into());
                    self.cancelled = true;
                }
            }
        }
        let (Some(d), Some(o)) = (doc, self.other.clone()) else {
            return msg;
        };
        if self.current(doc).is_some() {
            return msg;
        }
        if let Some(job) = &self.job {
            if is(&job.new, d) && is(&job.old, &o) {
                return msg;
            }
            // An input changed: the old run is dropped, which stops it.
            self.job = None;
            self.cancelled = false;
        }
        // Hidden, nothing new is compared (it is when shown again).
        if self.cancelled || !self.open {
            return msg;
        }
        if self.sync {
            if let Some(r) = compute(&o, d, &AtomicBool::new(false)) {
                self.finished(r);
            }
            return msg;
        }
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let (od, nd) = (o.clone(), d.clone());
        let waker = waker.cloned();
        std::thread::spawn(move || {
            // Nothing is sent when cancelled: the receiver is gone.
            if let Some(r) = compute(&od, &nd, &stop) {
                let _ = tx.send(r);
                if let Some(ctx) = waker {
                    ctx.request_repaint();
                }
            }
        });
        self.job = Some(CompareJob {
            old: Arc::downgrade(&o),
            new: Arc::downgrade(d),
            started: Instant::now(),
            rx,
            cancel,
        });
        msg
    }

    fn other_read(&mut self, out: jobs::Outcome) -> Result<String, String> {
        match out {
            Ok(d) => {
                let text = format!(
                    "comparing with {}: {} rules, {} problem(s)",
                    d.name,
                    d.parsed.ruleset.rule_count(),
                    d.parsed.problems.len()
                );
                self.set_other(d);
                Ok(text)
            }
            Err(e) => Err(format!("compare: {e}")),
        }
    }

    /// Reads the other ruleset (on a worker thread unless `sync`).
    fn read(
        &mut self,
        ctx: &egui::Context,
        label: String,
        work: impl FnOnce() -> Result<Document, String> + Send + 'static,
    ) -> Option<Result<String, String>> {
        self.open = true;
        if self.sync {
            return Some(self.other_read(work().map(Arc::new)));
        }
        self.loading = Some(Job::spawn(ctx, label, None, work));
        None
    }
}

/// Something the user asked of the Compare view.
#[derive(Debug, Clone, PartialEq)]
pub enum CompareAction {
    /// Show the view and ask for the other file.
    Choose,
    /// Show or hide the view.
    Toggle,
    /// Read this file as the other ruleset.
    OpenPath(String),
    /// Parse this text (a paste or a dropped file) as the other ruleset.
    LoadText {
        /// Name used in messages.
        name: String,
        /// The text.
        text: Vec<u8>,
    },
    /// A difference was clicked: select its rule.
    Pick(Pick),
    /// Trace the example packet of box `i` in the trace panel.
    TraceExample(usize),
    /// Make the other ruleset the loaded one and the loaded one the other.
    Swap,
    /// Stop the running comparison.
    Cancel,
}

/// Applies a Compare request; gives a line for the status bar, if any.
/// [`CompareAction::Choose`] is the app's (it opens a dialog).
pub fn apply(
    state: &mut AppState,
    trace_form: &mut TraceForm,
    ctx: &egui::Context,
    a: CompareAction,
) -> Option<Result<String, String>> {
    match a {
        CompareAction::Choose => state.compare.open = true,
        CompareAction::Toggle => state.compare.open = !state.compare.open,
        CompareAction::OpenPath(p) => {
            let path = p.clone();
            return state
                .compare
                .read(ctx, format!("reading {p}"), move || jobs::load_file(&path));
        }
        CompareAction::LoadText { name, text } => {
            let label = format!("parsing {name}");
            return state
                .compare
                .read(ctx, label, move || Document::from_bytes(&name, &text));
        }
        CompareAction::Pick(p) => pick(state, p),
        CompareAction::TraceExample(i) => {
            let doc = state.doc.clone();
            let r = state.compare.current(doc.as_ref())?.clone();
            let (_, chain, b) = r.fate(i)?;
            *trace_form = example_form(chain, &b.example);
            pick(state, Pick::Fate(i));
            state.trace.open = true;
            crate::trace_state::apply(state, TraceAction::Run(Box::new(trace_form.clone())));
        }
        CompareAction::Swap => {
            let other = state.compare.other.take()?;
            if let Some(d) = state.doc.take() {
                state.compare.set_other(d);
            }
            let name = other.name.clone();
            state.set_document(other);
            return Some(Ok(format!(
                "now showing {name}; comparing against the other side"
            )));
        }
        CompareAction::Cancel => state.compare.cancel(),
    }
    None
}

/// Selects what a difference points at in the loaded rules.
fn pick(state: &mut AppState, p: Pick) {
    let doc = state.doc.clone();
    let Some(r) = state.compare.current(doc.as_ref()).cloned() else {
        return;
    };
    let focus = match p {
        Pick::Row(i) => {
            let Some(row) = r.rows.get(i) else { return };
            let at = state.find(&row.table, &row.chain);
            let rule = match row.kind {
                RowKind::Added | RowKind::Changed | RowKind::Was | RowKind::Moved => {
                    row.new.as_ref().map(|n| n.index - 1)
                }
                _ => None,
            };
            let removed = (row.kind == RowKind::Removed)
                .then(|| row.old.clone())
                .flatten();
            Focus { at, rule, removed }
        }
        Pick::Fate(i) => {
            let Some((table, chain, b)) = r.fate(i) else {
                return;
            };
            // The deciding rule in NEW, found by its line; else the chain
            // whose policy decided.
            let by_line = b.new.rule.as_ref().and(b.new.line).and_then(|line| {
                let d = doc.as_ref()?;
                let ti = d
                    .parsed
                    .ruleset
                    .tables
                    .iter()
                    .position(|t| t.name == table)?;
                let t = &d.parsed.ruleset.tables[ti];
                t.chains.iter().enumerate().find_map(|(ci, c)| {
                    let ri = c.rules.iter().position(|r| r.line == line)?;
                    Some((
                        ChainRef {
                            table: ti,
                            chain: ci,
                        },
                        ri,
                    ))
                })
            });
            match by_line {
                Some((at, ri)) => Focus {
                    at: Some(at),
                    rule: Some(ri),
                    removed: None,
                },
                None => Focus {
                    at: state.find(table, chain),
                    rule: None,
                    removed: None,
                },
            }
        }
    };
    state.compare.pick = Some(p);
    state.compare.picks += 1;
    if let Some(at) = focus.at {
        state.select(at);
    }
    state.compare.focus = Some(focus);
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
        -A INPUT -p tcp -m tcp --dport 23 -j ACCEPT\n\
        -A INPUT -j DROP\nCOMMIT\n";

    fn docs(old: &str, new: &str) -> (Arc<Document>, Arc<Document>) {
        let o = Document::from_bytes("old.rules", old.as_bytes()).expect("old");
        let n = Document::from_bytes("new.rules", new.as_bytes()).expect("new");
        (Arc::new(o), Arc::new(n))
    }

    #[test]
    fn a_removed_rule_is_listed_with_its_old_line_and_its_packets() {
        let new = OLD.replace("-A INPUT -p tcp -m tcp --dport 23 -j ACCEPT\n", "");
        let (o, n) = docs(OLD, &new);
        let r = compute(&o, &n, &AtomicBool::new(false)).expect("computed");
        let removed: Vec<&DiffRow> = r
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::Removed)
            .collect();
        assert_eq!(removed.len(), 1, "{:#?}", r.rows);
        assert_eq!(
            removed[0].text,
            "- was #2 old line 6: -A INPUT -p tcp -m tcp --dport 23 -j ACCEPT"
        );
        assert_eq!(r.marks[0].get(&0), Some(&DiffMark::Changed));
        let (_, chain, b) = r.fate(0).expect("a box changes fate");
        assert_eq!(chain, "INPUT");
        assert_eq!(b.dport.as_deref(), Some("23"));
        assert_eq!(
            (b.old.outcome.as_str(), b.new.outcome.as_str()),
            ("ACCEPT", "DROP")
        );
        let f = example_form(chain, &b.example);
        assert_eq!((f.dport.as_str(), f.direction.as_str()), ("23", "in"));
        assert!(f.packet().is_ok());
    }

    #[test]
    fn chains_added_and_removed_are_headed_and_marked() {
        let new = OLD.replace(
            ":OUTPUT ACCEPT [0:0]\n",
            ":OUTPUT ACCEPT [0:0]\n:WEB - [0:0]\n-A WEB -p tcp -m tcp --dport 80 -j ACCEPT\n",
        );
        let old = OLD.replace(
            ":OUTPUT ACCEPT [0:0]\n",
            ":OUTPUT ACCEPT [0:0]\n:GONE - [0:0]\n",
        );
        let (o, n) = docs(&old, &new);
        let r = compute(&o, &n, &AtomicBool::new(false)).expect("computed");
        let texts: Vec<&str> = r.rows.iter().map(|d| d.text.as_str()).collect();
        assert!(
            texts.contains(&"filter WEB: chain added, 1 rule"),
            "{texts:#?}"
        );
        assert!(
            texts.contains(&"filter GONE: chain removed, 0 rules"),
            "{texts:#?}"
        );
        assert!(
            texts.contains(&"+ #1 line 6: -A WEB -p tcp -m tcp --dport 80 -j ACCEPT"),
            "{texts:#?}"
        );
        let web = n.parsed.ruleset.tables[0].chain_position("WEB").unwrap();
        assert_eq!(r.marks[0].get(&web), Some(&DiffMark::Added));
        assert_eq!(
            r.marks[0].len(),
            1,
            "the removed chain is not in NEW's graph"
        );
        assert!(r.summary().contains("1 chain(s) added, 1 chain(s) removed"));
    }

    #[test]
    fn a_cancelled_comparison_gives_nothing() {
        let (o, n) = docs(OLD, OLD);
        assert!(compute(&o, &n, &AtomicBool::new(true)).is_none());
        let r = compute(&o, &n, &AtomicBool::new(false)).expect("computed");
        assert!(r.same() && r.rows.is_empty() && r.semantic.is_none());
        assert!(r.verdict().starts_with("No differences"));
    }

    #[test]
    fn a_new_loaded_document_starts_a_new_comparison_and_drops_the_old_one() {
        let mut s = AppState::default();
        s.load("new.rules", OLD.as_bytes()).expect("loads");
        let (o, _) = docs(OLD, OLD);
        s.compare.set_other(o);
        s.compare.poll(s.doc.as_ref(), None);
        assert!(s.compare.busy().is_none(), "nothing compared while hidden");
        s.compare.open = true;
        s.compare.poll(s.doc.as_ref(), None);
        let first = s.compare.job.as_ref().expect("running").cancel.clone();
        s.load("again", OLD.as_bytes()).expect("loads");
        s.compare.poll(s.doc.as_ref(), None);
        assert!(first.load(Ordering::Relaxed), "the old run is told to stop");
        let start = Instant::now();
        while s.compare.current(s.doc.as_ref()).is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "never finished");
            std::thread::sleep(Duration::from_millis(5));
            s.compare.poll(s.doc.as_ref(), None);
        }
        assert!(s.compare.busy().is_none());
        let r = s.compare.current(s.doc.as_ref()).expect("compared");
        assert_eq!(r.new_name, "again");
    }
}
