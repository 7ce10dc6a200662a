//! State of the Conntrack tab, apart from drawing: the loaded table and
//! counters, the filter and sort order, the rows shown, NAT links to the
//! loaded rules, and the background work (parsing, live polling, filtering
//! and sorting a million rows).
//!
//! Live readings (and recordings made with `iptviz conntrack --watch
//! --record`) build a history: fill, counter rates and the most pressed NAT
//! tuples over time, drawn as charts.
//!
//! Every method runs without a window. With `sync` set (tests) the work
//! runs on the calling thread; otherwise it runs on worker threads and
//! [`ConntrackState::poll`] picks up the results each frame.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use iptviz::conntrack::history::{self, Record, Recording, Tick};
use iptviz::conntrack::nat::{InsertRace, NatRules, insert_race};
use iptviz::conntrack::pressure::{Pressure, PressureOptions};
use iptviz::conntrack::{
    self, ConnTable, Entry, Fill, Filter, HealthItem, NatLink, Parsed, Stats, StatsFormat, Summary,
    filter,
};

use crate::state::Document;

/// Entries of each "top" chart.
pub const TOP: usize = 10;
/// Cached NAT links before the cache is emptied.
const LINK_CACHE: usize = 20_000;
/// Readings kept in the history (an hour at one a second).
pub const HISTORY: usize = 3600;

/// Column the rows are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Input order (line).
    #[default]
    Input,
    /// Protocol name.
    Proto,
    /// Protocol state.
    State,
    /// Original source address and port.
    Source,
    /// Original destination address and port.
    Destination,
    /// Where the reply comes from (the backend for DNAT).
    Reply,
    /// Seconds left.
    Timeout,
    /// Packets both ways.
    Packets,
    /// Bytes both ways.
    Bytes,
    /// Connection mark.
    Mark,
}

/// Sort column and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    /// Column.
    pub key: SortKey,
    /// Largest first.
    pub descending: bool,
}

/// The filter fields as the user typed them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterForm {
    /// Any address of either tuple, or a network.
    pub addr: String,
    /// Any port of either tuple.
    pub port: String,
    /// Protocol name or number.
    pub proto: String,
    /// State name.
    pub state: String,
    /// Only entries that show NAT.
    pub nat_only: bool,
    /// Only `[UNREPLIED]` entries.
    pub unreplied_only: bool,
}

impl FilterForm {
    /// The library filter, or what is wrong with a field.
    pub fn parse(&self) -> Result<Filter, String> {
        let opt = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        };
        let mut f = Filter {
            nat_only: self.nat_only,
            unreplied_only: self.unreplied_only,
            ..Default::default()
        };
        if let Some(a) = opt(&self.addr) {
            f.addr = Some(filter::parse_net(&a).map_err(|e| e.to_string())?);
        }
        if let Some(p) = opt(&self.port) {
            f.port = Some(
                p.parse::<u16>()
                    .map_err(|_| format!("port: `{p}` is not a number 0-65535"))?,
            );
        }
        if let Some(p) = opt(&self.proto) {
            f.proto = Some(filter::parse_proto(&p).map_err(|e| e.to_string())?);
        }
        if let Some(s) = opt(&self.state) {
            f.state = Some(filter::parse_state(&s).map_err(|e| e.to_string())?);
        }
        Ok(f)
    }
}

/// What a load produced.
pub enum Loaded {
    /// A file or paste with entries.
    Entries(ConnTable),
    /// A file or paste with per-CPU counters.
    Stats(Stats),
    /// One reading of this machine.
    Live(Box<LiveRead>),
    /// A recording of `iptviz conntrack --watch --record`.
    Recording(Recording),
}

/// One reading of this machine's table, counters and fill.
pub struct LiveRead {
    /// The entries, or the library's explanation of why they could not be read.
    pub table: Result<ConnTable, String>,
    /// The counters, when readable.
    pub stats: Result<Stats, String>,
    /// Count against the maximum.
    pub fill: Option<Fill>,
    /// When it was read.
    pub at: Instant,
    /// The rows, summary and pressure of the table, computed by the worker
    /// that read it, for the filter and sort of `generation`.
    pub view: Option<(u64, RowView)>,
}

/// Parses a file or paste: entries, counters or a recording, detected by
/// the library.
pub fn parse_input(name: &str, bytes: &[u8]) -> Result<Loaded, String> {
    if history::is_recording(bytes) {
        return Ok(Loaded::Recording(history::read_recording(bytes, name)));
    }
    match conntrack::parse_bytes(bytes, name).map_err(|e| e.to_string())? {
        Parsed::Entries(t) => Ok(Loaded::Entries(t)),
        Parsed::Stats(s) => Ok(Loaded::Stats(s)),
    }
}

