//! Packets written as JSON, one object a line, with the field names of
//! `iptviz trace`'s flags: `{"proto": "udp", "src": "10.0.0.1", "dst":
//! "10.0.0.2", "dport": 53, "in": "eth0"}`. Fields left out take the
//! flags' defaults; `state` fixes the conntrack state (otherwise the
//! batch's connection table decides it).

use std::net::IpAddr;

use serde::Deserialize;

use super::batch::Observed;
use super::packet::{CtState, Packet, parse_icmp_type, parse_tcp_flags, protocol_number};

use crate::typed::parse_u32;

/// A number given as a JSON number or as a string (`"0x10"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Num {
    N(u64),
    S(String),
}

impl Num {
    fn get(&self, what: &str) -> Result<u32, String> {
        match self {
            Num::N(n) => u32::try_from(*n).map_err(|_| format!("{what}: {n} is too large")),
            Num::S(s) => parse_u32(s).ok_or_else(|| format!("{what}: not a number: {s:?}")),
        }
    }
}

/// One line of a packets file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Spec {
    #[serde(alias = "p")]
    proto: Option<serde_json::Value>,
    #[serde(alias = "s")]
    src: IpAddr,
    #[serde(alias = "d")]
    dst: IpAddr,
    sport: Option<u16>,
    dport: Option<u16>,
    #[serde(rename = "in", alias = "i")]
    in_iface: Option<String>,
    #[serde(rename = "out", alias = "o")]
    out_iface: Option<String>,
    state: Option<String>,
    mark: Option<Num>,
    ctmark: Option<Num>,
    #[serde(alias = "icmp_type")]
    icmp_type: Option<serde_json::Value>,
    #[serde(alias = "tcp_flags")]
    tcp_flags: Option<String>,
    length: Option<u16>,
    ttl: Option<u8>,
    uid: Option<u32>,
    gid: Option<u32>,
    #[serde(alias = "src_mac")]
    src_mac: Option<String>,
    tos: Option<serde_json::Value>,
    dscp: Option<serde_json::Value>,
    fragment: Option<String>,
    #[serde(alias = "tcp_option", alias = "tcp-options", alias = "tcp_options")]
    tcp_option: Option<serde_json::Value>,
    mss: Option<u16>,
    #[serde(alias = "ipv6_header", alias = "ipv6-headers", alias = "ipv6_headers")]
    ipv6_header: Option<serde_json::Value>,
}

/// A field given as a string, a number, or a list of them: as the text
/// a flag would take (a comma list).
fn words(v: &Option<serde_json::Value>) -> Option<String> {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    v.as_ref().map(|v| match v {
        serde_json::Value::Array(items) => items.iter().map(one).collect::<Vec<_>>().join(","),
        other => one(other),
    })
}

/// Why a line is not a packet: the message and the 1-based column it
/// points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// What is wrong.
    pub message: String,
    /// Where in the line (1-based).
    pub column: usize,
}

