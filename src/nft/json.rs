//! `nft -j list ruleset` JSON into an [`NftRuleset`].
//!
//! Tolerant of what nft really prints: a statement that is a bare string
//! (nft 1.0.6 prints an anonymous chain `jump { ... }` that way) is read
//! with the text parser; an item or expression this reader does not know
//! is kept as [`Stmt::Other`] / [`Expr::Other`] with its JSON, or reported,
//! and the rest is still read.
//!
//! The document is read into [`J`], a JSON tree whose strings borrow from
//! the input and whose objects are short lists of entries, rather than
//! `serde_json::Value` (a string and a sorted map allocated for every
//! key): nft prints tens of bytes of JSON per expression, and the reader
//! spent most of its time building and dropping those maps.

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashMap as HashMap;
use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;

use crate::model::Str;
use crate::parse::{Problem, Severity};

use super::model::*;

/// True when the text looks like `nft -j` output.
pub fn looks_like_nft_json(text: &str) -> bool {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with('{') && t[..t.len().min(200)].contains("\"nftables\"")
}

fn problem(message: String) -> Problem {
    Problem {
        line: 1,
        column: 1,
        severity: Severity::Error,
        message,
        source: String::new(),
    }
}

/// Reads `nft -j list ruleset` output.
///
/// Each item of the `nftables` array is read into the model as soon as the
/// JSON reader has it, and dropped: the document is never held whole.
pub fn parse_json(text: &str) -> (NftRuleset, Vec<Problem>) {
    let mut r = Reader::default();
    let mut de = serde_json::Deserializer::from_str(text);
    if let Err(e) = Doc(&mut r).deserialize(&mut de).and_then(|()| de.end()) {
        let line = e.line().max(1);
        let src = text.lines().nth(line - 1).unwrap_or("");
        let p = Problem {
            line: line as u32,
            column: e.column().max(1) as u32,
            severity: Severity::Error,
            message: format!("not valid JSON: {e}"),
            source: src.chars().take(300).collect(),
        };
        return (NftRuleset::default(), vec![p]);
    }
    if !r.found {
        let p = problem(
            "expected an object with an \"nftables\" array (the output of `nft -j list ruleset`)"
                .into(),
        );
        return (NftRuleset::default(), vec![p]);
    }
    (r.rs, r.problems)
}

/// The model being read and what the reader keeps between items.
#[derive(Default)]
struct Reader {
    rs: NftRuleset,
    problems: Vec<Problem>,
    cx: Ctx,
    /// Whether the document had an `nftables` array.
    found: bool,
}

impl Reader {
    /// Reads the `i`-th item of the `nftables` array.
    fn item(&mut self, i: usize, item: &J<'_>) {
        if item.as_object().is_none() {
            self.problems
                .push(problem(format!("nftables[{i}]: expected an object")));
            return;
        }
        for (kind, body) in item.entries() {
            if let Err(msg) = read_item(&mut self.rs, kind, body, &mut self.cx) {
                self.problems
                    .push(problem(format!("nftables[{i}] ({kind}): {msg}")));
            }
        }
    }
}

/// The top of the document: an object whose `nftables` array is read item
/// by item; anything else is passed over (and `found` stays false).
struct Doc<'r>(&'r mut Reader);

/// The `nftables` array.
struct Items<'r>(&'r mut Reader);

impl<'de> DeserializeSeed<'de> for Doc<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

/// The visitor methods of a value that is passed over.
macro_rules! pass_over {
    () => {
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }

        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }

        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }

        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }

        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
    };
}

impl<'de> Visitor<'de> for Doc<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with an \"nftables\" array")
    }

    pass_over!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key::<J<'de>>()? {
            if k.as_str() == Some("nftables") {
                // Of a key written twice the last counts.
                *self.0 = Reader::default();
                map.next_value_seed(Items(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the \"nftables\" array")
    }

    pass_over!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.found = true;
        let mut i = 0;
        while let Some(item) = seq.next_element::<J<'de>>()? {
            self.0.item(i, &item);
            i += 1;
        }
        Ok(())
    }
}

