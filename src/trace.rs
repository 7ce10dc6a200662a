//! Packet simulation: walk one packet through a ruleset the way netfilter
//! does, and record every rule it was tested against.
//!
//! ```
//! use iptviz::trace::{Packet, TraceOptions, Tracer, Verdict};
//! let text = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
//!             -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
//! let rs = iptviz::parse_str(text, &iptviz::ParseOptions::strict("doc")).unwrap().ruleset;
//! let mut pkt = Packet::new(6, "192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
//! pkt.dport = 22;
//! let opts = TraceOptions { local: vec!["192.0.2.2".parse().unwrap()], ..Default::default() };
//! let trace = Tracer::new(&rs).trace(&pkt, &opts);
//! assert_eq!(trace.verdict, Verdict::Accept);
//! assert_eq!(trace.path().len(), 1);
//! ```

mod assume;
mod batch;
mod bounds;
pub(crate) mod compile;
pub mod fields;
mod index;
mod lines;
pub mod nft;
mod packet;
pub mod pcap;
mod report;
pub mod route;

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::model::{Ruleset, Str, Table};

pub use assume::{find_rule, parse_assumption};
pub use batch::{
    Batch, BatchSummary, Decider, DeciderTally, DroppedFlow, Observed, Tally, Traced, VerdictTally,
    decider, describe,
};
pub use bounds::{DEFAULT_MAX_STEPS, Stopped};
pub use compile::Part;
pub use fields::{Details, FragmentKind};
pub use lines::{LineError, packet_from_json};
pub use packet::{
    CtState, Packet, parse_icmp_type, parse_mac, parse_tcp_flags, protocol_name, protocol_number,
    tcp_flags,
};
// Drawn in `crate::diagram`; named here too for the desktop app and benches.
pub use crate::diagram::{
    NftDrawn, path_only_view, path_only_view_named, trace_view, trace_view_named,
};
pub use report::{StepView, TraceView, render_text};
pub use route::{Decision, RouteStep, Routing, SYSCTL_KEYS, Sysctls};

use compile::{Act, CRule, Env, MarkOp, NatPorts, Outcome, compile_rule, eval};

/// Why a packet description could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A value that does not parse (`what`, `value`).
    #[error("invalid {0}: {1:?}")]
    BadValue(&'static str, String),
    /// Something required was not given.
    #[error("{0}")]
    Missing(String),
}

pub use crate::conntrack::Tuple;
pub use crate::flow::Hook;
use crate::flow::hook_tables;

/// Which way the packet goes through the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Arrives for a local socket.
    In,
    /// Sent by this host.
    Out,
    /// Routed through.
    Forward,
}

impl std::str::FromStr for Direction {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        match s.to_ascii_lowercase().as_str() {
            "in" | "input" => Ok(Direction::In),
            "out" | "output" => Ok(Direction::Out),
            "forward" | "fwd" => Ok(Direction::Forward),
            _ => Err(TraceError::BadValue("direction", s.into())),
        }
    }
}

/// How `-m statistic --mode random` is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RandomChoice {
    /// Every random rule reached matches: kube-proxy picks its first endpoint.
    #[default]
    Take,
    /// No random rule matches: kube-proxy falls through to its last endpoint.
    Skip,
}

/// A rule by position: table name, chain name, 0-based index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RuleRef {
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// 0-based index in the chain.
    pub rule: usize,
}

/// A connection conntrack already knows, for a packet that is not its
/// first: the nat table is not walked, the bindings in the tuples are
/// applied instead (as `conntrack -L` shows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// The original direction, as its first packet arrived (before NAT).
    pub orig: Tuple,
    /// The reply direction as replies are expected (after NAT): the inverse
    /// of `orig` when nothing was rewritten.
    pub reply: Tuple,
}

impl Connection {
    /// The connection of a conntrack entry.
    pub fn from_entry(e: &crate::conntrack::Entry) -> Connection {
        Connection {
            orig: e.orig,
            reply: e.reply,
        }
    }

    /// The destination was rewritten (DNAT, REDIRECT).
    pub fn dnat(&self) -> bool {
        self.reply.src != self.orig.dst || self.reply.sport != self.orig.dport
    }

    /// The source was rewritten (SNAT, MASQUERADE).
    pub fn snat(&self) -> bool {
        self.reply.dst != self.orig.src || self.reply.dport != self.orig.sport
    }
}

/// What the trace knows about the host besides the rules.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// This host's addresses: decides INPUT vs FORWARD and `addrtype LOCAL`.
    pub local: Vec<IpAddr>,
    /// Forces the path when addresses do not tell.
    pub direction: Option<Direction>,
    /// ipset contents, by set name.
    pub ipsets: HashMap<String, Vec<ipnet::IpNet>>,
    /// How random statistic rules are decided.
    pub random: RandomChoice,
    /// Outcome of the undecidable tests (random, limit, recent ...) of
    /// particular rules, overriding the defaults.
    pub overrides: HashMap<RuleRef, bool>,
    /// Leave out rules that did not match (faster, shorter output).
    pub matched_only: bool,
    /// The packet's connection when it is not the first packet of it.
    pub connection: Option<Connection>,
    /// This host's addresses by interface: MASQUERADE takes the out
    /// interface's, REDIRECT the in interface's (without them MASQUERADE
    /// leaves the source as it is and REDIRECT takes the first `local`).
    pub iface_addrs: HashMap<String, Vec<IpAddr>>,
    /// Rule evaluations before the walk stops ([`DEFAULT_MAX_STEPS`] when unset).
    pub max_steps: Option<u64>,
    /// Routes, sysctls and groups joined: when set, a routing step like
    /// the kernel's decides INPUT, FORWARD or a drop ([`route`]).
    pub routing: Option<std::sync::Arc<Routing>>,
}

