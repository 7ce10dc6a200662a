//! The nftables ruleset model: plain data filled by the text parser
//! ([`super::parse`]) and the JSON reader ([`super::json`]), read by check,
//! graph, render, save and the packet trace.
//!
//! How it fits: an nft ruleset is a list of [`Table`]s, each of one
//! [`Family`], holding [`Chain`]s, [`Set`]s (named sets and maps),
//! [`Flowtable`]s and stateful [`Object`]s. A [`Chain`] is a base chain when
//! it has [`BaseChain`] (type, hook, priority as a number *and* as written,
//! policy, devices), a regular chain otherwise. A [`Rule`] keeps its source
//! position and display text and a list of typed [`Stmt`]s; expressions are
//! typed enough to evaluate ([`Expr`]: payload fields, meta, ct, fib,
//! literals, prefixes, ranges, anonymous sets, concatenations, `@set`
//! references, map lookups). What the reader does not understand is kept as
//! [`Stmt::Other`] / [`Expr::Other`] with its text, so nothing is lost and a
//! tracer can treat it as an assumption.
//!
//! Literals are kept as their canonical text without quotes (`"lo"` reads
//! as `lo`, JSON `22` as `22`), so that text and JSON input give the same
//! model. The whole nft side of an input is a [`NftRuleset`]; it lives in
//! [`crate::model::Ruleset::nft`] beside the iptables tables, so a mixed
//! host is one model.

use std::fmt;

use serde::Serialize;

use crate::model::Str;

/// All nft tables of one input, with what the file said around them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NftRuleset {
    /// Tables in file order (a table named twice is one table).
    pub tables: Vec<Table>,
    /// `define NAME = VALUE` lines, in order (already expanded where used).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub defines: Vec<Define>,
    /// `include "..."` lines: reported, not followed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<Include>,
    /// The input starts by emptying the ruleset (`flush ruleset`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flush_ruleset: bool,
}

impl NftRuleset {
    /// True when there is no table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Looks a table up by family and name.
    pub fn table(&self, family: Family, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.family == family && t.name == name)
    }

    /// Total number of rules, anonymous chains' rules included.
    pub fn rule_count(&self) -> usize {
        self.tables.iter().map(Table::rule_count).sum()
    }

    /// Total number of chains.
    pub fn chain_count(&self) -> usize {
        self.tables.iter().map(|t| t.chains.len()).sum()
    }
}

/// `define NAME = VALUE`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Define {
    /// Name without `$`.
    pub name: Str,
    /// The value as written.
    pub value: String,
    /// 1-based line.
    pub line: u32,
}

/// `include "PATH"`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Include {
    /// The path or glob as written.
    pub path: String,
    /// 1-based line.
    pub line: u32,
}

/// Address family of an nft table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// `ip` (also a table written without a family).
    #[default]
    Ip,
    /// `ip6`
    Ip6,
    /// `inet`: IPv4 and IPv6.
    Inet,
    /// `arp`
    Arp,
    /// `bridge`
    Bridge,
    /// `netdev`: ingress/egress of one device.
    Netdev,
}

impl Family {
    /// Every family, in the order nft lists them.
    pub const ALL: [Family; 6] = [
        Family::Ip,
        Family::Ip6,
        Family::Inet,
        Family::Arp,
        Family::Bridge,
        Family::Netdev,
    ];

    /// The keyword (`ip`, `inet`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }

    /// Reads a family keyword.
    pub fn from_name(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `table FAMILY NAME { ... }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    /// Family.
    pub family: Family,
    /// Name.
    pub name: Str,
    /// 1-based line of the first declaration; 0 from JSON.
    pub line: u32,
    /// Kernel handle (JSON, or `# handle N` with `-a`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// `flags dormant`, `flags owner` ...
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Str>,
    /// `comment "..."`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Chains in declaration order.
    pub chains: Vec<Chain>,
    /// Named sets and maps in declaration order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<Set>,
    /// Flowtables (shown, not traced).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flowtables: Vec<Flowtable>,
    /// Stateful objects (named counters, quotas, ct helpers ...), kept as text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Object>,
    /// `flush table` was given for this table in the input.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub flushed: bool,
}

impl Table {
    /// A new empty table.
    pub fn new(family: Family, name: impl Into<Str>, line: u32) -> Self {
        Table {
            family,
            name: name.into(),
            line,
            ..Default::default()
        }
    }

    /// Finds a chain by name.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// Finds a named set or map.
    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// Number of rules in all chains (anonymous chains included).
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(Chain::rule_count).sum()
    }

