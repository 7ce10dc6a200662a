//! Many packets at once: a stream of packets (a capture, a JSON lines
//! file) traced one after the other with a connection table like the
//! kernel's, so the first packet of a flow is NEW and walks the nat table,
//! later ones take the bindings it left, and replies are recognised. The
//! results are summed up for a person (per verdict, per deciding rule, the
//! flows dropped most) and as per-rule packet counts, the counters the
//! traffic would have produced.
//!
//! ```
//! use iptviz::trace::{Batch, Observed, Packet, TraceOptions, Tracer, Verdict};
//! let text = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
//!             -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
//!             -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
//! let rs = iptviz::parse_str(text, &iptviz::ParseOptions::strict("doc")).unwrap().ruleset;
//! let tracer = Tracer::new(&rs);
//! let opts = TraceOptions { local: vec!["192.0.2.2".parse().unwrap()], ..Default::default() };
//! let mut batch = Batch::new(&tracer, opts);
//! let mut syn = Packet::new(6, "192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
//! syn.sport = 40000;
//! syn.dport = 22;
//! let first = batch.push(Observed::new(syn.clone()));
//! assert_eq!(first.trace.verdict, Verdict::Accept);
//! // The same flow again, now that a reply was seen: ESTABLISHED.
//! let mut reply = Packet::new(6, syn.dst, syn.src);
//! (reply.sport, reply.dport) = (22, 40000);
//! batch.push(Observed::new(reply));
//! let later = batch.push(Observed::new(syn));
//! assert_eq!(later.trace.input.state.name(), "ESTABLISHED");
//! assert_eq!(batch.summary().packets, 3);
//! ```

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::model::{Counters, Ruleset};

use super::packet::{CtState, Packet, tcp_flags};
use super::{Action, Connection, Direction, Route, Trace, TraceOptions, Tracer, Tuple, Verdict};

/// A packet of the stream and what its source knew about it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The packet as it was seen (state, interfaces as far as known).
    pub packet: Packet,
    /// The conntrack state was given explicitly: it is kept, and the
    /// packet is traced without a connection.
    pub fixed_state: bool,
    /// The capture says the packet was leaving this host (a Linux cooked
    /// capture marks such packets).
    pub outgoing: bool,
    /// For an ICMP error: the protocol and tuple of the packet it quotes,
    /// as that packet was sent (so the error is RELATED to its flow).
    pub quoted: Option<(u8, Tuple)>,
}

impl Observed {
    /// A packet whose state the connection table decides.
    pub fn new(packet: Packet) -> Observed {
        Observed {
            packet,
            fixed_state: false,
            outgoing: false,
            quoted: None,
        }
    }
}

/// A flow by protocol and its two ends in a fixed order (so both
/// directions give the same key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    a: (IpAddr, u16),
    b: (IpAddr, u16),
}

impl Key {
    fn of(proto: u8, t: &Tuple) -> Key {
        let x = (t.src, t.sport);
        let y = (t.dst, t.dport);
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        Key { proto, a, b }
    }
}

/// A conntrack entry as the batch keeps it.
#[derive(Debug, Clone)]
struct Conn {
    conn: Connection,
    /// The route of the first packet.
    route: Route,
    in_iface: Option<crate::model::Str>,
    out_iface: Option<crate::model::Str>,
    /// A packet in the reply direction was seen (later original packets
    /// are ESTABLISHED, not NEW).
    seen_reply: bool,
    /// TCP: started by a SYN (not picked up mid-stream).
    syn: bool,
}

/// What the summary keeps of one flow.
#[derive(Debug, Clone)]
struct Flow {
    /// Protocol number.
    proto: u8,
    /// Number of the flow, in the order flows were first seen (1-based).
    id: u64,
    /// The tuple of the flow's first packet.
    first: Tuple,
    /// Verdicts its packets got, as bits (see `verdict_bit`).
    verdicts: u8,
    /// Packets dropped (DROP, REJECT, or by routing).
    dropped: u64,
    /// Packets in all.
    packets: u64,
    /// What ended the walk of its first dropped packet.
    drop_by: Option<Decider>,
    /// Packet number last seen (for forgetting old flows).
    last_seen: u64,
    conn: Option<Conn>,
}

