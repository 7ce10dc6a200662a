//! `nft -j list ruleset` JSON into an [`NftRuleset`].
//!
//! Tolerant of what nft really prints: a statement that is a bare string
//! (nft 1.0.6 prints an anonymous chain `jump { ... }` that way) is read
//! with the text parser; an item or expression this reader does not know
//! is kept as [`Stmt::Other`] / [`Expr::Other`] with its JSON, or reported,
//! and the rest is still read.

use serde_json::{Map, Value};

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
pub fn parse_json(text: &str) -> (NftRuleset, Vec<Problem>) {
    let mut rs = NftRuleset::default();
    let mut problems = Vec::new();
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.line().max(1);
            let src = text.lines().nth(line - 1).unwrap_or("");
            problems.push(Problem {
                line: line as u32,
                column: e.column().max(1) as u32,
                severity: Severity::Error,
                message: format!("not valid JSON: {e}"),
                source: src.chars().take(300).collect(),
            });
            return (rs, problems);
        }
    };
    let Some(items) = doc.get("nftables").and_then(Value::as_array) else {
        problems.push(problem(
            "expected an object with an \"nftables\" array (the output of `nft -j list ruleset`)"
                .into(),
        ));
        return (rs, problems);
    };
    let mut anon = 0usize;
    for (i, item) in items.iter().enumerate() {
        let Some(obj) = item.as_object() else {
            problems.push(problem(format!("nftables[{i}]: expected an object")));
            continue;
        };
        for (kind, body) in obj {
            if let Err(msg) = read_item(&mut rs, kind, body, &mut anon) {
                problems.push(problem(format!("nftables[{i}] ({kind}): {msg}")));
            }
        }
    }
    (rs, problems)
}

fn s<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

fn table_of<'a>(rs: &'a mut NftRuleset, o: &Map<String, Value>) -> Result<&'a mut Table, String> {
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
    Ok(&mut rs.tables[i])
}

