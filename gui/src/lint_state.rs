//! `iptviz lint` in the app: run on a worker thread once rules are loaded,
//! its findings listed in the Problems panel (FILE:LINE and the reason,
//! click to select the rule), and the rules no packet can reach greyed on
//! the rules panel with what covers them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use iptviz::analysis::lint::{Finding, Kind, lint_until};

use crate::state::{ChainRef, Document};

/// One finding, placed in the document.
#[derive(Debug, Clone)]
pub struct LintFinding {
    /// The library's finding.
    pub finding: Finding,
    /// Its chain.
    pub at: Option<ChainRef>,
    /// `FILE:LINE: KIND: table chain #N: reason`.
    pub text: String,
}

impl LintFinding {
    /// True for rules no packet can match (drawn greyed): shadowed,
    /// contradictory, dead for every caller, after an unconditional rule.
    pub fn never_matches(&self) -> bool {
        self.finding.rule.is_some()
            && matches!(
                self.finding.kind,
                Kind::Shadowed | Kind::EmptyMatch | Kind::DeadInContext | Kind::AfterUnconditional
            )
    }
}

/// The findings of one document.
#[derive(Debug, Default)]
pub struct LintReport {
    /// In the library's order (table, chain, rule).
    pub findings: Vec<LintFinding>,
    /// `(table, chain, rule)` to the index of the rule's first finding.
    pub by_rule: HashMap<(usize, usize, usize), usize>,
    /// Time lint took.
    pub took: Duration,
}

impl LintReport {
    /// Lints `doc`'s rules.
    pub fn build(doc: &Document) -> LintReport {
        Self::build_until(doc, &AtomicBool::new(false)).unwrap_or_default()
    }

    /// Lints `doc`'s rules unless `cancel` is set first (`None` then).
    pub fn build_until(doc: &Document, cancel: &AtomicBool) -> Option<LintReport> {
        let start = Instant::now();
        let rs = &doc.parsed.ruleset;
        let report = lint_until(rs, &|| cancel.load(Ordering::Relaxed))?;
        let mut by_rule = HashMap::new();
        let findings: Vec<LintFinding> = report
            .findings
            .into_iter()
            // The drawings of nft tables are not iptables rules to judge.
            .filter(|f| !iptviz::nft::project::is_drawn_table(rs, &f.table))
            .enumerate()
            .map(|(i, f)| {
                let at = rs
                    .tables
                    .iter()
                    .position(|t| t.name == f.table)
                    .and_then(|ti| {
                        let ci = rs.tables[ti].chain_position(&f.chain)?;
                        Some(ChainRef {
                            table: ti,
                            chain: ci,
                        })
                    });
                if let (Some(at), Some(r)) = (at, f.rule) {
                    by_rule.entry((at.table, at.chain, r)).or_insert(i);
                }
                let what = match f.rule {
                    Some(r) => format!("{} {} #{}", f.table, f.chain, r + 1),
                    None => format!("{} {}", f.table, f.chain),
                };
                let text = format!(
                    "{}:{}: {}: {what}: {}",
                    doc.name,
                    f.line,
                    f.kind.name(),
                    f.reason
                );
                LintFinding {
                    finding: f,
                    at,
                    text,
                }
            })
            .collect();
        Some(LintReport {
            findings,
            by_rule,
            took: start.elapsed(),
        })
    }

    /// The finding of a rule, if lint has one.
    pub fn of_rule(&self, at: ChainRef, rule: usize) -> Option<&LintFinding> {
        self.by_rule
            .get(&(at.table, at.chain, rule))
            .map(|&i| &self.findings[i])
    }
}

/// A lint run on a worker thread.
struct LintJob {
    of: Weak<Document>,
    started: Instant,
    rx: Receiver<LintReport>,
    /// Set when its answer is no longer wanted: the worker stops early.
    cancel: Arc<AtomicBool>,
}

impl Drop for LintJob {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Lint of the loaded document, run in the background.
#[derive(Default)]
pub struct LintState {
    /// The findings of `of`.
    pub report: Option<Arc<LintReport>>,
    of: Option<Weak<Document>>,
    job: Option<LintJob>,
    /// Lint on the calling thread (tests).
    pub sync: bool,
    /// The finding clicked last (its rule is marked on the rules panel).
    pub picked: Option<usize>,
}

fn same(w: &Option<Weak<Document>>, doc: &Arc<Document>) -> bool {
    w.as_ref()
        .is_some_and(|w| Weak::ptr_eq(w, &Arc::downgrade(doc)))
}

impl LintState {
    /// The findings, when they are those of `doc`.
    pub fn current(&self, doc: Option<&Arc<Document>>) -> Option<&LintReport> {
        let d = doc?;
        if same(&self.of, d) {
            self.report.as_deref()
        } else {
            None
        }
    }

    /// Whether lint is running, and for how long.
    pub fn busy(&self) -> Option<Duration> {
        self.job.as_ref().map(|j| j.started.elapsed())
    }

