//! Turns the words of one rule (after `-A CHAIN`) into a [`Rule`].

use crate::model::{Counters, Match, Negatable, Opt, Rule, Slot, Str, Target};

use super::lexer::Token;

/// A problem inside a rule: byte column in the line and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Byte offset in the line.
    pub col: usize,
    /// What was expected.
    pub message: String,
}

fn err(col: usize, message: impl Into<String>) -> RuleError {
    RuleError {
        col,
        message: message.into(),
    }
}

/// Common (rule-level) options and how many arguments each takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Common {
    Protocol,
    Source,
    Destination,
    InIface,
    OutIface,
    Fragment,
    Match,
    Jump,
    Goto,
    Counters,
}

fn common(word: &str) -> Option<Common> {
    Some(match word {
        "-p" | "--protocol" | "--proto" => Common::Protocol,
        "-s" | "--source" | "--src" => Common::Source,
        "-d" | "--destination" | "--dst" => Common::Destination,
        "-i" | "--in-interface" | "--in" => Common::InIface,
        "-o" | "--out-interface" | "--out" => Common::OutIface,
        "-f" | "--fragment" => Common::Fragment,
        "-m" | "--match" => Common::Match,
        "-j" | "--jump" => Common::Jump,
        "-g" | "--goto" => Common::Goto,
        "-c" | "--set-counters" => Common::Counters,
        _ => return None,
    })
}

/// Where option words go while walking the rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Nobody,
    Match(usize),
    Target,
}

fn is_option_word(t: &Token<'_>) -> bool {
    !t.quoted && t.text.len() > 1 && t.text.starts_with('-')
}

fn is_bang(t: &Token<'_>) -> bool {
    !t.quoted && t.text == "!"
}

