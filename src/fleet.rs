//! Many nodes' dumps at once: which nodes have the same rules, which rules
//! some nodes have and others lack, and which nodes stand out.
//!
//! Nodes are read one at a time per worker and reduced to a fingerprint:
//! a 128-bit hash of the whole ruleset in order (counters left out) and the
//! sorted 64-bit hashes of its rules and chain declarations. The model is
//! dropped as soon as that is taken, so memory grows with the number of
//! distinct rulesets, not of nodes. The text of a rule is kept once for the
//! whole fleet, from the first node that has it, to name drift.

mod svg;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

use crate::graph::kube::is_kube_chain;
use crate::model::{Family, Ruleset};
use crate::parse::{ParseOptions, parse_owned};
use crate::save::push_rule_body;

pub use svg::svg;

/// How to read and compare the nodes.
#[derive(Debug, Clone, Default)]
pub struct FleetOptions {
    /// Leave kube-proxy endpoint chains (`KUBE-SEP-*`) and the jumps into
    /// them out of the comparison: pods come and go on every node.
    pub ignore_endpoints: bool,
    /// Nodes read at once (each a whole dump in memory); 0 picks the
    /// number of CPUs, at most 4.
    pub workers: usize,
}

/// One node's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeInput {
    /// The node's name: the file name without a `.rules`-like extension.
    pub name: String,
    /// Its rules dump.
    pub rules: PathBuf,
    /// A conntrack table (`NODE.conntrack`) beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<PathBuf>,
    /// `NODE.conntrack_max`: the node's `nf_conntrack_max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack_max: Option<PathBuf>,
}

/// Extensions taken off a dump's file name to name its node.
const RULE_EXTS: [&str; 8] = [
    ".rules",
    ".txt",
    ".save",
    ".dump",
    ".iptables",
    ".ipt",
    ".v4",
    ".v6",
];
/// Extensions of conntrack tables beside a node's dump.
const CONNTRACK_EXTS: [&str; 4] = [".conntrack", ".conntrack.txt", ".nf_conntrack", ".ct"];
/// Files in a fleet directory that are not dumps (reports written there).
const NOT_DUMPS: [&str; 5] = [".svg", ".json", ".md", ".png", ".html"];
/// Extensions of the conntrack maximum beside a node's dump.
const MAX_EXTS: [&str; 2] = [".conntrack_max", ".conntrack-max"];

fn strip_any<'a>(name: &'a str, exts: &[&str]) -> Option<&'a str> {
    exts.iter()
        .filter_map(|e| name.strip_suffix(e))
        .find(|s| !s.is_empty())
}

/// The node name of a dump file.
pub fn node_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    strip_any(&file, &RULE_EXTS).unwrap_or(&file).to_string()
}

/// Why the node list could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A directory or file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was read.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Two dumps give the same node name.
    #[error("two dumps name node {name:?}: {first} and {second}")]
    Duplicate {
        /// The node name.
        name: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// Nothing to read.
    #[error("no rules dumps found in {0}")]
    Empty(String),
}

