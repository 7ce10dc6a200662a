//! The netfilter hook order: which table's built-in chain sees a packet when,
//! on each path through the host (see NETFILTER.md). Shared by the flow view,
//! the packet tracer and the GUI.

use serde::Serialize;

pub use crate::diagram::{FlowPlan, flow_view};
use crate::model::Ruleset;

/// A netfilter hook (and the built-in chain name that goes with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Hook {
    /// Every packet arriving on an interface.
    Prerouting,
    /// Packets for this host, after routing.
    Input,
    /// Packets routed through this host.
    Forward,
    /// Packets sent by local processes.
    Output,
    /// Every packet leaving on an interface.
    Postrouting,
}

impl Hook {
    /// All hooks in the order a forwarded packet meets them, then OUTPUT.
    pub const ALL: [Hook; 5] = [
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
    ];

    /// The built-in chain name.
    pub fn chain(self) -> &'static str {
        match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }
}

/// One step of a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "table")]
pub enum StageKind {
    /// A table's built-in chain for this hook.
    Table(&'static str),
    /// Conntrack lookup or new entry (PREROUTING, OUTPUT).
    Conntrack,
    /// Conntrack confirm: the entry enters the table (POSTROUTING, INPUT).
    Confirm,
    /// A base chain of an nft table (positions in `Ruleset::nft`).
    Nft {
        /// Index of the table in `nft.tables`.
        table: u32,
        /// Index of the chain in the table's chains.
        chain: u32,
    },
}

/// A step at a hook with its kernel priority (lower runs first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Hook.
    pub hook: Hook,
    /// Priority from `enum nf_ip_hook_priorities`.
    pub priority: i32,
    /// What runs.
    #[serde(flatten)]
    pub kind: StageKind,
}

/// Every step the kernel runs at a hook, in priority order, whatever tables
/// are loaded.
pub fn hook_stages(hook: Hook) -> Vec<Stage> {
    steps(hook)
        .iter()
        .map(|&(priority, kind)| Stage {
            hook,
            priority,
            kind,
        })
        .collect()
}

/// The tables consulted at a hook, in priority order (the packet tracer
/// walks these).
pub fn hook_tables(hook: Hook) -> impl Iterator<Item = &'static str> {
    steps(hook).iter().filter_map(|(_, k)| match k {
        StageKind::Table(t) => Some(*t),
        _ => None,
    })
}

/// The kernel's priorities per hook (NETFILTER.md), the one place they live.
fn steps(hook: Hook) -> &'static [(i32, StageKind)] {
    use StageKind::*;
    match hook {
        Hook::Prerouting => &[
            (-300, Table("raw")),
            (-200, Conntrack),
            (-150, Table("mangle")),
            (-100, Table("nat")),
        ],
        Hook::Input => &[
            (-150, Table("mangle")),
            (0, Table("filter")),
            (50, Table("security")),
            (100, Table("nat")),
            (i32::MAX, Confirm),
        ],
        Hook::Forward => &[
            (-150, Table("mangle")),
            (0, Table("filter")),
            (50, Table("security")),
        ],
        Hook::Output => &[
            (-300, Table("raw")),
            (-200, Conntrack),
            (-150, Table("mangle")),
            (-100, Table("nat")),
            (0, Table("filter")),
            (50, Table("security")),
        ],
        Hook::Postrouting => &[
            (-150, Table("mangle")),
            (100, Table("nat")),
            (i32::MAX, Confirm),
        ],
    }
}

/// The steps at a hook for the tables present in `rs` (conntrack steps kept).
///
/// The base chains of nft tables of the ip, ip6 and inet families on this
/// hook are placed among them by priority. Where the kernel does not
/// simply follow the number, the picture follows the kernel: nat chains
/// run at the NAT core's slot (-100 on PREROUTING and OUTPUT, 100 on INPUT
/// and POSTROUTING; by their own priority among themselves), and at equal
/// priority the hook registered last runs first (nft chains after the
/// iptables tables, the later chain of a listing first).
pub fn present_stages(rs: &Ruleset, hook: Hook) -> Vec<Stage> {
    use crate::nft::model::{ChainType, Family as NftFamily, Hook as NftHook};
    // (where it runs, its own priority, iptables or nft, -position, stage)
    let mut keyed: Vec<(i32, i32, u8, i64, Stage)> = hook_stages(hook)
        .into_iter()
        .filter(|s| match s.kind {
            StageKind::Table(t) => rs.table(t).is_some(),
            _ => true,
        })
        .map(|s| (s.priority, s.priority, 1, 0, s))
        .collect();
    let nft_hook = match hook {
        Hook::Prerouting => NftHook::Prerouting,
        Hook::Input => NftHook::Input,
        Hook::Forward => NftHook::Forward,
        Hook::Output => NftHook::Output,
        Hook::Postrouting => NftHook::Postrouting,
    };
    let nat_slot = match hook {
        Hook::Prerouting | Hook::Output => -100,
        _ => 100,
    };
    let mut position = 0i64;
    for (ti, t) in rs.nft.tables.iter().enumerate() {
        if !matches!(t.family, NftFamily::Ip | NftFamily::Ip6 | NftFamily::Inet) {
            continue;
        }
        for (ci, c) in t.chains.iter().enumerate() {
            let Some(b) = &c.base else { continue };
            position += 1;
            if b.hook != nft_hook {
                continue;
            }
            let (Ok(table), Ok(chain)) = (u32::try_from(ti), u32::try_from(ci)) else {
                continue;
            };
            let own = b.priority.value;
            let runs = if b.kind == ChainType::Nat {
                nat_slot
            } else {
                own
            };
            let stage = Stage {
                hook,
                priority: own,
                kind: StageKind::Nft { table, chain },
            };
            keyed.push((runs, own, 0, -position, stage));
        }
    }
    keyed.sort_by_key(|&(runs, own, class, pos, _)| (runs, own, class, pos));
    keyed.into_iter().map(|(.., s)| s).collect()
}

