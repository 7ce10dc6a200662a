//! State of the Reach view, apart from drawing: the service matrix asked
//! for (table, chain, ports, closure), computed off the UI thread, its
//! classes laid out by the library as `iptviz reach -f svg` draws them,
//! and the class or accepted pair picked, with a representative packet
//! that the trace panel then follows through the rules.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use iptviz::analysis::Closure;
use iptviz::analysis::reach::{Matrix, ReachOptions, matrix_view, service_matrix};
use iptviz::layout::{Choice, layout};
use iptviz::model::{Family, Table};

use crate::scene::{NodeStyle, Scene};
use crate::state::{AppState, Document};
use crate::trace_state::TraceForm;

/// The matrix fields as the user typed them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReachForm {
    /// Table (`filter`).
    pub table: String,
    /// Chain (`FORWARD`, or `INPUT` for a host).
    pub chain: String,
    /// TCP destination port.
    pub dport: String,
    /// TCP source port.
    pub sport: String,
    /// Only what is surely accepted (lower closure).
    pub lower: bool,
}

impl Default for ReachForm {
    fn default() -> Self {
        ReachForm {
            table: "filter".into(),
            chain: "FORWARD".into(),
            dport: "22".into(),
            sport: "10000".into(),
            lower: false,
        }
    }
}

fn port(what: &str, s: &str) -> Result<u16, String> {
    let t = s.trim();
    t.parse()
        .map_err(|_| format!("{what}: `{t}` is not a port number 0-65535"))
}

impl ReachForm {
    /// The library's options for `doc`, or what is wrong with a field.
    pub fn options(&self, doc: &Document) -> Result<ReachOptions, String> {
        // The app draws nft tables through pictures of their rules in
        // iptables terms; a matrix of those would answer for the picture.
        let rs = &doc.parsed.ruleset;
        let table = self.table.trim();
        if iptviz::nft::project::is_drawn_table(rs, table) {
            return Err(format!(
                "reach analysis covers iptables tables only: `{table}` is an nft table \
                 (trace packets through it instead)"
            ));
        }
        if rs.table(table).is_none() && !rs.nft.is_empty() {
            return Err(format!(
                "reach analysis covers iptables tables only, and there is no iptables table \
                 `{table}` here: the nft tables are not analysed (trace packets through them instead)"
            ));
        }
        let dport = port("destination port", &self.dport)?;
        let sport = port("source port", &self.sport)?;
        Ok(ReachOptions {
            table: self.table.trim().to_string(),
            chain: self.chain.trim().to_string(),
            sport,
            dport,
            v6: doc.parsed.ruleset.family == Family::Ipv6,
            closure: if self.lower {
                Closure::Lower
            } else {
                Closure::Upper
            },
            ipassmt: None,
            routes: None,
        })
    }
}

/// A computed matrix and its drawing.
pub struct ReachResult {
    doc: Arc<Document>,
    /// The form it was computed for.
    pub form: ReachForm,
    /// Classes and accepted pairs.
    pub matrix: Matrix,
    /// One box per class (same order as `matrix.classes`), an edge per
    /// accepted pair between two classes.
    pub scene: Arc<Scene>,
    /// Time the matrix and its layout took.
    pub took: Duration,
}

/// What was clicked: a class, or an accepted (or refused) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// A class (index in `Matrix::classes`).
    Class(usize),
    /// Packets from the first class to the second.
    Pair(usize, usize),
}

/// The packet that stands for a pick, and what the matrix says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// From class.
    pub from: usize,
    /// To class.
    pub to: usize,
    /// Source address (the from class's representative).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The matrix accepts this pair.
    pub accepted: bool,
}

impl Sample {
    /// `tcp 10.0.0.1:10000 -> 192.0.2.1:22 NEW`.
    pub fn describe(&self, m: &Matrix) -> String {
        let ip = |a: IpAddr| match a {
            IpAddr::V6(_) => format!("[{a}]"),
            IpAddr::V4(_) => a.to_string(),
        };
        format!(
            "tcp {}:{} -> {}:{} NEW",
            ip(self.src),
            m.sport,
            ip(self.dst),
            m.dport
        )
    }
}

/// The packet a pick stands for. For a class: to a member of its own
/// class when it may reach itself, else to the first class it reaches,
/// else to its own class (a packet the matrix refuses).
pub fn sample(m: &Matrix, pick: Pick) -> Option<Sample> {
    let (from, to) = match pick {
        Pick::Pair(a, b) => (a, b),
        Pick::Class(a) => {
            let to = if m.accepts(a, a) {
                a
            } else {
                m.edges
                    .iter()
                    .find(|&&(x, _)| x == a)
                    .map_or(a, |&(_, y)| y)
            };
            (a, to)
        }
    };
    let (cf, ct) = (m.classes.get(from)?, m.classes.get(to)?);
    Some(Sample {
        from,
        to,
        src: cf.representative,
        dst: ct.representative,
        accepted: m.accepts(from, to),
    })
}

