//! The routing decision between PREROUTING and INPUT/FORWARD, and before
//! OUTPUT, as the kernel takes it (`ip_route_input_slow`,
//! `ip_route_input_mc`, `fib_validate_source`, `ip6_route_input`,
//! `ip_route_output`): martian addresses, the route lookup in the local,
//! main and default tables, `ip_forward`, reverse-path filtering, and
//! multicast groups joined. Also the `-m rpfilter` match, which asks the
//! same tables.
//!
//! Source 0.0.0.0/8 is a martian except where DHCP and IGMP need it:
//! 0.0.0.0 to 255.255.255.255 (a DHCP discovery) is a broadcast for this
//! host, and a packet from 0.0.0.0/8 to a joined group is taken when the
//! group is in 224.0.0.0/24 or the packet is IGMP. Linux accepts class E
//! sources (240.0.0.0/4) like any other; IPv6 forwards a link-local
//! destination back onto the link it came from (both checked against the
//! kernel in `tests/kernel_route.rs`).
//!
//! What is not modelled: `ip rule` (policy routing; only the local, main
//! and default tables are looked in), multicast routing (a multicast
//! packet is delivered or dropped, never forwarded), per-interface
//! `forwarding`, `bc_forwarding`, VRFs and IPsec policies.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::analysis::routes::{RouteEntry, RouteKind, RouteTable};

use super::packet::Packet;

/// The sysctl keys `--sysctl` accepts, for error messages and help.
pub const SYSCTL_KEYS: &str = "net.ipv4.ip_forward, net.ipv6.conf.all.forwarding, \
net.ipv4.conf.{all,IFACE}.rp_filter (0, 1 or 2), net.ipv4.conf.{all,IFACE}.route_localnet, \
net.ipv4.conf.{all,IFACE}.accept_local";

/// The sysctls the routing decision depends on; unset ones take the
/// values named in [`Sysctls::assumptions`].
#[derive(Debug, Clone, Default)]
pub struct Sysctls {
    /// `net.ipv4.ip_forward`.
    pub ip_forward: Option<bool>,
    /// `net.ipv6.conf.all.forwarding`.
    pub ip6_forward: Option<bool>,
    /// `net.ipv4.conf.{all,IFACE}.rp_filter`, by `all` or interface.
    pub rp_filter: BTreeMap<String, u8>,
    /// `net.ipv4.conf.{all,IFACE}.route_localnet`.
    pub route_localnet: BTreeMap<String, bool>,
    /// `net.ipv4.conf.{all,IFACE}.accept_local`.
    pub accept_local: BTreeMap<String, bool>,
}

/// Why a `--sysctl` could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--sysctl {spec:?}: {why}")]
pub struct SysctlError {
    /// As given.
    pub spec: String,
    /// What is wrong.
    pub why: String,
}

impl Sysctls {
    /// Takes one `KEY=VALUE` (also `net/ipv4/ip_forward=1`, as in
    /// `/proc/sys`).
    pub fn set(&mut self, spec: &str) -> Result<(), SysctlError> {
        let err = |why: String| SysctlError {
            spec: spec.into(),
            why,
        };
        let Some((key, value)) = spec.split_once('=') else {
            return Err(err("expected KEY=VALUE".into()));
        };
        let key = key.trim().replace('/', ".");
        let value = value.trim();
        let num: u8 = value
            .parse()
            .map_err(|_| err(format!("{value:?} is not a number")))?;
        let flag = |max: u8| {
            if num > max {
                Err(err(format!("{key} takes 0 to {max}, not {num}")))
            } else {
                Ok(num)
            }
        };
        match key.as_str() {
            "net.ipv4.ip_forward" | "net.ipv4.conf.all.forwarding" => {
                self.ip_forward = Some(flag(1)? == 1)
            }
            "net.ipv6.conf.all.forwarding" => self.ip6_forward = Some(flag(1)? == 1),
            _ => {
                let unknown = || err(format!("unknown key {key:?}; accepted keys: {SYSCTL_KEYS}"));
                let rest = key.strip_prefix("net.ipv4.conf.").ok_or_else(unknown)?;
                let (iface, what) = rest.rsplit_once('.').ok_or_else(unknown)?;
                if iface.is_empty() || iface == "default" {
                    return Err(unknown());
                }
                match what {
                    "rp_filter" => {
                        self.rp_filter.insert(iface.into(), flag(2)?);
                    }
                    "route_localnet" => {
                        self.route_localnet.insert(iface.into(), flag(1)? == 1);
                    }
                    "accept_local" => {
                        self.accept_local.insert(iface.into(), flag(1)? == 1);
                    }
                    _ => return Err(unknown()),
                }
            }
        }
        Ok(())
    }