/// A final or per-table verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Let through.
    Accept,
    /// Silently dropped.
    Drop,
    /// Dropped with an error sent back.
    Reject,
    /// Handed to a userspace queue.
    Queue,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject => "REJECT",
            Verdict::Queue => "QUEUE",
        })
    }
}

/// What a step did to the walk or the packet.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Rule did not match, or matched without a target (counted only).
    None,
    /// A non-terminating target (LOG, NFLOG, TCPMSS ...): the walk goes on.
    Continue {
        /// Target name.
        target: String,
    },
    /// `-j CHAIN`.
    Jump {
        /// Chain index in the table.
        chain: usize,
    },
    /// `-g CHAIN`.
    Goto {
        /// Chain index in the table.
        chain: usize,
    },
    /// `-j RETURN`.
    Return,
    /// The end of a user chain was reached: back to the caller.
    FallOff,
    /// A verdict for this table (ACCEPT ends the table, DROP ends the walk).
    Verdict {
        /// The verdict.
        verdict: Verdict,
    },
    /// A terminating extension target (TPROXY, SYNPROXY ...) and its verdict.
    Extension {
        /// Target name.
        target: String,
        /// Verdict it gives in this table.
        verdict: Verdict,
    },
    /// The built-in chain's policy applied.
    Policy {
        /// The policy.
        verdict: Verdict,
    },
    /// MARK changed the packet mark.
    Mark {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// CONNMARK changed the connection mark (or restored the packet mark).
    Connmark {
        /// Connection mark before.
        ct_from: u32,
        /// Connection mark after.
        ct_to: u32,
        /// Packet mark after.
        mark: u32,
    },
    /// Conntrack disabled for this packet (`CT --notrack`, `NOTRACK`).
    Notrack,
    /// DSCP, TOS or TCPMSS changed the packet; the walk goes on.
    Rewrite {
        /// Target name.
        target: String,
        /// What changed, e.g. `tos 0x00 -> 0x28`.
        change: String,
    },
    /// A NAT target rewrote the packet (and accepted it in the nat table).
    Nat {
        /// DNAT, SNAT, MASQUERADE, REDIRECT.
        target: String,
        /// What changed, e.g. `dst 10.0.0.5:8080`.
        change: String,
    },
    /// A jump to a chain that does not exist (the kernel refuses such dumps).
    Undefined {
        /// Name used.
        name: String,
    },
}

/// One rule (or policy) the packet met.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Hook the walk was in.
    pub hook: Hook,
    /// Table index in [`Ruleset::tables`].
    pub table: usize,
    /// Chain index in [`Table::chains`].
    pub chain: usize,
    /// Rule index in the chain; `None` for a policy or the end of a user chain.
    pub rule: Option<usize>,
    /// Whether the rule matched (the kernel counts it).
    pub matched: bool,
    /// The first part of the rule that did not match.
    pub miss: Option<Part>,
    /// What happened.
    pub action: Action,
    /// Assumptions made to decide this rule, and random-branch probabilities.
    pub notes: Vec<String>,
}

/// Where the packet ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Delivered to a local socket (INPUT).
    Local,
    /// Routed through (FORWARD, POSTROUTING).
    Forward,
    /// Sent by this host (OUTPUT, POSTROUTING).
    Output,
}

/// The whole walk of one packet.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The packet as given.
    pub input: Packet,
    /// The packet at the end of the walk (after NAT and marks).
    pub output: Packet,
    /// Every rule met, in order.
    pub steps: Vec<Step>,
    /// The final verdict.
    pub verdict: Verdict,
    /// Index in `steps` of the step that decided a DROP/REJECT/QUEUE.
    pub decided_by: Option<usize>,
    /// The path chosen by routing.
    pub route: Route,
    /// Hooks traversed, in order.
    pub hooks: Vec<Hook>,
    /// Remarks about the whole walk (routing assumptions ...).
    pub notes: Vec<String>,
    /// Set when the walk stopped before a verdict (a jump loop, or the
    /// budget of rule evaluations ran out); `verdict` is then meaningless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    /// The routing step, when [`TraceOptions::routing`] was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<RouteStep>,
}

/// One edge of the highlighted path: a rule (or policy) that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PathEdge {
    /// Table index.
    pub table: usize,
    /// Chain index.
    pub chain: usize,
    /// Rule index; `None` for the policy.
    pub rule: Option<usize>,
}

impl Trace {
    /// Matched rules and applied policies, in order: the path to draw.
    pub fn path(&self) -> Vec<PathEdge> {
        self.steps
            .iter()
            .filter(|s| s.matched)
            .map(|s| PathEdge {
                table: s.table,
                chain: s.chain,
                rule: s.rule,
            })
            .collect()
    }

    /// True when the packet reached its destination (socket or wire).
    pub fn delivered(&self) -> bool {
        self.verdict == Verdict::Accept
    }

    /// The connection a first packet leaves in conntrack: its tuple as it
    /// arrived and, turned around, as it left; give it as
    /// [`TraceOptions::connection`] to trace the packets that follow.
    /// MASQUERADE takes the address of the interface the packet leaves by;
    /// unless [`TraceOptions::iface_addrs`] gives it, that source is left
    /// as it was.
    pub fn connection(&self) -> Connection {
        Connection {
            orig: tuple_of(&self.input),
            reply: tuple_of(&self.output).inverse(),
        }
    }
}

/// Compiled chains of one table, built on first use.
struct TableCache {
    chains: Vec<OnceCell<Vec<CRule>>>,
    /// Shortcuts through long runs of exact-destination rules.
    index: Vec<OnceCell<Option<index::DstIndex>>>,
}

