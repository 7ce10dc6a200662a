//! nftables: `nft list ruleset` text and `nft -j list ruleset` JSON into
//! one model ([`model`]), kept in [`crate::model::Ruleset::nft`] beside the
//! iptables tables.

pub mod check;
pub mod display;
pub mod json;
pub mod lex;
pub mod model;
pub mod normal;
pub mod parse;
pub mod project;

pub use model::{
    BaseChain, Chain, ChainType, CtDir, Define, Expr, Family, Flowtable, Hook, Include, Match, Nat,
    NatKind, NftRuleset, Object, Policy, Priority, RelOp, Rule, Set, Stmt, Table, Verdict,
    named_priority,
};

use crate::model::{InputFormat, Ruleset};
use crate::parse::{ParseError, ParseOptions, Parsed, Severity};

/// Reads nft text or `nft -j` JSON (told apart by the first bytes) into a
/// [`Ruleset`] whose [`Ruleset::nft`] holds the tables. Strict mode stops
/// at the first error, as for iptables input.
pub fn parse_nft(text: &str, opts: &ParseOptions) -> Result<Parsed, ParseError> {
    let json = json::looks_like_nft_json(text);
    let (nft, mut problems) = if json {
        json::parse_json(text)
    } else {
        parse::parse_text(text)
    };
    problems.extend(check::problems(&nft, (!json).then_some(text)));
    problems.sort_by_key(|p| (p.line, p.column));
    if opts.strict
        && let Some(first) = problems.iter().find(|p| p.severity == Severity::Error)
    {
        return Err(ParseError::Syntax {
            name: opts.source_name.clone(),
            problem: Box::new(first.clone()),
        });
    }
    let ruleset = Ruleset {
        format: if json {
            InputFormat::NftJson
        } else {
            InputFormat::Nft
        },
        nft,
        ..Default::default()
    };
    // The suspicious-rule warnings are about iptables tables (none here).
    let suspicious = crate::parse::check::lint(&ruleset);
    Ok(Parsed {
        ruleset,
        problems,
        suspicious,
    })
}
