//! Packets from a capture file (pcap or pcapng, as `tcpdump -w` and
//! Wireshark write them), read one at a time so a capture of any size is
//! replayed in constant memory. The file formats are read by `pcap-file`
//! and the headers by `etherparse`; what is kept is what netfilter looks
//! at: addresses, protocol, ports, TCP flags, ICMP type, length, TTL,
//! the TOS byte, the fragment offset and more-fragments flag, TCP options
//! and the MSS, IPv6 extension headers.
//!
//! Link types: Ethernet, Linux cooked captures (SLL, from `tcpdump -i
//! any`, and SLL2), raw IP. Fragments: when conntrack runs it reassembles
//! a datagram before the rules see it, so only its first fragment is
//! traced and the others are counted and skipped; with
//! [`CaptureReader::keep_fragments`] (no rule makes conntrack run) every
//! fragment is traced, the later ones without ports.

use std::io::{Chain, Cursor, Read};
use std::net::IpAddr;

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

use super::batch::Observed;
use super::packet::Packet;
use crate::conntrack::Tuple;

type Src<R> = Chain<Cursor<[u8; 4]>, R>;

enum Format<R: Read> {
    Pcap(PcapReader<Src<R>>, DataLink),
    Ng(PcapNgReader<Src<R>>),
}

/// One interface of a pcapng file: its link type and name.
#[derive(Debug, Clone)]
struct Iface {
    link: DataLink,
    name: Option<String>,
}

/// Why the capture could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Not a pcap or pcapng file.
    #[error("not a pcap or pcapng capture (it starts with {0})")]
    NotCapture(String),
    /// The header could not be read.
    #[error("cannot read the capture's header: {0}")]
    Header(String),
    /// Reading failed.
    #[error("cannot read the capture: {0}")]
    Io(#[from] std::io::Error),
}

/// A packet that could not be traced, by its number in the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketError {
    /// 1-based packet number (as Wireshark numbers them).
    pub number: u64,
    /// What was wrong.
    pub message: String,
    /// Reading cannot go on after it (a truncated or corrupt file).
    pub fatal: bool,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "packet {}: {}", self.number, self.message)
    }
}

/// Counts of packets the reader skipped on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Not IP (ARP, LLDP ...).
    pub not_ip: u64,
    /// Later fragments of a datagram (conntrack reassembles them).
    pub fragments: u64,
}

/// Reads packets from a capture, one at a time.
pub struct CaptureReader<R: Read> {
    format: Format<R>,
    ifaces: Vec<Iface>,
    number: u64,
    done: bool,
    /// The interface packets are taken to arrive on (`--in`); a pcapng
    /// file's own interface names are used when it is not given.
    pub iface: Option<String>,
    /// Packets skipped on purpose.
    pub skipped: Skipped,
    /// Trace fragments after the first too (with no ports), as the rules
    /// meet them when conntrack does not run; by default they are
    /// skipped, as when it does (it reassembles the datagram first).
    pub keep_fragments: bool,
}

/// The first bytes of a pcapng file (its section header block).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The first bytes of a pcap file: either byte order, micro- or
/// nanosecond timestamps.
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];