fn strings(v: Option<&Value>) -> Vec<Str> {
    match v {
        Some(Value::String(x)) => vec![x.as_str().into()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(Str::from).collect(),
        _ => Vec::new(),
    }
}

/// A type given as `"a"`, `["a", "b"]` or `"a . b"`.
fn type_parts(v: Option<&Value>) -> Vec<Str> {
    strings(v)
        .iter()
        .flat_map(|x| x.split(" . ").map(Str::from).collect::<Vec<_>>())
        .collect()
}

fn read_item(
    rs: &mut NftRuleset,
    kind: &str,
    body: &Value,
    anon: &mut usize,
) -> Result<(), String> {
    let o = body.as_object();
    match kind {
        "metainfo" => Ok(()),
        "table" => {
            let o = o.ok_or("expected an object")?;
            let fam = s(o, "family").ok_or("no family")?;
            let fam = Family::from_name(fam).ok_or_else(|| format!("unknown family {fam}"))?;
            let name = s(o, "name").ok_or("no name")?;
            let mut t = Table::new(fam, name, 0);
            t.handle = o.get("handle").and_then(Value::as_u64);
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
            c.handle = o.get("handle").and_then(Value::as_u64);
            c.comment = s(o, "comment").map(String::from);
            if let (Some(ty), Some(hook)) = (s(o, "type"), s(o, "hook")) {
                let prio = o.get("prio").and_then(Value::as_i64).unwrap_or(0) as i32;
                c.base = Some(BaseChain {
                    kind: ChainType::from_name(ty),
                    hook: Hook::from_name(hook),
                    priority: Priority::number(prio),
                    policy: match s(o, "policy") {
                        Some("drop") => Some(Policy::Drop),
                        Some("accept") => Some(Policy::Accept),
                        _ => None,
                    },
                    devices: strings(o.get("dev")),
                });
            }
            let _ = fam;
            let t = table_of(rs, o)?;
            match t.chains.iter_mut().find(|x| x.name == name) {
                Some(x) => {
                    x.base = c.base;
                    x.handle = c.handle;
                    x.comment = c.comment;
                }
                None => t.chains.push(c),
            }
            Ok(())
        }
        "rule" => {
            let o = o.ok_or("expected an object")?;
            let chain = s(o, "chain").ok_or("no chain")?;
            let fam = table_of(rs, o)?.family;
            let exprs = o
                .get("expr")
                .and_then(Value::as_array)
                .ok_or("no expr array")?;
            let mut rule = Rule {
                handle: o.get("handle").and_then(Value::as_u64),
                comment: s(o, "comment").map(String::from),
                ..Default::default()
            };
            for e in exprs {
                read_stmt(e, fam, &mut rule, anon);
            }
            rule.text = display_text(&rule);
            let t = table_of(rs, o)?;
            let ci = match t.chains.iter().position(|c| c.name == chain) {
                Some(i) => i,
                None => {
                    t.chains.push(Chain::new(chain, 0));
                    t.chains.len() - 1
                }
            };
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
            if let Some(elems) = o.get("elem").and_then(Value::as_array) {
                for e in elems {
                    set.elements.push(match e {
                        Value::Array(kv) if kv.len() == 2 && set.is_map => {
                            Expr::MapElem(Box::new(expr(&kv[0])), Box::new(map_value(&kv[1])))
                        }
                        other => expr(other),
                    });
                }
            }
            for k in ["timeout", "gc-interval", "size", "policy"] {
                if let Some(v) = o.get(k) {
                    set.other.push(match v {
                        Value::String(x) => format!("{k} {x}"),
                        Value::Number(n) if k == "timeout" || k == "gc-interval" => {
                            format!("{k} {n}s")
                        }
                        v => format!("{k} {v}"),
                    });
                }
            }
            if o.get("auto-merge").and_then(Value::as_bool) == Some(true) {
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
                priority: Priority::number(
                    o.get("prio").and_then(Value::as_i64).unwrap_or(0) as i32
                ),
                devices: strings(o.get("dev")),
            };
            table_of(rs, o)?.flowtables.push(ft);
            Ok(())
        }
        "counter" | "quota" | "ct helper" | "ct timeout" | "ct expectation" | "limit"
        | "secmark" | "synproxy" => {
            let o = o.ok_or("expected an object")?;
            let name = s(o, "name").ok_or("no name")?;
            let mut body = Map::new();
            for (k, v) in o {
                if !matches!(k.as_str(), "family" | "name" | "table" | "handle") {
                    body.insert(k.clone(), v.clone());
                }
            }
            let obj = Object {
                kind: kind.into(),
                name: name.into(),
                line: 0,
                body: Value::Object(body).to_string(),
            };
            table_of(rs, o)?.objects.push(obj);
            Ok(())
        }
        other => Err(format!("unknown item `{other}`, skipped")),
    }
}

/// The text shown for a rule read from JSON: the model printed as nft text.
fn display_text(rule: &Rule) -> String {
    let mut r = rule.clone();
    r.comment = None;
    r.to_string()
}

fn read_stmt(e: &Value, fam: Family, rule: &mut Rule, anon: &mut usize) {
    if let Value::String(text) = e {
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

fn stmt(e: &Value) -> Stmt {
    let Some((k, v)) = e.as_object().and_then(|o| o.iter().next()) else {
        return Stmt::Other(e.to_string());
    };
    let o = v.as_object();
    let field = |name: &str| o.and_then(|o| o.get(name));
    match k.as_str() {
        "match" => Stmt::Match(Match {
            left: field("left").map_or(Expr::Other(String::new()), expr),
            op: match field("op").and_then(Value::as_str).unwrap_or("==") {
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
            Value::String(name) => Stmt::Counter {
                packets: None,
                bytes: None,
                name: Some(name.as_str().into()),
            },
            _ => Stmt::Counter {
                packets: field("packets").and_then(Value::as_u64),
                bytes: field("bytes").and_then(Value::as_u64),
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
            Stmt::Log {
                prefix: field("prefix").and_then(Value::as_str).map(String::from),
                level: field("level").and_then(Value::as_str).map(Str::from),
                group: field("group").and_then(Value::as_u64).map(|g| g as u32),
                other,
            }
        }
        "reject" => {
            let ty = field("type").and_then(Value::as_str);
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
            let per = field("per").and_then(Value::as_str).unwrap_or("second");
            let mut t = String::from("rate ");
            if field("inv").and_then(Value::as_bool) == Some(true) {
                t.push_str("over ");
            }
            t.push_str(&rate);
            if let Some(u) = field("rate_unit").and_then(Value::as_str)
                && u != "packets"
            {
                t.push_str(&format!(" {u}"));
            }
            t.push_str(&format!("/{per}"));
            if let Some(b) = field("burst").and_then(Value::as_u64)
                && b > 0
            {
                let unit = field("burst_unit")
                    .and_then(Value::as_str)
                    .unwrap_or("packets");
                t.push_str(&format!(" burst {b} {unit}"));
            }
            Stmt::Limit { text: t }
        }
        "dnat" | "snat" | "masquerade" | "redirect" => {
            let kind = match k.as_str() {
                "dnat" => NatKind::Dnat,
                "snat" => NatKind::Snat,
                "masquerade" => NatKind::Masquerade,
                _ => NatKind::Redirect,
            };
            Stmt::Nat(Nat {
                kind,
                family: field("family")
                    .and_then(Value::as_str)
                    .and_then(Family::from_name),
                addr: field("addr").map(expr),
                port: field("port").map(expr),
                flags: strings(field("flags")),
                other: strings(field("type_flags")).first().map(|x| x.to_string()),
            })
        }
        "mangle" => Stmt::Mangle {
            key: field("key").map_or(Expr::Other(String::new()), expr),
            value: field("value").map_or(Expr::Other(String::new()), expr),
        },
        "notrack" => Stmt::Notrack,
        "xt" => {
            let ty = field("type").and_then(Value::as_str).unwrap_or("?");
            let name = field("name").and_then(Value::as_str).unwrap_or("?");
            Stmt::Other(format!("xt {ty} {name}"))
        }
        "set" => {
            let op = field("op").and_then(Value::as_str).unwrap_or("add");
            let set = field("set").and_then(Value::as_str).unwrap_or("@?");
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
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn verdict(k: &str, v: &Value) -> Option<Verdict> {
    let target = || v.get("target").and_then(Value::as_str).map(Str::from);
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
fn map_value(v: &Value) -> Expr {
    if let Some((k, body)) = v.as_object().and_then(|o| o.iter().next())
        && let Some(x) = verdict(k, body)
    {
        return Expr::Verdict(Box::new(x));
    }
    expr(v)
}

/// The `data` of a vmap or map lookup: `"@name"` or `{"set": [[k, v], ...]}`.
fn map_data(v: &Value) -> Expr {
    match v {
        Value::String(s) if s.starts_with('@') => Expr::SetRef(s[1..].into()),
        Value::Object(o) if o.contains_key("set") => {
            let elems = match &o["set"] {
                Value::Array(a) => a.iter().map(map_elem).collect(),
                one => vec![map_elem(one)],
            };
            Expr::Map(elems)
        }
        other => expr(other),
    }
}

fn map_elem(v: &Value) -> Expr {
    match v {
        Value::Array(kv) if kv.len() == 2 => {
            Expr::MapElem(Box::new(expr(&kv[0])), Box::new(map_value(&kv[1])))
        }
        other => expr(other),
    }
}

/// An expression.
pub(crate) fn expr(v: &Value) -> Expr {
    match v {
        Value::String(s) => match s.strip_prefix('@') {
            Some(name) => Expr::SetRef(name.into()),
            None => Expr::Value(s.as_str().into()),
        },
        Value::Number(n) => Expr::Value(n.to_string().into()),
        // nft prints `exists`/`missing` (fib, exthdr) as booleans.
        Value::Bool(b) => Expr::Value(if *b { "exists" } else { "missing" }.into()),
        Value::Array(a) => Expr::List(a.iter().map(expr).collect()),
        Value::Null => Expr::Other("null".into()),
        Value::Object(o) => {
            let Some((k, b)) = o.iter().next() else {
                return Expr::Other(v.to_string());
            };
            let f = |name: &str| b.get(name);
            let fs = |name: &str| f(name).and_then(Value::as_str).unwrap_or_default();
            match k.as_str() {
                "payload" => match (f("protocol"), f("field")) {
                    (Some(p), Some(x)) => Expr::Payload {
                        proto: p.as_str().unwrap_or_default().into(),
                        field: x.as_str().unwrap_or_default().into(),
                    },
                    _ => Expr::Other(format!(
                        "@{},{},{}",
                        fs("base"),
                        f("offset").map(plain).unwrap_or_default(),
                        f("len").map(plain).unwrap_or_default()
                    )),
                },
                "exthdr" => Expr::Payload {
                    proto: fs("name").into(),
                    field: fs("field").into(),
                },
                "tcp option" | "ip option" => {
                    let mut t = format!("{k} {}", fs("name"));
                    if let Some(x) = f("field").and_then(Value::as_str) {
                        t.push(' ');
                        t.push_str(x);
                    }
                    Expr::Other(t)
                }
                "rt" => Expr::Other(format!("rt {}", fs("key"))),
                "meta" => Expr::Meta(fs("key").into()),
                "ct" => Expr::Ct {
                    key: fs("key").into(),
                    dir: match f("dir").and_then(Value::as_str) {
                        Some("original") => Some(CtDir::Original),
                        Some("reply") => Some(CtDir::Reply),
                        _ => None,
                    },
                    family: f("family")
                        .and_then(Value::as_str)
                        .and_then(Family::from_name),
                },
                "fib" => Expr::Fib {
                    flags: strings(f("flags")),
                    result: fs("result").into(),
                },
                "prefix" => Expr::Prefix {
                    addr: f("addr").map(plain).unwrap_or_default().into(),
                    len: f("len").and_then(Value::as_u64).unwrap_or(0) as u8,
                },
                "range" => match b.as_array() {
                    Some(a) if a.len() == 2 => {
                        Expr::Range(Box::new(expr(&a[0])), Box::new(expr(&a[1])))
                    }
                    _ => Expr::Other(v.to_string()),
                },
                "set" => match b {
                    Value::Array(a) => {
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
                "&" | "|" | "^" | "<<" | ">>" => match b.as_array() {
                    Some(a) if a.len() == 2 => Expr::Binop {
                        op: k.as_str().into(),
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
                    let mut t = k.clone();
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
                    if let Some(c) = f("comment").and_then(Value::as_str) {
                        opts.push(format!("comment \"{c}\""));
                    }
                    if opts.is_empty() {
                        value
                    } else {
                        Expr::Elem {
                            value: Box::new(value),
                            options: opts.join(" "),
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
