//! What the canvas needs to know about one table: which chain jumps where,
//! which chains form a group, and decoded kube-proxy service names.
//!
//! Interim: the library's `graph` module (petgraph chain graph, groups,
//! kube-proxy labels) is being written on another branch. This file is the
//! only place that computes those things for the GUI, so it can be swapped.

use std::collections::HashMap;

use iptviz::model::{Table, TargetKind};

/// Fewest chains that share a prefix before they are folded into a group.
pub const GROUP_MIN: usize = 6;

/// Jumps from one chain to another, merged over all rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainEdge {
    /// Index of the jumping chain in `Table::chains`.
    pub from: u32,
    /// Index of the target chain.
    pub to: u32,
    /// Every rule is a `-g`.
    pub goto: bool,
    /// Number of rules making this jump.
    pub rules: u32,
    /// Packets counted by those rules.
    pub packets: u64,
    /// Position of the first such rule in the jumping chain.
    pub first_rule: u32,
}

/// Chains whose names differ only in a hash-like suffix (`KUBE-SEP-XXXX`).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The common prefix, e.g. `KUBE-SEP-`.
    pub prefix: String,
    /// Member chains, in declaration order.
    pub members: Vec<u32>,
}

/// The derived facts about one table.
#[derive(Debug, Clone, Default)]
pub struct TableGraph {
    /// Merged chain-to-chain jumps.
    pub edges: Vec<ChainEdge>,
    /// Group of each chain, if any.
    pub group_of: Vec<Option<u32>>,
    /// The groups.
    pub groups: Vec<Group>,
    /// `namespace/service:port` for kube-proxy chains.
    pub service: Vec<Option<String>>,
    /// How many rules jump to each chain.
    pub referenced: Vec<u32>,
    /// Largest packet count of any edge (for heat).
    pub max_packets: u64,
}

impl TableGraph {
    /// Computes the graph facts of `table`.
    pub fn build(table: &Table) -> TableGraph {
        let n = table.chains.len();
        let mut edges: Vec<ChainEdge> = Vec::new();
        let mut edge_at: HashMap<(u32, u32), usize> = HashMap::new();
        let mut service: Vec<Option<String>> = vec![None; n];
        let mut referenced = vec![0u32; n];
        for (ci, chain) in table.chains.iter().enumerate() {
            for (ri, rule) in chain.rules.iter().enumerate() {
                let Some(t) = &rule.target else { continue };
                if t.kind != TargetKind::Chain {
                    continue;
                }
                let Some(to) = table.chain_position(&t.name) else {
                    continue;
                };
                referenced[to] += 1;
                let packets = rule.counters.map(|c| c.packets).unwrap_or(0);
                let key = (ci as u32, to as u32);
                match edge_at.get(&key) {
                    Some(&i) => {
                        let e = &mut edges[i];
                        e.rules += 1;
                        e.packets += packets;
                        e.goto &= t.goto;
                    }
                    None => {
                        edge_at.insert(key, edges.len());
                        edges.push(ChainEdge {
                            from: ci as u32,
                            to: to as u32,
                            goto: t.goto,
                            rules: 1,
                            packets,
                            first_rule: ri as u32,
                        });
                    }
                }
                if service[to].is_none() && is_service_chain(&t.name) {
                    service[to] = rule.comment().as_deref().and_then(service_name);
                }
            }
            // An endpoint chain names its service in its own rules.
            if service[ci].is_none() && is_service_chain(&chain.name) {
                service[ci] = chain
                    .rules
                    .iter()
                    .find_map(|r| r.comment().as_deref().and_then(service_name));
            }
        }
        let max_packets = edges.iter().map(|e| e.packets).max().unwrap_or(0);
        let (group_of, groups) = find_groups(table);
        TableGraph {
            edges,
            group_of,
            groups,
            service,
            referenced,
            max_packets,
        }
    }

    /// Heat of a packet count in 0..=1 (log scale against the busiest edge).
    pub fn heat(&self, packets: u64) -> f32 {
        if packets == 0 || self.max_packets == 0 {
            return 0.0;
        }
        ((packets as f64).ln_1p() / (self.max_packets as f64).ln_1p()) as f32
    }
}