    /// Called every frame: starts lint for a new document, takes the
    /// result of a finished run; true when a report arrived.
    pub fn poll(&mut self, doc: Option<&Arc<Document>>, waker: Option<&egui::Context>) -> bool {
        let Some(doc) = doc else { return false };
        if let Some(job) = &self.job {
            let w = &job.of;
            match job.rx.try_recv() {
                Ok(r) => {
                    let w = w.clone();
                    self.job = None;
                    // The answer for a document no longer shown is dropped.
                    if Weak::ptr_eq(&w, &Arc::downgrade(doc)) {
                        self.report = Some(Arc::new(r));
                        self.of = Some(w);
                        self.picked = None;
                        return true;
                    }
                }
                Err(TryRecvError::Empty) => {
                    if Weak::ptr_eq(w, &Arc::downgrade(doc)) {
                        return false;
                    }
                    // A newer document: this run is dropped (and told to
                    // stop) when the new one starts below.
                }
                Err(TryRecvError::Disconnected) => {
                    // The worker died (it never should): do not retry each frame.
                    let w = w.clone();
                    self.job = None;
                    self.report = Some(Arc::new(LintReport::default()));
                    self.of = Some(w);
                    return true;
                }
            }
        }
        if same(&self.of, doc) {
            return false;
        }
        if self.sync {
            self.report = Some(Arc::new(LintReport::build(doc)));
            self.of = Some(Arc::downgrade(doc));
            self.picked = None;
            return true;
        }
        let (tx, rx) = channel();
        let d = doc.clone();
        let waker = waker.cloned();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        std::thread::spawn(move || {
            // Nothing is sent when cancelled: another document replaced
            // this one, and the receiver is gone.
            if let Some(r) = LintReport::build_until(&d, &stop) {
                let _ = tx.send(r);
                if let Some(ctx) = waker {
                    ctx.request_repaint();
                }
            }
        });
        // Replacing a running job drops it, which cancels it.
        self.job = Some(LintJob {
            of: Arc::downgrade(doc),
            started: Instant::now(),
            rx,
            cancel,
        });
        false
    }

    /// The rule of the finding clicked last, if it is in chain `at`.
    pub fn picked_rule(&self, doc: Option<&Arc<Document>>, at: ChainRef) -> Option<usize> {
        let f = self.current(doc)?.findings.get(self.picked?)?;
        (f.at == Some(at)).then_some(f.finding.rule).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::AppState;

    const SHADOW: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
        -A INPUT -s 10.0.0.0/8 -p tcp -j ACCEPT\n\
        -A INPUT -s 10.1.0.0/16 -p tcp -m tcp --dport 22 -j DROP\n\
        -A INPUT -p udp -j ACCEPT\nCOMMIT\n";

    #[test]
    fn a_shadowed_rule_is_found_and_placed() {
        let mut s = AppState::default();
        s.load("shadow.rules", SHADOW.as_bytes()).expect("loads");
        let mut l = LintState {
            sync: true,
            ..Default::default()
        };
        assert!(l.poll(s.doc.as_ref(), None));
        assert!(!l.poll(s.doc.as_ref(), None), "once per document");
        let r = l.current(s.doc.as_ref()).expect("linted");
        let input = ChainRef { table: 0, chain: 0 };
        let f = r.of_rule(input, 1).expect("rule 2 is shadowed");
        assert_eq!(f.finding.kind, Kind::Shadowed);
        assert!(f.never_matches());
        assert_eq!(f.finding.by, vec![5]);
        assert!(
            f.text
                .starts_with("shadow.rules:6: shadowed: filter INPUT #2:"),
            "{}",
            f.text
        );
        assert!(r.of_rule(input, 0).is_none());
        // A new document is linted again.
        s.load("again", SHADOW.as_bytes()).expect("loads");
        assert!(l.current(s.doc.as_ref()).is_none());
        assert!(l.poll(s.doc.as_ref(), None));
    }

    #[test]
    fn a_new_document_cancels_the_lint_of_the_old_one() {
        let mut s = AppState::default();
        s.load("shadow.rules", SHADOW.as_bytes()).expect("loads");
        let mut l = LintState::default();
        l.poll(s.doc.as_ref(), None);
        let first = l.job.as_ref().expect("running").cancel.clone();
        s.load("again", SHADOW.as_bytes()).expect("loads");
        l.poll(s.doc.as_ref(), None);
        assert!(first.load(Ordering::Relaxed), "the old run is told to stop");
        let job = l.job.as_ref().expect("running for the new document");
        assert!(!job.cancel.load(Ordering::Relaxed));
        assert!(Weak::ptr_eq(
            &job.of,
            &Arc::downgrade(s.doc.as_ref().unwrap())
        ));
    }

    #[test]
    fn lint_runs_in_the_background() {
        let mut s = AppState::default();
        s.load("shadow.rules", SHADOW.as_bytes()).expect("loads");
        let mut l = LintState::default();
        assert!(!l.poll(s.doc.as_ref(), None), "started, not done");
        let start = Instant::now();
        while !l.poll(s.doc.as_ref(), None) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "lint never ended"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(l.current(s.doc.as_ref()).expect("report").findings.len(), 1);
    }

    /// A clean nft ruleset opened in the app had 35 lint findings: the
    /// drawings of its tables (every rule a picture with no matches) were
    /// linted as iptables rules.
    #[test]
    fn the_drawings_of_nft_tables_are_not_linted_as_iptables_rules() {
        let nft = "table inet t {\n chain input {\n  type filter hook input priority 0; policy drop;\n  tcp dport 22 accept\n  tcp dport 80 accept\n  iifname lo accept\n }\n}\n";
        let mut s = AppState::default();
        s.load("t.nft", nft.as_bytes()).expect("loads");
        let doc = s.doc.as_ref().expect("document");
        // The picture is there, and lint of it alone would complain.
        let drawn = &doc.parsed.ruleset;
        assert!(drawn.table("inet t").is_some());
        assert!(!iptviz::analysis::lint::lint(drawn).findings.is_empty());
        assert!(LintReport::build(doc).findings.is_empty());
    }
}
