//! The conntrack table and its statistics: text formats -> model, summary,
//! NAT entries linked to the rules that made them, health of the counters.
//!
//! Every input is auto-detected ([`detect`]): `/proc/net/nf_conntrack`,
//! `conntrack -L` (also `-o extended`, `-o id`, event lines of `conntrack -E`),
//! `conntrack -S` and `/proc/net/stat/nf_conntrack`. Parsing is lenient: a bad
//! line becomes a [`Problem`] with its line and column, the rest is kept.
//!
//! ```
//! use iptviz::conntrack::{self, Parsed};
//! let text = "ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.1 dst=10.96.0.10 sport=40000 dport=443 \
//!             src=10.244.1.5 dst=10.0.0.1 sport=8443 dport=40000 [ASSURED] mark=0 zone=0 use=2\n";
//! let Parsed::Entries(table) = conntrack::parse_bytes(text.as_bytes(), "example").unwrap() else {
//!     unreachable!()
//! };
//! let e = &table.entries[0];
//! assert_eq!(e.proto_name(), "tcp");
//! assert!(e.nat().dnat);
//! assert!(table.problems.is_empty());
//! ```
//!
//! The XML output of `conntrack -L/-E -o xml` is not read: it is detected
//! and refused with a message that names the text formats to use instead.

pub mod entries;
pub mod filter;
pub mod history;
pub mod live;
pub mod nat;
pub mod pressure;
pub mod stats;
pub mod summary;

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

pub use crate::parse::{Problem, Severity};
pub use entries::parse_entries;
pub use filter::Filter;
pub use history::{Record, Recording, Tick, read_recording};
pub use nat::{NatKind, NatLink, NatRule, RuleRef, link_nat};
pub use pressure::{Pressure, PressureOptions, TupleUse, pressure, pressure_where};
pub use stats::{HealthItem, Level, Rate, Stats, StatsFormat, health, parse_stats, rates};
pub use summary::{Fill, Summary, summarize};

/// At most this many problems are kept per input; the rest are counted.
pub const MAX_PROBLEMS: usize = 1000;

/// Layer 3 family of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum L3 {
    /// IPv4 (l3 number 2).
    Ipv4,
    /// IPv6 (l3 number 10).
    Ipv6,
}

/// Connection state names the kernel prints (tcp, sctp, dccp), indexed by
/// [`State`].
const STATE_NAMES: &[&str] = &[
    "",
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
    "LISTEN",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
    "HEARTBEAT_ACKED",
    "REQUEST",
    "RESPOND",
    "PARTOPEN",
    "OPEN",
    "CLOSEREQ",
    "CLOSING",
    "TIMEWAIT",
    "IGNORE",
    "INVALID",
];

/// A protocol state (`ESTABLISHED`, `TIME_WAIT`, sctp `COOKIE_WAIT` ...), or
/// none for stateless protocols, in one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct State(u8);

impl State {
    /// No state printed (udp, icmp, gre, unknown protocols).
    pub const NONE: State = State(0);
    /// A state word this version does not know.
    pub const OTHER: State = State(u8::MAX);

    /// The state with this name, if known (case-insensitive).
    pub fn from_name(name: &str) -> Option<State> {
        STATE_NAMES
            .iter()
            .skip(1)
            .position(|s| s.eq_ignore_ascii_case(name))
            .map(|i| State(i as u8 + 1))
    }

    fn from_bytes(name: &[u8]) -> State {
        STATE_NAMES
            .iter()
            .skip(1)
            .position(|s| s.as_bytes() == name)
            .map_or(State::OTHER, |i| State(i as u8 + 1))
    }

    /// The kernel's name of the state; `""` for none, `"?"` for unknown.
    pub fn name(self) -> &'static str {
        STATE_NAMES.get(self.0 as usize).copied().unwrap_or("?")
    }

    /// True when the entry has no state.
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Entry status flags, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Flags(pub u16);

impl Flags {
    /// `[ASSURED]`: traffic seen both ways, not evicted early.
    pub const ASSURED: u16 = 1;
    /// `[UNREPLIED]`: no reply seen yet.
    pub const UNREPLIED: u16 = 1 << 1;
    /// `[OFFLOAD]`: handled by the flowtable fast path.
    pub const OFFLOAD: u16 = 1 << 2;
    /// `[HW_OFFLOAD]`: offloaded to hardware.
    pub const HW_OFFLOAD: u16 = 1 << 3;
    /// `packets=`/`bytes=` were present (accounting on).
    pub const COUNTERS: u16 = 1 << 4;
    /// `zone=` was present.
    pub const ZONE: u16 = 1 << 5;
    /// `mark=` was present.
    pub const MARK: u16 = 1 << 6;
    /// `use=` was present.
    pub const USE: u16 = 1 << 7;
    /// `id=` (conntrack id, `-o id`) was present.
    pub const ID: u16 = 1 << 8;
    /// A `[DESTROY]` event of `conntrack -E`: the connection has ended.
    pub const DESTROYED: u16 = 1 << 9;

