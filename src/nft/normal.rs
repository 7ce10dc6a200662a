//! A normalised form of the nft model, for comparing what two inputs say
//! (text against JSON, a ruleset against its re-emitted text) without
//! where or how they said it.
//!
//! Dropped or unified: source lines, columns, display text and kernel
//! handles; how a priority was written (its number stays); anonymous chain
//! names; `==` against an implicit match; hexadecimal against decimal
//! numbers; one-element anonymous sets against the element; the order of
//! set and map elements (nft orders interface sets by index); set `typeof`
//! against the data types it stands for; set options other than type,
//! flags, elements and comment; stateful object bodies; table and chain
//! comments and a base chain's devices (nft 1.0.6 leaves them out of its
//! JSON); the reject type a bare `reject` stands for (`X port-unreachable`).

use super::model::*;

/// The normalised copy of a ruleset.
pub fn normalised(rs: &NftRuleset) -> NftRuleset {
    let mut rs = rs.clone();
    rs.defines.clear();
    rs.includes.clear();
    rs.flush_ruleset = false;
    for t in &mut rs.tables {
        t.line = 0;
        t.comment = None;
        t.handle = None;
        t.flushed = false;
        for o in &mut t.objects {
            o.line = 0;
            o.body.clear();
        }
        for f in &mut t.flowtables {
            f.line = 0;
            f.priority.written = f.priority.value.to_string();
        }
        for s in &mut t.sets {
            s.line = 0;
            s.other.clear();
            // nft 1.0.6 JSON leaves `dynamic` out.
            s.flags.retain(|f| f != "dynamic");
            s.flags.sort();
            if s.key_typeof {
                s.key_typeof = false;
                s.key_type = s.key_type.iter().map(|k| typeof_type(k).into()).collect();
                s.data_type = s.data_type.iter().map(|k| typeof_type(k).into()).collect();
            }
            for e in &mut s.elements {
                expr(e);
            }
            s.elements.sort_by_cached_key(|x| x.to_string());
        }
        for c in &mut t.chains {
            chain(c);
        }
    }
    rs
}

/// The data type a `typeof` expression stands for, as nft names it.
fn typeof_type(e: &str) -> &str {
    match e {
        "ip saddr" | "ip daddr" | "ct original ip saddr" | "ct original ip daddr" => "ipv4_addr",
        "ip6 saddr" | "ip6 daddr" => "ipv6_addr",
        "tcp dport" | "tcp sport" | "udp dport" | "udp sport" | "th dport" | "th sport" => {
            "inet_service"
        }
        "meta l4proto" | "ip protocol" | "ip6 nexthdr" => "inet_proto",
        "iifname" | "oifname" => "ifname",
        "iif" | "oif" => "iface_index",
        "meta mark" | "ct mark" => "mark",
        "ether saddr" | "ether daddr" => "ether_addr",
        "meta nfproto" => "nf_proto",
        "ct state" => "ct_state",
        "ct helper" => "ct_helper",
        other if other.starts_with("numgen") || other.starts_with("jhash") => "integer",
        other => other,
    }
}

fn chain(c: &mut Chain) {
    c.line = 0;
    c.handle = None;
    c.comment = None;
    if c.name.starts_with("{anon") {
        c.name = "{anon}".into();
    }
    if let Some(b) = &mut c.base {
        b.priority.written = b.priority.value.to_string();
        b.devices.clear();
    }
    for r in &mut c.rules {
        r.line = 0;
        r.col = 0;
        r.text.clear();
        r.handle = None;
        for s in &mut r.stmts {
            stmt(s);
        }
    }
}

fn stmt(s: &mut Stmt) {
    match s {
        Stmt::Match(m) => {
            if m.op == RelOp::Eq {
                m.op = RelOp::Implicit;
            }
            expr(&mut m.left);
            expr(&mut m.right);
        }
        Stmt::Verdict(v) => verdict(v),
        Stmt::Vmap { key, map } => {
            expr(key);
            expr(map);
        }
        Stmt::Nat(n) => {
            for e in [&mut n.addr, &mut n.port].into_iter().flatten() {
                expr(e);
            }
        }
        Stmt::Mangle { key, value } => {
            expr(key);
            expr(value);
        }
        Stmt::Other(t) => *t = t.replace('"', ""),
        Stmt::Reject { with }
            if with.as_deref().is_some_and(|w| {
                matches!(
                    w,
                    "icmp port-unreachable" | "icmpv6 port-unreachable" | "icmpx port-unreachable"
                )
            }) =>
        {
            *with = None;
        }
        _ => {}
    }
}

fn verdict(v: &mut Verdict) {
    if let Verdict::JumpAnon(c) | Verdict::GotoAnon(c) = v {
        chain(c);
    }
}

fn expr(e: &mut Expr) {
    match e {
        Expr::Value(v) => {
            if let Some(h) = v.strip_prefix("0x")
                && let Ok(n) = u64::from_str_radix(h, 16)
            {
                *v = n.to_string().into();
            }
        }
        Expr::Range(a, b) => {
            expr(a);
            expr(b);
        }
        Expr::MapElem(kv) => {
            expr(&mut kv.0);
            expr(&mut kv.1);
        }
        Expr::Set(v) | Expr::List(v) if v.len() == 1 => {
            let mut one = v.pop().unwrap_or(Expr::Other(String::new()));
            expr(&mut one);
            *e = one;
        }
        Expr::Set(v) | Expr::Map(v) => {
            v.iter_mut().for_each(expr);
            v.sort_by_cached_key(|x| x.to_string());
        }
        Expr::List(v) | Expr::Concat(v) => v.iter_mut().for_each(expr),
        Expr::Lookup { key, map } => {
            expr(key);
            expr(map);
        }
        Expr::Binop { left, right, .. } => {
            expr(left);
            expr(right);
        }
        Expr::Verdict(v) => verdict(v),
        Expr::Elem { value, .. } => expr(value),
        _ => {}
    }
}
