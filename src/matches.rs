//! One table of every match module and target that iptables ships, as data.
//!
//! Each [`Ext`] says what a module or target accepts: its options and their
//! aliases, the grammar of each value, where `!` may stand, which protocol
//! (`-p`) it needs, which options exclude or need one another, the address
//! families it exists in, and for targets (and a few matches) the tables
//! and hooks where the kernel allows it. The parser's validation
//! ([`check_rule`]), the whole-ruleset check (`crate::parse::check`), the
//! typed views (`crate::typed`) and the tracer's compile step
//! (`crate::trace::compile`) all read option names through this table, so
//! adding a module means adding one entry to `matches/modules.rs` or
//! `matches/targets.rs`.
//!
//! The data follows what iptables 1.8.9 (`libxt_*`, `libipt_*`, `libip6t_*`)
//! and the kernel refuse, measured with `iptables-restore` in a network
//! namespace (`tests/kernel_check.rs`). The ebtables and arptables
//! extensions (`libebt_*`, `libarpt_*`) are out of scope: iptviz reads
//! `iptables-save` and `ip6tables-save` only.

use std::sync::OnceLock;

use crate::model::{Family, Negatable, Opt, Rule};

/// The `iptables -L` forms of each module and target, the table's `-L` column.
pub mod listing;
mod modules;
mod names;
mod targets;
pub mod values;

pub use values::Value;

/// Where an extension exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fam {
    /// iptables and ip6tables.
    Both,
    /// iptables only.
    V4,
    /// ip6tables only.
    V6,
}

impl Fam {
    fn has(self, f: Family) -> bool {
        matches!(
            (self, f),
            (Fam::Both, _) | (Fam::V4, Family::Ipv4) | (Fam::V6, Family::Ipv6)
        )
    }
}

/// Hook bits, as in a kernel hook mask.
pub mod hook {
    /// PREROUTING
    pub const PRE: u8 = 1;
    /// INPUT
    pub const IN: u8 = 2;
    /// FORWARD
    pub const FWD: u8 = 4;
    /// OUTPUT
    pub const OUT: u8 = 8;
    /// POSTROUTING
    pub const POST: u8 = 16;
    /// Every hook.
    pub const ALL: u8 = 31;

    /// The bit of a built-in chain name.
    pub fn of(chain: &str) -> u8 {
        match chain {
            "PREROUTING" => PRE,
            "INPUT" => IN,
            "FORWARD" => FWD,
            "OUTPUT" => OUT,
            "POSTROUTING" => POST,
            _ => 0,
        }
    }

    /// Names of the hooks in a mask, in packet order.
    pub fn names(mask: u8) -> Vec<&'static str> {
        [
            (PRE, "PREROUTING"),
            (IN, "INPUT"),
            (FWD, "FORWARD"),
            (OUT, "OUTPUT"),
            (POST, "POSTROUTING"),
        ]
        .into_iter()
        .filter(|(b, _)| mask & b != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// A match module or a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `-m NAME`
    Match,
    /// `-j NAME`
    Target,
}

/// What a target does to the walk through the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A match, or a target that lets the packet go on to the next rule.
    Continue,
    /// Ends the packet's walk through the table (or the chain, RETURN).
    Terminal,
}

/// One option of an extension.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    /// Canonical name with its dashes (`--dport`).
    pub name: &'static str,
    /// Other spellings iptables accepts (`--destination-port`).
    pub aliases: &'static [&'static str],
    /// The grammar of its value(s).
    pub value: Value,
    /// `!` may be written before it (or, old style, after it).
    pub neg: bool,
    /// May be given more than once.
    pub repeat: bool,
    /// Protocols (`-p`) the option needs, by number; empty for any.
    pub protos: &'static [u8],
    /// Hooks where the kernel allows the option (see [`hook`]).
    pub hooks: u8,
}

impl OptSpec {
    /// A plain option.
    pub const fn new(name: &'static str, value: Value) -> OptSpec {
        OptSpec {
            name,
            aliases: &[],
            value,
            neg: false,
            repeat: false,
            protos: &[],
            hooks: hook::ALL,
        }
    }
    /// An option `!` may negate.
    pub const fn neg(name: &'static str, value: Value) -> OptSpec {
        OptSpec {
            neg: true,
            ..OptSpec::new(name, value)
        }
    }
    /// With other spellings.
    pub const fn alias(self, aliases: &'static [&'static str]) -> OptSpec {
        OptSpec { aliases, ..self }
    }
    /// May repeat.
    pub const fn repeat(self) -> OptSpec {
        OptSpec {
            repeat: true,
            ..self
        }
    }
    /// Needs one of these protocols.
    pub const fn protos(self, protos: &'static [u8]) -> OptSpec {
        OptSpec { protos, ..self }
    }
    /// Allowed only in these hooks.
    pub const fn hooks(self, hooks: u8) -> OptSpec {
        OptSpec { hooks, ..self }
    }
}

