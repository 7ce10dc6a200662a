//! Application state, apart from drawing: what is loaded, what is selected,
//! what was searched, which groups are open, and the browsing history.
//! Every method here runs without a window and is unit-tested.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iptviz::model::Rule;
use iptviz::parse::{ParseOptions, Parsed, parse_bytes};

use crate::graph::TableGraph;
use crate::jobs::SceneJob;
use crate::scene::{Scene, SceneRequest};

/// A parsed input with its derived graph facts; never changes once built.
pub struct Document {
    /// Where it came from (file path, `pasted text`, `live: ...`).
    pub name: String,
    /// Parsed rules and problems.
    pub parsed: Parsed,
    /// Graph facts per table, same order as `parsed.ruleset.tables`.
    pub graphs: Vec<TableGraph>,
    /// The library's chain graph, which the canvas's view is made from.
    pub chain_graph: iptviz::graph::ChainGraph,
    /// The hook-order picture of the Flow tab.
    pub flow: crate::scene::FlowScene,
    /// Size of the input.
    pub bytes: usize,
    /// Time spent parsing and analysing.
    pub took: Duration,
    /// Every dump read together with this one (live reading gives the IPv4
    /// and the IPv6 rules), and which of them this document shows.
    pub siblings: Siblings,
}

/// Dumps read together, for switching between address families.
#[derive(Debug, Clone, Default)]
pub struct Siblings {
    /// `(name, text)` of each dump, in reading order.
    pub dumps: Arc<Vec<(String, Vec<u8>)>>,
    /// Index of the dump shown.
    pub shown: usize,
}

impl Siblings {
    /// Short label of a dump: the address family its name says.
    pub fn label(name: &str) -> &'static str {
        if name.contains("ip6tables") {
            "IPv6"
        } else {
            "IPv4"
        }
    }
}

impl Document {
    /// Parses `bytes` leniently; `Err` only when nothing could be read.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Document, String> {
        let start = Instant::now();
        // A paste is already in memory; still refuse binary data and sizes
        // the command line refuses, with the same words.
        if bytes.len() as u64 > iptviz::input::DEFAULT_MAX_INPUT {
            return Err(iptviz::input::InputError::TooLarge {
                name: name.to_string(),
                limit: iptviz::input::DEFAULT_MAX_INPUT,
                endless: false,
            }
            .to_string());
        }
        if let Some((why, offset)) = iptviz::input::sniff_binary(bytes) {
            return Err(iptviz::input::InputError::Binary {
                name: name.to_string(),
                why,
                offset,
            }
            .to_string());
        }
        let parsed = parse_bytes(bytes, &ParseOptions::lenient(name)).map_err(|e| {
            let e = e.to_string();
            // The library's message usually names the input already.
            if e.starts_with(name) {
                e
            } else {
                format!("{name}: {e}")
            }
        })?;
        Ok(Document::from_parsed(name, parsed, bytes.len(), start))
    }

    /// A document of rules already parsed (`bytes` long, read since
    /// `start`): nft tables get their drawing tables, each table its graph.
    pub fn from_parsed(name: &str, mut parsed: Parsed, bytes: usize, start: Instant) -> Document {
        // nft tables are shown through their drawing tables.
        parsed.ruleset =
            iptviz::nft::project::with_drawn_tables(std::mem::take(&mut parsed.ruleset));
        let graphs = parsed
            .ruleset
            .tables
            .iter()
            .map(TableGraph::build)
            .collect();
        let chain_graph = iptviz::graph::ChainGraph::build(&parsed.ruleset);
        let flow = crate::scene::FlowScene::build(&parsed.ruleset);
        Document {
            name: name.to_string(),
            parsed,
            graphs,
            chain_graph,
            flow,
            bytes,
            took: start.elapsed(),
            siblings: Siblings::default(),
        }
    }

    /// Parses dump `shown` of `dumps`, keeping the others to switch to.
    pub fn from_siblings(
        dumps: Arc<Vec<(String, Vec<u8>)>>,
        shown: usize,
    ) -> Result<Document, String> {
        let (name, bytes) = dumps.get(shown).ok_or_else(|| "no such dump".to_string())?;
        let mut doc = Document::from_bytes(name, bytes)?;
        doc.siblings = Siblings { dumps, shown };
        Ok(doc)
    }

    /// Number of error-level problems.
    pub fn error_count(&self) -> usize {
        self.parsed.error_count()
    }
}