/// Traces packets through one ruleset; compiles each chain the first time a
/// packet reaches it, so a trace through a huge dump only pays for the
/// chains it visits.
pub struct Tracer<'r> {
    rs: &'r Ruleset,
    cache: Vec<TableCache>,
    /// Why conntrack runs for these rules (it then reassembles fragments).
    conntrack: OnceCell<Option<String>>,
    /// nft tables walked beside the iptables ones ([`Tracer::with_nft`]).
    nft: Option<&'r nft::NftRules>,
}

/// The loopback interface.
const LOOPBACK: &str = "lo";

/// A frame of the call stack: chain and the rule to resume at.
type Frame = (usize, usize);

/// Where a walk through a table's chains goes after a matched rule's
/// action (the iptables and the nft walks alike).
enum Next {
    /// On to the rule at `(chain, index)`.
    At(usize, usize),
    /// A return from the chain the walk started in: its policy decides.
    Policy,
    /// The jump or goto to `to` would close a loop through `chains`.
    Loop { chains: Vec<usize>, to: usize },
    /// The table's walk ends with this verdict.
    Ends(Verdict),
}

/// Follows `action` of the rule at `at`: a jump pushes the rule after it,
/// a goto does not, a return pops (each kept in step with `path`, which
/// refuses a loop); a verdict, an extension's verdict or a NAT binding
/// (accepted) ends the table; anything else goes on to the next rule.
fn follow(
    action: &Action,
    (chain, idx): Frame,
    stack: &mut Vec<Frame>,
    path: &mut bounds::CallPath,
) -> Next {
    match *action {
        Action::Jump { chain: to } | Action::Goto { chain: to } => {
            let jump = matches!(action, Action::Jump { .. });
            if let Err(chains) = path.enter(to, jump) {
                return Next::Loop { chains, to };
            }
            if jump {
                stack.push((chain, idx + 1));
            }
            Next::At(to, 0)
        }
        Action::Return => match stack.pop() {
            Some((c, i)) => {
                path.back();
                Next::At(c, i)
            }
            None => Next::Policy,
        },
        Action::Verdict { verdict } | Action::Extension { verdict, .. } => Next::Ends(verdict),
        Action::Nat { .. } => Next::Ends(Verdict::Accept),
        _ => Next::At(chain, idx + 1),
    }
}

/// Mutable state of one walk.
struct Walk<'o> {
    input: Packet,
    pkt: Packet,
    opts: &'o TraceOptions,
    steps: Vec<Step>,
    orig_src: IpAddr,
    orig_dst: IpAddr,
    orig_sport: u16,
    orig_dport: u16,
    dnat_done: bool,
    snat_done: bool,
    redirected: bool,
    /// The packet goes the reply way of its known connection.
    reply_dir: bool,
    /// Sent by this host (so it has a local socket until it loops back).
    outgoing: bool,
    /// Where a locally generated packet goes when its destination is not
    /// this host (the `--out` given); `lo` is used while it is.
    route_iface: Option<Str>,
    /// The packet came back in on `lo` after leaving by it: its connection
    /// already has its NAT bindings and its conntrack entry.
    looped: bool,
    notes: Vec<String>,
    /// Rules tested so far, and how many may be.
    evals: u64,
    budget: u64,
    stopped: Option<Stopped>,
    routing: Option<RouteStep>,
}

impl<'r> Tracer<'r> {
    /// Prepares to trace through `rs`.
    pub fn new(rs: &'r Ruleset) -> Self {
        let cache = rs
            .tables
            .iter()
            .map(|t| TableCache {
                chains: (0..t.chains.len()).map(|_| OnceCell::new()).collect(),
                index: (0..t.chains.len()).map(|_| OnceCell::new()).collect(),
            })
            .collect();
        Tracer {
            rs,
            cache,
            conntrack: OnceCell::new(),
            nft: None,
        }
    }