/// The options of one match or target as written, by canonical name.
pub struct Given<'a> {
    /// `(spec, option)` in written order; unknown options are left out.
    /// Kept on the stack for the usual few options: this runs for every
    /// match of every rule.
    pub opts: smallvec::SmallVec<[(&'static OptSpec, Opt<'a>); 6]>,
    /// The rule's `-p` protocol number when given without `!`.
    pub proto: Option<u8>,
    /// The ruleset's family.
    pub family: Family,
}

impl<'a> Given<'a> {
    /// The first option of this canonical name.
    pub fn get(&self, name: &str) -> Option<Opt<'a>> {
        self.opts
            .iter()
            .find(|(s, _)| s.name == name)
            .map(|(_, o)| *o)
    }
    /// Whether an option of this canonical name was given.
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(s, _)| s.name == name)
    }
}

/// A check over all the options given: the option to point at, and the
/// message, when something is wrong.
pub type CheckFn = for<'a> fn(&Given<'a>) -> Option<(Option<Opt<'a>>, String)>;

/// A rule about options together.
#[derive(Clone, Copy)]
pub enum Constraint {
    /// This option must be given.
    Required(&'static str),
    /// At least one of these must be given.
    AnyOf(&'static [&'static str]),
    /// At most one of these may be given.
    Exclusive(&'static [&'static str]),
    /// The first option needs one of the others.
    Needs(&'static str, &'static [&'static str]),
    /// Anything else: returns the option to point at and the message.
    Check(CheckFn),
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Constraint::Required(a) => write!(f, "Required({a})"),
            Constraint::AnyOf(a) => write!(f, "AnyOf({a:?})"),
            Constraint::Exclusive(a) => write!(f, "Exclusive({a:?})"),
            Constraint::Needs(a, b) => write!(f, "Needs({a}, {b:?})"),
            Constraint::Check(_) => f.write_str("Check"),
        }
    }
}

/// A match module or target.
#[derive(Debug, Clone, Copy)]
pub struct Ext {
    /// Name as given to `-m` or `-j`.
    pub name: &'static str,
    /// Other names for the same extension (`icmpv6` for `icmp6`).
    pub aliases: &'static [&'static str],
    /// Match or target.
    pub kind: Kind,
    /// Families it exists in.
    pub fam: Fam,
    /// Protocols (`-p`) it needs, by number; empty for any.
    pub protos: &'static [u8],
    /// Its options.
    pub opts: &'static [OptSpec],
    /// Rules about its options together.
    pub constraints: &'static [Constraint],
    /// Tables where the kernel allows it; empty for all.
    pub tables: &'static [&'static str],
    /// Hooks where the kernel allows it, directly or through user chains.
    pub hooks: u8,
    /// What a target does to the walk.
    pub verdict: Verdict,
    /// Options are not checked (an extension iptables does not ship, known
    /// from real dumps).
    pub free: bool,
    /// One line on what it does.
    pub about: &'static str,
}

impl Ext {
    /// A match module.
    pub const fn m(name: &'static str, about: &'static str, opts: &'static [OptSpec]) -> Ext {
        Ext {
            name,
            aliases: &[],
            kind: Kind::Match,
            fam: Fam::Both,
            protos: &[],
            opts,
            constraints: &[],
            tables: &[],
            hooks: hook::ALL,
            verdict: Verdict::Continue,
            free: false,
            about,
        }
    }
    /// A target that lets the packet continue.
    pub const fn t(name: &'static str, about: &'static str, opts: &'static [OptSpec]) -> Ext {
        Ext {
            kind: Kind::Target,
            ..Ext::m(name, about, opts)
        }
    }
    /// A target that ends the walk.
    pub const fn verdict(self) -> Ext {
        Ext {
            verdict: Verdict::Terminal,
            ..self
        }
    }
    /// Other names.
    pub const fn alias(self, aliases: &'static [&'static str]) -> Ext {
        Ext { aliases, ..self }
    }
    /// IPv4 only.
    pub const fn v4(self) -> Ext {
        Ext {
            fam: Fam::V4,
            ..self
        }
    }
    /// IPv6 only.
    pub const fn v6(self) -> Ext {
        Ext {
            fam: Fam::V6,
            ..self
        }
    }
    /// Needs one of these protocols.
    pub const fn protos(self, protos: &'static [u8]) -> Ext {
        Ext { protos, ..self }
    }
    /// Rules about its options.
    pub const fn with(self, constraints: &'static [Constraint]) -> Ext {
        Ext {
            constraints,
            ..self
        }
    }
    /// Allowed only in these tables.
    pub const fn tables(self, tables: &'static [&'static str]) -> Ext {
        Ext { tables, ..self }
    }
    /// Allowed only in these hooks.
    pub const fn hooks(self, hooks: u8) -> Ext {
        Ext { hooks, ..self }
    }
    /// Options not checked.
    pub const fn free(self) -> Ext {
        Ext { free: true, ..self }
    }

    /// The option spelled `name` (canonical or alias).
    pub fn opt(&self, name: &str) -> Option<&'static OptSpec> {
        let all: &'static [OptSpec] = self.opts;
        all.iter()
            .find(|o| o.name == name || o.aliases.contains(&name))
    }

    /// The canonical spelling of an option name, if it is one of ours.
    pub fn canonical(&self, name: &str) -> Option<&'static str> {
        self.opt(name).map(|o| o.name)
    }
}