/// The trace form for a sample: the matrix's packet, entering the way the
/// chain sees packets (FORWARD forwarded, INPUT to this host ...).
pub fn trace_form(m: &Matrix, s: &Sample) -> TraceForm {
    let direction = match m.chain.as_str() {
        "FORWARD" => "forward",
        "INPUT" => "in",
        "OUTPUT" => "out",
        _ => "auto",
    };
    let local = match direction {
        "in" => s.dst.to_string(),
        "out" => s.src.to_string(),
        _ => String::new(),
    };
    TraceForm {
        proto: "tcp".into(),
        src: s.src.to_string(),
        dst: s.dst.to_string(),
        sport: m.sport.to_string(),
        dport: m.dport.to_string(),
        state: "NEW".into(),
        local,
        direction: direction.into(),
        ..Default::default()
    }
}

/// Computes the matrix and lays it out (the slow part: run off the UI
/// thread on big rulesets).
pub fn compute(doc: &Arc<Document>, form: &ReachForm) -> Result<ReachResult, String> {
    let start = Instant::now();
    let opts = form.options(doc)?;
    let matrix = service_matrix(&doc.parsed.ruleset, &opts).map_err(|e| e.to_string())?;
    let scene = Arc::new(matrix_scene(&matrix, &doc.name));
    Ok(ReachResult {
        doc: doc.clone(),
        form: form.clone(),
        matrix,
        scene,
        took: start.elapsed(),
    })
}

/// The library's drawing of a matrix (what `iptviz reach -f svg` draws),
/// with its legend in the matrix's words (address class, everything else,
/// accepted).
pub fn matrix_scene(m: &Matrix, name: &str) -> Scene {
    let v = matrix_view(m, name);
    let l = layout(&v, Choice::Auto);
    let mut s = Scene::from_layout(usize::MAX, &Table::default(), &v, &l);
    for (n, vn) in s.nodes.iter_mut().zip(&v.nodes) {
        n.style = match vn.kind {
            iptviz::graph::ViewNodeKind::Builtin => NodeStyle::Builtin,
            _ => NodeStyle::User,
        };
    }
    s
}

/// A matrix being computed.
struct ReachJob {
    started: Instant,
    rx: Receiver<Result<ReachResult, String>>,
}

/// The Reach view.
#[derive(Default)]
pub struct ReachState {
    /// The last matrix.
    pub result: Option<ReachResult>,
    /// Why the last request failed.
    pub error: Option<String>,
    /// Class or pair clicked last.
    pub pick: Option<Pick>,
    /// Compute on the calling thread (tests).
    pub sync: bool,
    job: Option<ReachJob>,
}

impl ReachState {
    /// The last matrix, if it was made on `doc`.
    pub fn current(&self, doc: Option<&Arc<Document>>) -> Option<&ReachResult> {
        let r = self.result.as_ref()?;
        doc.is_some_and(|d| Arc::ptr_eq(d, &r.doc)).then_some(r)
    }

    /// Whether a matrix is being computed, and for how long.
    pub fn busy(&self) -> Option<Duration> {
        self.job.as_ref().map(|j| j.started.elapsed())
    }

    /// Starts computing the matrix of `form` (on a worker thread unless
    /// `sync`); `waker` is repainted when it is done.
    pub fn start(&mut self, doc: &Arc<Document>, form: &ReachForm, waker: Option<egui::Context>) {
        self.error = None;
        if let Err(e) = form.options(doc) {
            self.error = Some(e);
            return;
        }
        if self.sync {
            self.job = None;
            self.finish(compute(doc, form));
            return;
        }
        let (tx, rx) = channel();
        let (doc, form) = (doc.clone(), form.clone());
        std::thread::spawn(move || {
            // The receiver is gone when a newer request replaced this one.
            let _ = tx.send(compute(&doc, &form));
            if let Some(ctx) = waker {
                ctx.request_repaint();
            }
        });
        // A job still running for an older request is dropped: its result
        // goes nowhere.
        self.job = Some(ReachJob {
            started: Instant::now(),
            rx,
        });
    }

    /// Takes the matrix once the worker has it; true when one arrived.
    pub fn poll(&mut self) -> bool {
        let Some(job) = &self.job else { return false };
        let out = match job.rx.try_recv() {
            Ok(out) => out,
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => Err("the reach worker stopped".into()),
        };
        self.job = None;
        self.finish(out);
        true
    }

