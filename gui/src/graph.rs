//! Per-chain facts the side panels and the search show: decoded kube-proxy
//! service names and how many rules jump to each chain. Groups and layout
//! come from the library (see [`crate::scene`]).

use iptviz::model::{Table, TargetKind};

/// The derived facts about one table.
#[derive(Debug, Clone, Default)]
pub struct TableGraph {
    /// `namespace/service:port` for kube-proxy chains.
    pub service: Vec<Option<String>>,
    /// How many rules jump to each chain.
    pub referenced: Vec<u32>,
    /// Rules in the table (the table list shows it every frame; summing
    /// 40,000 chains' rules a frame cost a cluster-sized table 0.3 ms).
    pub rules: usize,
}

impl TableGraph {
    /// Computes the facts of `table`.
    pub fn build(table: &Table) -> TableGraph {
        let n = table.chains.len();
        let mut service: Vec<Option<String>> = vec![None; n];
        let mut referenced = vec![0u32; n];
        for (ci, chain) in table.chains.iter().enumerate() {
            for rule in &chain.rules {
                let Some(t) = rule.target() else { continue };
                if t.kind != TargetKind::Chain {
                    continue;
                }
                let Some(to) = table.chain_position(t.name) else {
                    continue;
                };
                referenced[to] += 1;
                if service[to].is_none() && is_service_chain(t.name) {
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
        TableGraph {
            service,
            referenced,
            rules: table.rule_count(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use iptviz::parse::{ParseOptions, parse_str};

    #[test]
    fn services_and_references() {
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
        assert_eq!(g.referenced[1], 2);
        assert_eq!(g.referenced[2], 1);
        assert_eq!(g.service[2].as_deref(), Some("ns/svc0:http"));
        assert_eq!(g.service[1], None, "KUBE-SERVICES is not one service");
    }
}