/// Every extension, matches and targets, in one list.
pub fn all() -> impl Iterator<Item = &'static Ext> {
    modules::MATCHES.iter().chain(targets::TARGETS.iter())
}

/// Every extension by name and kind, in buckets by the name's length and
/// first byte: a lookup compares a few names instead of hashing one. Most
/// names a rule gives as a target are user chains (`KUBE-SVC-...`), longer
/// than any extension's, and find no bucket at all.
struct Index {
    buckets: Vec<Vec<(&'static str, Kind, &'static [&'static Ext])>>,
    longest: usize,
}

impl Index {
    fn bucket(name: &str) -> Option<usize> {
        let first = *name.as_bytes().first()?;
        Some(name.len() * 256 + usize::from(first))
    }

    fn get(&self, name: &str, kind: Kind) -> Option<&'static [&'static Ext]> {
        if name.len() > self.longest {
            return None;
        }
        let bucket = self.buckets.get(Index::bucket(name)?)?;
        bucket
            .iter()
            .find(|(n, k, _)| *k == kind && *n == name)
            .map(|&(_, _, v)| v)
    }
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut by_name: Vec<(&'static str, Kind, Vec<&'static Ext>)> = Vec::new();
        for e in all() {
            for n in std::iter::once(&e.name).chain(e.aliases) {
                match by_name.iter_mut().find(|(m, k, _)| m == n && *k == e.kind) {
                    Some(entry) => entry.2.push(e),
                    None => by_name.push((n, e.kind, vec![e])),
                }
            }
        }
        let longest = by_name.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
        let mut buckets = vec![Vec::new(); (longest + 1) * 256];
        for (n, k, v) in by_name {
            if let Some(b) = Index::bucket(n) {
                // Built once per process and kept to its end.
                buckets[b].push((n, k, &*Vec::leak(v)));
            }
        }
        Index { buckets, longest }
    })
}

/// The entry for a match module or target name in a family (`None` when
/// iptables ships no such extension for it).
pub fn lookup(kind: Kind, name: &str, family: Family) -> Option<&'static Ext> {
    let v = index().get(name, kind)?;
    v.iter().find(|e| e.fam.has(family)).copied()
}

/// The entry under any family: for reading options when the family of the
/// rule does not matter.
pub fn lookup_any(kind: Kind, name: &str) -> Option<&'static Ext> {
    index().get(name, kind).and_then(|v| v.first().copied())
}

/// A match module's entry, either family.
pub fn match_ext(name: &str) -> Option<&'static Ext> {
    lookup_any(Kind::Match, name)
}

/// A target's entry, either family.
pub fn target_ext(name: &str) -> Option<&'static Ext> {
    lookup_any(Kind::Target, name)
}

/// Whether `name` is a target netfilter provides (not a user chain).
pub fn is_known_target(name: &str) -> bool {
    target_ext(name).is_some()
}

/// Whether a target ends the walk of the packet through the table.
pub fn is_terminating_target(name: &str) -> bool {
    target_ext(name).is_some_and(|e| e.verdict == Verdict::Terminal)
}

/// The canonical name of an option of a match module (`--destination-port`
/// gives `--dport`); `None` when the module or the option is not ours.
pub fn canonical_match_opt(module: &str, opt: &str) -> Option<&'static str> {
    match_ext(module)?.canonical(opt)
}

/// The protocol number of a `-p` value: a number, iptables' own names, or
/// a name from the protocols list.
pub fn protocol_number(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    // iptables lower-cases the name before it looks it up, so only the
    // lower-case names match (`IP-ENCAP`, an alias, does not); compared
    // without lower-casing a copy, since this runs for every rule.
    const OWN: [(&str, u8); 13] = [
        ("tcp", 6),
        ("udp", 17),
        ("all", 0),
        ("icmp", 1),
        ("udplite", 136),
        ("icmpv6", 58),
        ("ipv6-icmp", 58),
        ("esp", 50),
        ("ah", 51),
        ("sctp", 132),
        ("mh", 135),
        ("ipv6-mh", 135),
        ("dccp", 33),
    ];
    OWN.iter()
        .chain(names::PROTOCOLS)
        .find(|(n, _)| {
            n.len() == s.len()
                && n.bytes()
                    .zip(s.bytes())
                    .all(|(a, b)| a == b.to_ascii_lowercase())
        })
        .map(|(_, v)| *v)
}