/// kube-proxy's per-service and per-endpoint chains.
fn is_service_chain(name: &str) -> bool {
    [
        "KUBE-SVC-",
        "KUBE-SVL-",
        "KUBE-SEP-",
        "KUBE-FW-",
        "KUBE-EXT-",
        "KUBE-XLB-",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// `default/kubernetes:https cluster IP` -> `default/kubernetes:https`.
fn service_name(comment: &str) -> Option<String> {
    let first = comment.split_whitespace().next()?;
    first.contains('/').then(|| first.to_string())
}

/// The prefix of a name whose last part looks generated (a hash, an id).
pub fn group_prefix(name: &str) -> Option<&str> {
    let cut = name.rfind(['-', '_'])?;
    let (prefix, suffix) = (&name[..=cut], &name[cut + 1..]);
    if prefix.len() < 2 || suffix.len() < 4 {
        return None;
    }
    let alnum = suffix.chars().all(|c| c.is_ascii_alphanumeric());
    let has_digit = suffix.chars().any(|c| c.is_ascii_digit());
    let upper_hash = suffix.len() >= 8
        && suffix
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    (alnum && (has_digit || upper_hash)).then_some(prefix)
}

fn find_groups(table: &Table) -> (Vec<Option<u32>>, Vec<Group>) {
    let mut by_prefix: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (i, c) in table.chains.iter().enumerate() {
        if c.builtin {
            continue;
        }
        if let Some(p) = group_prefix(&c.name) {
            let members = by_prefix.entry(p).or_default();
            if members.is_empty() {
                order.push(p);
            }
            members.push(i as u32);
        }
    }
    let mut group_of = vec![None; table.chains.len()];
    let mut groups = Vec::new();
    for p in order {
        let members = &by_prefix[p];
        if members.len() < GROUP_MIN {
            continue;
        }
        let g = groups.len() as u32;
        for &m in members {
            group_of[m as usize] = Some(g);
        }
        groups.push(Group {
            prefix: p.to_string(),
            members: members.clone(),
        });
    }
    (group_of, groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iptviz::parse::{ParseOptions, parse_str};

    #[test]
    fn prefixes_of_generated_names() {
        assert_eq!(group_prefix("KUBE-SEP-ERIFXISQEP7F7OF4"), Some("KUBE-SEP-"));
        assert_eq!(group_prefix("cali-fw-cali1234abcd"), Some("cali-fw-"));
        assert_eq!(group_prefix("DOCKER-ISOLATION-STAGE-1"), None);
        assert_eq!(group_prefix("DOCKER-USER"), None);
        assert_eq!(group_prefix("INPUT"), None);
    }

    #[test]
    fn edges_groups_and_services() {
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n");
        for i in 0..7 {
            text.push_str(&format!(":KUBE-SVC-AAAAAAAAAAAA{i:04} - [0:0]\n"));
        }
        text.push_str("[5:300] -A PREROUTING -j KUBE-SERVICES\n");
        text.push_str("[2:100] -A PREROUTING -j KUBE-SERVICES\n");
        for i in 0..7 {
            text.push_str(&format!(
                "-A KUBE-SERVICES -d 10.0.0.{i}/32 -m comment --comment \"ns/svc{i}:http cluster IP\" -j KUBE-SVC-AAAAAAAAAAAA{i:04}\n"
            ));
        }
        text.push_str("COMMIT\n");
        let parsed = parse_str(&text, &ParseOptions::lenient("t")).expect("parses");
        let g = TableGraph::build(&parsed.ruleset.tables[0]);
        assert_eq!(g.edges.len(), 8);
        assert_eq!(g.edges[0].rules, 2);
        assert_eq!(g.edges[0].packets, 7);
        assert_eq!(g.groups.len(), 1);
        assert_eq!(g.groups[0].members.len(), 7);
        assert_eq!(g.service[2].as_deref(), Some("ns/svc0:http"));
        assert_eq!(g.service[1], None, "KUBE-SERVICES is not one service");
        assert_eq!(g.group_of[1], None);
        assert!(g.heat(7) > 0.99);
    }
}