    fn finish(&mut self, out: Result<ReachResult, String>) {
        match out {
            Ok(r) => {
                self.result = Some(r);
                self.error = None;
                self.pick = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// The sample packet of the current pick.
    pub fn picked_sample(&self, doc: Option<&Arc<Document>>) -> Option<Sample> {
        sample(&self.current(doc)?.matrix, self.pick?)
    }
}

/// Something the user asked of the Reach view.
#[derive(Debug, Clone, PartialEq)]
pub enum ReachAction {
    /// Compute this matrix.
    Run(Box<ReachForm>),
    /// A class or a pair was clicked: show its packet and trace it.
    Pick(Pick),
    /// Forget the pick.
    Unpick,
}

/// Applies a Reach request; a pick also fills the trace form and traces
/// the sample packet in the trace panel.
pub fn apply(state: &mut AppState, trace_form: &mut TraceForm, a: ReachAction) {
    match a {
        ReachAction::Run(form) => {
            let Some(doc) = state.doc.clone() else {
                state.reach.error = Some("load rules first".into());
                return;
            };
            let waker = state.waker.clone();
            state.reach.start(&doc, &form, waker);
        }
        ReachAction::Pick(p) => {
            state.reach.pick = Some(p);
            let doc = state.doc.clone();
            let Some(r) = state.reach.current(doc.as_ref()) else {
                return;
            };
            let Some(s) = sample(&r.matrix, p) else {
                return;
            };
            *trace_form = crate::reach_state::trace_form(&r.matrix, &s);
            if let Some(doc) = doc {
                state.trace.open = true;
                // The trace panel shows an error itself when the form is bad.
                let _ = state.trace.run(&doc, trace_form);
            }
        }
        ReachAction::Unpick => state.reach.pick = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A FORWARD -s 10.0.0.0/8 -d 192.0.2.0/24 -p tcp -m tcp --dport 22 -j ACCEPT\n\
        -A FORWARD -s 198.51.100.0/24 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";

    fn loaded() -> AppState {
        let mut s = AppState::default();
        s.load("router", ROUTER.as_bytes()).expect("loads");
        s.reach.sync = true;
        s
    }

    #[test]
    fn run_computes_classes_and_draws_one_box_each() {
        let mut s = loaded();
        let mut tf = TraceForm::default();
        apply(&mut s, &mut tf, ReachAction::Run(Box::default()));
        let doc = s.doc.clone();
        let r = s.reach.current(doc.as_ref()).expect("computed");
        assert_eq!(r.matrix.classes.len(), 4, "{:?}", r.matrix.classes);
        assert_eq!(r.scene.nodes.len(), r.matrix.classes.len());
        assert!(r.scene.nodes[0].title.contains("everything else"));
        assert!(
            r.scene
                .legend
                .iter()
                .any(|e| e.label.starts_with("accepted (dport "))
        );
        assert!(r.scene.legend.iter().all(|e| !e.label.contains("chain")));
    }

    #[test]
    fn the_matrix_is_computed_off_the_ui_thread() {
        let mut s = loaded();
        s.reach.sync = false;
        let doc = s.doc.clone().expect("doc");
        s.reach.start(&doc, &ReachForm::default(), None);
        assert!(s.reach.busy().is_some(), "running on a worker");
        let start = Instant::now();
        while !s.reach.poll() {
            assert!(start.elapsed() < Duration::from_secs(30), "never finished");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(s.reach.busy().is_none());
        assert_eq!(
            s.reach
                .current(Some(&doc))
                .expect("arrived")
                .matrix
                .classes
                .len(),
            4
        );
    }

    #[test]
    fn bad_port_is_reported_not_computed() {
        let mut s = loaded();
        let mut tf = TraceForm::default();
        let form = ReachForm {
            dport: "ssh".into(),
            ..Default::default()
        };
        apply(&mut s, &mut tf, ReachAction::Run(Box::new(form)));
        assert!(s.reach.error.as_deref().is_some_and(|e| e.contains("port")));
        assert!(s.reach.result.is_none());
        let form = ReachForm {
            chain: "NOPE".into(),
            ..Default::default()
        };
        apply(&mut s, &mut tf, ReachAction::Run(Box::new(form)));
        assert!(s.reach.error.as_deref().is_some_and(|e| e.contains("NOPE")));
    }

    #[test]
    fn picking_a_pair_traces_its_packet_to_the_matrix_verdict() {
        let mut s = loaded();
        let mut tf = TraceForm::default();
        apply(&mut s, &mut tf, ReachAction::Run(Box::default()));
        let doc = s.doc.clone();
        let m = &s.reach.current(doc.as_ref()).expect("computed").matrix;
        let ten = m.class_of("10.1.2.3".parse().unwrap()).unwrap();
        let net = m.class_of("192.0.2.9".parse().unwrap()).unwrap();
        let other = m.class_of("8.8.8.8".parse().unwrap()).unwrap();
        for (pick, accepted) in [
            (Pick::Pair(ten, net), true),
            (Pick::Pair(net, ten), false),
            (Pick::Class(other), false),
        ] {
            apply(&mut s, &mut tf, ReachAction::Pick(pick));
            let smp = s.reach.picked_sample(doc.as_ref()).expect("sample");
            assert_eq!(smp.accepted, accepted, "{pick:?}");
            assert_eq!(tf.src, smp.src.to_string());
            assert_eq!(
                (tf.dport.as_str(), tf.direction.as_str()),
                ("22", "forward")
            );
            assert!(s.trace.open);
            let t = s.trace.current(doc.as_ref()).expect("traced");
            assert_eq!(
                t.trace.verdict.to_string().starts_with("ACCEPT"),
                accepted,
                "{pick:?}: {}",
                t.trace.verdict
            );
        }
    }
}
