//! A packet capture replayed through the loaded rules, as `iptviz trace
//! RULES --pcap CAPTURE` does it: read on a worker thread (streamed, so a
//! large capture costs time, not memory), with progress and a way to stop;
//! then the summary (per verdict, per deciding rule, the flows dropped
//! most) and the counters the traffic would have produced, which the graph
//! shows as edge widths.

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use iptviz::model::{Family, Ruleset};
use iptviz::trace::pcap::CaptureReader;
use iptviz::trace::{Batch, BatchSummary, Decider, DroppedFlow, TraceOptions, Tracer};

use crate::state::{AppState, ChainRef, Document};

pub use iptviz::trace::pcap::is_capture;

/// Packet errors kept to show (the count covers all of them).
const MAX_ERRORS: usize = 50;

/// Whether the file at `path` is a capture (false when it cannot be read:
/// the rules loader then says why).
pub fn is_capture_file(path: &str) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| is_capture(&head))
}

/// A finished replay.
pub struct CaptureReport {
    doc: Weak<Document>,
    /// The capture's name.
    pub name: String,
    /// The summary, as the command line prints it.
    pub summary: BatchSummary,
    /// The rules with the counters this traffic would have produced.
    pub counted: Arc<Ruleset>,
    /// Packets that could not be read (first [`MAX_ERRORS`]).
    pub errors: Vec<String>,
    /// How many could not be read.
    pub error_count: u64,
    /// Packets of the other address family, not traced.
    pub other_family: u64,
    /// Packets skipped on purpose: not IP, later fragments.
    pub skipped: (u64, u64),
    /// The replay was stopped before the end of the capture.
    pub stopped: bool,
    /// Time it took.
    pub took: Duration,
}

impl CaptureReport {
    /// The report, if it was made for `doc`.
    pub fn for_doc(&self, doc: Option<&Arc<Document>>) -> bool {
        doc.is_some_and(|d| std::ptr::eq(Arc::as_ptr(d), self.doc.as_ptr()))
    }

    /// The summary's first line.
    pub fn headline(&self) -> String {
        let s = &self.summary;
        format!(
            "{}: {} packets in {} flows ({} replies recognised){}",
            self.name,
            s.packets,
            s.flows,
            s.replies,
            if self.stopped {
                "; stopped before the end"
            } else {
                ""
            }
        )
    }
}

/// Replays the capture read from `src` through `doc`'s rules, counting
/// packets into `progress` and stopping when `cancel` is set.
pub fn replay(
    doc: &Arc<Document>,
    name: &str,
    src: impl Read,
    opts: TraceOptions,
    progress: &AtomicU64,
    cancel: &AtomicBool,
) -> Result<CaptureReport, String> {
    let start = Instant::now();
    let rs = &doc.parsed.ruleset;
    let mut cap = CaptureReader::new(BufReader::with_capacity(1 << 16, src))
        .map_err(|e| format!("{name}: {e}"))?;
    let tracer = Tracer::new(rs);
    let mut batch = Batch::new(&tracer, opts);
    let v6 = rs.family == Family::Ipv6;
    let mut errors = Vec::new();
    let mut error_count = 0u64;
    let mut other_family = 0u64;
    let mut stopped = false;
    while let Some(item) = cap.next() {
        progress.store(cap.packets_read(), Ordering::Relaxed);
        if cancel.load(Ordering::Relaxed) {
            stopped = true;
            break;
        }
        match item {
            Ok(obs) => {
                if obs.packet.src.is_ipv6() != v6 {
                    other_family += 1;
                    continue;
                }
                batch.push(obs);
            }
            Err(e) => {
                error_count += 1;
                batch.unreadable();
                if errors.len() < MAX_ERRORS {
                    errors.push(e.to_string());
                }
            }
        }
    }
    let summary = batch.report(rs);
    Ok(CaptureReport {
        doc: Arc::downgrade(doc),
        name: name.to_string(),
        summary,
        counted: Arc::new(batch.counted(rs)),
        errors,
        error_count,
        other_family,
        skipped: (cap.skipped.not_ip, cap.skipped.fragments),
        stopped,
        took: start.elapsed(),
    })
}

/// A replay running on a worker thread.
pub struct CaptureJob {
    /// The capture's name.
    pub name: String,
    /// Packets read so far.
    pub progress: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    started: Instant,
    rx: Receiver<Result<CaptureReport, String>>,
}