    /// The ruleset traced.
    pub fn ruleset(&self) -> &'r Ruleset {
        self.rs
    }

    fn chain(&self, t: usize, c: usize) -> &[CRule] {
        self.cache[t].chains[c].get_or_init(|| {
            let table: &Table = &self.rs.tables[t];
            table.chains[c]
                .rules
                .iter()
                .map(|r| compile_rule(table, r))
                .collect()
        })
    }

    /// The destination shortcut of a chain, if it has a long run of rules
    /// each naming one destination address.
    fn dst_index(&self, t: usize, c: usize) -> Option<&index::DstIndex> {
        self.cache[t].index[c]
            .get_or_init(|| index::DstIndex::build(self.chain(t, c)))
            .as_ref()
    }

    /// Walks `pkt` through the hooks and returns every step and the verdict.
    pub fn trace(&self, pkt: &Packet, opts: &TraceOptions) -> Trace {
        let mut w = Walk {
            input: pkt.clone(),
            pkt: pkt.clone(),
            opts,
            steps: Vec::with_capacity(64),
            orig_src: pkt.src,
            orig_dst: pkt.dst,
            orig_sport: pkt.sport,
            orig_dport: pkt.dport,
            dnat_done: false,
            snat_done: false,
            redirected: false,
            reply_dir: false,
            outgoing: false,
            route_iface: None,
            looped: false,
            notes: Vec::new(),
            evals: 0,
            budget: opts.max_steps.unwrap_or(DEFAULT_MAX_STEPS),
            stopped: None,
            routing: None,
        };
        if let Some(c) = &opts.connection {
            w.join(c);
        }
        let is_local = |a: &IpAddr| opts.local.contains(a) || a.is_loopback();
        let outgoing = match opts.direction {
            Some(Direction::Out) => true,
            Some(_) => false,
            // With routing modelled, a packet given an interface to arrive
            // on arrives, whatever its source (martians are the point).
            None if opts.routing.is_some() && pkt.in_iface.is_some() => false,
            None => is_local(&pkt.src),
        };
        let mut hooks = Vec::new();
        if self.defrag_for_conntrack(&mut w) == fields::Reassembly::Held {
            let route = if outgoing {
                Route::Output
            } else {
                Route::Local
            };
            return self.finish(w, Verdict::Accept, route, hooks);
        }
        if outgoing {
            return self.trace_output(w, hooks);
        }
        if let Some(why) = opts
            .routing
            .as_ref()
            .and_then(|_| route::v6_receive_drop(pkt))
        {
            return self.routing_drop(w, hooks, RouteStep::receive_drop(why), Route::Local);
        }
        hooks.push(Hook::Prerouting);
        if let Some(v) = self.hook(Hook::Prerouting, &mut w) {
            return self.finish(w, v, Route::Forward, hooks);
        }
        if let Some(rt) = &opts.routing {
            return self.routed_input(w, hooks, rt);
        }
        let local = if w.redirected || is_local(&w.pkt.dst) {
            true
        } else if opts.direction == Some(Direction::In) && !w.dnat_done {
            // Said to be for this host (a multicast group it joined, an
            // address not listed): the addresses given do not override it.
            if !opts.local.is_empty() {
                w.notes.push(format!(
                    "--direction in: delivered to this host, though {} is not among its --local addresses",
                    w.pkt.dst
                ));
            }
            true
        } else if !opts.local.is_empty() {
            if opts.direction == Some(Direction::In) {
                // Not silently: the kernel routes on the new destination.
                w.notes.push(format!(
                    "--direction in, but the destination was rewritten to {}, not among this host's --local addresses: forwarded, as the kernel routes on the new destination",
                    w.pkt.dst
                ));
            }
            false
        } else {
            match opts.direction {
                Some(Direction::In) if w.dnat_done => {
                    w.notes.push(
                        "the destination was rewritten and no --local addresses were given: assumed forwarded"
                            .into(),
                    );
                    false
                }
                Some(Direction::In) => true,
                Some(_) => false,
                None => {
                    let local = pkt.out_iface.is_none();
                    w.notes.push(format!(
                        "no --local addresses nor --direction: assumed {}",
                        if local {
                            "for this host (no --out given)"
                        } else {
                            "forwarded (--out given)"
                        }
                    ));
                    local
                }
            }
        };
        if local {
            return self.deliver(w, hooks);
        }
        self.forward(w, hooks)
    }

    /// After PREROUTING, with routing modelled: the kernel's decision.
    fn routed_input(&self, mut w: Walk<'_>, hooks: Vec<Hook>, rt: &Routing) -> Trace {
        if w.pkt.in_iface.is_none() {
            w.notes.push(
                "no --in: the interface it arrived on is not known; per-interface sysctls are not applied and the reverse-path checks take it as none of the routes' interfaces"
                    .into(),
            );
        }
        if rt.table.is_some() && rt.table_for(w.pkt.dst.is_ipv6()).is_none() {
            w.notes.push(format!(
                "the --routes file has no {} routes: this host's addresses decide, as without it",
                if w.pkt.dst.is_ipv6() { "IPv6" } else { "IPv4" }
            ));
        }
        let step = if w.redirected {
            RouteStep::redirected()
        } else {
            rt.input(&w.pkt, &w.opts.local)
        };
        match step.decision {
            route::Decision::Local | route::Decision::Output => {
                w.routing = Some(step);
                self.deliver(w, hooks)
            }
            route::Decision::Drop => self.routing_drop(w, hooks, step, Route::Forward),
            route::Decision::Forward => {
                if w.pkt.out_iface.is_none() {
                    w.pkt.out_iface = step.dev.as_deref().map(Into::into);
                } else if step.dev.is_some() && w.pkt.out_iface.as_deref() != step.dev.as_deref() {
                    w.notes.push(format!(
                        "--out {} is not the interface the routes give ({})",
                        w.pkt.out_iface.as_deref().unwrap_or(""),
                        step.dev.as_deref().unwrap_or("")
                    ));
                }
                w.routing = Some(step);
                self.forward(w, hooks)
            }
        }
    }

    /// Ends the walk with a drop by routing (no rule decided it).
    fn routing_drop(
        &self,
        mut w: Walk<'_>,
        hooks: Vec<Hook>,
        step: RouteStep,
        route: Route,
    ) -> Trace {
        w.notes.push(format!("dropped by routing: {}", step.reason));
        w.routing = Some(step);
        let mut t = self.finish(w, Verdict::Drop, route, hooks);
        t.decided_by = None;
        t
    }

    /// FORWARD and POSTROUTING, unless routing refuses to forward.
    fn forward(&self, mut w: Walk<'_>, mut hooks: Vec<Hook>) -> Trace {
        if let Some(why) = not_forwarded(&w.pkt) {
            w.notes.push(why.into());
            let mut t = self.finish(w, Verdict::Drop, Route::Forward, hooks);
            t.decided_by = None;
            return t;
        }
        w.pkt.ttl -= 1;
        hooks.push(Hook::Forward);
        if let Some(v) = self.hook(Hook::Forward, &mut w) {
            return self.finish(w, v, Route::Forward, hooks);
        }
        hooks.push(Hook::Postrouting);
        let v = self.hook(Hook::Postrouting, &mut w);
        self.finish(w, v.unwrap_or(Verdict::Accept), Route::Forward, hooks)
    }

    /// INPUT and delivery to a local socket.
    fn deliver(&self, mut w: Walk<'_>, mut hooks: Vec<Hook>) -> Trace {
        w.pkt.out_iface = None;
        if self.defrag_for_input(&mut w) == fields::Reassembly::Held {
            return self.finish(w, Verdict::Accept, Route::Local, hooks);
        }
        hooks.push(Hook::Input);
        let v = self.hook(Hook::Input, &mut w);
        self.finish(w, v.unwrap_or(Verdict::Accept), Route::Local, hooks)
    }

    /// A packet sent by this host: OUTPUT and POSTROUTING; when it is for
    /// one of this host's own addresses it leaves by `lo` and comes back in
    /// through PREROUTING and INPUT, where the nat table is not consulted
    /// again (the connection has its bindings from OUTPUT and POSTROUTING).
    fn trace_output(&self, mut w: Walk<'_>, mut hooks: Vec<Hook>) -> Trace {
        w.outgoing = true;
        w.pkt.in_iface = None;
        w.route_iface = w.pkt.out_iface.clone();
        if let Some(rt) = &w.opts.routing {
            let step = rt.output(&w.pkt, &w.opts.local);
            if step.decision == route::Decision::Drop {
                return self.routing_drop(w, hooks, step, Route::Output);
            }
            if w.route_iface.is_none() && step.dev.as_deref() != Some(LOOPBACK) {
                w.route_iface = step.dev.as_deref().map(Into::into);
            }
            w.routing = Some(step);
        }
        self.reroute(&mut w);
        hooks.push(Hook::Output);
        if let Some(v) = self.hook(Hook::Output, &mut w) {
            let route = self.output_route(&w);
            return self.finish(w, v, route, hooks);
        }
        hooks.push(Hook::Postrouting);
        let route = self.output_route(&w);
        if let Some(v) = self.hook(Hook::Postrouting, &mut w) {
            return self.finish(w, v, route, hooks);
        }
        if route == Route::Output {
            return self.finish(w, Verdict::Accept, route, hooks);
        }
        w.notes
            .push("for an address of this host: leaves by lo and comes back in on lo".into());
        w.looped = true;
        w.pkt.in_iface = Some(LOOPBACK.into());
        hooks.push(Hook::Prerouting);
        if let Some(v) = self.hook(Hook::Prerouting, &mut w) {
            return self.finish(w, v, Route::Local, hooks);
        }
        self.deliver(w, hooks)
    }

    /// Conntrack puts fragments back together before the first table of
    /// PREROUTING or OUTPUT, when these rules make it run.
    fn defrag_for_conntrack(&self, w: &mut Walk<'_>) -> fields::Reassembly {
        let why = self
            .conntrack
            .get_or_init(|| fields::conntrack_user(self.rs));
        let Some(why) = why else {
            return fields::Reassembly::Whole;
        };
        let r = fields::reassemble(&mut w.pkt);
        match r {
            fields::Reassembly::Whole => {}
            fields::Reassembly::Datagram => w.notes.push(format!(
                "conntrack runs for these rules ({why}): it reassembles the datagram before PREROUTING, and the rules see it whole"
            )),
            fields::Reassembly::Held => w.notes.push(format!(
                "conntrack runs for these rules ({why}): this fragment is held until its datagram is complete, and no rule sees it; the trace of the first fragment stands for the datagram"
            )),
        }
        r
    }

    /// IPv4 reassembles a datagram for this host before INPUT (IPv6 only
    /// after INPUT, so there the fragments meet the rules one by one).
    fn defrag_for_input(&self, w: &mut Walk<'_>) -> fields::Reassembly {
        if w.pkt.dst.is_ipv6() {
            return fields::Reassembly::Whole;
        }
        let r = fields::reassemble(&mut w.pkt);
        match r {
            fields::Reassembly::Whole => {}
            fields::Reassembly::Datagram => w.notes.push(
                "IPv4 reassembles a datagram for this host before INPUT: INPUT sees it whole".into(),
            ),
            fields::Reassembly::Held => w.notes.push(
                "IPv4 holds this fragment until its datagram is complete, before INPUT: no INPUT rule sees it; the trace of the first fragment stands for the datagram".into(),
            ),
        }
        r
    }

    /// Route::Local while a locally generated packet leaves by `lo`.
    fn output_route(&self, w: &Walk<'_>) -> Route {
        if w.pkt.out_iface.as_deref() == Some(LOOPBACK) {
            Route::Local
        } else {
            Route::Output
        }
    }

    /// The route lookup of a locally generated packet, again after its
    /// destination changed in OUTPUT: `lo` for this host's own addresses,
    /// else the interface given.
    fn reroute(&self, w: &mut Walk<'_>) {
        let dst = w.pkt.dst;
        if let Some(rt) = &w.opts.routing
            && w.input.out_iface.is_none()
        {
            w.pkt.out_iface = rt.output(&w.pkt, &w.opts.local).dev.map(Into::into);
            return;
        }
        w.pkt.out_iface = if w.opts.local.contains(&dst) || dst.is_loopback() {
            Some(LOOPBACK.into())
        } else {
            w.route_iface.clone()
        };
    }

    fn finish(&self, w: Walk<'_>, verdict: Verdict, route: Route, hooks: Vec<Hook>) -> Trace {
        let decided_by = if verdict == Verdict::Accept || w.stopped.is_some() {
            None
        } else {
            w.steps.iter().rposition(|s| s.matched)
        };
        Trace {
            input: w.input,
            output: w.pkt,
            steps: w.steps,
            verdict,
            decided_by,
            route,
            hooks,
            notes: w.notes,
            stopped: w.stopped,
            routing: w.routing,
        }
    }

    /// Runs every table of a hook; `Some(verdict)` when the packet stops.
    fn hook(&self, hook: Hook, w: &mut Walk<'_>) -> Option<Verdict> {
        if let Some(nft) = self.nft {
            return self.hook_nft(hook, w, nft);
        }
        for tname in hook_tables(hook) {
            let dst = w.pkt.dst;
            let walk = if tname != "nat" {
                true
            } else if let Some(c) = w.opts.connection {
                // Only the first packet of a connection walks the nat
                // table; the others get the bindings it left.
                apply_binding(hook, &c, w);
                false
            } else {
                w.pkt.state == CtState::New && !w.looped
            };
            if walk
                && let Some(t) = self.rs.tables.iter().position(|t| t.name == tname)
                && let Some(c) = self.rs.tables[t].chain_position(hook.chain())
            {
                match self.table(hook, t, c, w) {
                    Verdict::Accept => {}
                    v => return Some(v),
                }
            }
            // A new destination in OUTPUT (DNAT, REDIRECT, a binding) means
            // a new route lookup, before the next table of the hook.
            if hook == Hook::Output && w.pkt.dst != dst {
                self.reroute(w);
            }
        }
        None
    }

    /// Walks one table from its built-in chain `start`.
    fn table(&self, hook: Hook, t: usize, start: usize, w: &mut Walk<'_>) -> Verdict {
        let table = &self.rs.tables[t];
        // The raw table runs before conntrack has looked the packet up,
        // except for a packet looped back through `lo`, which keeps its entry.
        let before_ct = table.name == "raw" && !w.looped;
        let mut stack: Vec<Frame> = Vec::new();
        let mut path = bounds::CallPath::new(start);
        let evals_before = w.evals;
        let (mut chain, mut idx) = (start, 0usize);
        loop {
            let rules = self.chain(t, chain);
            if idx >= rules.len() {
                if let Some((c, i)) = stack.pop() {
                    path.back();
                    w.steps
                        .push(step(hook, t, chain, None, true, None, Action::FallOff));
                    (chain, idx) = (c, i);
                    continue;
                }
                return policy(hook, t, start, table, w);
            }
            // Rules that missed are not listed: skip those that cannot match.
            if w.opts.matched_only
                && rules.len() >= 16
                && let Some(ix) = self.dst_index(t, chain)
            {
                let next = ix.next(idx, w.pkt.dst);
                if next != idx {
                    idx = next;
                    continue;
                }
            }
            if w.evals >= w.budget {
                let here = w.evals - evals_before;
                w.stopped = Some(self.budget_stop(t, (chain, idx), &stack, w, before_ct, here));
                return Verdict::Drop;
            }
            w.evals += 1;
            let r = &rules[idx];
            let (matched, miss, notes) = self.test(t, chain, idx, r, w, before_ct);
            if !matched && notes.last().is_some_and(|n| n.starts_with(fields::HOTDROP)) {
                let mut s = step(hook, t, chain, Some(idx), false, miss, Action::None);
                s.notes = notes;
                w.steps.push(s);
                return Verdict::Drop;
            }
            if !matched {
                if !w.opts.matched_only {
                    let mut s = step(hook, t, chain, Some(idx), false, miss, Action::None);
                    s.notes = notes;
                    w.steps.push(s);
                }
                idx += 1;
                continue;
            }
            let action = apply(&r.act, hook, w);
            let mut s = step(hook, t, chain, Some(idx), true, None, action.clone());
            s.notes = notes;
            w.steps.push(s);
            match follow(&action, (chain, idx), &mut stack, &mut path) {
                Next::At(c, i) => (chain, idx) = (c, i),
                Next::Policy => return policy(hook, t, start, table, w),
                Next::Loop { chains, .. } => {
                    w.stopped = Some(self.loop_stop(t, &chains, idx));
                    return Verdict::Drop;
                }
                Next::Ends(v) => return v,
            }
        }
    }

    /// Tests a rule: (matched, first missing part, notes).
    fn test(
        &self,
        t: usize,
        chain: usize,
        idx: usize,
        r: &CRule,
        w: &Walk<'_>,
        before_ct: bool,
    ) -> (bool, Option<Part>, Vec<String>) {
        let mut pkt_view;
        let pkt = if before_ct && w.pkt.state != CtState::Untracked {
            pkt_view = w.pkt.clone();
            pkt_view.state = CtState::Invalid;
            &pkt_view
        } else {
            &w.pkt
        };
        let env = Env {
            local: &w.opts.local,
            ipsets: &w.opts.ipsets,
            orig_src: w.orig_src,
            orig_dst: w.orig_dst,
            orig_dport: w.orig_dport,
            orig_sport: w.orig_sport,
            dnat_done: w.dnat_done,
            snat_done: w.snat_done,
            reply_dir: w.reply_dir,
            reply: w.opts.connection.as_ref().map(|c| c.reply),
            socket: w.outgoing && !w.looped,
            routing: w.opts.routing.as_deref(),
        };
        let mut notes = Vec::new();
        let mut overridden: Option<Option<bool>> = None;
        for c in &r.conds {
            let v = match eval(&c.test, pkt, &env) {
                Outcome::Known(v) => v != c.negated,
                Outcome::Hotdrop(why) => {
                    notes.push(format!("{}{why}", fields::HOTDROP));
                    return (false, Some(c.part), notes);
                }
                Outcome::Assumed(v, what) => {
                    let forced = self.override_for(t, chain, idx, w, &mut overridden);
                    let v = forced.unwrap_or(v != c.negated);
                    notes.push(match forced {
                        Some(f) => format!("{what} (given: {} by --assume)", yes_no(f)),
                        None => what,
                    });
                    v
                }
                Outcome::Random(p) => {
                    let forced = self.override_for(t, chain, idx, w, &mut overridden);
                    let v = forced.unwrap_or(match w.opts.random {
                        RandomChoice::Take => true,
                        RandomChoice::Skip => false,
                    });
                    let p = if c.negated { 1.0 - p } else { p };
                    notes.push(format!(
                        "statistic random: matches with probability {:.5}; {} in this trace{}",
                        p,
                        if v { "taken" } else { "not taken" },
                        if forced.is_some() {
                            " (given by --assume)"
                        } else {
                            ""
                        }
                    ));
                    v
                }
            };
            if !v {
                return (false, Some(c.part), notes);
            }
        }
        (true, None, notes)
    }

    fn override_for(
        &self,
        t: usize,
        chain: usize,
        idx: usize,
        w: &Walk<'_>,
        cached: &mut Option<Option<bool>>,
    ) -> Option<bool> {
        if w.opts.overrides.is_empty() {
            return None;
        }
        *cached.get_or_insert_with(|| {
            let table = &self.rs.tables[t];
            let key = RuleRef {
                table: table.name.to_string(),
                chain: table.chains[chain].name.to_string(),
                rule: idx,
            };
            w.opts.overrides.get(&key).copied()
        })
    }
}