    /// Every verdict a rule of this table can take, named verdict maps
    /// resolved against this table's maps.
    pub fn rule_verdicts<'a>(&'a self, rule: &'a Rule) -> Vec<&'a Verdict> {
        let mut out = rule.verdicts();
        for s in &rule.stmts {
            if let Stmt::Vmap {
                map: Expr::SetRef(name),
                ..
            } = s
                && let Some(set) = self.set(name)
            {
                for e in &set.elements {
                    map_verdicts_elem(e, &mut out);
                }
            }
        }
        out
    }

    /// The base chains, in declaration order.
    pub fn base_chains(&self) -> impl Iterator<Item = &Chain> {
        self.chains.iter().filter(|c| c.base.is_some())
    }
}

/// One chain.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Chain {
    /// Name (anonymous chains get `{anon}` names made by the reader).
    pub name: Str,
    /// 1-based line of the declaration; 0 from JSON or when implied.
    pub line: u32,
    /// Kernel handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// Set for base chains (attached to a hook); boxed, as most chains
    /// are regular ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<Box<BaseChain>>,
    /// `comment "..."`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

impl Chain {
    /// A new regular chain.
    pub fn new(name: impl Into<Str>, line: u32) -> Self {
        Chain {
            name: name.into(),
            line,
            ..Default::default()
        }
    }

    /// Rules here plus the rules of anonymous chains they jump to.
    pub fn rule_count(&self) -> usize {
        self.rules
            .iter()
            .map(|r| 1 + r.anonymous_chains().map(Chain::rule_count).sum::<usize>())
            .sum()
    }

    /// The policy of a base chain (`accept` when not written).
    pub fn policy(&self) -> Option<Policy> {
        self.base
            .as_ref()
            .map(|b| b.policy.unwrap_or(Policy::Accept))
    }
}

/// What makes a chain a base chain: `type T hook H [device D] priority P; policy X;`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseChain {
    /// `filter`, `nat` or `route`.
    pub kind: ChainType,
    /// The hook.
    pub hook: Hook,
    /// The priority.
    pub priority: Priority,
    /// `policy accept|drop`; `None` when not written (the kernel uses accept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// `device "eth0"` / `devices = { ... }` (netdev, ingress/egress).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Str>,
}

/// Base chain type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    /// `filter`
    Filter,
    /// `nat`
    Nat,
    /// `route`
    Route,
    /// Anything else, as written.
    Other(Str),
}

impl ChainType {
    /// The keyword.
    pub fn as_str(&self) -> &str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
            ChainType::Other(s) => s,
        }
    }

    /// Reads a chain type keyword.
    pub fn from_name(s: &str) -> ChainType {
        match s {
            "filter" => ChainType::Filter,
            "nat" => ChainType::Nat,
            "route" => ChainType::Route,
            o => ChainType::Other(o.into()),
        }
    }
}

/// Netfilter hook of a base chain or flowtable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// `prerouting`
    Prerouting,
    /// `input`
    Input,
    /// `forward`
    Forward,
    /// `output`
    Output,
    /// `postrouting`
    Postrouting,
    /// `ingress` (netdev, inet)
    Ingress,
    /// `egress` (netdev)
    Egress,
    /// Anything else, as written.
    Other(Str),
}

impl Hook {
    /// The keyword.
    pub fn as_str(&self) -> &str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
            Hook::Other(s) => s,
        }
    }

    /// Reads a hook keyword.
    pub fn from_name(s: &str) -> Hook {
        match s {
            "prerouting" => Hook::Prerouting,
            "input" => Hook::Input,
            "forward" => Hook::Forward,
            "output" => Hook::Output,
            "postrouting" => Hook::Postrouting,
            "ingress" => Hook::Ingress,
            "egress" => Hook::Egress,
            o => Hook::Other(o.into()),
        }
    }

    /// The iptables built-in chain of the same hook (`PREROUTING` ...).
    pub fn iptables_chain(&self) -> Option<&'static str> {
        Some(match self {
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
            _ => return None,
        })
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A chain or flowtable priority: the number the kernel uses and how it
/// was written (`filter - 1`, `dstnat`, `-150`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Priority {
    /// The numeric value.
    pub value: i32,
    /// As written in the input (JSON gives only the number).
    pub written: String,
}

impl Priority {
    /// A priority written as a plain number.
    pub fn number(value: i32) -> Priority {
        Priority {
            value,
            written: value.to_string(),
        }
    }
}