/// A chain in a table, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainRef {
    /// Index in `Ruleset::tables`.
    pub table: usize,
    /// Index in `Table::chains`.
    pub chain: usize,
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The chain found.
    pub at: ChainRef,
    /// The matching rule's index, or `None` when the chain name matched.
    pub rule: Option<usize>,
    /// Short text shown in the results list.
    pub text: String,
}

/// Which big view is in the middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Chain graph of one table.
    #[default]
    Graph,
    /// Netfilter hook order.
    Flow,
    /// The conntrack table, its summary and counters.
    Conntrack,
    /// Who can reach whom: the service matrix of a chain.
    Reach,
}

/// Most search results listed (the highlight covers all of them).
pub const MAX_HITS: usize = 1000;

/// Everything the user is looking at.
pub struct AppState {
    /// The loaded rules.
    pub doc: Option<Arc<Document>>,
    /// Table shown on the canvas.
    pub table: usize,
    /// Graph or flow.
    pub view: View,
    /// Selected chain.
    pub selected: Option<ChainRef>,
    back: Vec<ChainRef>,
    forward: Vec<ChainRef>,
    /// Current search text.
    pub query: String,
    /// Search results (at most [`MAX_HITS`]).
    pub hits: Vec<Hit>,
    /// Hit count including those not listed.
    pub hit_total: usize,
    /// Chains of the current table that match the search.
    pub hit_chains: HashSet<usize>,
    /// Open groups: (table, the library's group id).
    pub expanded: HashSet<(usize, String)>,
    /// Tables shown with no group folded.
    pub all_open: HashSet<usize>,
    /// Layout of the current table (or, while a new one is being built,
    /// the previous one: check [`Scene::table`]).
    pub scene: Option<Arc<Scene>>,
    /// The scene being built on the worker thread.
    pub scene_job: Option<SceneJob>,
    /// Build scenes on the calling thread (tests, benchmarks).
    pub sync: bool,
    /// Repainted when a scene built in the background is ready.
    pub waker: Option<egui::Context>,
    /// Fit the camera once the pending scene arrives.
    fit_on_scene: bool,
    /// Problem whose source line is shown.
    pub problem: Option<usize>,
    /// Where the canvas should look next (world position), set by `select`.
    pub focus: Option<egui::Pos2>,
    /// The camera should fit the whole scene.
    pub fit_requested: bool,
    /// The Conntrack tab.
    pub conntrack: crate::conntrack_state::ConntrackState,
    /// The trace panel.
    pub trace: crate::trace_state::TraceState,
    /// The Reach view.
    pub reach: crate::reach_state::ReachState,
    /// Lint findings of the loaded rules.
    pub lint: crate::lint_state::LintState,
    /// The Compare view: another ruleset beside the loaded one.
    pub compare: crate::compare_state::CompareState,
    /// Last layout error, if the library could not draw the table.
    pub scene_error: Option<String>,
    /// A capture replayed through the rules (the capture panel).
    pub capture: crate::capture_state::CaptureState,
    /// The rules with a capture's counters, drawn instead of the loaded
    /// rules' own counters (edges as wide as the packets that took them).
    pub heat: Option<Arc<iptviz::Ruleset>>,
}

impl Default for AppState {
    fn default() -> Self {
        AppState {
            doc: None,
            table: 0,
            view: View::Graph,
            selected: None,
            back: Vec::new(),
            forward: Vec::new(),
            query: String::new(),
            hits: Vec::new(),
            hit_total: 0,
            hit_chains: HashSet::new(),
            expanded: HashSet::new(),
            all_open: HashSet::new(),
            scene: None,
            scene_job: None,
            sync: true,
            waker: None,
            fit_on_scene: false,
            problem: None,
            focus: None,
            fit_requested: false,
            conntrack: Default::default(),
            trace: Default::default(),
            reach: Default::default(),
            lint: Default::default(),
            compare: Default::default(),
            scene_error: None,
            capture: Default::default(),
            heat: None,
        }
    }
}