    /// Whether a flag bit is set.
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
}

/// One direction of a connection.
///
/// `sport`/`dport` hold the ports for tcp, udp, sctp, dccp and udplite; for
/// icmp/icmpv6 `sport` is the echo id and `dport` is `type << 8 | code`; for
/// gre they are the low 16 bits of `srckey`/`dstkey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (see the type docs for non-port protocols).
    pub sport: u16,
    /// Destination port (see the type docs for non-port protocols).
    pub dport: u16,
}

impl Tuple {
    const EMPTY: Tuple = Tuple {
        src: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        sport: 0,
        dport: 0,
    };

    /// The same tuple seen from the other side.
    pub fn inverse(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

/// Packet and byte counters of one direction (zero when accounting is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One conntrack entry: fixed size, no heap data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Original direction (as the first packet was seen).
    pub orig: Tuple,
    /// Reply direction (as replies are expected, after NAT).
    pub reply: Tuple,
    /// Counters of the original direction.
    pub orig_counters: Counters,
    /// Counters of the reply direction.
    pub reply_counters: Counters,
    /// Seconds until the entry expires.
    pub timeout: u32,
    /// `mark=`
    pub mark: u32,
    /// `use=` reference count.
    pub use_count: u32,
    /// conntrack id (`-o id`), 0 when absent.
    pub id: u32,
    /// 1-based line in the input.
    pub line: u32,
    /// Index of `secctx=` in [`ConnTable::strings`]; 0 when absent.
    pub secctx: u32,
    /// Index of `helper=` in [`ConnTable::strings`]; 0 when absent.
    pub helper: u32,
    /// `zone=`
    pub zone: u16,
    /// Status bits, see [`Flags`].
    pub flags: Flags,
    /// Layer 3 family.
    pub l3: L3,
    /// Layer 4 protocol number (6 tcp, 17 udp, 1 icmp ...).
    pub proto: u8,
    /// Protocol state.
    pub state: State,
}

/// Name of a layer 4 protocol number as conntrack prints it.
pub fn proto_name(proto: u8) -> &'static str {
    match proto {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        47 => "gre",
        58 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        _ => "unknown",
    }
}

/// Protocol number of a name (`tcp`, `udp`, ...) or a number.
pub fn proto_number(name: &str) -> Option<u8> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "dccp" => 33,
        "gre" => 47,
        "icmpv6" | "ipv6-icmp" | "icmp6" => 58,
        "sctp" => 132,
        "udplite" => 136,
        _ => return n.parse().ok(),
    })
}

/// Whether a protocol has ports in its tuple.
pub fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 33 | 132 | 136)
}

impl Entry {
    /// Protocol name (`tcp`, `icmp`, ..., `unknown`).
    pub fn proto_name(&self) -> &'static str {
        proto_name(self.proto)
    }

    /// Whether a status flag is set.
    pub fn has(&self, bit: u16) -> bool {
        self.flags.has(bit)
    }

    /// True when no reply has been seen.
    pub fn unreplied(&self) -> bool {
        self.has(Flags::UNREPLIED)
    }

    /// Which kinds of NAT the reply tuple shows (empty when it is the
    /// inverse of the original).
    pub fn nat(&self) -> NatKind {
        let ports = has_ports(self.proto);
        let dnat =
            self.reply.src != self.orig.dst || (ports && self.reply.sport != self.orig.dport);
        let snat =
            self.reply.dst != self.orig.src || (ports && self.reply.dport != self.orig.sport);
        NatKind { dnat, snat }
    }

    /// `10.0.0.1:443` style endpoint of a tuple side, ports only when the
    /// protocol has them.
    pub fn endpoint(&self, addr: IpAddr, port: u16) -> String {
        if has_ports(self.proto) {
            match addr {
                IpAddr::V4(a) => format!("{a}:{port}"),
                IpAddr::V6(a) => format!("[{a}]:{port}"),
            }
        } else {
            addr.to_string()
        }
    }
}

/// What kind of text an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `/proc/net/nf_conntrack` (or `conntrack -L -o extended`): lines start with `ipv4 2`.
    ProcEntries,
    /// `conntrack -L`: lines start with the l4 protocol.
    ConntrackList,
    /// `conntrack -S`: `cpu=N found=...` lines.
    ConntrackStats,
    /// `/proc/net/stat/nf_conntrack`: a header and hexadecimal rows.
    ProcStats,
    /// `conntrack -o xml`: not read.
    Xml,
    /// Nothing recognisable.
    Unknown,
}