impl From<String> for LineError {
    fn from(message: String) -> Self {
        LineError { message, column: 1 }
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Reads one line of a packets file into a packet.
pub fn packet_from_json(line: &str) -> Result<Observed, LineError> {
    let spec: Spec = serde_json::from_str(line).map_err(|e| {
        // serde_json's message ends with its own " at line L column C".
        let m = e.to_string();
        let message = match m.rfind(" at line ") {
            Some(i) => m[..i].to_string(),
            None => m,
        };
        LineError {
            message,
            column: e.column().max(1),
        }
    })?;
    Ok(build(spec)?)
}

fn build(spec: Spec) -> Result<Observed, String> {
    let proto = match &spec.proto {
        None => 6,
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| format!("proto: not a protocol number: {n}"))?,
        Some(serde_json::Value::String(s)) => {
            protocol_number(s).ok_or_else(|| format!("proto: unknown protocol {s:?}"))?
        }
        Some(v) => return Err(format!("proto: expected a name or a number, got {v}")),
    };
    if spec.src.is_ipv4() != spec.dst.is_ipv4() {
        return Err("src and dst must be of the same address family".into());
    }
    let mut p = Packet::new(proto, spec.src, spec.dst);
    p.sport = spec.sport.unwrap_or(40000);
    p.dport = spec.dport.unwrap_or(0);
    p.in_iface = spec.in_iface.as_deref().map(Into::into);
    p.out_iface = spec.out_iface.as_deref().map(Into::into);
    let fixed_state = spec.state.is_some();
    if let Some(s) = &spec.state {
        p.state = s.parse::<CtState>().map_err(|_| {
            format!("state: unknown {s:?} (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED)")
        })?;
    }
    if let Some(m) = &spec.mark {
        p.mark = m.get("mark")?;
    }
    if let Some(m) = &spec.ctmark {
        p.ctmark = m.get("ctmark")?;
    }
    if let Some(t) = &spec.icmp_type {
        let text = match t {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let (ty, code) =
            parse_icmp_type(&text).ok_or_else(|| format!("icmp-type: unknown {text:?}"))?;
        p.icmp = (ty, code.unwrap_or(0));
    }
    if let Some(f) = &spec.tcp_flags {
        p.tcp_flags = parse_tcp_flags(f).ok_or_else(|| format!("tcp-flags: unknown {f:?}"))?;
    }
    if let Some(l) = spec.length {
        p.length = l;
    }
    if let Some(t) = spec.ttl {
        p.ttl = t;
    }
    p.uid = spec.uid;
    p.gid = spec.gid;
    if let Some(m) = &spec.src_mac {
        p.src_mac = Some(
            super::packet::parse_mac(m)
                .ok_or_else(|| format!("src-mac: not a MAC address: {m:?}"))?,
        );
    }
    super::fields::Details {
        tos: words(&spec.tos),
        dscp: words(&spec.dscp),
        fragment: spec.fragment.clone(),
        tcp_options: words(&spec.tcp_option).into_iter().collect(),
        mss: spec.mss,
        ipv6_headers: words(&spec.ipv6_header),
    }
    .apply(&mut p, "")?;
    Ok(Observed {
        packet: p,
        fixed_state,
        outgoing: false,
        quoted: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_with_flag_names_gives_the_packet() {
        let o = packet_from_json(
            r#"{"proto":"udp","src":"10.0.0.1","dst":"10.0.0.2","dport":53,"in":"eth0","mark":"0x10"}"#,
        )
        .unwrap();
        assert_eq!(o.packet.proto, 17);
        assert_eq!(o.packet.dport, 53);
        assert_eq!(o.packet.sport, 40000);
        assert_eq!(o.packet.in_iface.as_deref(), Some("eth0"));
        assert_eq!(o.packet.mark, 0x10);
        assert!(!o.fixed_state);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let e = packet_from_json(r#"{"src":"10.0.0.1","dst":"10.0.0.2","dprot":53}"#).unwrap_err();
        assert!(e.message.contains("dprot"), "{e}");
        assert!(e.column > 1);
        let e = packet_from_json(r#"{"src":"10.0.0.1","dst":"::1"}"#).unwrap_err();
        assert!(e.message.contains("family"), "{e}");
        let e =
            packet_from_json(r#"{"src":"10.0.0.1","dst":"10.0.0.2","proto":"tcpp"}"#).unwrap_err();
        assert!(e.message.contains("tcpp"), "{e}");
        let e = packet_from_json("not json").unwrap_err();
        assert!(!e.message.is_empty());
    }

    #[test]
    fn a_given_state_is_kept() {
        let o = packet_from_json(r#"{"src":"10.0.0.1","dst":"10.0.0.2","state":"established"}"#)
            .unwrap();
        assert!(o.fixed_state);
        assert_eq!(o.packet.state, CtState::Established);
    }
}