impl AppState {
    /// Parses text and makes it the current document (used by tests; the
    /// app parses on a background thread and calls [`AppState::set_document`]).
    pub fn load(&mut self, name: &str, text: &[u8]) -> Result<(), String> {
        let doc = Document::from_bytes(name, text)?;
        self.set_document(Arc::new(doc));
        Ok(())
    }

    /// Shows a newly loaded document: first table with a user chain or
    /// rules, nothing selected, search kept.
    pub fn set_document(&mut self, doc: Arc<Document>) {
        let tables = &doc.parsed.ruleset.tables;
        // Start where the interesting part usually is.
        self.table = tables
            .iter()
            .position(|t| t.name == "filter" && t.rule_count() > 0)
            .or_else(|| tables.iter().position(|t| t.rule_count() > 0))
            .unwrap_or(0);
        self.doc = Some(doc);
        // A capture's counters belong to the rules it was replayed through.
        self.heat = None;
        self.selected = None;
        self.back.clear();
        self.forward.clear();
        self.expanded.clear();
        self.all_open.clear();
        self.problem = None;
        self.fit_on_scene = true;
        self.rebuild_scene();
        let q = std::mem::take(&mut self.query);
        self.search(&q);
    }

    /// Draws the graph with these counters (a capture's), or with the
    /// loaded rules' own when `None`.
    pub fn set_heat(&mut self, heat: Option<Arc<iptviz::Ruleset>>) {
        let same = match (&self.heat, &heat) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same {
            self.heat = heat;
            self.rebuild_scene();
        }
    }

    /// Shows another table.
    pub fn set_table(&mut self, table: usize) {
        let Some(doc) = &self.doc else { return };
        if table >= doc.parsed.ruleset.tables.len() || table == self.table {
            return;
        }
        self.table = table;
        self.fit_on_scene = true;
        self.rebuild_scene();
        self.refresh_hit_chains();
    }

    /// Selects a chain (recording history) and asks the canvas to look at it.
    pub fn select(&mut self, at: ChainRef) {
        if !self.valid(at) {
            return;
        }
        if let Some(cur) = self.selected
            && cur != at
        {
            self.back.push(cur);
            self.forward.clear();
        }
        self.show(at);
    }

    /// Selects a chain by table and chain name.
    pub fn select_named(&mut self, table: &str, chain: &str) -> bool {
        let Some(at) = self.find(table, chain) else {
            return false;
        };
        self.select(at);
        true
    }

    /// Finds a chain by names.
    pub fn find(&self, table: &str, chain: &str) -> Option<ChainRef> {
        let doc = self.doc.as_ref()?;
        let ti = doc
            .parsed
            .ruleset
            .tables
            .iter()
            .position(|t| t.name == table)?;
        let ci = doc.parsed.ruleset.tables[ti].chain_position(chain)?;
        Some(ChainRef {
            table: ti,
            chain: ci,
        })
    }

    /// Follows the jump of a rule of the selected chain.
    pub fn follow(&mut self, target: &str) -> bool {
        let Some(cur) = self.selected else {
            return false;
        };
        let Some(doc) = &self.doc else { return false };
        let table = &doc.parsed.ruleset.tables[cur.table];
        let Some(ci) = table.chain_position(target) else {
            return false;
        };
        self.select(ChainRef {
            table: cur.table,
            chain: ci,
        });
        true
    }

    /// Goes back in the selection history.
    pub fn back(&mut self) {
        if let Some(prev) = self.back.pop() {
            if let Some(cur) = self.selected {
                self.forward.push(cur);
            }
            self.show(prev);
        }
    }

    /// Goes forward in the selection history.
    pub fn forward(&mut self) {
        if let Some(next) = self.forward.pop() {
            if let Some(cur) = self.selected {
                self.back.push(cur);
            }
            self.show(next);
        }
    }