/// The rule, policy or routing decision that ended a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decider {
    /// A rule (table, chain, rule index) or a policy (rule `None`).
    Rule(usize, usize, Option<usize>),
    /// Routing (or no table at all) decided: see the trace's notes.
    Routing,
}

fn verdict_bit(v: Verdict) -> u8 {
    match v {
        Verdict::Accept => 1,
        Verdict::Drop => 2,
        Verdict::Reject => 4,
        Verdict::Queue => 8,
    }
}

const VERDICTS: [Verdict; 4] = [
    Verdict::Accept,
    Verdict::Drop,
    Verdict::Reject,
    Verdict::Queue,
];

/// One packet traced in a batch.
#[derive(Debug, Clone)]
pub struct Traced {
    /// 1-based number of the packet in the stream.
    pub number: u64,
    /// 1-based number of its flow.
    pub flow: u64,
    /// The packet belongs to its flow's reply direction.
    pub reply: bool,
    /// What ended its walk.
    pub decider: Decider,
    /// The walk (matched steps only).
    pub trace: Trace,
}

/// Totals for one verdict or deciding rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Packets.
    pub packets: u64,
    /// Distinct flows among them.
    pub flows: u64,
}

/// Running totals of a batch.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Packets traced.
    pub packets: u64,
    /// Packets that could not be read (bad line, truncated, unknown link).
    pub unreadable: u64,
    /// Flows seen.
    pub flows: u64,
    /// Flows forgotten because the flow table was full (they count again
    /// if they come back).
    pub forgotten: u64,
    /// Per verdict.
    pub verdicts: FxHashMap<Verdict, Tally>,
    /// Per deciding rule or policy.
    pub deciders: FxHashMap<Decider, Tally>,
    /// Packets per state they were traced in.
    pub states: FxHashMap<CtState, u64>,
    /// Replies recognised.
    pub replies: u64,
}

/// Replays packets through a ruleset with a connection table.
pub struct Batch<'t, 'r> {
    tracer: &'t Tracer<'r>,
    opts: TraceOptions,
    flows: FxHashMap<Key, Flow>,
    /// A NAT'd connection's reply tuple (canonical) to its flow's key.
    replies: FxHashMap<Key, Key>,
    /// Matched rules and policies: (table, chain, rule) to packets and bytes.
    hits: FxHashMap<(usize, usize, Option<usize>), (u64, u64)>,
    /// Flows dropped most that were forgotten on the way.
    kept_flows: Vec<Flow>,
    /// Per deciding rule: flows counted already (flow id, decider).
    flow_deciders: FxHashMap<(u64, Decider), ()>,
    totals: Totals,
    /// The direction given for every packet, if any.
    direction: Option<Direction>,
    /// The most flows kept at once (200,000 by default: the table then
    /// fits 2^18 buckets, about 100 MB); past it the older half is
    /// forgotten, so memory stays bounded whatever the length of the stream.
    pub max_flows: usize,
    /// How many dropped flows the summary lists.
    pub top: usize,
}

/// One of the flows dropped most.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedFlow {
    /// Its number.
    pub flow: u64,
    /// Protocol name.
    pub proto: String,
    /// Its first packet's ends.
    pub src: IpAddr,
    /// Source port (0 without ports).
    pub sport: u16,
    /// Destination.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// Packets dropped.
    pub dropped: u64,
    /// Packets in all.
    pub packets: u64,
    /// What dropped its first dropped packet.
    #[serde(skip)]
    pub by: Option<Decider>,
    /// The same in words.
    pub rule: String,
}