impl CaptureJob {
    /// Time since it started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for CaptureJob {
    fn drop(&mut self) {
        // A replay nobody waits for any more stops at its next packet.
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Where the capture comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureSource {
    /// A file, read as it is replayed.
    Path(String),
    /// Bytes already read (a dropped file without a path).
    Bytes(String, Vec<u8>),
}

impl CaptureSource {
    fn name(&self) -> &str {
        match self {
            CaptureSource::Path(p) => p,
            CaptureSource::Bytes(n, _) => n,
        }
    }
}

/// The capture panel's state.
#[derive(Default)]
pub struct CaptureState {
    /// The replay running, if any.
    pub job: Option<CaptureJob>,
    /// The last replay.
    pub report: Option<CaptureReport>,
    /// Why the last capture could not be replayed.
    pub error: Option<String>,
    /// Show the capture's counters on the graph.
    pub heat: bool,
    /// The panel is shown.
    pub open: bool,
}

impl CaptureState {
    /// The report of the loaded rules, if there is one.
    pub fn current(&self, doc: Option<&Arc<Document>>) -> Option<&CaptureReport> {
        self.report.as_ref().filter(|r| r.for_doc(doc))
    }
}

/// What the capture panel asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureAction {
    /// Replay a capture through the loaded rules.
    Open(CaptureSource),
    /// Stop the replay running.
    Stop,
    /// Show the capture's counters on the graph, or the rules' own.
    Heat(bool),
    /// Select the chain of a deciding rule (index in the report's list).
    SelectDecider(usize),
    /// Trace the first packet of one of the flows dropped most.
    TraceFlow(usize),
    /// Close the panel and forget the capture.
    Close,
}

/// Applies a capture request; `form` is the trace panel's form (its local
/// addresses and direction also steer the replay: one it cannot read is
/// reported; a flow to trace fills it).
pub fn apply(state: &mut AppState, form: &mut crate::trace_state::TraceForm, a: CaptureAction) {
    match a {
        CaptureAction::Open(src) => {
            let Some(doc) = state.doc.clone() else {
                state.capture.error = Some("load rules first, then the capture".into());
                state.capture.open = true;
                return;
            };
            state.capture.open = true;
            // The trace form's local addresses and direction steer the
            // replay as they steer a trace.
            let opts = match form.options() {
                Ok(o) => o,
                Err(e) => {
                    state.capture.error = Some(format!("trace form: {e}"));
                    return;
                }
            };
            state.capture.error = None;
            let name = src.name().to_string();
            let progress = Arc::new(AtomicU64::new(0));
            let cancel = Arc::new(AtomicBool::new(false));
            let run = {
                let (progress, cancel, doc) = (progress.clone(), cancel.clone(), doc.clone());
                move || -> Result<CaptureReport, String> {
                    match src {
                        CaptureSource::Path(p) => {
                            let f = std::fs::File::open(&p).map_err(|e| format!("{p}: {e}"))?;
                            replay(&doc, &p, f, opts, &progress, &cancel)
                        }
                        CaptureSource::Bytes(n, b) => {
                            replay(&doc, &n, &b[..], opts, &progress, &cancel)
                        }
                    }
                }
            };
            if state.sync {
                finished(state, run());
                return;
            }
            let (tx, rx) = channel();
            let waker = state.waker.clone();
            std::thread::spawn(move || {
                let _ = tx.send(run());
                if let Some(ctx) = waker {
                    ctx.request_repaint();
                }
            });
            state.capture.job = Some(CaptureJob {
                name,
                progress,
                cancel,
                started: Instant::now(),
                rx,
            });
        }
        CaptureAction::Stop => {
            if let Some(j) = &state.capture.job {
                j.cancel.store(true, Ordering::Relaxed);
            }
        }
        CaptureAction::Heat(on) => {
            state.capture.heat = on;
            refresh_heat(state);
        }
        CaptureAction::SelectDecider(i) => {
            let decider = state
                .capture
                .current(state.doc.as_ref())
                .and_then(|r| r.summary.deciders.get(i))
                .map(|d| d.decider);
            if let Some(Decider::Rule(table, chain, _)) = decider {
                let at = ChainRef { table, chain };
                state.view = crate::state::View::Graph;
                state.select(at);
            }
        }
        CaptureAction::TraceFlow(i) => {
            let flow: Option<DroppedFlow> = state
                .capture
                .current(state.doc.as_ref())
                .and_then(|r| r.summary.top_dropped.get(i))
                .cloned();
            if let Some(f) = flow {
                form.proto = f.proto.clone();
                form.src = f.src.to_string();
                form.dst = f.dst.to_string();
                form.sport = f.sport.to_string();
                form.dport = f.dport.to_string();
                form.state = "NEW".into();
                state.trace.open = true;
                state.view = crate::state::View::Graph;
                crate::trace_state::apply(
                    state,
                    crate::trace_state::TraceAction::Run(Box::new(form.clone())),
                );
            }
        }
        CaptureAction::Close => {
            state.capture = CaptureState::default();
            state.set_heat(None);
        }
    }
}

fn finished(state: &mut AppState, out: Result<CaptureReport, String>) {
    match out {
        Ok(r) => {
            state.capture.report = Some(r);
            state.capture.error = None;
            state.capture.heat = true;
        }
        Err(e) => state.capture.error = Some(e),
    }
    refresh_heat(state);
}

/// Puts the capture's counters on the graph when heat is on and the
/// capture was replayed through the loaded rules; the rules' own otherwise.
fn refresh_heat(state: &mut AppState) {
    let heat = if state.capture.heat {
        state
            .capture
            .current(state.doc.as_ref())
            .map(|r| r.counted.clone())
    } else {
        None
    };
    state.set_heat(heat);
}

/// Takes a finished replay; true when one arrived.
pub fn poll(state: &mut AppState) -> bool {
    let Some(job) = &state.capture.job else {
        return false;
    };
    let out = match job.rx.try_recv() {
        Ok(out) => out,
        Err(TryRecvError::Empty) => return false,
        Err(TryRecvError::Disconnected) => Err("the capture worker stopped".into()),
    };
    state.capture.job = None;
    finished(state, out);
    true
}