fn tuple_of(p: &Packet) -> Tuple {
    let ports = p.has_ports();
    Tuple {
        src: p.src,
        dst: p.dst,
        sport: if ports { p.sport } else { 0 },
        dport: if ports { p.dport } else { 0 },
    }
}

fn same_ends(a: &Tuple, b: &Tuple, ports: bool) -> bool {
    a.src == b.src && a.dst == b.dst && (!ports || (a.sport == b.sport && a.dport == b.dport))
}

impl Walk<'_> {
    /// Takes the conntrack view of a packet of a known connection: its
    /// direction, the original tuple, and which NAT it had.
    fn join(&mut self, c: &Connection) {
        let t = tuple_of(&self.pkt);
        let ports = self.pkt.has_ports();
        self.reply_dir = same_ends(&t, &c.reply, ports) && !same_ends(&t, &c.orig, ports);
        if !self.reply_dir && !same_ends(&t, &c.orig, ports) {
            self.notes.push(
                "the packet is in neither direction of the connection given: taken as original"
                    .into(),
            );
        }
        self.orig_src = c.orig.src;
        self.orig_dst = c.orig.dst;
        self.orig_sport = c.orig.sport;
        self.orig_dport = c.orig.dport;
        self.dnat_done = c.dnat();
        self.snat_done = c.snat();
    }
}