impl<'t, 'r> Batch<'t, 'r> {
    /// A batch over `tracer`'s ruleset, each packet traced with `opts`
    /// (`matched_only` is turned on; `connection` is set per packet).
    pub fn new(tracer: &'t Tracer<'r>, mut opts: TraceOptions) -> Self {
        opts.matched_only = true;
        opts.connection = None;
        Batch {
            direction: opts.direction,
            tracer,
            opts,
            flows: FxHashMap::default(),
            replies: FxHashMap::default(),
            hits: FxHashMap::default(),
            kept_flows: Vec::new(),
            flow_deciders: FxHashMap::default(),
            totals: Totals::default(),
            max_flows: 200_000,
            top: 10,
        }
    }

    /// Counts a packet that could not be read.
    pub fn unreadable(&mut self) {
        self.totals.unreadable += 1;
    }

    /// Totals so far.
    pub fn summary(&self) -> &Totals {
        &self.totals
    }

    /// Traces the next packet of the stream.
    pub fn push(&mut self, obs: Observed) -> Traced {
        self.totals.packets += 1;
        let number = self.totals.packets;
        let mut pkt = obs.packet;
        let mut opts = std::mem::take(&mut self.opts);
        let proto = pkt.proto;
        let t = tuple(&pkt);
        let key = Key::of(proto, &t);
        let mut reply = false;
        let mut join: Option<Key> = None;
        let mut nat_seen = false;
        if !obs.fixed_state {
            pkt.state = CtState::New;
            if is_icmp_error(&pkt) {
                // An ICMP error has no connection of its own: it is RELATED
                // to the one of the packet it quotes, or INVALID.
                let known = obs
                    .quoted
                    .is_some_and(|(qp, qt)| self.lookup(Key::of(qp, &qt), &qt).is_some());
                pkt.state = if known {
                    CtState::Related
                } else {
                    CtState::Invalid
                };
            } else if proto == 59 && pkt.src.is_ipv6() {
                // "No next header": conntrack finds no protocol to track
                // (tests/kernel_fields.rs).
                pkt.state = CtState::Invalid;
            } else if let Some((k, is_reply, before_nat)) =
                self.lookup(key, &t).filter(|(_, r, _)| icmp_fits(&pkt, *r))
            {
                join = Some(k);
                reply = is_reply;
                if let Some(b) = before_nat {
                    // Traced as the rules saw it, before the NAT the
                    // capture saw applied.
                    pkt.src = b.src;
                    pkt.dst = b.dst;
                    if pkt.has_ports() {
                        pkt.sport = b.sport;
                        pkt.dport = b.dport;
                    }
                    nat_seen = true;
                }
            } else if proto == 6 && !tcp_may_start(pkt.tcp_flags) {
                // Conntrack picks up a connection from a SYN, or from a
                // bare ACK mid-stream; anything else starts none.
                pkt.state = CtState::Invalid;
            } else if let Some(s) = icmp_lone_state(&pkt) {
                pkt.state = s;
            }
        }
        opts.direction = self.direction;
        let from_here = obs.outgoing
            || opts.direction == Some(Direction::Out)
            || (opts.direction.is_none()
                // With routing modelled, what arrives on an interface
                // arrives, whatever its source (as in `Tracer::trace`).
                && !(opts.routing.is_some() && pkt.in_iface.is_some())
                && (opts.local.contains(&pkt.src) || pkt.src.is_loopback()));
        if from_here {
            opts.direction = Some(Direction::Out);
            // Seen on an interface while leaving by it.
            if pkt.out_iface.is_none() {
                pkt.out_iface = pkt.in_iface.take();
            }
            pkt.in_iface = None;
        }
        if let Some(k) = join
            && let Some(c) = self.flows.get(&k).and_then(|f| f.conn.as_ref())
        {
            opts.connection = Some(c.conn);
            if reply {
                pkt.state = CtState::Established;
                // The reply goes back the way the first packet came.
                let (i, o, d) = match c.route {
                    Route::Forward => (c.out_iface.clone(), c.in_iface.clone(), Direction::Forward),
                    Route::Local => (None, c.in_iface.clone(), Direction::Out),
                    Route::Output => (c.out_iface.clone(), None, Direction::In),
                };
                pkt.in_iface = i.or(pkt.in_iface);
                pkt.out_iface = o.or(pkt.out_iface);
                opts.direction = Some(d);
            } else {
                pkt.state = if c.seen_reply {
                    CtState::Established
                } else if proto == 6 && c.syn && !tcp_before_reply(pkt.tcp_flags) {
                    // Conntrack's TCP tracking refuses it: no connection,
                    // no NAT binding.
                    opts.connection = None;
                    CtState::Invalid
                } else {
                    CtState::New
                };
                opts.direction = Some(match c.route {
                    Route::Forward => Direction::Forward,
                    Route::Local => Direction::In,
                    Route::Output => Direction::Out,
                });
                if c.in_iface.is_some() {
                    pkt.in_iface = c.in_iface.clone();
                }
                if c.out_iface.is_some() && c.route != Route::Local {
                    pkt.out_iface = c.out_iface.clone();
                }
            }
        }
        let mut trace = self.tracer.trace(&pkt, &opts);
        if nat_seen {
            trace.notes.insert(
                0,
                format!(
                    "captured after its connection's NAT as {}: traced as the rules saw it",
                    endpoints(proto, &t)
                ),
            );
        }
        opts.connection = None;
        self.opts = opts;

        // A first packet accepted leaves its connection behind.
        let accepted = trace.verdict == Verdict::Accept;
        let state = trace.input.state;
        *self.totals.states.entry(state).or_default() += 1;
        if reply {
            self.totals.replies += 1;
        }
        let flow_key = join.unwrap_or(key);
        if !self.flows.contains_key(&flow_key) && self.flows.len() >= self.max_flows {
            self.forget();
        }
        let new_flow = !self.flows.contains_key(&flow_key);
        if new_flow {
            self.totals.flows += 1;
        }
        let id = self.totals.flows;
        let decider = decider(&trace, self.tracer.ruleset());
        let flow = self.flows.entry(flow_key).or_insert_with(|| Flow {
            proto,
            id,
            first: t,
            verdicts: 0,
            dropped: 0,
            packets: 0,
            drop_by: None,
            last_seen: number,
            conn: None,
        });
        flow.packets += 1;
        flow.last_seen = number;
        if join.is_none() && accepted && !obs.fixed_state && state == CtState::New {
            let conn = trace.connection();
            let c = Conn {
                conn,
                route: trace.route,
                in_iface: trace.input.in_iface.clone(),
                out_iface: match trace.route {
                    Route::Local => None,
                    _ => trace.output.out_iface.clone(),
                },
                seen_reply: false,
                syn: trace.input.tcp_flags & tcp_flags::SYN != 0,
            };
            flow.conn = Some(c);
            let rk = Key::of(proto, &conn.reply);
            if rk != flow_key {
                self.replies.insert(rk, flow_key);
            }
        } else if reply && let Some(c) = flow.conn.as_mut() {
            c.seen_reply = true;
        }
        let bit = verdict_bit(trace.verdict);
        let first_verdict = flow.verdicts & bit == 0;
        flow.verdicts |= bit;
        if trace.verdict != Verdict::Accept {
            flow.dropped += 1;
            if flow.drop_by.is_none() {
                flow.drop_by = Some(decider);
            }
        }
        let flow_id = flow.id;
        let v = self.totals.verdicts.entry(trace.verdict).or_default();
        v.packets += 1;
        if first_verdict {
            v.flows += 1;
        }
        let d = self.totals.deciders.entry(decider).or_default();
        d.packets += 1;
        if self.flow_deciders.insert((flow_id, decider), ()).is_none() {
            d.flows += 1;
        }
        let bytes = u64::from(trace.input.length);
        for s in &trace.steps {
            let counted = match s.action {
                Action::FallOff => false,
                Action::Policy { .. } => true,
                _ => s.rule.is_some(),
            };
            if s.matched && counted {
                let h = self.hits.entry((s.table, s.chain, s.rule)).or_default();
                h.0 += 1;
                h.1 += bytes;
            }
        }
        Traced {
            number,
            flow: flow_id,
            reply,
            decider,
            trace,
        }
    }