fn s<'a>(o: &'a J<'_>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(J::as_str)
}

fn table_of<'a>(rs: &'a mut NftRuleset, o: &J<'_>) -> Result<&'a mut Table, String> {
    let i = table_pos(rs, o)?;
    Ok(&mut rs.tables[i])
}

fn table_pos(rs: &mut NftRuleset, o: &J<'_>) -> Result<usize, String> {
    let fam = s(o, "family").ok_or("no family")?;
    let fam = Family::from_name(fam).ok_or_else(|| format!("unknown family {fam}"))?;
    let name = s(o, "table").ok_or("no table")?;
    let i = match rs
        .tables
        .iter()
        .position(|t| t.family == fam && t.name == name)
    {
        Some(i) => i,
        None => {
            rs.tables.push(Table::new(fam, name, 0));
            rs.tables.len() - 1
        }
    };
    Ok(i)
}

fn strings(v: Option<&J<'_>>) -> Vec<Str> {
    match v {
        Some(J::Str(x)) => vec![Str::from(&**x)],
        Some(J::Arr(a)) => a.iter().filter_map(J::as_str).map(Str::from).collect(),
        _ => Vec::new(),
    }
}

/// A type given as `"a"`, `["a", "b"]` or `"a . b"`.
fn type_parts(v: Option<&J<'_>>) -> Vec<Str> {
    strings(v)
        .iter()
        .flat_map(|x| x.split(" . ").map(Str::from).collect::<Vec<_>>())
        .collect()
}

/// What the reader keeps between items.
#[derive(Default)]
struct Ctx {
    /// Anonymous chains named so far.
    anon: usize,
    /// `(table index, chain name)` -> chain index.
    index: HashMap<(usize, Str), usize>,
    /// The table and chain the previous rule went to.
    last: (usize, usize),
}