/// The value of a named priority (`filter`, `dstnat`, ...) in a family
/// and hook, as nft defines them; `None` for a name that family does not
/// know. (The hook matters only to nft's check of where a name may be
/// used, which is left to `nft -c`.)
pub fn named_priority(family: Family, name: &str) -> Option<i32> {
    match family {
        Family::Bridge => match name {
            "dstnat" => Some(-300),
            "filter" => Some(-200),
            "out" => Some(100),
            "srcnat" => Some(300),
            _ => None,
        },
        Family::Arp | Family::Netdev => (name == "filter").then_some(0),
        Family::Ip | Family::Ip6 | Family::Inet => match name {
            "raw" => Some(-300),
            "mangle" => Some(-150),
            "dstnat" => Some(-100),
            "filter" => Some(0),
            "security" => Some(50),
            "srcnat" => Some(100),
            _ => None,
        },
    }
}

/// `policy accept|drop`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// `accept`
    Accept,
    /// `drop`
    Drop,
}

impl Policy {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Accept => "accept",
            Policy::Drop => "drop",
        }
    }
}

/// One rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rule {
    /// 1-based line where the rule starts; 0 from JSON.
    pub line: u32,
    /// 1-based column where the rule starts.
    pub col: u32,
    /// The rule as nft text, for display (comment and handle left out).
    pub text: String,
    /// Kernel handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<u64>,
    /// `comment "..."` (short ones, as most are, kept inline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<Str>,
    /// Statements in order.
    pub stmts: Vec<Stmt>,
}

impl PartialEq for Rule {
    /// Rules are equal by what they do and say, not where they were read.
    fn eq(&self, other: &Self) -> bool {
        self.comment == other.comment && self.stmts == other.stmts
    }
}

impl Rule {
    /// The verdict that ends this rule's walk, if any (the last verdict
    /// statement; a vmap is not one).
    pub fn verdict(&self) -> Option<&Verdict> {
        self.stmts.iter().rev().find_map(|s| match s {
            Stmt::Verdict(v) => Some(v),
            _ => None,
        })
    }

    /// Every verdict this rule can take: its plain verdicts, and the
    /// values of its anonymous verdict maps. Named verdict maps
    /// (`vmap @name`) are resolved by [`Table::rule_verdicts`].
    pub fn verdicts(&self) -> Vec<&Verdict> {
        let mut out = Vec::new();
        for s in &self.stmts {
            match s {
                Stmt::Verdict(v) => out.push(v),
                Stmt::Vmap { map, .. } => map_verdicts(map, &mut out),
                _ => {}
            }
        }
        out
    }

    /// Anonymous chains written inline (`jump { ... }`).
    pub fn anonymous_chains(&self) -> impl Iterator<Item = &Chain> {
        self.stmts.iter().filter_map(|s| match s {
            Stmt::Verdict(Verdict::JumpAnon(c) | Verdict::GotoAnon(c)) => Some(&**c),
            _ => None,
        })
    }
}

fn map_verdicts<'a>(map: &'a Expr, out: &mut Vec<&'a Verdict>) {
    if let Expr::Map(elems) = map {
        for e in elems {
            map_verdicts_elem(e, out);
        }
    }
}

fn map_verdicts_elem<'a>(e: &'a Expr, out: &mut Vec<&'a Verdict>) {
    if let Expr::MapElem(kv) = e
        && let Expr::Verdict(v) = &kv.1
    {
        out.push(v);
    }
}

/// One statement of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stmt {
    /// `LEFT [OP] RIGHT`: the rule goes on only when it holds.
    Match(Match),
    /// `accept`, `drop`, `jump X` ...
    Verdict(Verdict),
    /// `KEY vmap { K : VERDICT, ... }` or `KEY vmap @name`.
    Vmap {
        /// What is looked up.
        key: Expr,
        /// An anonymous map ([`Expr::Map`] elements) or a [`Expr::SetRef`].
        map: Expr,
    },
    /// `counter [packets N bytes M]` or `counter name X`.
    Counter {
        /// Packets, when printed.
        #[serde(skip_serializing_if = "Option::is_none")]
        packets: Option<u64>,
        /// Bytes, when printed.
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// A named counter object (`counter name "x"`).
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<Str>,
    },
    /// `log [prefix "..."] [level L] [group N] ...` (boxed: the largest
    /// statement, and a rarer one).
    Log(Box<Log>),
    /// `reject [with icmp|icmpv6|icmpx TYPE | with tcp reset]`: terminal.
    Reject {
        /// What follows `with` (`tcp reset`, `icmpx admin-prohibited`).
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<String>,
    },
    /// `limit rate [over] N/UNIT [burst M packets]`.
    Limit {
        /// The whole statement after `limit`.
        text: String,
    },
    /// `dnat`, `snat`, `masquerade`, `redirect`.
    Nat(Box<Nat>),
    /// `meta mark set X`, `ct mark set X`, `ip dscp set X` ...
    Mangle {
        /// What is written (a [`Expr::Meta`], [`Expr::Ct`], [`Expr::Payload`] ...).
        key: Expr,
        /// The value.
        value: Expr,
    },
    /// `notrack`
    Notrack,
    /// Anything not understood, kept as text.
    Other(String),
}