/// Parses the words of a rule body into `rule` (line, text and counters
/// are set by the caller).
pub fn parse_rule_body(tokens: &[Token<'_>], rule: &mut Rule) -> Result<(), RuleError> {
    let mut owner = Owner::Nobody;
    let mut i = 0;
    let n = tokens.len();
    while i < n {
        let t = &tokens[i];
        let mut negated = false;
        let mut opt_tok = t;
        if is_bang(t) {
            negated = true;
            i += 1;
            match tokens.get(i) {
                Some(next) if is_option_word(next) => opt_tok = next,
                Some(next) => {
                    return Err(err(
                        next.col,
                        format!("expected an option after '!', found '{}'", next.text),
                    ));
                }
                None => return Err(err(t.col, "'!' at the end of the rule negates nothing")),
            }
        }
        if !is_option_word(opt_tok) {
            return Err(err(
                opt_tok.col,
                format!(
                    "unexpected '{}': expected an option such as -p, -s, -m or -j",
                    opt_tok.text
                ),
            ));
        }
        i += 1;
        // Old style negation: `-s ! 1.2.3.4`, `--dport ! 22`.
        let mut bang_after = false;
        if !negated
            && tokens.get(i).is_some_and(is_bang)
            && tokens.get(i + 1).is_some_and(|x| !is_option_word(x))
        {
            negated = true;
            bang_after = true;
            i += 1;
        }
        let name = opt_tok.text.as_ref();
        if let Some(c) = common(name) {
            let take = |i: &mut usize, what: &str| -> Result<Str, RuleError> {
                match tokens.get(*i) {
                    Some(v) if !is_option_word(v) && !is_bang(v) => {
                        *i += 1;
                        Ok(Str::from(v.text.as_ref()))
                    }
                    _ => Err(err(opt_tok.col, format!("'{name}' needs {what}"))),
                }
            };
            let neg = |value: Str| Negatable {
                value,
                negated,
                bang_after,
            };
            // `-c` has no slot: counters are printed before `-A`.
            let slot = match c {
                Common::Protocol => {
                    let v = take(&mut i, "a protocol")?;
                    dup(rule.protocol.is_some(), opt_tok)?;
                    rule.protocol = Some(neg(v));
                    Some(Slot::Protocol)
                }
                Common::Source => {
                    let v = take(&mut i, "an address")?;
                    dup(rule.source.is_some(), opt_tok)?;
                    rule.source = Some(neg(v));
                    Some(Slot::Source)
                }
                Common::Destination => {
                    let v = take(&mut i, "an address")?;
                    dup(rule.destination.is_some(), opt_tok)?;
                    rule.destination = Some(neg(v));
                    Some(Slot::Destination)
                }
                Common::InIface => {
                    let v = take(&mut i, "an interface name")?;
                    dup(rule.in_iface.is_some(), opt_tok)?;
                    rule.in_iface = Some(neg(v));
                    Some(Slot::InIface)
                }
                Common::OutIface => {
                    let v = take(&mut i, "an interface name")?;
                    dup(rule.out_iface.is_some(), opt_tok)?;
                    rule.out_iface = Some(neg(v));
                    Some(Slot::OutIface)
                }
                Common::Fragment => {
                    dup(rule.fragment.is_some(), opt_tok)?;
                    rule.fragment = Some(!negated);
                    Some(Slot::Fragment)
                }
                Common::Match => {
                    if negated {
                        return Err(err(t.col, "'!' cannot negate -m"));
                    }
                    let module = take(&mut i, "a match module name")?;
                    rule.matches.push(Match {
                        module,
                        opts: Vec::new(),
                        implicit: false,
                    });
                    owner = Owner::Match(rule.matches.len() - 1);
                    Some(Slot::Match((rule.matches.len() - 1) as u16))
                }
                Common::Jump | Common::Goto => {
                    if negated {
                        return Err(err(t.col, format!("'!' cannot negate {name}")));
                    }
                    if rule.target.is_some() {
                        return Err(err(opt_tok.col, "a rule can have only one -j or -g"));
                    }
                    let target = take(&mut i, "a target or chain name")?;
                    rule.target = Some(Target {
                        name: target,
                        goto: c == Common::Goto,
                        ..Default::default()
                    });
                    owner = Owner::Target;
                    Some(Slot::Target)
                }
                Common::Counters => {
                    let p = take(&mut i, "two numbers (packets bytes)")?;
                    let b = take(&mut i, "two numbers (packets bytes)")?;
                    match (p.parse(), b.parse()) {
                        (Ok(packets), Ok(bytes)) => {
                            rule.counters = Some(Counters { packets, bytes });
                            None
                        }
                        _ => {
                            return Err(err(opt_tok.col, "-c needs two numbers (packets bytes)"));
                        }
                    }
                }
            };
            rule.layout.extend(slot);
            continue;
        }
        // A module or target option: take every following value word.
        let mut opt = Opt {
            name: Str::from(name),
            negated,
            bang_after,
            args: Vec::new(),
        };
        while let Some(v) = tokens.get(i) {
            if is_option_word(v) && !v.text.starts_with("--") && v.text.len() == 2 {
                break;
            }
            if is_option_word(v) || is_bang(v) {
                // Values that look like options (`-1`) only when quoted.
                if !(v.text.starts_with('-')
                    && v.text[1..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_digit()))
                {
                    break;
                }
            }
            opt.args.push(Str::from(v.text.as_ref()));
            i += 1;
        }
        match owner {
            Owner::Match(m) => rule.matches[m].opts.push(opt),
            Owner::Target => {
                if let Some(t) = rule.target.as_mut() {
                    t.opts.push(opt)
                }
            }
            Owner::Nobody => {
                // `-p tcp --dport 22` without `-m tcp`: iptables loads the
                // protocol's match on its own.
                match rule.protocol.as_ref() {
                    Some(p) if !p.negated && !p.value.is_empty() => {
                        rule.matches.push(Match {
                            module: p.value.to_ascii_lowercase(),
                            opts: vec![opt],
                            implicit: true,
                        });
                        owner = Owner::Match(rule.matches.len() - 1);
                        rule.layout
                            .push(Slot::Match((rule.matches.len() - 1) as u16));
                    }
                    _ => {
                        rule.extra.push(opt);
                        rule.layout.push(Slot::Extra((rule.extra.len() - 1) as u16));
                    }
                }
            }
        }
    }
    Ok(())
}

fn dup(already: bool, t: &Token<'_>) -> Result<(), RuleError> {
    if already {
        Err(err(t.col, format!("'{}' given twice", t.text)))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;
    use crate::model::KnownMatch;

    fn rule(s: &str) -> Rule {
        let mut toks = Vec::new();
        tokenize(s, &mut toks).unwrap();
        let mut r = Rule::default();
        parse_rule_body(&toks, &mut r).unwrap();
        r
    }

    #[test]
    fn common_fields_and_target() {
        let r = rule("-s 10.0.0.0/8 ! -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT");
        assert_eq!(r.source.as_ref().unwrap().value, "10.0.0.0/8");
        assert!(r.in_iface.as_ref().unwrap().negated);
        assert_eq!(r.matches[0].module, "tcp");
        assert_eq!(r.target.as_ref().unwrap().name, "ACCEPT");
        assert_eq!(
            r.layout,
            vec![
                Slot::Source,
                Slot::InIface,
                Slot::Protocol,
                Slot::Match(0),
                Slot::Target
            ]
        );
    }

    #[test]
    fn old_style_negation() {
        let r = rule("-s ! 1.2.3.4 -p tcp -m tcp --dport ! 22");
        let s = r.source.unwrap();
        assert!(s.negated && s.bang_after);
        let o = &r.matches[0].opts[0];
        assert!(o.negated && o.bang_after && o.args == ["22"]);
    }

    #[test]
    fn bang_before_next_option_is_not_old_style() {
        let r = rule("-p tcp -m tcp --syn ! --dport 22");
        let o = &r.matches[0].opts;
        assert!(!o[0].negated);
        assert!(o[1].negated && !o[1].bang_after);
    }

    #[test]
    fn implicit_protocol_match() {
        let r = rule("-p tcp --dport 22 -j DROP");
        assert!(r.matches[0].implicit);
        assert!(matches!(r.matches[0].typed(), KnownMatch::Tcp { .. }));
    }

    #[test]
    fn multi_arg_options_and_goto() {
        let r = rule(
            "-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m set --match-set foo src,dst -g X",
        );
        assert_eq!(r.matches[0].opts[0].args.len(), 2);
        assert_eq!(r.matches[1].opts[0].args, ["foo", "src,dst"]);
        assert!(r.target.unwrap().goto);
    }

    #[test]
    fn errors_point_at_the_word() {
        let mut toks = Vec::new();
        tokenize("-p tcp bogus -j ACCEPT", &mut toks).unwrap();
        let e = parse_rule_body(&toks, &mut Rule::default()).unwrap_err();
        assert_eq!(e.col, 7);
        tokenize("-p tcp -j", &mut toks).unwrap();
        let e = parse_rule_body(&toks, &mut Rule::default()).unwrap_err();
        assert_eq!(e.col, 7);
    }
}