    /// The flow a packet with tuple `t` belongs to, whether it is in the
    /// reply direction, and the tuple it had before NAT when the capture
    /// saw it after (an original packet after DNAT/SNAT, a reply after
    /// NAT was undone on its way out).
    fn lookup(&self, key: Key, t: &Tuple) -> Option<(Key, bool, Option<Tuple>)> {
        let check = |k: Key| -> Option<(Key, bool, Option<Tuple>)> {
            let c = &self.flows.get(&k)?.conn.as_ref()?.conn;
            let (o, r) = (c.orig, c.reply);
            if *t == o {
                Some((k, false, None))
            } else if *t == r {
                Some((k, true, None))
            } else if *t == r.inverse() {
                Some((k, false, Some(o)))
            } else if *t == o.inverse() {
                Some((k, true, Some(r)))
            } else {
                None
            }
        };
        check(key).or_else(|| check(*self.replies.get(&key)?))
    }

    /// Forgets the older half of the flows (the table is full).
    fn forget(&mut self) {
        let mut seen: Vec<u64> = self.flows.values().map(|f| f.last_seen).collect();
        let mid = seen.len() / 2;
        let (_, cut, _) = seen.select_nth_unstable(mid);
        let cut = *cut;
        let mut gone = Vec::new();
        let mut dropped = Vec::new();
        self.flows.retain(|_, f| {
            let keep = f.last_seen > cut;
            if !keep {
                gone.push(f.id);
                if f.dropped > 0 {
                    dropped.push(f.clone());
                }
            }
            keep
        });
        // Only the worst of the forgotten dropped flows are kept, as text
        // needs the ruleset: keep their numbers and rule now.
        dropped.sort_by(|a, b| b.dropped.cmp(&a.dropped).then(a.id.cmp(&b.id)));
        dropped.truncate(self.top);
        self.kept_flows.extend(dropped);
        self.kept_flows
            .sort_by(|a, b| b.dropped.cmp(&a.dropped).then(a.id.cmp(&b.id)));
        self.kept_flows.truncate(self.top);
        let flows = &self.flows;
        self.replies.retain(|_, k| flows.contains_key(k));
        self.totals.forgotten += gone.len() as u64;
        let ids: rustc_hash::FxHashSet<u64> = gone.into_iter().collect();
        self.flow_deciders.retain(|(id, _), _| !ids.contains(id));
    }