    /// Whether back / forward have somewhere to go.
    pub fn can_go(&self) -> (bool, bool) {
        (!self.back.is_empty(), !self.forward.is_empty())
    }

    /// Opens or folds a group of the current table, by the library's
    /// group id ([`crate::scene::SceneGroup::id`]).
    pub fn toggle_group(&mut self, id: &str) {
        let key = (self.table, id.to_string());
        if !self.expanded.remove(&key) {
            self.expanded.insert(key);
        }
        self.rebuild_scene();
    }

    /// The open group that a chain of the current table was folded in, if
    /// any: double-clicking the chain folds it again.
    pub fn open_group_of(&self, chain: usize) -> Option<String> {
        let scene = self.scene.as_ref().filter(|s| s.table == self.table)?;
        scene.open_group_of(chain, &self.expanded_ids())
    }

    /// Opens every group of the current table.
    pub fn expand_all(&mut self) {
        if self.doc.is_some() {
            self.all_open.insert(self.table);
            self.fit_on_scene = true;
            self.rebuild_scene();
        }
    }

    /// Whether the canvas waits for a scene from the worker thread.
    pub fn laying_out(&self) -> bool {
        self.scene_job.is_some()
    }

    /// Takes a scene built in the background, once it is ready; true when
    /// one arrived.
    pub fn poll_scene(&mut self) -> bool {
        let Some(job) = &self.scene_job else {
            return false;
        };
        let Some(out) = job.poll() else {
            return false;
        };
        self.scene_job = None;
        self.scene_ready(out);
        true
    }

    /// Searches chain names, service names and rule text (comments,
    /// addresses, ports), case-insensitively.
    pub fn search(&mut self, query: &str) {
        self.query = query.to_string();
        self.hits.clear();
        self.hit_total = 0;
        let needle = query.trim().to_ascii_lowercase();
        if let Some(doc) = &self.doc
            && !needle.is_empty()
        {
            for (ti, table) in doc.parsed.ruleset.tables.iter().enumerate() {
                let graph = &doc.graphs[ti];
                for (ci, chain) in table.chains.iter().enumerate() {
                    let at = ChainRef {
                        table: ti,
                        chain: ci,
                    };
                    let service = graph.service.get(ci).and_then(Option::as_deref);
                    if contains_ci(&chain.name, &needle)
                        || service.is_some_and(|s| contains_ci(s, &needle))
                    {
                        self.hit_total += 1;
                        if self.hits.len() < MAX_HITS {
                            let text = match service {
                                Some(s) => format!("{} {}  ({s})", table.name, chain.name),
                                None => format!("{} {}", table.name, chain.name),
                            };
                            self.hits.push(Hit {
                                at,
                                rule: None,
                                text,
                            });
                        }
                        continue;
                    }
                    for (ri, rule) in chain.rules.iter().enumerate() {
                        if rule_matches(rule, &needle) {
                            self.hit_total += 1;
                            if self.hits.len() < MAX_HITS {
                                self.hits.push(Hit {
                                    at,
                                    rule: Some(ri),
                                    text: format!(
                                        "{} {} #{}: {}",
                                        table.name,
                                        chain.name,
                                        ri + 1,
                                        short(&rule.text, 90)
                                    ),
                                });
                            }
                            break;
                        }
                    }
                }
            }
        }
        self.refresh_hit_chains();
    }

    /// Clears the search.
    pub fn clear_search(&mut self) {
        self.search("");
    }

    /// The selected chain's table and chain.
    pub fn selected_chain(&self) -> Option<(&iptviz::Table, &iptviz::Chain)> {
        let at = self.selected?;
        let doc = self.doc.as_ref()?;
        let t = doc.parsed.ruleset.tables.get(at.table)?;
        Some((t, t.chains.get(at.chain)?))
    }

    /// The rules of the selected chain as `iptables-save` lines.
    pub fn selected_rules_text(&self) -> Option<String> {
        let (_, chain) = self.selected_chain()?;
        let mut s = String::new();
        for r in &chain.rules {
            s.push_str(&iptviz::save::rule_line(&chain.name, r));
            s.push('\n');
        }
        Some(s)
    }