/// The nodes given as directories (every regular file in them, not
/// descending) and files, sorted by node name. Conntrack files
/// (`NODE.conntrack`, `NODE.conntrack_max`) go with the node of that name.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<NodeInput>, FleetError> {
    let io = |p: &Path| {
        let path = p.display().to_string();
        move |source| FleetError::Io { path, source }
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for e in std::fs::read_dir(p).map_err(io(p))? {
                let e = e.map_err(io(p))?;
                let path = e.path();
                let file = e.file_name().to_string_lossy().into_owned();
                let skip = file.starts_with('.') || NOT_DUMPS.iter().any(|x| file.ends_with(x));
                if !skip && path.is_file() {
                    files.push(path);
                }
            }
        } else {
            std::fs::metadata(p).map_err(io(p))?;
            files.push(p.clone());
        }
    }
    files.sort();
    let mut ct: HashMap<String, PathBuf> = HashMap::new();
    let mut max: HashMap<String, PathBuf> = HashMap::new();
    let mut nodes: BTreeMap<String, NodeInput> = BTreeMap::new();
    for f in files {
        let file = f
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(stem) = strip_any(&file, &CONNTRACK_EXTS) {
            ct.insert(dir.join(stem).display().to_string(), f.clone());
            continue;
        }
        if let Some(stem) = strip_any(&file, &MAX_EXTS) {
            max.insert(dir.join(stem).display().to_string(), f.clone());
            continue;
        }
        let name = node_name(&f);
        let node = NodeInput {
            name: name.clone(),
            rules: f.clone(),
            conntrack: None,
            conntrack_max: None,
        };
        if let Some(prev) = nodes.insert(name.clone(), node) {
            return Err(FleetError::Duplicate {
                name,
                first: prev.rules.display().to_string(),
                second: f.display().to_string(),
            });
        }
    }
    for n in nodes.values_mut() {
        let dir = n.rules.parent().map(Path::to_path_buf).unwrap_or_default();
        let key = dir.join(&n.name).display().to_string();
        n.conntrack = ct.remove(&key);
        n.conntrack_max = max.remove(&key);
    }
    if nodes.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(FleetError::Empty(names.join(", ")));
    }
    Ok(nodes.into_values().collect())
}

/// How full a node's conntrack table is.
#[derive(Debug, Clone, Serialize)]
pub struct ConntrackFill {
    /// Entries in the table file.
    pub entries: u64,
    /// `nf_conntrack_max`, when a `NODE.conntrack_max` file gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// `entries / max` in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// Why the table could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What is reported per node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Node name.
    pub name: String,
    /// Its dump.
    pub file: String,
    /// 1-based group number; 0 when the dump could not be read.
    pub group: usize,
    /// Address family.
    pub family: Family,
    /// Tables.
    pub tables: usize,
    /// Chains.
    pub chains: usize,
    /// Rules.
    pub rules: usize,
    /// Errors `check` finds.
    pub errors: usize,
    /// Warnings `check` finds.
    pub warnings: usize,
    /// The first problems, as `FILE:LINE:COL: severity: message`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Conntrack fill, when a conntrack file sits beside the dump.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<ConntrackFill>,
    /// In a small group that differs from the largest.
    pub outlier: bool,
    /// Why the dump could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Nodes with identical rules.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// 1-based, largest group first.
    pub id: usize,
    /// The fingerprint, hex.
    pub fingerprint: String,
    /// Its nodes, by name.
    pub nodes: Vec<String>,
    /// Rules (and chain declarations) compared.
    pub items: usize,
    /// Items the largest group has and this one lacks.
    pub missing: usize,
    /// Items this group has and the largest lacks.
    pub extra: usize,
    /// Same items as another group, in another order.
    pub order_only: bool,
}

/// One rule or chain declaration that not every node has.
#[derive(Debug, Clone, Serialize)]
pub struct DriftLine {
    /// Table.
    pub table: String,
    /// Chain.
    pub chain: String,
    /// `-A CHAIN ...` or `:CHAIN POLICY`.
    pub text: String,
}

/// Rules present on one set of nodes and missing on the rest.
#[derive(Debug, Clone, Serialize)]
pub struct DriftItem {
    /// Nodes that have these rules.
    pub present_on: Vec<String>,
    /// Nodes that lack them.
    pub missing_on: Vec<String>,
    /// Chains declared only on `present_on` (the whole chain drifted).
    pub chains: Vec<String>,
    /// The rules and declarations, in dump order.
    pub lines: Vec<DriftLine>,
}

/// The whole fleet report.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// Whether kube-proxy endpoints were left out.
    pub ignore_endpoints: bool,
    /// Per node, by name.
    pub nodes: Vec<NodeReport>,
    /// Groups of identical nodes, largest first.
    pub groups: Vec<GroupReport>,
    /// Rules not on every readable node, fewest nodes first.
    pub drift: Vec<DriftItem>,
    /// Nodes in small groups that differ from the largest.
    pub outliers: Vec<String>,
}