/// The port of a service name (`ssh` is 22), as `/etc/services` has it.
pub fn service_port(name: &str) -> Option<u16> {
    names::SERVICES
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, p, ..)| *p)
}

/// A protocol number's usual name, for messages.
pub fn protocol_label(n: u8) -> String {
    match n {
        6 => "tcp".into(),
        17 => "udp".into(),
        136 => "udplite".into(),
        132 => "sctp".into(),
        33 => "dccp".into(),
        1 => "icmp".into(),
        58 => "ipv6-icmp".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        108 => "ipcomp".into(),
        135 => "mh".into(),
        n => n.to_string(),
    }
}

/// "-p tcp or -p udp" for a list of protocol numbers.
pub fn protos_text(protos: &[u8]) -> String {
    let words: Vec<String> = protos
        .iter()
        .map(|p| format!("-p {}", protocol_label(*p)))
        .collect();
    match words.len() {
        0 => String::new(),
        1 => words[0].clone(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

/// One thing wrong (or suspicious) in a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<'a> {
    /// The word to put the caret under: a slice of the rule's words.
    pub at: Option<&'a str>,
    /// An error the kernel or iptables would refuse, or a warning.
    pub error: bool,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: Option<String>,
}

fn find<'a>(
    at: Option<&'a str>,
    error: bool,
    message: String,
    hint: Option<String>,
) -> Finding<'a> {
    Finding {
        at,
        error,
        message,
        hint,
    }
}

/// The rule's `-p` when given without `!`, as a number.
/// Checks one rule against the table: modules, options, values, protocols,
/// families and option rules. Table and hook placement is checked for the
/// whole ruleset by `crate::parse::check`.
///
/// `certain` says whether the family is known (a header or an address
/// said so); when it is not, extensions of either family are taken.
pub fn check_rule<'a>(rule: &'a Rule, family: Family, certain: bool, out: &mut Vec<Finding<'a>>) {
    check_rule_limits(rule, family, certain, out, &mut Limits::default());
}

/// The placement limits of one rule in short, gathered by
/// [`check_rule_limits`] while it looks the rule's extensions up: enough
/// to tell whether [`placement`] needs to be asked at all.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The hooks every limit allows together (see [`hook`]).
    pub hooks: u8,
    /// The same with `-i` and `-o`, which count in built-in chains only.
    pub hooks_builtin: u8,
    /// Table lists of the extensions limited to some tables.
    tables: [&'static [&'static str]; 2],
    /// How many of `tables` are set; more than two are not kept.
    ntables: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hooks: hook::ALL,
            hooks_builtin: hook::ALL,
            tables: [&[]; 2],
            ntables: 0,
        }
    }
}

impl Limits {
    fn ext(&mut self, ext: &Ext) {
        self.hooks &= ext.hooks;
        self.hooks_builtin &= ext.hooks;
        if !ext.tables.is_empty() {
            if let Some(slot) = self.tables.get_mut(self.ntables as usize) {
                *slot = ext.tables;
            }
            self.ntables = self.ntables.saturating_add(1);
        }
    }

    fn hooks(&mut self, hooks: u8) {
        self.hooks &= hooks;
        self.hooks_builtin &= hooks;
    }

    /// Whether a limit may name other tables than `table` (when in doubt,
    /// yes).
    pub fn wrong_table(&self, table: &str) -> bool {
        self.ntables as usize > self.tables.len()
            || self.tables[..self.ntables as usize]
                .iter()
                .any(|ts| !ts.contains(&table))
    }
}