/// `log [prefix "..."] [level L] [group N] ...`
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Log {
    /// `prefix`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `level`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Str>,
    /// `group`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    /// Everything else (`flags ...`, `snaplen`, `queue-threshold`), as text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<String>,
}

/// `LEFT OP RIGHT`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// What is read from the packet.
    pub left: Expr,
    /// The comparison.
    pub op: RelOp,
    /// What it is compared with.
    pub right: Expr,
}

/// Relational operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RelOp {
    /// Nothing written: equality, membership, or for flag lists "any bit set".
    Implicit,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

impl RelOp {
    /// The operator as written (empty for implicit).
    pub fn as_str(self) -> &'static str {
        match self {
            RelOp::Implicit => "",
            RelOp::Eq => "==",
            RelOp::Ne => "!=",
            RelOp::Lt => "<",
            RelOp::Gt => ">",
            RelOp::Le => "<=",
            RelOp::Ge => ">=",
        }
    }
}

/// A verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// `accept`
    Accept,
    /// `drop`
    Drop,
    /// `continue`
    Continue,
    /// `return`
    Return,
    /// `jump CHAIN`
    Jump(Str),
    /// `goto CHAIN`
    Goto(Str),
    /// `jump { ... }`: an anonymous chain.
    JumpAnon(Box<Chain>),
    /// `goto { ... }`
    GotoAnon(Box<Chain>),
    /// `queue ...`, the arguments as text.
    Queue(String),
}

impl Verdict {
    /// The named chain jumped or gone to.
    pub fn chain(&self) -> Option<&str> {
        match self {
            Verdict::Jump(c) | Verdict::Goto(c) => Some(c),
            _ => None,
        }
    }

    /// `goto`, as opposed to `jump`.
    pub fn is_goto(&self) -> bool {
        matches!(self, Verdict::Goto(_) | Verdict::GotoAnon(_))
    }
}

/// `dnat|snat [ip|ip6] [to] ADDR[:PORT]`, `masquerade [to :PORT]`, `redirect [to :PORT]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Nat {
    /// Which one.
    pub kind: NatKind,
    /// `ip`/`ip6` written after the keyword (needed in inet tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<Family>,
    /// The address (a literal, range, prefix or map lookup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<Expr>,
    /// The port (a literal, range or map lookup).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Expr>,
    /// `random`, `persistent`, `fully-random`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Str>,
    /// Other words (`prefix`, `interval`), as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
}

/// The kind of NAT statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NatKind {
    /// `dnat`
    Dnat,
    /// `snat`
    Snat,
    /// `masquerade`
    Masquerade,
    /// `redirect`
    Redirect,
}