    /// The flows dropped most, worst first.
    pub fn top_dropped(&self, rs: &Ruleset) -> Vec<DroppedFlow> {
        let mut all: Vec<DroppedFlow> = self
            .kept_flows
            .iter()
            .chain(self.flows.values().filter(|f| f.dropped > 0))
            .map(|f| dropped_flow(f, rs))
            .collect();
        all.sort_by(|a, b| b.dropped.cmp(&a.dropped).then(a.flow.cmp(&b.flow)));
        all.truncate(self.top);
        all
    }

    /// Packets and bytes each rule and policy matched.
    pub fn hits(&self) -> &FxHashMap<(usize, usize, Option<usize>), (u64, u64)> {
        &self.hits
    }

    /// A copy of the ruleset whose counters are those this traffic would
    /// have produced (rules and policies it never reached count 0).
    pub fn counted(&self, rs: &Ruleset) -> Ruleset {
        let mut out = rs.clone();
        for (t, table) in out.tables.iter_mut().enumerate() {
            for (c, chain) in table.chains.iter_mut().enumerate() {
                if chain.policy.is_some() {
                    let (packets, bytes) = self.hits.get(&(t, c, None)).copied().unwrap_or((0, 0));
                    chain.counters = Some(Counters { packets, bytes });
                }
                for (i, r) in chain.rules.iter_mut().enumerate() {
                    let (packets, bytes) =
                        self.hits.get(&(t, c, Some(i))).copied().unwrap_or((0, 0));
                    r.counters = Some(Counters { packets, bytes });
                }
            }
        }
        out
    }