impl FleetReport {
    /// True when every node was read, they all agree and none has problems.
    pub fn is_uniform(&self) -> bool {
        self.groups.len() <= 1
            && self
                .nodes
                .iter()
                .all(|n| n.unreadable.is_none() && n.errors == 0)
    }
}

/// One node reduced to what the report needs.
struct Print {
    report: NodeReport,
    fingerprint: u128,
    keys: Vec<u64>,
}

/// The text of items seen for the first time: hash -> (order, table, chain, text).
type Texts = HashMap<u64, (u64, Box<str>, Box<str>, Box<str>)>;

/// Whether a rule or chain is left out with `ignore_endpoints`.
fn is_endpoint_chain(name: &str) -> bool {
    name.starts_with("KUBE-SEP-")
}

/// The line of a rule as written, without `[packets:bytes]` in front.
fn without_counters(text: &str) -> &str {
    if text.starts_with('[')
        && let Some(end) = text.find(']')
    {
        return text[end + 1..].trim_start();
    }
    text
}

/// Walks the items of a ruleset (chain declarations and rules, in order,
/// counters left out): `(table, chain, text)`. A rule is taken as written
/// (the text is the same across nodes run by the same tools), unless it
/// carries `-c` counters inside, when it is written out again without
/// them.
fn for_each_item(rs: &Ruleset, opts: &FleetOptions, mut f: impl FnMut(&str, &str, &str)) {
    let mut buf = String::new();
    for t in &rs.tables {
        for c in &t.chains {
            if opts.ignore_endpoints && is_endpoint_chain(&c.name) {
                continue;
            }
            buf.clear();
            buf.push(':');
            buf.push_str(&c.name);
            buf.push(' ');
            buf.push_str(c.policy.as_deref().unwrap_or("-"));
            f(&t.name, &c.name, &buf);
        }
        for c in &t.chains {
            if opts.ignore_endpoints && is_endpoint_chain(&c.name) {
                continue;
            }
            for r in &c.rules {
                if opts.ignore_endpoints
                    && r.target()
                        .is_some_and(|tg| is_kube_chain(tg.name) && is_endpoint_chain(tg.name))
                {
                    continue;
                }
                let raw = without_counters(&r.text);
                if r.counters.is_some() && !r.text.starts_with('[') {
                    buf.clear();
                    buf.push_str("-A ");
                    buf.push_str(&c.name);
                    push_rule_body(&mut buf, r);
                    f(&t.name, &c.name, &buf);
                } else {
                    f(&t.name, &c.name, raw);
                }
            }
        }
    }
    // nftables tables, named `FAMILY NAME`: chain heads, rules and set
    // elements in their normalised text.
    crate::diff::nft::items_of(&rs.nft, f);
}

fn item_hash(table: &str, text: &str) -> u64 {
    let mut h = Xxh3::new();
    h.update(table.as_bytes());
    h.update(b"\0");
    h.update(text.as_bytes());
    h.digest()
}

/// The fingerprint and sorted item hashes of a ruleset; duplicates of an
/// item get distinct hashes so that counts matter.
fn fingerprint(rs: &Ruleset, opts: &FleetOptions) -> (u128, Vec<u64>) {
    let mut whole = Xxh3::new();
    let mut keys = Vec::with_capacity(rs.rule_count() + rs.chain_count());
    for_each_item(rs, opts, |table, _chain, text| {
        whole.update(table.as_bytes());
        whole.update(b"\0");
        whole.update(text.as_bytes());
        whole.update(b"\n");
        keys.push(item_hash(table, text));
    });
    keys.sort_unstable();
    // The n-th copy of an item (n > 0) gets its own key, as record_texts
    // gives it.
    let mut fixed = false;
    let mut i = 1;
    while i < keys.len() {
        if keys[i] == keys[i - 1] {
            let h = keys[i - 1];
            let mut n = 1u64;
            while i < keys.len() && keys[i] == h {
                keys[i] = dup_key(h, n);
                n += 1;
                i += 1;
            }
            fixed = true;
        } else {
            i += 1;
        }
    }
    if fixed {
        keys.sort_unstable();
    }
    (whole.digest128(), keys)
}

