//! nftables: `nft list ruleset` text and `nft -j list ruleset` JSON into
//! one model ([`model`]), kept in [`crate::model::Ruleset::nft`] beside the
//! iptables tables.

pub mod display;
pub mod json;
pub mod lex;
pub mod model;
pub mod normal;
pub mod parse;

pub use model::{
    BaseChain, Chain, ChainType, CtDir, Define, Expr, Family, Flowtable, Hook, Include, Match, Nat,
    NatKind, NftRuleset, Object, Policy, Priority, RelOp, Rule, Set, Stmt, Table, Verdict,
    named_priority,
};
