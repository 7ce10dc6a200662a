//! State of the trace form, apart from drawing: the packet as typed, the
//! last trace with its steps as text, the path it took as chains and
//! jumps, for the canvas to highlight, and the path drawn alone.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iptviz::diagram::PathMark;
use iptviz::model::Ruleset;
use iptviz::trace::nft::NftRules;
use iptviz::trace::{
    CtState, Direction, Packet, Trace, TraceOptions, TraceView, Tracer, protocol_number,
};

use crate::jobs::TraceJob;
use crate::scene::Scene;
use crate::state::{AppState, ChainRef, Document, View};

/// The packet fields as the user typed them.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceForm {
    /// tcp, udp, icmp, or a number.
    pub proto: String,
    /// Source address.
    pub src: String,
    /// Destination address.
    pub dst: String,
    /// Source port.
    pub sport: String,
    /// Destination port.
    pub dport: String,
    /// Interface it arrives on.
    pub in_iface: String,
    /// Interface it leaves by.
    pub out_iface: String,
    /// Conntrack state name.
    pub state: String,
    /// Packet mark (decimal or 0x hex).
    pub mark: String,
    /// This host's addresses, comma or space separated.
    pub local: String,
    /// `auto`, `in`, `out` or `forward`.
    pub direction: String,
}

impl Default for TraceForm {
    fn default() -> Self {
        TraceForm {
            proto: "tcp".into(),
            src: String::new(),
            dst: String::new(),
            sport: "40000".into(),
            dport: String::new(),
            in_iface: String::new(),
            out_iface: String::new(),
            state: "NEW".into(),
            mark: String::new(),
            local: String::new(),
            direction: "auto".into(),
        }
    }
}

/// Conntrack states offered in the form.
pub const STATES: &[&str] = &["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"];
/// Directions offered in the form.
pub const DIRECTIONS: &[&str] = &["auto", "in", "out", "forward"];

fn addr(what: &str, s: &str) -> Result<IpAddr, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("{what}: give an address, like 192.0.2.1"));
    }
    t.parse()
        .map_err(|_| format!("{what}: `{t}` is not an IP address"))
}

fn port(what: &str, s: &str) -> Result<u16, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(0);
    }
    t.parse()
        .map_err(|_| format!("{what}: `{t}` is not a port number 0-65535"))
}

impl TraceForm {
    /// The packet and options, or what is wrong with a field.
    pub fn packet(&self) -> Result<(Packet, TraceOptions), String> {
        let proto = protocol_number(self.proto.trim()).ok_or_else(|| {
            format!(
                "protocol: `{}` is not tcp, udp, icmp, ... or a number",
                self.proto.trim()
            )
        })?;
        let src = addr("source", &self.src)?;
        let dst = addr("destination", &self.dst)?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err("source and destination must both be IPv4 or both IPv6".into());
        }
        let mut p = Packet::new(proto, src, dst);
        p.sport = port("source port", &self.sport)?;
        p.dport = port("destination port", &self.dport)?;
        let iface = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.into())
        };
        p.in_iface = iface(&self.in_iface);
        p.out_iface = iface(&self.out_iface);
        p.state = self.state.trim().parse::<CtState>().map_err(|_| {
            format!(
                "state: `{}` is not one of {}",
                self.state,
                STATES.join(", ")
            )
        })?;
        let mark = self.mark.trim();
        if !mark.is_empty() {
            p.mark = iptviz::typed::parse_u32(mark)
                .ok_or_else(|| format!("mark: `{mark}` is not a number (decimal or 0x hex)"))?;
        }
        Ok((p, self.options()?))
    }

    /// The options every packet of the form shares: this host's addresses,
    /// the direction, the app's step budget.
    pub fn options(&self) -> Result<TraceOptions, String> {
        let local = self
            .local
            .split([',', ' '])
            .filter(|s| !s.trim().is_empty())
            .map(|s| addr("local addresses", s))
            .collect::<Result<Vec<_>, _>>()?;
        let direction = match self.direction.trim() {
            "" | "auto" => None,
            d => Some(
                d.parse::<Direction>()
                    .map_err(|_| format!("direction: `{d}` is not in, out or forward"))?,
            ),
        };
        Ok(TraceOptions {
            local,
            direction,
            max_steps: Some(MAX_STEPS),
            ..Default::default()
        })
    }
}

