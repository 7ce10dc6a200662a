//! The hook-order picture (`render --flow`): the built-in chains of the
//! tables present, placed along the packet paths through the host.

use crate::diagram::{ChainRef, FlowPlan, View, ViewEdge, ViewNode, ViewNodeKind};
use crate::flow::{Hook, Stage, StageKind, present_stages};
use crate::graph::EdgeKind;
use crate::model::{Ruleset, Str};

fn point(id: &str, lines: &[&str], title: &str) -> ViewNode {
    ViewNode {
        id: format!("flow/{id}"),
        kind: ViewNodeKind::Point,
        table: Str::default(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        rows: Vec::new(),
        title: title.to_string(),
        members: Vec::new(),
        highlight: false,
        chain: None,
        group: None,
    }
}

/// A table's step at a hook. Its box is named by the table alone: the
/// hook's frame (or, in DOT, its cluster) names the chain.
fn stage_node(rs: &Ruleset, s: &Stage, counters: bool) -> ViewNode {
    let hook = s.hook.chain();
    match s.kind {
        StageKind::Table(t) => {
            let chain = rs.table(t).and_then(|tb| tb.chain(hook));
            let mut lines = vec![t.to_string()];
            match chain {
                Some(c) => {
                    let n = c.rules.len();
                    lines.push(format!("{n} rule{}", if n == 1 { "" } else { "s" }));
                    if let Some(p) = &c.policy {
                        lines.push(format!("policy {p}"));
                        // A built-in chain's counters count the packets
                        // that reached its policy: shown right under it.
                        if counters && let Some(k) = c.counters {
                            lines.push(format!("{} pkts", k.packets));
                        }
                    }
                }
                None => lines.push("not in dump".to_string()),
            }
            if t == "nat" {
                // Later packets of a connection reuse its NAT binding.
                lines.push("new connections only".into());
            }
            ViewNode {
                id: format!("{t}/{hook}"),
                kind: ViewNodeKind::Builtin,
                table: t.into(),
                lines,
                rows: Vec::new(),
                title: format!(
                    "table {t}, chain {hook}, priority {}{}",
                    s.priority,
                    if t == "nat" {
                        "; only the first packet of a connection passes here"
                    } else {
                        ""
                    }
                ),
                members: Vec::new(),
                highlight: false,
                chain: chain.map(|c| ChainRef {
                    table: t.into(),
                    chain: c.name.clone(),
                }),
                group: None,
            }
        }
        StageKind::Nft { table, chain } => {
            let t = &rs.nft.tables[table as usize];
            let c = &t.chains[chain as usize];
            let tname = crate::nft::project::table_label(t);
            let label = crate::nft::project::base_chain_label(c);
            let n = c.rules.len();
            let mut lines = vec![
                tname.clone(),
                format!("{} · priority {}", c.name, s.priority),
                format!("{n} rule{}", if n == 1 { "" } else { "s" }),
            ];
            if let Some(b) = &c.base {
                lines.push(format!(
                    "policy {}",
                    b.policy.map_or("accept", |p| p.as_str())
                ));
            }
            ViewNode {
                id: format!("{tname}/{label}"),
                kind: ViewNodeKind::Builtin,
                table: tname.as_str().into(),
                lines,
                rows: Vec::new(),
                title: match &c.base {
                    Some(b) => format!(
                        "nft table {tname}, chain {}: {}",
                        c.name,
                        crate::nft::display::base_chain_line(b)
                    ),
                    None => format!("nft table {tname}, chain {label}"),
                },
                members: Vec::new(),
                highlight: false,
                chain: None,
                group: None,
            }
        }
        StageKind::Conntrack => point(
            &format!("{hook}/conntrack"),
            &["conntrack"],
            "connection tracking: look up or create the entry (priority -200)",
        ),
        StageKind::Confirm => point(
            &format!("{hook}/confirm"),
            &["conntrack", "confirm"],
            "the new entry enters the conntrack table (priority INT_MAX)",
        ),
    }
}

/// The hook-order view of a ruleset: the built-in chains of the tables
/// present, along the three packet paths, as a drawable [`View`] with the
/// [`FlowPlan`] that places it.
pub fn flow_view(rs: &Ruleset, counters: bool, title: &str) -> View {
    let mut v = View {
        title: title.to_string(),
        ..Default::default()
    };
    let add = |v: &mut View, n: ViewNode| -> usize {
        v.nodes.push(n);
        v.nodes.len() - 1
    };
    let stages = |v: &mut View, hook: Hook| -> Vec<usize> {
        present_stages(rs, hook)
            .iter()
            .map(|s| add(v, stage_node(rs, s, counters)))
            .collect()
    };
    // Nodes in the order a packet meets them, which is also the DOT order.
    let wire_in = add(
        &mut v,
        point(
            "in",
            &["packet in", "from network"],
            "a packet arrives from the network",
        ),
    );
    let pre = stages(&mut v, Hook::Prerouting);
    let routing = add(
        &mut v,
        point(
            "routing",
            &["routing", "decision"],
            "local or forward? (after DNAT in nat PREROUTING)",
        ),
    );
    let input = stages(&mut v, Hook::Input);
    let local = add(
        &mut v,
        point("local", &["local process"], "a socket of this host"),
    );
    let out_routing = add(
        &mut v,
        point(
            "out-routing",
            &["output routing"],
            "route lookup for locally generated packets",
        ),
    );
    let output = stages(&mut v, Hook::Output);
    let reroute = add(
        &mut v,
        point(
            "reroute",
            &["reroute check"],
            "a mark or address changed in OUTPUT may change the route",
        ),
    );
    let forward = stages(&mut v, Hook::Forward);
    let post = stages(&mut v, Hook::Postrouting);
    let wire_out = add(
        &mut v,
        point(
            "out",
            &["packet out", "to network"],
            "the packet leaves to the network",
        ),
    );

    // `from`, then the steps, then `to`; the label goes on the first arrow.
    let through = |v: &mut View, from: usize, steps: &[usize], to: usize, label: &str| {
        let mut prev = from;
        for (k, &n) in steps.iter().chain(std::iter::once(&to)).enumerate() {
            let label = if k == 0 { label } else { "" };
            v.edges.push(ViewEdge {
                from: prev,
                to: n,
                kind: EdgeKind::Jump,
                from_row: None,
                label: label.to_string(),
                title: label.to_string(),
                rules: 0,
                packets: None,
                weight: 1.0,
                highlight: false,
            });
            prev = n;
        }
    };
    let post_first = post.first().copied().unwrap_or(wire_out);
    let post_rest = post.get(1..).unwrap_or(&[]);
    through(&mut v, wire_in, &pre, routing, "");
    through(&mut v, routing, &input, local, "for this host");
    through(&mut v, local, &[], out_routing, "sent by this host");
    through(&mut v, out_routing, &output, reroute, "");
    let forwarded = if forward.is_empty() {
        "forwarded (no FORWARD chain)"
    } else {
        "forwarded"
    };
    through(&mut v, routing, &forward, post_first, forwarded);
    through(&mut v, reroute, &[], post_first, "");
    if !post.is_empty() {
        through(&mut v, post_first, post_rest, wire_out, "");
    }
    v.flow = Some(FlowPlan {
        hooks: vec![
            (Hook::Prerouting, pre),
            (Hook::Input, input),
            (Hook::Forward, forward),
            (Hook::Output, output),
            (Hook::Postrouting, post),
        ],
        wire_in,
        routing,
        local,
        out_routing,
        reroute,
        wire_out,
    });
    v
}