/// A path a packet can take through the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PacketPath {
    /// Arriving for a local socket.
    Incoming,
    /// Routed through.
    Forwarded,
    /// Sent by a local process.
    Outgoing,
}

impl PacketPath {
    /// The hooks met, in order.
    pub fn hooks(self) -> &'static [Hook] {
        match self {
            PacketPath::Incoming => &[Hook::Prerouting, Hook::Input],
            PacketPath::Forwarded => &[Hook::Prerouting, Hook::Forward, Hook::Postrouting],
            PacketPath::Outgoing => &[Hook::Output, Hook::Postrouting],
        }
    }
}

/// Every step of a path, for the tables present in `rs`.
pub fn path_stages(rs: &Ruleset, path: PacketPath) -> Vec<Stage> {
    path.hooks()
        .iter()
        .flat_map(|&h| present_stages(rs, h))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseOptions, parse_str};

    /// nft base chains are drawn at their hooks among the iptables
    /// tables: by priority, nat chains at the NAT core's slot, and at equal
    /// priority the later registration first.
    #[test]
    fn nft_base_chains_take_their_place_among_the_iptables_tables() {
        let ipt = "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";
        let nft = "table inet t {\n chain early { type filter hook prerouting priority -250; }\n chain dnat { type nat hook prerouting priority -50; }\n chain tie { type filter hook prerouting priority -100; }\n chain fwd { type filter hook forward priority 0; }\n}\ntable arp a {\n chain in { type filter hook input priority 0; }\n}\n";
        let mut rs = parse_str(ipt, &ParseOptions::strict("ipt"))
            .unwrap()
            .ruleset;
        rs.nft = parse_str(nft, &ParseOptions::strict("nft"))
            .unwrap()
            .ruleset
            .nft;
        let names = |hook| -> Vec<String> {
            present_stages(&rs, hook)
                .iter()
                .map(|s| match s.kind {
                    StageKind::Table(t) => t.to_string(),
                    StageKind::Nft { table, chain } => rs.nft.tables[table as usize].chains
                        [chain as usize]
                        .name
                        .to_string(),
                    StageKind::Conntrack => "conntrack".into(),
                    StageKind::Confirm => "confirm".into(),
                })
                .collect()
        };
        assert_eq!(
            names(Hook::Prerouting),
            ["raw", "early", "conntrack", "tie", "nat", "dnat"]
        );
        assert_eq!(names(Hook::Forward), ["fwd"]);
        // The arp family has no place in the IP picture.
        assert_eq!(names(Hook::Input), ["nat", "confirm"]);
        let v = flow_view(&rs, false, "t");
        let plan = v.flow.as_ref().unwrap();
        let fwd = &plan.hooks[2];
        assert_eq!(fwd.0, Hook::Forward);
        assert_eq!(v.nodes[fwd.1[0]].lines[0], "inet t");
        assert!(
            v.edges
                .iter()
                .all(|e| e.label != "forwarded (no FORWARD chain)")
        );
    }

    #[test]
    fn order_follows_priorities_and_present_tables() {
        let text = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n\
                    *filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
        let rs = parse_str(text, &ParseOptions::lenient("t"))
            .unwrap()
            .ruleset;
        let input: Vec<StageKind> = present_stages(&rs, Hook::Input)
            .iter()
            .map(|s| s.kind)
            .collect();
        // nat INPUT runs after filter INPUT (priority 100 vs 0).
        assert_eq!(
            input,
            [
                StageKind::Table("filter"),
                StageKind::Table("nat"),
                StageKind::Confirm
            ]
        );
        for h in Hook::ALL {
            let p: Vec<i32> = hook_stages(h).iter().map(|s| s.priority).collect();
            assert!(p.windows(2).all(|w| w[0] < w[1]), "{h:?} out of order");
        }
        let fwd = path_stages(&rs, PacketPath::Forwarded);
        assert_eq!(fwd.first().map(|s| s.kind), Some(StageKind::Conntrack));
        let v = flow_view(&rs, false, "t");
        assert!(v.nodes.iter().any(|n| n.id == "nat/INPUT"));
        assert!(!v.nodes.iter().any(|n| n.id.starts_with("mangle/")));
    }
}
