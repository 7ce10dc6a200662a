//! The packet a trace follows, and the small vocabularies (protocols,
//! conntrack states, TCP flags, ICMP types) used to describe it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use serde::Serialize;

use crate::model::Str;

use super::TraceError;

/// Conntrack state of the packet as the `conntrack`/`state` matches see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CtState {
    /// First packet of a connection: the nat table is consulted.
    #[default]
    New,
    /// Part of a known connection.
    Established,
    /// Related to a known connection (ICMP error, FTP data ...).
    Related,
    /// Conntrack could not classify it.
    Invalid,
    /// Exempted from tracking (`-j CT --notrack`).
    Untracked,
}

impl CtState {
    /// The name used by `--ctstate`.
    pub fn name(self) -> &'static str {
        match self {
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Invalid => "INVALID",
            CtState::Untracked => "UNTRACKED",
        }
    }
}

impl FromStr for CtState {
    type Err = TraceError;
    fn from_str(s: &str) -> Result<Self, TraceError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NEW" => CtState::New,
            "ESTABLISHED" => CtState::Established,
            "RELATED" => CtState::Related,
            "INVALID" => CtState::Invalid,
            "UNTRACKED" => CtState::Untracked,
            _ => return Err(TraceError::BadValue("state", s.into())),
        })
    }
}

/// TCP flag bits as on the wire.
pub mod tcp_flags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
    /// URG
    pub const URG: u8 = 0x20;
    /// ECE
    pub const ECE: u8 = 0x40;
    /// CWR
    pub const CWR: u8 = 0x80;
}

/// Parses a flag list as iptables writes it: `SYN,ACK`, `ALL`, `NONE`.
pub fn parse_tcp_flags(s: &str) -> Option<u8> {
    use tcp_flags::*;
    let mut bits = 0u8;
    for f in s.split(',') {
        bits |= match f.trim().to_ascii_uppercase().as_str() {
            "FIN" => FIN,
            "SYN" => SYN,
            "RST" => RST,
            "PSH" => PSH,
            "ACK" => ACK,
            "URG" => URG,
            "ECE" => ECE,
            "CWR" => CWR,
            "ALL" => FIN | SYN | RST | PSH | ACK | URG,
            "NONE" | "" => 0,
            _ => return None,
        };
    }
    Some(bits)
}

/// Protocol number of a `-p` name (`tcp`, `udp`, `6`, ...); `all` is 0.
pub fn protocol_number(s: &str) -> Option<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Some(n);
    }
    Some(match s.to_ascii_lowercase().as_str() {
        "all" => 0,
        "icmp" => 1,
        "igmp" => 2,
        "ipencap" | "ipip" | "ipv4" => 4,
        "tcp" => 6,
        "egp" => 8,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" | "icmp6" => 58,
        "ospf" | "ospfigp" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "l2tp" => 115,
        "sctp" => 132,
        "udplite" => 136,
        "mh" | "ipv6-mh" => 135,
        _ => return None,
    })
}