    /// Forwarding is on (assumed on when not given: the trace is usually
    /// of a router).
    pub fn forwarding(&self, v6: bool) -> bool {
        if v6 {
            self.ip6_forward.unwrap_or(true)
        } else {
            self.ip_forward.unwrap_or(true)
        }
    }

    /// The kernel takes the larger of `all` and the interface's value.
    pub fn rp_filter(&self, iface: &str) -> u8 {
        let all = self.rp_filter.get("all").copied().unwrap_or(0);
        all.max(self.rp_filter.get(iface).copied().unwrap_or(0))
    }

    /// On when `all` or the interface has it.
    pub fn route_localnet(&self, iface: &str) -> bool {
        either(&self.route_localnet, iface)
    }

    /// On when `all` or the interface has it.
    pub fn accept_local(&self, iface: &str) -> bool {
        either(&self.accept_local, iface)
    }

    /// The values used for the sysctls not given, in words.
    pub fn assumptions(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.ip_forward.is_none() {
            v.push("net.ipv4.ip_forward=1".to_string());
        }
        if self.ip6_forward.is_none() {
            v.push("net.ipv6.conf.all.forwarding=1".to_string());
        }
        if !self.rp_filter.contains_key("all") {
            v.push("net.ipv4.conf.all.rp_filter=0".to_string());
        }
        v
    }
}

fn either(m: &BTreeMap<String, bool>, iface: &str) -> bool {
    m.get("all").copied().unwrap_or(false) || m.get(iface).copied().unwrap_or(false)
}

/// What the host knows about routing: the route list, the sysctls and
/// the multicast groups joined.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// `ip route show table all` output, when given.
    pub table: Option<RouteTable>,
    /// The sysctls given.
    pub sysctls: Sysctls,
    /// Multicast groups this host has joined (`--join`).
    pub joined: Vec<IpAddr>,
}

/// Where routing sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// To INPUT: this host's address, a broadcast, a group joined.
    Local,
    /// To FORWARD.
    Forward,
    /// A locally generated packet leaves (to OUTPUT).
    Output,
    /// Dropped by routing.
    Drop,
}

/// The routing step of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteStep {
    /// Where the packet goes.
    pub decision: Decision,
    /// The route that decided, as listed (with its line), if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The interface it leaves by, when forwarded or sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Why, in words (for a drop: the martian or rp_filter rule).
    pub reason: String,
}

impl RouteStep {
    fn new(decision: Decision, route: Option<&RouteEntry>, reason: String) -> RouteStep {
        RouteStep {
            decision,
            route: route.map(describe),
            dev: None,
            reason,
        }
    }

    fn drop(route: Option<&RouteEntry>, reason: String) -> RouteStep {
        RouteStep::new(Decision::Drop, route, reason)
    }

    /// Dropped before PREROUTING.
    pub(crate) fn receive_drop(reason: String) -> RouteStep {
        RouteStep::drop(None, reason)
    }

    /// REDIRECT sends to this host.
    pub(crate) fn redirected() -> RouteStep {
        RouteStep::new(
            Decision::Local,
            None,
            "REDIRECT sent it to this host".into(),
        )
    }
}

fn describe(r: &RouteEntry) -> String {
    format!("{} (line {})", r.text, r.line)
}

fn v4_bits(a: IpAddr) -> Option<u32> {
    match a {
        IpAddr::V4(a) => Some(u32::from(a)),
        IpAddr::V6(_) => None,
    }
}

fn is_zeronet(a: IpAddr) -> bool {
    v4_bits(a).is_some_and(|b| b >> 24 == 0)
}

fn is_lbcast(a: IpAddr) -> bool {
    v4_bits(a) == Some(u32::MAX)
}

fn is_loopback(a: IpAddr) -> bool {
    a.is_loopback()
}

/// 224.0.0.0/24: link-local multicast, never routed.
fn is_local_multicast(a: IpAddr) -> bool {
    v4_bits(a).is_some_and(|b| b >> 8 == 0xe00000)
}

fn is_v6_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// The groups every multicast-capable interface is a member of.
fn always_joined(a: IpAddr) -> bool {
    a == IpAddr::from([224, 0, 0, 1]) || a == "ff02::1".parse::<IpAddr>().unwrap_or(a)
}

impl Routing {
    /// The route list, if it has routes of the family (an IPv4 list says
    /// nothing about IPv6 packets: they are then traced as without one).
    pub fn table_for(&self, v6: bool) -> Option<&RouteTable> {
        self.table
            .as_ref()
            .filter(|t| t.family(v6).next().is_some())
    }

    /// This host's addresses from the route list (`local` routes).
    pub fn local_addrs(&self) -> Vec<IpAddr> {
        self.table
            .as_ref()
            .map(RouteTable::local_addrs)
            .unwrap_or_default()
    }