/// [`check_rule`], also gathering the rule's placement limits.
pub fn check_rule_limits<'a>(
    rule: &'a Rule,
    family: Family,
    certain: bool,
    out: &mut Vec<Finding<'a>>,
    limits: &mut Limits,
) {
    let common = Common::of(rule);
    let proto = common
        .protocol
        .as_ref()
        .filter(|p| !p.negated)
        .and_then(|p| protocol_number(p.value));
    if common.in_iface.is_some() {
        limits.hooks_builtin &= hook::PRE | hook::IN | hook::FWD;
    }
    if common.out_iface.is_some() {
        limits.hooks_builtin &= hook::FWD | hook::OUT | hook::POST;
    }
    check_common(&common, family, out);
    let find_ext = |kind: Kind, name: &str| {
        lookup(kind, name, family).or_else(|| (!certain).then(|| lookup_any(kind, name)).flatten())
    };
    for m in rule.matches() {
        // `-p 6 --dport 22`: the implicit module is the protocol's name.
        let label;
        let module = if m.implicit && m.module.bytes().all(|b| b.is_ascii_digit()) {
            label = protocol_number(m.module)
                .map(protocol_label)
                .unwrap_or_default();
            label.as_str()
        } else {
            m.module
        };
        let Some(ext) = find_ext(Kind::Match, module) else {
            let other = match family {
                Family::Ipv4 => Family::Ipv6,
                Family::Ipv6 => Family::Ipv4,
            };
            let (msg, hint) = if lookup(Kind::Match, m.module, other).is_some() {
                (
                    format!(
                        "match module '{}' exists only for {}",
                        m.module,
                        fam_cmd(other)
                    ),
                    None,
                )
            } else if m.implicit {
                // `-p NAME --opt` without `-m`: the protocol has no module.
                let o = m.opts.first();
                (
                    format!(
                        "unknown option '{}': -p {} has no options of its own",
                        o.map_or("", |o| o.name),
                        m.module
                    ),
                    None,
                )
            } else {
                (
                    format!("unknown match module '{}'", m.module),
                    Some("iptables would say: Couldn't load match".into()),
                )
            };
            let at = if m.implicit {
                m.opts.first().map(|o| o.name)
            } else {
                Some(m.module)
            };
            out.push(find(at, true, msg, hint));
            continue;
        };
        limits.ext(ext);
        if m.module == "policy"
            && let Some(d) = m.opt("--dir")
        {
            limits.hooks(if d.arg() == "in" {
                hook::PRE | hook::IN | hook::FWD
            } else {
                hook::FWD | hook::OUT | hook::POST
            });
        }
        if ext.free {
            continue;
        }
        if !ext.protos.is_empty() && !proto.is_some_and(|p| ext.protos.contains(&p)) {
            out.push(find(
                Some(m.module),
                true,
                format!(
                    "-m {} needs {} before it",
                    m.module,
                    protos_text(ext.protos)
                ),
                Some(format!("add {} to the rule", protos_text(&ext.protos[..1]))),
            ));
        }
        check_opts(
            ext,
            m.opts.iter(),
            proto,
            family,
            ("-m", m.module),
            out,
            limits,
        );
    }
    if let Some(t) = rule.target()
        && let Some(ext) = find_ext(Kind::Target, t.name)
    {
        limits.ext(ext);
        if ext.free {
            return;
        }
        if !ext.protos.is_empty() && !proto.is_some_and(|p| ext.protos.contains(&p)) {
            out.push(find(
                Some(t.name),
                true,
                format!(
                    "-j {} needs {} in the rule",
                    t.name,
                    protos_text(ext.protos)
                ),
                None,
            ));
        }
        check_opts(
            ext,
            t.opts.iter(),
            proto,
            family,
            ("-j", t.name),
            out,
            limits,
        );
    }
}

fn fam_cmd(f: Family) -> &'static str {
    match f {
        Family::Ipv4 => "iptables (IPv4)",
        Family::Ipv6 => "ip6tables (IPv6)",
    }
}

/// The first `-p`, `-s`, `-d`, `-i` and `-o` of a rule and its first
/// option outside any match, found in one walk over its parts (the rule's
/// own views walk them once each).
struct Common<'a> {
    protocol: Option<Negatable<&'a str>>,
    source: Option<Negatable<&'a str>>,
    destination: Option<Negatable<&'a str>>,
    in_iface: Option<Negatable<&'a str>>,
    out_iface: Option<Negatable<&'a str>>,
    extra: Option<Opt<'a>>,
}