    fn valid(&self, at: ChainRef) -> bool {
        self.doc.as_ref().is_some_and(|d| {
            d.parsed
                .ruleset
                .tables
                .get(at.table)
                .is_some_and(|t| at.chain < t.chains.len())
        })
    }

    fn show(&mut self, at: ChainRef) {
        self.selected = Some(at);
        self.view = View::Graph;
        if at.table != self.table {
            self.table = at.table;
            self.rebuild_scene();
            self.refresh_hit_chains();
        }
        self.focus_selected();
    }

    /// Asks the canvas to look at the selected chain, if it is drawn.
    fn focus_selected(&mut self) {
        if let Some(at) = self.selected
            && let Some(scene) = &self.scene
            && scene.table == at.table
            && let Some(n) = scene.node_for_chain(at.chain)
        {
            self.focus = Some(scene.nodes[n].rect.center());
        }
    }

    /// What the canvas shows now: the table and the groups opened in it.
    pub fn scene_request(&self) -> SceneRequest {
        SceneRequest {
            table: self.table,
            expanded: self.expanded_ids(),
            expand_all: self.all_open.contains(&self.table),
        }
    }

    fn expanded_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .expanded
            .iter()
            .filter(|(t, _)| *t == self.table)
            .map(|(_, id)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Starts building the current table's scene: on the worker thread, or
    /// right here when `sync`.
    fn rebuild_scene(&mut self) {
        let Some(doc) = self.doc.clone() else {
            self.scene = None;
            self.scene_job = None;
            return;
        };
        if self.table >= doc.parsed.ruleset.tables.len() {
            self.scene = None;
            self.scene_job = None;
            return;
        }
        let request = self.scene_request();
        if self.sync {
            let rs = self.heat.as_deref().unwrap_or(&doc.parsed.ruleset);
            let out = Scene::build(rs, &doc.chain_graph, &request);
            self.scene_ready(out);
        } else {
            // A job still running for an older request is dropped: its
            // thread finishes and its result goes nowhere.
            self.scene_job = Some(SceneJob::spawn(
                doc,
                self.heat.clone(),
                request,
                self.waker.clone(),
            ));
        }
    }

    fn scene_ready(&mut self, out: Result<Scene, String>) {
        match out {
            Ok(scene) => {
                self.scene = Some(Arc::new(scene));
                self.scene_error = None;
                if std::mem::take(&mut self.fit_on_scene) {
                    self.fit_requested = true;
                }
                self.focus_selected();
            }
            Err(e) => {
                self.scene = None;
                self.scene_error = Some(e);
            }
        }
    }

    fn refresh_hit_chains(&mut self) {
        self.hit_chains = self
            .hits
            .iter()
            .filter(|h| h.at.table == self.table)
            .map(|h| h.at.chain)
            .collect();
    }
}

fn rule_matches(rule: &Rule, needle: &str) -> bool {
    contains_ci(&rule.text, needle)
}

/// ASCII case-insensitive substring test; `needle` must be lower case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    let first = n[0];
    (0..=h.len() - n.len()).any(|i| {
        h[i].to_ascii_lowercase() == first
            && h[i..i + n.len()]
                .iter()
                .zip(n)
                .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// Cuts text to `max` characters with an ellipsis.
pub fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/fixtures/small-host.rules");

    fn loaded() -> AppState {
        let mut s = AppState::default();
        s.load("sample", SAMPLE.as_bytes()).expect("sample loads");
        s
    }

    #[test]
    fn load_picks_filter_and_builds_a_scene() {
        let s = loaded();
        let doc = s.doc.as_ref().expect("doc");
        assert_eq!(doc.parsed.ruleset.tables[s.table].name, "filter");
        assert!(doc.parsed.problems.is_empty());
        let scene = s.scene.as_ref().expect("scene");
        assert_eq!(scene.table, s.table);
        let chains = doc.parsed.ruleset.tables[s.table].chains.len();
        assert!(scene.nodes.len() > chains, "chains and their verdicts");
        assert!(s.fit_requested);
    }

    #[test]
    fn search_finds_names_comments_addresses_and_ports() {
        let mut s = loaded();
        s.search("ssh-allow");
        assert!(
            s.hits
                .iter()
                .any(|h| h.rule.is_none() && h.text.contains("ssh-allow"))
        );
        s.search("BACKUP HOST");
        assert_eq!(s.hits.len(), 1);
        assert_eq!(s.hits[0].rule, Some(1));
        s.search("192.0.2.");
        assert_eq!(s.hits.len(), 1);
        s.search("8080");
        assert_eq!(s.hits[0].text.split(' ').next(), Some("nat"));
        assert!(s.hit_chains.is_empty(), "hit is in nat, we look at filter");
        s.search("web");
        assert!(!s.hit_chains.is_empty());
        s.clear_search();
        assert!(s.hits.is_empty() && s.hit_chains.is_empty());
    }

    #[test]
    fn select_follow_back_forward() {
        let mut s = loaded();
        assert!(s.select_named("filter", "INPUT"));
        assert!(s.focus.is_some());
        assert!(s.follow("ssh-allow"));
        assert!(s.follow("log-drop"));
        assert!(!s.follow("ACCEPT"), "verdicts are not chains");
        let name = |s: &AppState| s.selected_chain().map(|(_, c)| c.name.to_string());
        assert_eq!(name(&s).as_deref(), Some("log-drop"));
        s.back();
        assert_eq!(name(&s).as_deref(), Some("ssh-allow"));
        s.back();
        assert_eq!(name(&s).as_deref(), Some("INPUT"));
        assert_eq!(s.can_go(), (false, true));
        s.forward();
        assert_eq!(name(&s).as_deref(), Some("ssh-allow"));
        // A new selection drops the forward history.
        s.select_named("nat", "DOCKER");
        assert_eq!(s.can_go(), (true, false));
        assert_eq!(s.table, 0, "selecting in nat switches the table");
    }

    #[test]
    fn rules_as_text() {
        let mut s = loaded();
        s.select_named("filter", "web");
        let text = s.selected_rules_text().expect("selected");
        assert!(
            text.lines()
                .next()
                .is_some_and(|l| l.ends_with("-A web -p tcp -m tcp --dport 443 -j ACCEPT")),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn broken_paste_keeps_good_lines_and_lists_problems() {
        let mut s = AppState::default();
        let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n\
                    this is not a rule\n-A INPUT -j\nCOMMIT\n";
        s.load("pasted", text.as_bytes()).expect("lenient");
        let doc = s.doc.as_ref().expect("doc");
        assert!(doc.error_count() >= 1);
        assert_eq!(doc.parsed.ruleset.rule_count(), 1);
        assert!(doc.parsed.problems.iter().any(|p| p.line == 4));
    }

    #[test]
    fn toggle_group_rebuilds() {
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-A - [0:0]\n");
        text.push_str("-A PREROUTING -j KUBE-SVC-A\n");
        for i in 0..8 {
            text.push_str(&format!(":KUBE-SEP-ABCDEFGH{i:04} - [0:0]\n"));
            text.push_str(&format!("-A KUBE-SVC-A -j KUBE-SEP-ABCDEFGH{i:04}\n"));
        }
        text.push_str("COMMIT\n");
        let mut s = AppState::default();
        s.load("k", text.as_bytes()).expect("loads");
        let count = |s: &AppState| s.scene.as_ref().map_or(0, |x| x.nodes.len());
        assert_eq!(count(&s), 4);
        let id = s.scene.as_ref().expect("scene").groups[0].id.clone();
        s.toggle_group(&id);
        assert_eq!(count(&s), 11);
        assert_eq!(s.open_group_of(5).as_deref(), Some(id.as_str()));
        s.toggle_group(&id);
        assert_eq!(count(&s), 4);
        s.expand_all();
        assert_eq!(count(&s), 11);
    }

    #[test]
    fn case_insensitive_contains() {
        assert!(contains_ci("KUBE-SVC-ABC", "svc-a"));
        assert!(!contains_ci("abc", "abcd"));
        assert!(contains_ci("x", ""));
    }
}