/// Applies a connection's NAT binding where the nat table would run:
/// destination at PREROUTING and OUTPUT, source at INPUT and POSTROUTING;
/// the reply direction gets the inverse rewrite.
fn apply_binding(hook: Hook, c: &Connection, w: &mut Walk<'_>) {
    let dst_point = matches!(hook, Hook::Prerouting | Hook::Output);
    let (addr, port) = match (w.reply_dir, dst_point) {
        (false, true) => (c.reply.src, c.reply.sport),
        (false, false) => (c.reply.dst, c.reply.dport),
        (true, true) => (c.orig.src, c.orig.sport),
        (true, false) => (c.orig.dst, c.orig.dport),
    };
    let p = &mut w.pkt;
    let ports = p.has_ports();
    let (what, a, pt) = if dst_point {
        ("dst", &mut p.dst, &mut p.dport)
    } else {
        ("src", &mut p.src, &mut p.sport)
    };
    if *a == addr && (!ports || *pt == port) {
        return;
    }
    *a = addr;
    if ports {
        *pt = port;
    }
    w.notes.push(format!(
        "{} nat: the connection's binding rewrote the {what} to {}",
        hook.chain(),
        endpoint(addr, port, ports)
    ));
}

/// Why routing drops a packet it would forward, before FORWARD, if it does.
fn not_forwarded(p: &Packet) -> Option<&'static str> {
    if p.ttl <= 1 {
        return Some("the TTL runs out here: dropped by routing before FORWARD (time exceeded)");
    }
    match p.src {
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => Some(
            "IPv6 does not forward a packet from a link-local address: dropped by routing before FORWARD",
        ),
        _ => None,
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "match" } else { "no match" }
}