impl NatKind {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            NatKind::Dnat => "dnat",
            NatKind::Snat => "snat",
            NatKind::Masquerade => "masquerade",
            NatKind::Redirect => "redirect",
        }
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expr {
    /// A packet header field: `ip saddr`, `tcp dport`, `th dport`, `icmp type`,
    /// `ether saddr`, `vlan id` ...
    Payload(Payload),
    /// `meta KEY` or a bare meta key (`iifname`, `oif`, `mark`, `l4proto` ...).
    Meta(Str),
    /// `ct [original|reply] KEY`.
    Ct {
        /// `state`, `status`, `mark`, `direction`, `saddr` ...
        key: Str,
        /// `original`/`reply` when written.
        #[serde(skip_serializing_if = "Option::is_none")]
        dir: Option<CtDir>,
        /// `ip`/`ip6` in `ct original ip saddr`.
        #[serde(skip_serializing_if = "Option::is_none")]
        family: Option<Family>,
    },
    /// `fib saddr . iif oif`: flags then the result wanted (boxed: rare,
    /// and larger than the other expressions).
    Fib(Box<Fib>),
    /// A literal: its canonical text without quotes (`22`, `10.0.0.1`,
    /// `lo`, `established`, `0x00004000`).
    Value(Str),
    /// `ADDR/LEN`
    Prefix {
        /// The address.
        addr: Str,
        /// Prefix length.
        len: u8,
    },
    /// `LOW-HIGH`
    Range(Box<Expr>, Box<Expr>),
    /// `A,B,C`: a flag list (ct state, tcp flags).
    List(Vec<Expr>),
    /// `{ a, b, ... }`: an anonymous set.
    Set(Vec<Expr>),
    /// `{ k : v, ... }`: an anonymous map (each element a [`Expr::MapElem`]).
    Map(Vec<Expr>),
    /// `KEY : VALUE` inside a map or map-valued set definition (the
    /// two in one box: maps of thousands of elements are common).
    MapElem(Box<(Expr, Expr)>),
    /// `A . B . C`
    Concat(Vec<Expr>),
    /// `@name`
    SetRef(Str),
    /// `KEY map { ... }` or `KEY map @name`: a value looked up.
    Lookup {
        /// What is looked up.
        key: Box<Expr>,
        /// A [`Expr::Map`] or [`Expr::SetRef`].
        map: Box<Expr>,
    },
    /// A verdict as a map value.
    Verdict(Box<Verdict>),
    /// `A & B`, `A | B`, `A ^ B`, `A << B`, `A >> B`, and `A / B` for flag masks.
    Binop {
        /// The operator.
        op: BinOp,
        /// Left side.
        left: Box<Expr>,
        /// Right side.
        right: Box<Expr>,
    },
    /// `numgen inc|random mod N [offset M]`, `jhash ...`, `symhash ...` as text.
    Hash(String),
    /// An element with options (`1.2.3.4 timeout 1h comment "x"`): the key and the rest.
    Elem {
        /// The element's value.
        value: Box<Expr>,
        /// `timeout`, `expires`, `comment` ... as text.
        options: Box<str>,
    },
    /// Anything not understood, as text.
    Other(String),
}

// Expressions fill most of a large ruleset's memory: keep them at 32 bytes.
const _: () = assert!(std::mem::size_of::<Expr>() == 32);

/// A payload field: a protocol keyword and a field keyword, held in one
/// short string so that an [`Expr`] stays small (32 bytes: a length
/// beside the string would make it 40).
#[derive(Clone, PartialEq, Eq)]
pub struct Payload {
    /// The protocol's length in bytes (decimal) and `:`, then the
    /// protocol, then the field: `2:ipsaddr`. Any two strings can be
    /// held this way, and these are short enough to be kept inline.
    both: Str,
}

impl Payload {
    /// The field `field` of protocol `proto` (`tcp`, `dport`).
    pub fn new(proto: &str, field: &str) -> Payload {
        // The usual case (a protocol of up to nine bytes, all of it short
        // enough to be kept inline) is put together on the stack and
        // made a string once.
        let total = 2 + proto.len() + field.len();
        if proto.len() < 10 && total <= 24 {
            let mut buf = [0u8; 24];
            buf[0] = b'0' + proto.len() as u8;
            buf[1] = b':';
            buf[2..2 + proto.len()].copy_from_slice(proto.as_bytes());
            buf[2 + proto.len()..total].copy_from_slice(field.as_bytes());
            if let Ok(both) = std::str::from_utf8(&buf[..total]) {
                return Payload {
                    both: Str::from(both),
                };
            }
        }
        Payload::new_long(proto, field)
    }

    /// [`Payload::new`] for any lengths.
    #[cold]
    #[inline(never)]
    fn new_long(proto: &str, field: &str) -> Payload {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = proto.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut both = Str::with_capacity(digits.len() - i + 1 + proto.len() + field.len());
        // Only ASCII digits were written.
        both.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
        both.push(':');
        both.push_str(proto);
        both.push_str(field);
        Payload { both }
    }

    /// The protocol and the field.
    fn parts(&self) -> (&str, &str) {
        let (len, rest) = self.both.split_once(':').unwrap_or(("", &self.both));
        let len = len.parse().unwrap_or(0);
        rest.split_at_checked(len).unwrap_or((rest, ""))
    }

    /// Protocol keyword (`ip`, `ip6`, `tcp`, `udp`, `th`, `icmp`, ...).
    pub fn proto(&self) -> &str {
        self.parts().0
    }