/// Display name of a protocol number.
pub fn protocol_name(n: u8) -> String {
    match n {
        0 => "all".into(),
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

/// ICMP `type[/code]` from a number or an iptables name. `None` code = any.
pub fn parse_icmp_type(s: &str) -> Option<(u8, Option<u8>)> {
    if let Some((t, c)) = s.split_once('/') {
        return Some((t.parse().ok()?, Some(c.parse().ok()?)));
    }
    if let Ok(t) = s.parse() {
        return Some((t, None));
    }
    let (t, c) = match s.to_ascii_lowercase().as_str() {
        "echo-reply" | "pong" => (0, None),
        "destination-unreachable" => (3, None),
        "network-unreachable" => (3, Some(0)),
        "host-unreachable" => (3, Some(1)),
        "protocol-unreachable" => (3, Some(2)),
        "port-unreachable" => (3, Some(3)),
        "fragmentation-needed" => (3, Some(4)),
        "source-route-failed" => (3, Some(5)),
        "network-unknown" => (3, Some(6)),
        "host-unknown" => (3, Some(7)),
        "network-prohibited" => (3, Some(9)),
        "host-prohibited" => (3, Some(10)),
        "communication-prohibited" => (3, Some(13)),
        "source-quench" => (4, None),
        "redirect" => (5, None),
        "echo-request" | "ping" => (8, None),
        "router-advertisement" => (9, None),
        "router-solicitation" => (10, None),
        "time-exceeded" | "ttl-exceeded" => (11, None),
        "ttl-zero-during-transit" => (11, Some(0)),
        "ttl-zero-during-reassembly" => (11, Some(1)),
        "parameter-problem" => (12, None),
        "timestamp-request" => (13, None),
        "timestamp-reply" => (14, None),
        "address-mask-request" => (17, None),
        "address-mask-reply" => (18, None),
        _ => return None,
    };
    Some((t, c))
}

/// One packet, as netfilter sees it at the point of the walk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Packet {
    /// IP protocol number (6 tcp, 17 udp, 1 icmp ...).
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (TCP, UDP, SCTP).
    pub sport: u16,
    /// Destination port (TCP, UDP, SCTP).
    pub dport: u16,
    /// Interface it came in on (`None` for locally generated packets).
    pub in_iface: Option<Str>,
    /// Interface it leaves by (`None` when delivered locally or unknown).
    pub out_iface: Option<Str>,
    /// Conntrack state.
    pub state: CtState,
    /// Packet mark (`skb->mark`).
    pub mark: u32,
    /// Connection mark.
    pub ctmark: u32,
    /// ICMP type and code.
    pub icmp: (u8, u8),
    /// TCP flags (SYN for a new connection by default).
    pub tcp_flags: u8,
    /// Total IP length in bytes (`-m length`).
    pub length: u16,
    /// A non-first fragment (`-f`).
    pub fragment: bool,
    /// TTL (IPv4) or hop limit (IPv6) as the packet arrives or is sent;
    /// forwarding takes one off before FORWARD.
    pub ttl: u8,
    /// User id of the local socket that sent it (`-m owner`); unknown when
    /// `None`. Packets from elsewhere have no socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group id of that socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Source MAC address of the frame it arrived in (`-m mac`); unknown
    /// when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<[u8; 6]>,
    /// The TOS byte (IPv4) or traffic class (IPv6): DSCP in the upper six
    /// bits, ECN in the lower two.
    #[serde(skip_serializing_if = "super::fields::is_zero")]
    pub tos: u8,
    /// More fragments of its datagram follow (IPv4 MF, IPv6 M flag); with
    /// `fragment` it tells a first, middle or last fragment.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more_fragments: bool,
    /// Kinds of the TCP options the segment carries (2 MSS, 3 window
    /// scale, 4 SACK permitted, 8 timestamps ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp_options: Vec<u8>,
    /// The value of the TCP MSS option, when the segment has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mss: Option<u16>,
    /// IPv6 extension headers in order, by next-header number (0
    /// hop-by-hop, 60 destination options, 43 routing, 44 fragment, 51
    /// AH, 50 ESP, 59 no next header).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ipv6_headers: Vec<u8>,
}

impl Packet {
    /// A packet with defaults filled in for the protocol: SYN for TCP, echo
    /// request for ICMP, the length of headers without payload.
    pub fn new(proto: u8, src: IpAddr, dst: IpAddr) -> Packet {
        let v6 = src.is_ipv6();
        let ip = if v6 { 40 } else { 20 };
        let (l4, icmp) = match proto {
            6 => (20, (0, 0)),
            17 => (8, (0, 0)),
            1 => (8, (8, 0)),
            58 => (8, (128, 0)),
            _ => (0, (0, 0)),
        };
        Packet {
            proto,
            src,
            dst,
            sport: 0,
            dport: 0,
            in_iface: None,
            out_iface: None,
            state: CtState::New,
            mark: 0,
            ctmark: 0,
            icmp,
            tcp_flags: if proto == 6 { tcp_flags::SYN } else { 0 },
            length: ip + l4,
            fragment: false,
            ttl: 64,
            uid: None,
            gid: None,
            src_mac: None,
            tos: 0,
            more_fragments: false,
            tcp_options: Vec::new(),
            mss: None,
            ipv6_headers: Vec::new(),
        }
    }

    /// True when the protocol carries ports.
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17 | 132 | 136)
    }
}

impl Default for Packet {
    fn default() -> Self {
        Packet::new(
            6,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        )
    }
}

impl Packet {
    /// Protocol, addresses and ports (and ICMP type): `tcp 10.0.0.1:40000 -> 10.0.0.2:22`.
    pub fn addresses(&self) -> String {
        let mut out = format!("{} {}", protocol_name(self.proto), self.src);
        if self.has_ports() {
            out.push_str(&format!(":{}", self.sport));
        }
        out.push_str(&format!(" -> {}", self.dst));
        if self.has_ports() {
            out.push_str(&format!(":{}", self.dport));
        }
        if matches!(self.proto, 1 | 58) {
            out.push_str(&format!(" type {}/{}", self.icmp.0, self.icmp.1));
        }
        out
    }

    /// Interfaces, conntrack state and marks: `in eth0 NEW mark 0x1`.
    pub fn context(&self) -> String {
        let mut out = Vec::new();
        if let Some(i) = &self.in_iface {
            out.push(format!("in {i}"));
        }
        if let Some(o) = &self.out_iface {
            out.push(format!("out {o}"));
        }
        out.push(self.state.name().to_string());
        if self.mark != 0 {
            out.push(format!("mark {:#x}", self.mark));
        }
        if self.ctmark != 0 {
            out.push(format!("ctmark {:#x}", self.ctmark));
        }
        out.extend(super::fields::describe(self));
        out.join(" ")
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.addresses(), self.context())
    }
}

/// Parses a MAC address written `02:00:5e:10:00:01` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