fn read_item(rs: &mut NftRuleset, kind: &str, body: &J<'_>, cx: &mut Ctx) -> Result<(), String> {
    let anon = &mut cx.anon;
    let o = body.as_object();
    match kind {
        "metainfo" => Ok(()),
        "table" => {
            let o = o.ok_or("expected an object")?;
            let fam = s(o, "family").ok_or("no family")?;
            let fam = Family::from_name(fam).ok_or_else(|| format!("unknown family {fam}"))?;
            let name = s(o, "name").ok_or("no name")?;
            let mut t = Table::new(fam, name, 0);
            t.handle = o.get("handle").and_then(J::as_u64);
            t.flags = strings(o.get("flags"));
            t.comment = s(o, "comment").map(String::from);
            if !rs.tables.iter().any(|x| x.family == fam && x.name == name) {
                rs.tables.push(t);
            }
            Ok(())
        }
        "chain" => {
            let o = o.ok_or("expected an object")?;
            let name = s(o, "name").ok_or("no name")?;
            let fam = table_of(rs, o)?.family;
            let mut c = Chain::new(name, 0);
            c.handle = o.get("handle").and_then(J::as_u64);
            c.comment = s(o, "comment").map(String::from);
            if let (Some(ty), Some(hook)) = (s(o, "type"), s(o, "hook")) {
                let prio = o.get("prio").and_then(J::as_i64).unwrap_or(0) as i32;
                c.base = Some(Box::new(BaseChain {
                    kind: ChainType::from_name(ty),
                    hook: Hook::from_name(hook),
                    priority: Priority::number(prio),
                    policy: match s(o, "policy") {
                        Some("drop") => Some(Policy::Drop),
                        Some("accept") => Some(Policy::Accept),
                        _ => None,
                    },
                    devices: strings(o.get("dev")),
                }));
            }
            let _ = fam;
            // nft lists each chain once, before its rules.
            let ti = table_pos(rs, o)?;
            let t = &mut rs.tables[ti];
            cx.index.insert((ti, c.name.clone()), t.chains.len());
            t.chains.push(c);
            Ok(())
        }
        "rule" => {
            let o = o.ok_or("expected an object")?;
            let chain = s(o, "chain").ok_or("no chain")?;
            let fam = table_of(rs, o)?.family;
            let exprs = o.get("expr").and_then(J::as_array).ok_or("no expr array")?;
            let mut rule = Rule {
                handle: o.get("handle").and_then(J::as_u64),
                comment: s(o, "comment").map(Str::from),
                ..Default::default()
            };
            for e in exprs {
                read_stmt(e, fam, &mut rule, anon);
            }
            rule.text = display_text(&mut rule);
            let ti = table_pos(rs, o)?;
            let t = &mut rs.tables[ti];
            // nft lists a chain's rules together: the chain of the rule
            // before is the usual one, else the index finds it.
            let ci = match cx.last {
                (lt, lc) if lt == ti && t.chains.get(lc).is_some_and(|c| c.name == chain) => lc,
                _ => match cx.index.get(&(ti, Str::from(chain))) {
                    Some(&i) if t.chains.get(i).is_some_and(|c| c.name == chain) => i,
                    _ => match t.chains.iter().position(|c| c.name == chain) {
                        Some(i) => i,
                        None => {
                            t.chains.push(Chain::new(chain, 0));
                            let i = t.chains.len() - 1;
                            cx.index.insert((ti, Str::from(chain)), i);
                            i
                        }
                    },
                },
            };
            cx.last = (ti, ci);
            t.chains[ci].rules.push(rule);
            Ok(())
        }
        "set" | "map" => {
            let o = o.ok_or("expected an object")?;
            let name = s(o, "name").ok_or("no name")?;
            let mut set = Set {
                name: name.into(),
                is_map: kind == "map",
                key_type: type_parts(o.get("type")),
                data_type: type_parts(o.get("map")),
                flags: strings(o.get("flags")),
                comment: s(o, "comment").map(String::from),
                ..Default::default()
            };
            if let Some(elems) = o.get("elem").and_then(J::as_array) {
                for e in elems {
                    set.elements.push(match e {
                        J::Arr(kv) if kv.len() == 2 && set.is_map => {
                            Expr::MapElem(Box::new((expr(&kv[0]), map_value(&kv[1]))))
                        }
                        other => expr(other),
                    });
                }
            }
            for k in ["timeout", "gc-interval", "size", "policy"] {
                if let Some(v) = o.get(k) {
                    set.other.push(match v {
                        J::Str(x) => format!("{k} {x}"),
                        J::Num(n) if k == "timeout" || k == "gc-interval" => {
                            format!("{k} {n}s")
                        }
                        v => format!("{k} {v}"),
                    });
                }
            }
            if o.get("auto-merge").and_then(J::as_bool) == Some(true) {
                set.other.push("auto-merge".into());
            }
            table_of(rs, o)?.sets.push(set);
            Ok(())
        }
        "flowtable" => {
            let o = o.ok_or("expected an object")?;
            let ft = Flowtable {
                name: s(o, "name").ok_or("no name")?.into(),
                line: 0,
                hook: Hook::from_name(s(o, "hook").unwrap_or("ingress")),
                priority: Priority::number(o.get("prio").and_then(J::as_i64).unwrap_or(0) as i32),
                devices: strings(o.get("dev")),
            };
            table_of(rs, o)?.flowtables.push(ft);
            Ok(())
        }
        "counter" | "quota" | "ct helper" | "ct timeout" | "ct expectation" | "limit"
        | "secmark" | "synproxy" => {
            let o = o.ok_or("expected an object")?;
            let name = s(o, "name").ok_or("no name")?;
            let J::Obj(entries) = o else {
                return Err("expected an object".into());
            };
            let body: Vec<_> = entries
                .iter()
                .filter(|(k, _)| !matches!(&**k, "family" | "name" | "table" | "handle"))
                .cloned()
                .collect();
            let obj = Object {
                kind: kind.into(),
                name: name.into(),
                line: 0,
                body: J::Obj(body).to_string(),
            };
            table_of(rs, o)?.objects.push(obj);
            Ok(())
        }
        other => Err(format!("unknown item `{other}`, skipped")),
    }
}