    /// The route lookup; without a route list, this host's addresses
    /// (`locals`) and loopback are local routes and everything else has
    /// some unicast route of unknown device.
    fn lookup<'a>(&'a self, dst: IpAddr, locals: &[IpAddr]) -> Lookup<'a> {
        self.lookup_bound(dst, locals, None)
    }

    /// The lookup, bound to an interface when `bind` is given.
    fn lookup_bound<'a>(
        &'a self,
        dst: IpAddr,
        locals: &[IpAddr],
        bind: Option<&str>,
    ) -> Lookup<'a> {
        let found = |t: &'a RouteTable| match bind {
            Some(dev) => t.lookup_via(dst, dev),
            None => t.lookup(dst),
        };
        match self.table_for(dst.is_ipv6()) {
            Some(t) => match found(t) {
                Some(r) => Lookup::Route(r),
                None => Lookup::NoRoute,
            },
            None if locals.contains(&dst) || dst.is_loopback() => Lookup::AssumedLocal,
            None => Lookup::AssumedUnicast,
        }
    }

    /// The kernel's source check of an arriving packet
    /// (`fib_validate_source`): with rp_filter off, only a source that is
    /// one of this host's own addresses is refused (unless accept_local);
    /// with it on, the route back to the source must be unicast and, in
    /// strict mode (1), leave by the interface the packet came in on.
    /// `out` is the interface a forwarded packet leaves by.
    fn validate_source(
        &self,
        src: IpAddr,
        dev: &str,
        out: Option<&str>,
        locals: &[IpAddr],
    ) -> Result<(), String> {
        let rpf = if src.is_ipv6() {
            0
        } else {
            self.sysctls.rp_filter(dev)
        };
        let accept_local = self.sysctls.accept_local(dev);
        // Forwarded back out of the interface it came in on, the kernel
        // looks the source up even with rp_filter off (to send redirects).
        let same_dev = out == Some(dev);
        if rpf == 0 && !same_dev {
            if accept_local || src.is_ipv6() {
                return Ok(());
            }
            if locals.contains(&src) {
                return Err(format!(
                    "martian source: {src} is an address of this host (accept_local=0)"
                ));
            }
            return Ok(());
        }
        let Some(table) = self.table_for(src.is_ipv6()) else {
            return Ok(());
        };
        let Some(r) = table.lookup(src) else {
            return match rpf {
                0 => Ok(()),
                n => Err(format!(
                    "rp_filter={n} on {dev}: no route back to the source {src}"
                )),
            };
        };
        let usable = r.kind == RouteKind::Unicast || (r.kind == RouteKind::Local && accept_local);
        if !usable {
            return Err(format!(
                "martian source: the route back to {src} is of type {} ({})",
                r.kind.name(),
                describe(r)
            ));
        }
        let dev_match =
            r.devs.iter().any(|d| d == dev) || (r.kind == RouteKind::Local && dev == "lo");
        if dev_match || rpf != 1 {
            return Ok(());
        }
        Err(format!(
            "rp_filter=1 (strict) on {dev}: the route back to {src} leaves by {}, not {dev} ({})",
            r.dev().unwrap_or("no interface"),
            describe(r)
        ))
    }

    /// The decision for a packet that arrived on `pkt.in_iface` and went
    /// through PREROUTING; `locals` are this host's addresses.
    pub fn input(&self, pkt: &Packet, locals: &[IpAddr]) -> RouteStep {
        let mut all = self.local_addrs();
        all.extend_from_slice(locals);
        let locals = &all[..];
        let dev = pkt.in_iface.as_deref().unwrap_or("");
        let (src, dst) = (pkt.src, pkt.dst);
        let v6 = dst.is_ipv6();
        if dev == "lo" {
            return RouteStep::new(
                Decision::Local,
                None,
                "came in on lo: it keeps the route it was sent with".into(),
            );
        }
        let martian_src =
            |what: &str| RouteStep::drop(None, format!("martian source {src}: {what}"));
        let martian_dst =
            |what: &str| RouteStep::drop(None, format!("martian destination {dst}: {what}"));
        if dst.is_multicast() {
            return self.multicast_input(pkt, dev, locals);
        }
        if !v6 {
            if src.is_multicast() {
                return martian_src("a multicast address");
            }
            if is_lbcast(src) {
                return martian_src("the limited broadcast address");
            }
            if is_lbcast(dst) || (v4_bits(src) == Some(0) && v4_bits(dst) == Some(0)) {
                return self.broadcast_input(src, dev, locals, None);
            }
            if is_zeronet(src) {
                return martian_src(
                    "0.0.0.0/8 is only accepted towards 255.255.255.255 (DHCP discovery)",
                );
            }
            if is_zeronet(dst) {
                return martian_dst("0.0.0.0/8");
            }
            let localnet = self.sysctls.route_localnet(dev);
            if is_loopback(dst) && !localnet {
                return martian_dst(&format!("127.0.0.0/8 arriving on {dev} (route_localnet=0)"));
            }
            if !is_loopback(dst) && is_loopback(src) && !localnet {
                return martian_src(&format!("127.0.0.0/8 arriving on {dev} (route_localnet=0)"));
            }
        }
        let forwarding = self.sysctls.forwarding(v6);
        let fwd_key = if v6 {
            "net.ipv6.conf.all.forwarding"
        } else {
            "net.ipv4.ip_forward"
        };
        // A link-local destination is looked up on the link it came from.
        let bind = (v6 && is_v6_link_local(dst)).then_some(dev);
        let r = match self.lookup_bound(dst, locals, bind) {
            Lookup::AssumedLocal => {
                return self.checked(
                    RouteStep::new(
                        Decision::Local,
                        None,
                        format!("{dst} is an address of this host (no --routes)"),
                    ),
                    src,
                    dev,
                    None,
                    locals,
                );
            }
            Lookup::AssumedUnicast => {
                if !forwarding {
                    return RouteStep::drop(
                        None,
                        format!("{fwd_key}=0: a packet for another host is not forwarded"),
                    );
                }
                let mut s = RouteStep::new(
                    Decision::Forward,
                    None,
                    format!("{dst} is not an address of this host (no --routes): forwarded"),
                );
                s.dev = pkt.out_iface.as_deref().map(str::to_string);
                return self.checked(s, src, dev, pkt.out_iface.as_deref(), locals);
            }
            Lookup::NoRoute => {
                return RouteStep::drop(
                    None,
                    format!("no route to {dst} (ICMP unreachable sent back)"),
                );
            }
            Lookup::Route(r) => r,
        };
        match r.kind {
            RouteKind::Unreachable
            | RouteKind::Prohibit
            | RouteKind::Blackhole
            | RouteKind::Throw => {
                let what = match r.kind {
                    RouteKind::Unreachable => "unreachable route: ICMP host unreachable sent back",
                    RouteKind::Prohibit => {
                        "prohibit route: ICMP administratively prohibited sent back"
                    }
                    RouteKind::Blackhole => "blackhole route: dropped silently",
                    _ => "throw route: no route in the tables read",
                };
                return RouteStep::drop(Some(r), format!("{what} for {dst}"));
            }
            RouteKind::Broadcast if !v6 => {
                return self.broadcast_input(src, dev, locals, Some(r));
            }
            RouteKind::Local | RouteKind::Anycast => {
                let s = RouteStep::new(
                    Decision::Local,
                    Some(r),
                    format!("{dst} is an address of this host"),
                );
                return self.checked(s, src, dev, None, locals);
            }
            _ => {}
        }
        if !forwarding {
            return RouteStep::drop(
                Some(r),
                format!("{fwd_key}=0: a packet for another host is not forwarded"),
            );
        }
        if r.kind != RouteKind::Unicast {
            return RouteStep::drop(
                Some(r),
                format!(
                    "martian destination {dst}: its route is of type {}",
                    r.kind.name()
                ),
            );
        }
        let mut s = RouteStep::new(
            Decision::Forward,
            Some(r),
            match r.via {
                Some(g) => format!("forwarded via {g}"),
                None if bind.is_some() => format!(
                    "{dst} is link-local: looked up on {dev}, the link it came from, and forwarded back onto it (through FORWARD, as Linux does)"
                ),
                None => "forwarded to a directly connected network".into(),
            },
        );
        s.dev = r.dev().map(str::to_string);
        let out = s.dev.clone();
        self.checked(s, src, dev, out.as_deref(), locals)
    }

    /// `step`, unless the source check refuses the packet.
    fn checked(
        &self,
        step: RouteStep,
        src: IpAddr,
        dev: &str,
        out: Option<&str>,
        locals: &[IpAddr],
    ) -> RouteStep {
        match self.validate_source(src, dev, out, locals) {
            Ok(()) => step,
            Err(why) => RouteStep {
                decision: Decision::Drop,
                reason: why,
                dev: None,
                ..step
            },
        }
    }

    fn broadcast_input(
        &self,
        src: IpAddr,
        dev: &str,
        locals: &[IpAddr],
        r: Option<&RouteEntry>,
    ) -> RouteStep {
        let s = RouteStep::new(
            Decision::Local,
            r,
            "a broadcast: delivered to this host, never forwarded".into(),
        );
        if is_zeronet(src) {
            return s;
        }
        self.checked(s, src, dev, None, locals)
    }

    fn multicast_input(&self, pkt: &Packet, dev: &str, locals: &[IpAddr]) -> RouteStep {
        let (src, dst) = (pkt.src, pkt.dst);
        let joined = self.joined.contains(&dst) || always_joined(dst);
        if !joined {
            return RouteStep::drop(
                None,
                format!(
                    "multicast {dst}: this host has not joined the group (--join); \
                     multicast routing is not modelled"
                ),
            );
        }
        let s = RouteStep::new(
            Decision::Local,
            None,
            format!(
                "multicast {dst}: a group this host joined, delivered locally (multicast routing is not modelled)"
            ),
        );
        if dst.is_ipv6() {
            return s;
        }
        if src.is_multicast() || is_lbcast(src) {
            return RouteStep::drop(None, format!("martian source {src} for multicast {dst}"));
        }
        if is_loopback(src) && !self.sysctls.route_localnet(dev) {
            return RouteStep::drop(
                None,
                format!("martian source {src}: 127.0.0.0/8 arriving on {dev} (route_localnet=0)"),
            );
        }
        if is_zeronet(src) {
            if is_local_multicast(dst) || pkt.proto == 2 {
                return s;
            }
            return RouteStep::drop(
                None,
                format!("martian source {src}: 0.0.0.0/8 only towards 224.0.0.0/24 or in IGMP"),
            );
        }
        self.checked(s, src, dev, None, locals)
    }

    /// The route lookup of a packet this host sends, before OUTPUT: the
    /// interface it leaves by, or why the socket gets an error.
    pub fn output(&self, pkt: &Packet, locals: &[IpAddr]) -> RouteStep {
        let mut all = self.local_addrs();
        all.extend_from_slice(locals);
        let locals = &all[..];
        let dst = pkt.dst;
        match self.lookup(dst, locals) {
            Lookup::AssumedLocal => {
                let mut s = RouteStep::new(
                    Decision::Output,
                    None,
                    format!("{dst} is an address of this host: leaves by lo"),
                );
                s.dev = Some("lo".into());
                s
            }
            Lookup::AssumedUnicast => {
                let mut s = RouteStep::new(
                    Decision::Output,
                    None,
                    "no --routes: leaves by the interface given (--out)".into(),
                );
                s.dev = pkt.out_iface.as_deref().map(str::to_string);
                s
            }
            Lookup::NoRoute => RouteStep::drop(
                None,
                format!(
                    "no route to {dst}: the sending socket gets ENETUNREACH, nothing reaches OUTPUT"
                ),
            ),
            Lookup::Route(r) => match r.kind {
                RouteKind::Unreachable
                | RouteKind::Prohibit
                | RouteKind::Blackhole
                | RouteKind::Throw => RouteStep::drop(
                    Some(r),
                    format!(
                        "{} route for {dst}: the sending socket gets an error, nothing reaches OUTPUT",
                        r.kind.name()
                    ),
                ),
                RouteKind::Local | RouteKind::Anycast => {
                    let mut s = RouteStep::new(
                        Decision::Output,
                        Some(r),
                        format!("{dst} is an address of this host: leaves by lo"),
                    );
                    s.dev = Some("lo".into());
                    s
                }
                _ => {
                    let mut s = RouteStep::new(
                        Decision::Output,
                        Some(r),
                        match r.via {
                            Some(g) => format!("sent via {g}"),
                            None => "sent to a directly connected network".into(),
                        },
                    );
                    s.dev = r.dev().map(str::to_string);
                    s
                }
            },
        }
    }

    /// `-m rpfilter` (`xt_rpfilter`, `ip6t_rpfilter`): whether the route
    /// back to the source leaves by the interface the packet came in on
    /// (`--loose`: any unicast route back; `--accept-local`: a local
    /// route counts; `--validmark` only matters with `ip rule fwmark`,
    /// which is not read). Without a route list: `None`.
    pub fn rpfilter(&self, pkt: &Packet, loose: bool, accept_local: bool) -> Option<bool> {
        let table = self.table_for(pkt.src.is_ipv6())?;
        let dev = pkt.in_iface.as_deref().unwrap_or("");
        if dev == "lo" {
            return Some(true);
        }
        let src = pkt.src;
        if src.is_ipv6() {
            if src.is_unspecified() {
                return Some(true);
            }
        } else if is_zeronet(src) && (is_lbcast(pkt.dst) || is_local_multicast(pkt.dst)) {
            return Some(true);
        }
        // IPv6 binds the lookup to the interface (always for a link-local
        // source, and in strict mode): among equal routes, the one out of it.
        let found = if src.is_ipv6() && (!loose || is_v6_link_local(src)) {
            table.lookup_via(src, dev)
        } else {
            table.lookup(src)
        };
        let Some(r) = found else {
            return Some(false);
        };
        let usable = r.kind == RouteKind::Unicast || (r.kind == RouteKind::Local && accept_local);
        if !usable {
            return Some(false);
        }
        Some(loose || r.devs.iter().any(|d| d == dev))
    }
}