/// Whether `head`, the first bytes of a file, start a pcap or pcapng
/// capture (what [`CaptureReader::new`] accepts).
pub fn is_capture(head: &[u8]) -> bool {
    head.get(..4)
        .and_then(|m| <[u8; 4]>::try_from(m).ok())
        .is_some_and(|m| m == PCAPNG_MAGIC || PCAP_MAGICS.contains(&m))
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl<R: Read> CaptureReader<R> {
    /// Opens a capture: pcap (either byte order, micro or nanosecond) or
    /// pcapng, told apart by the first bytes.
    pub fn new(mut r: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = r.read(&mut magic[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got < 4 {
            return Err(CaptureError::NotCapture(if got == 0 {
                "nothing: it is empty".into()
            } else {
                hex(&magic[..got])
            }));
        }
        let src = Cursor::new(magic).chain(r);
        let format = match magic {
            PCAPNG_MAGIC => {
                Format::Ng(PcapNgReader::new(src).map_err(|e| CaptureError::Header(e.to_string()))?)
            }
            m if PCAP_MAGICS.contains(&m) => {
                let rd = PcapReader::new(src).map_err(|e| CaptureError::Header(e.to_string()))?;
                let link = rd.header().datalink;
                Format::Pcap(rd, link)
            }
            _ => return Err(CaptureError::NotCapture(hex(&magic))),
        };
        Ok(CaptureReader {
            format,
            ifaces: Vec::new(),
            number: 0,
            done: false,
            iface: None,
            skipped: Skipped::default(),
            keep_fragments: false,
        })
    }

    /// The next packet to trace, or why packet N could not be; `None` at
    /// the end. Packets skipped on purpose (not IP, later fragments) are
    /// counted in [`CaptureReader::skipped`] and not returned.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Observed, PacketError>> {
        loop {
            if self.done {
                return None;
            }
            let (link, iface, orig_len, data): (DataLink, Option<String>, u32, Vec<u8>) =
                match &mut self.format {
                    Format::Pcap(rd, link) => match rd.next_packet() {
                        None => return None,
                        Some(Err(e)) => return Some(Err(self.fatal(e))),
                        Some(Ok(p)) => (*link, None, p.orig_len, p.data.into_owned()),
                    },
                    Format::Ng(rd) => match rd.next_block() {
                        None => return None,
                        Some(Err(e)) => return Some(Err(self.fatal(e))),
                        Some(Ok(Block::InterfaceDescription(idb))) => {
                            let name = idb.options.iter().find_map(|o| match o {
                                pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                                _ => None,
                            });
                            self.ifaces.push(Iface {
                                link: idb.linktype,
                                name,
                            });
                            continue;
                        }
                        Some(Ok(Block::SectionHeader(_))) => {
                            // A new section starts its own interface list.
                            self.ifaces.clear();
                            continue;
                        }
                        Some(Ok(Block::EnhancedPacket(epb))) => {
                            let Some(i) = self.ifaces.get(epb.interface_id as usize) else {
                                self.number += 1;
                                return Some(Err(PacketError {
                                    number: self.number,
                                    message: format!(
                                        "names interface {} that the capture never described",
                                        epb.interface_id
                                    ),
                                    fatal: false,
                                }));
                            };
                            (
                                i.link,
                                i.name.clone(),
                                epb.original_len,
                                epb.data.into_owned(),
                            )
                        }
                        Some(Ok(Block::SimplePacket(spb))) => {
                            let Some(i) = self.ifaces.first() else {
                                self.number += 1;
                                return Some(Err(PacketError {
                                    number: self.number,
                                    message: "comes before any interface is described".into(),
                                    fatal: false,
                                }));
                            };
                            (
                                i.link,
                                i.name.clone(),
                                spb.original_len,
                                spb.data.into_owned(),
                            )
                        }
                        Some(Ok(_)) => continue,
                    },
                };
            self.number += 1;
            let number = self.number;
            let iface = self.iface.clone().or(iface);
            match decode(link, &data, orig_len, self.keep_fragments) {
                Ok(Decoded::Packet(obs)) => {
                    let mut obs = *obs;
                    if obs.outgoing {
                        obs.packet.out_iface = iface.map(Into::into);
                    } else {
                        obs.packet.in_iface = iface.map(Into::into);
                    }
                    return Some(Ok(obs));
                }
                Ok(Decoded::NotIp) => self.skipped.not_ip += 1,
                Ok(Decoded::Fragment) => self.skipped.fragments += 1,
                Err(message) => {
                    return Some(Err(PacketError {
                        number,
                        message,
                        fatal: false,
                    }));
                }
            }
        }
    }

    /// Packets read so far (traced, skipped or not readable).
    pub fn packets_read(&self) -> u64 {
        self.number
    }

    fn fatal(&mut self, e: pcap_file::PcapError) -> PacketError {
        use pcap_file::PcapError as E;
        self.done = true;
        self.number += 1;
        let truncated = match &e {
            E::IncompleteBuffer => true,
            E::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
            _ => false,
        };
        let message = if truncated {
            "the capture ends in the middle of this packet (truncated file): the packets before it were traced".to_string()
        } else {
            let why = match &e {
                E::IoError(io) => io.to_string(),
                other => other.to_string(),
            };
            format!("cannot be read ({why}): the packets before it were traced")
        };
        PacketError {
            number: self.number,
            message,
            fatal: true,
        }
    }
}

/// What a frame turned out to be.
enum Decoded {
    Packet(Box<Observed>),
    NotIp,
    Fragment,
}

/// Linux cooked capture packet types.
const SLL_OUTGOING: u8 = 4;

/// Decodes one frame of link type `link` (`orig_len` its length on the wire).
fn decode(
    link: DataLink,
    data: &[u8],
    orig_len: u32,
    keep_fragments: bool,
) -> Result<Decoded, String> {
    let cut = data.len() < orig_len as usize;
    let short = |what: &str| {
        if cut {
            format!(
                "cut to {} of its {orig_len} bytes by the capture's snaplen before the end of its {what}: not traced",
                data.len()
            )
        } else {
            format!(
                "too short for its {what} ({} bytes): not traced",
                data.len()
            )
        }
    };
    let mut outgoing = false;
    let mut src_mac = None;
    let sliced = match link {
        DataLink::ETHERNET => match LaxSlicedPacket::from_ethernet(data) {
            Ok(s) => s,
            Err(_) => return Err(short("Ethernet header")),
        },
        DataLink::LINUX_SLL | DataLink::LINUX_SLL2 => {
            let (hlen, proto_at, kind_at) = if link == DataLink::LINUX_SLL {
                (16, 14, 1)
            } else {
                (20, 0, 10)
            };
            if data.len() < hlen {
                return Err(short("Linux cooked header"));
            }
            outgoing = data[kind_at] == SLL_OUTGOING;
            let (len_at, addr_at) = if link == DataLink::LINUX_SLL {
                (5, 6)
            } else {
                (11, 12)
            };
            if data[len_at] == 6 {
                src_mac = data[addr_at..addr_at + 6].try_into().ok();
            }
            let proto = u16::from_be_bytes([data[proto_at], data[proto_at + 1]]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), &data[hlen..])
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => match LaxSlicedPacket::from_ip(data) {
            Ok(s) => s,
            Err(_) => return Err(short("IP header")),
        },
        other => {
            return Err(format!(
                "link type {other:?} is not one iptviz reads (Ethernet, Linux cooked SLL and SLL2, raw IP): not traced"
            ));
        }
    };
    let Some(net) = &sliced.net else {
        if sliced.stop_err.is_some() {
            return Err(short("IP header"));
        }
        return Ok(Decoded::NotIp);
    };
    let mut ext = Vec::new();
    let (src, dst, ttl, length, proto, later_fragment, fragmented, more, tos): (
        IpAddr,
        IpAddr,
        u8,
        u16,
        u8,
        bool,
        bool,
        bool,
        u8,
    ) = match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let off = h.fragments_offset().value();
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                h.ttl(),
                h.total_len(),
                v4.payload().ip_number.0,
                off != 0,
                off != 0 || h.more_fragments(),
                h.more_fragments(),
                (h.dcp().value() << 2) | h.ecn().value(),
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let p = v6.payload();
            let (mut more, mut offset, mut frag) = (false, 0, false);
            for e in v6.extensions().clone() {
                use etherparse::Ipv6ExtensionSlice as X;
                ext.push(match e {
                    X::HopByHop(_) => 0,
                    X::Routing(_) => 43,
                    X::Fragment(f) => {
                        (offset, more) = v6_fragment(&f);
                        frag = true;
                        44
                    }
                    X::DestinationOptions(_) => 60,
                    X::Authentication(_) => 51,
                });
            }
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                h.hop_limit(),
                h.payload_length().saturating_add(40),
                p.ip_number.0,
                frag && offset != 0,
                frag && (offset != 0 || more),
                more,
                h.traffic_class(),
            )
        }
        #[allow(unreachable_patterns)]
        _ => return Ok(Decoded::NotIp),
    };
    if later_fragment && !keep_fragments {
        return Ok(Decoded::Fragment);
    }
    if let Some(etherparse::LinkSlice::Ethernet2(e)) = &sliced.link {
        src_mac = Some(e.source());
    }
    let mut p = Packet::new(proto, src, dst);
    p.ttl = ttl;
    p.tos = tos;
    p.ipv6_headers = ext;
    p.fragment = later_fragment;
    p.more_fragments = more;
    if later_fragment {
        // No transport header in it: ports, flags and options stay empty.
        p.tcp_flags = 0;
        p.icmp = (0, 0);
        p.length = length;
        if !outgoing {
            p.src_mac = src_mac;
        }
        return Ok(Decoded::Packet(Box::new(Observed {
            packet: p,
            fixed_state: false,
            outgoing,
            quoted: None,
        })));
    }
    if !outgoing {
        p.src_mac = src_mac;
    }
    p.length = length;
    let mut quoted = None;
    match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            p.sport = t.source_port();
            p.dport = t.destination_port();
            (p.tcp_options, p.mss) = tcp_options(t.options());
            p.tcp_flags = tcp_flags_of(t.header_slice());
        }
        Some(TransportSlice::Udp(u)) => {
            p.sport = u.source_port();
            p.dport = u.destination_port();
        }
        Some(TransportSlice::Icmpv4(i)) => {
            p.icmp = (i.type_u8(), i.code_u8());
            quoted = quoted_tuple(i.payload());
        }
        Some(TransportSlice::Icmpv6(i)) => {
            p.icmp = (i.type_u8(), i.code_u8());
            quoted = quoted_tuple(i.payload());
        }
        _ => {
            let needs = match proto {
                6 => Some("TCP header"),
                17 => Some("UDP header"),
                1 | 58 => Some("ICMP header"),
                _ => None,
            };
            if let Some(what) = needs
                && !fragmented
            {
                return Err(short(what));
            }
        }
    }
    // etherparse leaves the transport header of a first fragment unread:
    // it is there in full, read it from the IP payload.
    if fragmented && sliced.transport.is_none() {
        first_fragment_transport(net, &mut p);
    }
    Ok(Decoded::Packet(Box::new(Observed {
        packet: p,
        fixed_state: false,
        outgoing,
        quoted,
    })))
}