/// Guesses the format from the first meaningful lines.
pub fn detect(input: &[u8]) -> Format {
    let head = &input[..input.len().min(64 * 1024)];
    for line in head.split(|&b| b == b'\n').take(50) {
        let t = trim(line);
        if t.is_empty() || t.starts_with(b"#") {
            continue;
        }
        if t.starts_with(b"<?xml") || t.starts_with(b"<conntrack") || t.starts_with(b"<flow") {
            return Format::Xml;
        }
        if t.starts_with(b"cpu=") {
            return Format::ConntrackStats;
        }
        if t.starts_with(b"entries") {
            return Format::ProcStats;
        }
        let mut words = t
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .skip_while(|w| w.starts_with(b"["));
        match words.next() {
            Some(b"ipv4" | b"ipv6") => return Format::ProcEntries,
            Some(w) if w.iter().all(u8::is_ascii_alphanumeric) && t.contains(&b'=') => {
                return Format::ConntrackList;
            }
            _ => {}
        }
    }
    Format::Unknown
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// The entries of one input and what was wrong with it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnTable {
    /// Name used in messages.
    pub name: String,
    /// Entries in input order.
    pub entries: Vec<Entry>,
    /// Interned `secctx=` / `helper=` values; index 0 is the empty string.
    pub strings: Vec<String>,
    /// `N` of the `conntrack -L` trailer (`N flow entries have been shown`).
    pub trailer_count: Option<u64>,
    /// Bad lines, in line order (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems beyond [`MAX_PROBLEMS`] that were only counted.
    pub problems_dropped: u64,
}

impl ConnTable {
    /// The interned string at `idx` (`secctx`, `helper`).
    pub fn string(&self, idx: u32) -> &str {
        self.strings.get(idx as usize).map_or("", String::as_str)
    }

    /// Number of error problems (including the dropped ones).
    pub fn error_count(&self) -> u64 {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count() as u64
            + self.problems_dropped
    }
}

/// What an input turned out to be.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A list of entries.
    Entries(ConnTable),
    /// Per-CPU statistics.
    Stats(Stats),
}

/// Input that could not be read as conntrack text at all.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    /// Nothing to read.
    #[error(
        "{name}: the input is empty; give /proc/net/nf_conntrack, `conntrack -L` or `conntrack -S` output"
    )]
    Empty {
        /// Input name.
        name: String,
    },
    /// Not text.
    #[error("{name}: this is binary data (byte {offset}), not conntrack text")]
    Binary {
        /// Input name.
        name: String,
        /// Offset of the first bad byte.
        offset: usize,
    },
    /// `-o xml` output.
    #[error(
        "{name}: this is conntrack XML output (-o xml), which iptviz does not read; use `conntrack -L` (or -E) without -o xml, or /proc/net/nf_conntrack"
    )]
    Xml {
        /// Input name.
        name: String,
    },
    /// Not a format iptviz knows.
    #[error(
        "{name}: not conntrack text (expected /proc/net/nf_conntrack, `conntrack -L`, `conntrack -S` or /proc/net/stat/nf_conntrack); first line: {first_line}"
    )]
    Unknown {
        /// Input name.
        name: String,
        /// The first non-empty line, cut short.
        first_line: String,
    },
}

/// Whether the start of the input looks like binary data; the offset of the
/// first bad byte if so.
fn binary_offset(input: &[u8]) -> Option<usize> {
    let head = &input[..input.len().min(4096)];
    let bad = |b: &u8| *b == 0 || (*b < 0x20 && !b"\t\n\r\x0c".contains(b));
    let count = head.iter().filter(|b| bad(b)).count();
    if count * 10 > head.len() || head.first().is_some_and(|b| *b == 0) {
        head.iter().position(bad)
    } else {
        None
    }
}

/// Detects the format and parses entries or statistics.
pub fn parse_bytes(input: &[u8], name: &str) -> Result<Parsed, ConntrackError> {
    if trim(input).is_empty() {
        return Err(ConntrackError::Empty { name: name.into() });
    }
    if let Some(offset) = binary_offset(input) {
        return Err(ConntrackError::Binary {
            name: name.into(),
            offset,
        });
    }
    match detect(input) {
        Format::ProcEntries | Format::ConntrackList => {
            Ok(Parsed::Entries(parse_entries(input, name)))
        }
        Format::ConntrackStats | Format::ProcStats => Ok(Parsed::Stats(parse_stats(input, name))),
        Format::Xml => Err(ConntrackError::Xml { name: name.into() }),
        Format::Unknown => {
            let first = input
                .split(|&b| b == b'\n')
                .map(trim)
                .find(|l| !l.is_empty())
                .unwrap_or_default();
            let first: String = String::from_utf8_lossy(first).chars().take(80).collect();
            Err(ConntrackError::Unknown {
                name: name.into(),
                first_line: first,
            })
        }
    }
}

/// Builds a problem for byte column `col` of `line`.
pub(crate) fn problem(
    line_no: u32,
    line: &[u8],
    col: usize,
    severity: Severity,
    message: String,
) -> Problem {
    let col = col.min(line.len());
    let column = String::from_utf8_lossy(&line[..col]).chars().count() as u32 + 1;
    Problem {
        line: line_no,
        column,
        severity,
        message,
        source: String::from_utf8_lossy(line).chars().take(300).collect(),
    }
}

/// Collects problems up to [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub list: Vec<Problem>,
    pub dropped: u64,
}

impl Problems {
    pub fn push(&mut self, p: Problem) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(p);
        } else {
            self.dropped += 1;
        }
    }
}
