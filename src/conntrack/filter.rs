//! Selecting entries: by address, port, protocol, state, NAT, unreplied.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Entry, State, has_ports, proto_number};

/// Conditions an entry must all meet; the default selects everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Original source inside this network.
    pub src: Option<IpNet>,
    /// Original destination inside this network.
    pub dst: Option<IpNet>,
    /// Any address of either tuple inside this network.
    pub addr: Option<IpNet>,
    /// Any port of either tuple (port protocols only).
    pub port: Option<u16>,
    /// Layer 4 protocol number.
    pub proto: Option<u8>,
    /// Protocol state.
    pub state: Option<State>,
    /// Only entries that show NAT.
    pub nat_only: bool,
    /// Only `[UNREPLIED]` entries.
    pub unreplied_only: bool,
}

/// A filter value that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct FilterError {
    /// Which filter.
    pub what: &'static str,
    /// Why.
    pub message: String,
}

/// An address (`10.0.0.1`, a /32 or /128) or a network (`10.0.0.0/8`).
pub fn parse_net(s: &str) -> Result<IpNet, FilterError> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| FilterError {
            what: "address",
            message: format!("`{s}` is not an IP address or network (like 10.0.0.1 or 10.0.0.0/8)"),
        })
}

/// A protocol name (`tcp`) or number (`6`).
pub fn parse_proto(s: &str) -> Result<u8, FilterError> {
    proto_number(s).ok_or_else(|| FilterError {
        what: "protocol",
        message: format!("`{s}` is not a protocol name (tcp, udp, icmp, ...) or number 0-255"),
    })
}

/// A state name (`ESTABLISHED`, case-insensitive).
pub fn parse_state(s: &str) -> Result<State, FilterError> {
    State::from_name(s).ok_or_else(|| FilterError {
        what: "state",
        message: format!("`{s}` is not a conntrack state (ESTABLISHED, TIME_WAIT, SYN_SENT, ...)"),
    })
}

impl Filter {
    /// True when no condition is set.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether an entry meets every condition.
    pub fn matches(&self, e: &Entry) -> bool {
        if let Some(n) = &self.src
            && !n.contains(&e.orig.src)
        {
            return false;
        }
        if let Some(n) = &self.dst
            && !n.contains(&e.orig.dst)
        {
            return false;
        }
        if let Some(n) = &self.addr {
            let any = [e.orig.src, e.orig.dst, e.reply.src, e.reply.dst]
                .iter()
                .any(|a| n.contains(a));
            if !any {
                return false;
            }
        }
        if let Some(p) = self.port {
            let any = has_ports(e.proto)
                && [e.orig.sport, e.orig.dport, e.reply.sport, e.reply.dport].contains(&p);
            if !any {
                return false;
            }
        }
        if self.proto.is_some_and(|p| p != e.proto) {
            return false;
        }
        if self.state.is_some_and(|s| s != e.state) {
            return false;
        }
        if self.nat_only {
            let n = e.nat();
            if !(n.dnat || n.snat) {
                return false;
            }
        }
        if self.unreplied_only && !e.unreplied() {
            return false;
        }
        true
    }
}