/// The option kinds of a TCP header's option bytes, and the MSS value.
fn tcp_options(raw: &[u8]) -> (Vec<u8>, Option<u16>) {
    let (mut kinds, mut mss) = (Vec::new(), None);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let len = raw.get(i + 1).copied().unwrap_or(0) as usize;
                if len < 2 {
                    break;
                }
                if kind == 2 && len == 4 && i + 4 <= raw.len() {
                    mss = Some(u16::from_be_bytes([raw[i + 2], raw[i + 3]]));
                }
                kinds.push(kind);
                i += len;
            }
        }
    }
    kinds.sort_unstable();
    kinds.dedup();
    (kinds, mss)
}

/// The flags byte of a TCP header (byte 13): [`super::packet::tcp_flags`] gives each
/// flag the bit it has there, FIN lowest, CWR highest.
fn tcp_flags_of(header: &[u8]) -> u8 {
    header.get(13).copied().unwrap_or(0)
}

/// Ports, TCP flags and options of a first fragment, from its payload.
fn first_fragment_transport(net: &LaxNetSlice<'_>, p: &mut Packet) {
    let Some(payload) = net.ip_payload_ref().map(|x| x.payload) else {
        return;
    };
    match p.proto {
        6 => {
            if let Ok(t) = etherparse::TcpHeaderSlice::from_slice(payload) {
                p.sport = t.source_port();
                p.dport = t.destination_port();
                p.tcp_flags = tcp_flags_of(t.slice());
                (p.tcp_options, p.mss) = tcp_options(t.options());
            }
        }
        17 | 136 => {
            if let Ok(u) = etherparse::UdpHeaderSlice::from_slice(payload) {
                p.sport = u.source_port();
                p.dport = u.destination_port();
            }
        }
        _ => {}
    }
}

