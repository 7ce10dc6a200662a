//! Copies of shared chains: a small user chain called from many chains
//! (KUBE-MARK-MASQ, a logging chain) pulls an edge from every caller
//! across the picture to its one box. Drawn in full once, beside its
//! first caller, and as a small box marked as a copy beside each other
//! caller, it keeps every edge short.

use rustc_hash::FxHashMap as HashMap;

use crate::diagram::{View, ViewNode, ViewNodeKind};
use crate::graph::EdgeKind;

/// Callers a chain needs before it is copied.
pub const COPY_CALLERS: usize = 3;

/// Views with more chains than this get no copies unless asked for: copies
/// there would add thousands of boxes to a picture read zoomed in anyway.
pub const AUTO_COPIES_MAX_CHAINS: usize = 300;

/// Copies made in one view at most.
const MAX_COPIES: usize = 400;

/// The second label line of a copy.
pub const COPY_LINE: &str = "copy";

/// Whether `n` is a copy made here.
pub fn is_copy(n: &ViewNode) -> bool {
    n.kind == ViewNodeKind::User && n.lines.get(1).is_some_and(|l| l == COPY_LINE)
}

/// Replaces, in `view`, the calls into each shared chain from every caller
/// but the first with calls into a copy of its own (and its return edges
/// with ones from the copy). A chain is shared when it is a user chain
/// called from at least [`COPY_CALLERS`] other boxes and calls no chain
/// itself (its edges lead to targets only), so that a copy hides nothing
/// but those targets, which its full drawing shows. Returns the number of
/// copies made.
pub fn copy_shared_chains(view: &mut View) -> usize {
    if view.rules || !view.frames.is_empty() || view.flow.is_some() {
        return 0;
    }
    let n = view.nodes.len();
    // Callers in the order of their first edge, and whether each node
    // calls a chain.
    let mut callers: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut calls_chain = vec![false; n];
    for e in &view.edges {
        if !matches!(e.kind, EdgeKind::Jump | EdgeKind::Goto) || e.from == e.to {
            continue;
        }
        if !callers[e.to].contains(&e.from) {
            callers[e.to].push(e.from);
        }
        if !matches!(view.nodes[e.to].kind, ViewNodeKind::Target(_)) {
            calls_chain[e.from] = true;
        }
    }
    let mut made = 0;
    // (shared node, caller) -> copy
    let mut copy_of: HashMap<(usize, usize), usize> = HashMap::default();
    for shared in 0..n {
        let node = &view.nodes[shared];
        if node.kind != ViewNodeKind::User
            || calls_chain[shared]
            || callers[shared].len() < COPY_CALLERS
            || made + callers[shared].len() - 1 > MAX_COPIES
        {
            continue;
        }
        let name = node.lines.first().cloned().unwrap_or_default();
        let count = callers[shared].len();
        let first = callers[shared][0];
        let first_name = view.nodes[first].lines.first().cloned().unwrap_or_default();
        for &caller in &callers[shared][1..] {
            let original = &view.nodes[shared];
            let copy = ViewNode {
                id: format!("{}@{}", original.id, view.nodes[caller].id),
                kind: ViewNodeKind::User,
                table: original.table.clone(),
                lines: vec![name.clone(), COPY_LINE.to_string()],
                rows: Vec::new(),
                title: format!(
                    "{name}: a copy. The chain is called from {count} chains and drawn in full \
                     once, under {first_name}.\n{}",
                    original.title
                ),
                members: Vec::new(),
                highlight: original.highlight,
                // A copy names the chain it stands for, like the full box.
                chain: original.chain.clone(),
                group: original.group.clone(),
            };
            view.nodes.push(copy);
            copy_of.insert((shared, caller), view.nodes.len() - 1);
            made += 1;
        }
    }
    if made == 0 {
        return 0;
    }
    for e in &mut view.edges {
        match e.kind {
            EdgeKind::Jump | EdgeKind::Goto => {
                if let Some(&c) = copy_of.get(&(e.to, e.from)) {
                    e.to = c;
                }
            }
            EdgeKind::Return => {
                if let Some(&c) = copy_of.get(&(e.from, e.to)) {
                    e.from = c;
                }
            }
            EdgeKind::Policy => {}
        }
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{ChainGraph, ViewOptions, view};
    use crate::parse::{ParseOptions, parse_str};

    fn drawn(text: &str, copies: Option<bool>) -> View {
        let rs = parse_str(text, &ParseOptions::strict("t")).unwrap().ruleset;
        let g = ChainGraph::build(&rs);
        view(
            &rs,
            &g,
            &ViewOptions {
                copies,
                ..Default::default()
            },
        )
        .unwrap()
    }

    const SHARED: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n\
        :MARK-MASQ - [0:0]\n-A PREROUTING -p tcp -j A\n-A PREROUTING -p udp -j B\n\
        -A PREROUTING -p icmp -j C\n-A A -s 10.0.0.1 -j MARK-MASQ\n-A B -s 10.0.0.2 -j MARK-MASQ\n\
        -A C -s 10.0.0.3 -j MARK-MASQ\n-A MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n";

    fn named<'a>(v: &'a View, name: &str) -> Vec<&'a ViewNode> {
        v.nodes
            .iter()
            .filter(|n| n.lines.first().is_some_and(|l| l == name))
            .collect()
    }

    #[test]
    fn a_chain_called_from_three_chains_is_drawn_once_and_copied_twice() {
        let v = drawn(SHARED, Some(true));
        let boxes = named(&v, "MARK-MASQ");
        assert_eq!(boxes.len(), 3, "{:?}", v.nodes);
        assert_eq!(boxes.iter().filter(|n| is_copy(n)).count(), 2);
        // Each caller calls its own box, and only the full one leads to
        // the MARK target.
        let index = |n: &ViewNode| v.nodes.iter().position(|m| m.id == n.id).unwrap();
        let into: Vec<usize> = boxes.iter().map(|n| index(n)).collect();
        for caller in ["A", "B", "C"] {
            let ci = v.nodes.iter().position(|n| n.lines[0] == caller).unwrap();
            let targets: Vec<usize> = v
                .edges
                .iter()
                .filter(|e| e.from == ci && e.kind == EdgeKind::Jump)
                .map(|e| e.to)
                .collect();
            assert_eq!(targets.len(), 1, "{caller}");
            assert!(into.contains(&targets[0]), "{caller}");
        }
        let callers_of = |i: usize| v.edges.iter().filter(|e| e.to == i).count();
        for &i in &into {
            assert!(callers_of(i) >= 1, "every box is called");
        }
        let to_mark: Vec<usize> = v
            .edges
            .iter()
            .filter(|e| e.kind == EdgeKind::Jump && into.contains(&e.from))
            .map(|e| e.from)
            .collect();
        assert_eq!(to_mark.len(), 1, "only the full drawing leads on");
        assert!(!is_copy(&v.nodes[to_mark[0]]));
        // Return edges leave from the box the caller called.
        for e in v.edges.iter().filter(|e| e.kind == EdgeKind::Return) {
            assert!(
                v.edges
                    .iter()
                    .any(|c| c.kind == EdgeKind::Jump && c.from == e.to && c.to == e.from),
                "a return from a box its caller did not call"
            );
        }
        // Ids stay unique.
        let mut ids: Vec<&str> = v.nodes.iter().map(|n| n.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), v.nodes.len());
    }

    #[test]
    fn copies_are_left_out_when_asked_and_for_chains_that_call_chains() {
        assert_eq!(named(&drawn(SHARED, Some(false)), "MARK-MASQ").len(), 1);
        // MARK-MASQ calling a chain would hide that call in its copies.
        let calls = SHARED
            .replace(
                ":MARK-MASQ - [0:0]\n",
                ":MARK-MASQ - [0:0]\n:LOG-IT - [0:0]\n",
            )
            .replace(
                "-A MARK-MASQ -j MARK",
                "-A LOG-IT -j LOG\n-A MARK-MASQ -j LOG-IT\n-A MARK-MASQ -j MARK",
            );
        assert_eq!(named(&drawn(&calls, Some(true)), "MARK-MASQ").len(), 1);
        // Two callers are not enough.
        let two = SHARED.replace("-A C -s 10.0.0.3 -j MARK-MASQ\n", "");
        assert_eq!(named(&drawn(&two, Some(true)), "MARK-MASQ").len(), 1);
    }
}
