//! Work that runs off the UI thread: reading and parsing input, live
//! reading, the view and layout of the canvas, tracing a packet. The UI polls the job each
//! frame and shows a spinner meanwhile.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use crate::scene::{Scene, SceneRequest};
use crate::state::Document;
use crate::trace_state::{TraceForm, TraceResult};

/// What a finished job gives back.
pub type Outcome = Result<Arc<Document>, String>;

/// A running background job.
pub struct Job {
    /// What is being done, shown next to the spinner.
    pub label: String,
    /// Where the input came from, to remember in recent files.
    pub path: Option<String>,
    started: Instant,
    rx: Receiver<Outcome>,
}

impl Job {
    /// Runs `work` on a new thread and wakes the UI when done.
    pub fn spawn(
        ctx: &egui::Context,
        label: String,
        path: Option<String>,
        work: impl FnOnce() -> Result<Document, String> + Send + 'static,
    ) -> Job {
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let out = work().map(Arc::new);
            // The receiver is gone only when the app closed; nothing to do.
            let _ = tx.send(out);
            ctx.request_repaint();
        });
        Job {
            label,
            path,
            started: Instant::now(),
            rx,
        }
    }

    /// The result, once there is one.
    pub fn poll(&self) -> Option<Outcome> {
        match self.rx.try_recv() {
            Ok(out) => Some(out),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err(format!("{}: the worker stopped", self.label)))
            }
        }
    }

    /// Blocks until the job ends (tests and `--bench-frames`).
    pub fn wait(self) -> Outcome {
        self.rx
            .recv()
            .unwrap_or_else(|_| Err(format!("{}: the worker stopped", self.label)))
    }

    /// Time since the job started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The library's view and layout of one table, being built.
pub struct SceneJob {
    /// What was asked for.
    pub request: SceneRequest,
    started: Instant,
    rx: Receiver<Result<Scene, String>>,
}

impl SceneJob {
    /// Builds the scene on a new thread, with `heat`'s counters instead of
    /// the rules' own when given; `waker` is repainted when done.
    pub fn spawn(
        doc: Arc<Document>,
        heat: Option<Arc<iptviz::Ruleset>>,
        request: SceneRequest,
        waker: Option<egui::Context>,
    ) -> Self {
        let (tx, rx) = channel();
        let req = request.clone();
        std::thread::spawn(move || {
            let rs = heat.as_deref().unwrap_or(&doc.parsed.ruleset);
            let out = Scene::build(rs, &doc.chain_graph, &req);
            // The receiver is gone when a newer request replaced this one.
            let _ = tx.send(out);
            if let Some(ctx) = waker {
                ctx.request_repaint();
            }
        });
        SceneJob {
            request,
            started: Instant::now(),
            rx,
        }
    }

    /// The scene, once there is one.
    pub fn poll(&self) -> Option<Result<Scene, String>> {
        match self.rx.try_recv() {
            Ok(out) => Some(out),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the layout worker stopped".into())),
        }
    }

    /// Time since the job started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A packet being traced on a worker thread.
pub struct TraceJob {
    started: Instant,
    rx: Receiver<Result<TraceResult, String>>,
}

impl TraceJob {
    /// Traces `form`'s packet through `doc` on a new thread; `waker` is
    /// repainted when done.
    pub fn spawn(doc: Arc<Document>, form: TraceForm, waker: Option<egui::Context>) -> Self {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let out = crate::trace_state::compute(&doc, &form);
            // The receiver is gone when the trace was cleared or replaced.
            let _ = tx.send(out);
            if let Some(ctx) = waker {
                ctx.request_repaint();
            }
        });
        TraceJob {
            started: Instant::now(),
            rx,
        }
    }

    /// The trace, once there is one.
    pub fn poll(&self) -> Option<Result<TraceResult, String>> {
        match self.rx.try_recv() {
            Ok(out) => Some(out),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("the trace worker stopped".into())),
        }
    }

    /// Time since the trace started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Reads and parses a file.
pub fn load_file(path: &str) -> Result<Document, String> {
    // Bounded: /dev/zero, an endless pipe or a huge file end with a message.
    let bytes = iptviz::input::read_file_bounded(
        std::path::Path::new(path),
        iptviz::input::DEFAULT_MAX_INPUT,
    )
    .map_err(|e| e.to_string())?;
    Document::from_bytes(path, &bytes)
}

/// How to get the rules when live reading is not possible.
pub const LIVE_HELP: &str = "Reading the firewall of this machine needs root. Either start iptviz-gui \
with sudo, or run\n\n    sudo iptables-save -c > rules.txt\n\nand open rules.txt (File > Open, drag \
and drop), or paste the output here with Ctrl+V.";

/// Runs iptables-save and ip6tables-save on this machine; the IPv4 rules
/// are shown first, the IPv6 ones are a click away.
pub fn load_live() -> Result<Document, String> {
    let dumps = iptviz::input::read_live().map_err(|e| format!("{e}\n\n{LIVE_HELP}"))?;
    if dumps.is_empty() {
        return Err(format!("iptables-save gave no rules.\n\n{LIVE_HELP}"));
    }
    let dumps: Vec<(String, Vec<u8>)> = dumps.into_iter().map(|d| (d.name, d.bytes)).collect();
    Document::from_siblings(Arc::new(dumps), 0)
}