fn step(
    hook: Hook,
    table: usize,
    chain: usize,
    rule: Option<usize>,
    matched: bool,
    miss: Option<Part>,
    action: Action,
) -> Step {
    Step {
        hook,
        table,
        chain,
        rule,
        matched,
        miss,
        action,
        notes: Vec::new(),
    }
}

fn policy(hook: Hook, t: usize, start: usize, table: &Table, w: &mut Walk<'_>) -> Verdict {
    let verdict = match table.chains[start].policy.as_deref() {
        Some("DROP") => Verdict::Drop,
        _ => Verdict::Accept,
    };
    w.steps.push(step(
        hook,
        t,
        start,
        None,
        true,
        None,
        Action::Policy { verdict },
    ));
    verdict
}

fn apply_mark(v: u32, and: u32, xor: u32, or: u32) -> u32 {
    ((v & and) ^ xor) | or
}

/// The address REDIRECT sends to: 127.0.0.1 for local traffic, otherwise
/// the in interface's address, or the first local address given.
fn redirect_addr(hook: Hook, w: &mut Walk<'_>) -> IpAddr {
    let v6 = w.pkt.dst.is_ipv6();
    let lo = if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    if hook == Hook::Output {
        return lo;
    }
    let own = w
        .pkt
        .in_iface
        .as_deref()
        .and_then(|i| w.opts.iface_addrs.get(i))
        .and_then(|l| l.iter().find(|a| a.is_ipv6() == v6));
    if let Some(a) = own {
        return *a;
    }
    match w.opts.local.iter().find(|a| a.is_ipv6() == v6) {
        Some(a) => *a,
        None => {
            w.notes
                .push("REDIRECT: no --local address given, shown as loopback".into());
            lo
        }
    }
}