/// Rule evaluations a trace makes in the app before it stops. The trace
/// runs on a worker thread, so this bounds memory, not the frame time: a
/// hundred thousand steps with their text take tens of megabytes (the
/// command line allows a million, printed as it goes).
pub const MAX_STEPS: u64 = 100_000;

/// A finished trace and the path it took.
pub struct TraceResult {
    doc: Arc<Document>,
    /// The walk.
    pub trace: Trace,
    /// The walk as text, step by step.
    pub view: TraceView,
    /// Chains entered, as (table, chain).
    pub chains: HashSet<(usize, usize)>,
    /// The walk as the library marks it on a drawing of the document's
    /// tables: chains entered, and every call, goto, verdict, policy and
    /// return taken.
    pub marks: Vec<PathMark>,
    /// The walk drawn alone, as `iptviz trace --path-only` draws it.
    pub path: Arc<Scene>,
    /// Time the trace took.
    pub took: Duration,
}

impl TraceResult {
    /// The table the path is best seen in: where the verdict was decided,
    /// else filter when visited, else the first table met.
    pub fn best_table(&self) -> Option<usize> {
        let steps = &self.trace.steps;
        let rs = &self.doc.parsed.ruleset;
        if let Some(s) = self.trace.decided_by.and_then(|i| steps.get(i))
            && s.table < rs.tables.len()
        {
            return Some(s.table);
        }
        steps
            .iter()
            .find(|s| rs.tables.get(s.table).is_some_and(|t| t.name == "filter"))
            .or(steps.iter().find(|s| s.table < rs.tables.len()))
            .map(|s| s.table)
    }
}

/// Traces the packet of `form` through `doc`'s rules: the work of the
/// trace job, or of [`TraceState::run`] when the app runs synchronously.
pub fn compute(doc: &Arc<Document>, form: &TraceForm) -> Result<TraceResult, String> {
    let (pkt, opts) = form.packet()?;
    let start = Instant::now();
    let rs = &doc.parsed.ruleset;
    let (trace, view, path) = if rs.nft.is_empty() {
        let trace = Tracer::new(rs).trace(&pkt, &opts);
        let view = trace.view(rs);
        // A few boxes per table entered: cheap next to the trace itself.
        let path = Scene::path_only(rs, &trace);
        (trace, view, path)
    } else {
        // The nft tables are walked by the library's nft tracer beside
        // the iptables tables, which come first in the document (its nft
        // drawing tables after them); the walk is then moved onto the
        // drawing tables the canvas shows.
        let ipt_tables = rs
            .tables
            .iter()
            .take_while(|t| !iptviz::nft::project::is_drawn_table(rs, &t.name))
            .count();
        let ipt = Ruleset {
            family: rs.family,
            format: rs.format,
            tables: rs.tables[..ipt_tables].to_vec(),
            ..Default::default()
        };
        let nft = NftRules::from_model(&rs.nft)
            .map_err(|e| format!("the nft rules cannot be traced: {e}"))?;
        let trace = Tracer::with_nft(&ipt, &nft).trace(&pkt, &opts);
        let view = trace.view_nft(&ipt, &nft);
        let drawn = trace.on_drawing(rs, ipt_tables, &nft);
        let path = Scene::path_only_named(rs, &drawn.trace, &drawn);
        (drawn.trace, view, path)
    };
    let took = start.elapsed();
    // A step of an nft chain that is not drawn names no table.
    let chains = trace
        .steps
        .iter()
        .filter(|s| s.table < rs.tables.len())
        .map(|s| (s.table, s.chain))
        .collect();
    let marks = trace.path_marks(rs);
    let path = Arc::new(path);
    Ok(TraceResult {
        doc: doc.clone(),
        trace,
        view,
        chains,
        marks,
        path,
        took,
    })
}