/// A stand-in for the live table: the file is read again at every refresh
/// (benchmarks and demonstrations of a big live table without root).
pub fn read_live_file(path: &str) -> LiveRead {
    let table = std::fs::read(path)
        .map_err(|e| format!("{path}: {e}"))
        .and_then(|b| match parse_input(path, &b)? {
            Loaded::Entries(t) => Ok(t),
            _ => Err(format!("{path}: a table of entries was expected")),
        });
    let fill = table.as_ref().ok().map(|t| Fill {
        count: t.entries.len() as u64,
        max: 0,
        buckets: None,
    });
    LiveRead {
        table,
        stats: Err(format!("{path} has no counters")),
        fill,
        at: Instant::now(),
        view: None,
    }
}

/// Reads the live table, counters and fill (needs root and the module).
pub fn read_live() -> LiveRead {
    let table = conntrack::live::read_table()
        .map_err(|e| e.to_string())
        .and_then(|t| match conntrack::parse_bytes(&t.bytes, &t.name) {
            Ok(Parsed::Entries(t)) => Ok(t),
            Ok(Parsed::Stats(_)) => {
                Err(format!("{}: counters where entries were expected", t.name))
            }
            // An empty table is a table with no entries, not an error.
            Err(conntrack::ConntrackError::Empty { name }) => Ok(ConnTable {
                name,
                ..Default::default()
            }),
            Err(e) => Err(e.to_string()),
        });
    let stats = conntrack::live::read_stats()
        .map_err(|e| e.to_string())
        .map(|t| conntrack::parse_stats(&t.bytes, &t.name));
    LiveRead {
        table,
        stats,
        fill: conntrack::live::read_fill().ok(),
        at: Instant::now(),
        view: None,
    }
}

/// Lets go of a big value (a million-entry table, its rows) on another
/// thread: freeing hundreds of megabytes takes the UI thread a frame.
fn retire<T: Send + 'static>(old: T) {
    if std::thread::Builder::new()
        .name("iptviz-drop".into())
        .spawn(move || {
            background(PERIODIC);
            drop(old)
        })
        .is_err()
    {
        // No thread to be had: the value was dropped here instead.
    }
}

/// Nice level of work a person asked for and waits on (a load, a new
/// filter): below the UI thread, above the periodic work.
const ASKED: i32 = 5;

/// Nice level of work nobody waits on (the next live reading, freeing an
/// old table): it takes the cores only when the frames leave them. On two
/// cores a million-entry reading at level 5 still held one core for a
/// second of every two, and the software renderer's frames waited.
pub const PERIODIC: i32 = 19;