impl<'a> Common<'a> {
    fn of(rule: &'a Rule) -> Common<'a> {
        use crate::model::PartKind as K;
        let mut c = Common {
            protocol: None,
            source: None,
            destination: None,
            in_iface: None,
            out_iface: None,
            extra: None,
        };
        let mut owned = false;
        for (i, p) in rule.parts().iter().enumerate() {
            let slot = match p.kind {
                K::Protocol => &mut c.protocol,
                K::Source => &mut c.source,
                K::Destination => &mut c.destination,
                K::InIface => &mut c.in_iface,
                K::OutIface => &mut c.out_iface,
                K::Match | K::Target => {
                    owned = true;
                    continue;
                }
                K::Opt if !owned && c.extra.is_none() => {
                    c.extra = rule.opt_at(i);
                    continue;
                }
                K::Opt | K::Arg | K::Fragment => continue,
            };
            if slot.is_none() {
                *slot = Some(p.negatable(rule));
            }
        }
        c
    }
}

/// `-p`, `-s`, `-d`, `-i`, `-o`, and options outside any match.
fn check_common<'a>(rule: &Common<'a>, family: Family, out: &mut Vec<Finding<'a>>) {
    if let Some(p) = &rule.protocol {
        match protocol_number(p.value) {
            None => out.push(find(
                Some(p.value),
                true,
                format!("unknown protocol '{}'", p.value),
                Some("give a name from /etc/protocols or a number 0-255".into()),
            )),
            Some(0) if p.negated => out.push(find(
                Some(p.value),
                true,
                "'! -p 0' (or '! -p all') would never match".into(),
                None,
            )),
            Some(4) if p.value.eq_ignore_ascii_case("ipv4") => out.push(find(
                Some(p.value),
                false,
                "protocol name 'ipv4' (4) is in Fedora's and RHEL's /etc/protocols, not in \
                 Debian's (which calls it ipencap): iptables-restore there refuses the line"
                    .into(),
                Some("'-p 4' loads everywhere".into()),
            )),
            _ => {}
        }
    }
    for a in [&rule.source, &rule.destination].into_iter().flatten() {
        for one in a.value.split(',') {
            if let Err(msg) = values::check_host(one, family) {
                out.push(find(Some(a.value), true, msg, None));
            }
        }
    }
    for i in [&rule.in_iface, &rule.out_iface].into_iter().flatten() {
        if let Err(msg) = values::check_iface(i.value) {
            out.push(find(Some(i.value), true, msg, None));
        }
    }
    if let Some(o) = rule.extra {
        out.push(find(
            Some(o.name),
            true,
            format!("unknown option '{}'", o.name),
            Some("options of a match come after its -m NAME, target options after -j NAME".into()),
        ));
    }
}

fn check_opts<'a>(
    ext: &'static Ext,
    opts: impl Iterator<Item = Opt<'a>>,
    proto: Option<u8>,
    family: Family,
    (flag, name): (&str, &str),
    out: &mut Vec<Finding<'a>>,
    limits: &mut Limits,
) {
    let what = &Lazy(flag, name);
    let mut given = Given {
        opts: smallvec::SmallVec::new(),
        proto,
        family,
    };
    let mut buf: [&str; 8] = [""; 8];
    let mut long: Vec<&str> = Vec::new();
    for o in opts {
        let Some(spec) = ext.opt(o.name) else {
            let names: Vec<&str> = ext.opts.iter().map(|s| s.name).collect();
            out.push(find(
                Some(o.name),
                true,
                format!("unknown option '{}' for {what}", o.name),
                Some(if names.is_empty() {
                    format!("{what} takes no options")
                } else {
                    format!("{what} takes {}", names.join(", "))
                }),
            ));
            continue;
        };
        limits.hooks(spec.hooks);
        if o.negated && !spec.neg {
            out.push(find(
                Some(o.name),
                true,
                format!("{what} option '{}' cannot be negated with '!'", o.name),
                None,
            ));
        }
        if !spec.repeat && given.opts.iter().any(|(s, _)| s.name == spec.name) {
            out.push(find(
                Some(o.name),
                true,
                format!("{what}: option '{}' can be given only once", o.name),
                None,
            ));
        }
        if !spec.protos.is_empty() && !proto.is_some_and(|p| spec.protos.contains(&p)) {
            out.push(find(
                Some(o.name),
                true,
                format!("{} needs {} before it", o.name, protos_text(spec.protos)),
                None,
            ));
        }
        let args: &[&str] = if o.args.len() <= buf.len() {
            for (slot, a) in buf.iter_mut().zip(o.args.iter()) {
                *slot = a;
            }
            &buf[..o.args.len()]
        } else {
            long.clear();
            long.extend(o.args.iter());
            &long
        };
        match values::check(&spec.value, args, &given) {
            values::Verdict::Ok => {}
            values::Verdict::Bad(at, msg) => out.push(find(
                Some(args.get(at).copied().unwrap_or(o.name)),
                true,
                format!("{what} {}: {msg}", o.name),
                None,
            )),
            values::Verdict::Warn(at, msg) => out.push(find(
                Some(args.get(at).copied().unwrap_or(o.name)),
                false,
                format!("{what} {}: {msg}", o.name),
                None,
            )),
        }
        given.opts.push((spec, o));
    }
    let first = given.opts.first().map(|(_, o)| o.name);
    for c in ext.constraints {
        match *c {
            Constraint::Required(n) => {
                if !given.has(n) {
                    out.push(find(None, true, format!("{what} needs option {n}"), None));
                }
            }
            Constraint::AnyOf(ns) => {
                if !ns.iter().any(|n| given.has(n)) {
                    out.push(find(
                        first,
                        true,
                        format!("{what} needs one of {}", ns.join(", ")),
                        None,
                    ));
                }
            }
            Constraint::Exclusive(ns) => {
                let hit: Vec<Opt<'a>> = given
                    .opts
                    .iter()
                    .filter(|(s, _)| ns.contains(&s.name))
                    .map(|(_, o)| *o)
                    .collect();
                let mut names: Vec<&str> = hit.iter().map(|o| o.name).collect();
                names.dedup();
                if names.len() > 1 {
                    out.push(find(
                        Some(hit[1].name),
                        true,
                        format!(
                            "{what}: {} cannot be used together with {}",
                            hit[1].name, hit[0].name
                        ),
                        None,
                    ));
                }
            }
            Constraint::Needs(a, bs) => {
                if let Some(o) = given.get(a)
                    && !bs.iter().any(|b| given.has(b))
                {
                    out.push(find(
                        Some(o.name),
                        true,
                        format!("{what}: {} needs {}", o.name, bs.join(" or ")),
                        None,
                    ));
                }
            }
            Constraint::Check(f) => {
                if let Some((o, msg)) = f(&given) {
                    out.push(find(
                        o.map(|o| o.name),
                        true,
                        format!("{what}: {msg}"),
                        None,
                    ));
                }
            }
        }
    }
}