/// The trace panel.
#[derive(Default)]
pub struct TraceState {
    /// The panel is shown.
    pub open: bool,
    /// The last trace.
    pub result: Option<TraceResult>,
    /// Why the last run did not happen.
    pub error: Option<String>,
    /// Step clicked last.
    pub step: Option<usize>,
    /// The canvas shows the path alone instead of the table with the path on it.
    pub path_only: bool,
    /// The trace being made on a worker thread.
    job: Option<TraceJob>,
}

impl TraceState {
    /// Traces the packet of `form` through `doc`'s rules, here and now.
    pub fn run(&mut self, doc: &Arc<Document>, form: &TraceForm) -> Result<(), String> {
        match compute(doc, form) {
            Ok(r) => {
                self.finished(r);
                Ok(())
            }
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn finished(&mut self, r: TraceResult) {
        self.result = Some(r);
        self.error = None;
        self.step = None;
    }

    /// Whether a trace runs on the worker thread.
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// Seconds the running trace has taken so far.
    pub fn running_for(&self) -> Option<Duration> {
        self.job.as_ref().map(TraceJob::elapsed)
    }

    /// The last trace, if it was made on `doc` (a new document makes it stale).
    pub fn current(&self, doc: Option<&Arc<Document>>) -> Option<&TraceResult> {
        let r = self.result.as_ref()?;
        doc.is_some_and(|d| Arc::ptr_eq(d, &r.doc)).then_some(r)
    }

    /// The scene the canvas shows instead of the table's: the current
    /// path alone, when asked for.
    pub fn path_scene(&self, doc: Option<&Arc<Document>>) -> Option<&Scene> {
        if !self.path_only {
            return None;
        }
        self.current(doc).map(|r| &*r.path)
    }
}

/// Something the user asked of the trace panel.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceAction {
    /// Show or hide the panel.
    Toggle,
    /// Trace this packet.
    Run(Box<TraceForm>),
    /// Select the chain of a step.
    SelectStep(usize),
    /// Show the path alone on the canvas, or the table with the path on it.
    PathOnly(bool),
    /// Forget the trace.
    Clear,
}

/// Applies a trace request to the app state.
pub fn apply(state: &mut AppState, a: TraceAction) {
    match a {
        TraceAction::Toggle => {
            state.trace.open = !state.trace.open;
            if state.trace.open && state.view == View::Conntrack {
                state.view = View::Graph;
            }
        }
        TraceAction::Run(form) => {
            let Some(doc) = state.doc.clone() else {
                state.trace.error = Some("load rules first".into());
                return;
            };
            if state.sync {
                if state.trace.run(&doc, &form).is_ok() {
                    show_result(state);
                }
                return;
            }
            // A walk may take seconds (a budget of evaluations, a huge
            // ruleset): the UI thread only starts it and polls.
            if let Err(e) = form.packet() {
                state.trace.error = Some(e);
                return;
            }
            state.trace.error = None;
            state.trace.job = Some(TraceJob::spawn(doc, *form, state.waker.clone()));
        }
        TraceAction::SelectStep(i) => {
            let at = state
                .trace
                .current(state.doc.as_ref())
                .and_then(|r| r.trace.steps.get(i))
                .map(|s| ChainRef {
                    table: s.table,
                    chain: s.chain,
                });
            if let Some(at) = at {
                state.trace.step = Some(i);
                state.select(at);
            }
        }
        TraceAction::PathOnly(on) => {
            state.trace.path_only = on;
            state.view = View::Graph;
            state.fit_requested = true;
        }
        TraceAction::Clear => {
            state.trace.job = None;
            state.trace.result = None;
            state.trace.error = None;
            state.trace.step = None;
        }
    }
}

/// Takes the trace made on the worker thread, once it is done; true when
/// one arrived.
pub fn poll(state: &mut AppState) -> bool {
    let Some(out) = state.trace.job.as_ref().and_then(TraceJob::poll) else {
        return false;
    };
    state.trace.job = None;
    match out {
        Ok(r) => {
            state.trace.finished(r);
            show_result(state);
        }
        Err(e) => state.trace.error = Some(e),
    }
    true
}

/// Shows a finished trace: the graph, in the table the path is best seen in.
fn show_result(state: &mut AppState) {
    state.view = View::Graph;
    if state.trace.path_only {
        state.fit_requested = true;
    }
    let here = state.table;
    let best = state
        .trace
        .result
        .as_ref()
        .and_then(TraceResult::best_table);
    let visits_here = state
        .trace
        .result
        .as_ref()
        .is_some_and(|r| r.chains.iter().any(|&(t, _)| t == here));
    if let Some(t) = best
        && (!visits_here || Some(here) != best)
    {
        state.set_table(t);
    }
}

/// The path of the current trace on the shown scene: boxes and edges.
#[derive(Debug, Default, PartialEq)]
pub struct ScenePath {
    /// Boxes entered (indices in `Scene::nodes`).
    pub nodes: HashSet<usize>,
    /// Edges taken (indices in `Scene::edges`).
    pub edges: Vec<usize>,
}

/// Where the current trace went on the table shown, if it went there.
pub fn scene_path(state: &AppState, scene: &Scene) -> Option<ScenePath> {
    let r = state.trace.current(state.doc.as_ref())?;
    // Marks of other tables name boxes this picture does not have.
    let lit = scene.path_index.lights(&r.marks);
    let nodes: HashSet<usize> = lit.nodes.into_iter().collect();
    if nodes.is_empty() {
        return None;
    }
    let mut edges = lit.edges;
    edges.sort_unstable();
    edges.dedup();
    Some(ScenePath { nodes, edges })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = include_str!("../../samples/docker-host.rules");

    fn docker() -> AppState {
        let mut s = AppState::default();
        s.load("docker-host.rules", DOCKER.as_bytes())
            .expect("loads");
        s
    }

    fn form() -> TraceForm {
        TraceForm {
            src: "198.51.100.7".into(),
            dst: "192.168.1.10".into(),
            dport: "8080".into(),
            in_iface: "eth0".into(),
            local: "192.168.1.10".into(),
            ..Default::default()
        }
    }

    #[test]
    fn form_builds_the_packet() {
        let (p, o) = form().packet().expect("valid");
        assert_eq!(p.proto, 6);
        assert_eq!((p.sport, p.dport), (40000, 8080));
        assert_eq!(p.in_iface.as_deref(), Some("eth0"));
        assert_eq!(o.local.len(), 1);
        let bad = TraceForm {
            dst: "2001:db8::1".into(),
            ..form()
        };
        assert!(bad.packet().unwrap_err().contains("both"));
        let bad = TraceForm {
            dport: "http".into(),
            ..form()
        };
        assert!(bad.packet().unwrap_err().contains("destination port"));
        let bad = TraceForm {
            direction: "sideways".into(),
            ..form()
        };
        assert!(bad.packet().is_err());
    }

    /// The canvas lit the calls and gotos it found in sets of its own, and
    /// never the verdicts, policies and returns `iptviz trace -f svg` lights:
    /// it now lights exactly what the library lights on the same view.
    #[test]
    fn the_canvas_lights_the_verdict_and_returns_the_svg_lights() {
        use crate::scene::{SceneRequest, view_options};
        use iptviz::graph::{ChainGraph, EdgeKind, ViewNodeKind, view};

        let mut s = docker();
        apply(&mut s, TraceAction::Run(Box::new(form())));
        let doc = s.doc.clone().expect("doc");
        let rs = &doc.parsed.ruleset;
        let r = s.trace.current(Some(&doc)).expect("traced");
        let scene = s.scene.clone().expect("scene");
        let path = scene_path(&s, &scene).expect("path on the shown table");
        let req = SceneRequest {
            table: s.table,
            ..Default::default()
        };
        let mut v = view(
            rs,
            &ChainGraph::build(rs),
            &view_options(rs, &rs.tables[s.table], &req),
        )
        .expect("view");
        v.highlight(rs, &r.marks);
        let lit: Vec<usize> = (0..v.edges.len())
            .filter(|&i| v.edges[i].highlight)
            .collect();
        assert_eq!(path.edges, lit, "the canvas lights what the SVG lights");
        assert!(
            path.edges.iter().any(|&i| scene.edges[i].ret),
            "a return (DOCKER-USER back to FORWARD) is lit"
        );
        assert!(
            path.edges.iter().any(|&i| v.edges[i].kind == EdgeKind::Jump
                && matches!(v.nodes[v.edges[i].to].kind, ViewNodeKind::Target(_))),
            "the verdict's edge is lit"
        );
    }

    #[test]
    fn trace_through_docker_gives_steps_and_a_path() {
        let mut s = docker();
        apply(&mut s, TraceAction::Run(Box::new(form())));
        let doc = s.doc.clone();
        let r = s.trace.current(doc.as_ref()).expect("traced");
        assert!(!r.view.steps.is_empty());
        // DNAT to the container: forwarded through the DOCKER chain.
        assert!(
            r.view
                .steps
                .iter()
                .any(|st| st.matched && st.action.starts_with("DNAT")),
            "{:#?}",
            r.view.steps
        );
        assert_ne!(
            r.view.output.dst, r.view.input.dst,
            "the packet leaves rewritten"
        );
        assert!(!r.marks.is_empty());
        let scene = s.scene.clone().expect("scene");
        let path = scene_path(&s, &scene).expect("path on the shown table");
        assert!(!path.nodes.is_empty());
        assert!(!path.edges.is_empty(), "jumps are drawn as edges");
        // Clicking a step selects its chain.
        let last = r.trace.steps.len() - 1;
        let want = (r.trace.steps[last].table, r.trace.steps[last].chain);
        apply(&mut s, TraceAction::SelectStep(last));
        let sel = s.selected.expect("selected");
        assert_eq!((sel.table, sel.chain), want);
    }

    const NFT: &str = "table inet fw {
        chain input { type filter hook input priority 10; policy drop;
            tcp dport vmap { 22 : jump ssh, 80 : accept }
        }
        chain ssh { ip saddr 10.0.0.0/8 accept }
    }";