/// The key of the `n`-th copy of an item whose key is `h`.
fn dup_key(h: u64, n: u64) -> u64 {
    xxh3_64(&[h.to_le_bytes(), n.to_le_bytes()].concat())
}

/// Records the text of every item the fleet has not seen yet.
fn record_texts(rs: &Ruleset, opts: &FleetOptions, texts: &Mutex<Texts>) {
    let mut seen: HashMap<u64, u32, rustc_hash::FxBuildHasher> = HashMap::default();
    let mut fresh = Vec::new();
    for_each_item(rs, opts, |table, chain, text| {
        let h = item_hash(table, text);
        let n = seen.entry(h).or_insert(0);
        let k = if *n == 0 {
            h
        } else {
            dup_key(h, u64::from(*n))
        };
        *n += 1;
        fresh.push((k, table.into(), chain.into(), text.into()));
    });
    let mut t = texts.lock().unwrap_or_else(|e| e.into_inner());
    for (k, table, chain, text) in fresh {
        let order = t.len() as u64;
        t.entry(k).or_insert((order, table, chain, text));
    }
}

fn read_fill(n: &NodeInput) -> Option<ConntrackFill> {
    let path = n.conntrack.as_ref()?;
    let max = n
        .conntrack_max
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let mut fill = ConntrackFill {
        entries: 0,
        max,
        percent: None,
        error: None,
    };
    let name = path.display().to_string();
    match std::fs::read(path).map_err(|e| format!("{name}: {e}")) {
        Ok(bytes) => match crate::conntrack::parse_bytes(&bytes, &name) {
            Ok(crate::conntrack::Parsed::Entries(t)) => fill.entries = t.entries.len() as u64,
            Ok(crate::conntrack::Parsed::Stats(s)) => match s.total("entries") {
                Some(e) => fill.entries = e,
                None => fill.error = Some(format!("{name}: statistics without an entries count")),
            },
            Err(e) => fill.error = Some(e.to_string()),
        },
        Err(e) => fill.error = Some(e),
    }
    if let Some(m) = max.filter(|&m| m > 0)
        && fill.error.is_none()
    {
        fill.percent = Some((fill.entries as f64 * 1000.0 / m as f64).round() / 10.0);
    }
    Some(fill)
}

const SHOWN_PROBLEMS: usize = 5;

/// Reads one node; its model is dropped before this returns.
fn read_node(
    n: &NodeInput,
    opts: &FleetOptions,
    known: &Mutex<HashMap<u128, ()>>,
    texts: &Mutex<Texts>,
) -> Print {
    let file = n.rules.display().to_string();
    let mut report = NodeReport {
        name: n.name.clone(),
        file: file.clone(),
        group: 0,
        family: Family::Ipv4,
        tables: 0,
        chains: 0,
        rules: 0,
        errors: 0,
        warnings: 0,
        problems: Vec::new(),
        conntrack: read_fill(n),
        outlier: false,
        unreadable: None,
    };
    let bytes = match std::fs::read(&n.rules) {
        Ok(b) => b,
        Err(e) => {
            report.unreadable = Some(format!("{file}: {e}"));
            return Print {
                report,
                fingerprint: 0,
                keys: Vec::new(),
            };
        }
    };
    let popts = ParseOptions {
        source_name: file.clone(),
        threads: Some(1),
        ..Default::default()
    };
    let parsed = match parse_owned(bytes, &popts) {
        Ok(p) => p,
        Err(e) => {
            report.unreadable = Some(e.to_string());
            return Print {
                report,
                fingerprint: 0,
                keys: Vec::new(),
            };
        }
    };
    let rs = &parsed.ruleset;
    report.family = rs.family;
    report.tables = rs.tables.len() + rs.nft.tables.len();
    report.chains = rs.chain_count() + rs.nft.chain_count();
    report.rules = rs.rule_count() + rs.nft.rule_count();
    report.errors = parsed.error_count();
    report.warnings = parsed.problems.len() - report.errors;
    report.problems = parsed
        .problems
        .iter()
        .take(SHOWN_PROBLEMS)
        .map(|p| {
            format!(
                "{}:{}:{}: {}: {}",
                file, p.line, p.column, p.severity, p.message
            )
        })
        .collect();
    let (fp, keys) = fingerprint(rs, opts);
    let first = known
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(fp, ())
        .is_none();
    if first {
        record_texts(rs, opts, texts);
    }
    Print {
        report,
        fingerprint: fp,
        keys,
    }
}