/// `-m NAME` or `-j NAME`, formatted only when a message needs it.
struct Lazy<'s>(&'s str, &'s str);

impl std::fmt::Display for Lazy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// What sets a placement limit: `-i`, `-o`, a match, one of its options,
/// `-m policy --dir D`, a target or one of its options. Written out only
/// when a message needs it (this runs for every rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What<'a> {
    /// `-i`
    InIface,
    /// `-o`
    OutIface,
    /// `-m NAME`
    Match(&'a str),
    /// `-m NAME --opt`
    MatchOpt(&'a str, &'a str),
    /// `-m policy --dir DIR`
    PolicyDir(&'a str),
    /// `-j NAME`
    Target(&'a str),
    /// `-j NAME --opt`
    TargetOpt(&'a str, &'a str),
}

impl What<'_> {
    /// The last word, to put the caret under.
    pub fn word(&self) -> &str {
        match *self {
            What::InIface => "-i",
            What::OutIface => "-o",
            What::Match(w)
            | What::MatchOpt(_, w)
            | What::PolicyDir(w)
            | What::Target(w)
            | What::TargetOpt(_, w) => w,
        }
    }
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::InIface => f.write_str("-i"),
            What::OutIface => f.write_str("-o"),
            What::Match(m) => write!(f, "-m {m}"),
            What::MatchOpt(m, o) => write!(f, "-m {m} {o}"),
            What::PolicyDir(d) => write!(f, "-m policy --dir {d}"),
            What::Target(t) => write!(f, "-j {t}"),
            What::TargetOpt(t, o) => write!(f, "-j {t} {o}"),
        }
    }
}

/// A limit on where a rule may stand.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    /// Hooks allowed.
    pub hooks: u8,
    /// Tables allowed; empty for all.
    pub tables: &'static [&'static str],
    /// What sets the limit (`-j DNAT`, `-m owner`, `-i`).
    pub what: What<'a>,
    /// Checked only in built-in chains: iptables refuses `-i` in OUTPUT
    /// itself, but the kernel takes it in a user chain reached from there.
    pub builtin_only: bool,
}

/// The limits of one rule, kept on the stack for the usual few.
pub type Placements<'a> = smallvec::SmallVec<[Placement<'a>; 4]>;