/// Runs the calling thread's work at nice level `nice` (lower priority
/// than the UI thread), so that parsing a big table every second does not
/// take the frames' time. A thread may lower its own priority without any
/// permission; it never raises it again.
pub fn background(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        if nice > now {
            // Best effort: on failure the work runs at the UI's level.
            let _ = rustix::process::setpriority_process(Some(tid), nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The filtered and sorted rows and their summary.
pub struct RowView {
    /// Entry indices, in display order.
    pub rows: Vec<u32>,
    /// Summary of those rows.
    pub summary: Summary,
    /// Entries showing NAT among them.
    pub nat_rows: Vec<u32>,
    /// NAT port pressure of the whole table, when asked for.
    pub pressure: Option<Pressure>,
}

/// NAT port pressure as the tab shows it.
pub fn compute_pressure(table: &ConnTable, rules: Option<&NatRules>) -> Pressure {
    conntrack::pressure(
        &table.entries,
        rules,
        PressureOptions {
            top: TOP,
            clients_per_tuple: 3,
            limit_per_dest: None,
        },
    )
}

/// Filters and sorts `table` (the expensive part, run off the UI thread);
/// with `rules` also the NAT port pressure (only when the table or the
/// rules changed: it does not depend on the filter).
pub fn compute_view(
    table: &ConnTable,
    filter: &Filter,
    sort: Sort,
    rules: Option<Option<&NatRules>>,
) -> RowView {
    let e = &table.entries;
    let mut rows: Vec<u32> = if filter.is_empty() {
        (0..e.len() as u32).collect()
    } else {
        (0..e.len() as u32)
            .filter(|&i| filter.matches(&e[i as usize]))
            .collect()
    };
    if sort.key != SortKey::Input {
        rows.sort_by(|&a, &b| {
            let (x, y) = (&e[a as usize], &e[b as usize]);
            let o = compare(x, y, sort.key).then(x.line.cmp(&y.line));
            if sort.descending { o.reverse() } else { o }
        });
    } else if sort.descending {
        rows.reverse();
    }
    let summary = conntrack::summarize(rows.iter().map(|&i| &e[i as usize]), TOP);
    let nat_rows = rows
        .iter()
        .copied()
        .filter(|&i| e[i as usize].nat().any())
        .collect();
    RowView {
        rows,
        summary,
        nat_rows,
        pressure: rules.map(|r| compute_pressure(table, r)),
    }
}

fn compare(x: &Entry, y: &Entry, key: SortKey) -> Ordering {
    let both = |e: &Entry| (e.orig_counters, e.reply_counters);
    match key {
        SortKey::Input => x.line.cmp(&y.line),
        SortKey::Proto => x.proto_name().cmp(y.proto_name()),
        SortKey::State => (x.proto, x.state.name()).cmp(&(y.proto, y.state.name())),
        SortKey::Source => (x.orig.src, x.orig.sport).cmp(&(y.orig.src, y.orig.sport)),
        SortKey::Destination => (x.orig.dst, x.orig.dport).cmp(&(y.orig.dst, y.orig.dport)),
        SortKey::Reply => (x.reply.src, x.reply.sport).cmp(&(y.reply.src, y.reply.sport)),
        SortKey::Timeout => x.timeout.cmp(&y.timeout),
        SortKey::Packets => {
            let p = |e: &Entry| both(e).0.packets + both(e).1.packets;
            p(x).cmp(&p(y))
        }
        SortKey::Bytes => {
            let b = |e: &Entry| both(e).0.bytes + both(e).1.bytes;
            b(x).cmp(&b(y))
        }
        SortKey::Mark => x.mark.cmp(&y.mark),
    }
}

/// Something the user asked of the Conntrack tab.
#[derive(Debug, Clone, PartialEq)]
pub enum CtAction {
    /// Read a conntrack file.
    OpenPath(String),
    /// Parse pasted or dropped text.
    LoadText {
        /// Name used in messages.
        name: String,
        /// The text.
        text: Vec<u8>,
    },
    /// Read this machine now and keep reading while auto-refresh is on.
    Live,
    /// Turn live auto-refresh on or off.
    AutoRefresh(bool),
    /// Apply the filter fields.
    Filter(FilterForm),
    /// Sort by a column (again: reverse).
    Sort(SortKey),
    /// Select an entry (index in the table).
    SelectEntry(u32),
    /// Show the counters and tuples of one reading of the history.
    ShowReading(usize),
    /// Forget everything loaded.
    Clear,
}

enum Msg {
    Loaded {
        label: String,
        out: Result<Loaded, String>,
        took: Duration,
    },
    View {
        generation: u64,
        view: Box<RowView>,
    },
}

/// Everything the Conntrack tab shows.
pub struct ConntrackState {
    /// The entries loaded (file, paste or the last live reading).
    pub table: Option<Arc<ConnTable>>,
    /// The per-CPU counters loaded.
    pub stats: Option<Arc<Stats>>,
    /// Counters with explanations (and rates when live).
    pub health: Vec<HealthItem>,
    /// Table fill (live only).
    pub fill: Option<Fill>,
    /// What the entries came from.
    pub source: String,
    /// Time the last load took (read and parse).
    pub took: Option<Duration>,
    /// Reading this machine.
    pub live: bool,
    /// Read again every [`ConntrackState::interval`] while live.
    pub auto_refresh: bool,
    /// Time between live readings.
    pub interval: Duration,
    /// Why the last load failed (for live: the library's plain explanation).
    pub error: Option<String>,
    /// Something worth knowing that is not an error (counters unreadable ...).
    pub notice: Option<String>,
    /// The filter applied.
    pub filter: Filter,
    /// The form the filter came from.
    pub filter_form: FilterForm,
    /// A filter field that does not parse.
    pub filter_error: Option<String>,
    /// Sort order.
    pub sort: Sort,
    /// Entry indices shown, in order.
    pub rows: Arc<Vec<u32>>,
    /// NAT entries among the rows, in the same order.
    pub nat_rows: Arc<Vec<u32>>,
    /// Summary of the rows shown.
    pub summary: Option<Summary>,
    /// Selected entry (index in the table).
    pub selected: Option<u32>,
    /// Work on the UI thread (tests).
    pub sync: bool,
    /// What a running load does, for the spinner.
    pub loading: Option<String>,
    /// Rows are being filtered or sorted.
    pub computing: bool,
    /// Scroll the table here this frame (benchmark script).
    pub scroll_offset: Option<f32>,
    /// NAT source-port pressure of the table.
    pub pressure: Option<Pressure>,
    /// Readings over time (live, or a recording), oldest first.
    pub history: Vec<Record>,
    /// What changed at each reading after the first (`ticks[i]` ends at
    /// `history[i + 1]`).
    pub ticks: Vec<Tick>,
    /// Where the history came from (live, or the recording's name).
    pub history_source: String,
    /// A climbing `insert_failed` tied to the UDP-translating rules.
    pub race: Option<InsertRace>,
    /// Read this file instead of the kernel at each live refresh.
    pub live_file: Option<String>,
    /// Live readings taken so far (benchmarks tell refresh frames apart).
    pub readings: u64,
    /// The reading of a recording whose counters and tuples are shown.
    pub cursor: Option<usize>,
    pressure_stale: bool,
    pressure_pending: bool,
    rules: Option<(usize, Arc<NatRules>)>,
    links: RefCell<HashMap<u32, Option<NatLink>>>,
    prev_stats: Option<(Arc<Stats>, Instant)>,
    stats_at: Option<Instant>,
    last_live: Option<Instant>,
    load_rx: Option<Receiver<Msg>>,
    view_rx: Option<Receiver<Msg>>,
    generation: u64,
}

impl Default for ConntrackState {
    fn default() -> Self {
        ConntrackState {
            table: None,
            stats: None,
            health: Vec::new(),
            fill: None,
            source: String::new(),
            took: None,
            live: false,
            auto_refresh: true,
            interval: Duration::from_secs(2),
            error: None,
            notice: None,
            filter: Filter::default(),
            filter_form: FilterForm::default(),
            filter_error: None,
            sort: Sort::default(),
            rows: Arc::default(),
            nat_rows: Arc::default(),
            summary: None,
            selected: None,
            sync: false,
            loading: None,
            computing: false,
            scroll_offset: None,
            pressure: None,
            history: Vec::new(),
            ticks: Vec::new(),
            history_source: String::new(),
            race: None,
            live_file: None,
            readings: 0,
            cursor: None,
            pressure_stale: true,
            pressure_pending: false,
            rules: None,
            links: RefCell::default(),
            prev_stats: None,
            stats_at: None,
            last_live: None,
            load_rx: None,
            view_rx: None,
            generation: 0,
        }
    }
}

impl ConntrackState {
    /// Whether anything is loaded.
    /// True while the next live reading of a table already on screen is
    /// being taken: the tab says so in still text. An animation would
    /// repaint the whole window for the length of the reading (seconds for
    /// a million entries) and take the cores that the reading needs.
    pub fn refreshing_quietly(&self) -> bool {
        self.live && self.loading.is_some() && self.table.is_some()
    }

    pub fn is_loaded(&self) -> bool {
        self.table.is_some() || self.stats.is_some() || !self.history.is_empty()
    }

    /// Parses text on this thread and shows it (tests, small pastes).
    pub fn load_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let start = Instant::now();
        let out = parse_input(name, bytes);
        let failed = out.as_ref().err().cloned();
        self.finish_load(name.to_string(), out, start.elapsed());
        failed.map_or(Ok(()), Err)
    }

    /// Reads and shows a file on this thread (benchmarks load before the
    /// first frame); failures end up in `error`.
    pub fn load_path_now(&mut self, path: &str) {
        let sync = std::mem::replace(&mut self.sync, true);
        let out = std::fs::read(path)
            .map_err(|e| format!("{path}: {e}"))
            .and_then(|b| self.load_bytes(path, &b));
        if let Err(e) = out {
            self.error = Some(e);
        }
        self.sync = sync;
    }

    /// Applies one request; `ctx` wakes the UI when background work ends.
    pub fn apply(&mut self, ctx: &egui::Context, a: CtAction) {
        match a {
            CtAction::OpenPath(p) => {
                self.live = false;
                let path = p.clone();
                self.spawn_load(ctx, format!("reading {p}"), move || {
                    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
                    parse_input(&path, &bytes)
                });
            }
            CtAction::LoadText { name, text } => {
                self.live = false;
                let label = name.clone();
                self.spawn_load(ctx, label, move || parse_input(&name, &text));
            }
            CtAction::Live => {
                self.live = true;
                self.read_live_now(ctx);
            }
            CtAction::AutoRefresh(on) => self.auto_refresh = on,
            CtAction::Filter(form) => self.set_filter(ctx, form),
            CtAction::Sort(key) => self.sort_by(ctx, key),
            CtAction::SelectEntry(i) => self.selected = Some(i),
            CtAction::ShowReading(i) => self.show_reading(i),
            CtAction::Clear => {
                *self = ConntrackState {
                    sync: self.sync,
                    ..Default::default()
                }
            }
        }
    }

    /// Sets the filter from the form; a bad field keeps the old filter.
    pub fn set_filter(&mut self, ctx: &egui::Context, form: FilterForm) {
        match form.parse() {
            Ok(f) => {
                self.filter_error = None;
                self.filter_form = form;
                if f != self.filter {
                    self.filter = f;
                    self.refresh_view(ctx);
                }
            }
            Err(e) => {
                self.filter_form = form;
                self.filter_error = Some(e);
            }
        }
    }

    /// Sorts by `key`; the same key again reverses the order.
    pub fn sort_by(&mut self, ctx: &egui::Context, key: SortKey) {
        if self.sort.key == key {
            self.sort.descending = !self.sort.descending;
        } else {
            // Numbers are most interesting largest first.
            let descending = matches!(key, SortKey::Packets | SortKey::Bytes | SortKey::Timeout);
            self.sort = Sort { key, descending };
        }
        self.refresh_view(ctx);
    }

    /// The entry at index `i` of the table.
    pub fn entry(&self, i: u32) -> Option<&Entry> {
        self.table.as_ref()?.entries.get(i as usize)
    }

    /// Whether NAT links can name rules (a ruleset is loaded).
    pub fn has_rules(&self) -> bool {
        self.rules.as_ref().is_some_and(|r| !r.1.rules.is_empty())
    }

    /// The NAT view of entry `i` with the rule that made it, if it shows
    /// NAT. Computed when first asked (only visible rows are), then cached.
    pub fn link(&self, i: u32) -> Option<NatLink> {
        if let Some(l) = self.links.borrow().get(&i) {
            return l.clone();
        }
        let e = self.entry(i)?;
        let rules = self.rules.as_ref().map(|r| r.1.as_ref());
        let l = conntrack::link_nat(std::iter::once((i as usize, e)), rules).pop();
        let mut cache = self.links.borrow_mut();
        if cache.len() > LINK_CACHE {
            cache.clear();
        }
        cache.insert(i, l.clone());
        l
    }

    /// Takes the nat rules of the loaded document, when it changed.
    pub fn sync_rules(&mut self, ctx: &egui::Context, doc: Option<&Arc<Document>>) {
        let key = doc.map_or(0, |d| Arc::as_ptr(d) as usize);
        if self.rules.as_ref().map_or(0, |r| r.0) == key {
            return;
        }
        self.rules = doc.map(|d| (key, Arc::new(NatRules::from_ruleset(&d.parsed.ruleset))));
        self.links.borrow_mut().clear();
        // Ranges and rule names of the NAT tuples come from the rules.
        self.pressure_stale = true;
        self.update_race();
        if self.table.is_some() {
            if self.sync {
                self.refresh_view_now();
            } else {
                self.refresh_view(ctx);
            }
        }
    }

    /// Called every frame: takes finished work, starts the next live reading.
    pub fn poll(&mut self, ctx: &egui::Context, doc: Option<&Arc<Document>>) {
        self.sync_rules(ctx, doc);
        for slot in [0, 1] {
            let rx = if slot == 0 {
                &mut self.load_rx
            } else {
                &mut self.view_rx
            };
            let got = match rx.as_ref().map(Receiver::try_recv) {
                None | Some(Err(TryRecvError::Empty)) => continue,
                Some(r) => r,
            };
            *rx = None;
            match got {
                Ok(Msg::Loaded { label, out, took }) => {
                    let viewed = self.finish_load(label, out, took);
                    if self.table.is_some() && !viewed {
                        self.refresh_view(ctx);
                    }
                }
                Ok(Msg::View { generation, view }) => {
                    if generation == self.generation {
                        self.set_view(*view);
                    }
                }
                Err(_) => {
                    self.loading = None;
                    self.computing = false;
                    self.error = Some("the background worker stopped".into());
                }
            }
        }
        if self.live && self.auto_refresh && self.loading.is_none() {
            let due = self.last_live.is_none_or(|t| t.elapsed() >= self.interval);
            if due {
                self.read_live_now(ctx);
            } else if let Some(t) = self.last_live {
                ctx.request_repaint_after(self.interval.saturating_sub(t.elapsed()));
            }
        }
    }

    fn read_live_now(&mut self, ctx: &egui::Context) {
        self.last_live = Some(Instant::now());
        // The worker that reads the table also filters, sorts, summarises
        // and computes the pressure: the frame only takes the results.
        let generation = self.generation;
        let (filter, sort) = (self.filter.clone(), self.sort);
        let rules = self.rules.as_ref().map(|r| r.1.clone());
        let compute = !self.sync;
        let with_view = move |mut r: LiveRead| {
            if let Ok(t) = &r.table
                && compute
            {
                let view = compute_view(t, &filter, sort, Some(rules.as_deref()));
                r.view = Some((generation, view));
            }
            Ok(Loaded::Live(Box::new(r)))
        };
        if let Some(path) = self.live_file.clone() {
            self.spawn_load(ctx, format!("reading {path} again"), move || {
                background(PERIODIC);
                with_view(read_live_file(&path))
            });
            return;
        }
        self.spawn_load(
            ctx,
            "reading this machine's conntrack table".into(),
            move || {
                background(PERIODIC);
                with_view(read_live())
            },
        );
    }

    fn spawn_load(
        &mut self,
        ctx: &egui::Context,
        label: String,
        work: impl FnOnce() -> Result<Loaded, String> + Send + 'static,
    ) {
        if self.sync {
            let start = Instant::now();
            let out = work();
            self.finish_load(label, out, start.elapsed());
            return;
        }
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        self.loading = Some(label.clone());
        std::thread::spawn(move || {
            background(ASKED);
            let start = Instant::now();
            let out = work();
            // The receiver is gone only when the app moved on; nothing to do.
            let _ = tx.send(Msg::Loaded {
                label,
                out,
                took: start.elapsed(),
            });
            ctx.request_repaint();
        });
        self.load_rx = Some(rx);
    }

    /// Shows what a load produced; true when it came with its rows (a live
    /// reading for the current filter and sort).
    fn finish_load(&mut self, label: String, out: Result<Loaded, String>, took: Duration) -> bool {
        self.loading = None;
        let mut viewed = false;
        match out {
            Err(e) => self.error = Some(e),
            Ok(Loaded::Entries(t)) => {
                self.error = None;
                self.notice = None;
                self.source = t.name.clone();
                self.fill = None;
                self.took = Some(took);
                self.set_table(t);
            }
            Ok(Loaded::Stats(s)) => {
                self.error = None;
                self.prev_stats = None;
                self.set_stats(s, None);
                if self.table.is_none() {
                    self.source = label;
                }
            }
            Ok(Loaded::Recording(r)) => self.set_recording(r),
            Ok(Loaded::Live(r)) => {
                // The interval counts from the end of a reading, so a slow
                // read of a huge table does not keep a core busy.
                self.last_live = Some(Instant::now());
                self.readings += 1;
                self.took = Some(took);
                self.fill = r.fill;
                match r.table {
                    Ok(t) => {
                        self.error = None;
                        self.source = format!("live: {}", t.name);
                        self.set_table(t);
                        if let Some((generation, view)) = r.view
                            && generation == self.generation
                            && !self.sync
                        {
                            self.pressure_stale = false;
                            self.set_view(view);
                            viewed = true;
                        }
                    }
                    Err(e) => {
                        // Nothing can be read: stop polling, say why.
                        self.error = Some(e);
                        self.live = false;
                    }
                }
                match r.stats {
                    Ok(s) => {
                        self.notice = None;
                        self.set_stats(s, Some(r.at));
                    }
                    Err(e) => self.notice = Some(format!("counters: {e}")),
                }
                if self.live {
                    self.push_reading();
                }
            }
        }
        viewed
    }

    /// Shows a recording: its readings become the history.
    pub fn set_recording(&mut self, r: Recording) {
        self.live = false;
        self.error = r.problem.as_ref().map(|p| p.render(&r.name));
        if r.records.is_empty() && self.error.is_none() {
            self.error = Some(format!("{}: no readings in this recording", r.name));
        }
        self.ticks = history::ticks(&r.records);
        self.history = r.records;
        self.history_source = format!("recording {}", r.name);
        if self.table.is_none() && self.stats.is_none() {
            self.source = r.name;
        }
        self.cursor = None;
        if !self.history.is_empty() {
            self.show_reading(self.history.len() - 1);
        }
    }

    /// Shows reading `i` of a recording: its per-CPU counters with rates
    /// since the reading before, its fill and its NAT tuples.
    pub fn show_reading(&mut self, i: usize) {
        if self.live || self.history.is_empty() {
            return;
        }
        let i = i.min(self.history.len() - 1);
        self.cursor = Some(i);
        let rec = &self.history[i];
        let name = format!("{} reading {}", self.history_source, i + 1);
        let stats = rec.stats(&name);
        let before = i
            .checked_sub(1)
            .map(|j| &self.history[j])
            .filter(|p| rec.time > p.time)
            .map(|p| (p.stats(&name), rec.time - p.time));
        self.health = conntrack::health(&stats, before.as_ref().map(|(p, secs)| (p, *secs)));
        self.fill = rec.fill;
        self.stats = Some(Arc::new(stats));
        self.prev_stats = None;
        self.stats_at = None;
        self.update_race();
    }

    /// The reading of the history whose tuples are shown: the cursor's in
    /// a recording, else the last.
    pub fn shown_reading(&self) -> Option<&Record> {
        match self.cursor {
            Some(i) if !self.live => self.history.get(i),
            _ => self.history.last(),
        }
    }

    /// Appends the current live reading to the history.
    fn push_reading(&mut self) {
        if !self.history_source.starts_with("live") {
            self.history.clear();
            self.ticks.clear();
            self.history_source = "live".into();
        }
        let empty = Stats {
            name: String::new(),
            format: StatsFormat::ConntrackS,
            fields: Vec::new(),
            cpus: Vec::new(),
            problems: Vec::new(),
        };
        let stats = self.stats.as_deref().unwrap_or(&empty);
        // The tuples are filled in when the pressure of this table is
        // computed (off the UI thread).
        let current = (!self.pressure_pending)
            .then_some(self.pressure.as_ref())
            .flatten();
        let mut rec = Record::new(history::now(), stats, self.fill, current);
        if let Some(last) = self.history.last()
            && rec.time < last.time
        {
            rec.time = last.time;
        }
        self.history.push(rec);
        if let Some(t) = history::tick(&self.history, self.history.len() - 1) {
            self.ticks.push(t);
        }
        if self.history.len() > HISTORY {
            self.history.remove(0);
            if !self.ticks.is_empty() {
                self.ticks.remove(0);
            }
        }
    }

    /// Ties `insert_failed` to the loaded rules (when counters say it rose).
    fn update_race(&mut self) {
        let item = self.health.iter().find(|h| h.counter == "insert_failed");
        let flows = match &self.pressure {
            Some(p) => p
                .tuples
                .iter()
                .filter(|t| t.proto == "udp")
                .map(|t| format!("{} ({} ports)", t.label(), t.ports))
                .collect(),
            // A recording keeps the tuples of each reading.
            None => self
                .shown_reading()
                .map(|r| {
                    r.top
                        .iter()
                        .filter(|t| t.tuple.starts_with("udp "))
                        .map(|t| format!("{} ({} ports)", t.tuple, t.ports))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let rules = self.rules.as_ref().map(|r| r.1.as_ref());
        self.race = item.and_then(|h| insert_race(Some(h.total), h.per_second, rules, flows));
    }

    fn set_table(&mut self, t: ConnTable) {
        if let Some(old) = self.table.replace(Arc::new(t)) {
            retire(old);
        }
        self.links.borrow_mut().clear();
        self.pressure_stale = true;
        self.pressure_pending = true;
        if self.sync {
            self.refresh_view_now();
        }
    }

    fn set_stats(&mut self, s: Stats, at: Option<Instant>) {
        let s = Arc::new(s);
        // Live readings keep the previous one, for rates.
        let prev = match (at, self.stats.take(), self.stats_at) {
            (Some(_), Some(old), Some(old_at)) => Some((old, old_at)),
            _ => None,
        };
        if prev.is_some() {
            self.prev_stats = prev;
        }
        self.health = match (&self.prev_stats, at) {
            (Some((p, p_at)), Some(now)) => {
                let secs = now.duration_since(*p_at).as_secs_f64();
                conntrack::health(&s, Some((p, secs)))
            }
            _ => conntrack::health(&s, None),
        };
        self.stats = Some(s);
        self.stats_at = at;
        self.update_race();
    }

    /// Recomputes the rows for the current filter and sort (on a worker
    /// unless `sync`).
    pub fn refresh_view(&mut self, ctx: &egui::Context) {
        if self.sync {
            self.refresh_view_now();
            return;
        }
        let Some(table) = self.table.clone() else {
            return;
        };
        self.generation += 1;
        let generation = self.generation;
        let (filter, sort) = (self.filter.clone(), self.sort);
        let rules = self
            .pressure_stale
            .then(|| self.rules.as_ref().map(|r| r.1.clone()));
        self.pressure_stale = false;
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        self.computing = true;
        std::thread::spawn(move || {
            background(ASKED);
            let r = rules.as_ref().map(|r| r.as_deref());
            let view = compute_view(&table, &filter, sort, r);
            let _ = tx.send(Msg::View {
                generation,
                view: Box::new(view),
            });
            ctx.request_repaint();
        });
        self.view_rx = Some(rx);
    }

    /// Recomputes the rows on this thread.
    pub fn refresh_view_now(&mut self) {
        if let Some(t) = self.table.clone() {
            self.generation += 1;
            let rules = self.rules.as_ref().map(|r| r.1.clone());
            let r = self.pressure_stale.then_some(rules.as_deref());
            self.pressure_stale = false;
            let v = compute_view(&t, &self.filter, self.sort, r);
            self.set_view(v);
        }
    }

    fn set_view(&mut self, v: RowView) {
        self.computing = false;
        retire(std::mem::replace(&mut self.rows, Arc::new(v.rows)));
        retire(std::mem::replace(&mut self.nat_rows, Arc::new(v.nat_rows)));
        let mut summary = v.summary;
        summary.fill = self.fill;
        self.summary = Some(summary);
        if let Some(p) = v.pressure {
            self.pressure_pending = false;
            if self.live
                && let Some(last) = self.history.last_mut()
                && last.top.is_empty()
            {
                last.top = history::samples(&p);
                if let Some(t) = self.ticks.last_mut() {
                    t.top = last.top.clone();
                }
            }
            self.pressure = Some(p);
            self.update_race();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ipv4     2 tcp      6 431999 ESTABLISHED src=192.168.1.20 dst=10.96.0.10 sport=40000 dport=443 packets=5 bytes=500 src=10.244.1.5 dst=192.168.1.20 sport=8443 dport=40000 packets=4 bytes=4000 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 20 src=192.168.1.21 dst=1.1.1.1 sport=5353 dport=53 packets=1 bytes=60 [UNREPLIED] src=1.1.1.1 dst=192.168.1.21 sport=53 dport=5353 packets=0 bytes=0 mark=0 zone=0 use=2
ipv4     2 tcp      6 100 TIME_WAIT src=192.168.1.22 dst=192.168.1.1 sport=50000 dport=22 packets=50 bytes=9000 src=192.168.1.1 dst=192.168.1.22 sport=22 dport=50000 packets=40 bytes=8000 [ASSURED] mark=0 zone=0 use=2
this line is broken
";

    fn loaded() -> ConntrackState {
        let mut s = ConntrackState {
            sync: true,
            ..Default::default()
        };
        s.load_bytes("sample", SAMPLE.as_bytes()).expect("parses");
        s
    }

    /// The nice level of the calling thread, from procfs (field 19).
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs");
        let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
        after_name
            .split(' ')
            .nth(16)
            .expect("nice field")
            .parse()
            .expect("number")
    }

    #[test]
    fn live_readings_run_below_the_frames_and_asked_work() {
        if !std::path::Path::new("/proc/thread-self/stat").exists() {
            eprintln!("skipped: no /proc/thread-self/stat to read a thread's nice level");
            return;
        }
        let ui_level = own_nice();
        let (asked, periodic, after) = std::thread::spawn(|| {
            background(ASKED);
            let asked = own_nice();
            background(PERIODIC);
            let periodic = own_nice();
            // Asked work in a thread already lowered does not raise it.
            background(ASKED);
            (asked, periodic, own_nice())
        })
        .join()
        .expect("thread");
        assert_eq!(asked, ASKED.max(ui_level));
        assert_eq!(periodic, PERIODIC);
        assert_eq!(after, PERIODIC);
        assert_eq!(own_nice(), ui_level, "only the worker thread is lowered");
    }

    #[test]
    fn a_live_reading_of_a_table_on_screen_does_not_animate() {
        let mut s = loaded();
        s.live = true;
        assert!(!s.refreshing_quietly(), "nothing is being read");
        s.loading = Some("reading again".into());
        assert!(s.refreshing_quietly());
        s.table = None;
        assert!(
            !s.refreshing_quietly(),
            "the first reading shows its spinner: the tab is empty until it ends"
        );
    }

    #[test]
    fn load_keeps_good_lines_and_counts_problems() {
        let s = loaded();
        let t = s.table.as_ref().expect("table");
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.problems.len(), 1);
        assert_eq!(t.problems[0].line, 4);
        assert_eq!(s.rows.as_slice(), &[0, 1, 2]);
        assert_eq!(s.nat_rows.as_slice(), &[0]);
        let sum = s.summary.as_ref().expect("summary");
        assert_eq!((sum.total, sum.unreplied, sum.nat), (3, 1, 1));
    }

    #[test]
    fn filter_and_sort() {
        let ctx = egui::Context::default();
        let mut s = loaded();
        s.set_filter(
            &ctx,
            FilterForm {
                proto: "tcp".into(),
                ..Default::default()
            },
        );
        assert_eq!(s.rows.as_slice(), &[0, 2]);
        assert_eq!(s.summary.as_ref().map(|x| x.total), Some(2));
        s.sort_by(&ctx, SortKey::Packets);
        assert_eq!(s.rows.as_slice(), &[2, 0], "most packets first");
        s.sort_by(&ctx, SortKey::Packets);
        assert_eq!(s.rows.as_slice(), &[0, 2]);
        s.set_filter(
            &ctx,
            FilterForm {
                port: "99999".into(),
                ..Default::default()
            },
        );
        assert!(
            s.filter_error
                .as_deref()
                .is_some_and(|e| e.contains("99999"))
        );
        assert_eq!(s.rows.len(), 2, "a bad field keeps the previous filter");
        s.set_filter(
            &ctx,
            FilterForm {
                addr: "192.168.1.0/24".into(),
                unreplied_only: true,
                ..Default::default()
            },
        );
        assert_eq!(s.rows.as_slice(), &[1]);
    }

    #[test]
    fn nat_links_name_the_rule_when_rules_are_loaded() {
        let mut s = loaded();
        let l = s.link(0).expect("entry 0 shows DNAT");
        assert_eq!(
            l.arrow(),
            "tcp 192.168.1.20:40000 -> 10.96.0.10:443 => 10.244.1.5:8443"
        );
        assert!(l.dnat_rule.is_none());
        assert!(s.link(1).is_none());
        let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                     -A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.244.1.5:8443\nCOMMIT\n";
        let doc = Arc::new(Document::from_bytes("rules", rules.as_bytes()).expect("rules"));
        s.sync_rules(&egui::Context::default(), Some(&doc));
        assert!(s.has_rules());
        let r = s.link(0).and_then(|l| l.dnat_rule).expect("linked rule");
        assert_eq!((r.chain.as_str(), r.index), ("PREROUTING", 1));
    }

    #[test]
    fn stats_give_health_with_explanations() {
        let mut s = ConntrackState {
            sync: true,
            ..Default::default()
        };
        s.load_bytes("stats", b"cpu=0 found=1 invalid=3 insert_failed=2 drop=0\n")
            .expect("stats");
        assert!(s.table.is_none());
        let first = &s.health[0];
        assert_eq!(first.counter, "insert_failed");
        assert!(first.explanation.contains("race"));
    }

    #[test]
    fn garbage_says_what_was_expected() {
        let mut s = ConntrackState {
            sync: true,
            ..Default::default()
        };
        let e = s.load_bytes("junk", b"hello world\n").expect_err("refused");
        assert!(e.contains("not conntrack text"), "{e}");
        assert!(s.error.is_some());
    }
}