    /// The summary with names resolved.
    pub fn report(&self, rs: &Ruleset) -> BatchSummary {
        let t = &self.totals;
        let verdicts = VERDICTS
            .iter()
            .filter_map(|v| t.verdicts.get(v).map(|x| (*v, *x)))
            .map(|(verdict, tally)| VerdictTally { verdict, tally })
            .collect();
        let mut deciders: Vec<(Decider, Tally)> =
            t.deciders.iter().map(|(d, x)| (*d, *x)).collect();
        deciders.sort_by(|a, b| b.1.packets.cmp(&a.1.packets).then(a.0.cmp(&b.0)));
        let deciders = deciders
            .into_iter()
            .map(|(d, tally)| {
                let (rule, line) = describe(d, rs);
                DeciderTally {
                    decider: d,
                    rule,
                    line,
                    verdict: verdict_of(d, rs),
                    tally,
                }
            })
            .collect();
        let mut states: Vec<(CtState, u64)> = t.states.iter().map(|(s, n)| (*s, *n)).collect();
        states.sort_by_key(|s| s.0.name());
        BatchSummary {
            packets: t.packets,
            unreadable: t.unreadable,
            flows: t.flows,
            forgotten_flows: t.forgotten,
            replies: t.replies,
            states: states
                .into_iter()
                .map(|(s, n)| (s.name().to_string(), n))
                .collect(),
            verdicts,
            deciders,
            top_dropped: self.top_dropped(rs),
        }
    }
}

fn dropped_flow(f: &Flow, rs: &Ruleset) -> DroppedFlow {
    DroppedFlow {
        flow: f.id,
        proto: super::protocol_name(f.proto),
        src: f.first.src,
        sport: f.first.sport,
        dst: f.first.dst,
        dport: f.first.dport,
        dropped: f.dropped,
        packets: f.packets,
        by: f.drop_by,
        rule: f
            .drop_by
            .map(|d| describe(d, rs).0)
            .unwrap_or_else(|| "?".into()),
    }
}

/// What ended the walk: for a packet stopped, the rule or policy that
/// stopped it; for one let through, the last rule or policy of the filter
/// table that accepted it (of any table when no filter table ran); routing
/// when no rule decided.
pub fn decider(t: &Trace, rs: &Ruleset) -> Decider {
    let verdict_step = |s: &&super::Step| {
        s.matched
            && matches!(
                s.action,
                Action::Verdict { .. }
                    | Action::Extension { .. }
                    | Action::Policy { .. }
                    | Action::Nat { .. }
            )
    };
    let step = match t.decided_by {
        Some(i) => t.steps.get(i),
        None if t.verdict == Verdict::Accept => t
            .steps
            .iter()
            .rev()
            .filter(verdict_step)
            .find(|s| rs.tables.get(s.table).is_some_and(|x| x.name == "filter"))
            .or_else(|| t.steps.iter().rev().find(verdict_step)),
        None => None,
    };
    match step {
        Some(s) => Decider::Rule(s.table, s.chain, s.rule),
        None => Decider::Routing,
    }
}