enum Lookup<'a> {
    Route(&'a RouteEntry),
    NoRoute,
    AssumedLocal,
    AssumedUnicast,
}

/// Drops an IPv6 packet gets on receipt, before PREROUTING (`ip6_rcv_core`).
pub fn v6_receive_drop(pkt: &Packet) -> Option<String> {
    let IpAddr::V6(_) = pkt.dst else { return None };
    if pkt.in_iface.as_deref() == Some("lo") {
        return None;
    }
    if pkt.src.is_multicast() {
        return Some(format!(
            "IPv6 source {} is multicast: dropped on receipt, before PREROUTING",
            pkt.src
        ));
    }
    if pkt.dst.is_loopback() {
        return Some(
            "IPv6 destination ::1 arriving from outside: dropped on receipt, before PREROUTING"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(text: &str, sysctls: &[&str]) -> Routing {
        let mut s = Sysctls::default();
        for k in sysctls {
            s.set(k).unwrap();
        }
        Routing {
            table: Some(RouteTable::parse("r", text, false).unwrap()),
            sysctls: s,
            joined: vec!["239.1.1.1".parse().unwrap()],
        }
    }

    const ROUTES: &str = "\
10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.1
10.2.0.0/24 dev eth1 proto kernel scope link src 10.2.0.1
192.0.2.0/24 via 10.2.0.2 dev eth1
unreachable 198.51.100.0/24
local 10.1.0.1 dev eth0 table local proto kernel scope host src 10.1.0.1
local 10.2.0.1 dev eth1 table local proto kernel scope host src 10.2.0.1
broadcast 10.1.0.255 dev eth0 table local proto kernel scope link src 10.1.0.1
local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1
";

    fn pkt(src: &str, dst: &str, dev: &str) -> Packet {
        let mut p = Packet::new(17, src.parse().unwrap(), dst.parse().unwrap());
        p.in_iface = Some(dev.into());
        p
    }

    fn decide(r: &Routing, src: &str, dst: &str, dev: &str) -> (Decision, String) {
        let locals = r.local_addrs();
        let s = r.input(&pkt(src, dst, dev), &locals);
        (s.decision, s.reason)
    }

    #[test]
    fn sysctl_keys() {
        let mut s = Sysctls::default();
        s.set("net.ipv4.conf.all.rp_filter=1").unwrap();
        s.set("net/ipv4/conf/eth0/rp_filter=2").unwrap();
        s.set("net.ipv4.ip_forward=0").unwrap();
        assert_eq!((s.rp_filter("eth0"), s.rp_filter("eth1")), (2, 1));
        assert!(!s.forwarding(false) && s.forwarding(true));
        let e = s.set("net.ipv4.conf.all.bogus=1").unwrap_err();
        assert!(
            e.to_string().contains("accepted keys: net.ipv4.ip_forward"),
            "{e}"
        );
        assert!(s.set("net.ipv4.conf.all.rp_filter=3").is_err());
        assert!(s.set("net.ipv4.ip_forward").is_err());
        assert!(s.set("net.ipv4.ip_forward=yes").is_err());
    }

    #[test]
    fn martians() {
        let r = routing(ROUTES, &[]);
        for (src, dst) in [
            ("127.0.0.5", "10.1.0.1"),
            ("224.0.0.9", "10.1.0.1"),
            ("255.255.255.255", "10.1.0.1"),
            ("0.0.0.0", "10.1.0.1"),
            ("10.1.0.9", "127.0.0.1"),
            ("10.1.0.9", "0.1.2.3"),
            ("10.2.0.1", "10.1.0.1"),
        ] {
            let (d, why) = decide(&r, src, dst, "eth0");
            assert_eq!(d, Decision::Drop, "{src} -> {dst}: {why}");
            assert!(why.contains("martian"), "{why}");
        }
        // Linux accepts class E sources (240.0.0.0/4) like any other.
        assert_eq!(
            decide(&r, "240.0.0.1", "10.1.0.1", "eth0").0,
            Decision::Local
        );
        assert_eq!(
            decide(&r, "0.0.0.0", "255.255.255.255", "eth0").0,
            Decision::Local
        );
        let r = routing(ROUTES, &["net.ipv4.conf.eth0.route_localnet=1"]);
        assert_eq!(
            decide(&r, "127.0.0.5", "10.1.0.1", "eth0").0,
            Decision::Local
        );
        let r = routing(ROUTES, &["net.ipv4.conf.all.accept_local=1"]);
        assert_eq!(
            decide(&r, "10.2.0.1", "10.1.0.1", "eth0").0,
            Decision::Local
        );
    }

    #[test]
    fn lookups_and_forwarding() {
        let r = routing(ROUTES, &[]);
        assert_eq!(
            decide(&r, "10.1.0.9", "10.1.0.1", "eth0").0,
            Decision::Local
        );
        assert_eq!(
            decide(&r, "10.1.0.9", "10.1.0.255", "eth0").0,
            Decision::Local
        );
        let s = r.input(&pkt("10.1.0.9", "192.0.2.7", "eth0"), &r.local_addrs());
        assert_eq!(
            (s.decision, s.dev.as_deref()),
            (Decision::Forward, Some("eth1"))
        );
        assert!(s.route.unwrap().contains("(line 3)"));
        assert_eq!(
            decide(&r, "10.1.0.9", "198.51.100.1", "eth0").0,
            Decision::Drop
        );
        assert_eq!(decide(&r, "10.1.0.9", "8.8.8.8", "eth0").0, Decision::Drop);
        let off = routing(ROUTES, &["net.ipv4.ip_forward=0"]);
        let (d, why) = decide(&off, "10.1.0.9", "192.0.2.7", "eth0");
        assert_eq!(d, Decision::Drop);
        assert!(why.contains("ip_forward=0"));
        assert_eq!(
            decide(&off, "10.1.0.9", "10.1.0.1", "eth0").0,
            Decision::Local
        );
    }

    #[test]
    fn reverse_path() {
        let strict = routing(ROUTES, &["net.ipv4.conf.eth0.rp_filter=1"]);
        let (d, why) = decide(&strict, "192.0.2.7", "10.1.0.1", "eth0");
        assert_eq!(d, Decision::Drop);
        assert!(why.contains("strict"), "{why}");
        assert_eq!(
            decide(&strict, "192.0.2.7", "10.2.0.1", "eth1").0,
            Decision::Local
        );
        assert_eq!(
            decide(&strict, "8.8.8.8", "10.1.0.1", "eth0").0,
            Decision::Drop
        );
        let loose = routing(ROUTES, &["net.ipv4.conf.all.rp_filter=2"]);
        assert_eq!(
            decide(&loose, "192.0.2.7", "10.1.0.1", "eth0").0,
            Decision::Local
        );
        assert_eq!(
            decide(&loose, "8.8.8.8", "10.1.0.1", "eth0").0,
            Decision::Drop
        );
        assert_eq!(
            decide(&loose, "198.51.100.4", "10.1.0.1", "eth0").0,
            Decision::Drop
        );
    }

    #[test]
    fn multicast_needs_a_join() {
        let r = routing(ROUTES, &[]);
        assert_eq!(
            decide(&r, "10.1.0.9", "239.1.1.1", "eth0").0,
            Decision::Local
        );
        let (d, why) = decide(&r, "10.1.0.9", "239.2.2.2", "eth0");
        assert_eq!(d, Decision::Drop);
        assert!(why.contains("not joined") && why.contains("not modelled"));
        assert_eq!(
            decide(&r, "10.1.0.9", "224.0.0.1", "eth0").0,
            Decision::Local
        );
    }

    #[test]
    fn rpfilter_match() {
        let r = routing(ROUTES, &[]);
        let p = pkt("192.0.2.7", "10.1.0.1", "eth0");
        assert_eq!(r.rpfilter(&p, false, false), Some(false));
        assert_eq!(r.rpfilter(&p, true, false), Some(true));
        let p = pkt("192.0.2.7", "10.2.0.1", "eth1");
        assert_eq!(r.rpfilter(&p, false, false), Some(true));
        let p = pkt("10.2.0.1", "10.1.0.1", "eth0");
        assert_eq!(r.rpfilter(&p, true, false), Some(false));
        assert_eq!(r.rpfilter(&p, true, true), Some(true));
        assert_eq!(Routing::default().rpfilter(&p, false, false), None);
    }

    #[test]
    fn a_list_without_the_family_is_no_list() {
        let r = routing(ROUTES, &[]);
        let mut p = Packet::new(
            17,
            "2001:db8::2".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        p.in_iface = Some("eth0".into());
        let s = r.input(&p, &["2001:db8::1".parse().unwrap()]);
        assert_eq!(s.decision, Decision::Local, "{}", s.reason);
        assert!(s.reason.contains("no --routes"), "{}", s.reason);
        assert_eq!(r.rpfilter(&p, false, false), None);
    }

    #[test]
    fn output_lookup() {
        let r = routing(ROUTES, &[]);
        let mut p = Packet::new(
            17,
            "10.1.0.1".parse().unwrap(),
            "192.0.2.7".parse().unwrap(),
        );
        assert_eq!(r.output(&p, &[]).dev.as_deref(), Some("eth1"));
        p.dst = "8.8.8.8".parse().unwrap();
        assert_eq!(r.output(&p, &[]).decision, Decision::Drop);
        p.dst = "10.2.0.1".parse().unwrap();
        assert_eq!(r.output(&p, &[]).dev.as_deref(), Some("lo"));
    }

    /// The filter INPUT rules of `rules` that a UDP packet from 10.1.0.2
    /// to `dst`, in on eth0, matched (1-based), traced with [`ROUTES`]
    /// (plus the group 239.1.1.1 held as an address, as `ip addr add
    /// 239.1.1.1/32 dev eth0 autojoin` lists it).
    fn input_hits(rules: &str, dst: &str) -> Vec<usize> {
        input_hits_from(rules, "10.1.0.2", dst)
    }

    fn input_hits_from(rules: &str, src: &str, dst: &str) -> Vec<usize> {
        use crate::parse::{ParseOptions, parse_str};
        let text = format!("*filter\n:INPUT ACCEPT [0:0]\n{rules}COMMIT\n");
        let rs = parse_str(&text, &ParseOptions::strict("t"))
            .unwrap()
            .ruleset;
        let routes = format!(
            "{ROUTES}local 239.1.1.1 dev eth0 table local proto kernel scope host src 239.1.1.1\n"
        );
        let mut r = routing(&routes, &[]);
        r.table = Some(RouteTable::parse("r", &routes, false).unwrap());
        let opts = super::super::TraceOptions {
            local: r.local_addrs(),
            routing: Some(std::sync::Arc::new(r)),
            ..Default::default()
        };
        let t = super::super::Tracer::new(&rs).trace(&pkt(src, dst, "eth0"), &opts);
        t.steps
            .iter()
            .filter(|s| s.matched)
            .filter_map(|s| s.rule.map(|i| i + 1))
            .collect()
    }

    const ADDRTYPE: &str = "\
-A INPUT -m addrtype --dst-type LOCAL
-A INPUT -m addrtype --dst-type MULTICAST
-A INPUT -m addrtype --dst-type BROADCAST
-A INPUT -m addrtype --dst-type UNICAST
-A INPUT -m pkttype --pkt-type broadcast
-A INPUT -m pkttype --pkt-type multicast
-A INPUT -m pkttype --pkt-type unicast
";

    #[test]
    fn addrtype_of_a_joined_group_held_as_an_address_is_multicast_not_local() {
        // Measured in tests/kernel_route.rs (docker's `--dst-type LOCAL`
        // in nat PREROUTING, ufw's `ufw-not-local`): the kernel says
        // MULTICAST; the trace said LOCAL because the group is a `local`
        // route of this host.
        assert_eq!(input_hits(ADDRTYPE, "239.1.1.1"), vec![2, 6]);
    }

    #[test]
    fn addrtype_of_a_subnet_broadcast_comes_from_the_local_table() {
        // Measured in tests/kernel_route.rs (shorewall's Broadcast chain,
        // ufw-not-local): 10.1.0.255 is BROADCAST; the trace said UNICAST.
        assert_eq!(input_hits(ADDRTYPE, "10.1.0.255"), vec![3, 5]);
        // The host's own address is unchanged.
        assert_eq!(input_hits(ADDRTYPE, "10.1.0.1"), vec![1, 7]);
    }

    #[test]
    fn addrtype_of_ipv4_0_0_0_0_is_broadcast_not_unspec() {
        // Measured in tests/kernel_route.rs: DHCP discovery from 0.0.0.0
        // matched `--src-type BROADCAST` in the kernel, `--src-type
        // UNSPEC` in the trace.
        let rules = "\
-A INPUT -m addrtype --src-type UNSPEC
-A INPUT -m addrtype --src-type BROADCAST
-A INPUT -m pkttype --pkt-type broadcast
";
        assert_eq!(
            input_hits_from(rules, "0.0.0.0", "255.255.255.255"),
            vec![2, 3]
        );
    }

    #[test]
    fn ipv6_addrtype_of_an_own_address_is_local_and_unicast() {
        // Measured in tests/kernel_route.rs: for IPv6 the kernel tests
        // flags (this host's unicast address matches LOCAL and UNICAST);
        // the trace gave one type.
        use crate::parse::{ParseOptions, parse_str};
        let text = "*filter\n:INPUT ACCEPT [0:0]\n\
-A INPUT -m addrtype --dst-type LOCAL\n\
-A INPUT -m addrtype --dst-type UNICAST\n\
-A INPUT -m addrtype --dst-type MULTICAST\n\
-A INPUT -m addrtype --src-type UNSPEC\n\
-A INPUT -m addrtype --src-type UNICAST\n\
COMMIT\n";
        let rs = parse_str(text, &ParseOptions::strict("t")).unwrap().ruleset;
        let opts = super::super::TraceOptions {
            local: vec!["2001:db8:1::1".parse().unwrap()],
            ..Default::default()
        };
        let hits = |src: &str| -> Vec<usize> {
            super::super::Tracer::new(&rs)
                .trace(&pkt(src, "2001:db8:1::1", "eth0"), &opts)
                .steps
                .iter()
                .filter(|s| s.matched)
                .filter_map(|s| s.rule.map(|i| i + 1))
                .collect()
        };
        assert_eq!(hits("2001:db8:1::2"), vec![1, 2, 5]);
        assert_eq!(hits("::"), vec![1, 2, 4]);
    }
}