/// The text shown for a rule read from JSON: the model printed as nft text.
fn display_text(rule: &mut Rule) -> String {
    let comment = rule.comment.take();
    let text = rule.to_string();
    rule.comment = comment;
    text
}

fn read_stmt(e: &J<'_>, fam: Family, rule: &mut Rule, anon: &mut usize) {
    if let J::Str(text) = e {
        // nft prints some statements (anonymous chains) as their text.
        let wrapped = format!("table {fam} t {{\nchain c {{\n{text}\n}}\n}}\n");
        let (parsed, problems) = super::parse::parse_text(&wrapped);
        let got = parsed
            .tables
            .into_iter()
            .next()
            .and_then(|t| t.chains.into_iter().next())
            .and_then(|c| c.rules.into_iter().next());
        match got {
            Some(r) if problems.is_empty() => {
                for mut s in r.stmts {
                    if let Stmt::Verdict(Verdict::JumpAnon(c) | Verdict::GotoAnon(c)) = &mut s {
                        *anon += 1;
                        c.name = format!("{{anon {}}}", *anon).into();
                    }
                    rule.stmts.push(s);
                }
            }
            _ => rule.stmts.push(Stmt::Other(
                text.split_whitespace().collect::<Vec<_>>().join(" "),
            )),
        }
        return;
    }
    rule.stmts.push(stmt(e));
}