/// Reads every node and compares them.
pub fn fleet(nodes: &[NodeInput], opts: &FleetOptions) -> FleetReport {
    let workers = if opts.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    } else {
        opts.workers
    }
    .clamp(1, nodes.len().max(1));
    let next = AtomicUsize::new(0);
    let known = Mutex::new(HashMap::new());
    let texts: Mutex<Texts> = Mutex::new(HashMap::new());
    // Groups are built as nodes finish, so that only one key list per
    // distinct ruleset is ever held.
    struct Building {
        nodes: Vec<usize>,
        keys: Vec<u64>,
    }
    let groups: Mutex<HashMap<u128, Building>> = Mutex::new(HashMap::new());
    let reports: Mutex<Vec<Option<NodeReport>>> = Mutex::new(vec![None; nodes.len()]);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(n) = nodes.get(i) else { break };
                    let p = read_node(n, opts, &known, &texts);
                    if p.report.unreadable.is_none() {
                        let mut g = groups.lock().unwrap_or_else(|e| e.into_inner());
                        g.entry(p.fingerprint)
                            .or_insert_with(|| Building {
                                nodes: Vec::new(),
                                keys: p.keys,
                            })
                            .nodes
                            .push(i);
                    }
                    reports.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(p.report);
                }
            });
        }
    });
    let mut nodes_out: Vec<NodeReport> = reports
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let texts = texts.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut built: Vec<(u128, Building)> = groups
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .collect();
    for (_, b) in &mut built {
        b.nodes.sort_unstable();
    }
    // Largest first, then by first node name: deterministic.
    built.sort_by(|a, b| {
        b.1.nodes
            .len()
            .cmp(&a.1.nodes.len())
            .then(a.1.nodes[0].cmp(&b.1.nodes[0]))
    });
    for (gi, (_, b)) in built.iter().enumerate() {
        for &i in &b.nodes {
            nodes_out[i].group = gi + 1;
        }
    }

    let readable = built.iter().map(|b| b.1.nodes.len()).sum::<usize>();
    let names: Vec<String> = nodes_out.iter().map(|n| n.name.clone()).collect();
    let name_of = |i: usize| names[i].clone();
    // Outliers: nodes in a group that is not the largest and holds at most
    // a tenth of the readable nodes (at least one).
    let small = (readable / 10).max(1);
    let mut outliers = Vec::new();
    if built.len() > 1 {
        for (_, b) in built.iter().skip(1) {
            if b.nodes.len() <= small && b.nodes.len() < built[0].1.nodes.len() {
                outliers.extend(b.nodes.iter().copied());
            }
        }
    }
    outliers.sort_unstable();
    for &i in &outliers {
        nodes_out[i].outlier = true;
    }

    let base: &[u64] = built.first().map_or(&[], |b| &b.1.keys);
    let groups_out: Vec<GroupReport> = built
        .iter()
        .enumerate()
        .map(|(gi, (fp, b))| {
            let (missing, extra) = sorted_difference(base, &b.keys);
            GroupReport {
                id: gi + 1,
                fingerprint: format!("{fp:032x}"),
                nodes: b.nodes.iter().map(|&i| name_of(i)).collect(),
                items: b.keys.len(),
                missing,
                extra,
                order_only: gi > 0 && missing == 0 && extra == 0,
            }
        })
        .collect();

    let drift = drift(
        &built
            .iter()
            .map(|b| &b.1)
            .map(|b| (&b.nodes, &b.keys))
            .collect::<Vec<_>>(),
        &texts,
        &nodes_out,
    );
    FleetReport {
        ignore_endpoints: opts.ignore_endpoints,
        outliers: outliers.iter().map(|&i| name_of(i)).collect(),
        nodes: nodes_out,
        groups: groups_out,
        drift,
    }
}