    fn nft_form(src: &str) -> TraceForm {
        TraceForm {
            src: src.into(),
            dst: "192.0.2.1".into(),
            dport: "22".into(),
            in_iface: "eth0".into(),
            local: "192.0.2.1".into(),
            ..Default::default()
        }
    }

    /// The trace of the app walked no nft chain: it ran the iptables
    /// tracer on the drawings of the nft tables.
    #[test]
    fn an_nft_ruleset_is_traced_by_the_nft_tracer() {
        let mut s = AppState::default();
        s.load("fw.nft", NFT.as_bytes()).expect("loads");
        apply(&mut s, TraceAction::Run(Box::new(nft_form("10.1.1.1"))));
        let doc = s.doc.clone();
        let r = s.trace.current(doc.as_ref()).expect("traced");
        assert_eq!(r.trace.verdict, iptviz::trace::Verdict::Accept);
        let walked: Vec<(&str, &str)> = r
            .view
            .steps
            .iter()
            .filter(|st| st.matched)
            .map(|st| (st.chain.as_str(), st.action.as_str()))
            .collect();
        assert_eq!(walked, [("input", "jump ssh"), ("ssh", "ACCEPT")]);
        // The path is on the drawing the canvas shows.
        let rs = &doc.as_ref().expect("doc").parsed.ruleset;
        let t = rs
            .tables
            .iter()
            .position(|t| t.name == "inet fw")
            .expect("drawn");
        assert_eq!(s.table, t);
        let scene = s.scene.clone().expect("scene");
        let path = scene_path(&s, &scene).expect("path on the nft table");
        assert_eq!(path.nodes.len(), 3, "input, ssh and its verdict");
        assert_eq!(path.edges.len(), 2, "the jump from the vmap, the accept");
        assert!(r.path.nodes.len() >= 5, "packet, chains, verdict");
        // Clicking a step selects its drawn chain.
        let last = r.trace.steps.len() - 1;
        apply(&mut s, TraceAction::SelectStep(last));
        let sel = s.selected.expect("selected");
        assert_eq!(rs.tables[sel.table].chains[sel.chain].name, "ssh");
        // Another source: ssh does not accept, the policy drops.
        apply(&mut s, TraceAction::Run(Box::new(nft_form("192.0.2.9"))));
        let r = s.trace.current(s.doc.as_ref()).expect("traced");
        assert_eq!(r.trace.verdict, iptviz::trace::Verdict::Drop);
    }