fn stmt(e: &J<'_>) -> Stmt {
    let Some((k, v)) = e.first() else {
        return Stmt::Other(e.to_string());
    };
    let o = v.as_object();
    let field = |name: &str| o.and_then(|o| o.get(name));
    match k {
        "match" => Stmt::Match(Match {
            left: field("left").map_or(Expr::Other(String::new()), expr),
            op: match field("op").and_then(J::as_str).unwrap_or("==") {
                "!=" => RelOp::Ne,
                "<" => RelOp::Lt,
                ">" => RelOp::Gt,
                "<=" => RelOp::Le,
                ">=" => RelOp::Ge,
                "in" => RelOp::Implicit,
                _ => RelOp::Eq,
            },
            right: field("right").map_or(Expr::Other(String::new()), expr),
        }),
        "accept" | "drop" | "continue" | "return" | "jump" | "goto" => match verdict(k, v) {
            Some(x) => Stmt::Verdict(x),
            None => Stmt::Other(e.to_string()),
        },
        "queue" => {
            let mut args = Vec::new();
            if let Some(n) = field("num") {
                args.push(format!("num {}", plain(n)));
            }
            let flags = strings(field("flags"));
            if !flags.is_empty() {
                args.push(format!("flags {}", flags.join(",")));
            }
            Stmt::Verdict(Verdict::Queue(args.join(" ")))
        }
        "vmap" => Stmt::Vmap {
            key: field("key").map_or(Expr::Other(String::new()), expr),
            map: field("data").map_or(Expr::Other(String::new()), map_data),
        },
        "counter" => match v {
            J::Str(name) => Stmt::Counter {
                packets: None,
                bytes: None,
                name: Some(Str::from(&**name)),
            },
            _ => Stmt::Counter {
                packets: field("packets").and_then(J::as_u64),
                bytes: field("bytes").and_then(J::as_u64),
                name: None,
            },
        },
        "log" => {
            let mut other = Vec::new();
            for f in strings(field("flags")) {
                other.push(format!("flags {f}"));
            }
            for k in ["snaplen", "queue-threshold"] {
                if let Some(n) = field(k) {
                    other.push(format!("{k} {}", plain(n)));
                }
            }
            Stmt::Log(Box::new(Log {
                prefix: field("prefix").and_then(J::as_str).map(String::from),
                level: field("level").and_then(J::as_str).map(Str::from),
                group: field("group").and_then(J::as_u64).map(|g| g as u32),
                other,
            }))
        }
        "reject" => {
            let ty = field("type").and_then(J::as_str);
            let ex = field("expr").map(plain);
            Stmt::Reject {
                with: match (ty, ex) {
                    (Some(t), Some(x)) => Some(format!("{t} {x}")),
                    (Some(t), None) => Some(t.to_string()),
                    (None, Some(x)) => Some(format!("icmpx {x}")),
                    (None, None) => None,
                },
            }
        }
        "limit" => {
            let rate = field("rate").map(plain).unwrap_or_default();
            let per = field("per").and_then(J::as_str).unwrap_or("second");
            let mut t = String::from("rate ");
            if field("inv").and_then(J::as_bool) == Some(true) {
                t.push_str("over ");
            }
            t.push_str(&rate);
            if let Some(u) = field("rate_unit").and_then(J::as_str)
                && u != "packets"
            {
                t.push_str(&format!(" {u}"));
            }
            t.push_str(&format!("/{per}"));
            if let Some(b) = field("burst").and_then(J::as_u64)
                && b > 0
            {
                let unit = field("burst_unit").and_then(J::as_str).unwrap_or("packets");
                t.push_str(&format!(" burst {b} {unit}"));
            }
            Stmt::Limit { text: t }
        }
        "dnat" | "snat" | "masquerade" | "redirect" => {
            let kind = match k {
                "dnat" => NatKind::Dnat,
                "snat" => NatKind::Snat,
                "masquerade" => NatKind::Masquerade,
                _ => NatKind::Redirect,
            };
            Stmt::Nat(Box::new(Nat {
                kind,
                family: field("family")
                    .and_then(J::as_str)
                    .and_then(Family::from_name),
                addr: field("addr").map(expr),
                port: field("port").map(expr),
                flags: strings(field("flags")),
                other: strings(field("type_flags")).first().map(|x| x.to_string()),
            }))
        }
        "mangle" => Stmt::Mangle {
            key: field("key").map_or(Expr::Other(String::new()), expr),
            value: field("value").map_or(Expr::Other(String::new()), expr),
        },
        "notrack" => Stmt::Notrack,
        "xt" => {
            let ty = field("type").and_then(J::as_str).unwrap_or("?");
            let name = field("name").and_then(J::as_str).unwrap_or("?");
            Stmt::Other(format!("xt {ty} {name}"))
        }
        "set" => {
            let op = field("op").and_then(J::as_str).unwrap_or("add");
            let set = field("set").and_then(J::as_str).unwrap_or("@?");
            let el = field("elem")
                .map(expr)
                .map(|x| x.to_string())
                .unwrap_or_default();
            Stmt::Other(format!("{op} {set} {{ {el} }}"))
        }
        _ => Stmt::Other(e.to_string()),
    }
}