/// `(in a not in b, in b not in a)` of two sorted lists.
fn sorted_difference(a: &[u64], b: &[u64]) -> (usize, usize) {
    let (mut i, mut j, mut only_a, mut only_b) = (0, 0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                only_a += 1;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                only_b += 1;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    (only_a + a.len() - i, only_b + b.len() - j)
}

/// Items not in every group, collected by the set of groups that have them.
fn drift(
    groups: &[(&Vec<usize>, &Vec<u64>)],
    texts: &Texts,
    nodes: &[NodeReport],
) -> Vec<DriftItem> {
    if groups.len() < 2 {
        return Vec::new();
    }
    let mut count: HashMap<u64, u32, rustc_hash::FxBuildHasher> = HashMap::default();
    for (_, keys) in groups {
        for &k in keys.iter() {
            *count.entry(k).or_insert(0) += 1;
        }
    }
    let all = groups.len() as u32;
    let mut by_set: BTreeMap<Vec<usize>, Vec<u64>> = BTreeMap::new();
    let mut sets: HashMap<u64, Vec<usize>, rustc_hash::FxBuildHasher> = HashMap::default();
    for (gi, (_, keys)) in groups.iter().enumerate() {
        for &k in keys.iter() {
            if count[&k] < all {
                sets.entry(k).or_default().push(gi);
            }
        }
    }
    for (k, set) in sets {
        by_set.entry(set).or_default().push(k);
    }
    let mut items: Vec<DriftItem> = by_set
        .into_iter()
        .map(|(set, mut keys)| {
            keys.sort_by_key(|k| texts.get(k).map_or(u64::MAX, |t| t.0));
            let mut present: Vec<usize> = set
                .iter()
                .flat_map(|&g| groups[g].0.iter().copied())
                .collect();
            present.sort_unstable();
            let mut missing: Vec<usize> = groups
                .iter()
                .enumerate()
                .filter(|(g, _)| !set.contains(g))
                .flat_map(|(_, (n, _))| n.iter().copied())
                .collect();
            missing.sort_unstable();
            let lines: Vec<DriftLine> = keys
                .iter()
                .filter_map(|k| texts.get(k))
                .map(|(_, table, chain, text)| DriftLine {
                    table: table.to_string(),
                    chain: chain.to_string(),
                    text: text.to_string(),
                })
                .collect();
            let chains = lines
                .iter()
                .filter(|l| l.text.starts_with(':'))
                .map(|l| format!("{} {}", l.table, l.chain))
                .collect();
            DriftItem {
                present_on: present.iter().map(|&i| nodes[i].name.clone()).collect(),
                missing_on: missing.iter().map(|&i| nodes[i].name.clone()).collect(),
                chains,
                lines,
            }
        })
        .collect();
    items.sort_by(|a, b| {
        let side = |d: &DriftItem| d.present_on.len().min(d.missing_on.len());
        side(a)
            .cmp(&side(b))
            .then_with(|| a.present_on.cmp(&b.present_on))
    });
    items
}

/// The report as text.
pub fn write_text(w: &mut dyn std::io::Write, r: &FleetReport, all: bool) -> std::io::Result<()> {
    let readable = r.nodes.iter().filter(|n| n.unreadable.is_none()).count();
    writeln!(
        w,
        "{} nodes, {} readable, {} group{} of identical rules{}",
        r.nodes.len(),
        readable,
        r.groups.len(),
        if r.groups.len() == 1 { "" } else { "s" },
        if r.ignore_endpoints {
            " (kube-proxy endpoints ignored)"
        } else {
            ""
        }
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "{:<24} {:>5} {:>7} {:>8} {:>6} {:>8}  conntrack",
        "node", "group", "chains", "rules", "errors", "warnings"
    )?;
    for n in &r.nodes {
        if let Some(why) = &n.unreadable {
            writeln!(w, "{:<24} unreadable: {why}", n.name)?;
            continue;
        }
        let ct = match &n.conntrack {
            None => "-".to_string(),
            Some(c) if c.error.is_some() => {
                format!("unreadable: {}", c.error.as_deref().unwrap_or(""))
            }
            Some(c) => match (c.max, c.percent) {
                (Some(m), Some(p)) => format!("{} of {m} ({p:.1}%)", c.entries),
                _ => format!("{} entries", c.entries),
            },
        };
        writeln!(
            w,
            "{:<24} {:>5} {:>7} {:>8} {:>6} {:>8}  {ct}{}",
            n.name,
            n.group,
            n.chains,
            n.rules,
            n.errors,
            n.warnings,
            if n.outlier { "  OUTLIER" } else { "" }
        )?;
        for p in &n.problems {
            writeln!(w, "    {p}")?;
        }
    }
    writeln!(w)?;
    for g in &r.groups {
        let how = if g.id == 1 {
            "the largest".to_string()
        } else if g.order_only {
            "same rules as group 1 in another order".to_string()
        } else {
            format!("{} missing, {} extra against group 1", g.missing, g.extra)
        };
        writeln!(
            w,
            "group {}: {} node{} ({how}): {}",
            g.id,
            g.nodes.len(),
            if g.nodes.len() == 1 { "" } else { "s" },
            list(&g.nodes, 12)
        )?;
    }
    if !r.outliers.is_empty() {
        writeln!(w, "outliers: {}", r.outliers.join(", "))?;
    }
    if r.drift.is_empty() {
        if r.groups.len() > 1 {
            writeln!(w, "drift: none (the groups differ only in rule order)")?;
        } else {
            writeln!(w, "drift: none")?;
        }
        return Ok(());
    }
    writeln!(w)?;
    writeln!(
        w,
        "drift: {} set{}",
        r.drift.len(),
        if r.drift.len() == 1 { "" } else { "s" }
    )?;
    const SHOWN: usize = 12;
    for d in &r.drift {
        if d.present_on.len() <= d.missing_on.len() {
            writeln!(
                w,
                "only on {} ({}):",
                list(&d.present_on, 12),
                d.present_on.len()
            )?;
        } else {
            writeln!(
                w,
                "missing on {} ({}):",
                list(&d.missing_on, 12),
                d.missing_on.len()
            )?;
        }
        for c in &d.chains {
            writeln!(w, "  chain {c}")?;
        }
        let shown = if all {
            d.lines.len()
        } else {
            SHOWN.min(d.lines.len())
        };
        for l in &d.lines[..shown] {
            writeln!(w, "  {:<7} {}", l.table, l.text)?;
        }
        if shown < d.lines.len() {
            writeln!(
                w,
                "  ... {} more (--all or --json lists them)",
                d.lines.len() - shown
            )?;
        }
    }
    Ok(())
}

fn list(names: &[String], max: usize) -> String {
    if names.len() <= max {
        names.join(", ")
    } else {
        format!(
            "{}, ... {} more",
            names[..max].join(", "),
            names.len() - max
        )
    }
}
