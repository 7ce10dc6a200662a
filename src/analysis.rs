//! Answers about all packets at once: who can reach whom (the service
//! matrix), which interfaces are protected against spoofed sources, and
//! which rules can never match.
//!
//! The engine does not read match options itself: it works on the rules
//! as the tracer compiles them ([`crate::trace`]'s `CRule`, with its
//! `Cond`/`Test` values), and evaluates sets of packets through them.
//!
//! Tests that depend on something else than addresses, ports, protocol and
//! conntrack state (marks, rate limits, `recent`, ipsets, unknown modules,
//! interfaces without an assignment ...) are *unknown*; as in fffuu
//! (Iptables_Semantics), the upper closure takes an unknown test as true
//! in a rule that accepts and false in a rule that drops or rejects (the
//! accepted packets are then a superset of the real ones), the lower
//! closure the other way round.
//!
//! ```
//! use iptviz::analysis::reach::{ReachOptions, service_matrix};
//! let text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
//!             -A FORWARD -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
//! let rs = iptviz::parse_str(text, &iptviz::ParseOptions::strict("doc")).unwrap().ruleset;
//! let m = service_matrix(&rs, &ReachOptions { dport: 22, ..Default::default() }).unwrap();
//! assert_eq!(m.classes.len(), 2);
//! let ten = m.class_of("10.1.2.3".parse().unwrap()).unwrap();
//! let other = m.class_of("8.8.8.8".parse().unwrap()).unwrap();
//! assert!(m.accepts(ten, other) && m.accepts(ten, ten) && !m.accepts(other, ten));
//! ```

pub(crate) mod boxes;
pub mod ifaces;
pub mod lint;
mod lits;
pub mod reach;
pub mod routes;
pub mod sets;
pub mod spoof;

use serde::Serialize;

/// Which way unknown tests are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Closure {
    /// Everything that may be accepted is (unknown is true in accepting
    /// rules, false in dropping ones).
    #[default]
    Upper,
    /// Only what is surely accepted is (the other way round).
    Lower,
}

impl Closure {
    /// The value an unknown test takes in a rule that accepts, and in one
    /// that drops.
    pub(crate) fn values(self) -> (bool, bool) {
        match self {
            Closure::Upper => (true, false),
            Closure::Lower => (false, true),
        }
    }
}

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The table is not in the dump.
    #[error("no table {0:?} in the rules (tables: {1})")]
    NoTable(String, String),
    /// The chain is not in the table.
    #[error("no chain {0:?} in table {1} (chains: {2})")]
    NoChain(String, String, String),
}

pub(crate) fn find_chain(
    rs: &crate::Ruleset,
    table: &str,
    chain: &str,
) -> Result<(usize, usize), AnalysisError> {
    let Some(t) = rs.tables.iter().position(|t| t.name == table) else {
        let names: Vec<&str> = rs.tables.iter().map(|t| t.name.as_str()).collect();
        return Err(AnalysisError::NoTable(table.into(), names.join(", ")));
    };
    let tb = &rs.tables[t];
    let Some(c) = tb.chain_position(chain) else {
        let mut names: Vec<&str> = tb.chains.iter().map(|c| c.name.as_str()).collect();
        if names.len() > 12 {
            names.truncate(12);
            names.push("...");
        }
        return Err(AnalysisError::NoChain(
            chain.into(),
            table.into(),
            names.join(", "),
        ));
    };
    Ok((t, c))
}