    #[test]
    fn a_mixed_host_walks_iptables_and_nft_tables_in_priority_order() {
        let ipt = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        let mut parsed =
            iptviz::parse_str(ipt, &iptviz::ParseOptions::lenient("ipt")).expect("parses");
        parsed.ruleset.nft = iptviz::nft::parse_nft(NFT, &iptviz::ParseOptions::lenient("nft"))
            .expect("parses")
            .ruleset
            .nft;
        let doc = Document::from_parsed("mixed", parsed, 0, Instant::now());
        let mut s = AppState::default();
        s.set_document(Arc::new(doc));
        apply(&mut s, TraceAction::Run(Box::new(nft_form("192.0.2.9"))));
        let r = s.trace.current(s.doc.as_ref()).expect("traced");
        let tables: Vec<&str> = r.view.steps.iter().map(|st| st.table.as_str()).collect();
        // iptables filter at priority 0 accepts; then the nft table at 10 drops.
        assert_eq!(tables.first(), Some(&"filter"));
        assert_eq!(tables.last(), Some(&"inet fw"));
        assert_eq!(r.trace.verdict, iptviz::trace::Verdict::Drop);
        let rs = &s.doc.as_ref().expect("doc").parsed.ruleset;
        let names: Vec<&str> = r
            .chains
            .iter()
            .map(|&(t, c)| rs.tables[t].chains[c].name.as_str())
            .collect();
        assert!(names.contains(&"INPUT"), "{names:?}");
        assert!(names.contains(&"ssh"), "{names:?}");
        // The verdict was decided in the nft table: shown there.
        assert_eq!(rs.tables[s.table].name, "inet fw");
    }

    #[test]
    fn a_new_document_makes_the_trace_stale() {
        let mut s = docker();
        apply(&mut s, TraceAction::Run(Box::new(form())));
        assert!(s.trace.current(s.doc.as_ref()).is_some());
        s.load("again", DOCKER.as_bytes()).expect("loads");
        assert!(s.trace.current(s.doc.as_ref()).is_none());
        let scene = s.scene.clone().expect("scene");
        assert!(scene_path(&s, &scene).is_none());
    }

    #[test]
    fn bad_form_is_reported_not_traced() {
        let mut s = docker();
        apply(
            &mut s,
            TraceAction::Run(Box::new(TraceForm {
                src: "nope".into(),
                ..form()
            })),
        );
        assert!(
            s.trace
                .error
                .as_deref()
                .is_some_and(|e| e.contains("source"))
        );
        assert!(s.trace.result.is_none());
    }
}