/// `filter FORWARD#3` or `filter INPUT policy`, and the rule's line.
pub fn describe(d: Decider, rs: &Ruleset) -> (String, Option<u32>) {
    match d {
        Decider::Routing => (
            "routing (no rule: see the notes of a packet's trace)".into(),
            None,
        ),
        Decider::Rule(t, c, r) => {
            let Some(table) = rs.tables.get(t) else {
                return ("?".into(), None);
            };
            let chain = &table.chains[c];
            match r {
                Some(i) => {
                    let rule = &chain.rules[i];
                    (
                        format!("{} {}#{}", table.name, chain.name, i + 1),
                        Some(rule.line),
                    )
                }
                None => (
                    format!(
                        "{} {} policy {}",
                        table.name,
                        chain.name,
                        chain.policy.as_deref().unwrap_or("-")
                    ),
                    None,
                ),
            }
        }
    }
}

fn verdict_of(d: Decider, rs: &Ruleset) -> Option<String> {
    let Decider::Rule(t, c, r) = d else {
        return Some("DROP".into());
    };
    let chain = &rs.tables.get(t)?.chains[c];
    match r {
        None => chain.policy.as_deref().map(str::to_string),
        Some(i) => chain.rules[i].target().map(|t| t.name.to_string()),
    }
}

/// Packets and flows of one verdict.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictTally {
    /// The verdict.
    pub verdict: Verdict,
    /// Its packets and flows.
    #[serde(flatten)]
    pub tally: Tally,
}

/// Packets and flows one rule or policy decided.
#[derive(Debug, Clone, Serialize)]
pub struct DeciderTally {
    /// The rule or policy (indices into the ruleset).
    #[serde(skip)]
    pub decider: Decider,
    /// `TABLE CHAIN#N` (1-based), `TABLE CHAIN policy P`, or routing.
    pub rule: String,
    /// The rule's line in the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Its target or policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Its packets and flows.
    #[serde(flatten)]
    pub tally: Tally,
}

/// What a batch found, for a person or as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    /// Packets traced.
    pub packets: u64,
    /// Packets that could not be read.
    pub unreadable: u64,
    /// Flows.
    pub flows: u64,
    /// Flows forgotten because the flow table was full.
    pub forgotten_flows: u64,
    /// Packets recognised as replies.
    pub replies: u64,
    /// Packets per conntrack state.
    pub states: Vec<(String, u64)>,
    /// Per verdict.
    pub verdicts: Vec<VerdictTally>,
    /// Per deciding rule or policy, most packets first.
    pub deciders: Vec<DeciderTally>,
    /// The flows dropped most.
    pub top_dropped: Vec<DroppedFlow>,
}

impl BatchSummary {
    /// The summary as text.
    pub fn text(&self, name: &str) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{name}: {} packets in {} flows ({} replies recognised)",
            self.packets, self.flows, self.replies
        );
        if self.unreadable > 0 {
            let _ = writeln!(
                s,
                "  {} packets could not be read (see above)",
                self.unreadable
            );
        }
        if self.forgotten_flows > 0 {
            let _ = writeln!(
                s,
                "  {} flows were forgotten to bound memory; a flow seen again after that counts again",
                self.forgotten_flows
            );
        }
        let states: Vec<String> = self
            .states
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect();
        let _ = writeln!(s, "  states: {}", states.join(", "));
        let _ = writeln!(s, "\nverdict     packets    flows");
        for v in &self.verdicts {
            let _ = writeln!(
                s,
                "{:<8} {:>10} {:>8}",
                v.verdict.to_string(),
                v.tally.packets,
                v.tally.flows
            );
        }
        let _ = writeln!(s, "\ndecided by (the rule or policy that ended each walk)");
        let _ = writeln!(s, "   packets    flows  rule");
        for d in &self.deciders {
            let line = d.line.map(|l| format!(" (line {l})")).unwrap_or_default();
            let verdict = d
                .verdict
                .as_deref()
                .map(|v| format!(" -> {v}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "{:>10} {:>8}  {}{line}{verdict}",
                d.tally.packets, d.tally.flows, d.rule
            );
        }
        if !self.top_dropped.is_empty() {
            let _ = writeln!(s, "\nflows dropped most");
            let _ = writeln!(s, "   dropped  of packets  flow");
            for f in &self.top_dropped {
                let _ = writeln!(
                    s,
                    "{:>10} {:>11}  #{} {} {} -> {}  by {}",
                    f.dropped,
                    f.packets,
                    f.flow,
                    f.proto,
                    end(f.src, f.sport),
                    end(f.dst, f.dport),
                    f.rule
                );
            }
        }
        s
    }
}