/// Applies a matching rule's target to the walk state.
fn apply(act: &Act, hook: Hook, w: &mut Walk<'_>) -> Action {
    let p = &mut w.pkt;
    match act {
        Act::None => Action::None,
        Act::Accept => Action::Verdict {
            verdict: Verdict::Accept,
        },
        Act::Drop => Action::Verdict {
            verdict: Verdict::Drop,
        },
        Act::Reject => Action::Verdict {
            verdict: Verdict::Reject,
        },
        Act::Queue { bypass: false } => Action::Verdict {
            verdict: Verdict::Queue,
        },
        Act::Queue { bypass: true } => Action::Extension {
            target: "NFQUEUE --queue-bypass (no listener assumed)".into(),
            verdict: Verdict::Accept,
        },
        Act::Return => Action::Return,
        Act::Jump(c) => Action::Jump { chain: *c },
        Act::Goto(c) => Action::Goto { chain: *c },
        Act::Undefined(n) => Action::Undefined { name: n.clone() },
        Act::Continue(n) => Action::Continue { target: n.clone() },
        Act::OtherVerdict(n) => Action::Extension {
            target: n.clone(),
            verdict: Verdict::Accept,
        },
        Act::Field(op) => {
            let (target, change) = fields::apply(*op, p);
            Action::Rewrite { target, change }
        }
        Act::Notrack => {
            if p.state == CtState::New {
                p.state = CtState::Untracked;
            }
            Action::Notrack
        }
        Act::Mark(op) => match *op {
            MarkOp::Mark { and, xor, or } => {
                let from = p.mark;
                p.mark = apply_mark(p.mark, and, xor, or);
                Action::Mark { from, to: p.mark }
            }
            MarkOp::ConnSet { and, xor, or } => {
                let from = p.ctmark;
                p.ctmark = apply_mark(p.ctmark, and, xor, or);
                Action::Connmark {
                    ct_from: from,
                    ct_to: p.ctmark,
                    mark: p.mark,
                }
            }
            MarkOp::ConnSave { nfmask, ctmask } => {
                let from = p.ctmark;
                p.ctmark = (p.ctmark & !ctmask) ^ (p.mark & nfmask);
                Action::Connmark {
                    ct_from: from,
                    ct_to: p.ctmark,
                    mark: p.mark,
                }
            }
            MarkOp::ConnRestore { nfmask, ctmask } => {
                p.mark = (p.mark & !nfmask) ^ (p.ctmark & ctmask);
                Action::Connmark {
                    ct_from: p.ctmark,
                    ct_to: p.ctmark,
                    mark: p.mark,
                }
            }
        },
        Act::Dnat { addr, port } => {
            if let Some(a) = addr {
                p.dst = *a;
            }
            let ports = p.has_ports();
            let random = set_port(&mut p.dport, *port, ports);
            w.dnat_done = true;
            Action::Nat {
                target: "DNAT".into(),
                change: format!("dst {}", endpoint(p.dst, p.dport, p.has_ports())),
            }
            .with_random_port(random)
        }
        Act::Redirect { port } => {
            let a = redirect_addr(hook, w);
            let p = &mut w.pkt;
            p.dst = a;
            let ports = p.has_ports();
            let random = set_port(&mut p.dport, *port, ports);
            w.dnat_done = true;
            w.redirected = true;
            Action::Nat {
                target: "REDIRECT".into(),
                change: format!("dst {}", endpoint(p.dst, p.dport, p.has_ports())),
            }
            .with_random_port(random)
        }
        Act::Snat { addr, port } => {
            if let Some(a) = addr {
                p.src = *a;
            }
            let ports = p.has_ports();
            let random = set_port(&mut p.sport, *port, ports);
            w.snat_done = true;
            Action::Nat {
                target: "SNAT".into(),
                change: format!("src {}", endpoint(p.src, p.sport, p.has_ports())),
            }
            .with_random_port(random)
        }
        Act::Masquerade { port } => {
            let ports = p.has_ports();
            let random = set_port(&mut p.sport, *port, ports);
            w.snat_done = true;
            let out = p.out_iface.clone();
            // The kernel prefers the interface's address in the next hop's
            // subnet: for a packet leaving by `lo` to one of the host's
            // addresses, that address itself.
            let list = out.as_deref().and_then(|o| w.opts.iface_addrs.get(o));
            let addr = list.and_then(|l| {
                l.iter()
                    .find(|a| **a == p.dst)
                    .or_else(|| l.iter().find(|a| a.is_ipv6() == p.src.is_ipv6()))
            });
            let change = match addr {
                Some(a) => {
                    p.src = *a;
                    format!("src {}", endpoint(p.src, p.sport, p.has_ports()))
                }
                None => format!(
                    "src = address of {}",
                    out.as_deref().unwrap_or("the out interface")
                ),
            };
            Action::Nat {
                target: "MASQUERADE".into(),
                change,
            }
            .with_random_port(random)
        }
    }
}

/// Gives a port from a NAT target's range; true when the kernel would pick
/// one of the range at random rather than the one shown.
fn set_port(port: &mut u16, range: Option<NatPorts>, ports: bool) -> bool {
    match range {
        Some(r) if ports => {
            let (p, random) = r.pick(*port);
            *port = p;
            random
        }
        _ => false,
    }
}

impl Action {
    fn with_random_port(self, random: bool) -> Action {
        match self {
            Action::Nat { target, change } if random => Action::Nat {
                target,
                change: format!("{change} (the port is one of the range)"),
            },
            a => a,
        }
    }
}

fn endpoint(a: IpAddr, port: u16, ports: bool) -> String {
    match (a, ports) {
        (IpAddr::V6(a), true) => format!("[{a}]:{port}"),
        (a, true) => format!("{a}:{port}"),
        (a, false) => a.to_string(),
    }
}

/// Traces one packet (compiling what it needs on the way).
pub fn trace(rs: &Ruleset, pkt: &Packet, opts: &TraceOptions) -> Trace {
    Tracer::new(rs).trace(pkt, opts)
}