/// The hooks a rule's matches, target and interfaces allow, with what sets
/// each limit. Used by the whole-ruleset check, for every rule: it
/// allocates nothing unless a rule has more than four limits.
pub fn placement(rule: &Rule, family: Family, certain: bool) -> Placements<'_> {
    let mut out = Placements::new();
    let mut push = |hooks: u8, tables: &'static [&'static str], what| {
        let builtin_only = matches!(what, What::InIface | What::OutIface);
        out.push(Placement {
            builtin_only,
            hooks,
            tables,
            what,
        })
    };
    let lookup = |kind: Kind, name: &str, family: Family| {
        lookup(kind, name, family).or_else(|| (!certain).then(|| lookup_any(kind, name)).flatten())
    };
    if rule.in_iface().is_some() {
        push(hook::PRE | hook::IN | hook::FWD, &[][..], What::InIface);
    }
    if rule.out_iface().is_some() {
        push(hook::FWD | hook::OUT | hook::POST, &[][..], What::OutIface);
    }
    for m in rule.matches() {
        let Some(ext) = lookup(Kind::Match, m.module, family) else {
            continue;
        };
        if ext.hooks != hook::ALL || !ext.tables.is_empty() {
            push(ext.hooks, ext.tables, What::Match(m.module));
        }
        if ext.opts.iter().any(|s| s.hooks != hook::ALL) {
            for o in m.opts.iter() {
                if let Some(s) = ext.opt(o.name)
                    && s.hooks != hook::ALL
                {
                    push(s.hooks, &[][..], What::MatchOpt(m.module, o.name));
                }
            }
        }
        if m.module == "policy"
            && let Some(d) = m.opt("--dir")
        {
            let mask = if d.arg() == "in" {
                hook::PRE | hook::IN | hook::FWD
            } else {
                hook::FWD | hook::OUT | hook::POST
            };
            push(mask, &[][..], What::PolicyDir(d.arg()));
        }
    }
    if let Some(t) = rule.target()
        && let Some(ext) = lookup(Kind::Target, t.name, family)
    {
        if ext.hooks != hook::ALL || !ext.tables.is_empty() {
            push(ext.hooks, ext.tables, What::Target(t.name));
        }
        if ext.opts.iter().any(|s| s.hooks != hook::ALL) {
            for o in t.opts.iter() {
                if let Some(s) = ext.opt(o.name)
                    && s.hooks != hook::ALL
                {
                    push(s.hooks, &[][..], What::TargetOpt(t.name, o.name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_rule;

    fn errors(rule: &str, family: Family) -> Vec<String> {
        let r = parse_rule(rule).unwrap();
        let mut out = Vec::new();
        check_rule(&r, family, true, &mut out);
        out.into_iter()
            .filter(|f| f.error)
            .map(|f| f.message)
            .collect()
    }

    fn ok(rule: &str) {
        assert_eq!(errors(rule, Family::Ipv4), Vec::<String>::new(), "{rule}");
    }

    fn bad(rule: &str, needle: &str) {
        let e = errors(rule, Family::Ipv4);
        assert!(
            e.iter().any(|m| m.contains(needle)),
            "{rule}: expected an error with {needle:?}, got {e:?}"
        );
    }

    #[test]
    fn every_name_is_found_and_options_are_unique() {
        for e in all() {
            assert!(lookup_any(e.kind, e.name).is_some(), "{}", e.name);
            let mut seen = std::collections::HashSet::new();
            for o in e.opts {
                for n in std::iter::once(&o.name).chain(o.aliases) {
                    assert!(seen.insert(*n), "{} {n} twice", e.name);
                }
            }
        }
    }

    #[test]
    fn dport_needs_a_protocol() {
        bad("-m tcp --dport 22 -j ACCEPT", "needs -p tcp");
        ok("-p tcp -m tcp --dport 22 -j ACCEPT");
        ok("-m tcp --dport 1 -p 6");
        bad("-m multiport --dports 1,2", "-p tcp");
    }

    #[test]
    fn unknown_multiport_option_is_refused() {
        bad(
            "-p tcp -m multiport --dports 1,2 --foo",
            "unknown option '--foo'",
        );
    }

    #[test]
    fn ports_are_checked() {
        bad("-p tcp --dport 99999", "port");
        bad("-p tcp -m tcp --sport 4:3", "min");
        ok("-p tcp -m tcp --sport :");
        ok("-p tcp --dport ssh");
        bad("-p tcp --dport nosuchservice", "service");
    }

    #[test]
    fn protocol_names_are_read_lower_cased_as_iptables_does() {
        assert_eq!(protocol_number("TCP"), Some(6));
        assert_eq!(protocol_number("Udp"), Some(17));
        assert_eq!(protocol_number("ipv6-icmp"), Some(58));
        assert_eq!(protocol_number("IPV6-ICMP"), Some(58));
        assert_eq!(protocol_number("gre"), Some(47));
        // Only lower-case names of the list match what iptables looks up:
        // `IP-ENCAP` is an alias whose lower case is no name.
        assert_eq!(protocol_number("IP-ENCAP"), None);
        assert_eq!(protocol_number("nosuch"), None);
    }

    #[test]
    fn protocol_ipv4_of_fedora_hosts_is_read_with_a_warning() {
        // A Calico dump from a Fedora-family node (`-p ipv4`) was refused
        // as an unknown protocol, though it loads on the host it came from.
        assert_eq!(protocol_number("ipv4"), Some(4));
        let rule = parse_rule("-p ipv4 -j ACCEPT").unwrap();
        let mut found = Vec::new();
        check_rule(&rule, Family::Ipv4, true, &mut found);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!found[0].error, "{found:?}");
        assert!(found[0].message.contains("Debian"), "{found:?}");
        assert!(errors("-p ipencap", Family::Ipv4).is_empty());
    }

    #[test]
    fn families() {
        assert!(errors("-p icmp -m icmp --icmp-type 8", Family::Ipv6)[0].contains("only for"));
        assert!(errors("-p ipv6-icmp -m icmp6 --icmpv6-type 1", Family::Ipv6).is_empty());
    }
}