    /// Field keyword (`saddr`, `dport`, `type`, ...).
    pub fn field(&self) -> &str {
        self.parts().1
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("proto", &self.proto())
            .field("field", &self.field())
            .finish()
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Payload", 2)?;
        st.serialize_field("proto", self.proto())?;
        st.serialize_field("field", self.field())?;
        st.end()
    }
}

/// `fib FLAGS RESULT`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fib {
    /// `saddr`, `daddr`, `mark`, `iif`, `oif`.
    pub flags: Vec<Str>,
    /// `oif`, `oifname`, `type`.
    pub result: Str,
}

/// A binary operator of [`Expr::Binop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BinOp {
    /// `&`
    #[serde(rename = "&")]
    And,
    /// `|`
    #[serde(rename = "|")]
    Or,
    /// `^`
    #[serde(rename = "^")]
    Xor,
    /// `<<`
    #[serde(rename = "<<")]
    Shl,
    /// `>>`
    #[serde(rename = ">>")]
    Shr,
    /// `/`: a flag mask (`syn / syn,rst`).
    #[serde(rename = "/")]
    Mask,
}

impl BinOp {
    /// The operator as nft prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::And => "&",
            BinOp::Or => "|",
            BinOp::Xor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::Mask => "/",
        }
    }

    /// Reads an operator as nft prints it.
    pub fn from_symbol(s: &str) -> Option<BinOp> {
        Some(match s {
            "&" => BinOp::And,
            "|" => BinOp::Or,
            "^" => BinOp::Xor,
            "<<" => BinOp::Shl,
            ">>" => BinOp::Shr,
            "/" => BinOp::Mask,
            _ => return None,
        })
    }
}

impl fmt::Display for BinOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ct original|reply`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CtDir {
    /// `original`
    Original,
    /// `reply`
    Reply,
}

/// A named set (`set`) or map (`map`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Set {
    /// Name.
    pub name: Str,
    /// 1-based line; 0 from JSON.
    pub line: u32,
    /// A map (`map`) has values; a set does not.
    pub is_map: bool,
    /// Key type: the parts of `type A . B` (or of `typeof`, as text).
    pub key_type: Vec<Str>,
    /// The key was given with `typeof` (the parts are expressions as text).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub key_typeof: bool,
    /// Value type of a map (`verdict`, `ipv4_addr . inet_service` parts ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_type: Vec<Str>,
    /// `flags interval,timeout,...`
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Str>,
    /// Elements; for maps each is an [`Expr::MapElem`].
    pub elements: Vec<Expr>,
    /// `comment "..."`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Other lines (`timeout 1h`, `size 65535`, `policy memory`,
    /// `auto-merge`, `counter`), as text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<String>,
}

impl Set {
    /// Has `flags interval` (elements may be ranges and prefixes).
    pub fn is_interval(&self) -> bool {
        self.flags.iter().any(|f| f == "interval")
    }
}

/// `flowtable NAME { hook H priority P; devices = { ... }; }`
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flowtable {
    /// Name.
    pub name: Str,
    /// 1-based line; 0 from JSON.
    pub line: u32,
    /// Hook (always `ingress`).
    pub hook: Hook,
    /// Priority.
    pub priority: Priority,
    /// Devices.
    pub devices: Vec<Str>,
}

/// A stateful object (`counter NAME { }`, `quota`, `ct helper`, `limit` ...), as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Object {
    /// The kind (`counter`, `quota`, `ct helper`, `ct timeout`, `limit`, `secmark`, `synproxy`).
    pub kind: String,
    /// Name.
    pub name: Str,
    /// 1-based line; 0 from JSON.
    pub line: u32,
    /// The body between the braces, as text.
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_keeps_any_protocol_and_field_apart() {
        for (p, f) in [
            ("ip", "saddr"),
            ("", ""),
            ("a:b", "12:x"),
            ("0123456789ab", ""),
            ("é", "ü:"),
        ] {
            let x = Payload::new(p, f);
            assert_eq!((x.proto(), x.field()), (p, f));
        }
        let long = "p".repeat(300);
        let x = Payload::new(&long, "f");
        assert_eq!((x.proto(), x.field()), (long.as_str(), "f"));
        assert_eq!(
            serde_json::to_string(&Expr::Payload(Payload::new("tcp", "dport"))).unwrap(),
            r#"{"payload":{"proto":"tcp","field":"dport"}}"#
        );
    }
}