/// A number or string as its plain text.
fn plain(v: &J<'_>) -> String {
    match v {
        J::Str(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn verdict(k: &str, v: &J<'_>) -> Option<Verdict> {
    let target = || v.get("target").and_then(J::as_str).map(Str::from);
    Some(match k {
        "accept" => Verdict::Accept,
        "drop" => Verdict::Drop,
        "continue" => Verdict::Continue,
        "return" => Verdict::Return,
        "jump" => Verdict::Jump(target()?),
        "goto" => Verdict::Goto(target()?),
        _ => return None,
    })
}

/// A map value: a verdict object or an expression.
fn map_value(v: &J<'_>) -> Expr {
    if let Some((k, body)) = v.first()
        && let Some(x) = verdict(k, body)
    {
        return Expr::Verdict(Box::new(x));
    }
    expr(v)
}

/// The `data` of a vmap or map lookup: `"@name"` or `{"set": [[k, v], ...]}`.
fn map_data(v: &J<'_>) -> Expr {
    match v {
        J::Str(s) if s.starts_with('@') => Expr::SetRef(s[1..].into()),
        J::Obj(_) if v.get("set").is_some() => {
            let elems = match v.get("set") {
                Some(J::Arr(a)) => a.iter().map(map_elem).collect(),
                Some(one) => vec![map_elem(one)],
                None => Vec::new(),
            };
            Expr::Map(elems)
        }
        other => expr(other),
    }
}

fn map_elem(v: &J<'_>) -> Expr {
    match v {
        J::Arr(kv) if kv.len() == 2 => Expr::MapElem(Box::new((expr(&kv[0]), map_value(&kv[1])))),
        other => expr(other),
    }
}

/// An expression.
fn expr(v: &J<'_>) -> Expr {
    match v {
        J::Str(s) => match s.strip_prefix('@') {
            Some(name) => Expr::SetRef(name.into()),
            None => Expr::Value(Str::from(&**s)),
        },
        J::Num(n) => Expr::Value(Str::from(n.to_string())),
        // nft prints `exists`/`missing` (fib, exthdr) as booleans.
        J::Bool(b) => Expr::Value(if *b { "exists" } else { "missing" }.into()),
        J::Arr(a) => Expr::List(a.iter().map(expr).collect()),
        J::Null => Expr::Other("null".into()),
        J::Obj(_) => {
            let Some((k, b)) = v.first() else {
                return Expr::Other(v.to_string());
            };
            let f = |name: &str| b.get(name);
            let fs = |name: &str| f(name).and_then(J::as_str).unwrap_or_default();
            match k {
                "payload" => match (f("protocol"), f("field")) {
                    (Some(p), Some(x)) => Expr::Payload(Payload::new(
                        p.as_str().unwrap_or_default(),
                        x.as_str().unwrap_or_default(),
                    )),
                    _ => Expr::Other(format!(
                        "@{},{},{}",
                        fs("base"),
                        f("offset").map(plain).unwrap_or_default(),
                        f("len").map(plain).unwrap_or_default()
                    )),
                },
                "exthdr" => Expr::Payload(Payload::new(fs("name"), fs("field"))),
                "tcp option" | "ip option" => {
                    let mut t = format!("{k} {}", fs("name"));
                    if let Some(x) = f("field").and_then(J::as_str) {
                        t.push(' ');
                        t.push_str(x);
                    }
                    Expr::Other(t)
                }
                "rt" => Expr::Other(format!("rt {}", fs("key"))),
                "meta" => Expr::Meta(fs("key").into()),
                "ct" => Expr::Ct {
                    key: fs("key").into(),
                    dir: match f("dir").and_then(J::as_str) {
                        Some("original") => Some(CtDir::Original),
                        Some("reply") => Some(CtDir::Reply),
                        _ => None,
                    },
                    family: f("family").and_then(J::as_str).and_then(Family::from_name),
                },
                "fib" => Expr::Fib(Box::new(Fib {
                    flags: strings(f("flags")),
                    result: fs("result").into(),
                })),
                "prefix" => Expr::Prefix {
                    addr: f("addr").map(plain).unwrap_or_default().into(),
                    len: f("len").and_then(J::as_u64).unwrap_or(0) as u8,
                },
                "range" => match b.as_array() {
                    Some(a) if a.len() == 2 => {
                        Expr::Range(Box::new(expr(&a[0])), Box::new(expr(&a[1])))
                    }
                    _ => Expr::Other(v.to_string()),
                },
                "set" => match b {
                    J::Arr(a) => {
                        let elems: Vec<Expr> = a.iter().map(map_elem).collect();
                        if elems.iter().any(|e| matches!(e, Expr::MapElem(..))) {
                            Expr::Map(elems)
                        } else {
                            Expr::Set(elems)
                        }
                    }
                    one => Expr::Set(vec![expr(one)]),
                },
                "concat" => Expr::Concat(
                    b.as_array()
                        .map_or(Vec::new(), |a| a.iter().map(expr).collect()),
                ),
                "map" => Expr::Lookup {
                    key: Box::new(f("key").map_or(Expr::Other(String::new()), expr)),
                    map: Box::new(f("data").map_or(Expr::Other(String::new()), map_data)),
                },
                "&" | "|" | "^" | "<<" | ">>" => match (b.as_array(), BinOp::from_symbol(k)) {
                    (Some(a), Some(op)) if a.len() == 2 => Expr::Binop {
                        op,
                        left: Box::new(expr(&a[0])),
                        right: Box::new(expr(&a[1])),
                    },
                    _ => Expr::Other(v.to_string()),
                },
                "numgen" => {
                    let mut t = format!("numgen {}", fs("mode"));
                    if let Some(m) = f("mod") {
                        t.push_str(&format!(" mod {}", plain(m)));
                    }
                    if let Some(o) = f("offset").map(plain)
                        && o != "0"
                    {
                        t.push_str(&format!(" offset {o}"));
                    }
                    Expr::Hash(t)
                }
                "jhash" | "symhash" => {
                    let mut t = k.to_string();
                    if let Some(e) = f("expr") {
                        t.push_str(&format!(" {}", expr(e)));
                    }
                    if let Some(m) = f("mod") {
                        t.push_str(&format!(" mod {}", plain(m)));
                    }
                    if let Some(s) = f("seed") {
                        t.push_str(&format!(" seed {}", plain(s)));
                    }
                    Expr::Hash(t)
                }
                "elem" => {
                    let value = f("val").map_or(Expr::Other(String::new()), expr);
                    let mut opts = Vec::new();
                    for k in ["timeout", "expires"] {
                        if let Some(n) = f(k) {
                            opts.push(format!("{k} {}s", plain(n)));
                        }
                    }
                    if let Some(c) = f("comment").and_then(J::as_str) {
                        opts.push(format!("comment \"{c}\""));
                    }
                    if opts.is_empty() {
                        value
                    } else {
                        Expr::Elem {
                            value: Box::new(value),
                            options: opts.join(" ").into(),
                        }
                    }
                }
                "accept" | "drop" | "continue" | "return" | "jump" | "goto" => {
                    match verdict(k, b) {
                        Some(x) => Expr::Verdict(Box::new(x)),
                        None => Expr::Other(v.to_string()),
                    }
                }
                _ => Expr::Other(v.to_string()),
            }
        }
    }
}

/// A JSON value as this reader needs it: strings borrowed from the input
/// (owned only when they hold escapes), numbers as serde_json keeps them,
/// objects as their entries in the order written.
///
/// Read like a `serde_json::Value` without `preserve_order`: a key given
/// twice means its last value, an object's entries are visited in key
/// order, and it is printed back the same way.
#[derive(Debug, Clone)]
enum J<'a> {
    Null,
    Bool(bool),
    Num(Number),
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    Obj(Vec<(Cow<'a, str>, J<'a>)>),
}

impl<'a> J<'a> {
    fn as_str(&self) -> Option<&str> {
        match self {
            J::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            J::Num(n) => n.as_u64(),
            _ => None,
        }
    }

    fn as_i64(&self) -> Option<i64> {
        match self {
            J::Num(n) => n.as_i64(),
            _ => None,
        }
    }

    fn as_bool(&self) -> Option<bool> {
        match self {
            J::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&[J<'a>]> {
        match self {
            J::Arr(a) => Some(a),
            _ => None,
        }
    }

    /// Itself when it is an object.
    fn as_object(&self) -> Option<&Self> {
        matches!(self, J::Obj(_)).then_some(self)
    }

    /// An object's value for `key` (the last one when written twice).
    fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(o) => o.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// An object's first entry in key order.
    fn first(&self) -> Option<(&str, &J<'a>)> {
        let J::Obj(o) = self else {
            return None;
        };
        let (k, _) = o.iter().min_by(|a, b| a.0.cmp(&b.0))?;
        Some((k, self.get(k)?))
    }

    /// An object's entries in key order, each key once with its last value.
    fn entries(&self) -> Vec<(&str, &J<'a>)> {
        let J::Obj(o) = self else {
            return Vec::new();
        };
        let mut v: Vec<(&str, &J<'a>)> = o.iter().map(|(k, v)| (&**k, v)).collect();
        if v.len() > 1 {
            // Stable: of equal keys the last written stays last.
            v.sort_by(|a, b| a.0.cmp(b.0));
            let mut out: Vec<(&str, &J<'a>)> = Vec::with_capacity(v.len());
            for e in v {
                match out.last_mut() {
                    Some(last) if last.0 == e.0 => *last = e,
                    _ => out.push(e),
                }
            }
            return out;
        }
        v
    }
}

impl fmt::Display for J<'_> {
    /// Compact JSON, keys sorted, as `serde_json::Value` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl Serialize for J<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => ser.serialize_unit(),
            J::Bool(b) => ser.serialize_bool(*b),
            J::Num(n) => n.serialize(ser),
            J::Str(s) => ser.serialize_str(s),
            J::Arr(a) => {
                let mut seq = ser.serialize_seq(Some(a.len()))?;
                for x in a {
                    seq.serialize_element(x)?;
                }
                seq.end()
            }
            J::Obj(_) => {
                let entries = self.entries();
                let mut map = ser.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for J<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }

    fn visit_none<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<J<'de>, E> {
        Ok(J::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<J<'de>, E> {
        Ok(J::Num(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<J<'de>, E> {
        Ok(J::Num(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<J<'de>, E> {
        Ok(Number::from_f64(n).map_or(J::Null, J::Num))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J<'de>, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(J::Arr(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J<'de>, A::Error> {
        let mut v = Vec::new();
        while let Some(k) = map.next_key::<J<'de>>()? {
            let J::Str(k) = k else {
                return Err(serde::de::Error::custom("object key is not a string"));
            };
            v.push((k, map.next_value()?));
        }
        Ok(J::Obj(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `J` reads and prints JSON as `serde_json::Value` does: keys in
    /// order, the last of a repeated key, numbers and escapes unchanged.
    #[test]
    fn borrowed_json_prints_like_serde_json_value() {
        let src = r#"{"b": [1, -2, 1.5, 1e300, true, null, "x\"y\u00e9"], "a": {"z": 1, "y": 2, "z": 3}, "c": "plain"}"#;
        let j: J<'_> = serde_json::from_str(src).unwrap();
        let v: serde_json::Value = serde_json::from_str(src).unwrap();
        assert_eq!(j.to_string(), v.to_string());
        assert_eq!(j.first().map(|(k, _)| k), Some("a"));
        assert_eq!(
            j.get("a").and_then(|a| a.get("z")).and_then(J::as_u64),
            Some(3)
        );
        assert!(matches!(j.get("c"), Some(J::Str(Cow::Borrowed("plain")))));
        let keys: Vec<&str> = j.entries().iter().map(|e| e.0).collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    /// An unknown statement is kept with its JSON and the rule still read.
    #[test]
    fn unknown_statement_is_kept_as_its_json() {
        let doc = r#"{"nftables": [
            {"table": {"family": "inet", "name": "t"}},
            {"chain": {"family": "inet", "table": "t", "name": "c"}},
            {"rule": {"family": "inet", "table": "t", "chain": "c",
              "expr": [{"frobnicate": {"b": 2, "a": "x"}}, {"accept": null}]}}
        ]}"#;
        let (rs, problems) = parse_json(doc);
        assert!(problems.is_empty(), "{problems:?}");
        let r = &rs.tables[0].chains[0].rules[0];
        assert_eq!(r.stmts.len(), 2);
        assert!(
            matches!(&r.stmts[0], Stmt::Other(t) if t == r#"{"frobnicate":{"a":"x","b":2}}"#),
            "{:?}",
            r.stmts[0]
        );
        assert!(matches!(r.stmts[1], Stmt::Verdict(Verdict::Accept)));
    }
}