/// Offset (in 8-byte units) and M flag of an IPv6 fragment header, read
/// from its bytes as RFC 8200 lays them out: 13 bits of offset, 2
/// reserved, M last. (etherparse 0.19 reads them from other bits.)
fn v6_fragment(f: &etherparse::Ipv6FragmentHeaderSlice<'_>) -> (u16, bool) {
    let b = f.slice();
    let v = u16::from_be_bytes([b[2], b[3]]);
    (v >> 3, v & 1 == 1)
}

/// The tuple of the packet an ICMP error quotes (its IP header and the
/// first bytes after it).
fn quoted_tuple(payload: &[u8]) -> Option<(u8, Tuple)> {
    let s = LaxSlicedPacket::from_ip(payload).ok()?;
    let (src, dst, proto): (IpAddr, IpAddr, u8) = match s.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.payload().ip_number.0,
        ),
        LaxNetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.payload().ip_number.0,
        ),
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let (sport, dport) = match &s.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        _ => {
            // TCP quoted with only its first 8 bytes: the ports are there.
            let ip = s.net.as_ref()?.ip_payload_ref()?.payload;
            if matches!(proto, 6 | 17 | 132 | 136) && ip.len() >= 4 {
                (
                    u16::from_be_bytes([ip[0], ip[1]]),
                    u16::from_be_bytes([ip[2], ip[3]]),
                )
            } else {
                (0, 0)
            }
        }
    };
    Some((
        proto,
        Tuple {
            src,
            dst,
            sport,
            dport,
        },
    ))
}