fn end(a: IpAddr, port: u16) -> String {
    match (a, port) {
        (a, 0) => a.to_string(),
        (IpAddr::V6(a), p) => format!("[{a}]:{p}"),
        (a, p) => format!("{a}:{p}"),
    }
}

/// The tuple conntrack would give the packet (ICMP echo: no ports).
fn tuple(p: &Packet) -> Tuple {
    let ports = p.has_ports();
    Tuple {
        src: p.src,
        dst: p.dst,
        sport: if ports { p.sport } else { 0 },
        dport: if ports { p.dport } else { 0 },
    }
}

/// ICMP and ICMPv6 error messages (they quote the packet they are about).
fn is_icmp_error(p: &Packet) -> bool {
    match p.proto {
        1 => matches!(p.icmp.0, 3 | 4 | 5 | 11 | 12),
        58 => matches!(p.icmp.0, 1..=4),
        _ => false,
    }
}

/// Whether conntrack starts a connection from a TCP packet with these
/// flags when it knows none (a SYN, or a bare ACK picked up mid-stream).
fn tcp_may_start(flags: u8) -> bool {
    use tcp_flags::*;
    if flags & RST != 0 {
        return false;
    }
    if flags & SYN != 0 {
        return flags & ACK == 0;
    }
    flags & FIN == 0 && flags & ACK != 0
}

fn endpoints(proto: u8, t: &Tuple) -> String {
    let ports = matches!(proto, 6 | 17 | 132 | 136);
    let e = |a: IpAddr, p: u16| if ports { end(a, p) } else { a.to_string() };
    format!("{} -> {}", e(t.src, t.sport), e(t.dst, t.dport))
}

/// ICMP requests that start a connection, and their replies.
fn icmp_request_reply(p: &Packet) -> Option<(bool, bool)> {
    Some(match (p.proto, p.icmp.0) {
        (1, 8 | 13 | 15 | 17) | (58, 128 | 139) => (true, false),
        (1, 0 | 14 | 16 | 18) | (58, 129 | 140) => (false, true),
        (1 | 58, _) => (false, false),
        _ => return None,
    })
}

/// Whether an ICMP packet can be in the direction found: a request goes
/// the original way, its answer the reply way (other protocols: always).
fn icmp_fits(p: &Packet, reply: bool) -> bool {
    match icmp_request_reply(p) {
        Some((request, answer)) => (request && !reply) || (answer && reply),
        None => true,
    }
}

/// The state conntrack gives an ICMP packet of no known connection (not
/// an error): requests start one; neighbour discovery and listener
/// messages are not tracked; anything else (an answer to nothing) is
/// INVALID.
fn icmp_lone_state(p: &Packet) -> Option<CtState> {
    let (request, _) = icmp_request_reply(p)?;
    Some(if request {
        CtState::New
    } else if p.proto == 58 && matches!(p.icmp.0, 130..=136 | 143) {
        CtState::Untracked
    } else {
        CtState::Invalid
    })
}

/// Whether conntrack accepts a TCP packet in the original direction of a
/// connection whose first packet was a SYN and that saw no reply yet: a
/// SYN again or a RST (NEW); an ACK, FIN or SYN-ACK is INVALID.
fn tcp_before_reply(flags: u8) -> bool {
    use tcp_flags::*;
    flags & RST != 0 || (flags & SYN != 0 && flags & ACK == 0)
}
